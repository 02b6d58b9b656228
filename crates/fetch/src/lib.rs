//! Getting package tarballs: where they are (registry URLs, scopes, auth), fetching them
//! (bounded concurrency, keep-alive, retries), checking their integrity, and unpacking
//! them into the store.

mod auth;
mod client;
mod error;
mod extract;
mod integrity;
mod registry;

pub use auth::AuthHeaders;
pub use client::{Body, FetchEvents, Fetcher, FetcherOptions, RetryInfo, RetryPolicy};
pub use error::FetchError;
pub use extract::{extract_tarball, BodyCheck, ExtractLimits, ExtractedPackage, Stage};
pub use integrity::Integrity;
pub use registry::Registries;
