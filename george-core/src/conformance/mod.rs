//! Conformance suites (feature `conformance`): one per plug-in trait, the same checks
//! for every backend.
//!
//! Like `object_store`'s integration suite, each check is a `pub async fn` that takes
//! the backend as a trait object and panics with a message naming the broken rule.
//! A backend's own tests call `run_all`:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use george_core::conformance::state_store;
//! use george_core::memory::InMemoryStateStore;
//!
//! state_store::run_all(&InMemoryStateStore::new()).await;
//! # }
//! ```
//!
//! The checks use job names, approval ids and meta keys made unique per run, so
//! they can share one store, and can run again against a database that keeps the
//! data of earlier runs.

pub mod state_store;
