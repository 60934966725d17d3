//! A child that prints 400 MB under a 4 KiB output cap leaves the engine's memory where
//! it was: output is read in chunks and what passes the cap is dropped, not buffered.
//! Alone in its binary, so the process's peak resident size (`VmHWM`) is this test's.

use george_core::command::CommandToolExecutor;

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("field")
}

#[tokio::test]
async fn a_flood_of_output_does_not_grow_memory() {
    let ex = CommandToolExecutor::new(["head"]).with_max_output_bytes(4096);
    // Warm up the runtime and the process machinery first.
    ex.run("head", &["-c".into(), "10".into(), "/dev/zero".into()])
        .await
        .unwrap();
    let before = status_kib("VmHWM:");
    let o = ex
        .run(
            "head",
            &["-c".into(), "400000000".into(), "/dev/zero".into()],
        )
        .await
        .unwrap();
    let after = status_kib("VmHWM:");
    assert_eq!(o.exit_code, 0);
    assert!(o.truncated);
    assert!(o.stdout.len() < 4096 + 64);
    let growth_mib = (after.saturating_sub(before)) as f64 / 1024.0;
    assert!(
        growth_mib < 4.0,
        "peak resident size grew by {growth_mib:.1} MiB"
    );
}
