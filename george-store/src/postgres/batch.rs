//! Group commit by batching ([`PgConfig::max_batch`](super::PgConfig::max_batch)):
//! writes queued while earlier batches are in flight are sent together, pipelined on
//! one connection as `BEGIN; write; write; ...; COMMIT`, so they share one transaction
//! and one WAL flush.
//!
//! Each write is the same one-statement check-and-write as an unbatched commit: a write
//! refused with `Conflict` stores nothing and does not disturb the others (no savepoint
//! is needed). A write that fails with an error (such as the unique violation of an
//! approval request another transaction inserted since the check) aborts the
//! transaction; the batch is then re-run one write at a time, so each gets its own
//! answer. A write refused whatever is stored ([`Prepared::doomed`]) is not queued.
//! At most [`IN_FLIGHT`] batches run at once; writes arriving meanwhile wait in the
//! queue and form the next batch.

use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::write::{self, Prepared};
use crate::error::StoreError;

/// Batches running at once (each on its own connection).
pub(crate) const IN_FLIGHT: usize = 2;

struct Queued {
    write: Prepared,
    reply: oneshot::Sender<Result<u64, StoreError>>,
}

/// The queue of writes; its task stops when the last clone of the store is dropped.
#[derive(Debug)]
pub(crate) struct Batcher {
    tx: mpsc::UnboundedSender<Queued>,
}

impl Batcher {
    /// Starts the batching task on the current Tokio runtime.
    pub(crate) fn spawn(pool: Pool, max_batch: usize) -> Batcher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, rx, max_batch.max(1)));
        Batcher { tx }
    }

    /// Queues `write`; returns its new revision once its transaction has committed.
    pub(crate) async fn commit(&self, write: Prepared) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Queued { write, reply }).map_err(|_| {
            StoreError::BatchAborted("the store's batching task has stopped".into())
        })?;
        answer.await.map_err(|_| {
            StoreError::BatchAborted("the store's batching task dropped the write".into())
        })?
    }
}

async fn run(pool: Pool, mut rx: mpsc::UnboundedReceiver<Queued>, max_batch: usize) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            run_batch(&pool, batch).await;
            drop(slot);
        });
    }
}

/// Commits `batch` and answers every write in it.
async fn run_batch(pool: &Pool, mut batch: Vec<Queued>) {
    if batch.len() > 1 {
        // Rows are locked in name order (stable: writes to one job keep their order), so
        // two batches in flight cannot deadlock on job rows.
        batch.sort_by(|a, b| a.write.name().cmp(b.write.name()));
        let writes: Vec<&Prepared> = batch.iter().map(|q| &q.write).collect();
        match write::commit_many(pool, &writes).await {
            Ok(results) => {
                for (q, result) in batch.into_iter().zip(results) {
                    let _ = q.reply.send(result);
                }
                return;
            }
            Err(write::BatchFailed::Retry) => {}
            Err(write::BatchFailed::Unknown(message)) => {
                for q in batch {
                    let _ = q.reply.send(Err(StoreError::BatchAborted(message.clone())));
                }
                return;
            }
        }
    }
    for q in batch {
        let result = write::commit(pool, &q.write).await;
        // The caller may have given up waiting; that is fine.
        let _ = q.reply.send(result);
    }
}
