//! Where the store lives and how paths inside it are formed.

use std::path::{Path, PathBuf};

pub const STORE_VERSION: &str = "v11";

/// `<storeDir>/v11`: the root every store path is under.
#[derive(Debug, Clone)]
pub struct StoreDir {
  root: PathBuf,
}

impl StoreDir {
  /// Appends `v11` unless the path already ends in it, as pnpm does.
  pub fn new(store_dir: impl Into<PathBuf>) -> Self {
    let dir: PathBuf = store_dir.into();
    let root =
      if dir.file_name().is_some_and(|n| n == STORE_VERSION) { dir } else { dir.join(STORE_VERSION) };
    StoreDir { root }
  }

  pub fn root(&self) -> &Path {
    &self.root
  }

  pub fn index_db(&self) -> PathBuf {
    self.root.join("index.db")
  }

  /// `files/<2 hex>/<126 hex>[-exec]`.
  pub fn blob_path(&self, hex_digest: &str, executable: bool) -> PathBuf {
    let (shard, rest) = hex_digest.split_at(2.min(hex_digest.len()));
    // One allocation: this runs for every file of every package a warm install links.
    let mut path = PathBuf::with_capacity(self.root.as_os_str().len() + hex_digest.len() + 16);
    path.push(&self.root);
    path.push("files");
    path.push(shard);
    path.push(rest);
    if executable {
      path.as_mut_os_string().push("-exec");
    }
    path
  }

  /// Creates `files/00` … `files/ff` once, so blob writes never need a `mkdir`.
  pub fn init(&self) -> std::io::Result<()> {
    let files = self.root.join("files");
    if files.join("ff").is_dir() {
      return Ok(());
    }
    for byte in 0..=255u8 {
      std::fs::create_dir_all(files.join(format!("{byte:02x}")))?;
    }
    Ok(())
  }
}

/// pnpm's default store location (before the `v11` suffix): `$PNPM_HOME/store`, else
/// `$XDG_DATA_HOME/pnpm/store`, else the platform's data directory.
pub fn default_store_dir() -> Option<PathBuf> {
  let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
  if let Some(home) = env("PNPM_HOME") {
    return Some(home.join("store"));
  }
  if let Some(data) = env("XDG_DATA_HOME") {
    return Some(data.join("pnpm").join("store"));
  }
  let home = env("HOME").or_else(|| env("USERPROFILE"))?;
  Some(if cfg!(target_os = "macos") {
    home.join("Library").join("pnpm").join("store")
  } else if cfg!(windows) {
    home.join("AppData").join("Local").join("pnpm").join("store")
  } else {
    home.join(".local").join("share").join("pnpm").join("store")
  })
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn v11_suffix_and_blob_paths() {
    let store = StoreDir::new("/s");
    assert_eq!(store.root(), Path::new("/s/v11"));
    assert_eq!(StoreDir::new("/s/v11").root(), Path::new("/s/v11"));
    let hex = format!("ab{}", "c".repeat(126));
    assert_eq!(store.blob_path(&hex, false), PathBuf::from(format!("/s/v11/files/ab/{}", "c".repeat(126))));
    assert_eq!(
      store.blob_path(&hex, true),
      PathBuf::from(format!("/s/v11/files/ab/{}-exec", "c".repeat(126)))
    );
  }
}
