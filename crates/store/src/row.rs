//! The value stored per package in `index.db`: pnpm's `PackageFilesIndex`.

use indexmap::IndexMap;

/// One file of a package as the store index records it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInfo {
  /// Lowercase hex SHA-512 of the file bytes (128 chars, no `sha512-` prefix).
  pub digest: String,
  /// Full tar header mode (e.g. `0o644` = 420).
  pub mode: u32,
  /// Size in bytes.
  pub size: u64,
  /// Milliseconds since the epoch when the blob was last verified (pnpm writes a float64).
  pub checked_at: Option<f64>,
}

impl FileInfo {
  /// pnpm's `modeIsExecutable`: any execute bit.
  pub fn is_executable(&self) -> bool {
    self.mode & 0o111 != 0
  }
}

/// The diff a build left behind, stored under `sideEffects[cacheKey]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SideEffectsDiff {
  pub added: Option<IndexMap<String, FileInfo>>,
  pub deleted: Option<Vec<String>>,
}

/// pnpm's `PackageFilesIndex`, the decoded value of one `index.db` row.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageFilesIndex {
  /// Always `"sha512"` for rows pnpm 11+ writes.
  pub algo: String,
  pub requires_build: Option<bool>,
  /// The subset of `package.json` pnpm keeps (see [`crate::manifest`]).
  pub manifest: Option<serde_json::Value>,
  /// In-package path (`/`-separated, no `package/` prefix) → file.
  pub files: IndexMap<String, FileInfo>,
  pub side_effects: Option<IndexMap<String, SideEffectsDiff>>,
}
