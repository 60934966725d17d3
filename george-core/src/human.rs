//! The human side: a channel that tells humans an approval is waiting.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::state::ApprovalRequest;

/// Tells humans that a plan waits for their decision (a chat message, a ticket, an
/// e-mail). The decision itself comes back through the engine's `approve` / `reject`.
///
/// # Contract
/// `approval_requested` is called once per request after the request is durably
/// stored; it may be called again for the same request after a restart (use the
/// request id to de-duplicate). Failing to notify never loses the request.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait HumanChannel: Send + Sync + Debug + 'static {
    /// A request is waiting.
    async fn approval_requested(&self, request: &ApprovalRequest) -> Result<()>;

    /// A request was cancelled before anyone decided (a new generation of its job, or
    /// the job's removal): `request.status` is `Cancelled` with the reason. The default
    /// does nothing.
    async fn approval_cancelled(&self, request: &ApprovalRequest) -> Result<()> {
        let _ = request;
        Ok(())
    }
}

/// A [`HumanChannel`] that forwards each request to a tokio channel, for embedding
/// services, tests and examples that answer in-process.
#[derive(Debug, Clone)]
pub struct ChannelHuman {
    tx: mpsc::UnboundedSender<ApprovalRequest>,
}

impl ChannelHuman {
    /// A channel and the receiver of its requests.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<ApprovalRequest>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ChannelHuman { tx }, rx)
    }
}

#[async_trait]
impl HumanChannel for ChannelHuman {
    async fn approval_requested(&self, request: &ApprovalRequest) -> Result<()> {
        self.tx
            .send(request.clone())
            .map_err(|_| Error::backend("the approval receiver was dropped"))
    }
}

/// A [`HumanChannel`] that only logs (for engines whose humans poll `open_approvals`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogHuman;

#[async_trait]
impl HumanChannel for LogHuman {
    async fn approval_requested(&self, request: &ApprovalRequest) -> Result<()> {
        tracing::info!(id = %request.id, summary = %request.plan.summary, "approval requested");
        Ok(())
    }
}

#[async_trait]
impl<T: HumanChannel + ?Sized> HumanChannel for Arc<T> {
    async fn approval_requested(&self, request: &ApprovalRequest) -> Result<()> {
        (**self).approval_requested(request).await
    }
    async fn approval_cancelled(&self, request: &ApprovalRequest) -> Result<()> {
        (**self).approval_cancelled(request).await
    }
}
