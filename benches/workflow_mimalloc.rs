//! `benches/workflow.rs` with mimalloc as the global allocator: the same 200 jobs × 10
//! no-op steps, groups `workflow_mimalloc/memory`, `…/sqlite_full_8`, `…/sqlite_full_64`
//! (and `…/postgres_8` with the `postgres` feature). Run: `cargo bench --bench
//! workflow_mimalloc`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The criterion group.
const GROUP: &str = "workflow_mimalloc";

include!("support/workflow_body.rs");

criterion_group!(benches, workflow);
criterion_main!(benches);
