#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FetchError {
  #[error("GET {url}: {reason} - {status}")]
  #[diagnostic(code(ERR_PNPM_FETCH), help("{hint}"))]
  HttpStatus { url: String, status: u16, reason: String, hint: String },

  #[error("GET {url} failed after {attempts} attempt(s): {message}")]
  #[diagnostic(
    code(ERR_PNPM_TARBALL_FETCH_FAILED),
    help("Check the network and the registry; `fetchRetries` and `fetchTimeout` control retries.")
  )]
  Network { url: String, attempts: u32, message: String },

  #[error("Got unexpected checksum for \"{url}\". Wanted \"{expected}\". Got \"{actual}\".")]
  #[diagnostic(
    code(ERR_PNPM_TARBALL_INTEGRITY),
    help("The tarball does not match the integrity in the lockfile. The package may have been republished, or the registry served something else. Check the lockfile entry, or regenerate it.")
  )]
  Integrity { url: String, expected: String, actual: String },

  #[error("Invalid integrity \"{integrity}\" for {package}")]
  #[diagnostic(
    code(ERR_PNPM_INVALID_INTEGRITY),
    help("The lockfile's integrity must be an SRI string such as sha512-<base64>.")
  )]
  InvalidIntegrity { integrity: String, package: String },

  #[error("Cannot unpack the tarball of {package}: {message}")]
  #[diagnostic(code(ERR_PNPM_TARBALL_EXTRACT), help("The tarball is corrupt or not a package tarball."))]
  Extract { package: String, message: String },

  #[error("The tarball of {package} unpacks to more than {limit} bytes")]
  #[diagnostic(
    code(ERR_PNPM_TARBALL_TOO_LARGE),
    help("Refusing to unpack what looks like a decompression bomb.")
  )]
  TooLarge { package: String, limit: u64 },

  #[error(transparent)]
  #[diagnostic(transparent)]
  Store(#[from] pacquet_store::StoreError),

  #[error("The operation was aborted")]
  #[diagnostic(code(ABORT_ERR))]
  Aborted,
}

impl FetchError {
  /// The error code as JS sees it; HTTP failures carry their status (`ERR_PNPM_FETCH_404`).
  pub fn error_code(&self) -> String {
    match self {
      FetchError::HttpStatus { status, .. } => format!("ERR_PNPM_FETCH_{status}"),
      other => {
        miette::Diagnostic::code(other).map(|c| c.to_string()).unwrap_or_else(|| "ERR_PNPM_FETCH".into())
      }
    }
  }
}
