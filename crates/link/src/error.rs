use std::path::PathBuf;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LinkError {
  #[error("Cannot import {from} to {to} ({method}): {source}")]
  #[diagnostic(
    code(ERR_PNPM_LINK_FAILED),
    help("Check permissions and free space in node_modules and the store.")
  )]
  Import {
    from: PathBuf,
    to: PathBuf,
    method: &'static str,
    #[source]
    source: std::io::Error,
  },

  #[error("Cannot create the directory {path}: {source}")]
  #[diagnostic(code(ERR_PNPM_LINK_FAILED), help("Check permissions and free space in node_modules."))]
  Mkdir {
    path: PathBuf,
    #[source]
    source: std::io::Error,
  },

  #[error("Cannot create a symlink at {link} to {target}: {source}")]
  #[diagnostic(
    code(ERR_PNPM_SYMLINK_FAILED),
    help("Check permissions in node_modules; on Windows, enable Developer Mode for symlinks.")
  )]
  Symlink {
    link: PathBuf,
    target: PathBuf,
    #[source]
    source: std::io::Error,
  },
}
