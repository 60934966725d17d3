//! [`Retrying`]: a [`Provider`] wrapper that retries transient errors with exponential
//! backoff and full jitter, honouring `Retry-After`.

use std::time::Duration;

use async_trait::async_trait;
use george_core::provider::{ChatRequest, ChatResponse, Provider};
use george_core::{Result, RetryStatus};

/// When to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in all, the first included (default 4).
    pub max_attempts: u32,
    /// Backoff before the first retry, in ms (default 500); doubled each retry.
    pub base_delay_ms: u64,
    /// Longest backoff, in ms (default 30,000). A server's `Retry-After` longer than
    /// this is honoured up to `max_retry_after_ms`.
    pub max_delay_ms: u64,
    /// Longest `Retry-After` honoured, in ms (default 120,000); a longer one ends the
    /// retries (the error is returned as exhausted).
    pub max_retry_after_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay_ms: 500,
            max_delay_ms: 30_000,
            max_retry_after_ms: 120_000,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry `n` (1-based): `Retry-After` when the server gave one,
    /// else a random duration in `[0, min(base · 2^(n-1), max)]` (full jitter).
    pub fn delay(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d;
        }
        let cap = self
            .base_delay_ms
            .saturating_mul(1u64 << (n.saturating_sub(1)).min(32))
            .min(self.max_delay_ms);
        Duration::from_millis(fastrand::u64(0..=cap))
    }
}

/// Retries the calls of `P` that fail with a transient error (`RetryStatus::Transient`:
/// rate limits, overload, timeouts, 5xx, broken connections). A non-retryable error is
/// returned at once; when the attempts run out, the last error is returned with
/// `RetryStatus::Exhausted`, so the engine does not retry the whole step for it.
#[derive(Debug)]
pub struct Retrying<P> {
    inner: P,
    policy: RetryPolicy,
}

impl<P: Provider> Retrying<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, policy: RetryPolicy) -> Self {
        Retrying { inner, policy }
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

#[async_trait]
impl<P: Provider> Provider for Retrying<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse> {
        let mut attempt = 1;
        loop {
            let err = match self.inner.complete(request.clone()).await {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            let RetryStatus::Transient { after } = err.retry() else {
                return Err(err);
            };
            let too_long =
                after.is_some_and(|d| d.as_millis() > u128::from(self.policy.max_retry_after_ms));
            if attempt >= self.policy.max_attempts || too_long {
                return Err(err.with_retry(RetryStatus::Exhausted));
            }
            let wait = self.policy.delay(attempt, after);
            tracing::warn!(
                provider = self.inner.name(),
                model = %request.model,
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %err,
                "model call failed; retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use george_core::{Error, ErrorKind};

    use super::*;

    #[derive(Debug)]
    struct Flaky(Mutex<Vec<Result<ChatResponse>>>);

    #[async_trait]
    impl Provider for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        async fn complete(&self, _r: ChatRequest) -> Result<ChatResponse> {
            let mut v = self.0.lock().unwrap();
            if v.is_empty() {
                Ok(ChatResponse::default())
            } else {
                v.remove(0)
            }
        }
    }

    fn req() -> ChatRequest {
        ChatRequest::new("m", "s", vec![])
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_then_succeeds_honouring_retry_after() {
        let p = Retrying::new(
            Flaky(Mutex::new(vec![
                Err(
                    Error::new(ErrorKind::RateLimited, "429").with_retry(RetryStatus::Transient {
                        after: Some(Duration::from_secs(7)),
                    }),
                ),
                Err(Error::new(ErrorKind::Backend, "500")),
            ])),
            RetryPolicy::default(),
        );
        let t = tokio::time::Instant::now();
        assert!(p.complete(req()).await.is_ok());
        assert!(
            t.elapsed() >= Duration::from_secs(7),
            "waited for Retry-After"
        );
        assert!(p.inner().0.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn never_retries_a_terminal_error() {
        let p = Retrying::new(
            Flaky(Mutex::new(vec![
                Err(Error::new(ErrorKind::Unauthenticated, "401")),
                Ok(ChatResponse::default()),
            ])),
            RetryPolicy::default(),
        );
        let e = p.complete(req()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert_eq!(p.inner().0.lock().unwrap().len(), 1, "called once");
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_exhausted() {
        let errs = (0..10)
            .map(|_| Err(Error::new(ErrorKind::Overloaded, "529")))
            .collect();
        let p = Retrying::new(Flaky(Mutex::new(errs)), RetryPolicy::default());
        let e = p.complete(req()).await.unwrap_err();
        assert_eq!(e.retry(), RetryStatus::Exhausted);
        assert_eq!(p.inner().0.lock().unwrap().len(), 6, "4 calls made");
    }

    #[test]
    fn backoff_is_capped_full_jitter() {
        let p = RetryPolicy::default();
        for n in 1..20 {
            assert!(p.delay(n, None) <= Duration::from_millis(p.max_delay_ms));
        }
        assert_eq!(
            p.delay(3, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }
}
