use std::collections::BTreeMap;
use std::path::PathBuf;

use pacquet_lockfile::SupportedArchitectures;

/// Which kinds of an importer's direct dependencies to install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Include {
  pub dependencies: bool,
  pub dev_dependencies: bool,
  pub optional_dependencies: bool,
}

impl Default for Include {
  fn default() -> Self {
    Include { dependencies: true, dev_dependencies: true, optional_dependencies: true }
  }
}

/// Everything an install can be told; `None` means pnpm's default.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
  /// The project (lockfile) directory. Default: the lockfile's directory, else the cwd.
  pub dir: Option<PathBuf>,
  pub store_dir: Option<PathBuf>,
  pub virtual_store_dir: Option<PathBuf>,
  /// `default` and `@scope` → URL.
  pub registries: BTreeMap<String, String>,
  /// Nerf-darted URI → `Authorization` header value.
  pub auth_header_by_uri: BTreeMap<String, String>,
  pub package_import_method: Option<String>,
  pub network_concurrency: Option<usize>,
  pub fetch_retries: Option<u32>,
  pub fetch_retry_factor: Option<f64>,
  pub fetch_retry_mintimeout: Option<u64>,
  pub fetch_retry_maxtimeout: Option<u64>,
  pub fetch_timeout: Option<u64>,
  pub offline: bool,
  pub include: Include,
  pub supported_architectures: SupportedArchitectures,
  pub virtual_store_dir_max_length: Option<usize>,
  pub verify_store_integrity: Option<bool>,
  pub strict_store_pkg_content_check: Option<bool>,
  pub user_agent: Option<String>,
  /// Default `["*"]`.
  pub hoist_pattern: Option<Vec<String>>,
  /// Default `[]`, or `["*"]` with `shamefully_hoist`.
  pub public_hoist_pattern: Option<Vec<String>>,
  pub shamefully_hoist: Option<bool>,
  /// pnpm's `allowBuilds`: `name` or `name@version` → whether its build may run.
  pub allow_builds: BTreeMap<String, bool>,
  pub dangerously_allow_all_builds: bool,
  /// Scripts will not run (pnpm's `ignoreScripts`): builds are recorded as pending.
  pub ignore_scripts: bool,
}
