//! Unpacking a package tarball straight into the store: every regular file is hashed and
//! written as a blob; nothing is written under its in-package path.

use std::io::Read;

use indexmap::IndexMap;
use pacquet_store::{sha512_hex, BlobWriter, FileInfo};

use crate::error::FetchError;

/// Bounds on what one tarball may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct ExtractLimits {
  pub max_unpacked_bytes: u64,
}

impl Default for ExtractLimits {
  fn default() -> Self {
    // Far above any real package (the largest on the registry unpack to a few hundred MiB).
    ExtractLimits { max_unpacked_bytes: 4 << 30 }
  }
}

pub struct ExtractedPackage {
  /// In-package path → file, in tarball order (later duplicates replace earlier ones).
  pub files: IndexMap<String, FileInfo>,
  /// The parsed `package.json`, if present and valid JSON.
  pub package_json: Option<serde_json::Value>,
  pub unpacked_bytes: u64,
}

/// Unpacks a `.tgz` (or a plain tar: pnpm accepts both) into the store.
///
/// Entry paths lose their first segment (`package/`) and are normalised the way pnpm 11
/// does it: `\` becomes `/`, and `.` / `..` are resolved against the package root without
/// ever leaving it. Only regular files are kept; links, devices and directories are dropped,
/// so nothing in a tarball can point outside the package.
pub fn extract_tarball(
  package: &str,
  bytes: &[u8],
  writer: &BlobWriter,
  limits: ExtractLimits,
) -> Result<ExtractedPackage, FetchError> {
  let bad = |message: String| FetchError::Extract { package: package.to_string(), message };
  let reader: Box<dyn Read + '_> = if bytes.starts_with(&[0x1f, 0x8b]) {
    Box::new(flate2::bufread::GzDecoder::new(bytes))
  } else {
    Box::new(bytes)
  };
  let mut archive = tar::Archive::new(reader);
  let mut files = IndexMap::new();
  let mut package_json = None;
  let mut unpacked = 0u64;
  let mut buf = Vec::new();
  for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
    let mut entry = entry.map_err(|e| bad(e.to_string()))?;
    let kind = entry.header().entry_type();
    if !(kind.is_file() || kind.is_hard_link()) {
      continue;
    }
    let raw_path = entry.path_bytes();
    // A pax or GNU long name can hold NUL bytes, which no file system accepts: fail here, as
    // a corrupt tarball, rather than when the file is imported into node_modules.
    if raw_path.contains(&0) {
      return Err(bad(format!("entry path {:?} contains a NUL byte", String::from_utf8_lossy(&raw_path))));
    }
    let Some(path) = normalize(&String::from_utf8_lossy(&raw_path)) else {
      continue;
    };
    let mode = entry.header().mode().map_err(|e| bad(e.to_string()))?;
    let size = entry.header().entry_size().map_err(|e| bad(e.to_string()))?;
    unpacked = unpacked.saturating_add(size);
    if unpacked > limits.max_unpacked_bytes {
      return Err(FetchError::TooLarge { package: package.to_string(), limit: limits.max_unpacked_bytes });
    }
    buf.clear();
    // The declared size only bounds the read; a short entry is a corrupt tarball.
    buf.reserve(size.min(64 << 20) as usize);
    entry.read_to_end(&mut buf).map_err(|e| bad(e.to_string()))?;
    let digest = sha512_hex(&buf);
    let info = FileInfo { digest, mode, size: buf.len() as u64, checked_at: None };
    writer.write(&info.digest, &buf, info.is_executable())?;
    if path == "package.json" {
      let text = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf);
      package_json = serde_json::from_slice(text).ok();
    }
    files.insert(path, FileInfo { checked_at: Some(pacquet_store::now_ms()), ..info });
  }
  Ok(ExtractedPackage { files, package_json, unpacked_bytes: unpacked })
}

/// Drops the first segment and resolves the rest inside the package; `None` for the root.
fn normalize(raw: &str) -> Option<String> {
  let unified = raw.replace('\\', "/");
  let mut parts: Vec<&str> = Vec::new();
  for (i, segment) in unified.split('/').filter(|s| !s.is_empty()).enumerate() {
    match segment {
      _ if i == 0 => {}
      "." => {}
      ".." => {
        parts.pop();
      }
      s => parts.push(s),
    }
  }
  (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn paths_stay_inside_the_package() {
    assert_eq!(normalize("package/lib/a.js").as_deref(), Some("lib/a.js"));
    assert_eq!(normalize("pkg/../../../etc/passwd").as_deref(), Some("etc/passwd"));
    assert_eq!(normalize("/package//a/./b").as_deref(), Some("a/b"));
    assert_eq!(normalize("package\\..\\x").as_deref(), Some("x"));
    assert_eq!(normalize("package/"), None);
    assert_eq!(normalize("package/a/.."), None);
  }
}
