//! [`WebhookHuman`]: a [`HumanChannel`] that posts each approval request (and each
//! cancellation) to a webhook — a Slack incoming webhook, or any HTTP endpoint taking a
//! signed JSON body (feature `notify`).
//!
//! | format | body | for |
//! |---|---|---|
//! | [`WebhookFormat::Slack`] | `{"text": "..."}` with a link `<base_url>/approvals/<id>` | Slack, Mattermost, Rocket.Chat, Teams' Slack-compatible hooks ([Slack's incoming webhooks](https://api.slack.com/messaging/webhooks)) |
//! | [`WebhookFormat::Json`] | `{"event", "id", "url", "request"}`: `event` is `approval_requested` or `approval_cancelled`, `request` the stored [`ApprovalRequest`] | your own receiver |
//!
//! Every post carries `Content-Type: application/json`, [`EVENT_HEADER`] and
//! [`DELIVERY_HEADER`] (the same on each retry: de-duplicate on it); with a secret, also
//! [`SIGNATURE_HEADER`]: `sha256=<hex>` of HMAC-SHA256(secret, raw body), as GitHub signs
//! its webhooks (`X-Hub-Signature-256`). Verify it in constant time over the bytes
//! received, before parsing.
//!
//! # Delivery
//!
//! A notification is posted in the background: the engine never waits for the webhook.
//! A connection error, a timeout, `408`, `429` or a `5xx` is retried with exponential
//! backoff and jitter ([`WebhookConfig::with_retry`]), honouring `Retry-After` (in
//! seconds); another `4xx` is not (the hook is misconfigured). Each failure is logged
//! (`tracing` `warn`), and so is giving up. A notification is only a nudge: the request
//! itself is stored before the channel is called, so a lost notification never loses a
//! request — `GET /api/v1/approvals` (or `george approvals`) is the source of truth.

mod payload;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use george_core::error::{Error, Result};
use george_core::human::HumanChannel;
use george_core::state::ApprovalRequest;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use tokio::sync::watch;

pub use payload::{DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature};
use payload::{Delivery, Event};

/// The body a [`WebhookHuman`] posts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookFormat {
    /// A Slack incoming-webhook message: `{"text": "..."}`.
    #[default]
    Slack,
    /// George's JSON event: `{"event", "id", "url", "request"}`.
    Json,
}

/// Where and how a [`WebhookHuman`] posts.
#[derive(Clone)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The webhook's URL (Slack's incoming-webhook URLs are secrets: load them from the
    /// environment, not from a file in Git).
    pub url: String,
    /// The body's shape.
    pub format: WebhookFormat,
    /// The HMAC-SHA256 key of [`SIGNATURE_HEADER`]; no header without it.
    pub secret: Option<Vec<u8>>,
    /// Where people open an approval: links are `<base_url>/approvals/<id>`.
    pub base_url: Option<String>,
    /// Posts of one notification, the first included (default 8).
    pub max_attempts: u32,
    /// The delay before the first retry (default 500 ms); it doubles on each retry.
    pub initial_delay: Duration,
    /// The longest delay between two posts (default 60 s).
    pub max_delay: Duration,
    /// The timeout of one post (default 10 s).
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL and the secret are credentials: neither is printed.
        f.debug_struct("WebhookConfig")
            .field("format", &self.format)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("max_attempts", &self.max_attempts)
            .field("initial_delay", &self.initial_delay)
            .field("max_delay", &self.max_delay)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookConfig {
    /// Posts to `url` in the Slack format, unsigned, with the default retries.
    pub fn new(url: impl Into<String>) -> Self {
        WebhookConfig {
            url: url.into(),
            format: WebhookFormat::Slack,
            secret: None,
            base_url: None,
            max_attempts: 8,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }

    /// The body's shape.
    pub fn with_format(mut self, format: WebhookFormat) -> Self {
        self.format = format;
        self
    }

    /// Signs each body with `secret` ([`SIGNATURE_HEADER`]).
    pub fn with_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Links point to `<base_url>/approvals/<id>`.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// At most `max_attempts` posts (at least 1) per notification, the delays doubling
    /// from `initial` up to `max`, each with up to half of it subtracted at random.
    pub fn with_retry(mut self, max_attempts: u32, initial: Duration, max: Duration) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.initial_delay = initial;
        self.max_delay = max.max(initial);
        self
    }

    /// The timeout of one post.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The delay before post `attempt + 1` (`attempt` ≥ 1): exponential with "equal
    /// jitter" (half fixed, half random), at least `retry_after`, at most `max_delay`.
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .initial_delay
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.max_delay);
        let half = exp / 2;
        let jitter = Duration::from_nanos(fastrand::u64(0..=half.as_nanos() as u64));
        (half + jitter).max(retry_after.unwrap_or_default().min(self.max_delay))
    }
}

/// A [`HumanChannel`] posting to a webhook; see the [module](self) documentation.
/// Clones share the client and the count of deliveries under way.
#[derive(Debug, Clone)]
pub struct WebhookHuman {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    config: WebhookConfig,
    /// Deliveries under way.
    pending: watch::Sender<usize>,
}

impl WebhookHuman {
    /// A channel posting as `config` says, with its own HTTP client.
    ///
    /// # Errors
    /// `InvalidInput` when the URL is not an `http` or `https` URL; `Backend` when the
    /// HTTP client cannot be built.
    pub fn new(config: WebhookConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| Error::backend(format!("webhook HTTP client: {e}")))?;
        Self::with_client(config, client)
    }

    /// A channel posting with `client` (proxies, mTLS, custom roots: the caller's).
    ///
    /// # Errors
    /// `InvalidInput` when the URL is not an `http` or `https` URL.
    pub fn with_client(config: WebhookConfig, client: reqwest::Client) -> Result<Self> {
        let scheme_ok = reqwest::Url::parse(&config.url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !scheme_ok {
            return Err(Error::invalid_input(
                "the webhook URL must be an http or https URL",
            ));
        }
        let (pending, _) = watch::channel(0);
        Ok(WebhookHuman {
            inner: Arc::new(Inner {
                client,
                config,
                pending,
            }),
        })
    }

    /// Resolves once no delivery is under way (delivered or given up): for tests, and
    /// for a clean stop (bound it with a timeout).
    pub async fn idle(&self) {
        let mut rx = self.inner.pending.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    fn spawn(&self, event: Event, req: &ApprovalRequest) -> Result<()> {
        let c = &self.inner.config;
        let delivery = Delivery::new(
            event,
            req,
            c.format,
            c.base_url.as_deref(),
            c.secret.as_deref(),
        )
        .map_err(|e| Error::backend(format!("webhook body of {}: {e}", req.id)))?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::backend("WebhookHuman posts from a Tokio runtime; none is running")
        })?;
        let inner = self.inner.clone();
        inner.pending.send_modify(|n| *n += 1);
        runtime.spawn(async move {
            inner.deliver(&delivery).await;
            inner.pending.send_modify(|n| *n -= 1);
        });
        Ok(())
    }
}

/// What one post came to.
enum Posted {
    Done,
    Retry(String, Option<Duration>),
    GiveUp(String),
}

impl Inner {
    async fn post(&self, d: &Delivery) -> Posted {
        let mut req = self
            .client
            .post(&self.config.url)
            .timeout(self.config.timeout)
            .header(CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, d.event.as_str())
            .header(DELIVERY_HEADER, format!("{}:{}", d.event.as_str(), d.id))
            .body(d.body.clone());
        if let Some(sig) = &d.signature {
            req = req.header(SIGNATURE_HEADER, sig);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => Posted::Done,
            Ok(r) => {
                let status = r.status();
                let retry_after = r
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let why = format!("HTTP {status}");
                let transient = status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::REQUEST_TIMEOUT;
                if transient {
                    Posted::Retry(why, retry_after)
                } else {
                    Posted::GiveUp(why)
                }
            }
            // Without the URL: it may hold the hook's token.
            Err(e) => Posted::Retry(e.without_url().to_string(), None),
        }
    }

    async fn deliver(&self, d: &Delivery) {
        let max = self.config.max_attempts.max(1);
        for attempt in 1..=max {
            let (why, retry_after) = match self.post(d).await {
                Posted::Done => return,
                Posted::GiveUp(why) => {
                    tracing::error!(id = %d.id, event = d.event.as_str(), %why,
                        "the webhook refused the notification; not retried (the request stays listed by GET /api/v1/approvals)");
                    return;
                }
                Posted::Retry(why, after) => (why, after),
            };
            if attempt == max {
                tracing::error!(id = %d.id, event = d.event.as_str(), attempts = max, %why,
                    "notifying the webhook failed; gave up (the request stays listed by GET /api/v1/approvals)");
                return;
            }
            let wait = self.config.delay(attempt, retry_after);
            tracing::warn!(id = %d.id, event = d.event.as_str(), attempt, %why,
                retry_in_ms = wait.as_millis() as u64, "notifying the webhook failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

#[async_trait]
impl HumanChannel for WebhookHuman {
    /// Starts posting the request in the background and returns.
    ///
    /// # Errors
    /// `Backend` when the body cannot be built or no Tokio runtime is running; the
    /// delivery's own failures are logged, never returned.
    async fn approval_requested(&self, request: &ApprovalRequest) -> Result<()> {
        self.spawn(Event::Requested, request)
    }

    /// Starts posting the cancellation (`request.status` is `Cancelled`, with the reason).
    async fn approval_cancelled(&self, request: &ApprovalRequest) -> Result<()> {
        self.spawn(Event::Cancelled, request)
    }
}
