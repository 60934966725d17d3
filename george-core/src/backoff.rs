//! Exponential backoff with full jitter.

use crate::model::RetryPolicy;

/// The delay before retry number `retry` (1 = the first retry), in ms:
/// a uniformly random value in `[base/2, base]` where
/// `base = min(backoff_ms * 2^(retry-1), max_backoff_ms)` ("equal jitter": never
/// zero, never above the cap).
pub fn backoff_ms(policy: &RetryPolicy, retry: u32) -> u64 {
    let exp = retry.saturating_sub(1).min(40);
    let base = policy
        .backoff_ms
        .saturating_mul(1u64 << exp)
        .min(policy.max_backoff_ms.max(1));
    let half = base / 2;
    half + fastrand::u64(0..=base - half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_is_capped() {
        let p = RetryPolicy {
            attempts: 10,
            backoff_ms: 100,
            max_backoff_ms: 1_000,
        };
        for _ in 0..100 {
            let d1 = backoff_ms(&p, 1);
            assert!((50..=100).contains(&d1), "{d1}");
            let d3 = backoff_ms(&p, 3);
            assert!((200..=400).contains(&d3), "{d3}");
            let d9 = backoff_ms(&p, 9);
            assert!((500..=1_000).contains(&d9), "{d9}");
        }
    }
}
