//! Placing packages into `node_modules`: importing a package's files from the store into
//! its slot (reflink, hardlink or copy), and the relative symlinks between packages.

mod error;
mod import;
mod symlink;

pub use error::LinkError;
pub use import::{ImportMethod, Importer, PackageFile};
pub use symlink::{relative_path, symlink_dir};
