//! `@pacquet/native`: the Node.js face of the install engine in `crates/`.
//!
//! This crate only converts: JS options → [`pacquet_install::InstallOptions`], engine events →
//! calls of `onProgress`, `AbortSignal` → cancellation token, engine errors → JS `Error`s with
//! `code` and `hint`. The work itself runs on Rust threads; the event loop is never blocked.

#![deny(clippy::all)]

mod options;
mod progress;

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use pacquet_install::{install, InstallError, LockfileSource, Reporter};
use tokio_util::sync::CancellationToken;

pub use options::{LinkOptions, LinkResult, LinkTimings};

/// Installs the packages of a pnpm v9 lockfile (frozen: nothing is resolved) into the store
/// and `node_modules/.pnpm`, and links each importer's direct dependencies.
///
/// Resolves with a {@link LinkResult}. Rejects with an `Error` whose `code` is an
/// `ERR_PNPM_*` code (or `ABORT_ERR` when `options.signal` aborts) and whose `hint` says
/// what to do about it.
///
/// @param lockfile - path of `pnpm-lock.yaml`, of the directory that holds it, or the
///   lockfile already parsed into an object of the same shape
/// @param options - see {@link LinkOptions}
// `catch_unwind`: the last net, for a panic while the arguments are converted.
#[napi(ts_return_type = "Promise<LinkResult>", catch_unwind)]
pub fn link_virtual_store<'env>(
  env: &'env Env,
  #[napi(ts_arg_type = "string | Record<string, unknown>")] lockfile: Unknown<'env>,
  options: Option<LinkOptions<'env>>,
) -> Result<PromiseRaw<'env, LinkResult>> {
  // A panic while the call is set up (on the JS thread) rejects like one in the engine does.
  match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| start_install(env, lockfile, options))) {
    Ok(promise) => promise,
    Err(payload) => rejected(env, InstallError::Internal(panic_text(payload.as_ref()))),
  }
}

fn start_install<'env>(
  env: &'env Env,
  lockfile: Unknown<'env>,
  options: Option<LinkOptions<'env>>,
) -> Result<PromiseRaw<'env, LinkResult>> {
  pacquet_install::test_panic("call");
  let source = lockfile_source(env, lockfile)?;
  let (install_options, on_progress, signal) = match options {
    Some(o) => o.into_parts()?,
    None => (Default::default(), None, None),
  };

  let cancel = CancellationToken::new();
  let abort_hook = match signal {
    Some(signal) => Some(options::AbortHook::attach(env, signal, cancel.clone())?),
    None => None,
  };
  let progress = match on_progress {
    Some(f) => Some(Arc::new(progress::JsReporter::new(env, f)?)),
    None => None,
  };

  let reporter: Arc<dyn Reporter> = match &progress {
    Some(p) => p.clone(),
    None => Arc::new(pacquet_install::NoopReporter),
  };
  let work = async move {
    let ticker = progress.as_ref().map(|p| p.clone().start_ticker());
    // A task of its own, so that a panic inside the engine becomes an error, not a crash.
    let result = tokio::spawn(install(source, install_options, reporter, cancel)).await.unwrap_or_else(|e| {
      let message = match e.try_into_panic() {
        Ok(payload) => panic_text(payload.as_ref()),
        Err(e) => e.to_string(),
      };
      Err(InstallError::Internal(format!("the install task failed: {message}")))
    });
    if let Some(t) = ticker {
      t.abort();
    }
    // Everything reported so far reaches JS before the promise settles.
    if let Some(p) = &progress {
      p.flush().await;
    }
    Ok(result)
  };
  env.spawn_future_with_callback(work, move |env, result| {
    if let Some(hook) = abort_hook {
      hook.detach(env);
    }
    match result {
      Ok(summary) => Ok(LinkResult::from(summary)),
      Err(e) => Err(js_error(env, &e)),
    }
  })
}

/// A promise that rejects with `error`, for failures before the work could start.
fn rejected<'env>(env: &'env Env, error: InstallError) -> Result<PromiseRaw<'env, LinkResult>> {
  env.spawn_future_with_callback(async { Ok(()) }, move |env, ()| Err(js_error(env, &error)))
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
  payload
    .downcast_ref::<String>()
    .cloned()
    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
    .unwrap_or_else(|| "panic".into())
}

fn lockfile_source(env: &Env, lockfile: Unknown<'_>) -> Result<LockfileSource> {
  Ok(match lockfile.get_type()? {
    ValueType::String => LockfileSource::Path(lockfile.coerce_to_string()?.into_utf8()?.as_str()?.into()),
    ValueType::Object => LockfileSource::Value(env.from_js_value(lockfile)?),
    _ => return Err(Error::new(Status::InvalidArg, "lockfile must be a path or a lockfile object")),
  })
}

/// Where the store of a project is, as {@link linkVirtualStore} would choose it with the
/// same options (`dir`, `storeDir`), including its `v11` directory (pnpm's `store path`).
#[napi(catch_unwind)]
pub fn store_path(env: &Env, options: Option<LinkOptions<'_>>) -> Result<String> {
  let options = match options {
    Some(o) => o.into_parts()?.0,
    None => Default::default(),
  };
  match pacquet_install::store_path(options) {
    Ok(path) => Ok(path.to_string_lossy().into_owned()),
    Err(e) => Err(js_error(env, &e)),
  }
}

/// The dep paths of installed packages whose files in `node_modules` no longer match what
/// the store recorded for them (pnpm's `store status`): files there are hardlinks to the
/// store, so an edit there is an edit of the store. Resolves to `[]` when nothing changed.
///
/// @param lockfile - as for {@link linkVirtualStore}
/// @param options - as for {@link linkVirtualStore} (`dir`, `storeDir`, `virtualStoreDir`, …)
#[napi(ts_return_type = "Promise<Array<string>>", catch_unwind)]
pub fn store_status<'env>(
  env: &'env Env,
  #[napi(ts_arg_type = "string | Record<string, unknown>")] lockfile: Unknown<'env>,
  options: Option<LinkOptions<'env>>,
) -> Result<PromiseRaw<'env, Vec<String>>> {
  let source = lockfile_source(env, lockfile)?;
  let options = match options {
    Some(o) => o.into_parts()?.0,
    None => Default::default(),
  };
  let work = async move {
    Ok(
      tokio::task::spawn_blocking(move || pacquet_install::store_status(source, options))
        .await
        .unwrap_or_else(|e| Err(InstallError::Internal(format!("the store check failed: {e}")))),
    )
  };
  env.spawn_future_with_callback(work, |env, result| result.map_err(|e| js_error(env, &e)))
}

/// Builds `Error { message, code, hint }` on the JS thread.
fn js_error(env: &Env, e: &InstallError) -> Error {
  let code = e.error_code();
  let message = if e.is_aborted() { "The operation was aborted".to_string() } else { e.to_string() };
  let mut obj = match env.create_error(Error::new(Status::GenericFailure, message.clone())) {
    Ok(obj) => obj,
    Err(err) => return err,
  };
  let _ = obj.set_named_property("code", code.as_str());
  let _ = obj.set_named_property("hint", e.hint());
  if e.is_aborted() {
    let _ = obj.set_named_property("name", "AbortError");
  }
  Error::from(obj.to_unknown())
}
