//! A registry on 127.0.0.1 that misbehaves on demand: what an install does about it, and
//! what it leaves in the store when it gives up (no row, no stray blob, no temporary file,
//! and a later install against a healthy registry succeeds).

mod support;

use std::path::PathBuf;

use pacquet_install::{Event, InstallError, InstallOptions};
use support::harness::{assert_store_holds_only, code, key_of, options, retries, run};
use support::{publish, Fault, Pkg, Registry};

/// A project depending on `ok@1.0.0` (always served) and `flaky@1.0.0` (the one that
/// misbehaves), with its store.
struct Project {
  _tmp: tempfile::TempDir,
  dir: PathBuf,
  store: PathBuf,
  ok_key: String,
  flaky_key: String,
  flaky_tgz: Vec<u8>,
}

const FLAKY: &str = "/flaky/-/flaky-1.0.0.tgz";

fn project(registry: &Registry) -> Project {
  let tmp = tempfile::tempdir().unwrap();
  let (dir, store) = (tmp.path().join("p"), tmp.path().join("store"));
  std::fs::create_dir_all(&dir).unwrap();
  // Big enough that "half the body" is many TCP segments.
  let noise: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
  let flaky = Pkg::new("flaky", "1.0.0").file("data.bin", &noise, 0o644);
  let ok = Pkg::new("ok", "1.0.0");
  let (ok_key, flaky_tgz) = (key_of(&ok.tarball(), "ok", "1.0.0"), flaky.tarball());
  let flaky_key = key_of(&flaky_tgz, "flaky", "1.0.0");
  std::fs::write(
    dir.join("pnpm-lock.yaml"),
    publish(registry, &[ok, flaky], &[("ok", "1.0.0"), ("flaky", "1.0.0")]),
  )
  .unwrap();
  Project { _tmp: tmp, dir, store, ok_key, flaky_key, flaky_tgz }
}

impl Project {
  /// After a failed install: `ok` may be stored whole, `flaky` left no trace; then a
  /// healthy registry completes the install.
  async fn recovers(&self, registry: &Registry) {
    let has_ok = support::harness::row_count(&self.store) == 1;
    let expected: Vec<&str> = if has_ok { vec![&self.ok_key] } else { vec![] };
    assert_store_holds_only(&self.store, &expected);
    assert!(!self.dir.join("node_modules/.pnpm/flaky@1.0.0/node_modules/flaky/package.json").exists());
    registry.faults(FLAKY, vec![]);
    run(&self.dir, options(registry, &self.store)).await.0.unwrap();
    let data = self.dir.join("node_modules/flaky/data.bin");
    assert_eq!(std::fs::read(data).unwrap().len(), 200_000);
    assert_store_holds_only(&self.store, &[&self.ok_key, &self.flaky_key]);
  }
}

/// Installs with `faults` on `flaky` (and options as `tweak` sets them): the install must
/// fail with `expected`.
async fn failing(
  faults: Vec<Fault>,
  tweak: impl FnOnce(&mut InstallOptions),
  expected: &str,
) -> (Registry, Project, InstallError, Vec<Event>) {
  let registry = Registry::start().await;
  let p = project(&registry);
  registry.faults(FLAKY, faults);
  let mut o = options(&registry, &p.store);
  tweak(&mut o);
  let (result, events) = run(&p.dir, o).await;
  let err = result.unwrap_err();
  assert_eq!(code(&err), expected, "{err}");
  assert!(!err.hint().is_empty());
  (registry, p, err, events)
}

fn requests_for(registry: &Registry, path: &str) -> usize {
  registry.requests().iter().filter(|p| *p == path).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_500_and_503_are_retried_then_fail_with_the_status_and_leave_nothing() {
  let statuses = [503, 500, 503].map(Fault::Status).to_vec();
  let (registry, p, err, events) = failing(statuses, |_| {}, "ERR_PNPM_FETCH_503").await;
  assert!(err.to_string().contains(FLAKY), "{err}");
  // pnpm's default fetchRetries (2): three requests, a retry event before each new one.
  assert_eq!(requests_for(&registry, FLAKY), 3);
  assert_eq!(retries(&events), vec![(1, Some(503), None), (2, Some(500), None)]);
  p.recovers(&registry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_events_carry_pnpms_backoff() {
  let registry = Registry::start().await;
  let p = project(&registry);
  registry.fail(FLAKY, &[500, 500]);
  let mut o = options(&registry, &p.store);
  o.fetch_retries = Some(3);
  o.fetch_retry_factor = Some(3.0);
  o.fetch_retry_mintimeout = Some(2);
  o.fetch_retry_maxtimeout = Some(5);
  let (result, events) = run(&p.dir, o).await;
  result.unwrap();
  let timeouts: Vec<(u32, u32, u64)> = events
    .iter()
    .filter_map(|e| match e {
      Event::RequestRetry { attempt, max_retries, timeout, .. } => Some((*attempt, *max_retries, *timeout)),
      _ => None,
    })
    .collect();
  // min × factor^(attempt-1), capped at max.
  assert_eq!(timeouts, vec![(1, 3, 2), (2, 3, 5)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_reset_mid_body_is_retried_and_then_fails_clearly() {
  let registry = Registry::start().await;
  let p = project(&registry);
  // Once: the retry succeeds.
  registry.faults(FLAKY, vec![Fault::ResetMidBody]);
  let (result, events) = run(&p.dir, options(&registry, &p.store)).await;
  result.unwrap();
  assert_eq!(retries(&events).len(), 1);
  assert_eq!(requests_for(&registry, FLAKY), 2);

  // Every time: the error says the transfer broke, after all attempts.
  let faults = vec![Fault::ResetMidBody, Fault::ResetMidBody, Fault::Drop];
  let (registry, p, err, events) = failing(faults, |_| {}, "ERR_PNPM_TARBALL_FETCH_FAILED").await;
  assert!(err.to_string().contains("3 attempt(s)"), "{err}");
  assert!(retries(&events).iter().all(|(_, status, code)| status.is_none() && code.is_some()));
  p.recovers(&registry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_short_of_its_content_length_is_retried_and_then_fails_clearly() {
  let faults = vec![Fault::CutShort; 3];
  let (registry, p, err, events) = failing(faults, |_| {}, "ERR_PNPM_TARBALL_FETCH_FAILED").await;
  let size = p.flaky_tgz.len();
  assert!(err.to_string().contains(&format!("of {size} bytes")), "{err}");
  assert_eq!(retries(&events).len(), 2);
  p.recovers(&registry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_cut_off_by_fetch_timeout() {
  // Headers and a little of the body, then nothing: each attempt ends at fetchTimeout.
  let faults = vec![Fault::Stall(1000); 3];
  let short = |o: &mut InstallOptions| o.fetch_timeout = Some(150);
  let (registry, p, err, events) = failing(faults, short, "ERR_PNPM_TARBALL_FETCH_FAILED").await;
  assert!(err.to_string().contains("fetchTimeout"), "{err}");
  assert_eq!(
    retries(&events).iter().map(|(_, _, c)| c.as_deref()).collect::<Vec<_>>(),
    vec![Some("ETIMEDOUT"); 2]
  );
  assert_eq!(requests_for(&registry, FLAKY), 3);
  p.recovers(&registry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_cut_off_by_fetch_timeout() {
  let short = |o: &mut InstallOptions| o.fetch_timeout = Some(150);
  let (registry, p, err, _) = failing(vec![Fault::Hold; 3], short, "ERR_PNPM_TARBALL_FETCH_FAILED").await;
  assert!(err.to_string().contains("fetchTimeout"), "{err}");
  p.recovers(&registry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_that_keeps_coming_succeeds() {
  let registry = Registry::start().await;
  let p = project(&registry);
  // fetchTimeout bounds the silence between bytes, not the whole download.
  registry.faults(FLAKY, vec![Fault::Trickle(4096)]);
  let mut o = options(&registry, &p.store);
  o.fetch_timeout = Some(5_000);
  let (result, events) = run(&p.dir, o).await;
  result.unwrap();
  assert!(retries(&events).is_empty());
  assert_eq!(std::fs::read(p.dir.join("node_modules/flaky/data.bin")).unwrap().len(), 200_000);
  assert_store_holds_only(&p.store, &[&p.ok_key, &p.flaky_key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_not_found_answers_are_final_other_client_errors_are_retried() {
  for (status, requests) in [(401, 1), (403, 1), (404, 1), (410, 3), (400, 3)] {
    let faults = vec![Fault::Status(status); 3];
    let (registry, p, _, events) = failing(faults, |_| {}, &format!("ERR_PNPM_FETCH_{status}")).await;
    assert_eq!(requests_for(&registry, FLAKY), requests, "{status}");
    assert_eq!(retries(&events).len(), requests - 1, "{status}");
    p.recovers(&registry).await;
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_with_credentials_is_not_retried() {
  let registry = Registry::start().await;
  let p = project(&registry);
  registry.require_auth("Bearer right");
  let mut o = options(&registry, &p.store);
  o.auth_header_by_uri
    .insert(format!("//{}", registry.url.trim_start_matches("http://")), "Bearer wrong".into());
  let (result, events) = run(&p.dir, o.clone()).await;
  assert_eq!(code(&result.unwrap_err()), "ERR_PNPM_FETCH_401");
  assert!(retries(&events).is_empty());
  assert!(registry.auth_headers().iter().all(|(_, h)| h.as_deref() == Some("Bearer wrong")));
  assert!(requests_for(&registry, FLAKY) <= 1 && requests_for(&registry, "/ok/-/ok-1.0.0.tgz") <= 1);
  assert_store_holds_only(&p.store, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_header_does_not_follow_a_redirect_to_another_host() {
  let registry = Registry::start().await;
  let mirror = Registry::start().await;
  let p = project(&registry);
  let header = "Bearer secret";
  // Same host: the header goes along. Another port is another host: it does not.
  registry.faults("/ok/-/ok-1.0.0.tgz", vec![Fault::Redirect(format!("{}moved/ok.tgz", registry.url))]);
  registry.add("/moved/ok.tgz", Pkg::new("ok", "1.0.0").tarball());
  registry.faults(FLAKY, vec![Fault::Redirect(format!("{}flaky.tgz", mirror.url))]);
  mirror.add("/flaky.tgz", p.flaky_tgz.clone());
  let mut o = options(&registry, &p.store);
  o.auth_header_by_uri.insert(format!("//{}", registry.url.trim_start_matches("http://")), header.into());
  run(&p.dir, o).await.0.unwrap();
  let mut seen = registry.auth_headers();
  seen.sort();
  let expect = |path: &str| (path.to_string(), Some(header.to_string()));
  assert_eq!(seen, vec![expect(FLAKY), expect("/moved/ok.tgz"), expect("/ok/-/ok-1.0.0.tgz")]);
  assert_eq!(mirror.auth_headers(), vec![("/flaky.tgz".to_string(), None)]);
  assert_store_holds_only(&p.store, &[&p.ok_key, &p.flaky_key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_fails_its_integrity_is_fetched_again_as_pnpm_does() {
  let registry = Registry::start().await;
  let p = project(&registry);
  // A proxy serving a bad copy: pnpm retries, then reports the checksum.
  registry.add(FLAKY, Pkg::new("flaky", "1.0.0").tarball());
  let (result, events) = run(&p.dir, options(&registry, &p.store)).await;
  let err = result.unwrap_err();
  assert_eq!(code(&err), "ERR_PNPM_TARBALL_INTEGRITY");
  assert_eq!(requests_for(&registry, FLAKY), 3);
  assert_eq!(
    retries(&events).iter().map(|(_, _, c)| c.as_deref()).collect::<Vec<_>>(),
    vec![Some("ERR_PNPM_TARBALL_INTEGRITY"); 2]
  );
  registry.add(FLAKY, p.flaky_tgz.clone());
  p.recovers(&registry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_retries_zero_fails_on_the_first_fault() {
  let no_retries = |o: &mut InstallOptions| o.fetch_retries = Some(0);
  let (registry, p, _, events) =
    failing(vec![Fault::CutShort], no_retries, "ERR_PNPM_TARBALL_FETCH_FAILED").await;
  assert!(retries(&events).is_empty());
  assert_eq!(requests_for(&registry, FLAKY), 1);
  p.recovers(&registry).await;
}

/// On a fast network downloads outrun unpacking: the bodies held at once stay within the
/// fetcher's bound (one core's share per large body), a fetch beyond it waits until a body
/// is dropped, and a body larger than the whole bound still comes.
#[tokio::test]
async fn downloaded_bodies_held_at_once_are_bounded() {
  use pacquet_fetch::{AuthHeaders, FetchEvents, Fetcher, FetcherOptions, RetryPolicy};
  struct Quiet;
  impl FetchEvents for Quiet {}

  let registry = Registry::start().await;
  let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
  let share = 64 << 10;
  for i in 0..=cpus {
    registry.add(&format!("/t{i}.tgz"), vec![i as u8; share]);
  }
  registry.add("/big.tgz", vec![9; 4 * cpus * share]);
  let fetcher = Fetcher::new(FetcherOptions {
    network_concurrency: 16,
    retry: RetryPolicy::default(),
    fetch_timeout: std::time::Duration::from_secs(10),
    auth: AuthHeaders::new([]),
    user_agent: "test".into(),
    max_buffered_bytes: (cpus * share) as u64,
  })
  .unwrap();
  let cancel = tokio_util::sync::CancellationToken::new();
  let url = |name: &str| format!("{}{name}", registry.url);

  let mut held = Vec::new();
  for i in 0..cpus {
    held.push(fetcher.fetch(&url(&format!("t{i}.tgz")), "t", None, "", &Quiet, &cancel).await.unwrap());
  }
  let last = url(&format!("t{cpus}.tgz"));
  let next = fetcher.fetch(&last, "t", None, "", &Quiet, &cancel);
  tokio::pin!(next);
  // It cannot come while the bound is full (however slow the machine, it only waits longer).
  let waited = tokio::time::timeout(std::time::Duration::from_millis(300), &mut next).await;
  assert!(waited.is_err(), "a body beyond the bound was taken in");
  held.pop();
  assert_eq!(next.await.unwrap().len(), share);
  drop(held);
  let big = fetcher.fetch(&url("big.tgz"), "big", None, "", &Quiet, &cancel).await.unwrap();
  assert_eq!(big.len(), 4 * cpus * share);
}
