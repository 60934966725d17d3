//! # george-store
//!
//! Durable [`StateStore`](george_core::store::StateStore) backends for George: where
//! job records, event logs, approvals and transcripts live so that a crash loses no
//! acknowledged transition.
//!
//! | backend | use it for |
//! |---|---|
//! | [`SqliteStateStore`] | one engine per database: embedded, zero setup, one file |
//! | `PgStateStore` (feature `postgres`) | several engines sharing one PostgreSQL database |
//!
//! For tests and examples, `george_core::memory::InMemoryStateStore` needs no crate.
//!
//! ```
//! use george_core::state::NewEvent;
//! use george_core::store::{JobWrite, StateStore};
//! use george_store::SqliteStateStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStateStore::open(dir.path().join("george.db")).await?;
//!
//! let job = george_core::conformance::state_store::sample_job("hello");
//! let revision = store
//!     .commit(JobWrite::create(job).event(NewEvent::new(1, "engine", "job.created", None, "")))
//!     .await?;
//! assert_eq!(revision, 1);
//!
//! let job = store.get_job("hello").await?.expect("stored");
//! assert_eq!(job.revision, 1);
//! assert_eq!(store.events("hello", 0, 10).await?.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! ## Why it is built so
//!
//! - Every backend passes the same suite,
//!   `george_core::conformance::state_store::run_all` (this crate's tests run it against
//!   a real file): atomic, revision-checked writes, gap-free event sequences, approval
//!   requests that are never replaced (an insert of a stored id, or an update of a
//!   request no longer open, is refused with the whole write).
//! - SQLite work never blocks the async runtime: one writer thread owns the write
//!   connection and groups queued writes into one transaction (group commit, one fsync
//!   for many writes); reads use their own connections on the blocking pool (WAL mode
//!   lets them run beside the writer).
//! - PostgreSQL (feature `postgres`): a commit is one statement that checks the
//!   revision and writes everything (events, approvals and transcripts as arrays), so a
//!   lost race stores nothing; queued commits share a transaction (group commit);
//!   claims use `FOR UPDATE SKIP LOCKED`; migrations run under an advisory lock; TLS
//!   (rustls) follows libpq's `sslmode` and `sslrootcert`.
//! - The schema is versioned and migrated when a store opens; a database written by a
//!   newer version is refused rather than misread.
//! - Errors are `george_core::Error`s: `Conflict` for lost races, `Backend` for the
//!   database (a busy or locked database is transient, so retry wrappers retry it).
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod error;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::{PgConfig, PgSslMode, PgStateStore};
pub use sqlite::{SqliteConfig, SqliteStateStore, Synchronous};
