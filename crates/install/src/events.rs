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
  /// `pnpm:stats`. pnpm's reporter waits for two per importer, one with `added` and one with
  /// `removed`, before it prints "Packages: +N".
  Stats { prefix: String, added: Option<usize>, removed: Option<usize> },
  /// `pnpm:context`: where the stores are; `currentLockfileExists` false means a first install.
  Context { current_lockfile_exists: bool, store_dir: String, virtual_store_dir: String },
  /// `pnpm:package-manifest` with the importer's `package.json` as it was before the install
  /// (`{}` without one). The reporter prints no summary before it has this.
  PackageManifest { prefix: String, initial: Value },
  /// `pnpm:root` with `added`: a direct dependency that this install linked anew.
  RootAdded(RootDep),
  /// `pnpm:summary`: the importers are linked; the reporter prints the direct dependencies.
  Summary { prefix: String },
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
      Event::Context { current_lockfile_exists, store_dir, virtual_store_dir } => json!({
        "name": "pnpm:context", "level": "debug",
        "currentLockfileExists": current_lockfile_exists, "storeDir": store_dir, "virtualStoreDir": virtual_store_dir
      }),
      Event::PackageManifest { prefix, initial } => {
        json!({"name": "pnpm:package-manifest", "level": "debug", "prefix": prefix, "initial": initial})
      }
      Event::RootAdded(dep) => {
        let mut added = json!({"dependencyType": dep.dependency_type, "id": dep.id, "name": dep.name, "realName": dep.real_name});
        if let Some(v) = &dep.version {
          added["version"] = json!(v);
        }
        if let Some(l) = &dep.linked_from {
          added["linkedFrom"] = json!(l);
        }
        json!({"name": "pnpm:root", "level": "debug", "prefix": dep.prefix, "added": added})
      }
      Event::Summary { prefix } => json!({"name": "pnpm:summary", "level": "debug", "prefix": prefix}),
    }
  }
}

/// A direct dependency of an importer, as `pnpm:root` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RootDep {
  /// The importer's directory.
  pub prefix: String,
  /// `prod`, `dev` or `optional`.
  pub dependency_type: &'static str,
  /// `name@version` (without peer suffix), or the `link:` reference.
  pub id: String,
  /// The alias in `node_modules`.
  pub name: String,
  pub real_name: String,
  pub version: Option<String>,
  /// The directory a `link:` dependency points at.
  pub linked_from: Option<String>,
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
