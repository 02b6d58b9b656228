//! `index.db`: the package index pnpm 11 introduced. One row per package,
//! `key = "<integrity>\t<pkgId>"`, `data` = msgpackr-encoded [`crate::PackageFilesIndex`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{params_from_iter, Connection, OpenFlags};

use crate::dir::StoreDir;
use crate::error::StoreError;

/// Row key for a package fetched by integrity.
pub fn index_key(integrity: &str, pkg_id: &str) -> String {
  format!("{integrity}\t{pkg_id}")
}

/// Opens the index with pnpm's pragmas and schema, so a store we create is the store pnpm
/// would have created. `cache_kib`: this connection's page cache (pnpm's is 32,000 KiB).
fn open(store: &StoreDir, cache_kib: u32) -> Result<Connection, StoreError> {
  let path = store.index_db();
  std::fs::create_dir_all(store.root())
    .map_err(|source| StoreError::Write { path: store.root().to_path_buf(), source })?;
  let err = |source| StoreError::IndexOpen { path: path.clone(), source };
  let conn = Connection::open_with_flags(
    &path,
    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
  )
  .map_err(err)?;
  // busy_timeout first: every later statement may meet another process's lock.
  conn.busy_timeout(std::time::Duration::from_millis(5000)).map_err(err)?;
  // Switching to WAL and creating the table take locks that a concurrent opener (another
  // install, pnpm) may hold for a moment, and SQLite does not always wait for those on its
  // own: retry for as long as the busy timeout would have waited.
  let setup = format!(
    "PRAGMA journal_mode=WAL;
     PRAGMA synchronous=NORMAL;
     PRAGMA mmap_size=536870912;
     PRAGMA cache_size=-{cache_kib};
     PRAGMA temp_store=MEMORY;
     PRAGMA wal_autocheckpoint=10000;
     CREATE TABLE IF NOT EXISTS package_index (
       key TEXT PRIMARY KEY,
       data BLOB NOT NULL
     ) WITHOUT ROWID;"
  );
  let deadline = std::time::Instant::now() + std::time::Duration::from_millis(5000);
  loop {
    match conn.execute_batch(&setup) {
      Ok(()) => break,
      Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
        std::thread::sleep(std::time::Duration::from_millis(10));
      }
      Err(e) => return Err(err(e)),
    }
  }
  Ok(conn)
}

fn is_busy(e: &rusqlite::Error) -> bool {
  matches!(
    e.sqlite_error_code(),
    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
  )
}

/// Reads rows in batches.
pub struct IndexReader {
  conn: Connection,
  path: PathBuf,
}

impl IndexReader {
  pub fn open(store: &StoreDir) -> Result<Self, StoreError> {
    Ok(IndexReader { conn: open(store, 32_000)?, path: store.index_db() })
  }

  /// How many packages the index holds.
  pub fn count(&self) -> Result<usize, StoreError> {
    self
      .conn
      .query_row("SELECT COUNT(*) FROM package_index", [], |row| row.get::<_, i64>(0))
      .map(|n| n as usize)
      .map_err(|source| StoreError::IndexQuery { path: self.path.clone(), source })
  }

  /// Fetches the rows for all `keys` that exist, in a few queries rather than one per key.
  ///
  /// A key without a row of its own is also looked up in pnpm 12's `package_index_alias`
  /// table (`key` → `target`, both row keys), where the store has one: pnpm 12 records there
  /// the SHA-512 of a package's uncompressed tar as another name of the row it stored.
  pub fn get_many(&self, keys: &[&str]) -> Result<HashMap<String, Vec<u8>>, StoreError> {
    let mut rows = self.select("SELECT key, data FROM package_index WHERE key IN", keys)?;
    let missing: Vec<&str> = keys.iter().copied().filter(|k| !rows.contains_key(*k)).collect();
    if missing.is_empty() || !self.has_alias_table()? {
      return Ok(rows);
    }
    let aliases = self.select("SELECT key, target FROM package_index_alias WHERE key IN", &missing)?;
    let targets: Vec<String> = aliases.values().filter_map(|t| String::from_utf8(t.clone()).ok()).collect();
    let target_refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    let by_target = self.select("SELECT key, data FROM package_index WHERE key IN", &target_refs)?;
    for (key, target) in aliases {
      if let Some(data) = String::from_utf8(target).ok().and_then(|t| by_target.get(&t)) {
        rows.insert(key, data.clone());
      }
    }
    Ok(rows)
  }

  fn has_alias_table(&self) -> Result<bool, StoreError> {
    self
      .conn
      .query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'package_index_alias'",
        [],
        |r| r.get::<_, i64>(0),
      )
      .map(|n| n > 0)
      .map_err(|source| StoreError::IndexQuery { path: self.path.clone(), source })
  }

  /// Runs `<select> (?, ?, …)` over `keys` in chunks; the second column is read as bytes.
  fn select(&self, select: &str, keys: &[&str]) -> Result<HashMap<String, Vec<u8>>, StoreError> {
    let err = |source| StoreError::IndexQuery { path: self.path.clone(), source };
    let mut rows = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
      let placeholders = vec!["?"; chunk.len()].join(",");
      let mut stmt = self.conn.prepare_cached(&format!("{select} ({placeholders})")).map_err(err)?;
      let mut result = stmt.query(params_from_iter(chunk.iter())).map_err(err)?;
      while let Some(row) = result.next().map_err(err)? {
        let value = match row.get_ref(1).map_err(err)? {
          rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => t.to_vec(),
          _ => continue,
        };
        rows.insert(row.get::<_, String>(0).map_err(err)?, value);
      }
    }
    Ok(rows)
  }
}

enum Message {
  Put(String, Vec<u8>),
  Delete(String),
}

/// The single writer of an install: a thread that owns the connection and commits rows in
/// batches, so producers never wait on SQLite.
pub struct IndexWriter {
  path: PathBuf,
  tx: Option<mpsc::Sender<Message>>,
  /// The thread's result, sent once every queued row is committed (before it closes the
  /// connection). In a mutex only to make the writer `Sync`: `finish` takes it by `&mut`.
  done: std::sync::Mutex<mpsc::Receiver<Result<usize, StoreError>>>,
  thread: Option<JoinHandle<()>>,
}

impl IndexWriter {
  pub fn open(store: &StoreDir) -> Result<Self, StoreError> {
    // The writer writes each row once: pnpm's large page cache would end up holding the whole
    // database (10 MiB for alotta, at the end of a cold install, when memory peaks). 2 MiB
    // keeps the B-tree's inner pages.
    let conn = open(store, 2048)?;
    let path = store.index_db();
    let (tx, rx) = mpsc::channel::<Message>();
    let (done_tx, done) = mpsc::channel();
    let thread = std::thread::Builder::new()
      .name("pacquet-index-writer".into())
      .spawn(move || {
        let mut conn = conn;
        let _ = done_tx.send(write_loop(&mut conn, path, rx));
        // Closing the last connection checkpoints the WAL into index.db (~40 ms for
        // alotta): the install links meanwhile, and waits for it only when dropping this.
        drop(conn);
      })
      .map_err(|source| StoreError::Write { path: store.index_db(), source })?;
    Ok(IndexWriter { path: store.index_db(), tx: Some(tx), done: done.into(), thread: Some(thread) })
  }

  /// Queues a row. Call only once every blob the row names is in place.
  pub fn put(&self, key: String, data: Vec<u8>) {
    if let Some(tx) = &self.tx {
      let _ = tx.send(Message::Put(key, data));
    }
  }

  /// Queues the removal of a row whose files turned out to be damaged.
  pub fn delete(&self, key: String) {
    if let Some(tx) = &self.tx {
      let _ = tx.send(Message::Delete(key));
    }
  }

  /// Waits until every queued row is committed and returns how many were written. The
  /// connection is closed in the background; dropping the writer waits for that.
  pub fn finish(&mut self) -> Result<usize, StoreError> {
    if self.tx.take().is_none() {
      return Ok(0);
    }
    // The writer died: rows it had not committed are lost (their blobs stay, harmless), and
    // the caller must not report success.
    let done = self.done.get_mut().map_err(|_| StoreError::WriterFailed { path: self.path.clone() })?;
    done.recv().unwrap_or_else(|_| Err(StoreError::WriterFailed { path: self.path.clone() }))
  }
}

impl Drop for IndexWriter {
  fn drop(&mut self) {
    self.tx.take();
    if let Some(thread) = self.thread.take() {
      let _ = thread.join();
    }
  }
}

fn write_loop(
  conn: &mut Connection,
  path: PathBuf,
  rx: mpsc::Receiver<Message>,
) -> Result<usize, StoreError> {
  let err = |source| StoreError::IndexQuery { path: path.clone(), source };
  let mut written = 0;
  let mut first_error = None;
  while let Ok(first) = rx.recv() {
    // Rows trickle in as packages finish; gathering them for a few milliseconds turns
    // hundreds of one-row transactions (each a WAL commit) into a few dozen.
    let mut batch = vec![first];
    let until = std::time::Instant::now() + std::time::Duration::from_millis(20);
    while batch.len() < 256 {
      match rx.recv_timeout(until.saturating_duration_since(std::time::Instant::now())) {
        Ok(m) => batch.push(m),
        Err(_) => break,
      }
    }
    let result = (|| -> Result<usize, rusqlite::Error> {
      let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
      let mut n = 0;
      {
        let mut put = tx.prepare_cached("INSERT OR REPLACE INTO package_index (key, data) VALUES (?, ?)")?;
        let mut delete = tx.prepare_cached("DELETE FROM package_index WHERE key = ?")?;
        for message in &batch {
          match message {
            Message::Put(key, data) => n += put.execute(rusqlite::params![key, data])?,
            Message::Delete(key) => {
              delete.execute([key])?;
            }
          }
        }
      }
      tx.commit()?;
      Ok(n)
    })();
    match result {
      Ok(n) => written += n,
      // Keep draining so producers never block; report the first failure at the end.
      Err(e) if first_error.is_none() => first_error = Some(err(e)),
      Err(_) => {}
    }
  }
  match first_error {
    Some(e) => Err(e),
    None => Ok(written),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn rows_written_are_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreDir::new(dir.path());
    let mut writer = IndexWriter::open(&store).unwrap();
    writer.put(index_key("sha512-x", "a@1.0.0"), vec![1, 2, 3]);
    writer.put(index_key("sha512-y", "b@1.0.0"), vec![4]);
    assert_eq!(writer.finish().unwrap(), 2);
    drop(writer);
    let reader = IndexReader::open(&store).unwrap();
    let rows = reader.get_many(&["sha512-x\ta@1.0.0", "sha512-z\tc@1.0.0"]).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows["sha512-x\ta@1.0.0"], vec![1, 2, 3]);
    drop(reader);

    // pnpm 12's alias table names a row under a second key.
    let conn = rusqlite::Connection::open(store.index_db()).unwrap();
    conn
      .execute_batch(
        "CREATE TABLE package_index_alias (key TEXT PRIMARY KEY, target TEXT NOT NULL) WITHOUT ROWID;
         INSERT INTO package_index_alias VALUES ('sha512-tar\ta@1.0.0', 'sha512-x\ta@1.0.0');",
      )
      .unwrap();
    let reader = IndexReader::open(&store).unwrap();
    let rows = reader.get_many(&["sha512-tar\ta@1.0.0", "sha512-y\tb@1.0.0"]).unwrap();
    assert_eq!(rows["sha512-tar\ta@1.0.0"], vec![1, 2, 3]);
    assert_eq!(rows["sha512-y\tb@1.0.0"], vec![4]);
  }
}
