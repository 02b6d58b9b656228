//! pnpm's content-addressable store, layout `v11`: blobs under `files/` named by the
//! SHA-512 of their bytes, and `index.db`, a SQLite table with one row per package.
//!
//! Byte-compatible with pnpm 11 and pnpm 12: either can read what this writes, and the
//! other way round.

pub mod at;
mod cas;
mod dir;
mod error;
mod index;
mod limits;
pub mod manifest;
pub mod msgpackr;
pub mod row;
mod sha512_batch;
mod verify;

pub use cas::{sha512_hex, BlobSink, BlobWriter};
pub use dir::{default_store_dir, StoreDir, STORE_VERSION};
pub use error::StoreError;
pub use index::{index_key, IndexReader, IndexWriter};
pub use limits::{exhausted, is_out_of_descriptors, open_file_limit, retry_out_of_descriptors, Exhausted};
pub use row::{FileInfo, PackageFilesIndex, SideEffectsDiff};
pub use sha512_batch::sha512_many;
pub use verify::{verified_blobs, VerifiedBlobs, Verifier};

/// Milliseconds since the Unix epoch, as pnpm records `checkedAt`.
pub fn now_ms() -> f64 {
  std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .map(|d| d.as_millis() as f64)
    .unwrap_or(0.0)
}
