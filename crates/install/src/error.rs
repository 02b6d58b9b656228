use std::path::PathBuf;

use miette::Diagnostic;
use pacquet_store::Exhausted;

/// Every way an install can fail. Each carries a stable `ERR_PNPM_*` code and a hint.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum InstallError {
  #[error(transparent)]
  #[diagnostic(transparent)]
  Lockfile(#[from] pacquet_lockfile::LockfileError),

  #[error(transparent)]
  #[diagnostic(transparent)]
  Fetch(#[from] pacquet_fetch::FetchError),

  #[error(transparent)]
  #[diagnostic(transparent)]
  Store(#[from] pacquet_store::StoreError),

  #[error(transparent)]
  #[diagnostic(transparent)]
  Link(#[from] pacquet_link::LinkError),

  #[error("No registry is configured")]
  #[diagnostic(
    code(ERR_PNPM_NO_REGISTRY),
    help(
      "Pass `registries: {{ default: <url> }}`, set `registry=<url>` in .npmrc, or set npm_config_registry."
    )
  )]
  NoRegistry,

  #[error("Cannot find a store directory: neither storeDir, PNPM_HOME, XDG_DATA_HOME nor HOME is set")]
  #[diagnostic(code(ERR_PNPM_NO_STORE_DIR), help("Pass `storeDir`."))]
  NoStoreDir,

  #[error("Invalid option {name}: {message}")]
  #[diagnostic(code(ERR_PNPM_INVALID_OPTION), help("See the option's documentation in index.d.ts."))]
  InvalidOption { name: &'static str, message: String },

  #[error("Failed to resolve {package} from the store: the store has no copy and the install is offline")]
  #[diagnostic(
    code(ERR_PNPM_NO_OFFLINE_TARBALL),
    help("Run the install once online (or with a store that holds the package), or drop `offline`.")
  )]
  NoOfflineTarball { package: String },

  #[error("Package {package} has a resolution this version cannot install ({kind})")]
  #[diagnostic(
    code(ERR_PNPM_UNSUPPORTED_RESOLUTION),
    help("Git dependencies are not supported yet; use pnpm for this project.")
  )]
  UnsupportedResolution { package: String, kind: &'static str },

  #[error("The package in the store under {key} is {found}, not {expected}")]
  #[diagnostic(
    code(ERR_PNPM_UNEXPECTED_PKG_CONTENT_IN_STORE),
    help("The store holds another package under this key. Run `pnpm store prune`, or remove the store, and install again.")
  )]
  UnexpectedPkgContent { key: String, expected: String, found: String },

  #[error("Cannot read the local package {package} at {path}: {source}")]
  #[diagnostic(
    code(ERR_PNPM_LOCAL_PACKAGE_READ),
    help("Check that the directory or tarball referenced by the lockfile exists.")
  )]
  LocalPackage {
    package: String,
    path: PathBuf,
    #[source]
    source: std::io::Error,
  },

  #[error("Cannot write {path}: {source}")]
  #[diagnostic(code(ERR_PNPM_FS_WRITE), help("Check permissions and free space."))]
  Fs {
    path: PathBuf,
    #[source]
    source: std::io::Error,
  },

  #[error("An internal task failed: {0}")]
  #[diagnostic(
    code(ERR_PNPM_INTERNAL),
    help("This is a bug in @pacquet/native; please report it with the message.")
  )]
  Internal(String),

  #[error("The operation was aborted")]
  #[diagnostic(code(ABORT_ERR))]
  Aborted,
}

impl InstallError {
  /// The code JS sees as `err.code`.
  pub fn error_code(&self) -> String {
    // A full disk or descriptor table is what the user must act on, whichever step met it.
    match self.exhausted() {
      Some(Exhausted::DiskSpace) => return "ERR_PNPM_ENOSPC".into(),
      Some(Exhausted::FileDescriptors) => return "ERR_PNPM_EMFILE".into(),
      None => {}
    }
    match self {
      InstallError::Fetch(e) => e.error_code(),
      other => other.code_str(),
    }
  }

  fn code_str(&self) -> String {
    Diagnostic::code(self).map(|c| c.to_string()).unwrap_or_else(|| "ERR_PNPM_INTERNAL".into())
  }

  /// The hint JS sees as `err.hint` (may be empty).
  pub fn hint(&self) -> String {
    match self.exhausted() {
      Some(Exhausted::DiskSpace) => return "The disk is full. Free some space (or point storeDir at a disk with more room) and install again; the store is left consistent.".into(),
      Some(Exhausted::FileDescriptors) => return "Too many open files. Raise the limit (`ulimit -n`) or lower networkConcurrency, and install again.".into(),
      None => {}
    }
    self.help().map(|h| h.to_string()).unwrap_or_default()
  }

  fn exhausted(&self) -> Option<Exhausted> {
    match self {
      InstallError::Aborted => None,
      other => pacquet_store::exhausted(other),
    }
  }

  pub fn is_aborted(&self) -> bool {
    matches!(self, InstallError::Aborted | InstallError::Fetch(pacquet_fetch::FetchError::Aborted))
  }
}
