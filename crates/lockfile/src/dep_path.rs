//! Dep paths (snapshot keys such as `@scope/foo@1.0.0(bar@2.0.0)`) and what pnpm derives
//! from them: package keys, names, versions, and virtual-store directory names.

use sha2::{Digest, Sha256};

use crate::model::DependencyRef;

/// Resolves a dependency reference as written in `dependencies:` maps (pnpm's `refToRelative`).
/// `1.0.0(peer@1)` means `<alias>@1.0.0(peer@1)`; `bar@1.0.0` (an npm alias) is already a
/// dep path; `link:../x` points at a directory.
pub fn ref_to_dep_path(reference: &str, alias: &str) -> DependencyRef {
  if let Some(target) = reference.strip_prefix("link:") {
    return DependencyRef::Link(target.to_string());
  }
  if reference.starts_with('@') {
    return DependencyRef::Snapshot(reference.to_string());
  }
  let Some(at) = reference.find('@') else {
    return DependencyRef::Snapshot(format!("{alias}@{reference}"));
  };
  let before = |c: char| reference.find(c).is_none_or(|i| at < i);
  if before(':') && before('(') {
    DependencyRef::Snapshot(reference.to_string())
  } else {
    DependencyRef::Snapshot(format!("{alias}@{reference}"))
  }
}

/// The `packages:` key of a snapshot: its dep path without the peer suffix.
pub fn remove_peer_suffix(dep_path: &str) -> &str {
  // Peer suffixes start at the first `(` that follows the version; names cannot hold `(`.
  match dep_path.find('(') {
    Some(i) => &dep_path[..i],
    None => dep_path,
  }
}

/// A package key split into name and version (`@scope/foo@1.0.0` → `@scope/foo`, `1.0.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgKey<'a> {
  pub name: &'a str,
  pub version: &'a str,
}

/// Splits `name@version`; the version may itself hold `@` or `:` (`file:`, URLs).
pub fn parse_pkg_key(key: &str) -> Option<PkgKey<'_>> {
  let at = key.get(1..)?.find('@')? + 1;
  let (name, version) = (&key[..at], &key[at + 1..]);
  if name.is_empty() || version.is_empty() {
    return None;
  }
  Some(PkgKey { name, version })
}

/// The directory name pnpm gives a snapshot's slot under the virtual store
/// (`node_modules/.pnpm/<this>`): escaped, peers flattened, and cut to `max_length`
/// with a SHA-256 tail when too long or when it holds upper case.
pub fn dep_path_to_filename(dep_path: &str, max_length: usize) -> String {
  let mut name = if let Some(rest) = dep_path.strip_prefix("file:") {
    format!("file+{rest}")
  } else {
    dep_path.strip_prefix('/').unwrap_or(dep_path).to_string()
  };
  name = name.replace(['\\', '/', ':', '*', '?', '"', '<', '>', '|', '#'], "+");
  if name.contains('(') {
    if name.ends_with(')') {
      name.pop();
    }
    name = name.replace(")(", "_").replace(['(', ')'], "_");
  }
  shorten(name, max_length)
}

fn shorten(name: String, max_length: usize) -> String {
  let has_upper = name.bytes().any(|b| b.is_ascii_uppercase());
  if name.len() <= max_length && (!has_upper || name.starts_with("file+")) {
    return name;
  }
  let mut cut = max_length.saturating_sub(33).min(name.len());
  while !name.is_char_boundary(cut) {
    cut -= 1;
  }
  let digest = hex::encode(Sha256::digest(name.as_bytes()));
  format!("{}_{}", &name[..cut], &digest[..32])
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn references_resolve_like_pnpm() {
    let snap = |s: &str| DependencyRef::Snapshot(s.to_string());
    assert_eq!(ref_to_dep_path("1.0.0", "foo"), snap("foo@1.0.0"));
    assert_eq!(ref_to_dep_path("1.0.0(bar@2.0.0)", "foo"), snap("foo@1.0.0(bar@2.0.0)"));
    assert_eq!(ref_to_dep_path("bar@1.0.0", "foo"), snap("bar@1.0.0"));
    assert_eq!(ref_to_dep_path("@s/bar@1.0.0", "foo"), snap("@s/bar@1.0.0"));
    assert_eq!(ref_to_dep_path("file:../x", "foo"), snap("foo@file:../x"));
    assert_eq!(ref_to_dep_path("https://h/x@1.tgz", "foo"), snap("foo@https://h/x@1.tgz"));
    assert_eq!(ref_to_dep_path("link:../x", "foo"), DependencyRef::Link("../x".into()));
  }

  #[test]
  fn package_keys_split_at_the_version_at() {
    assert_eq!(parse_pkg_key("@s/foo@1.0.0"), Some(PkgKey { name: "@s/foo", version: "1.0.0" }));
    assert_eq!(parse_pkg_key("foo@file:../a@b"), Some(PkgKey { name: "foo", version: "file:../a@b" }));
    assert_eq!(parse_pkg_key("foo"), None);
    assert_eq!(parse_pkg_key("@"), None);
    assert_eq!(parse_pkg_key(""), None);
    assert_eq!(remove_peer_suffix("a@1.0.0(b@2(c@3))"), "a@1.0.0");
  }

  #[test]
  fn slot_names_match_pnpm() {
    assert_eq!(dep_path_to_filename("foo@1.0.0", 120), "foo@1.0.0");
    assert_eq!(dep_path_to_filename("@scope/foo@1.0.0", 120), "@scope+foo@1.0.0");
    assert_eq!(dep_path_to_filename("foo@1.0.0(bar@2.0.0)(baz@3.0.0)", 120), "foo@1.0.0_bar@2.0.0_baz@3.0.0");
    assert_eq!(dep_path_to_filename("file:packages/foo", 120), "file+packages+foo");
    assert_eq!(dep_path_to_filename("file:Pkg", 120), "file+Pkg");
    assert_eq!(
      dep_path_to_filename(
        "eslint-plugin-testing-library@7.7.0(eslint@9.35.0(jiti@2.6.1))(typescript@6.0.3)",
        120
      ),
      "eslint-plugin-testing-library@7.7.0_eslint@9.35.0_jiti@2.6.1__typescript@6.0.3"
    );
    let long = format!("foo@1.0.0{}", "(bar@2.0.0)".repeat(40));
    let got = dep_path_to_filename(&long, 120);
    assert_eq!(got.len(), 120);
    assert!(got.as_bytes()[87] == b'_' && got[88..].bytes().all(|b| b.is_ascii_hexdigit()));
    // Upper case forces the hash tail even when short (case-insensitive file systems).
    let upper = dep_path_to_filename("FOO@1.0.0", 120);
    assert!(upper.starts_with("FOO@1.0.0_") && upper.len() == "FOO@1.0.0_".len() + 32);
    assert_eq!(dep_path_to_filename("", 120), "");
  }
}
