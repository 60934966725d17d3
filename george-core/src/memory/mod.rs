//! In-memory backends: always compiled, for tests, examples and benchmarks.
//!
//! Clones of each backend share state, so a test can hand one clone to the engine
//! and inspect another. Nothing survives the process: use a durable backend
//! (`george-store`, `george-git`) in production.

mod store;
pub use store::InMemoryStateStore;

mod git;
pub use git::InMemoryGitSource;
