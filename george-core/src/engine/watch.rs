//! Per-job status watchers for [`Engine::wait_for`](super::Engine::wait_for).
//!
//! A waiter registers the job it waits for and is woken only when *that* job's status
//! changes (in [`io::publish`](super::io)), instead of receiving every job's update on
//! the broadcast channel: with many jobs running, a broadcast receiver wakes (a thread
//! switch, a futex call) for each of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::lock;

/// Jobs someone waits for, each with the [`Notify`] its waiters share and their count.
#[derive(Default)]
pub(crate) struct Watchers {
    map: Mutex<crate::fastmap::FastMap<String, (Arc<Notify>, usize)>>,
    /// Waiters registered (any job): `notify` returns without locking when 0.
    waiting: AtomicUsize,
}

impl Watchers {
    /// Registers a waiter for `job`; it is removed when the returned [`Watch`] drops.
    pub(crate) fn watch(&self, job: &str) -> Watch<'_> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let mut map = lock(&self.map);
        let entry = map
            .entry(job.to_owned())
            .or_insert_with(|| (Arc::new(Notify::new()), 0));
        entry.1 += 1;
        Watch {
            watchers: self,
            job: job.to_owned(),
            notify: entry.0.clone(),
        }
    }

    /// Wakes every waiter of `job` (a status change).
    pub(crate) fn notify(&self, job: &str) {
        if self.waiting.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Some((n, _)) = lock(&self.map).get(job) {
            n.notify_waiters();
        }
    }
}

/// One waiter's registration (see [`Watchers::watch`]).
pub(crate) struct Watch<'a> {
    watchers: &'a Watchers,
    job: String,
    pub(crate) notify: Arc<Notify>,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let mut map = lock(&self.watchers.map);
        if let Some(entry) = map.get_mut(&self.job) {
            entry.1 -= 1;
            if entry.1 == 0 {
                map.remove(&self.job);
            }
        }
        drop(map);
        self.watchers.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_is_woken_by_its_own_job_only() {
        let w = Watchers::default();
        let a = w.watch("a");
        let b = w.watch("b");
        let na = a.notify.notified();
        let nb = b.notify.notified();
        tokio::pin!(na, nb);
        na.as_mut().enable();
        nb.as_mut().enable();
        w.notify("a");
        assert!(futures::poll!(na.as_mut()).is_ready());
        assert!(futures::poll!(nb.as_mut()).is_pending());
    }

    #[test]
    fn the_last_waiter_to_leave_removes_the_entry() {
        let w = Watchers::default();
        let (a, b) = (w.watch("a"), w.watch("b"));
        drop((a, b));
        assert!(lock(&w.map).is_empty());
        assert_eq!(w.waiting.load(Ordering::Acquire), 0);
    }

    #[test]
    fn two_waiters_share_one_entry_until_both_leave() {
        let w = Watchers::default();
        let first = w.watch("j");
        let second = w.watch("j");
        assert_eq!(lock(&w.map)["j"].1, 2);
        drop(first);
        assert_eq!(lock(&w.map)["j"].1, 1);
        drop(second);
        assert!(lock(&w.map).is_empty());
    }
}
