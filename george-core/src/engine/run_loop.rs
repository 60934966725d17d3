//! The reconcile loop: pops due keys off the work queue, reconciles each in its own task,
//! polls Git and claims due jobs on their intervals, and on stop returns in-flight
//! attempts.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{Engine, dispatch, lock, recovery};

/// The handle of a spawned reconcile loop.
#[derive(Debug)]
pub struct RunHandle {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl RunHandle {
    /// Stops the loop, interrupts in-flight attempts (their steps become `Ready` again,
    /// durably), and waits for it.
    pub async fn shutdown(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

impl Engine {
    /// Runs the reconcile loop until `stop` is notified.
    async fn run_loop(self, stop: Arc<Notify>) {
        let mut poll = tokio::time::interval(self.shared.config.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        let mut claim = tokio::time::interval(self.shared.config.claim_interval);
        claim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let claiming = Arc::new(std::sync::atomic::AtomicBool::new(false));
        loop {
            let now = self.shared.clock.now_ms();
            let (keys, deadline) = {
                let mut q = lock(&self.shared.queue);
                let mut keys = Vec::new();
                while let Some(k) = q.pop(now) {
                    keys.push(k);
                }
                (keys, q.next_deadline())
            };
            for k in keys {
                let e = self.clone();
                tokio::spawn(async move {
                    Box::pin(dispatch::reconcile_key(&e, &k)).await;
                    dispatch::wake_for_free_slots(&e);
                    lock(&e.shared.queue).done(&k);
                    e.shared.wake.notify_one();
                });
            }
            let sleep = deadline.map_or(Duration::from_secs(3600), |d| {
                Duration::from_millis(d.saturating_sub(self.shared.clock.now_ms()))
            });
            tokio::select! {
                _ = stop.notified() => break,
                _ = self.shared.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = poll.tick() => {
                    if let Err(e) = self.sync().await {
                        tracing::warn!(error = %e, "polling the Git source failed");
                    }
                    // A tool server's list may have changed (MCP `list_changed`).
                    if let Err(e) = self.refresh_tools() {
                        tracing::warn!(error = %e, "the new tool list was refused; the previous one stays");
                    }
                }
                _ = claim.tick() => {
                    // One claim at a time; a slow store does not pile them up.
                    if !claiming.swap(true, Ordering::AcqRel) {
                        let e = self.clone();
                        let flag = claiming.clone();
                        tokio::spawn(async move {
                            if let Err(err) = recovery::claim_due(&e).await {
                                tracing::warn!(error = %err, "claiming due jobs failed");
                            }
                            flag.store(false, Ordering::Release);
                        });
                    }
                }
            }
        }
        recovery::interrupt_all(&self).await;
    }

    /// Spawns the reconcile loop on the current tokio runtime. Call [`Engine::start`] first.
    pub fn spawn(&self) -> RunHandle {
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(self.clone().run_loop(stop.clone()));
        RunHandle { stop, task }
    }
}
