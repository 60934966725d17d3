//! A client of `GET /api/v1/stream`: the events, one at a time, within [`LIMIT`].

use eventsource_stream::{Event, Eventsource};
use futures::{Stream, StreamExt};
use serde_json::Value;

use super::{LIMIT, READER, Server};

/// The stream's events.
pub type Events = std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>;

/// Opens `/api/v1/stream{query}` as the reader, resuming after `last_id` when given.
pub async fn connect(s: &Server, query: &str, last_id: Option<&str>) -> Events {
    open(s, &format!("/api/v1/stream{query}"), last_id).await
}

/// Opens the event stream at `path` as the reader, resuming after `last_id` when given.
pub async fn open(s: &Server, path: &str, last_id: Option<&str>) -> Events {
    let mut req = s.http.get(s.url(path)).bearer_auth(READER);
    if let Some(id) = last_id {
        req = req.header("last-event-id", id);
    }
    let res = req.send().await.expect("sent");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    Box::pin(
        res.bytes_stream()
            .eventsource()
            .map(|e| e.expect("an event")),
    )
}

/// The next event, within [`LIMIT`].
pub async fn next(events: &mut Events) -> Event {
    tokio::time::timeout(LIMIT, events.next())
        .await
        .expect("an event in time")
        .expect("the stream goes on")
}

/// An event's data, as JSON.
pub fn data(e: &Event) -> Value {
    serde_json::from_str(&e.data).expect("JSON data")
}
