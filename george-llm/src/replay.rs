//! A loopback HTTP server that replays recorded exchanges with a provider's API (and
//! faults: slow answers, dropped connections, malformed bodies), for tests and
//! benchmarks that must not need the internet. Feature `replay`.
//!
//! Recordings ("cassettes") are YAML files of one document per exchange:
//! `when` (the request: path, method, query_param, header, body) and `then` (status,
//! header, body; a streamed body is the raw server-sent events), the format of
//! `0xPlaygrounds/rig`'s `tests/cassettes/`.
//!
//! ```no_run
//! # async fn demo() {
//! use george_llm::replay::{Cassette, ReplayServer};
//! let cassette = Cassette::load("fixtures/openai/blocking.yaml").unwrap();
//! let server = ReplayServer::start(cassette.replies()).await;
//! // point an adapter at server.base_url(), call it, then:
//! let sent = server.received();
//! assert_eq!(sent[0].path, cassette.exchanges[0].when.path);
//! # }
//! ```

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;

/// A header or query parameter of a recording.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NameValue {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// The request of a recorded exchange.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecordedRequest {
    /// The path, without the query.
    pub path: String,
    /// The method.
    pub method: String,
    /// Query parameters.
    #[serde(default)]
    pub query_param: Vec<NameValue>,
    /// Headers (credentials were removed from the recordings).
    #[serde(default)]
    pub header: Vec<NameValue>,
    /// The body, as text (JSON for the APIs here).
    #[serde(default)]
    pub body: String,
}

/// The response of a recorded exchange.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecordedResponse {
    /// The status.
    pub status: u16,
    /// Headers.
    #[serde(default)]
    pub header: Vec<NameValue>,
    /// The body; the raw server-sent events for a stream.
    #[serde(default)]
    pub body: String,
}

/// One recorded exchange.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Exchange {
    /// What the real client sent.
    pub when: RecordedRequest,
    /// What the real API answered.
    pub then: RecordedResponse,
}

/// The exchanges of one recording, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cassette {
    /// The exchanges.
    pub exchanges: Vec<Exchange>,
}

impl Cassette {
    /// Reads a recording.
    ///
    /// # Errors
    /// The file cannot be read, or is not a list of `when`/`then` documents (the
    /// message names the file).
    pub fn load(path: impl AsRef<Path>) -> Result<Cassette, String> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let exchanges: Vec<Exchange> =
            serde_saphyr::from_multiple(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Cassette { exchanges })
    }

    /// The recorded responses, as replies in order.
    pub fn replies(&self) -> Vec<Reply> {
        self.exchanges
            .iter()
            .map(|e| Reply::recorded(&e.then))
            .collect()
    }
}

/// What the server answers to one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Send the body in chunks of this many bytes (default: one chunk). Small chunks
    /// split events and UTF-8 characters, as real networks do.
    pub chunk_size: Option<usize>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Wait this long between chunks.
    pub chunk_delay: Duration,
    /// Break the connection after this many body bytes.
    pub drop_after: Option<usize>,
}

impl Reply {
    /// A recorded response.
    pub fn recorded(r: &RecordedResponse) -> Reply {
        Reply {
            status: r.status,
            headers: r
                .header
                .iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
            body: r.body.clone().into_bytes(),
            ..Reply::default()
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into().into_bytes(),
            ..Reply::default()
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends the body in chunks of `n` bytes.
    pub fn chunked(mut self, n: usize) -> Reply {
        self.chunk_size = Some(n.max(1));
        self
    }

    /// Waits `d` before answering.
    pub fn delayed(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }

    /// Breaks the connection after `n` body bytes.
    pub fn dropped_after(mut self, n: usize) -> Reply {
        self.drop_after = Some(n);
        if self.chunk_size.is_none() {
            self.chunk_size = Some(n.max(1));
        }
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::transport::header(&self.headers, name)
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When it is not JSON (a test helper).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the request body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

#[derive(Default)]
struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
    /// Answers every request once `replies` is used up (benchmarks).
    repeat: Option<Reply>,
    /// Whether requests are kept (off for benchmarks, where they would pile up).
    record: bool,
}

/// The server. It stops when dropped.
#[derive(Debug)]
pub struct ReplayServer {
    base_url: String,
    shared: Arc<SharedHandle>,
    task: tokio::task::JoinHandle<()>,
}

struct SharedHandle(Shared);

impl std::fmt::Debug for SharedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplayState")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ReplayServer {
    /// Starts a server on 127.0.0.1 (a free port) that answers the n-th request with
    /// `replies[n]`, and with a 500 once they are used up.
    ///
    /// # Panics
    /// When no loopback port can be bound (a test helper).
    pub async fn start(replies: Vec<Reply>) -> ReplayServer {
        Self::start_with(Shared {
            replies: Mutex::new(replies.into()),
            received: Mutex::new(Vec::new()),
            repeat: None,
            record: true,
        })
        .await
    }

    /// Starts a server that answers every request with `reply` and keeps no record of
    /// the requests (for benchmarks).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub async fn start_repeating(reply: Reply) -> ReplayServer {
        Self::start_with(Shared {
            replies: Mutex::new(VecDeque::new()),
            received: Mutex::new(Vec::new()),
            repeat: Some(reply),
            record: false,
        })
        .await
    }

    async fn start_with(state: Shared) -> ReplayServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(SharedHandle(state));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ReplayServer {
            base_url: format!("http://{addr}"),
            shared,
            task,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The requests received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.0.received).clone()
    }

    /// Queues more replies.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.0.replies).push_back(reply);
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(shared): State<Arc<SharedHandle>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let query = parts
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let received = Received {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query,
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    if shared.0.record {
        lock(&shared.0.received).push(received);
    }
    let next = lock(&shared.0.replies).pop_front();
    let reply = next
        .or_else(|| shared.0.repeat.clone())
        .unwrap_or_else(|| Reply::json(500, r#"{"error":"replay: no more recorded replies"}"#));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut builder = Response::builder().status(reply.status);
    for (n, v) in &reply.headers {
        // The recorded length may not match once chunked; the server sets its own.
        if n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding") {
            continue;
        }
        builder = builder.header(n, v);
    }
    let body = match reply.chunk_size {
        None if reply.drop_after.is_none() => Body::from(reply.body),
        _ => {
            let size = reply.chunk_size.unwrap_or(usize::MAX).max(1);
            let limit = reply.drop_after.unwrap_or(usize::MAX).min(reply.body.len());
            let mut chunks: Vec<Result<Bytes, std::io::Error>> = reply.body[..limit]
                .chunks(size)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            if reply.drop_after.is_some() {
                chunks.push(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "replay: connection dropped on purpose",
                )));
            }
            let delay = reply.chunk_delay;
            let stream = futures::stream::iter(chunks).then(move |c| async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                c
            });
            Body::from_stream(stream)
        }
    };
    builder
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::from("replay: bad recorded response")))
}

use futures::StreamExt as _;

/// Checks that `actual` contains everything in `expected`: every key of every object
/// with an equal value, arrays element by element (same length). Returns the path of
/// the first difference. Extra keys in `actual` are allowed: adapters may send more
/// than the recorded client did.
pub fn json_includes(
    actual: &serde_json::Value,
    expected: &serde_json::Value,
) -> Result<(), String> {
    fn walk(a: &serde_json::Value, e: &serde_json::Value, path: &mut String) -> Result<(), String> {
        use serde_json::Value;
        match (a, e) {
            (Value::Object(ao), Value::Object(eo)) => {
                for (k, ev) in eo {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    match ao.get(k) {
                        Some(av) => walk(av, ev, path)?,
                        None if ev.is_null() => {}
                        None => return Err(format!("{path}: missing (expected {ev})")),
                    }
                    path.truncate(len);
                }
                Ok(())
            }
            (Value::Array(aa), Value::Array(ea)) => {
                if aa.len() != ea.len() {
                    return Err(format!(
                        "{path}: {} elements, expected {}",
                        aa.len(),
                        ea.len()
                    ));
                }
                for (i, (av, ev)) in aa.iter().zip(ea).enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(av, ev, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            (Value::Number(an), Value::Number(en)) if an.as_f64() == en.as_f64() => Ok(()),
            _ if a == e => Ok(()),
            _ => Err(format!("{path}: {a} != expected {e}")),
        }
    }
    walk(actual, expected, &mut String::from("$"))
}
