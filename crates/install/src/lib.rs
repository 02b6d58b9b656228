//! The frozen-lockfile install: lockfile → plan → fetch or reuse → import → link.
//!
//! [`install`] is the one entry point. It reports progress through a [`Reporter`] in
//! pnpm's log shapes and stops promptly when its [`CancellationToken`] fires.
//!
//! [`CancellationToken`]: tokio_util::sync::CancellationToken

mod bin_links;
mod bins;
mod builds;
mod config;
mod current_lockfile;
mod error;
mod events;
mod finish;
mod hoist;
mod local;
mod options;
mod pipeline;
mod plan;
mod prepare;
mod report;
mod state;
mod status;

pub use error::InstallError;
pub use events::{Event, NoopReporter, Reporter, RootDep};
pub use options::{Include, InstallOptions};
pub use pacquet_lockfile::LockfileSource;
pub use pacquet_lockfile::SupportedArchitectures;
pub use pipeline::{install, test_panic, InstallSummary, Timings};
pub use prepare::store_path;
pub use status::store_status;
