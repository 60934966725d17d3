//! The 200 jobs × 10 no-op steps workload, one group per store.
//!
//! Each step is an agent step whose provider answers at once with `report_success`, so
//! what is measured is the engine: reconcile, dispatch, the tool loop, the outcome write
//! and the store. Throughput is in steps per second (criterion's `elements`).
//!
//! - `workflow/memory`: `InMemoryStateStore` (engine overhead alone);
//! - `workflow/sqlite_full_8` and `workflow/sqlite_full_64`: `SqliteStateStore` on a real
//!   file with `synchronous=FULL`, 8 and 64 step attempts at once. "Durable": each step's
//!   completion is committed before the engine reports it.
//! - `workflow/postgres_8` (feature `postgres`): `PgStateStore`, 8 step attempts at
//!   once, in a fresh schema each iteration (dropped after it). It needs
//!   `GEORGE_TEST_POSTGRES_URL`; without it the group is skipped with a message.
//!
//! Run: `cargo bench --bench workflow`, or with PostgreSQL:
//! `GEORGE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/george_test cargo bench
//! --bench workflow --features postgres`.
//!
//! `benches/workflow_mimalloc.rs` runs the same groups (`workflow_mimalloc/...`) with
//! mimalloc as the global allocator: the engine allocates per step, and the allocator
//! an embedder links changes the figure (glibc's malloc spends a third of a step in
//! `malloc`/`free` here).

/// The criterion group.
const GROUP: &str = "workflow";

include!("support/workflow_body.rs");

criterion_group!(benches, workflow);
criterion_main!(benches);
