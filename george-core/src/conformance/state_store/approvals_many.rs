//! Checks with several approval writes: of one request in one job write, racing, and
//! of many requests listed.

use super::approvals::{
    approved, assert_refused, cancelled, changing_write, job_with_request, rejected, stored,
    with_status,
};
use super::{ok, sample_approval, sample_job, unique};
use crate::error::{ErrorKind, Result};
use crate::state::{ApprovalRequest, ApprovalStatus, Vote};
use crate::store::{JobWrite, StateStore};

/// Several writes of one request in one job write are checked in order, each against
/// the state the previous one left; the last one is stored.
pub async fn approval_writes_checked_in_order(store: &dyn StateStore) {
    let name = unique("in-order");
    let (mut job, open) = job_with_request(store, &name, "open").await;
    let req = |step: &str| sample_approval(&name, step, 1, ApprovalStatus::Open);

    // Accepted sequences.
    let a = req("a");
    let a_approved = with_status(&a, approved("alice"));
    let b = req("b");
    let mut b_voted = b.clone();
    b_voted.votes.push(Vote {
        by: "human:alice".into(),
        at_ms: 1,
        note: None,
    });
    let b_rejected = with_status(&b_voted, rejected("bob"));
    let mut open_voted = open.clone();
    open_voted.votes = b_voted.votes.clone();
    let open_cancelled = with_status(&open_voted, cancelled());
    job.revision = ok(
        store
            .commit(
                JobWrite::update(job.clone())
                    .insert_approval(a.clone())
                    .insert_approval(b.clone())
                    .update_approval(a_approved.clone())
                    .update_approval(b_voted)
                    .update_approval(open_voted)
                    .update_approval(b_rejected.clone())
                    .update_approval(open_cancelled.clone()),
            )
            .await,
        "insert then decide, insert then vote then decide, vote then decide: in one write",
    );
    for want in [&a_approved, &b_rejected, &open_cancelled] {
        assert_eq!(
            stored(store, &want.id).await.as_ref(),
            Some(want),
            "StateStore conformance: of several writes of a request in one job write, the last must be stored"
        );
    }

    // Refused sequences: each breaks the rule only given the write before it.
    let c = req("c");
    let d = req("d");
    let e = req("e");
    let f = req("f");
    job.revision = ok(
        store
            .commit(JobWrite::update(job.clone()).insert_approval(f.clone()))
            .await,
        "inserting an open request",
    );
    let refused: [(&str, Vec<(bool, ApprovalRequest)>); 4] = [
        (
            "update of an absent request, then its insert",
            vec![(false, c.clone()), (true, c.clone())],
        ),
        (
            "insert of a request, then its insert again",
            vec![(true, d.clone()), (true, d.clone())],
        ),
        (
            "insert, cancel, then approve a request",
            vec![
                (true, e.clone()),
                (false, with_status(&e, cancelled())),
                (false, with_status(&e, approved("alice"))),
            ],
        ),
        (
            "approve, then reject an open request",
            vec![
                (false, with_status(&f, approved("alice"))),
                (false, with_status(&f, rejected("bob"))),
            ],
        ),
    ];
    for (tag, (what, writes)) in (1..).zip(refused) {
        let mut write = changing_write(&job, tag);
        for (insert, r) in writes {
            write = if insert {
                write.insert_approval(r)
            } else {
                write.update_approval(r)
            };
        }
        assert_refused(
            store,
            store.commit(write).await,
            ErrorKind::Conflict,
            &job,
            tag,
            what,
        )
        .await;
    }
    for (absent, what) in [(&c, "c"), (&d, "d"), (&e, "e")] {
        assert!(
            stored(store, &absent.id).await.is_none(),
            "StateStore conformance: a refused write must store none of its requests ({what})"
        );
    }
    assert_eq!(
        stored(store, &f.id).await,
        Some(f),
        "StateStore conformance: a refused write must not change a stored request"
    );
}

/// Two writes racing to insert the same id, or to decide the same open request (the
/// writes being to different jobs, so that only the approval rule separates them):
/// exactly one wins, the other gets a `Conflict`.
pub async fn approval_races_one_wins(store: &dyn StateStore) {
    let name = unique("approval-race");
    let (a, request) = job_with_request(store, &format!("{name}-a"), "plan").await;
    let mut b = sample_job(&format!("{name}-b"));
    b.revision = ok(store.commit(JobWrite::create(b.clone())).await, "create");

    let fresh = sample_approval(&name, "fresh", 1, ApprovalStatus::Open);
    let (x, y) = futures::join!(
        store.commit(JobWrite::update(a.clone()).insert_approval(fresh.clone())),
        store.commit(JobWrite::update(b.clone()).insert_approval(fresh.clone()))
    );
    let (a_won, b_won) = one_wins(x, y, "two inserts of one id");
    let (mut a, mut b) = (a, b);
    a.revision += u64::from(a_won);
    b.revision += u64::from(b_won);

    let yes = with_status(&request, approved("alice"));
    let no = with_status(&request, rejected("bob"));
    let (x, y) = futures::join!(
        store.commit(JobWrite::update(a).update_approval(yes.clone())),
        store.commit(JobWrite::update(b).update_approval(no.clone()))
    );
    let (a_won, _) = one_wins(x, y, "two decisions of one open request");
    assert_eq!(
        stored(store, &request.id).await,
        Some(if a_won { yes } else { no }),
        "StateStore conformance: the stored decision must be the winner's"
    );
}

/// Which of two racing writes won; panics unless exactly one did and the other got a
/// `Conflict`.
#[track_caller]
fn one_wins(x: Result<u64>, y: Result<u64>, what: &str) -> (bool, bool) {
    match (x, y) {
        (Ok(_), Err(e)) if e.kind() == ErrorKind::Conflict => (true, false),
        (Err(e), Ok(_)) if e.kind() == ErrorKind::Conflict => (false, true),
        (x, y) => panic!(
            "StateStore conformance: {what}: exactly one must win and the other get a \
             Conflict; got {:?} and {:?}",
            x.map_err(|e| e.to_string()),
            y.map_err(|e| e.to_string())
        ),
    }
}

/// `approvals(open_only)` lists by id, only the open ones when asked.
pub async fn approvals_listing(store: &dyn StateStore) {
    let name = unique("approvals-list");
    let statuses = [
        ApprovalStatus::Open,
        approved("alice"),
        ApprovalStatus::Open,
        rejected("bob"),
        cancelled(),
    ];
    // Inserted open and out of id order, over two writes; three decided in a third.
    let requests: Vec<ApprovalRequest> = statuses
        .into_iter()
        .enumerate()
        .map(|(i, s)| sample_approval(&name, &format!("s{}", 5 - i), 1, s))
        .collect();
    let open = |r: &ApprovalRequest| with_status(r, ApprovalStatus::Open);
    let mut job = sample_job(&name);
    let mut write = JobWrite::create(job.clone());
    for r in &requests[..3] {
        write = write.insert_approval(open(r));
    }
    job.revision = ok(store.commit(write).await, "create with approvals");
    let mut write = JobWrite::update(job.clone());
    for r in &requests[3..] {
        write = write.insert_approval(open(r));
    }
    job.revision = ok(store.commit(write).await, "update with approvals");
    let mut write = JobWrite::update(job);
    for r in requests.iter().filter(|r| r.status != ApprovalStatus::Open) {
        write = write.update_approval(r.clone());
    }
    ok(store.commit(write).await, "deciding approvals");

    let mut want_all = requests.clone();
    want_all.sort_by(|a, b| a.id.cmp(&b.id));
    let want_open: Vec<ApprovalRequest> = want_all
        .iter()
        .filter(|r| r.status == ApprovalStatus::Open)
        .cloned()
        .collect();

    let all = ok(store.approvals(false).await, "approvals(false)");
    assert!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "StateStore conformance: approvals must be ordered by id"
    );
    let ours: Vec<ApprovalRequest> = all.into_iter().filter(|r| r.job == name).collect();
    assert_eq!(
        ours, want_all,
        "StateStore conformance: approvals(false) must list every request, as stored"
    );

    let open = ok(store.approvals(true).await, "approvals(true)");
    assert!(
        open.iter().all(|r| r.status == ApprovalStatus::Open),
        "StateStore conformance: approvals(true) must list only open requests"
    );
    assert!(
        open.windows(2).all(|w| w[0].id < w[1].id),
        "StateStore conformance: open approvals must be ordered by id"
    );
    let ours: Vec<ApprovalRequest> = open.into_iter().filter(|r| r.job == name).collect();
    assert_eq!(
        ours, want_open,
        "StateStore conformance: approvals(true) must list every open request"
    );
}
