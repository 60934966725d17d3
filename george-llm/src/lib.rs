//! Model provider adapters for George, one per wire protocol, each behind a feature:
//!
//! | adapter | feature | speaks |
//! |---|---|---|
//! | [`openai::OpenAiProvider`] | `openai` | OpenAI chat completions, and the servers that speak it: Ollama, vLLM, llama.cpp server, LiteLLM |
//! | [`anthropic::AnthropicProvider`] | `anthropic` | Anthropic Messages |
//! | [`gemini::GeminiProvider`] | `gemini` | Google Gemini `generateContent` |
//!
//! Around them: [`Retrying`] (exponential backoff with full jitter, `Retry-After`,
//! never retries a terminal error), [`Instrumented`] (a tracing span per call), a
//! [`PriceTable`] for the cost of each call in US dollars, and [`Registry`], the
//! engine's [`ProviderFactory`](george_core::provider::ProviderFactory): it builds the
//! adapter an agent spec chooses among the operator's [`ProviderProfile`]s.
//!
//! # Security model
//! The operator's configuration decides what is reachable; a committed agent spec only
//! chooses among it ([`registry`] has the rules): a spec names a profile and a model,
//! and may restate the profile's `base_url` and `api_key_env` but not change them; only
//! profiles' key variables are read, and every key read is registered with
//! [`KnownSecrets::global`](george_core::secret::KnownSecrets::global) for redaction.
//! Provider calls never follow redirects; link-local and cloud metadata addresses are
//! refused unless a profile allows them ([`guard`]). Responses are read under caps
//! ([`ProviderConfig::max_response_bytes`], [`ProviderConfig::max_stream_bytes`]).
//!
//! HTTP goes through an injectable [`HttpTransport`] (default: reqwest with rustls), so
//! proxies, custom TLS and test servers plug in. The `replay` feature adds a loopback
//! server that replays recorded exchanges, used by this crate's tests.
//!
//! # Usage and cost
//! Every adapter reports [`Usage`](george_core::provider::Usage) with *uncached* input,
//! cache reads, cache writes, output and reasoning tokens; each adapter's docs give the
//! mapping from its provider's fields, with the source.
//!
//! # Example
//! ```no_run
//! use std::sync::Arc;
//! use george_core::provider::{ChatRequest, Message, Provider};
//! use george_llm::{ApiKey, ProviderConfig, openai::OpenAiProvider};
//!
//! # async fn demo() -> george_core::Result<()> {
//! let config = ProviderConfig::with_default_transport("https://api.openai.com/v1")?
//!     .api_key(ApiKey::from_env("OPENAI_API_KEY")?);
//! let provider = OpenAiProvider::new(config);
//! let answer = provider
//!     .complete(ChatRequest::new(
//!         "gpt-4.1-mini",
//!         "You are terse.",
//!         vec![Message::User { content: "Say hi.".into() }],
//!     ))
//!     .await?;
//! println!("{:?} ({} tokens, ${:.6})", answer.message.content, answer.usage.total(), answer.usage.cost_usd);
//! # Ok(()) }
//! ```

pub mod call;
pub mod config;
pub mod error;
pub mod guard;
pub mod instrument;
pub mod pricing;
pub mod registry;
pub mod retry;
pub mod sse;
pub mod transport;

#[cfg(feature = "anthropic")]
pub mod anthropic;
#[cfg(feature = "gemini")]
pub mod gemini;
#[cfg(feature = "openai")]
pub mod openai;
#[cfg(feature = "replay")]
pub mod replay;

pub use config::{ApiKey, ProviderConfig};
pub use instrument::Instrumented;
pub use pricing::{Price, PriceTable};
pub use registry::{KeySource, ProviderKind, ProviderProfile, Registry};
pub use retry::{RetryPolicy, Retrying};
#[cfg(feature = "reqwest")]
pub use transport::ReqwestTransport;
pub use transport::{HttpRequest, HttpResponse, HttpTransport};
