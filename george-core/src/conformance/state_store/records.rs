//! Checks of what a job write carries besides the record (events, transcripts), of
//! meta values, and of how records list and round-trip.

use serde_json::json;

use super::{all_events, ev, get, key, ok, sample_job, sample_transcript, unique, with_revision};
use crate::error::ErrorKind;
use crate::provider::Usage;
use crate::state::{Event, JobStatus};
use crate::store::{JobWrite, StateStore};

/// Event sequence numbers start at 1 per job and have no gaps; `after_seq` and `limit`
/// page through them; each job has its own log.
pub async fn events_are_sequenced(store: &dyn StateStore) {
    let a = unique("events-a");
    let b = format!("{a}-b");
    let mut job = sample_job(&a);
    job.revision = ok(
        store
            .commit(JobWrite::create(job.clone()).events((1..=3).map(|i| ev(i, "first", None))))
            .await,
        "create a",
    );
    ok(
        store
            .commit(JobWrite::create(sample_job(&b)).event(ev(50, "other", Some("plan"))))
            .await,
        "create b",
    );
    // A write with no events takes no sequence numbers.
    job.revision = ok(
        store.commit(JobWrite::update(job.clone())).await,
        "update a",
    );
    ok(
        store
            .commit(
                JobWrite::update(job.clone())
                    .event(ev(4, "second", Some("build")))
                    .event(ev(5, "second", None)),
            )
            .await,
        "update a with events",
    );

    let events = all_events(store, &a).await;
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5],
        "StateStore conformance: event seqs must be 1..=n without gaps, in order"
    );
    for (i, e) in events.iter().enumerate() {
        let i = i as u64 + 1;
        let want = ev(
            i,
            if i <= 3 { "first" } else { "second" },
            (i == 4).then_some("build"),
        );
        let want = Event {
            job: a.clone(),
            seq: i,
            at_ms: want.at_ms,
            actor: want.actor.to_string(),
            action: want.action.into_owned(),
            step: want.step.as_deref().map(str::to_string),
            detail: want.detail,
        };
        assert_eq!(
            e, &want,
            "StateStore conformance: an event must read back as appended"
        );
    }

    let page = ok(store.events(&a, 2, 2).await, "events page");
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 4],
        "StateStore conformance: events(after_seq = 2, limit = 2) must return seqs 3 and 4"
    );
    let tail = ok(store.events(&a, 4, 100).await, "events tail");
    assert_eq!(
        tail.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![5],
        "StateStore conformance: events(after_seq = 4) must return seq 5 only"
    );
    assert!(
        ok(store.events(&a, 5, 100).await, "events past the end").is_empty(),
        "StateStore conformance: events after the last seq must be empty"
    );
    assert!(
        ok(store.events(&a, 0, 0).await, "events limit 0").is_empty(),
        "StateStore conformance: events with limit 0 must be empty"
    );

    let other = all_events(store, &b).await;
    assert_eq!(
        other
            .iter()
            .map(|e| (e.seq, e.job.as_str(), e.action.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, b.as_str(), "other")],
        "StateStore conformance: each job must have its own event log starting at 1"
    );

    match store.events(&format!("{a}-missing"), 0, 10).await {
        Ok(events) => assert!(
            events.is_empty(),
            "StateStore conformance: an unknown job has no events"
        ),
        Err(e) => assert_eq!(
            e.kind(),
            ErrorKind::NotFound,
            "StateStore conformance: events of an unknown job must be empty or NotFound, got: {e}"
        ),
    }
}

/// Transcripts are stored per (job, step, attempt) and replaced by a later write with
/// the same key.
pub async fn transcripts_stored_and_replaced(store: &dyn StateStore) {
    let name = unique("transcripts");
    let mut job = sample_job(&name);
    let k1 = key(&name, "plan", 1);
    let k2 = key(&name, "plan", 2);
    let first = sample_transcript("first");
    job.revision = ok(
        store
            .commit(JobWrite::create(job.clone()).transcript(k1.clone(), first.clone()))
            .await,
        "create with a transcript",
    );
    assert_eq!(
        ok(store.transcript(&k1).await, "transcript"),
        Some(first),
        "StateStore conformance: a transcript must read back as written"
    );
    assert!(
        ok(store.transcript(&k2).await, "transcript").is_none(),
        "StateStore conformance: an unknown transcript must be None"
    );

    let replaced = sample_transcript("replaced")[..2].to_vec();
    let second = sample_transcript("second");
    ok(
        store
            .commit(
                JobWrite::update(job)
                    .transcript(k1.clone(), replaced.clone())
                    .transcript(k2.clone(), second.clone()),
            )
            .await,
        "update with transcripts",
    );
    assert_eq!(
        ok(store.transcript(&k1).await, "transcript"),
        Some(replaced),
        "StateStore conformance: a transcript written again must be replaced"
    );
    assert_eq!(
        ok(store.transcript(&k2).await, "transcript"),
        Some(second),
        "StateStore conformance: transcripts of different attempts must be kept apart"
    );
    let empty = key(&name, "empty", 1);
    ok(
        store
            .commit(
                JobWrite::create(sample_job(&format!("{name}-e")))
                    .transcript(empty.clone(), vec![]),
            )
            .await,
        "create with an empty transcript",
    );
    assert_eq!(
        ok(store.transcript(&empty).await, "transcript"),
        Some(vec![]),
        "StateStore conformance: an empty transcript is stored (Some(vec![]), not None)"
    );
}

/// Meta values: absent, set, overwritten; keys independent.
pub async fn meta_round_trip(store: &dyn StateStore) {
    let k = unique("meta");
    let other = format!("{k}-other");
    assert!(
        ok(store.get_meta(&k).await, "get_meta").is_none(),
        "StateStore conformance: an unset meta key must be None"
    );
    ok(store.put_meta(&k, "abc123").await, "put_meta");
    ok(store.put_meta(&other, "").await, "put_meta");
    assert_eq!(
        ok(store.get_meta(&k).await, "get_meta").as_deref(),
        Some("abc123"),
        "StateStore conformance: a meta value must read back"
    );
    let long = format!("{}\u{00e9}\n", "x".repeat(10_000));
    ok(store.put_meta(&k, &long).await, "put_meta overwrite");
    assert_eq!(
        ok(store.get_meta(&k).await, "get_meta"),
        Some(long),
        "StateStore conformance: put_meta must overwrite"
    );
    assert_eq!(
        ok(store.get_meta(&other).await, "get_meta").as_deref(),
        Some(""),
        "StateStore conformance: meta keys must be independent; an empty value is a value"
    );
}

/// `list_jobs` returns every job, ordered by name, at its current revision.
pub async fn list_jobs_ordered(store: &dyn StateStore) {
    let p = unique("list");
    let names = [
        format!("{p}-c"),
        format!("{p}-a"),
        format!("{p}-b"),
        format!("{p}-a-1"),
        format!("{p}-B"),
    ];
    for n in &names {
        ok(
            store.commit(JobWrite::create(sample_job(n))).await,
            "create",
        );
    }
    let updated = with_revision(sample_job(&names[2]), 1);
    ok(store.commit(JobWrite::update(updated)).await, "update");

    let all = ok(store.list_jobs().await, "list_jobs");
    assert!(
        all.windows(2).all(|w| w[0].name < w[1].name),
        "StateStore conformance: list_jobs must be ordered by name (byte order)"
    );
    let ours: Vec<(String, u64)> = all
        .iter()
        .filter(|j| j.name.starts_with(&p))
        .map(|j| (j.name.clone(), j.revision))
        .collect();
    let mut want: Vec<(String, u64)> = names
        .iter()
        .map(|n| (n.clone(), if *n == names[2] { 2 } else { 1 }))
        .collect();
    want.sort();
    assert_eq!(
        ours, want,
        "StateStore conformance: list_jobs must list every job by name, at its current revision"
    );
    let listed = all.into_iter().find(|j| j.name == names[0]);
    assert_eq!(
        listed,
        Some(with_revision(sample_job(&names[0]), 1)),
        "StateStore conformance: list_jobs must return whole records"
    );
}

/// A record with every step state, outputs, rejections and usage reads back exactly,
/// through get_job and list_jobs, after a create and after an update.
pub async fn job_round_trips_exactly(store: &dyn StateStore) {
    let name = unique("round-trip");
    let job = sample_job(&name);
    ok(store.commit(JobWrite::create(job.clone())).await, "create");
    let mut want = with_revision(job, 1);
    assert_eq!(
        get(store, &name).await,
        want,
        "StateStore conformance: a job record must round-trip exactly"
    );

    // Swap states around and clear optional fields, so stale values would show.
    want.steps.rotate_left(3);
    for s in want.steps_mut() {
        s.message = None;
        s.rejections.clear();
        s.usage = Usage::default();
    }
    std::sync::Arc::make_mut(&mut want.steps[0]).outputs = Some(json!([]).into());
    std::sync::Arc::make_mut(&mut want.steps[9]).outputs = Some(json!({}).into());
    want.removed = true;
    want.status = JobStatus::Cancelled;
    want.revision = ok(store.commit(JobWrite::update(want.clone())).await, "update");
    assert_eq!(
        get(store, &name).await,
        want,
        "StateStore conformance: an updated job record must round-trip exactly"
    );
    let listed = ok(store.list_jobs().await, "list_jobs")
        .into_iter()
        .find(|j| j.name == name);
    assert_eq!(
        listed,
        Some(want),
        "StateStore conformance: list_jobs must return the record exactly"
    );
}

/// [`StateStore::jobs_on_target`]: the jobs whose target has that canonical key (a
/// target round-trips with the record, along with `resolved_by` and a step's
/// `resolves`), ordered by name; never jobs without a target nor on another one.
pub async fn jobs_on_target_filters(store: &dyn StateStore) {
    use crate::state::{ResolvedBy, Resolves};
    let p = unique("target");
    let service = |name: &str| {
        [("kind", "service"), ("name", name)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let mine = service(&p);
    let mut b = sample_job(&format!("{p}-b"));
    b.target = mine.clone();
    b.resolved_by = Some(ResolvedBy {
        job: format!("{p}-a"),
        step: "s".into(),
        attempt: 1,
    });
    let mut a = sample_job(&format!("{p}-a"));
    a.target = mine.clone();
    let mut step = crate::state::StepRecord::new("s");
    step.state = crate::state::StepState::Succeeded;
    a.steps = vec![step.into()];
    std::sync::Arc::make_mut(&mut a.steps[0]).resolves = vec![Resolves {
        job: format!("{p}-b"),
        generation: 1,
    }];
    let mut other = sample_job(&format!("{p}-other"));
    other.target = service(&format!("{p}-x"));
    let none = sample_job(&format!("{p}-none"));
    for j in [b, a.clone(), other, none] {
        ok(store.commit(JobWrite::create(j)).await, "create");
    }
    let key = crate::model::target_key(&mine);
    let found = ok(store.jobs_on_target(&key).await, "jobs_on_target");
    let names: Vec<&str> = found.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        [format!("{p}-a"), format!("{p}-b")],
        "StateStore conformance: jobs_on_target returns the jobs on that target, by name"
    );
    assert_eq!(
        found[0].target, mine,
        "StateStore conformance: a job's target round-trips"
    );
    assert_eq!(
        found[0].steps[0].resolves, a.steps[0].resolves,
        "StateStore conformance: a step's resolves round-trip"
    );
    assert!(
        found[1].resolved_by.is_some(),
        "StateStore conformance: a job's resolved_by round-trips"
    );
    let empty = ok(store.jobs_on_target("").await, "jobs_on_target(\"\")");
    assert!(
        empty.is_empty(),
        "StateStore conformance: jobs_on_target(\"\") matches no job"
    );
}
