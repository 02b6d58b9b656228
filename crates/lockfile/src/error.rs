use std::path::PathBuf;

/// Everything that can be wrong with a lockfile, found before any file is written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LockfileError {
  #[error("No pnpm-lock.yaml found at {path}")]
  #[diagnostic(
    code(ERR_PNPM_NO_LOCKFILE),
    help("Run `pnpm install` to create the lockfile, or pass the path of an existing one.")
  )]
  NotFound { path: PathBuf },

  #[error("Cannot read the lockfile at {path}: {source}")]
  #[diagnostic(code(ERR_PNPM_LOCKFILE_READ_ERROR))]
  Io {
    path: PathBuf,
    #[source]
    source: std::io::Error,
  },

  #[error("The lockfile at {location} is broken: {message}")]
  #[diagnostic(
    code(ERR_PNPM_BROKEN_LOCKFILE),
    help("Fix or regenerate the lockfile (`pnpm install --lockfile-only`).")
  )]
  Broken { location: String, message: String },

  #[error("Lockfile version {found} is not supported: only '9.0' lockfiles can be installed")]
  #[diagnostic(
    code(ERR_PNPM_LOCKFILE_BREAKING_CHANGE),
    help("Regenerate the lockfile with pnpm 9 or newer (`pnpm install --lockfile-only`).")
  )]
  UnsupportedVersion { found: String },

  #[error("Broken lockfile: no entry for '{missing}' in pnpm-lock.yaml (referenced by {referrer})")]
  #[diagnostic(
    code(ERR_PNPM_LOCKFILE_MISSING_DEPENDENCY),
    help("The lockfile is inconsistent. Regenerate it with `pnpm install --lockfile-only`.")
  )]
  MissingDependency { missing: String, referrer: String },

  #[error("Invalid dependency name '{name}' in {referrer}")]
  #[diagnostic(
    code(ERR_PNPM_INVALID_DEPENDENCY_NAME),
    help("A dependency name must be a valid npm package name; this lockfile tries to place a package outside node_modules.")
  )]
  InvalidDependencyName { name: String, referrer: String },

  #[error("Package '{key}' has an unsupported resolution: {detail}")]
  #[diagnostic(
    code(ERR_PNPM_UNSUPPORTED_RESOLUTION),
    help("Only registry, tarball URL, directory and link: dependencies can be installed by this version.")
  )]
  UnsupportedResolution { key: String, detail: String },
}
