//! The install itself. Data flows one way: lockfile → plan → (store lookup → warm | cold
//! fetch) → slot import + links → importer links. Blocking file-system work runs on rayon;
//! the network runs on tokio; they overlap, so a package is linked as soon as it is stored.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pacquet_fetch::{
  extract_tarball, BodyCheck, ExtractLimits, FetchError, FetchEvents, Fetcher, FetcherOptions, Integrity,
  RetryInfo, Stage,
};
use pacquet_link::{symlink_dir, Importer, PackageFile};
use pacquet_lockfile::LockfileSource;
use pacquet_store::{
  msgpackr, BlobWriter, IndexReader, IndexWriter, PackageFilesIndex, StoreDir, StoreError, Verifier,
};
use rayon::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::error::InstallError;
use crate::events::{Event, Reporter};
use crate::finish::{forget_failed, hoist_and_link, link_importers, remove_stale, write_state, Builds};
use crate::options::InstallOptions;
use crate::plan::{SkippedPlan, SlotPlan, Source};
use crate::prepare::{prepare, Prepared, Work};
use crate::state;

/// A package's files: in-package path, blob (or source file), mode.
type StoreFiles = Vec<(String, PathBuf, u32)>;

/// What the store (or a local directory) holds for a package, ready to import.
struct StoredPackage {
  files: StoreFiles,
  requires_build: bool,
}

/// What an install did.
#[derive(Debug, Clone, Default)]
pub struct InstallSummary {
  /// Packages placed in the virtual store.
  pub added: usize,
  /// Packages downloaded (or read from a local tarball) and written to the store.
  pub fetched: usize,
  /// Packages whose files came from the store.
  pub reused: usize,
  /// Dep paths of optional packages that were not installed.
  pub skipped: Vec<String>,
  pub bytes_downloaded: u64,
  pub files_imported: u64,
  pub import_method: Option<String>,
  /// Packages imported by this install that need a build, dependencies first. The addon
  /// runs no scripts: the host decides and runs them.
  pub deps_requiring_build: Vec<String>,
  pub store_dir: PathBuf,
  pub virtual_store_dir: PathBuf,
  pub timings: Timings,
}

#[derive(Debug, Clone, Default)]
pub struct Timings {
  pub total_ms: f64,
  pub prepare_ms: f64,
  pub store_lookup_ms: f64,
  pub fetch_and_import_ms: f64,
  pub link_importers_ms: f64,
}

/// The part of the plan each worker needs, shared.
struct Ctx {
  requester: String,
  importer: Importer,
  blobs: BlobWriter,
  writer: IndexWriter,
  reporter: Arc<dyn Reporter>,
  cancel: CancellationToken,
  fetched: AtomicUsize,
  reused: AtomicUsize,
  files: AtomicU64,
  bytes: AtomicU64,
  method_reported: std::sync::Once,
  /// Whether cold packages may be written straight into their slots ([`DirectImport`]).
  direct: std::sync::atomic::AtomicBool,
  /// Dep paths of imported packages whose row says they need a build.
  needs_build: std::sync::Mutex<Vec<String>>,
}

impl Ctx {
  fn emit(&self, event: impl FnOnce() -> Event) {
    if self.reporter.enabled() {
      self.reporter.emit(event());
    }
  }
}

/// Installs the lockfile's packages into the virtual store and links the importers.
pub async fn install(
  source: LockfileSource,
  options: InstallOptions,
  reporter: Arc<dyn Reporter>,
  cancel: CancellationToken,
) -> Result<InstallSummary, InstallError> {
  let started = Instant::now();
  let mut timings = Timings::default();
  test_panic("install");
  if cancel.is_cancelled() {
    return Err(InstallError::Aborted);
  }
  let work = match blocking(move || prepare(source, options)).await?? {
    Prepared::UpToDate(settings) => {
      report_up_to_date(reporter.as_ref(), &settings);
      timings.prepare_ms = ms(started.elapsed());
      timings.total_ms = timings.prepare_ms;
      return Ok(InstallSummary {
        store_dir: settings.store.root().to_path_buf(),
        virtual_store_dir: settings.virtual_store_dir,
        timings,
        ..Default::default()
      });
    }
    Prepared::Install(work) => *work,
  };
  timings.prepare_ms = ms(started.elapsed());
  let Work {
    settings,
    wanted,
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
  } = work;
  let settings = Arc::new(settings);
  let requester = settings.lockfile_dir.to_string_lossy().into_owned();
  if reporter.enabled() {
    reporter.emit(Event::Context {
      current_lockfile_exists: settings.virtual_store_dir.join(state::CURRENT_LOCKFILE).exists(),
      store_dir: settings.store.root().to_string_lossy().into_owned(),
      virtual_store_dir: settings.virtual_store_dir.to_string_lossy().into_owned(),
    });
    for importer in &plan.importers {
      if let Some(dir) = importer.modules_dir.parent() {
        reporter.emit(crate::report::package_manifest(dir));
      }
    }
  }

  // Look every package that needs work up in the store before anything is written.
  let lookup_started = Instant::now();
  let to_install: Vec<SlotPlan> =
    plan.slots.iter().enumerate().filter(|(i, _)| !up_to_date.contains(i)).map(|(_, s)| s.clone()).collect();
  let (to_install, found, fetcher) = match new_store {
    Some(new_store) => {
      let ready = blocking(move || {
        test_panic("lookup");
        new_store.ready()
      })
      .await??;
      ready.init?;
      let found = to_install.iter().map(|_| None).collect();
      (to_install, found, ready.fetcher)
    }
    None => {
      let settings = settings.clone();
      blocking(move || {
        crate::prepare::init_store(&settings.store)?;
        test_panic("lookup");
        let found = lookup(&settings.store, &to_install, settings.verify, settings.strict_content_check)?;
        Ok::<_, InstallError>((to_install, found, None))
      })
      .await??
    }
  };
  timings.store_lookup_ms = ms(lookup_started.elapsed());

  let mut skipped: Vec<SkippedPlan> = plan.skipped.clone();
  let mut work: Vec<(SlotPlan, Option<StoredPackage>)> = Vec::with_capacity(to_install.len());
  for (slot, files) in to_install.into_iter().zip(found) {
    let needs_network = files.is_none() && matches!(slot.source, Source::Remote { .. });
    if settings.offline && needs_network {
      if slot.optional {
        skipped.push(SkippedPlan {
          dep_path: slot.dep_path.clone(),
          name: slot.name.clone(),
          version: slot.version.clone(),
          details: "not in the store and the install is offline".into(),
        });
        continue;
      }
      return Err(InstallError::NoOfflineTarball { package: format!("{}@{}", slot.name, slot.version) });
    }
    work.push((slot, files));
  }

  let ctx = Arc::new(Ctx {
    requester: requester.clone(),
    importer: Importer::new(settings.import_method).with_store_files(&settings.store.root().join("files")),
    blobs: BlobWriter::new(settings.store.clone()),
    writer: IndexWriter::open(&settings.store)?,
    reporter: reporter.clone(),
    cancel: cancel.child_token(),
    fetched: AtomicUsize::new(0),
    reused: AtomicUsize::new(0),
    files: AtomicU64::new(0),
    bytes: AtomicU64::new(0),
    method_reported: std::sync::Once::new(),
    direct: std::sync::atomic::AtomicBool::new(true),
    needs_build: std::sync::Mutex::new(Vec::new()),
  });
  for w in &plan.warnings {
    ctx.emit(|| Event::Warning { message: w.clone() });
  }
  for s in &skipped {
    ctx.emit(|| Event::SkippedOptional {
      id: s.dep_path.clone(),
      name: s.name.clone(),
      version: s.version.clone(),
      prefix: requester.clone(),
      reason: "unsupported_platform",
      details: s.details.clone(),
    });
  }
  ctx.emit(|| Event::Stats { prefix: requester.clone(), added: None, removed: Some(removed_slots.len()) });
  ctx.emit(|| Event::Stage { prefix: requester.clone(), stage: "importing_started" });
  ctx.emit(|| Event::Stats { prefix: requester.clone(), added: Some(work.len()), removed: None });
  for (slot, _) in &work {
    ctx.emit(|| Event::Progress {
      status: "resolved",
      package_id: slot.dep_path.clone(),
      requester: requester.clone(),
    });
  }

  let fetch_started = Instant::now();
  let added = work.len();
  // Kept to unlink dependents of an optional package that turns out to be unfetchable.
  let slot_links: Vec<(PathBuf, Vec<(String, PathBuf)>)> =
    plan.slots.iter().map(|s| (s.slot_dir.join("node_modules"), s.links.clone())).collect();
  let mut changed: HashSet<String> = work.iter().map(|(s, _)| s.dep_path.clone()).collect();
  let result = run_slots(&ctx, work, &settings.fetcher_options, fetcher, &mut skipped).await;
  timings.fetch_and_import_ms = ms(fetch_started.elapsed());

  // Commit every row that is complete, also when the install failed or was aborted: those
  // packages are whole in the store and a later install may use them.
  let ctx = match Arc::try_unwrap(ctx) {
    Ok(ctx) => ctx,
    Err(_) => return Err(InstallError::Internal("a worker outlived the install".into())),
  };
  let Ctx { writer, importer, fetched, reused, files, bytes, needs_build, .. } = ctx;
  let needs_build: HashSet<String> = needs_build.into_inner().unwrap_or_default().into_iter().collect();
  let deps_requiring_build = crate::builds::dependency_order(&wanted.lockfile, &needs_build);
  let (committed, writer) = blocking(move || {
    let mut writer = writer;
    (writer.finish(), writer)
  })
  .await?;
  // The index closes (a WAL checkpoint) while the links below are made: dropping the writer
  // waits for that, last. Every return waits for it, so no handle on index.db outlives the
  // install (Windows would not let the store be removed meanwhile).
  let close_then = |writer: IndexWriter, error: InstallError| async move {
    let _ = blocking(move || drop(writer)).await;
    Err(error)
  };
  let failed = match result {
    Ok(failed) => failed,
    Err(e) => return close_then(writer, e).await,
  };
  if let Err(e) = committed {
    return close_then(writer, e.into()).await;
  }
  if cancel.is_cancelled() {
    return close_then(writer, InstallError::Aborted).await;
  }

  let link_started = Instant::now();
  let planned_skips = plan.skipped.len();
  let mut importers = plan.importers.clone();
  let failed_dirs: HashSet<PathBuf> = failed.iter().map(|s| s.pkg_dir.clone()).collect();
  for importer in &mut importers {
    importer.links.retain(|(_, target)| !failed_dirs.contains(target));
  }
  let report_roots = reporter.enabled();
  let finish = {
    let settings = settings.clone();
    let skipped_paths: Vec<String> = skipped.iter().map(|s| s.dep_path.clone()).collect();
    let deps_requiring_build = deps_requiring_build.clone();
    move || -> Result<(Vec<String>, Vec<crate::events::RootDep>), InstallError> {
      // Dropped last, whichever way this returns: see `close_then`.
      let _writer = writer;
      if !failed.is_empty() {
        forget_failed(&failed, &failed_dirs, &slot_links);
      }
      for slot in &failed {
        changed.remove(&slot.dep_path);
      }
      remove_stale(&removed_slots, &stale_links, &removed_importers);
      let roots =
        if report_roots { crate::report::new_direct_deps(&wanted.lockfile, &importers) } else { Vec::new() };
      let (hoisted, bin_warnings) = crate::bin_links::BinLinks {
        lockfile: &wanted.lockfile,
        plan: &plan,
        settings: &settings,
        changed: &changed,
      }
      .link(|| {
        link_importers(&importers)?;
        hoist_and_link(&settings, &wanted, &plan, &skipped_paths, previous_hoisted)
      })?;
      let hoisted_json = serde_json::to_value(crate::hoist::hoisted_dependencies(&hoisted))
        .map_err(|e| InstallError::Internal(e.to_string()))?;
      // pnpm imports directory packages on every install: no repeat-install shortcut with them.
      let has_local = plan.slots.iter().any(|s| matches!(s.source, Source::Directory { .. }));
      let repeat = (failed.is_empty() && !has_local).then_some(repeat).flatten();
      let builds = Builds::new(&settings, &wanted, &deps_requiring_build, previous_pending, previous_ignored);
      let content = state::ModulesContent {
        hoisted_dependencies: hoisted_json,
        included: settings.include,
        skipped: skipped_paths,
        pending_builds: builds.pending,
        ignored_builds: builds.ignored,
        allow_builds: settings.build_policy.allow.clone(),
        pruned_at,
        injected_deps: crate::local::injected_deps(&plan, &settings.lockfile_dir),
      };
      write_state(&settings, &wanted, &plan, content, repeat)?;
      Ok((bin_warnings, roots))
    }
  };
  let (bin_warnings, roots) = blocking(finish).await??;
  for message in bin_warnings {
    reporter.emit(Event::Warning { message });
  }
  for root in roots {
    reporter.emit(Event::RootAdded(root));
  }
  timings.link_importers_ms = ms(link_started.elapsed());
  reporter.emit(Event::Stage { prefix: requester.clone(), stage: "importing_done" });
  reporter.emit(Event::Summary { prefix: requester });
  timings.total_ms = ms(started.elapsed());
  let newly_skipped = skipped.len().saturating_sub(planned_skips);
  Ok(InstallSummary {
    added: added - newly_skipped,
    fetched: fetched.into_inner(),
    reused: reused.into_inner(),
    skipped: skipped.into_iter().map(|s| s.dep_path).collect(),
    bytes_downloaded: bytes.into_inner(),
    files_imported: files.into_inner(),
    import_method: importer.method_used().map(str::to_string),
    deps_requiring_build,
    store_dir: settings.store.root().to_path_buf(),
    virtual_store_dir: settings.virtual_store_dir.clone(),
    timings,
  })
}

/// What pnpm's reporter needs to say that nothing changed ("Already up to date").
fn report_up_to_date(reporter: &dyn Reporter, settings: &crate::prepare::Settings) {
  if !reporter.enabled() {
    return;
  }
  let prefix = settings.lockfile_dir.to_string_lossy().into_owned();
  reporter.emit(Event::Context {
    current_lockfile_exists: true,
    store_dir: settings.store.root().to_string_lossy().into_owned(),
    virtual_store_dir: settings.virtual_store_dir.to_string_lossy().into_owned(),
  });
  reporter.emit(crate::report::package_manifest(&settings.lockfile_dir));
  reporter.emit(Event::Stats { prefix: prefix.clone(), added: None, removed: Some(0) });
  reporter.emit(Event::Stats { prefix: prefix.clone(), added: Some(0), removed: None });
  reporter.emit(Event::Summary { prefix });
}

/// For each slot, the verified store files if the store has the package whole.
///
/// Rows are read a chunk at a time on one thread, and each chunk is decoded and its blobs
/// checked on the pool while the next is read: reading every row first left a core idle for
/// as long as the read took (alotta: 15 ms of a 60 ms lookup).
fn lookup(
  store: &StoreDir,
  slots: &[SlotPlan],
  verify: bool,
  strict: bool,
) -> Result<Vec<Option<StoredPackage>>, InstallError> {
  let keyed: Vec<(usize, &str)> =
    slots.iter().enumerate().filter_map(|(i, s)| s.index_key.as_deref().map(|k| (i, k))).collect();
  let mut found: Vec<Option<StoredPackage>> = (0..slots.len()).map(|_| None).collect();
  if keyed.is_empty() {
    return Ok(found);
  }
  let reader = IndexReader::open(store)?;
  let read = |reader: &IndexReader, chunk: &[(usize, &str)]| {
    reader.get_many(&chunk.iter().map(|(_, k)| *k).collect::<Vec<_>>())
  };
  let mut chunks = keyed.chunks(LOOKUP_CHUNK);
  let first = chunks.next().map(|c| read(&reader, c).map(|rows| (c, rows))).transpose()?;
  // The set of checked blobs is sized once, from the first chunk: a row takes ~180 bytes per
  // file (path, hex digest, mode, size, time; alotta: 183). Growing it shard by shard cost
  // more than its lookups did.
  let per_row =
    first.as_ref().map_or(0, |(_, rows)| rows.values().map(Vec::len).sum::<usize>() / rows.len().max(1));
  let verified = pacquet_store::verified_blobs(if verify { per_row * keyed.len() / 180 } else { 0 });
  let files = pacquet_store::at::Dir::open(&store.root().join("files")).ok();
  let verifier = Verifier { store, verified: &verified, check: verify, files: files.as_ref() };
  let results = std::sync::Mutex::new(Vec::with_capacity(keyed.len()));
  let read_error = rayon::scope(|scope| {
    // Moved in: the connection is used on this one thread.
    let reader = reader;
    let mut next = first;
    while let Some((chunk, rows)) = next.take() {
      let rows = Arc::new(rows);
      // Checked in parts, so that both cores share even a single chunk (a small project's).
      for part in chunk.chunks(CHECK_CHUNK) {
        let (verifier, results, rows) = (&verifier, &results, rows.clone());
        scope.spawn(move |_| {
          let checked: Vec<_> =
            part.iter().map(|&(i, key)| (i, check_row(&slots[i], rows.get(key), verifier, strict))).collect();
          if let Ok(mut results) = results.lock() {
            results.extend(checked);
          }
        });
      }
      match chunks.next().map(|c| read(&reader, c).map(|rows| (c, rows))).transpose() {
        Ok(n) => next = n,
        Err(e) => return Some(e),
      }
    }
    None
  });
  if let Some(e) = read_error {
    return Err(e.into());
  }
  let mut results =
    results.into_inner().map_err(|_| InstallError::Internal("store lookup panicked".into()))?;
  results.sort_unstable_by_key(|(i, _)| *i);
  for (i, package) in results {
    found[i] = package?;
  }
  Ok(found)
}

/// Rows read and checked per task of [`lookup`]: small enough that the first check starts
/// soon and the chunks spread over the pool, large enough that a query finds many rows.
const LOOKUP_CHUNK: usize = 128;

/// Rows checked per task of [`lookup`].
const CHECK_CHUNK: usize = 16;

/// A slot's stored files from its row, if the row decodes, names the package, and every blob
/// it names is in place.
fn check_row(
  slot: &SlotPlan,
  data: Option<&Vec<u8>>,
  verifier: &Verifier<'_>,
  strict: bool,
) -> Result<Option<StoredPackage>, InstallError> {
  let Some(data) = data else { return Ok(None) };
  // A row we cannot decode is a miss: fetch again and replace it.
  let Ok(row) = msgpackr::decode(data) else { return Ok(None) };
  check_content(slot, &row, strict)?;
  let requires_build = row.requires_build.unwrap_or(false);
  Ok(verifier.files(row.files).map(|files| StoredPackage { files, requires_build }))
}

/// The row's manifest must name the package its key names (`strictStorePkgContentCheck`).
fn check_content(slot: &SlotPlan, row: &PackageFilesIndex, strict: bool) -> Result<(), InstallError> {
  if !strict || slot.version.contains(':') {
    return Ok(());
  }
  let Some(manifest) = &row.manifest else {
    return Ok(());
  };
  let name = manifest.get("name").and_then(|v| v.as_str());
  let version = manifest.get("version").and_then(|v| v.as_str());
  let name_ok = name.is_none_or(|n| n.eq_ignore_ascii_case(&slot.name));
  let version_ok = version.is_none_or(|v| v == slot.version);
  if name_ok && version_ok {
    return Ok(());
  }
  Err(InstallError::UnexpectedPkgContent {
    key: slot.index_key.clone().unwrap_or_default(),
    expected: format!("{}@{}", slot.name, slot.version),
    found: format!("{}@{}", name.unwrap_or("?"), version.unwrap_or("?")),
  })
}

async fn run_slots(
  ctx: &Arc<Ctx>,
  work: Vec<(SlotPlan, Option<StoredPackage>)>,
  fetcher_options: &FetcherOptions,
  prebuilt: Option<Result<Fetcher, FetchError>>,
  skipped: &mut Vec<SkippedPlan>,
) -> Result<Vec<SlotPlan>, InstallError> {
  let mut warm = Vec::new();
  let mut cold = Vec::new();
  for (slot, files) in work {
    match files {
      Some(files) => warm.push((slot, files)),
      None => cold.push(slot),
    }
  }
  let needs_fetcher = cold.iter().any(|s| matches!(s.source, Source::Remote { .. }));
  let fetcher = if needs_fetcher {
    Some(Arc::new(prebuilt.unwrap_or_else(|| new_fetcher(fetcher_options))?))
  } else {
    None
  };

  let mut tasks = tokio::task::JoinSet::new();
  {
    let ctx = ctx.clone();
    tasks.spawn(async move {
      let result = on_rayon(move || {
        warm.par_iter().try_for_each(|(slot, files)| {
          if ctx.cancel.is_cancelled() {
            return Err(InstallError::Aborted);
          }
          import_slot(&ctx, slot, files, None)?;
          ctx.reused.fetch_add(1, Ordering::Relaxed);
          ctx.emit(|| Event::Progress {
            status: "found_in_store",
            package_id: slot.dep_path.clone(),
            requester: ctx.requester.clone(),
          });
          report_imported(&ctx, slot);
          Ok(())
        })
      })
      .await;
      (None, result.and_then(|r| r))
    });
  }
  // Unpacking is CPU work: admit a few tarballs at a time so bodies don't pile up in memory
  // while the cores are busy.
  let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
  let unpack_permits = Arc::new(tokio::sync::Semaphore::new((2 * cpus).max(4)));
  for slot in cold {
    let ctx = ctx.clone();
    let fetcher = fetcher.clone();
    let permits = unpack_permits.clone();
    tasks.spawn(async move {
      let result = fetch_and_import(&ctx, &slot, fetcher.as_deref(), &permits).await;
      (Some(slot), result)
    });
  }

  let mut first_error: Option<InstallError> = None;
  let mut failed = Vec::new();
  while let Some(joined) = tasks.join_next().await {
    let (slot, result) = match joined {
      Ok(r) => r,
      Err(e) => (None, Err(InstallError::Internal(e.to_string()))),
    };
    let Err(error) = result else { continue };
    match slot {
      Some(slot) if slot.optional && !error.is_aborted() => {
        // pnpm drops an optional package that cannot be fetched, with a warning.
        ctx.emit(|| Event::Warning {
          message: format!("Skipping optional dependency {}: {error}", slot.dep_path),
        });
        skipped.push(SkippedPlan {
          dep_path: slot.dep_path.clone(),
          name: slot.name.clone(),
          version: slot.version.clone(),
          details: error.to_string(),
        });
        failed.push(slot);
      }
      _ => {
        ctx.cancel.cancel();
        // An abort is a consequence; keep the error that caused it.
        if first_error.as_ref().is_none_or(|e| e.is_aborted() && !error.is_aborted()) {
          first_error = Some(error);
        }
      }
    }
  }
  match first_error {
    Some(e) => Err(e),
    None => Ok(failed),
  }
}

struct FetchReporter<'a> {
  ctx: &'a Ctx,
}

impl FetchEvents for FetchReporter<'_> {
  fn started(&self, package_id: &str, attempt: u32, size: Option<u64>) {
    self.ctx.emit(|| Event::FetchingStarted { package_id: package_id.to_string(), attempt, size });
  }
  fn retry(&self, info: RetryInfo) {
    self.ctx.emit(|| Event::RequestRetry {
      attempt: info.attempt,
      max_retries: info.max_retries,
      url: info.url,
      timeout: info.timeout_ms,
      message: info.message,
      http_status: info.http_status,
      code: info.code,
    });
  }
}

async fn fetch_and_import(
  ctx: &Arc<Ctx>,
  slot: &SlotPlan,
  fetcher: Option<&Fetcher>,
  unpack_permits: &tokio::sync::Semaphore,
) -> Result<(), InstallError> {
  let (bytes, remote) = match &slot.source {
    Source::Remote { url, integrity } => {
      let parsed = parse_integrity(slot, integrity.as_deref())?;
      let fetcher = fetcher.ok_or_else(|| InstallError::Internal("no fetcher".into()))?;
      let events = FetchReporter { ctx };
      let sri = integrity.as_deref().unwrap_or("");
      // Not checked here: unpacking hashes the body beside its files (`BodyCheck`).
      let bytes = fetcher.fetch(url, &slot.dep_path, None, sri, &events, &ctx.cancel).await?;
      ctx.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
      let check = parsed.map(|integrity| Expected { integrity, url: url.clone(), sri: sri.to_string() });
      (bytes, check.map(|check| (fetcher, check)))
    }
    Source::LocalTarball { path, integrity } => {
      let parsed = parse_integrity(slot, integrity.as_deref())?;
      let read_path = path.clone();
      let bytes = blocking(move || std::fs::read(&read_path)).await?.map_err(|source| {
        InstallError::LocalPackage { package: slot.dep_path.clone(), path: path.clone(), source }
      })?;
      if let Some(i) = &parsed {
        i.check(&bytes).map_err(|actual| pacquet_fetch::FetchError::Integrity {
          url: path.display().to_string(),
          expected: integrity.clone().unwrap_or_default(),
          actual,
        })?;
      }
      (pacquet_fetch::Body::from(bytes), None)
    }
    Source::Directory { path } => {
      let ctx2 = ctx.clone();
      let slot2 = slot.clone();
      let dir = path.clone();
      return on_rayon(move || {
        let local = crate::local::list_directory(&slot2, &dir)?;
        let package = StoredPackage { files: local.files, requires_build: local.requires_build };
        import_slot(&ctx2, &slot2, &package, None)?;
        report_imported(&ctx2, &slot2);
        Ok(())
      })
      .await?;
    }
  };
  let Some((fetcher, expected)) = remote else {
    return unpack(ctx, slot, bytes, unpack_permits, None).await;
  };
  let integrity = expected.integrity.clone();
  match unpack(ctx, slot, bytes, unpack_permits, Some(expected)).await {
    // A bad copy (a proxy, a CDN): fetched again, as pnpm does, and checked as it comes.
    Err(InstallError::Fetch(mismatch @ FetchError::Integrity { .. })) => {
      let events = FetchReporter { ctx };
      let bytes = fetcher.fetch_again(mismatch, &slot.dep_path, &integrity, &events, &ctx.cancel).await?;
      ctx.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
      unpack(ctx, slot, bytes, unpack_permits, None).await
    }
    result => result,
  }
}

/// What a downloaded tarball must hash to, checked while it is unpacked.
struct Expected {
  integrity: Integrity,
  url: String,
  sri: String,
}

/// Unpacks a tarball into the store and its slot, then links the slot.
async fn unpack(
  ctx: &Arc<Ctx>,
  slot: &SlotPlan,
  bytes: pacquet_fetch::Body,
  unpack_permits: &tokio::sync::Semaphore,
  expected: Option<Expected>,
) -> Result<(), InstallError> {
  let _permit = unpack_permits.acquire().await.map_err(|e| InstallError::Internal(e.to_string()))?;
  if ctx.cancel.is_cancelled() {
    return Err(InstallError::Aborted);
  }
  let ctx2 = ctx.clone();
  let slot2 = slot.clone();
  on_rayon(move || {
    let direct = DirectImport {
      ctx: &ctx2,
      dest: &slot2.pkg_dir,
      copies: Default::default(),
      unlinked: Default::default(),
      dir: Default::default(),
    };
    let stage =
      (ctx2.direct.load(Ordering::Relaxed) && ctx2.importer.hardlinks()).then_some(&direct as &dyn Stage);
    let check =
      expected.as_ref().map(|e| BodyCheck { integrity: &e.integrity, url: &e.url, expected: &e.sri });
    let extracted =
      extract_tarball(&slot2.dep_path, &bytes, &ctx2.blobs, ExtractLimits::default(), stage, check)?;
    // Closes the package directory it held open.
    drop(direct);
    drop(bytes);
    let requires_build = extracted.requires_build;
    let row = PackageFilesIndex {
      algo: "sha512".into(),
      requires_build: Some(requires_build),
      manifest: extracted.manifest,
      files: extracted.files,
      side_effects: None,
    };
    // The row goes in only now that every blob it names is in place.
    if let Some(key) = &slot2.index_key {
      ctx2.writer.put(key.clone(), msgpackr::encode(&row));
    }
    ctx2.fetched.fetch_add(1, Ordering::Relaxed);
    ctx2.emit(|| Event::Progress {
      status: "fetched",
      package_id: slot2.dep_path.clone(),
      requester: ctx2.requester.clone(),
    });
    if ctx2.cancel.is_cancelled() {
      return Err(InstallError::Aborted);
    }
    let count = row.files.len();
    // A staged package is in its slot already: no list of blobs to import from.
    let files: StoreFiles = if extracted.staged {
      Vec::new()
    } else {
      let store = ctx2.blobs.store();
      row
        .files
        .into_iter()
        .map(|(path, info)| (path, store.blob_path(&info.digest, info.is_executable()), info.mode))
        .collect()
    };
    let package = StoredPackage { files, requires_build };
    let imported = extracted.staged.then_some(count);
    import_slot(&ctx2, &slot2, &package, imported)?;
    report_imported(&ctx2, &slot2);
    Ok(())
  })
  .await?
}

/// A cold package's files written straight into its slot while they are stored: each file
/// is written once, then linked into the store (the same file under the same two names as
/// storing it and then hard-linking it out). A package that needs a build gets copies, as
/// imports give it, written from memory instead of copied back out of the store.
struct DirectImport<'a> {
  ctx: &'a Ctx,
  dest: &'a Path,
  /// The package needs a build: its files are copies.
  copies: std::sync::atomic::AtomicBool,
  /// The store could not link a file: it stayed a copy.
  unlinked: std::sync::atomic::AtomicBool,
  /// The package directory, open once [`Stage::begin`] prepared it: files are written and
  /// linked relative to it.
  dir: std::sync::OnceLock<pacquet_store::at::Dir>,
}

impl Stage for DirectImport<'_> {
  fn begin(&self, requires_build: bool, paths: &mut dyn Iterator<Item = &str>) -> Result<bool, StoreError> {
    self.copies.store(requires_build, Ordering::Relaxed);
    let import_err = |source| StoreError::Import { path: self.dest.to_path_buf(), source };
    let Some(dir) = self.ctx.importer.begin_direct(self.dest, paths).map_err(import_err)? else {
      return Ok(false);
    };
    Ok(self.dir.set(dir).is_ok())
  }

  fn file(&self, path: &str, digest: &str, bytes: &[u8], executable: bool) -> Result<(), StoreError> {
    let dir = self.dir.get().ok_or_else(|| StoreError::Import {
      path: self.dest.to_path_buf(),
      source: std::io::Error::other("a file before the package directory was prepared"),
    })?;
    let rel = Importer::direct_name(path);
    if self.copies.load(Ordering::Relaxed) {
      return self.ctx.blobs.write_with_copy(digest, bytes, executable, dir, &rel);
    }
    if !self.ctx.blobs.write_at(digest, bytes, executable, dir, &rel)? {
      // The store cannot link into this project: later packages are stored, then imported.
      self.ctx.direct.store(false, Ordering::Relaxed);
      self.unlinked.store(true, Ordering::Relaxed);
    }
    Ok(())
  }

  fn end(&self) -> Result<(), StoreError> {
    let marker = self.dest.join("package.json");
    let linked = (!self.copies.load(Ordering::Relaxed)).then(|| !self.unlinked.load(Ordering::Relaxed));
    let finished = self.ctx.importer.finish_direct(self.dest, linked);
    finished.map_err(|source| StoreError::Import { path: marker, source })
  }
}

fn parse_integrity(slot: &SlotPlan, integrity: Option<&str>) -> Result<Option<Integrity>, InstallError> {
  match integrity {
    None => Ok(None),
    Some(sri) => Integrity::parse(sri).map(Some).ok_or_else(|| {
      InstallError::Fetch(pacquet_fetch::FetchError::InvalidIntegrity {
        integrity: sri.to_string(),
        package: slot.dep_path.clone(),
      })
    }),
  }
}

/// The HTTP client for the tarballs, with no more connections than the open-file limit allows.
pub(crate) fn new_fetcher(options: &FetcherOptions) -> Result<Fetcher, FetchError> {
  let mut options = options.clone();
  options.network_concurrency = within_open_file_limit(options.network_concurrency);
  Fetcher::new(options)
}

/// Sockets count against the open-file limit like files do: under a low `ulimit -n`, fewer
/// downloads at once leave descriptors for the blobs, the imports, SQLite and Node itself.
fn within_open_file_limit(requested: usize) -> usize {
  let Some(limit) = pacquet_store::open_file_limit() else {
    return requested;
  };
  let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) as u64;
  // Node and its libraries hold a few dozen; each rayon worker and unpack slot a couple.
  let reserved = 64 + 8 * cpus;
  let sockets = limit.saturating_sub(reserved) / 2;
  requested.min(sockets.max(2) as usize)
}

/// Test-only: with `PACQUET_NATIVE_TEST_PANIC=<point>` in the environment the install panics
/// at that point (`call`, `install`, `lookup`, `import`), so the tests can show that a panic
/// becomes a rejected promise and never reaches Node.
pub fn test_panic(point: &str) {
  if std::env::var_os("PACQUET_NATIVE_TEST_PANIC").is_some_and(|v| v == point) {
    panic!("test panic at {point} (PACQUET_NATIVE_TEST_PANIC)");
  }
}

/// Imports the files and makes the dependency links of one slot, both at once.
/// `imported`: the files were placed already (see [`DirectImport`]), this many.
fn import_slot(
  ctx: &Ctx,
  slot: &SlotPlan,
  package: &StoredPackage,
  imported: Option<usize>,
) -> Result<(), InstallError> {
  test_panic("import");
  let package_files: Vec<PackageFile<'_>> = package
    .files
    .iter()
    .map(|(path, blob, mode)| PackageFile { path, blob, executable: mode & 0o111 != 0 })
    .collect();
  let modules = slot.slot_dir.join("node_modules");
  // Both halves below work inside the slot's node_modules: made once here, top-down, neither
  // races the other to it nor walks up through missing parents first.
  let mkdir_err = |path: &PathBuf| {
    let path = path.clone();
    move |source| pacquet_link::LinkError::Mkdir { path, source }
  };
  let new_slot = match std::fs::create_dir(&slot.slot_dir) {
    Ok(()) => true,
    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
    Err(_) => std::fs::create_dir_all(&slot.slot_dir).map(|()| false).map_err(mkdir_err(&slot.slot_dir))?,
  };
  std::fs::create_dir_all(&modules).map_err(mkdir_err(&modules))?;
  let (imported, linked) = rayon::join(
    || {
      let n = match imported {
        Some(n) => n,
        None if new_slot => {
          ctx.importer.import_new_package(&slot.pkg_dir, &package_files, package.requires_build)?
        }
        None => ctx.importer.import_package(&slot.pkg_dir, &package_files, package.requires_build)?,
      };
      if package.requires_build {
        if let Ok(mut list) = ctx.needs_build.lock() {
          list.push(slot.dep_path.clone());
        }
      }
      Ok::<_, pacquet_link::LinkError>(n)
    },
    || -> Result<(), InstallError> {
      for (alias, target) in &slot.links {
        symlink_dir(target, &modules.join(alias))?;
      }
      Ok(())
    },
  );
  let n = imported?;
  linked?;
  if n == 0 || matches!(slot.source, Source::Directory { .. }) {
    // The slot was complete already (its snapshot changed): drop links it no longer has.
    prune_links(&modules, &slot.name, &slot.links);
  }
  ctx.files.fetch_add(n as u64, Ordering::Relaxed);
  if let Some(method) = ctx.importer.method_used() {
    ctx.method_reported.call_once(|| ctx.emit(|| Event::ImportMethod { method: method.to_string() }));
  }
  Ok(())
}

/// Removes symlinks in a slot's `node_modules` that are not among `links`.
fn prune_links(modules: &Path, own_name: &str, links: &[(String, PathBuf)]) {
  let wanted: HashSet<&str> = links.iter().map(|(alias, _)| alias.as_str()).collect();
  let Ok(entries) = std::fs::read_dir(modules) else {
    return;
  };
  for entry in entries.flatten() {
    let name = entry.file_name().to_string_lossy().into_owned();
    let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
    if name.starts_with('@') && !is_link {
      let Ok(scoped) = std::fs::read_dir(entry.path()) else {
        continue;
      };
      for inner in scoped.flatten() {
        let alias = format!("{name}/{}", inner.file_name().to_string_lossy());
        if inner.file_type().is_ok_and(|t| t.is_symlink())
          && !wanted.contains(alias.as_str())
          && alias != own_name
        {
          let _ = std::fs::remove_file(inner.path());
        }
      }
    } else if is_link && !wanted.contains(name.as_str()) && name != own_name {
      let _ = std::fs::remove_file(entry.path());
    }
  }
}

fn report_imported(ctx: &Ctx, slot: &SlotPlan) {
  ctx.emit(|| Event::Imported {
    method: ctx.importer.method_used().unwrap_or("hardlink").to_string(),
    requester: ctx.requester.clone(),
    to: slot.pkg_dir.to_string_lossy().into_owned(),
  });
}

fn ms(d: Duration) -> f64 {
  d.as_secs_f64() * 1000.0
}

/// Runs blocking work off the async threads; a panic becomes an error, never a crash.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, InstallError> {
  tokio::task::spawn_blocking(f).await.map_err(|e| InstallError::Internal(panic_message(e)))
}

fn panic_message(e: tokio::task::JoinError) -> String {
  match e.try_into_panic() {
    Ok(payload) => payload
      .downcast_ref::<String>()
      .cloned()
      .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
      .unwrap_or_else(|| "panic".into()),
    Err(e) => e.to_string(),
  }
}

/// Runs CPU-bound work on rayon and awaits it; a panic becomes an error (rayon would
/// otherwise abort the process, and the process is the user's Node).
async fn on_rayon<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, InstallError> {
  let (tx, rx) = tokio::sync::oneshot::channel();
  rayon::spawn(move || {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
      payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
    });
    let _ = tx.send(result);
  });
  match rx.await {
    Ok(Ok(v)) => Ok(v),
    Ok(Err(message)) => Err(InstallError::Internal(message)),
    Err(_) => Err(InstallError::Internal("a worker stopped without an answer".into())),
  }
}
