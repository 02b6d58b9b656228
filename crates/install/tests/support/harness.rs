//! Running installs in tests and looking at what they left in the store.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pacquet_install::{
  install, Event, InstallError, InstallOptions, InstallSummary, LockfileSource, Reporter,
};
use tokio_util::sync::CancellationToken;

use super::Registry;

#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Event>>);

impl Reporter for Recorder {
  fn emit(&self, event: Event) {
    self.0.lock().unwrap().push(event);
  }
}

/// A store in `store`, the registry as default, and retries fast enough for tests.
pub fn options(registry: &Registry, store: &Path) -> InstallOptions {
  let mut o = InstallOptions {
    store_dir: Some(store.to_path_buf()),
    fetch_retry_mintimeout: Some(5),
    fetch_retry_maxtimeout: Some(20),
    ..Default::default()
  };
  o.registries.insert("default".into(), registry.url.clone());
  o
}

pub async fn run(dir: &Path, options: InstallOptions) -> (Result<InstallSummary, InstallError>, Vec<Event>) {
  let recorder = Arc::new(Recorder::default());
  let result =
    install(LockfileSource::Path(dir.to_path_buf()), options, recorder.clone(), CancellationToken::new())
      .await;
  let events = recorder.0.lock().unwrap().clone();
  (result, events)
}

pub fn code(e: &InstallError) -> String {
  e.error_code()
}

pub fn row_count(store: &Path) -> usize {
  let dir = pacquet_store::StoreDir::new(store);
  pacquet_store::IndexReader::open(&dir).unwrap().count().unwrap()
}

/// The `pnpm:request-retry` events, as `(attempt, http status, code)`.
pub fn retries(events: &[Event]) -> Vec<(u32, Option<u16>, Option<String>)> {
  events
    .iter()
    .filter_map(|e| match e {
      Event::RequestRetry { attempt, http_status, code, .. } => Some((*attempt, *http_status, code.clone())),
      _ => None,
    })
    .collect()
}

/// Every file below `dir`.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
  let mut out = Vec::new();
  let mut stack = vec![dir.to_path_buf()];
  while let Some(d) = stack.pop() {
    let Ok(entries) = std::fs::read_dir(&d) else { continue };
    for entry in entries.flatten() {
      if entry.file_type().unwrap().is_dir() {
        stack.push(entry.path());
      } else {
        out.push(entry.path());
      }
    }
  }
  out
}

/// The store holds exactly the rows `keys` and nothing else: every blob under `files/` is
/// named by one of them, and no temporary file is left anywhere.
pub fn assert_store_holds_only(store: &Path, keys: &[&str]) {
  let dir = pacquet_store::StoreDir::new(store);
  assert_eq!(row_count(store), keys.len(), "rows in index.db");
  let rows = pacquet_store::IndexReader::open(&dir).unwrap().get_many(keys).unwrap();
  let mut named = HashSet::new();
  for key in keys {
    let row =
      pacquet_store::msgpackr::decode(rows.get(*key).unwrap_or_else(|| panic!("no row {key}"))).unwrap();
    for info in row.files.values() {
      named.insert(dir.blob_path(&info.digest, info.is_executable()));
    }
  }
  let blobs: HashSet<PathBuf> = files_below(&store.join("v11/files")).into_iter().collect();
  let stray: Vec<_> = blobs.difference(&named).collect();
  assert!(stray.is_empty(), "blobs no row names, or temporary files: {stray:?}");
  let temps: Vec<_> =
    files_below(store).into_iter().filter(|p| p.to_string_lossy().ends_with(".tmp")).collect();
  assert!(temps.is_empty(), "temporary files left: {temps:?}");
}

/// The `index.db` key of a registry package whose tarball is `tgz`.
pub fn key_of(tgz: &[u8], name: &str, version: &str) -> String {
  pacquet_store::index_key(&super::integrity(tgz), &format!("{name}@{version}"))
}
