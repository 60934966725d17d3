//! [`ScriptedProvider`]: a provider that replays canned responses and checks the
//! requests it receives (tower-test style), for tests and examples.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::provider::{
    AssistantMessage, ChatRequest, ChatResponse, Message, Provider, ToolCall, Usage,
};

type Check = Box<dyn Fn(&ChatRequest) -> std::result::Result<(), String> + Send + Sync>;

struct Expectation {
    label: String,
    check: Option<Check>,
    response: Result<ChatResponse, (ErrorKind, String)>,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Expectation>,
    requests: Vec<ChatRequest>,
    failures: Vec<String>,
}

/// A [`Provider`] that answers from a script.
///
/// Each expected call has a label, an optional check of the request, and a response.
/// A call with no response left, or whose check fails, is an `InvalidInput` error that
/// says which call it was and what the request looked like; the failures are also kept
/// for [`ScriptedProvider::failures`]. Clones share the script.
///
/// ```
/// # tokio_test_block_on(async {
/// use george_core::provider::{ChatRequest, Message, Provider};
/// use george_core::scripted::{ScriptedProvider, tool_call};
///
/// let p = ScriptedProvider::new();
/// p.expect_call("investigate", tool_call("c1", "read_file", serde_json::json!({"path": "values.yaml"})));
/// let req = ChatRequest::new("m", "sys", vec![Message::User { content: "go".into() }]);
/// let resp = p.complete(req).await.unwrap();
/// assert_eq!(resp.message.tool_calls[0].name, "read_file");
/// assert!(p.complete(ChatRequest::new("m", "s", vec![])).await.is_err());
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone, Default)]
pub struct ScriptedProvider {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for ScriptedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (left, seen) = self
            .inner
            .lock()
            .map(|i| (i.script.len(), i.requests.len()))
            .unwrap_or((0, 0));
        f.debug_struct("ScriptedProvider")
            .field("remaining", &left)
            .field("received", &seen)
            .finish()
    }
}

impl ScriptedProvider {
    /// An empty script.
    pub fn new() -> Self {
        Self::default()
    }

    /// Expects a call (any request) and answers `response`.
    pub fn expect_call(&self, label: impl Into<String>, response: ChatResponse) -> &Self {
        self.push(label.into(), None, Ok(response))
    }

    /// Expects a call whose request passes `check` (return `Err(why)` to fail it).
    pub fn expect_call_where(
        &self,
        label: impl Into<String>,
        check: impl Fn(&ChatRequest) -> std::result::Result<(), String> + Send + Sync + 'static,
        response: ChatResponse,
    ) -> &Self {
        self.push(label.into(), Some(Box::new(check)), Ok(response))
    }

    /// Expects a call and fails it with an error of `kind` (transient kinds are retried
    /// by the engine).
    pub fn expect_error(
        &self,
        label: impl Into<String>,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> &Self {
        self.push(label.into(), None, Err((kind, message.into())))
    }

    fn push(
        &self,
        label: String,
        check: Option<Check>,
        response: Result<ChatResponse, (ErrorKind, String)>,
    ) -> &Self {
        if let Ok(mut i) = self.inner.lock() {
            i.script.push_back(Expectation {
                label,
                check,
                response,
            });
        }
        self
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.inner
            .lock()
            .map(|i| i.requests.clone())
            .unwrap_or_default()
    }

    /// Calls not yet made.
    pub fn remaining(&self) -> usize {
        self.inner.lock().map(|i| i.script.len()).unwrap_or(0)
    }

    /// Unmatched calls and failed checks, described.
    pub fn failures(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|i| i.failures.clone())
            .unwrap_or_default()
    }
}

fn describe(req: &ChatRequest) -> String {
    let last = req.messages.last().map_or_else(
        || "<no messages>".to_string(),
        |m| {
            let s = serde_json::to_string(m).unwrap_or_default();
            s.chars().take(300).collect()
        },
    );
    format!(
        "model {:?}, {} messages, last: {last}",
        req.model,
        req.messages.len()
    )
}

#[async_trait]
impl Provider for ScriptedProvider {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| Error::backend("scripted provider lock poisoned"))?;
        let n = inner.requests.len() + 1;
        inner.requests.push(request.clone());
        let Some(exp) = inner.script.pop_front() else {
            let msg = format!(
                "unexpected call #{n}: the script has no response left ({})",
                describe(&request)
            );
            inner.failures.push(msg.clone());
            return Err(Error::invalid_input(msg));
        };
        if let Some(check) = &exp.check
            && let Err(why) = check(&request)
        {
            let msg = format!(
                "call #{n} ({}) did not match: {why} ({})",
                exp.label,
                describe(&request)
            );
            inner.failures.push(msg.clone());
            return Err(Error::invalid_input(msg));
        }
        exp.response
            .map_err(|(kind, m)| Error::new(kind, format!("{} (scripted: {})", m, exp.label)))
    }
}

/// A response with one tool call, and no usage (set `usage` when a test needs tokens).
pub fn tool_call(id: &str, name: &str, arguments: serde_json::Value) -> ChatResponse {
    tool_calls(vec![(id, name, arguments)])
}

/// A response with several tool calls (id, name, arguments), and no usage.
pub fn tool_calls(calls: Vec<(&str, &str, serde_json::Value)>) -> ChatResponse {
    ChatResponse::tool_calls(
        calls
            .into_iter()
            .map(|(id, name, arguments)| ToolCall::new(id, name, arguments))
            .collect(),
    )
}

/// A plain text response (no tool call), and no usage.
pub fn text(content: &str) -> ChatResponse {
    ChatResponse::new(
        AssistantMessage {
            content: Some(content.into()),
            tool_calls: vec![],
        },
        Usage::default(),
    )
}

/// Whether the last message of `req` is a tool result containing `needle`.
pub fn last_tool_result_contains(req: &ChatRequest, needle: &str) -> bool {
    req.messages
        .iter()
        .rev()
        .any(|m| matches!(m, Message::Tool { content, .. } if content.contains(needle)))
}
