//! Server-sent events (the WHATWG HTML "Server-sent events" format) over a streaming
//! HTTP body, parsed by `eventsource-stream`: events split across chunks, UTF-8
//! characters split across chunks, `\r\n` line ends and comments are handled there.

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::stream::{BoxStream, Stream, StreamExt};
use george_core::{Error, Result};

/// One event: its `event:` name (empty when absent) and its `data:` (lines joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type (`message_start`, …); empty when the server sent none.
    pub event: String,
    /// The data.
    pub data: String,
}

/// The events of `body`, in order. A broken connection or invalid UTF-8 is an `Err`.
pub fn events(
    provider: &'static str,
    body: BoxStream<'static, Result<Bytes>>,
) -> impl Stream<Item = Result<SseEvent>> + Send + 'static {
    body.eventsource().map(move |r| match r {
        Ok(e) => Ok(SseEvent {
            event: if e.event == "message" {
                String::new()
            } else {
                e.event
            },
            data: e.data,
        }),
        Err(eventsource_stream::EventStreamError::Transport(e)) => Err(e),
        Err(e) => Err(crate::error::malformed(
            provider,
            format!("event stream: {e}"),
        )),
    })
}

/// `Err` with a clear message when a stream ended before its final event.
pub fn cut_short(provider: &str) -> Error {
    Error::new(
        george_core::ErrorKind::MalformedResponse,
        format!("{provider}: the event stream ended before the response was complete"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_split_anywhere() {
        let text = "event: a\ndata: {\"x\":\"🌍\"}\n\n: comment\r\ndata: b\r\n\r\n";
        let bytes = text.as_bytes();
        for split in 1..bytes.len() {
            let chunks: Vec<Result<Bytes>> = vec![
                Ok(Bytes::copy_from_slice(&bytes[..split])),
                Ok(Bytes::copy_from_slice(&bytes[split..])),
            ];
            let got: Vec<SseEvent> = events("t", futures::stream::iter(chunks).boxed())
                .map(|e| e.unwrap())
                .collect()
                .await;
            assert_eq!(
                got,
                vec![
                    SseEvent {
                        event: "a".into(),
                        data: "{\"x\":\"🌍\"}".into()
                    },
                    SseEvent {
                        event: String::new(),
                        data: "b".into()
                    }
                ],
                "split at {split}"
            );
        }
    }
}
