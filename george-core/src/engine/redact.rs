//! Redacting known secret values ([`KnownSecrets`]) from what an attempt reports,
//! before any of it is stored: the transcript, the events and the outcome's text.
//!
//! Tool results are also redacted as they enter the agent loop, so a model never sees
//! a known secret either. A plan's actions are not touched: they are what a human
//! approves and what runs, and a change would void the plan's digest.

use super::attempt::AttemptReport;
use crate::provider::Message;
use crate::reconcile::Outcome;
use crate::secret::KnownSecrets;

/// Redacts `message` in place.
pub(super) fn redact_message(secrets: &KnownSecrets, message: &mut Message) {
    match message {
        Message::User { content } => {
            secrets.redact_in_place(content);
        }
        Message::Assistant(a) => {
            if let Some(c) = a.content.as_mut() {
                secrets.redact_in_place(c);
            }
            for call in &mut a.tool_calls {
                secrets.redact_json(&mut call.arguments);
            }
        }
        Message::Tool { content, .. } => {
            secrets.redact_in_place(content);
        }
    }
}

/// Redacts the transcript, the events and the outcome's text of `report` in place.
pub(super) fn redact_report(secrets: &KnownSecrets, report: &mut AttemptReport) {
    if secrets.is_empty() {
        return;
    }
    if !report.transcript.is_empty() {
        for m in std::sync::Arc::make_mut(&mut report.transcript) {
            redact_message(secrets, m);
        }
    }
    for e in &mut report.events {
        secrets.redact_in_place(&mut e.detail);
    }
    match &mut report.outcome {
        Outcome::Succeeded(outputs) => secrets.redact_json(outputs),
        Outcome::Failed { reason, .. }
        | Outcome::Blocked(reason)
        | Outcome::Deferred { reason, .. } => {
            secrets.redact_in_place(reason);
        }
        Outcome::NeedsApproval(_) | Outcome::WaitForChildren(_) => {}
    }
}
