//! Live updates: `GET /api/v1/stream`, Server-Sent Events of job status changes and of
//! approval requests opened or decided ([`Engine::subscribe`]), resumable with
//! `Last-Event-ID`.
//!
//! # Events
//!
//! | `event:` | `id:` | `data:` | when |
//! |---|---|---|---|
//! | `job` | `<epoch>-<n>` | [`JobChange`] | a job's status changed; `n` grows by one per change, over all jobs |
//! | `job` | none | [`JobChange`] with `snapshot: true` | the current state of one job, in a snapshot |
//! | `approval` | `<epoch>-<n>` | [`ApprovalChange`] | an approval request was opened, approved, rejected or cancelled; same sequence as `job` |
//! | `approval` | none | [`ApprovalChange`] with `snapshot: true` | an open request, in a snapshot (after the jobs) |
//! | `ready` | `<epoch>-<n>` | [`StreamReady`] | after the replay or snapshot that starts a stream; `n`: the position it is current to |
//!
//! # Resuming
//!
//! The router keeps the last changes (`ApiConfig::replay_buffer`, default 4,096) under
//! ids `<epoch>-<n>`, where the epoch is random per router. A client that reconnects
//! with `Last-Event-ID` (browsers' `EventSource` does so by itself) gets:
//!
//! - **a replay**, when the id is this router's and every change after it is still kept:
//!   exactly the changes after it, in order, then `ready`;
//! - otherwise (another epoch — the server restarted —, changes lost, an id it never
//!   gave) **a snapshot**: one `job` event per job with its current status and one
//!   `approval` event per open request (no id), then `ready` with the position the
//!   snapshot is current to. Changes made while the
//!   snapshot was read follow it, so a job's last event is always its current state,
//!   though a transition the snapshot already shows may come again.
//!
//! Without `Last-Event-ID`, a stream starts with `ready` (and, with `?snapshot=true`, a
//! snapshot before it). Snapshot events carry no id, so a client cut off in the middle of
//! a snapshot resumes from its previous id and gets the whole snapshot again. A client
//! too slow to keep up, or a router that fell behind the engine, gets a snapshot in the
//! stream, in the same way.
//!
//! Per job, changes come in the order the engine committed them: a write that changes
//! the job's status and opens or closes a request gives the `job` event first.
//!
//! [`Engine::subscribe`]: george_core::engine::Engine::subscribe

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use george_core::engine::{Engine, JobUpdate};
use george_core::state::ApprovalStatus;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::{IntoParams, ToSchema};

use crate::api::approval_types::ApiApprovalStatus;
use crate::api::job_types::ApiJobStatus;
use crate::auth::{Caller, Role};
use crate::body::ApiQuery;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// One job's status, as of a change or a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobChange {
    /// The job.
    pub job: String,
    /// Its status.
    pub status: ApiJobStatus,
    /// Its generation.
    pub generation: u64,
    /// Whether this is part of a snapshot (the current state, not a change).
    #[serde(default)]
    pub snapshot: bool,
}

/// An approval request opened or decided, or (in a snapshot) an open one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalChange {
    /// The request's id (as in `/approvals/{id}`).
    pub id: String,
    /// The job.
    pub job: String,
    /// The step that asked.
    pub step: String,
    /// Its new state.
    pub status: ApiApprovalStatus,
    /// Whether this is part of a snapshot (an open request, not a change).
    #[serde(default)]
    pub snapshot: bool,
}

impl ApprovalChange {
    fn of(id: String, job: String, step: String, status: &ApprovalStatus, snapshot: bool) -> Self {
        let status = match status {
            ApprovalStatus::Open => ApiApprovalStatus::Open,
            ApprovalStatus::Approved { .. } => ApiApprovalStatus::Approved,
            ApprovalStatus::Rejected { .. } => ApiApprovalStatus::Rejected,
            ApprovalStatus::Cancelled { .. } => ApiApprovalStatus::Cancelled,
        };
        ApprovalChange {
            id,
            job,
            step,
            status,
            snapshot,
        }
    }
}

/// The `ready` event: the stream is current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StreamReady {
    /// Whether the changes since `Last-Event-ID` were replayed.
    pub resumed: bool,
    /// How many jobs a snapshot before this event listed (0 without a snapshot).
    pub snapshot_jobs: usize,
}

/// One Server-Sent Event as a stream carries it (the WHATWG `text/event-stream`
/// format, <https://html.spec.whatwg.org/multipage/server-sent-events.html>): its
/// `event` name, its `id` when it has one, and its `data`, a JSON document whose shape
/// each route names per event. The schema of the SSE routes' responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SseEvent {
    /// The event's name (`job`, `approval`, `ready`, `event`, `end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The event's id, to resume from with `Last-Event-ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The payload: a JSON document.
    pub data: String,
    /// The reconnection time the server suggests, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<u64>,
}

/// Options of `GET /stream`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Without `Last-Event-ID`: start with a snapshot of every job.
    pub snapshot: Option<bool>,
}

#[derive(Debug, Clone)]
pub(crate) enum Item {
    Change(u64, Arc<JobChange>),
    Approval(u64, Arc<ApprovalChange>),
    /// The hub missed changes: every stream sends a snapshot.
    Resync,
}

impl Item {
    /// The id of a change (`None` for `Resync`).
    fn id(&self) -> Option<u64> {
        match self {
            Item::Change(id, _) | Item::Approval(id, _) => Some(*id),
            Item::Resync => None,
        }
    }
}

/// A change as the engine reported it, before it has an id.
enum Change {
    Job(JobChange),
    Approval(ApprovalChange),
}

#[derive(Debug, Default)]
struct Inner {
    /// The id the next change gets (ids start at 1).
    next: u64,
    /// The last changes (`Change` and `Approval` items only), oldest first.
    ring: VecDeque<Item>,
    /// The id burnt when the hub lagged: changes before it were lost to streams that had
    /// not seen it.
    gap_after: u64,
    engine_rx: Option<broadcast::Receiver<JobUpdate>>,
}

/// The router's record of recent changes, fed by one task from [`Engine::subscribe`].
#[derive(Debug)]
pub(crate) struct Hub {
    epoch: String,
    capacity: usize,
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Item>,
}

impl Hub {
    /// Subscribes to `engine` now; the feeding task starts with [`Hub::start`].
    pub(crate) fn new(engine: &Engine, capacity: usize) -> Arc<Self> {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Arc::new(Hub {
            epoch: format!("{:08x}", fastrand::u32(..)),
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                next: 1,
                engine_rx: Some(engine.subscribe()),
                ..Inner::default()
            }),
            tx,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the feeding task once (needs a Tokio runtime); it ends with the hub.
    pub(crate) fn start(self: &Arc<Self>) {
        let Some(mut rx) = self.lock().engine_rx.take() else {
            return;
        };
        let weak: Weak<Hub> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let got = rx.recv().await;
                let Some(hub) = weak.upgrade() else { return };
                match got {
                    Ok(u) => hub.push(match u.approval {
                        Some(a) => Change::Approval(ApprovalChange::of(
                            a.id, u.job, a.step, &a.status, false,
                        )),
                        None => Change::Job(JobChange {
                            job: u.job,
                            status: u.status.into(),
                            generation: u.generation,
                            snapshot: false,
                        }),
                    }),
                    Err(broadcast::error::RecvError::Lagged(_)) => hub.lagged(),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    fn push(&self, change: Change) {
        let mut inner = self.lock();
        let id = inner.next;
        inner.next += 1;
        let item = match change {
            Change::Job(c) => Item::Change(id, Arc::new(c)),
            Change::Approval(a) => Item::Approval(id, Arc::new(a)),
        };
        inner.ring.push_back(item.clone());
        while inner.ring.len() > self.capacity {
            inner.ring.pop_front();
        }
        let _ = self.tx.send(item);
    }

    /// The engine's channel dropped changes, which got no id. An id is burnt to mark the
    /// gap: a stream can resume only from it or later (it got a snapshot after the gap).
    fn lagged(&self) {
        let mut inner = self.lock();
        inner.gap_after = inner.next;
        inner.next += 1;
        inner.ring.clear();
        let _ = self.tx.send(Item::Resync);
    }

    /// A new stream's receiver, its position, and the changes to replay after
    /// `last_id` (`None`: it cannot be resumed, send a snapshot).
    fn subscribe(
        &self,
        last_id: Option<&str>,
    ) -> (broadcast::Receiver<Item>, u64, Option<Vec<Item>>) {
        let inner = self.lock();
        let rx = self.tx.subscribe();
        let position = inner.next - 1;
        let replay = last_id.and_then(|id| {
            let (epoch, n) = id.trim().split_once('-')?;
            let n: u64 = n.parse().ok()?;
            let first = inner.ring.front().and_then(Item::id).unwrap_or(inner.next);
            (epoch == self.epoch && n <= position && n >= inner.gap_after && n + 1 >= first).then(
                || {
                    inner
                        .ring
                        .iter()
                        .filter(|i| i.id().is_some_and(|id| id > n))
                        .cloned()
                        .collect()
                },
            )
        });
        (rx, position, replay)
    }

    /// Every change from now on (and `Resync` when the hub missed some).
    pub(crate) fn changes(&self) -> broadcast::Receiver<Item> {
        self.tx.subscribe()
    }

    fn id(&self, n: u64) -> String {
        format!("{}-{n}", self.epoch)
    }
}

/// Job and approval request changes as Server-Sent Events (see the module docs for resuming).
#[utoipa::path(
    get, path = "/stream", tag = "live", operation_id = "stream",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received, to resume"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: `job` events (data: JobChange), `approval` events (data: ApprovalChange) and `ready` events (data: StreamReady)", content_type = "text/event-stream", body = SseEvent),
        (status = 400, description = "A bad query (`snapshot` is `true` or `false`) or unknown parameters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn stream(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    who.require(Role::Read)?;
    state.hub.start();
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.trim().is_empty());
    let (rx, position, replay) = state.hub.subscribe(last);
    let mut client = Client {
        state,
        rx,
        queue: VecDeque::new(),
        last: position,
    };
    match replay {
        Some(items) => {
            // The replayed ids are above the client's and at most the position.
            client.last = 0;
            for item in items {
                client.emit(item);
            }
            client.last = position;
            client.ready(true, 0);
        }
        None if last.is_some() || q.snapshot == Some(true) => client.snapshot().await?,
        None => client.ready(false, 0),
    }
    let events = futures::stream::unfold(client, |mut c| async move {
        let event = c.next().await?;
        Some((Ok(event), c))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct Client {
    state: AppState,
    rx: broadcast::Receiver<Item>,
    queue: VecDeque<Event>,
    /// The last change id sent (or covered by a snapshot).
    last: u64,
}

impl Client {
    fn emit(&mut self, item: Item) {
        let Some(id) = item.id().filter(|id| *id > self.last) else {
            return;
        };
        self.last = id;
        let ev = Event::default().id(self.state.hub.id(id));
        let ev = match &item {
            Item::Change(_, c) => ev.event("job").json_data(&**c),
            Item::Approval(_, a) => ev.event("approval").json_data(&**a),
            Item::Resync => return,
        };
        self.queue.push_back(ev.unwrap_or_default());
    }

    fn ready(&mut self, resumed: bool, snapshot_jobs: usize) {
        let ready = StreamReady {
            resumed,
            snapshot_jobs,
        };
        let ev = Event::default()
            .event("ready")
            .id(self.state.hub.id(self.last));
        self.queue
            .push_back(ev.json_data(&ready).unwrap_or_default());
    }

    /// Queues the current state of every job and the open approval requests, then
    /// `ready`. The position is taken before they are read, so the snapshot is at least
    /// as new as it.
    async fn snapshot(&mut self) -> Result<(), Problem> {
        let position = self.state.hub.lock().next - 1;
        let mut jobs = self.state.engine.jobs().await?;
        jobs.sort_by(|a, b| a.name.cmp(&b.name));
        for j in &jobs {
            let change = JobChange {
                job: j.name.clone(),
                status: j.status.into(),
                generation: j.generation,
                snapshot: true,
            };
            let ev = Event::default().event("job").json_data(&change);
            self.queue.push_back(ev.unwrap_or_default());
        }
        let mut open = self.state.engine.approvals(true).await?;
        open.sort_by(|a, b| a.id.cmp(&b.id));
        for r in open {
            let change = ApprovalChange::of(r.id, r.job, r.step, &r.status, true);
            let ev = Event::default().event("approval").json_data(&change);
            self.queue.push_back(ev.unwrap_or_default());
        }
        self.last = self.last.max(position);
        self.ready(false, jobs.len());
        Ok(())
    }

    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some(ev);
            }
            match self.rx.recv().await {
                Ok(item @ (Item::Change(..) | Item::Approval(..))) => self.emit(item),
                Ok(Item::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    if let Err(e) = self.snapshot().await {
                        tracing::warn!(error = %e, "live updates: a snapshot failed; closing the stream");
                        return None;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
    use george_core::state::JobStatus;

    fn change(job: &str) -> Change {
        Change::Job(JobChange {
            job: job.into(),
            status: JobStatus::Running.into(),
            generation: 1,
            snapshot: false,
        })
    }

    fn approval(job: &str) -> Change {
        let id = format!("{job}~plan~1~1");
        let status = ApprovalStatus::Open;
        Change::Approval(ApprovalChange::of(
            id,
            job.into(),
            "plan".into(),
            &status,
            false,
        ))
    }

    fn replayed(hub: &Hub, id: &str) -> Option<Vec<u64>> {
        let (_, _, replay) = hub.subscribe(Some(id));
        replay.map(|items| items.into_iter().filter_map(|i| i.id()).collect())
    }

    #[tokio::test]
    async fn resuming_needs_this_epoch_every_change_since_and_no_gap() {
        let engine = Engine::builder(
            std::sync::Arc::new(InMemoryStateStore::new()),
            std::sync::Arc::new(InMemoryGitSource::new()),
        )
        .build()
        .expect("engine");
        let hub = Hub::new(&engine, 3);
        let id = |n: u64| hub.id(n);
        for j in ["a", "b", "c"] {
            hub.push(change(j));
        }
        hub.push(approval("d"));
        // Ids 1..=4, the last 3 kept: resuming from 1 (2 is next) works, from 0 does not.
        assert_eq!(replayed(&hub, &id(1)), Some(vec![2, 3, 4]));
        assert_eq!(replayed(&hub, &id(4)), Some(vec![]));
        assert_eq!(replayed(&hub, &id(0)), None);
        assert_eq!(replayed(&hub, &id(5)), None, "an id it never gave");
        assert_eq!(replayed(&hub, "0badcafe-4"), None, "another epoch");
        assert_eq!(replayed(&hub, "garbage"), None);
        // A lag burns id 5: streams from before it get a snapshot, even from the last id.
        hub.lagged();
        hub.push(change("e"));
        assert_eq!(replayed(&hub, &id(4)), None);
        assert_eq!(replayed(&hub, &id(5)), Some(vec![6]));
        let (_, position, _) = hub.subscribe(None);
        assert_eq!(position, 6);
    }
}
