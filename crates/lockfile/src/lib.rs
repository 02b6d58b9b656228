//! pnpm's `pnpm-lock.yaml` (format v9): typed model, reading, and the naming rules that
//! derive store keys and virtual-store slot names from lockfile keys.
//!
//! Everything here is a pure function of its input: no network, and the file system only
//! to read the lockfile itself.

mod dep_path;
mod error;
mod model;
mod pieces;
mod platform;
mod read;

pub use dep_path::{dep_path_to_filename, parse_pkg_key, ref_to_dep_path, remove_peer_suffix, PkgKey};
pub use error::LockfileError;
pub use model::{
  DependencyRef, Importer, ImporterDependency, Lockfile, PackageInfo, Resolution, ResolutionFields, Snapshot,
};
pub use platform::{is_platform_compatible, Host, SupportedArchitectures};
pub use read::{
  lockfile_from_value, parse_lockfile, read_lockfile, read_lockfile_text, LockfileSource, LOCKFILE_NAME,
};
