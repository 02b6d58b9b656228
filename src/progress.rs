//! Delivers engine events to the JS `onProgress` callback.
//!
//! Events are batched: one thread-safe call carries many events to a small dispatcher on the
//! JS thread, which calls `onProgress` once per event. A cold install of 1,000+ packages
//! emits thousands of events; one JS turn per event would cost more than the install.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use pacquet_install::{Event, Reporter};

type Batch = Vec<serde_json::Value>;
type Tsfn = ThreadsafeFunction<Batch, (), Batch, Status, false>;

const MAX_BATCH: usize = 256;
const MAX_DELAY: Duration = Duration::from_millis(50);

pub struct JsReporter {
  tsfn: Tsfn,
  pending: Mutex<(Batch, Instant)>,
}

impl JsReporter {
  pub fn new(env: &Env, on_progress: Function<'_, Unknown<'static>, ()>) -> Result<Self> {
    let user = on_progress.create_ref()?;
    // The dispatcher runs on the JS thread: it unpacks a batch into single calls. A throwing
    // callback must not stop the install, so its exceptions are swallowed here.
    let dispatcher = env.create_function_from_closure::<Batch, (), _>("pacquetProgress", move |ctx| {
      let batch: Vec<Unknown<'static>> = ctx.get(0)?;
      let f = user.borrow_back(ctx.env)?;
      for event in batch {
        let _ = f.call(event);
      }
      Ok(())
    })?;
    let tsfn = dispatcher.build_threadsafe_function::<Batch>().callee_handled::<false>().build()?;
    Ok(JsReporter { tsfn, pending: Mutex::new((Vec::new(), Instant::now())) })
  }

  /// Sends what is pending. Under the lock, so batches leave in the order they filled.
  fn send_pending(&self) {
    if let Ok(mut p) = self.pending.lock() {
      p.1 = Instant::now();
      if !p.0.is_empty() {
        self.tsfn.call(std::mem::take(&mut p.0), ThreadsafeFunctionCallMode::NonBlocking);
      }
    }
  }

  /// Sends what is pending and waits until JS has run it (and, the queue being FIFO,
  /// everything sent before).
  pub async fn flush(&self) {
    let batch = match self.pending.lock() {
      Ok(mut p) => std::mem::take(&mut p.0),
      Err(_) => Vec::new(),
    };
    let _ = self.tsfn.call_async(batch).await;
  }

  /// Sends pending events at least every `MAX_DELAY`, so a quiet stretch (a slow download)
  /// does not hold back what already happened.
  pub fn start_ticker(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
      let mut tick = tokio::time::interval(MAX_DELAY);
      loop {
        tick.tick().await;
        self.send_pending();
      }
    })
  }
}

impl Reporter for JsReporter {
  fn emit(&self, event: Event) {
    let json = event.to_json();
    if let Ok(mut p) = self.pending.lock() {
      p.0.push(json);
      if p.0.len() >= MAX_BATCH || p.1.elapsed() >= MAX_DELAY {
        p.1 = Instant::now();
        self.tsfn.call(std::mem::take(&mut p.0), ThreadsafeFunctionCallMode::NonBlocking);
      }
    }
  }
}
