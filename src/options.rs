//! JS-facing option and result types (their doc comments become `index.d.ts`).

use std::collections::{BTreeMap, HashMap};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use pacquet_install::{Include, InstallOptions, InstallSummary};
use tokio_util::sync::CancellationToken;

/// Which kinds of direct dependencies to install (all by default).
#[napi(object)]
#[derive(Default)]
pub struct IncludeOptions {
  pub dependencies: Option<bool>,
  pub dev_dependencies: Option<bool>,
  pub optional_dependencies: Option<bool>,
}

/// Platforms to install optional packages for, besides this machine (pnpm's
/// `supportedArchitectures`). `"current"` stands for this machine.
#[napi(object)]
#[derive(Default)]
pub struct SupportedArchitectures {
  pub os: Option<Vec<String>>,
  pub cpu: Option<Vec<String>>,
  pub libc: Option<Vec<String>>,
}

/// Options of {@link linkVirtualStore}. All are optional; defaults are pnpm's.
#[napi(object)]
pub struct LinkOptions<'env> {
  /// The project directory (where the lockfile's importers are relative to and `node_modules`
  /// goes). Default: the lockfile's directory, or the current directory for a lockfile object.
  pub dir: Option<String>,
  /// The store directory; `/v11` is appended as pnpm does. Default: pnpm's
  /// (`$PNPM_HOME/store`, `$XDG_DATA_HOME/pnpm/store`, `~/.local/share/pnpm/store`, …).
  pub store_dir: Option<String>,
  /// Default: `<dir>/node_modules/.pnpm`.
  pub virtual_store_dir: Option<String>,
  /// `{ default: url, '@scope': url }`. Default: from `npm_config_registry`, then
  /// `<dir>/.npmrc`, then `~/.npmrc`; an install that must download fails with
  /// `ERR_PNPM_NO_REGISTRY` when none is configured.
  pub registries: Option<HashMap<String, String>>,
  /// Nerf-darted registry URI (`//host:port/path/`) → full `Authorization` header value.
  /// Merged over what `.npmrc` files say (`_authToken`, `_auth`, `username` + `_password`).
  pub auth_header_by_uri: Option<HashMap<String, String>>,
  /// How files get from the store into `node_modules`: `auto` (default: hardlink, else
  /// clone, else copy), `hardlink`, `clone`, `copy`, `clone-or-copy`.
  #[napi(ts_type = "'auto' | 'hardlink' | 'clone' | 'copy' | 'clone-or-copy'")]
  pub package_import_method: Option<String>,
  /// Tarball downloads in flight at once. Default: `clamp(3 × (cpus − 1), 64, 96)`.
  pub network_concurrency: Option<u32>,
  /// Retries after a failed download (network error, 5xx, 408, 429). Default 2.
  pub fetch_retries: Option<u32>,
  /// Backoff growth between retries. Default 10.
  pub fetch_retry_factor: Option<f64>,
  /// First backoff in ms. Default 10000.
  pub fetch_retry_mintimeout: Option<u32>,
  /// Longest backoff in ms. Default 60000.
  pub fetch_retry_maxtimeout: Option<u32>,
  /// Longest wait in ms for a server to answer or to send more of a body. Default 60000.
  pub fetch_timeout: Option<u32>,
  /// Never use the network: fail with `ERR_PNPM_NO_OFFLINE_TARBALL` if the store lacks a package.
  pub offline: Option<bool>,
  /// Which direct dependencies to install. Default: all.
  pub include: Option<IncludeOptions>,
  pub supported_architectures: Option<SupportedArchitectures>,
  /// Longest slot directory name before it is cut and hashed. Default 120 (60 on Windows).
  pub virtual_store_dir_max_length: Option<u32>,
  /// Check store files against their recorded size and hash before using them. Default true.
  pub verify_store_integrity: Option<bool>,
  /// Fail when a store row's manifest names another package than its key. Default true.
  pub strict_store_pkg_content_check: Option<bool>,
  /// Packages to hoist into `<virtualStoreDir>/node_modules` (pnpm's `hoistPattern`). Default `['*']`.
  pub hoist_pattern: Option<Vec<String>>,
  /// Packages to hoist into the root `node_modules` (pnpm's `publicHoistPattern`). Default `[]`.
  pub public_hoist_pattern: Option<Vec<String>>,
  /// pnpm's `shamefullyHoist`: `publicHoistPattern: ['*']` unless that is given.
  pub shamefully_hoist: Option<bool>,
  /// pnpm's `allowBuilds`: package name (or `name@version`) → whether its build may run.
  /// Decides what `.modules.yaml` lists as ignored builds; the addon itself runs none.
  pub allow_builds: Option<HashMap<String, bool>>,
  pub dangerously_allow_all_builds: Option<bool>,
  /// The host will not run scripts either: builds are recorded as pending in `.modules.yaml`
  /// (as `pnpm install --ignore-scripts` does), for a later `pnpm rebuild`.
  pub ignore_scripts: Option<bool>,
  /// Called with each progress event, in the shapes of pnpm's loggers so that pnpm's
  /// reporter can render them: `pnpm:context`, `pnpm:package-manifest`, `pnpm:stage`,
  /// `pnpm:stats`, `pnpm:progress`, `pnpm:fetching-progress`, `pnpm:request-retry`,
  /// `pnpm:package-import-method`, `pnpm:skipped-optional-dependency`, `pnpm:root`,
  /// `pnpm:summary`, and warnings as `pnpm:global`. All events are delivered before the
  /// promise settles. Exceptions it throws are ignored.
  #[napi(ts_type = "(event: LogEvent & Record<string, any>) => void")]
  pub on_progress: Option<Function<'env, Unknown<'static>, ()>>,
  /// Aborting stops the install promptly; the promise rejects with `code: 'ABORT_ERR'`. The
  /// store stays consistent: only complete packages are recorded.
  #[napi(ts_type = "AbortSignal")]
  pub signal: Option<Object<'env>>,
}

/// A progress event, as pnpm's loggers shape them (`name` is the channel). Declared for
/// `index.d.ts`; events are built as JSON by the engine.
#[napi(object)]
#[allow(dead_code)]
pub struct LogEvent {
  /// `pnpm:progress`, `pnpm:stage`, …
  pub name: String,
  /// `debug`, `info`, `warn` or `error`.
  pub level: String,
}

type Parts<'env> = (InstallOptions, Option<Function<'env, Unknown<'static>, ()>>, Option<Object<'env>>);

impl<'env> LinkOptions<'env> {
  pub fn into_parts(self) -> Result<Parts<'env>> {
    let include = self.include.unwrap_or_default();
    let arch = self.supported_architectures.unwrap_or_default();
    let options = InstallOptions {
      dir: self.dir.map(Into::into),
      store_dir: self.store_dir.map(Into::into),
      virtual_store_dir: self.virtual_store_dir.map(Into::into),
      registries: sorted(self.registries),
      auth_header_by_uri: sorted(self.auth_header_by_uri),
      package_import_method: self.package_import_method,
      network_concurrency: self.network_concurrency.map(|n| n as usize),
      fetch_retries: self.fetch_retries,
      fetch_retry_factor: self.fetch_retry_factor,
      fetch_retry_mintimeout: self.fetch_retry_mintimeout.map(u64::from),
      fetch_retry_maxtimeout: self.fetch_retry_maxtimeout.map(u64::from),
      fetch_timeout: self.fetch_timeout.map(u64::from),
      offline: self.offline.unwrap_or(false),
      include: Include {
        dependencies: include.dependencies.unwrap_or(true),
        dev_dependencies: include.dev_dependencies.unwrap_or(true),
        optional_dependencies: include.optional_dependencies.unwrap_or(true),
      },
      supported_architectures: pacquet_install::SupportedArchitectures {
        os: arch.os,
        cpu: arch.cpu,
        libc: arch.libc,
      },
      virtual_store_dir_max_length: self.virtual_store_dir_max_length.map(|n| n as usize),
      verify_store_integrity: self.verify_store_integrity,
      strict_store_pkg_content_check: self.strict_store_pkg_content_check,
      user_agent: None,
      hoist_pattern: self.hoist_pattern,
      public_hoist_pattern: self.public_hoist_pattern,
      shamefully_hoist: self.shamefully_hoist,
      allow_builds: self.allow_builds.unwrap_or_default().into_iter().collect(),
      dangerously_allow_all_builds: self.dangerously_allow_all_builds.unwrap_or(false),
      ignore_scripts: self.ignore_scripts.unwrap_or(false),
    };
    Ok((options, self.on_progress, self.signal))
  }
}

fn sorted(map: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
  map.unwrap_or_default().into_iter().collect()
}

/// Time spent in each phase, in milliseconds.
#[napi(object)]
pub struct LinkTimings {
  pub total_ms: f64,
  /// Reading the lockfile and planning.
  pub prepare_ms: f64,
  /// Looking packages up in the store index and verifying their files.
  pub store_lookup_ms: f64,
  /// Downloading, unpacking and importing packages, and linking them to each other.
  pub fetch_and_import_ms: f64,
  /// Linking each importer's direct dependencies.
  pub link_importers_ms: f64,
}

/// What {@link linkVirtualStore} did.
#[napi(object)]
pub struct LinkResult {
  /// Packages placed in the virtual store.
  pub added: u32,
  /// Packages downloaded (or read from a local tarball) and written to the store.
  pub fetched: u32,
  /// Packages whose files came from the store.
  pub reused: u32,
  /// Dep paths of optional packages that were skipped (other platform, or failed to fetch).
  pub skipped: Vec<String>,
  pub bytes_downloaded: f64,
  /// Files placed into `node_modules`.
  pub files_imported: f64,
  /// The import method that was used (`hardlink`, `clone` or `copy`), if any file was imported.
  pub import_method: Option<String>,
  /// Dep paths of the packages this install imported that need a build (install scripts,
  /// `binding.gyp`, `.hooks/`), dependencies first. The addon runs no scripts: run these.
  pub deps_requiring_build: Vec<String>,
  /// The store root, with its `v11` suffix.
  pub store_dir: String,
  pub virtual_store_dir: String,
  pub timings: LinkTimings,
}

impl From<InstallSummary> for LinkResult {
  fn from(s: InstallSummary) -> Self {
    LinkResult {
      added: s.added as u32,
      fetched: s.fetched as u32,
      reused: s.reused as u32,
      skipped: s.skipped,
      bytes_downloaded: s.bytes_downloaded as f64,
      files_imported: s.files_imported as f64,
      import_method: s.import_method,
      deps_requiring_build: s.deps_requiring_build,
      store_dir: s.store_dir.to_string_lossy().into_owned(),
      virtual_store_dir: s.virtual_store_dir.to_string_lossy().into_owned(),
      timings: LinkTimings {
        total_ms: s.timings.total_ms,
        prepare_ms: s.timings.prepare_ms,
        store_lookup_ms: s.timings.store_lookup_ms,
        fetch_and_import_ms: s.timings.fetch_and_import_ms,
        link_importers_ms: s.timings.link_importers_ms,
      },
    }
  }
}

/// `addEventListener` / `removeEventListener`.
type ListenerFn<'a> = Function<'a, FnArgs<(&'a str, Function<'a, (), ()>)>, ()>;

/// Connects an `AbortSignal` to the install's cancellation token, and disconnects it when
/// the install settles so a long-lived signal does not collect listeners.
pub struct AbortHook {
  signal: ObjectRef,
  listener: Option<FunctionRef<(), ()>>,
}

impl AbortHook {
  pub fn attach(env: &Env, signal: Object<'_>, cancel: CancellationToken) -> Result<Self> {
    let signal_ref = signal.create_ref()?;
    // `onabort` does not fire for a signal that is already aborted.
    if signal.get_named_property::<bool>("aborted").unwrap_or(false) {
      cancel.cancel();
      return Ok(AbortHook { signal: signal_ref, listener: None });
    }
    let listener = env.create_function_from_closure::<(), (), _>("pacquetAbort", move |_| {
      cancel.cancel();
      Ok(())
    })?;
    // addEventListener, not `onabort`: the caller's own `onabort` must keep working.
    let add: ListenerFn = signal.get_named_property("addEventListener")?;
    add.apply(signal, ("abort", listener).into())?;
    Ok(AbortHook { signal: signal_ref, listener: Some(listener.create_ref()?) })
  }

  pub fn detach(self, env: &Env) {
    if let Some(listener) = self.listener {
      if let (Ok(signal), Ok(listener)) = (self.signal.get_value(env), listener.borrow_back(env)) {
        if let Ok(remove) = signal.get_named_property::<ListenerFn>("removeEventListener") {
          let _ = remove.apply(signal, ("abort", listener).into());
        }
      }
    }
    let _ = self.signal.unref(env);
  }
}
