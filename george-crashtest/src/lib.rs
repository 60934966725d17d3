//! Crash and several-engines tests of George, with real processes.
//!
//! The `george-crashtest-worker` binary runs one George engine against a real store
//! (a SQLite file or a PostgreSQL schema) and a real Git repository. Its steps call a
//! `work` tool that appends `start`/`end` lines to a run log, so a test can see every
//! step attempt that ran, in every process. With `--plan <n>` it runs instead one job
//! that plans `n` approved actions, approves the plan itself and executes it, through
//! an `apply` tool that is idempotent by key ([`plan`]). The tests in `tests/` start workers,
//! SIGKILL them at random points, restart them, and check what the store kept.
//!
//! This crate is not published; it exists for its tests:
//! `cargo test -p george-crashtest` (add `--features postgres` with
//! `GEORGE_TEST_POSTGRES_URL` set for the PostgreSQL runs).

pub mod plan;
pub mod repo;
pub mod runlog;
