//! Everything decided before a file is written: settings from options and npm config, the
//! repeat-install shortcut, the lockfile and its plan, and what the previous install left
//! (`.modules.yaml`, `lock.yaml`) that can be kept.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pacquet_fetch::{AuthHeaders, FetchError, Fetcher, FetcherOptions, Registries, RetryPolicy};
use pacquet_link::ImportMethod;
use pacquet_lockfile::{
  dep_path_to_filename, lockfile_from_value, parse_lockfile, read_lockfile_text, remove_peer_suffix, Host,
  Lockfile, LockfileSource,
};
use pacquet_store::{default_store_dir, StoreDir};

use crate::config::read_npm_config;
use crate::error::InstallError;
use crate::options::{Include, InstallOptions};
use crate::plan::{normalize, plan, Plan, PlanInput, Source};
use crate::state::{self, Layout, RepeatState};

/// Options resolved against the project and npm configuration.
pub struct Settings {
  pub lockfile_dir: PathBuf,
  pub virtual_store_dir: PathBuf,
  /// The root importer's `node_modules`.
  pub modules_dir: PathBuf,
  pub store: StoreDir,
  pub registries: Registries,
  pub has_registry: bool,
  pub fetcher_options: FetcherOptions,
  pub import_method: ImportMethod,
  pub verify: bool,
  pub strict_content_check: bool,
  pub offline: bool,
  pub include: Include,
  pub max_length: usize,
  pub hoist_pattern: Vec<String>,
  pub public_hoist_pattern: Vec<String>,
  pub build_policy: crate::builds::BuildPolicy,
  pub ignore_scripts: bool,
  options: InstallOptions,
}

impl Settings {
  pub fn layout(&self) -> Layout<'_> {
    Layout {
      store_dir: self.store.root(),
      virtual_store_dir: &self.virtual_store_dir,
      modules_dir: &self.modules_dir,
      hoist_pattern: &self.hoist_pattern,
      public_hoist_pattern: &self.public_hoist_pattern,
      virtual_store_dir_max_length: self.max_length,
    }
  }

  /// Everything that shapes `node_modules`, as one comparable string.
  fn key(&self) -> String {
    let o = &self.options;
    format!(
      "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{:?}|{:?}|{:?}|{}|{}",
      self.store.root(),
      self.virtual_store_dir,
      self.include,
      o.package_import_method,
      o.supported_architectures,
      self.max_length,
      o.offline,
      self.hoist_pattern,
      self.public_hoist_pattern,
      o.allow_builds,
      o.dangerously_allow_all_builds,
      o.ignore_scripts,
    )
  }
}

/// The lockfile as given, kept as text when it came from a file (it becomes `lock.yaml`).
pub struct WantedLockfile {
  pub lockfile: Lockfile,
  pub text: Option<String>,
}

pub struct Work {
  pub settings: Settings,
  pub wanted: WantedLockfile,
  pub plan: Plan,
  /// Indexes into `plan.slots` of slots the previous install left complete and unchanged.
  pub up_to_date: HashSet<usize>,
  /// Slots of the previous install that the lockfile no longer has.
  pub removed_slots: Vec<PathBuf>,
  /// Importer links that the lockfile no longer has.
  pub stale_links: Vec<PathBuf>,
  /// `node_modules` of importers the lockfile no longer has (their links are in `stale_links`).
  pub removed_importers: Vec<PathBuf>,
  pub pruned_at: Option<String>,
  /// What the previous install hoisted (its links are removed if no longer wanted).
  pub previous_hoisted: Option<state::HoistedDependencies>,
  /// Builds the previous install left pending (pnpm keeps them until they run).
  pub previous_pending: Vec<String>,
  /// Builds the previous install ignored (pnpm keeps them until they are allowed or denied).
  pub previous_ignored: Vec<String>,
  /// The repeat-install proof to write when this install succeeds.
  pub repeat: Option<(String, String)>,
  /// Set when the store had no index: being set up meanwhile, nothing to look up.
  pub new_store: Option<NewStore>,
}

pub enum Prepared {
  /// `node_modules` already holds exactly this lockfile with these settings.
  UpToDate(Box<Settings>),
  Install(Box<Work>),
}

/// The lockfile's text (when it is a file), where it is, and the project directory.
fn locate(
  source: &LockfileSource,
  options: &InstallOptions,
) -> Result<(Option<String>, Option<PathBuf>, PathBuf), InstallError> {
  let cwd = std::env::current_dir().map_err(|source| InstallError::Fs { path: ".".into(), source })?;
  let (text, file) = match source {
    LockfileSource::Path(path) => {
      let (text, file) = read_lockfile_text(&cwd.join(path))?;
      (Some(text), Some(file))
    }
    LockfileSource::Value(_) => (None, None),
  };
  let lockfile_dir = match (&options.dir, &file) {
    (Some(dir), _) => normalize(&cwd.join(dir)),
    (None, Some(file)) => normalize(file.parent().unwrap_or(Path::new("."))),
    (None, None) => cwd,
  };
  Ok((text, file, lockfile_dir))
}

/// The settings and the plan, with nothing written (for commands that only look).
pub fn load(source: LockfileSource, options: InstallOptions) -> Result<(Settings, Plan), InstallError> {
  let (text, file, lockfile_dir) = locate(&source, &options)?;
  let settings = settings(lockfile_dir, options)?;
  let (_, plan) = parse_and_plan(source, text.as_deref(), file.as_deref(), &settings)?;
  Ok((settings, plan))
}

fn parse_and_plan(
  source: LockfileSource,
  text: Option<&str>,
  file: Option<&Path>,
  settings: &Settings,
) -> Result<(Lockfile, Plan), InstallError> {
  let lockfile = match (source, text, file) {
    (LockfileSource::Value(value), _, _) => lockfile_from_value(value)?,
    (_, Some(text), Some(file)) => parse_lockfile(text, file)?,
    _ => return Err(InstallError::Internal("lockfile text missing".into())),
  };
  let plan = plan(&PlanInput {
    lockfile: &lockfile,
    lockfile_dir: &settings.lockfile_dir,
    virtual_store_dir: &settings.virtual_store_dir,
    registries: &settings.registries,
    include: settings.include,
    host: &Host::current(),
    supported: &settings.options.supported_architectures,
    max_length: settings.max_length,
  })?;
  Ok((lockfile, plan))
}

/// Where the store of a project is (with its `v11`), as an install would choose it.
pub fn store_path(options: InstallOptions) -> Result<PathBuf, InstallError> {
  let cwd = std::env::current_dir().map_err(|source| InstallError::Fs { path: ".".into(), source })?;
  let dir = normalize(&cwd.join(options.dir.clone().unwrap_or_default()));
  Ok(settings(dir, options)?.store.root().to_path_buf())
}

pub fn prepare(source: LockfileSource, options: InstallOptions) -> Result<Prepared, InstallError> {
  let (text, file, lockfile_dir) = locate(&source, &options)?;
  let settings = settings(lockfile_dir, options)?;

  // The shortcut: same lockfile bytes, same settings, and everything still in place.
  let repeat = text.as_ref().map(|t| (state::lockfile_hash(t.as_bytes()), settings.key()));
  if let Some((hash, key)) = &repeat {
    if let Some(s) = state::read_repeat_state(&settings.modules_dir) {
      if &s.lockfile_hash == hash && &s.settings == key && state::repeat_state_holds(&s) {
        return Ok(Prepared::UpToDate(Box::new(settings)));
      }
    }
  }
  // From here on node_modules may change: the old proof must not outlive this install.
  let _ = std::fs::remove_file(state::repeat_state_path(&settings.modules_dir));

  let new_store = NewStore::start(&settings);
  let (lockfile, plan) = parse_and_plan(source, text.as_deref(), file.as_deref(), &settings)?;
  if !settings.has_registry && !settings.offline {
    let needs_registry =
      plan.slots.iter().any(|s| matches!(&s.source, Source::Remote { url, .. } if !url.contains("://")));
    if needs_registry {
      return Err(InstallError::NoRegistry);
    }
  }
  // The lockfile is good and can be fetched: the store may be created now (a broken lockfile
  // leaves no trace there).
  let new_store = new_store.map(NewStore::go);

  // What the previous install left: kept if laid out the same way, else purged like pnpm does.
  let modules = state::read_modules_manifest(&settings.modules_dir);
  let mut current = None;
  let mut pruned_at = None;
  let mut previous_hoisted = None;
  let mut previous_pending = Vec::new();
  let mut previous_ignored = Vec::new();
  match &modules {
    Some(m) if settings.layout().matches(m) => {
      pruned_at = m.pruned_at.clone();
      previous_hoisted = m.hoisted_dependencies.clone();
      previous_pending = m.pending_builds.clone().unwrap_or_default();
      previous_ignored = m.ignored_builds.clone().unwrap_or_default();
      current = std::fs::read_to_string(settings.virtual_store_dir.join(state::CURRENT_LOCKFILE))
        .ok()
        .and_then(|t| parse_lockfile(&t, &settings.virtual_store_dir.join(state::CURRENT_LOCKFILE)).ok());
    }
    Some(_) => purge(&settings)?,
    None => {}
  }
  let (up_to_date, removed_slots, stale_links, removed_importers) = match &current {
    Some(current) => diff(&settings, &lockfile, current, &plan),
    None => Default::default(),
  };
  Ok(Prepared::Install(Box::new(Work {
    settings,
    wanted: WantedLockfile { lockfile, text },
    plan,
    up_to_date,
    removed_slots,
    stale_links,
    removed_importers,
    pruned_at,
    previous_hoisted,
    previous_pending,
    previous_ignored,
    repeat,
    new_store,
  })))
}

/// Creates the store's directories (see [`StoreDir::init`]).
pub(crate) fn init_store(store: &StoreDir) -> Result<(), InstallError> {
  store.init().map_err(|source| InstallError::Fs { path: store.root().to_path_buf(), source })
}

/// A store without `index.db` holds no package (pnpm writes the index with the first one), so
/// there is nothing to look up. Its directories and the HTTP client are made on a thread of
/// their own while the lockfile is parsed and planned: on a first install the first download
/// starts ~15 ms sooner (alotta).
pub struct NewStore {
  thread: std::thread::JoinHandle<NewStoreReady>,
  go: std::sync::mpsc::Sender<()>,
}

/// What the thread made: the store's directories (or why not), and the client unless the
/// install is offline.
pub struct NewStoreReady {
  pub init: Result<(), InstallError>,
  pub fetcher: Option<Result<Fetcher, FetchError>>,
}

impl NewStore {
  fn start(settings: &Settings) -> Option<Self> {
    if settings.store.index_db().exists() {
      return None;
    }
    let (go, started) = std::sync::mpsc::channel::<()>();
    let store = settings.store.clone();
    let options = (!settings.offline).then(|| settings.fetcher_options.clone());
    let thread = std::thread::Builder::new()
      .name("pacquet-new-store".into())
      .spawn(move || {
        let fetcher = options.map(|o| crate::pipeline::new_fetcher(&o));
        // Only once the lockfile parsed (`go`); a failed install drops the sender instead.
        let init = match started.recv() {
          Ok(()) => init_store(&store),
          Err(_) => Ok(()),
        };
        NewStoreReady { init, fetcher }
      })
      .ok()?;
    Some(NewStore { thread, go })
  }

  fn go(self) -> Self {
    let _ = self.go.send(());
    self
  }

  /// Waits for the thread.
  pub fn ready(self) -> Result<NewStoreReady, InstallError> {
    self.thread.join().map_err(|_| InstallError::Internal("setting up the new store panicked".into()))
  }
}

fn settings(lockfile_dir: PathBuf, options: InstallOptions) -> Result<Settings, InstallError> {
  let virtual_store_dir = match &options.virtual_store_dir {
    Some(d) => normalize(&lockfile_dir.join(d)),
    None => lockfile_dir.join("node_modules").join(".pnpm"),
  };
  let store_dir = match &options.store_dir {
    Some(d) => normalize(&lockfile_dir.join(d)),
    None => same_volume_store(&lockfile_dir, default_store_dir().ok_or(InstallError::NoStoreDir)?),
  };
  let npm = read_npm_config(&lockfile_dir);
  let mut registries = npm.registries;
  registries.extend(options.registries.clone());
  let mut auth = npm.auth_header_by_uri;
  auth.extend(options.auth_header_by_uri.clone());
  // Only needed if something is fetched; an offline or all-local install runs without one.
  let default_registry = registries.get("default").cloned();
  let scoped = registries.iter().filter(|(k, _)| k.starts_with('@')).map(|(k, v)| (k.clone(), v.clone()));
  let registries = Registries::new(default_registry.as_deref().unwrap_or(""), scoped);
  let import_method = match options.package_import_method.as_deref() {
    None => ImportMethod::Auto,
    Some(m) => ImportMethod::parse(m).ok_or_else(|| InstallError::InvalidOption {
      name: "packageImportMethod",
      message: format!("'{m}' is not one of auto, hardlink, clone, copy, clone-or-copy"),
    })?,
  };
  let defaults = RetryPolicy::default();
  let fetcher_options = FetcherOptions {
    network_concurrency: options.network_concurrency.unwrap_or_else(default_network_concurrency),
    retry: RetryPolicy {
      retries: options.fetch_retries.unwrap_or(defaults.retries),
      factor: options.fetch_retry_factor.unwrap_or(defaults.factor),
      min_timeout: options.fetch_retry_mintimeout.map(Duration::from_millis).unwrap_or(defaults.min_timeout),
      max_timeout: options.fetch_retry_maxtimeout.map(Duration::from_millis).unwrap_or(defaults.max_timeout),
    },
    fetch_timeout: Duration::from_millis(options.fetch_timeout.unwrap_or(60_000)),
    auth: AuthHeaders::new(auth),
    user_agent: options
      .user_agent
      .clone()
      .unwrap_or_else(|| format!("pacquet-native/{} (pnpm-compatible)", env!("CARGO_PKG_VERSION"))),
    // A few dozen typical tarballs, or the largest ones whole: enough to keep every core
    // unpacking while the rest wait on the network instead of in memory.
    max_buffered_bytes: 16 << 20,
  };
  let public_hoist_pattern = match (&options.public_hoist_pattern, options.shamefully_hoist) {
    (Some(p), _) => p.clone(),
    (None, Some(true)) => vec!["*".to_string()],
    (None, _) => vec![],
  };
  Ok(Settings {
    modules_dir: lockfile_dir.join("node_modules"),
    virtual_store_dir,
    store: StoreDir::new(store_dir),
    registries,
    has_registry: default_registry.is_some(),
    fetcher_options,
    import_method,
    verify: options.verify_store_integrity.unwrap_or(true),
    strict_content_check: options.strict_store_pkg_content_check.unwrap_or(true),
    offline: options.offline,
    include: options.include,
    max_length: options.virtual_store_dir_max_length.unwrap_or(if cfg!(windows) { 60 } else { 120 }),
    hoist_pattern: options.hoist_pattern.clone().unwrap_or_else(|| vec!["*".to_string()]),
    public_hoist_pattern,
    build_policy: crate::builds::BuildPolicy {
      allow: options.allow_builds.clone(),
      allow_all: options.dangerously_allow_all_builds,
    },
    ignore_scripts: options.ignore_scripts,
    lockfile_dir,
    options,
  })
}

/// pnpm's rule for an unconfigured store: files are hardlinked from the store, and hardlinks
/// cannot cross file systems, so a project on another file system than the default store uses
/// `<mount point of the project>/.pnpm-store` instead.
fn same_volume_store(project: &Path, default: PathBuf) -> PathBuf {
  #[cfg(unix)]
  {
    use std::os::unix::fs::MetadataExt;
    // The store may not exist yet: compare with its closest existing ancestor.
    let device = |path: &Path| path.ancestors().find_map(|p| std::fs::metadata(p).ok()).map(|m| m.dev());
    let (Some(project_dev), Some(store_dev)) = (device(project), device(&default)) else { return default };
    if project_dev == store_dev {
      return default;
    }
    let mut mount = project.ancestors().find(|p| p.exists()).unwrap_or(project);
    while let Some(parent) = mount.parent() {
      if device(parent) != Some(project_dev) {
        break;
      }
      mount = parent;
    }
    mount.join(".pnpm-store")
  }
  #[cfg(not(unix))]
  {
    let _ = project;
    default
  }
}

/// pnpm's default: `clamp(3 × (cpus − 1), 64, 96)`.
fn default_network_concurrency() -> usize {
  let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
  (3 * cpus.saturating_sub(1)).clamp(64, 96)
}

/// A `node_modules` laid out with other settings cannot be patched: remove it, as pnpm does.
fn purge(settings: &Settings) -> Result<(), InstallError> {
  let dir = &settings.modules_dir;
  // Only ever the project's own node_modules.
  if dir.parent() != Some(settings.lockfile_dir.as_path())
    || dir.file_name().is_none_or(|n| n != "node_modules")
  {
    return Ok(());
  }
  match std::fs::remove_dir_all(dir) {
    Ok(()) => Ok(()),
    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
    Err(source) => Err(InstallError::Fs { path: dir.clone(), source }),
  }
}

/// Compares the wanted lockfile with the one the last install recorded: slots whose snapshot
/// and package are unchanged (and whose import completed) are kept as they are.
fn diff(
  settings: &Settings,
  wanted: &Lockfile,
  current: &Lockfile,
  plan: &Plan,
) -> (HashSet<usize>, Vec<PathBuf>, Vec<PathBuf>, Vec<PathBuf>) {
  use rayon::prelude::*;
  let up_to_date: HashSet<usize> = plan
    .slots
    .par_iter()
    .enumerate()
    .filter(|(_, slot)| {
      let key = remove_peer_suffix(&slot.dep_path);
      let same_snapshot = match (wanted.snapshots.get(&slot.dep_path), current.snapshots.get(&slot.dep_path))
      {
        (Some(a), Some(b)) => {
          a.dependencies == b.dependencies && a.optional_dependencies == b.optional_dependencies
        }
        _ => false,
      };
      let same_package = match (wanted.packages.get(key), current.packages.get(key)) {
        (Some(a), Some(b)) => a.resolution.classify() == b.resolution.classify(),
        _ => false,
      };
      // pnpm imports directory packages afresh on every install.
      let local = matches!(slot.source, Source::Directory { .. });
      !local && same_snapshot && same_package && slot.pkg_dir.join("package.json").is_file()
    })
    .map(|(i, _)| i)
    .collect();

  let wanted_slots: HashSet<&Path> = plan.slots.iter().map(|s| s.slot_dir.as_path()).collect();
  let removed_slots = current
    .snapshots
    .keys()
    .map(|dep_path| settings.virtual_store_dir.join(dep_path_to_filename(dep_path, settings.max_length)))
    .filter(|dir| !wanted_slots.contains(dir.as_path()))
    .collect();

  let wanted_links: HashSet<PathBuf> =
    plan.importers.iter().flat_map(|i| i.links.iter().map(|(alias, _)| i.modules_dir.join(alias))).collect();
  let mut stale_links = Vec::new();
  let mut removed_importers = Vec::new();
  for (id, importer) in &current.importers {
    let modules_dir = normalize(&settings.lockfile_dir.join(id)).join("node_modules");
    if !wanted.importers.contains_key(id) {
      removed_importers.push(modules_dir.clone());
    }
    for alias in importer
      .dependencies
      .keys()
      .chain(importer.dev_dependencies.keys())
      .chain(importer.optional_dependencies.keys())
    {
      let link = modules_dir.join(alias);
      if !wanted_links.contains(&link) {
        stale_links.push(link);
      }
    }
  }
  (up_to_date, removed_slots, stale_links, removed_importers)
}

pub fn repeat_state(plan: &Plan, hash: String, key: String) -> RepeatState {
  let markers = plan.slots.iter().map(|s| s.pkg_dir.join("package.json")).collect();
  let links = plan
    .importers
    .iter()
    .flat_map(|i| {
      i.links.iter().map(|(alias, target)| {
        let link = i.modules_dir.join(alias);
        let relative = pacquet_link::relative_path(link.parent().unwrap_or(&i.modules_dir), target);
        (link, relative)
      })
    })
    .collect();
  RepeatState { lockfile_hash: hash, settings: key, markers, links }
}
