//! Crash-and-continue: engine 1 runs the quickstart's job until the first plan waits for a
//! human, then stops; engine 2 starts on the same SQLite file and finishes the job without
//! re-running the investigation that had succeeded. (The model's answers are scripted.)
//!
//! Run: `cargo run --example resume`

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use george::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let s = support::setup(dir.path());

    let p1 = ScriptedProvider::new();
    support::script_investigation(&p1);
    support::script_planning(&p1);
    let (human1, _unanswered) = ChannelHuman::new();
    let e1 = support::engine(&s, p1.clone(), human1, "engine-1").await?;
    e1.start().await?;
    let run = e1.spawn();
    e1.wait_for(support::JOB, Duration::from_secs(60), |st| {
        st == JobStatus::AwaitingApproval
    })
    .await?;
    run.shutdown().await;
    println!(
        "engine-1 stopped while plan 1 waits for a human ({} model calls made)",
        p1.requests().len()
    );

    // Engine 2 gets only the answers for plans 2 and 3: re-running `investigate` (or
    // re-planning plan 1) would be an unmatched call.
    let p2 = ScriptedProvider::new();
    support::script_planning_from(&p2, 1);
    let (human2, approvals) = ChannelHuman::new();
    let e2 = support::engine(&s, p2.clone(), human2, "engine-2").await?;
    let _human = support::spawn_human(e2.clone(), approvals);
    let _cluster = support::spawn_cluster_sync(&s, Duration::from_secs(2));
    e2.start().await?;
    let run = e2.spawn();
    let status = e2
        .wait_finished(support::JOB, Duration::from_secs(120))
        .await?;
    run.shutdown().await;

    for line in support::timeline(&e2, support::JOB).await? {
        println!("  {line}");
    }
    let job = e2.job(support::JOB).await?.ok_or("job missing")?;
    let inv = job.step("investigate").ok_or("no investigate step")?;
    println!(
        "\ninvestigate ran {} time(s); job {}: {status}",
        inv.attempt,
        support::JOB
    );
    if status != JobStatus::Succeeded || inv.attempt != 1 || !p2.failures().is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
