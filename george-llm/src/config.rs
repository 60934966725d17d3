//! What every adapter is configured with.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use george_core::Result;

use crate::pricing::PriceTable;
use crate::transport::HttpTransport;

/// An API key. Its `Debug` output is redacted, so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// Reads the key from the environment variable `var`.
    ///
    /// # Errors
    /// `Unauthenticated` when the variable is unset or empty (the message names the
    /// variable, never a value).
    pub fn from_env(var: &str) -> Result<Self> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(ApiKey(v.trim().to_string())),
            _ => Err(george_core::Error::new(
                george_core::ErrorKind::Unauthenticated,
                format!("the environment variable {var} (the API key) is not set"),
            )),
        }
    }

    /// The key itself, to put in a header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Settings shared by the adapters.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The API's base URL, without a trailing slash (e.g. `https://api.openai.com/v1`).
    pub base_url: String,
    /// The key; `None` for servers that need none (a local Ollama or llama.cpp).
    pub api_key: Option<ApiKey>,
    /// How requests are sent.
    pub transport: Arc<dyn HttpTransport>,
    /// Limit for a whole call, from sending the request to the last byte of the
    /// response (default 300 s). The connect timeout belongs to the transport.
    pub timeout: Duration,
    /// Whether to ask for a streamed response (server-sent events) and assemble it
    /// (default `true`): the first bytes arrive sooner, and long generations are not
    /// cut by idle-connection limits.
    pub stream: bool,
    /// Prices for the cost of each call.
    pub prices: Arc<PriceTable>,
    /// Whether tracing may record prompts and responses (default `false`: only
    /// provider, model, token counts, cost and latency are recorded).
    pub capture_content: bool,
    /// Extra headers sent with every request (e.g. an organization id, a proxy's key).
    pub extra_headers: Vec<(String, String)>,
    /// Largest non-streamed response body read, in bytes (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`], 32 MiB); past it the call fails with an error
    /// naming the cap, without reading the rest.
    pub max_response_bytes: usize,
    /// Largest streamed response read, in bytes of the event stream as sent (framing
    /// included; default [`DEFAULT_MAX_STREAM_BYTES`], 64 MiB); past it the call fails
    /// with an error naming the cap. It bounds memory against an endless stream; the
    /// call's `timeout` bounds time.
    pub max_stream_bytes: usize,
}

/// The default [`ProviderConfig::max_response_bytes`]: 32 MiB, far above any real
/// answer (a 128k-token answer is under 1 MiB of JSON).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 32 << 20;

/// The default [`ProviderConfig::max_stream_bytes`]: 64 MiB. Streams carry a JSON
/// envelope per token (about 200–300 bytes per chunk in OpenAI's format), so a long
/// streamed answer is much larger than the same answer in one body.
pub const DEFAULT_MAX_STREAM_BYTES: usize = 64 << 20;

impl ProviderConfig {
    /// A configuration for `base_url` over `transport`, with the defaults above.
    pub fn new(base_url: impl Into<String>, transport: Arc<dyn HttpTransport>) -> Self {
        ProviderConfig {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key: None,
            transport,
            timeout: Duration::from_secs(300),
            stream: true,
            prices: Arc::new(PriceTable::default()),
            capture_content: false,
            extra_headers: Vec::new(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_stream_bytes: DEFAULT_MAX_STREAM_BYTES,
        }
    }

    /// A configuration for `base_url` over the default reqwest transport, with a 10 s
    /// connect timeout.
    ///
    /// # Errors
    /// `Backend` when the HTTP client cannot be built.
    #[cfg(feature = "reqwest")]
    pub fn with_default_transport(base_url: impl Into<String>) -> Result<Self> {
        let t = crate::transport::ReqwestTransport::new(Duration::from_secs(10))?;
        Ok(Self::new(base_url, Arc::new(t)))
    }

    /// Sets the key.
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Sets whether responses are streamed.
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }

    /// Sets the whole-call timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the price table.
    pub fn prices(mut self, prices: Arc<PriceTable>) -> Self {
        self.prices = prices;
        self
    }

    /// Sets the cap on a non-streamed response body, in bytes.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Sets the cap on a streamed response, in bytes.
    pub fn max_stream_bytes(mut self, bytes: usize) -> Self {
        self.max_stream_bytes = bytes;
        self
    }
}
