//! [`TaskHandle`]: a task of this crate running until it is told to stop.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A running background task of this crate — a
/// [`StatusProjector`](crate::status::StatusProjector) or a
/// [`CrSource::follow`](crate::source::CrSource::follow) — until [`TaskHandle::shutdown`].
/// Dropping the handle leaves the task running.
#[derive(Debug)]
pub struct TaskHandle {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl TaskHandle {
    /// Spawns `run`, which returns once `stop` is notified.
    pub(crate) fn spawn<F, Fut>(run: F) -> TaskHandle
    where
        F: FnOnce(Arc<Notify>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(run(stop.clone()));
        TaskHandle { stop, task }
    }

    /// Stops the task and waits for it.
    pub async fn shutdown(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}
