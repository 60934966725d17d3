//! `GET /ui/live`: Server-Sent Events telling a page to re-render its live parts.
//!
//! Authenticated like every view (the session cookie, which `EventSource` sends). Each
//! event is `event: change` with the job's name (or `*`) as data; the page then fetches
//! its fragments. The first event is sent at once, so a change made between the page's
//! rendering and the stream's start is not missed. Without `?job=`, any job or approval
//! change of the router's live hub ([`crate::live`]) is one; with `?job=<name>`, a new
//! revision of that job (every status change, step transition and event is a write that
//! grows the revision), checked on each hub change and every second.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast;

use super::session::Viewer;
use crate::live::Item;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LiveQuery {
    job: Option<String>,
}

struct Watch {
    state: AppState,
    rx: broadcast::Receiver<Item>,
    job: Option<String>,
    revision: Option<u64>,
    first: bool,
}

impl Watch {
    async fn revision(&self) -> Option<u64> {
        let job = self.job.as_deref()?;
        self.state
            .engine
            .job(job)
            .await
            .ok()
            .flatten()
            .map(|r| r.revision)
    }

    /// Waits for the next change worth a re-render.
    async fn next(&mut self) -> Option<String> {
        let label = self.job.clone().unwrap_or_else(|| "*".into());
        if self.first {
            self.first = false;
            self.revision = self.revision().await;
            return Some(label);
        }
        loop {
            let hub_changed =
                match tokio::time::timeout(Duration::from_secs(1), self.rx.recv()).await {
                    Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => true,
                    Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                    Err(_) => false,
                };
            match &self.job {
                None if hub_changed => return Some(label),
                None => {}
                Some(_) => {
                    let now = self.revision().await;
                    if now != self.revision {
                        self.revision = now;
                        return Some(label);
                    }
                }
            }
        }
    }
}

/// `GET /ui/live[?job=<name>]`.
pub(crate) async fn live(
    State(state): State<AppState>,
    _viewer: Viewer,
    Query(q): Query<LiveQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    state.hub.start();
    let watch = Watch {
        rx: state.hub.changes(),
        state,
        job: q.job.filter(|j| !j.trim().is_empty()),
        revision: None,
        first: true,
    };
    let stream = futures::stream::unfold(watch, |mut w| async move {
        let label = w.next().await?;
        Some((Ok(Event::default().event("change").data(label)), w))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
