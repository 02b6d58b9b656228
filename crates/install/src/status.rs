//! `store status`: which installed packages no longer match what the store recorded for
//! them. Files in `node_modules` are hardlinks to the store, so an edit there is an edit of
//! the store (pnpm's `pnpm store status`).

use pacquet_lockfile::LockfileSource;
use pacquet_store::{msgpackr, sha512_hex, IndexReader};
use rayon::prelude::*;

use crate::error::InstallError;
use crate::options::InstallOptions;
use crate::prepare::load;

/// Dep paths of the project's installed packages whose files differ from their store row
/// (changed, or missing); packages the store has no row for are not checked.
pub fn store_status(source: LockfileSource, options: InstallOptions) -> Result<Vec<String>, InstallError> {
  let (settings, plan) = load(source, options)?;
  if !settings.store.index_db().is_file() {
    return Ok(Vec::new());
  }
  let keys: Vec<&str> = plan.slots.iter().filter_map(|s| s.index_key.as_deref()).collect();
  let rows = IndexReader::open(&settings.store)?.get_many(&keys)?;
  let mut modified: Vec<String> = plan
    .slots
    .par_iter()
    .filter(|slot| slot.pkg_dir.is_dir())
    .filter_map(|slot| {
      let row = msgpackr::decode(rows.get(slot.index_key.as_deref()?)?).ok()?;
      let changed = row.files.iter().any(|(path, info)| {
        std::fs::read(slot.pkg_dir.join(path)).map_or(true, |bytes| sha512_hex(&bytes) != info.digest)
      });
      changed.then(|| slot.dep_path.clone())
    })
    .collect();
  modified.sort();
  Ok(modified)
}
