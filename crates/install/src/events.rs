//! Progress events in the shapes of pnpm's loggers (`@pnpm/core-loggers`), so pnpm's own
//! reporter can render them. Serialised without the bunyan envelope, as pnpm 12's addon does.

use serde_json::{json, Value};

/// One log record.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
  /// `pnpm:progress`: `resolved`, `found_in_store`, `fetched`.
  Progress { status: &'static str, package_id: String, requester: String },
  /// `pnpm:progress` with status `imported`.
  Imported { method: String, requester: String, to: String },
  /// `pnpm:stage`.
  Stage { prefix: String, stage: &'static str },
  /// `pnpm:fetching-progress` with status `started`.
  FetchingStarted { package_id: String, attempt: u32, size: Option<u64> },
  /// `pnpm:request-retry`.
  RequestRetry {
    attempt: u32,
    max_retries: u32,
    url: String,
    timeout: u64,
    message: String,
    http_status: Option<u16>,
    code: Option<String>,
  },
  /// `pnpm:skipped-optional-dependency`.
  SkippedOptional {
    id: String,
    name: String,
    version: String,
    prefix: String,
    reason: &'static str,
    details: String,
  },
  /// `pnpm:stats`.
  Stats { prefix: String, added: Option<usize>, removed: Option<usize> },
  /// `pnpm:package-import-method`.
  ImportMethod { method: String },
  /// `pnpm:global` warning.
  Warning { message: String },
}

impl Event {
  pub fn to_json(&self) -> Value {
    match self {
      Event::Progress { status, package_id, requester } => {
        json!({"name": "pnpm:progress", "level": "debug", "status": status, "packageId": package_id, "requester": requester})
      }
      Event::Imported { method, requester, to } => {
        json!({"name": "pnpm:progress", "level": "debug", "status": "imported", "method": method, "requester": requester, "to": to})
      }
      Event::Stage { prefix, stage } => {
        json!({"name": "pnpm:stage", "level": "debug", "prefix": prefix, "stage": stage})
      }
      Event::FetchingStarted { package_id, attempt, size } => {
        json!({"name": "pnpm:fetching-progress", "level": "debug", "status": "started", "packageId": package_id, "attempt": attempt, "size": size})
      }
      Event::RequestRetry { attempt, max_retries, url, timeout, message, http_status, code } => {
        let mut error = json!({ "message": message });
        if let Some(s) = http_status {
          error["httpStatusCode"] = json!(s);
        }
        if let Some(c) = code {
          error["code"] = json!(c);
        }
        json!({"name": "pnpm:request-retry", "level": "debug", "attempt": attempt, "maxRetries": max_retries,
               "method": "GET", "url": url, "timeout": timeout, "error": error})
      }
      Event::SkippedOptional { id, name, version, prefix, reason, details } => json!({
        "name": "pnpm:skipped-optional-dependency", "level": "debug",
        "package": {"id": id, "name": name, "version": version}, "prefix": prefix, "reason": reason, "details": details
      }),
      Event::Stats { prefix, added, removed } => {
        let mut v = json!({"name": "pnpm:stats", "level": "debug", "prefix": prefix});
        if let Some(a) = added {
          v["added"] = json!(a);
        }
        if let Some(r) = removed {
          v["removed"] = json!(r);
        }
        v
      }
      Event::ImportMethod { method } => {
        json!({"name": "pnpm:package-import-method", "level": "debug", "method": method})
      }
      Event::Warning { message } => json!({"name": "pnpm:global", "level": "warn", "message": message}),
    }
  }
}

/// Receives events from any thread. Implementations must be cheap and must not fail.
pub trait Reporter: Send + Sync {
  fn emit(&self, event: Event);
  /// Whether anyone listens; lets the pipeline skip building events nobody reads.
  fn enabled(&self) -> bool {
    true
  }
}

pub struct NoopReporter;

impl Reporter for NoopReporter {
  fn emit(&self, _: Event) {}
  fn enabled(&self) -> bool {
    false
  }
}
