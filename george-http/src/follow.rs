//! `GET /api/v1/jobs/{name}/events/stream`: a job's event log followed live, as
//! Server-Sent Events — what `logs -f` needs.
//!
//! Each entry of the log is one `event` event whose `id` is its sequence number and
//! whose data is the entry ([`ApiEvent`]). The log is durable, so resuming is exact: a
//! client that reconnects with `Last-Event-ID: <seq>` (or asks `?after=<seq>`) gets every
//! entry after it, and nothing twice. New entries are sent at once when the job's status
//! changes and otherwise within a second (entries that change no status, such as tool
//! calls, are polled for). Once the job is `succeeded`, `failed` or `cancelled` and every
//! entry was sent, an `end` event (data: `{"status": …}`) closes the stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast;
use utoipa::IntoParams;

use crate::api::job_types::{ApiEvent, ApiJobStatus};
use crate::auth::{Caller, Role};
use crate::body::{ApiPath, ApiQuery};
use crate::live::Item;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// How often a followed log is read when no status change wakes it.
const POLL: Duration = Duration::from_secs(1);

/// Where to start following.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FollowQuery {
    /// Only entries with a sequence number above this (default 0); `Last-Event-ID`
    /// takes precedence.
    pub after: Option<u64>,
}

/// Follows a job's event log live (see the module docs).
#[utoipa::path(
    get, path = "/jobs/{name}/events/stream", tag = "live", operation_id = "follow_job_events",
    params(
        ("name" = String, Path, description = "The job's name"),
        FollowQuery,
        ("Last-Event-ID" = Option<u64>, Header, nullable = false, description = "The sequence number of the last entry received"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: `event` events (id: the sequence number; data: ApiEvent), then `end` once the job is finished", content_type = "text/event-stream", body = crate::live::SseEvent),
        (status = 400, description = "A bad `after` or `Last-Event-ID`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn follow_events(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<FollowQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    who.require(Role::Read)?;
    // `after` is checked even when `Last-Event-ID` overrides it.
    let asked = crate::api::jobs::seq("after", q.after.unwrap_or(0))?;
    let after = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(id) if !id.trim().is_empty() => id.trim().parse::<u64>().map_err(|_| {
            Problem::invalid("Last-Event-ID: a job's log is resumed by a sequence number")
        })?,
        _ => asked,
    };
    let after = crate::api::jobs::seq("Last-Event-ID", after)?;
    if state.engine.job(&name).await?.is_none() {
        return Err(Problem::not_found(format!("no job {name}")));
    }
    state.hub.start();
    let follower = Follower {
        changes: state.hub.changes(),
        state,
        job: name,
        last: after,
        queue: VecDeque::new(),
        done: false,
    };
    let events = futures::stream::unfold(follower, |mut f| async move {
        let event = f.next().await?;
        Some((Ok(event), f))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct Follower {
    state: AppState,
    changes: broadcast::Receiver<Item>,
    job: String,
    last: u64,
    queue: VecDeque<Event>,
    done: bool,
}

impl Follower {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some(ev);
            }
            if self.done {
                return None;
            }
            // The status is read before the log: the entries of the write that finished
            // the job are then in the page.
            let status = match self.state.engine.job(&self.job).await {
                Ok(rec) => rec.map(|r| r.status),
                Err(e) => {
                    tracing::warn!(job = %self.job, error = %e, "following a log: reading the job failed");
                    None
                }
            };
            let page = match self
                .state
                .engine
                .events_after(&self.job, self.last, 500)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(job = %self.job, error = %e, "following a log: reading it failed");
                    return None;
                }
            };
            if !page.is_empty() {
                for e in page {
                    self.last = e.seq;
                    let ev = Event::default().event("event").id(e.seq.to_string());
                    self.queue
                        .push_back(ev.json_data(ApiEvent::from(e)).unwrap_or_default());
                }
                continue;
            }
            if let Some(s) = status.filter(|s| s.is_finished()) {
                let data = serde_json::json!({ "status": ApiJobStatus::from(s) });
                self.queue
                    .push_back(Event::default().event("end").data(data.to_string()));
                self.done = true;
                continue;
            }
            self.wait().await;
        }
    }

    /// Until this job's status changes (or the hub resyncs), or [`POLL`] passes.
    async fn wait(&mut self) {
        let sleep = tokio::time::sleep(POLL);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                got = self.changes.recv() => match got {
                    Ok(Item::Change(_, c)) if c.job != self.job => continue,
                    Err(broadcast::error::RecvError::Closed) => {
                        sleep.as_mut().await;
                        return;
                    }
                    _ => return,
                },
                () = &mut sleep => return,
            }
        }
    }
}
