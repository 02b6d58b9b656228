use std::path::PathBuf;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StoreError {
  #[error("Cannot write {path} into the store: {source}")]
  #[diagnostic(
    code(ERR_PNPM_STORE_WRITE),
    help("Check that the store directory is writable and the disk is not full.")
  )]
  Write {
    path: PathBuf,
    #[source]
    source: std::io::Error,
  },

  /// A package's own copy of a file, written on the way into the store.
  #[error("Cannot write {path}: {source}")]
  #[diagnostic(code(ERR_PNPM_LINK_FAILED), help("Check permissions and free space in node_modules."))]
  Import {
    path: PathBuf,
    #[source]
    source: std::io::Error,
  },

  #[error("Cannot open the store index {path}: {source}")]
  #[diagnostic(
    code(ERR_PNPM_STORE_DIR_STORE_INDEX_OPEN),
    help("Another program may hold the store locked, or the store directory is not writable.")
  )]
  IndexOpen {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
  },

  #[error("The store index {path} failed: {source}")]
  #[diagnostic(code(ERR_PNPM_STORE_DIR_STORE_INDEX_QUERY))]
  IndexQuery {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
  },

  #[error("The store index writer for {path} stopped unexpectedly")]
  #[diagnostic(
    code(ERR_PNPM_STORE_DIR_STORE_INDEX_WRITE),
    help("Packages it had not recorded yet are fetched again by the next install.")
  )]
  WriterFailed { path: PathBuf },
}
