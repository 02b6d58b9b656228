//! The HTTP side: one keep-alive client per install, a bound on requests in flight, and
//! pnpm's retry policy.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::auth::AuthHeaders;
use crate::error::FetchError;
use crate::integrity::Integrity;

/// pnpm's `fetchRetries` / `fetchRetryFactor` / `fetchRetryMintimeout` / `fetchRetryMaxtimeout`.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
  pub retries: u32,
  pub factor: f64,
  pub min_timeout: Duration,
  pub max_timeout: Duration,
}

impl Default for RetryPolicy {
  fn default() -> Self {
    RetryPolicy {
      retries: 2,
      factor: 10.0,
      min_timeout: Duration::from_secs(10),
      max_timeout: Duration::from_secs(60),
    }
  }
}

impl RetryPolicy {
  /// Delay before retry number `attempt` (1-based): `min × factor^(attempt-1)`, capped.
  pub fn delay(&self, attempt: u32) -> Duration {
    let ms = self.min_timeout.as_millis() as f64 * self.factor.powi(attempt.saturating_sub(1) as i32);
    Duration::from_millis(ms.min(self.max_timeout.as_millis() as f64).max(0.0) as u64)
  }
}

#[derive(Debug, Clone)]
pub struct FetcherOptions {
  pub network_concurrency: usize,
  pub retry: RetryPolicy,
  /// Longest wait for the server to answer or to send more of the body.
  pub fetch_timeout: Duration,
  pub auth: AuthHeaders,
  pub user_agent: String,
  /// The bytes of downloaded bodies held at once (until the caller drops them), give or
  /// take one large body per core. On a fast network downloads outrun unpacking; without a
  /// bound every body would wait in memory for a core.
  pub max_buffered_bytes: u64,
}

/// A downloaded tarball. Its bytes count against the fetcher's buffer bound until dropped.
pub struct Body {
  bytes: Vec<u8>,
  _budget: Option<OwnedSemaphorePermit>,
}

impl From<Vec<u8>> for Body {
  /// Bytes that were not downloaded (a local tarball): nothing to account for.
  fn from(bytes: Vec<u8>) -> Self {
    Body { bytes, _budget: None }
  }
}

impl std::ops::Deref for Body {
  type Target = [u8];
  fn deref(&self) -> &[u8] {
    &self.bytes
  }
}

/// What a retry looked like, for `pnpm:request-retry`.
#[derive(Debug, Clone)]
pub struct RetryInfo {
  pub attempt: u32,
  pub max_retries: u32,
  pub url: String,
  pub timeout_ms: u64,
  pub message: String,
  pub http_status: Option<u16>,
  pub code: Option<String>,
}

/// Hooks for progress reporting; all optional.
pub trait FetchEvents: Send + Sync {
  fn started(&self, _package_id: &str, _attempt: u32, _size: Option<u64>) {}
  fn retry(&self, _info: RetryInfo) {}
}

pub struct Fetcher {
  client: reqwest::Client,
  permits: Arc<Semaphore>,
  /// `max_buffered_bytes` in KiB.
  budget: Arc<Semaphore>,
  /// The most one body is charged: a share per core, so that as many large tarballs as
  /// there are cores can be held (and unpacked) at once.
  max_charge_kib: u32,
  options: FetcherOptions,
}

/// The largest tarball downloaded: as much as any tarball may unpack to.
const MAX_TARBALL_BYTES: u64 = 4 << 30;

enum Attempt {
  Final(FetchError),
  Retry(Failure),
}

/// What [`Fetcher::fetch`] downloads.
struct Target<'a> {
  url: &'a str,
  package_id: &'a str,
  integrity: Option<&'a Integrity>,
  expected_sri: &'a str,
}

/// Why an attempt failed, when another may succeed.
enum Failure {
  Status(u16),
  Integrity(String),
  Network { message: String, code: &'static str },
}

impl Fetcher {
  pub fn new(options: FetcherOptions) -> Result<Self, FetchError> {
    let client = reqwest::Client::builder()
      .user_agent(options.user_agent.clone())
      .connect_timeout(options.fetch_timeout)
      .read_timeout(options.fetch_timeout)
      .pool_max_idle_per_host(options.network_concurrency.max(1))
      // pnpm follows up to 20 redirects and sends no Referer. reqwest drops the
      // Authorization header when a redirect leads to another host, port or scheme.
      .redirect(reqwest::redirect::Policy::limited(20))
      .referer(false)
      .build()
      .map_err(|e| FetchError::Network { url: String::new(), attempts: 0, message: e.to_string() })?;
    let permits = Arc::new(Semaphore::new(options.network_concurrency.max(1)));
    let budget_kib = (options.max_buffered_bytes / 1024).clamp(1, Semaphore::MAX_PERMITS as u64 / 2);
    let budget = Arc::new(Semaphore::new(budget_kib as usize));
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let max_charge_kib = (budget_kib / cpus).clamp(1, u32::MAX as u64) as u32;
    Ok(Fetcher { client, permits, budget, max_charge_kib, options })
  }

  /// Downloads `url` whole, retrying as pnpm does, and checks it against `integrity`.
  ///
  /// As in pnpm, everything but 401, 403 and 404 is retried: other HTTP statuses, network
  /// errors, timeouts, bodies cut short, and bodies that fail the integrity check (a proxy
  /// or a CDN may have served a bad copy). With `integrity: None` the caller checks the body
  /// itself and hands a mismatch to [`Self::fetch_again`].
  pub async fn fetch(
    &self,
    url: &str,
    package_id: &str,
    integrity: Option<&Integrity>,
    expected_sri: &str,
    events: &dyn FetchEvents,
    cancel: &CancellationToken,
  ) -> Result<Body, FetchError> {
    let target = Target { url, package_id, integrity, expected_sri };
    self.retrying(target, None, events, cancel).await
  }

  /// Carries on [`Self::fetch`] after its caller found the first body not to match:
  /// `mismatch` is that [`FetchError::Integrity`], which is reported and retried as a failed
  /// first attempt would have been (any other error is returned as it is). The next bodies
  /// are checked here.
  pub async fn fetch_again(
    &self,
    mismatch: FetchError,
    package_id: &str,
    integrity: &Integrity,
    events: &dyn FetchEvents,
    cancel: &CancellationToken,
  ) -> Result<Body, FetchError> {
    let FetchError::Integrity { url, expected, actual } = mismatch else {
      return Err(mismatch);
    };
    let target = Target { url: &url, package_id, integrity: Some(integrity), expected_sri: &expected };
    self.retrying(target, Some(Failure::Integrity(actual)), events, cancel).await
  }

  async fn retrying(
    &self,
    target: Target<'_>,
    mut first_failure: Option<Failure>,
    events: &dyn FetchEvents,
    cancel: &CancellationToken,
  ) -> Result<Body, FetchError> {
    let Target { url, package_id, integrity, expected_sri } = target;
    let max_retries = self.options.retry.retries;
    let mut attempt = 0;
    loop {
      attempt += 1;
      let failure = match first_failure.take() {
        Some(failure) => failure,
        None => {
          let result = tokio::select! {
            r = self.attempt(url, package_id, attempt, events) => r,
            () = cancel.cancelled() => return Err(FetchError::Aborted),
          };
          match result {
            Ok(bytes) => match integrity.map(|i| i.check(&bytes.bytes)) {
              Some(Err(actual)) => Failure::Integrity(actual),
              _ => return Ok(bytes),
            },
            Err(Attempt::Final(e)) => return Err(e),
            Err(Attempt::Retry(failure)) => failure,
          }
        }
      };
      if attempt > max_retries {
        return Err(match failure {
          Failure::Status(status) => http_error(url, status),
          Failure::Integrity(actual) => {
            FetchError::Integrity { url: url.to_string(), expected: expected_sri.to_string(), actual }
          }
          Failure::Network { message, .. } => {
            FetchError::Network { url: url.to_string(), attempts: attempt, message }
          }
        });
      }
      let delay = self.options.retry.delay(attempt);
      let (message, http_status, code) = match failure {
        Failure::Status(status) => (format!("{} {}", status, reason(status)), Some(status), None),
        Failure::Integrity(actual) => {
          let e = FetchError::Integrity { url: url.to_string(), expected: expected_sri.to_string(), actual };
          (e.to_string(), None, Some(e.error_code()))
        }
        Failure::Network { message, code } => (message, None, Some(code.to_string())),
      };
      events.retry(RetryInfo {
        attempt,
        max_retries,
        url: url.to_string(),
        timeout_ms: delay.as_millis() as u64,
        message,
        http_status,
        code,
      });
      tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = cancel.cancelled() => return Err(FetchError::Aborted),
      }
    }
  }

  async fn attempt(
    &self,
    url: &str,
    package_id: &str,
    attempt: u32,
    events: &dyn FetchEvents,
  ) -> Result<Body, Attempt> {
    let _permit = self.permits.acquire().await.map_err(|e| Attempt::Final(network(url, e.to_string())))?;
    let mut request = self.client.get(url);
    if let Some(header) = self.options.auth.for_url(url) {
      request = request.header(reqwest::header::AUTHORIZATION, header);
    }
    let timeout_ms = self.options.fetch_timeout.as_millis();
    let retry = |e: reqwest::Error, received: Option<(usize, Option<u64>)>| {
      let code = error_code(&e);
      let mut message = if e.is_timeout() {
        format!("no data from the server for {timeout_ms} ms (fetchTimeout)")
      } else {
        error_chain(&e)
      };
      if let Some((got, expected)) = received {
        let of = expected.map(|n| format!(" of {n}")).unwrap_or_default();
        message = format!("{message} (the body stopped after {got}{of} bytes)");
      }
      Attempt::Retry(Failure::Network { message, code })
    };
    let mut response = request.send().await.map_err(|e| retry(e, None))?;
    let status = response.status().as_u16();
    if status != 200 {
      // pnpm gives up at once only where asking again cannot help.
      return Err(if matches!(status, 401 | 403 | 404) {
        Attempt::Final(http_error(url, status))
      } else {
        Attempt::Retry(Failure::Status(status))
      });
    }
    let size = response.content_length();
    let too_large =
      || Attempt::Final(FetchError::TooLarge { package: package_id.to_string(), limit: MAX_TARBALL_BYTES });
    if size.is_some_and(|n| n > MAX_TARBALL_BYTES) {
      return Err(too_large());
    }
    // Wait for room before taking the body in. The connection waits meanwhile: that is the
    // back-pressure. A large body is charged one core's share of the bound, so memory stays
    // within the bound plus, at worst, one large body per core.
    let kib = size.map_or(1024, |n| n.div_ceil(1024)).clamp(1, self.max_charge_kib.into()) as u32;
    let budget = self
      .budget
      .clone()
      .acquire_many_owned(kib)
      .await
      .map_err(|e| Attempt::Final(network(url, e.to_string())))?;
    events.started(package_id, attempt, size);
    let mut body = Vec::new();
    // The announced size is the server's word: reserve it only within reason.
    let _ = body.try_reserve_exact(size.unwrap_or(0).min(256 << 20) as usize);
    loop {
      match response.chunk().await {
        Ok(Some(chunk)) => {
          if (body.len() + chunk.len()) as u64 > MAX_TARBALL_BYTES {
            return Err(too_large());
          }
          body.extend_from_slice(&chunk);
        }
        Ok(None) => break,
        Err(e) => return Err(retry(e, Some((body.len(), size)))),
      }
    }
    if let Some(size) = size {
      if body.len() as u64 != size {
        return Err(Attempt::Retry(Failure::Network {
          message: format!("the body ended after {} of {size} bytes", body.len()),
          code: "ERR_PNPM_BAD_TARBALL_SIZE",
        }));
      }
    }
    Ok(Body { bytes: body, _budget: Some(budget) })
  }
}

fn network(url: &str, message: String) -> FetchError {
  FetchError::Network { url: url.to_string(), attempts: 1, message }
}

fn error_code(e: &reqwest::Error) -> &'static str {
  if e.is_timeout() {
    "ETIMEDOUT"
  } else if e.is_connect() {
    "ECONNREFUSED"
  } else {
    "ECONNRESET"
  }
}

/// The error and its causes: reqwest's own message alone ("error decoding response body")
/// does not say what happened.
fn error_chain(e: &reqwest::Error) -> String {
  let mut message = e.to_string();
  let mut source = std::error::Error::source(e);
  while let Some(cause) = source {
    let text = cause.to_string();
    if !message.contains(&text) {
      message = format!("{message}: {text}");
    }
    source = cause.source();
  }
  message
}

fn reason(status: u16) -> &'static str {
  reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error")
}

fn http_error(url: &str, status: u16) -> FetchError {
  let hint = match status {
    401 | 403 => "The registry refused the credentials (or their absence). Set an Authorization header for this registry with `authHeaderByUri` (the CLI reads `_authToken` from .npmrc).",
    404 => "The package is not in the registry this install was pointed at. Check `registries` and the scope settings.",
    _ => "The registry failed. Try again later.",
  };
  FetchError::HttpStatus {
    url: url.to_string(),
    status,
    reason: reason(status).to_string(),
    hint: hint.to_string(),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn backoff_grows_and_is_capped() {
    let p = RetryPolicy::default();
    assert_eq!(p.delay(1), Duration::from_secs(10));
    assert_eq!(p.delay(2), Duration::from_secs(60));
    let fast = RetryPolicy {
      retries: 3,
      factor: 2.0,
      min_timeout: Duration::from_millis(10),
      max_timeout: Duration::from_millis(30),
    };
    assert_eq!(fast.delay(1), Duration::from_millis(10));
    assert_eq!(fast.delay(2), Duration::from_millis(20));
    assert_eq!(fast.delay(3), Duration::from_millis(30));
  }
}
