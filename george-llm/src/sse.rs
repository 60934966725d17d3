//! Server-sent events over a streaming HTTP body, as the WHATWG HTML standard defines
//! them (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>):
//! lines end with `\r\n`, `\n` or `\r`; `:` starts a comment; `event:` names the event,
//! `data:` lines are joined with `\n`; a blank line dispatches; a leading BOM is
//! skipped. Events, lines and UTF-8 characters may be split across chunks anywhere.
//!
//! Two additions:
//! - A cap on the bytes read per response ([`events`]'s `limit`): an endless stream,
//!   or one endless line, ends with an error naming the cap instead of growing memory.
//! - A non-standard `error:` field (llama.cpp's server sends `error: {json}` when a
//!   streamed request fails, e.g. on a context overflow) is an event named `error`
//!   whose data is that value; standard parsers ignore the field.

use std::collections::VecDeque;

use bytes::Bytes;
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

/// The events of `body`, in order, reading at most `limit` bytes of it.
///
/// # Errors
/// An item is `Err` when the connection broke (the transport's error), a line is not
/// UTF-8 (`MalformedResponse`), or more than `limit` bytes came (`MalformedResponse`,
/// terminal, naming the cap); the stream ends after it.
pub fn events(
    provider: &'static str,
    body: BoxStream<'static, Result<Bytes>>,
    limit: usize,
) -> impl Stream<Item = Result<SseEvent>> + Send + 'static {
    let what = format!("{provider}: the streamed response");
    let body = crate::transport::capped(body, what, limit);
    let state = (
        body,
        Parser::default(),
        VecDeque::<Result<SseEvent>>::new(),
        false,
    );
    futures::stream::unfold(
        state,
        move |(mut body, mut parser, mut ready, mut ended)| {
            async move {
                loop {
                    if let Some(item) = ready.pop_front() {
                        if item.is_err() {
                            // Nothing after an error is read.
                            ready.clear();
                            ended = true;
                        }
                        return Some((item, (body, parser, ready, ended)));
                    }
                    if ended {
                        return None;
                    }
                    match body.next().await {
                        Some(Ok(chunk)) => parser.push(provider, &chunk, &mut ready),
                        Some(Err(e)) => ready.push_back(Err(e)),
                        None => {
                            // A last line without its line end still counts; an event
                            // without its blank line is dropped, as the standard says.
                            parser.finish(provider, &mut ready);
                            ended = true;
                        }
                    }
                }
            }
        },
    )
}

/// The line-splitting state between chunks.
#[derive(Debug, Default)]
struct Parser {
    /// Bytes of the line being read (no line end).
    line: Vec<u8>,
    /// The last chunk ended with `\r`: a `\n` starting the next one ends no line.
    after_cr: bool,
    /// Whether the first line was seen (for the BOM).
    started: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl Parser {
    fn push(&mut self, provider: &str, chunk: &[u8], out: &mut VecDeque<Result<SseEvent>>) {
        for &b in chunk {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    self.end_line(provider, out);
                }
                _ => self.line.push(b),
            }
        }
    }

    fn finish(&mut self, provider: &str, out: &mut VecDeque<Result<SseEvent>>) {
        if !self.line.is_empty() {
            self.end_line(provider, out);
        }
    }

    fn end_line(&mut self, provider: &str, out: &mut VecDeque<Result<SseEvent>>) {
        let bytes = std::mem::take(&mut self.line);
        let mut text = match std::str::from_utf8(&bytes) {
            Ok(t) => t,
            Err(e) => {
                out.push_back(Err(crate::error::malformed(
                    provider,
                    format!("event stream: invalid UTF-8: {e}"),
                )));
                return;
            }
        };
        if !std::mem::replace(&mut self.started, true) {
            text = text.strip_prefix('\u{feff}').unwrap_or(text);
        }
        if text.is_empty() {
            if self.has_data {
                out.push_back(Ok(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                }));
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        if text.starts_with(':') {
            return;
        }
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text, ""),
        };
        match field {
            "event" => self.event = if value == "message" { "" } else { value }.to_string(),
            "data" | "error" => {
                if field == "error" {
                    self.event = "error".to_string();
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }
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

    async fn parse(chunks: Vec<&[u8]>, limit: usize) -> Vec<Result<SseEvent>> {
        let chunks: Vec<Result<Bytes>> = chunks
            .into_iter()
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        events("t", futures::stream::iter(chunks).boxed(), limit)
            .collect::<Vec<_>>()
            .await
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[tokio::test]
    async fn events_split_anywhere() {
        let text = "\u{feff}event: a\ndata: {\"x\":\"🌍\"}\n\n: comment\r\ndata: b\r\ndata:c\r\rdata: d\n\n";
        let bytes = text.as_bytes();
        for split in 1..bytes.len() {
            let got: Vec<SseEvent> = parse(vec![&bytes[..split], &bytes[split..]], 1 << 20)
                .await
                .into_iter()
                .map(|e| e.unwrap())
                .collect();
            assert_eq!(
                got,
                vec![ev("a", "{\"x\":\"🌍\"}"), ev("", "b\nc"), ev("", "d")],
                "split at {split}"
            );
        }
    }

    #[tokio::test]
    async fn llama_cpp_error_field_is_an_error_event() {
        let got = parse(vec![b"error: {\"code\":400}\n\ndata: [DONE]\n\n"], 1 << 20).await;
        let got: Vec<SseEvent> = got.into_iter().map(|e| e.unwrap()).collect();
        assert_eq!(got, vec![ev("error", "{\"code\":400}"), ev("", "[DONE]")]);
    }

    #[tokio::test]
    async fn the_cap_ends_the_stream_with_an_error_naming_it() {
        let got = parse(
            vec![b"data: 1\n\n", b"data: 22222222\n\n", b"data: 3\n\n"],
            12,
        )
        .await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].as_ref().unwrap(), &ev("", "1"));
        let e = got[1].as_ref().unwrap_err();
        assert!(e.message().contains("cap of 12 bytes"), "{e}");
        assert!(!e.is_retryable());
    }

    #[tokio::test]
    async fn invalid_utf8_is_an_error() {
        let got = parse(vec![b"data: \xff\n\n"], 1 << 20).await;
        assert!(got[0].is_err());
    }
}
