//! Says loudly that the PostgreSQL tests were not built (no `postgres` feature), so a
//! green run without them is never mistaken for one with them.

#![cfg(not(feature = "postgres"))]

use std::io::Write as _;

#[test]
fn postgres_tests_not_built() {
    // Written to the real stderr, not through `eprintln!`, so the test harness does
    // not swallow it.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! george-store: the PostgreSQL tests DID NOT RUN: build with --features postgres \
         and set GEORGE_TEST_POSTGRES_URL !!!\n"
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set: the PostgreSQL tests must run (--features postgres)"
    );
}
