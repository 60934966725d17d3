//! [`Instrumented`]: a tracing span per model call.

use std::time::Instant;

use async_trait::async_trait;
use george_core::Result;
use george_core::provider::{ChatRequest, ChatResponse, Provider};
use tracing::Instrument as _;

/// Wraps a provider so that every call runs in a `llm.call` span with the fields
/// `provider`, `model`, `input_tokens` (uncached), `cache_read_tokens`,
/// `cache_write_tokens`, `output_tokens`, `reasoning_tokens`, `cost_usd`,
/// `latency_ms`, `stop_reason` and, on failure, `error`.
///
/// Prompts and responses are recorded (as `debug` events in the span) only when
/// `capture_content` is true: they may hold secrets and personal data.
#[derive(Debug)]
pub struct Instrumented<P> {
    inner: P,
    capture_content: bool,
}

impl<P: Provider> Instrumented<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, capture_content: bool) -> Self {
        Instrumented {
            inner,
            capture_content,
        }
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

#[async_trait]
impl<P: Provider> Provider for Instrumented<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse> {
        let span = tracing::info_span!(
            "llm.call",
            provider = self.inner.name(),
            model = %request.model,
            input_tokens = tracing::field::Empty,
            cache_read_tokens = tracing::field::Empty,
            cache_write_tokens = tracing::field::Empty,
            output_tokens = tracing::field::Empty,
            reasoning_tokens = tracing::field::Empty,
            cost_usd = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            stop_reason = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let capture = self.capture_content;
        async move {
            if capture {
                tracing::debug!(
                    system = %request.system,
                    messages = %serde_json::to_string(&request.messages).unwrap_or_default(),
                    "model request"
                );
            }
            let started = Instant::now();
            let result = self.inner.complete(request).await;
            let span = tracing::Span::current();
            span.record("latency_ms", started.elapsed().as_millis() as u64);
            match &result {
                Ok(r) => {
                    let u = &r.usage;
                    span.record("input_tokens", u.input_tokens);
                    span.record("cache_read_tokens", u.cache_read_tokens);
                    span.record("cache_write_tokens", u.cache_write_tokens);
                    span.record("output_tokens", u.output_tokens);
                    span.record("reasoning_tokens", u.reasoning_tokens);
                    span.record("cost_usd", u.cost_usd);
                    span.record("stop_reason", tracing::field::debug(r.stop_reason));
                    if capture {
                        tracing::debug!(
                            response = %serde_json::to_string(&r.message).unwrap_or_default(),
                            "model response"
                        );
                    }
                }
                Err(e) => {
                    span.record("error", tracing::field::display(e));
                }
            }
            result
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use george_core::provider::{AssistantMessage, Message, Usage};

    use super::*;

    #[derive(Debug)]
    struct Fixed;

    #[async_trait]
    impl Provider for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        async fn complete(&self, _r: ChatRequest) -> Result<ChatResponse> {
            Ok(ChatResponse::new(
                AssistantMessage {
                    content: Some("SECRET-ANSWER".into()),
                    tool_calls: vec![],
                },
                Usage {
                    input_tokens: 11,
                    output_tokens: 7,
                    cost_usd: 0.25,
                    ..Usage::default()
                },
            ))
        }
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn traced(capture: bool) -> String {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::DEBUG)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let p = Instrumented::new(Fixed, capture);
                let req = ChatRequest::new(
                    "m-1",
                    "sys",
                    vec![Message::User {
                        content: "SECRET-PROMPT".into(),
                    }],
                );
                p.complete(req).await.unwrap();
            });
        });
        let out = buf.0.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn spans_carry_usage_and_content_only_when_asked() {
        let out = traced(false);
        for field in [
            "llm.call",
            "provider=\"fixed\"",
            "model=m-1",
            "input_tokens=11",
            "output_tokens=7",
            "cost_usd=0.25",
            "latency_ms=",
        ] {
            assert!(out.contains(field), "missing {field} in {out}");
        }
        assert!(
            !out.contains("SECRET"),
            "content recorded without opt-in: {out}"
        );
        let out = traced(true);
        assert!(
            out.contains("SECRET-PROMPT") && out.contains("SECRET-ANSWER"),
            "{out}"
        );
    }
}
