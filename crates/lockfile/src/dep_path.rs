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
  // Escaping is lossy where a URL or path holds a character that also becomes `+` (a port's
  // `:`, a `+` of its own): two sources could share a slot. pnpm (11.28+, 12) then names the
  // slot after a hash of the dep path itself, however short the name.
  let ambiguous = escapes_ambiguously(dep_path);
  let hash_input = if ambiguous { dep_path.to_string() } else { name.clone() };
  // Windows drops trailing dots and spaces from file names: pnpm spells them `+` and hashes.
  let kept = name.trim_end_matches(['.', ' ']).len();
  let trailing = kept < name.len();
  if trailing {
    let n = name.len() - kept;
    name.truncate(kept);
    name.push_str(&"+".repeat(n));
  }
  let has_upper = name.bytes().any(|b| b.is_ascii_uppercase());
  if !ambiguous && !trailing && name.len() <= max_length && (!has_upper || name.starts_with("file+")) {
    return name;
  }
  let mut cut = max_length.saturating_sub(33).min(name.len());
  while !name.is_char_boundary(cut) {
    cut -= 1;
  }
  let digest = hex::encode(Sha256::digest(hash_input.as_bytes()));
  format!("{}_{}", &name[..cut], &digest[..32])
}

/// Whether the location of a non-registry dep path (`name@https://host:8080/x.tgz`,
/// `file:../a+b`) holds a character that escaping turns into `+`.
fn escapes_ambiguously(dep_path: &str) -> bool {
  let pkg_id = remove_peer_suffix(dep_path.strip_prefix('/').unwrap_or(dep_path));
  let version = if pkg_id.starts_with("file:") {
    pkg_id
  } else {
    match parse_pkg_key(pkg_id) {
      Some(key) => key.version,
      None => return false,
    }
  };
  let Some(colon) = version.find(':') else {
    return false;
  };
  if is_registry_qualified(version, colon) {
    return false;
  }
  let location = &version[colon + 1..];
  let location = location.strip_prefix("//").unwrap_or(location);
  location.contains(['+', '\\', ':', '*', '?', '"', '<', '>', '|', '#'])
}

/// `<registry name>:<semver>`, the version of a package from a named registry.
fn is_registry_qualified(version: &str, colon: usize) -> bool {
  const RESERVED: [&str; 15] = [
    "bitbucket",
    "catalog",
    "custom",
    "file",
    "git",
    "github",
    "gitlab",
    "http",
    "https",
    "jsr",
    "link",
    "npm",
    "runtime",
    "ssh",
    "workspace",
  ];
  let (registry, rest) = (&version[..colon], &version[colon + 1..]);
  let mut chars = registry.chars();
  let named = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
    && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
  named && !RESERVED.contains(&registry.to_ascii_lowercase().as_str()) && is_semver(rest)
}

/// A strict semver version (`1.2.3`, `v1.2.3-rc.1+build.5`).
fn is_semver(v: &str) -> bool {
  let v = v.trim();
  let v = v.strip_prefix('v').unwrap_or(v);
  let (v, build) = match v.split_once('+') {
    Some((v, b)) => (v, Some(b)),
    None => (v, None),
  };
  let (core, pre) = match v.split_once('-') {
    Some((c, p)) => (c, Some(p)),
    None => (v, None),
  };
  let number =
    |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
  let ident = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
  let parts: Vec<&str> = core.split('.').collect();
  parts.len() == 3
    && parts.iter().all(|p| number(p))
    && pre
      .is_none_or(|p| p.split('.').all(|i| ident(i) && (!i.bytes().all(|b| b.is_ascii_digit()) || number(i))))
    && build.is_none_or(|b| b.split('.').all(ident))
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

  #[test]
  fn lossy_escapes_get_a_hash_of_the_dep_path() {
    let hash = |s: &str| hex::encode(Sha256::digest(s.as_bytes()))[..32].to_string();
    // A port's `:` escapes like the `/` around it: the name keeps a hash of the dep path.
    let url = "tar-pkg@http://127.0.0.1:4873/downloads/tar-pkg-1.0.0.tgz";
    assert_eq!(
      dep_path_to_filename(url, 120),
      format!("tar-pkg@http+++127.0.0.1+4873+downloads+tar-pkg-1.0.0.tgz_{}", hash(url))
    );
    // Without one, the plain escape is unambiguous.
    assert_eq!(dep_path_to_filename("a@https://h.example/a.tgz", 120), "a@https+++h.example+a.tgz");
    assert_eq!(dep_path_to_filename("file:../a+b", 120), format!("file+..+a+b_{}", hash("file:../a+b")));
    // A named registry's version keeps its plain name (its `:` is not part of a location).
    assert_eq!(dep_path_to_filename("foo@corp:1.0.0+build", 120), "foo@corp+1.0.0+build");
    assert_eq!(dep_path_to_filename("foo@1.0.0+build", 120), "foo@1.0.0+build");
    // Trailing dots are spelled `+` and hashed.
    assert_eq!(dep_path_to_filename("file:pkg.", 120), format!("file+pkg+_{}", hash("file+pkg.")));
  }
}
