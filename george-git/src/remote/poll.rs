//! The background poller of a [`RemoteGitSource`](crate::RemoteGitSource): jitter, and
//! a capped exponential backoff while fetching fails.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;

/// Starts a task that calls `fetch` at once, then every `interval` plus a random
/// `0..=jitter`; after a failure it waits `min(interval × 2^failures, cap)` plus
/// jitter instead, logging the failure (`fetch`'s error text) against `label`.
///
/// # Panics
/// When called outside a Tokio runtime.
pub(super) fn spawn<F, Fut>(
    label: String,
    interval: Duration,
    jitter: Duration,
    cap: Duration,
    mut fetch: F,
) -> RemotePollerHandle
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let interval = interval.max(Duration::from_millis(1));
    let cap = cap.max(interval);
    let task = tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let error = match fetch().await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(url = %label, failures, "fetching works again");
                    }
                    failures = 0;
                    None
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    Some(e)
                }
            };
            let delay = poll_delay(interval, cap, failures) + random_up_to(jitter);
            if let Some(error) = error {
                tracing::warn!(
                    url = %label, failures, retry_in_ms = delay.as_millis() as u64, error,
                    "fetching the git remote failed; retrying with backoff"
                );
            }
            tokio::time::sleep(delay).await;
        }
    });
    RemotePollerHandle { task }
}

/// The wait before the next poll: `interval` after a success, else
/// `min(interval × 2^failures, cap)`.
pub(crate) fn poll_delay(interval: Duration, cap: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return interval;
    }
    interval
        .saturating_mul(1u32 << failures.min(20))
        .min(cap.max(interval))
}

fn random_up_to(jitter: Duration) -> Duration {
    let ms = u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(if ms == 0 { 0 } else { fastrand::u64(0..=ms) })
}

/// The background poller of a [`RemoteGitSource`](crate::RemoteGitSource): dropping
/// it stops the polling.
#[derive(Debug)]
#[must_use = "the poller stops when its handle is dropped"]
pub struct RemotePollerHandle {
    task: JoinHandle<()>,
}

impl RemotePollerHandle {
    /// Stops the poller (the same as dropping the handle).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for RemotePollerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let i = Duration::from_millis(100);
        let cap = Duration::from_millis(1000);
        let d: Vec<u128> = (0..6).map(|f| poll_delay(i, cap, f).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(
            poll_delay(i, Duration::ZERO, 3),
            i,
            "the cap is at least the interval"
        );
        assert_eq!(poll_delay(i, cap, u32::MAX), cap);
    }
}
