//! The bodies and headers a [`WebhookHuman`](super::WebhookHuman) posts: Slack's
//! incoming-webhook message, or George's generic JSON event, signed like GitHub's
//! webhooks.

use george_core::state::{ApprovalRequest, ApprovalStatus};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

use super::WebhookFormat;

/// The header carrying the body's signature: `sha256=<64 lowercase hex digits>`,
/// HMAC-SHA256 of the exact body bytes keyed with the shared secret.
pub const SIGNATURE_HEADER: &str = "X-George-Signature";
/// The header naming the event: `approval_requested` or `approval_cancelled`.
pub const EVENT_HEADER: &str = "X-George-Event";
/// The header identifying a notification, the same on every retry of it:
/// `<event>:<request id>` (receivers de-duplicate on it).
pub const DELIVERY_HEADER: &str = "X-George-Delivery";

/// Most characters of a plan's summary in a Slack message.
const SUMMARY_CHARS: usize = 300;

/// What happened to an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Event {
    Requested,
    Cancelled,
}

impl Event {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Event::Requested => "approval_requested",
            Event::Cancelled => "approval_cancelled",
        }
    }
}

/// One notification, ready to post (and to post again, identically).
#[derive(Debug, Clone)]
pub(super) struct Delivery {
    pub(super) event: Event,
    pub(super) id: String,
    pub(super) body: Vec<u8>,
    pub(super) signature: Option<String>,
}

/// Where people open request `id`: `<base_url>/approvals/<id>` (ids are URL-safe).
pub(super) fn link(base_url: Option<&str>, id: &str) -> Option<String> {
    base_url.map(|b| format!("{}/approvals/{id}", b.trim_end_matches('/')))
}

/// Slack's `mrkdwn` escaping of text: `&`, `<` and `>` (Slack's "Formatting text for
/// app surfaces" guide), so a model-written summary cannot forge links or mentions.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The Slack message: `{"text": "..."}`, the minimal body of an incoming webhook
/// (<https://api.slack.com/messaging/webhooks>).
fn slack(event: Event, req: &ApprovalRequest, url: Option<&str>) -> serde_json::Value {
    let what = format!(
        "job `{}`, step `{}` (agent `{}`, generation {})",
        slack_escape(&req.job),
        slack_escape(&req.step),
        slack_escape(&req.agent),
        req.generation
    );
    let open = match url {
        Some(u) => format!("<{u}|Review approval {}>", req.id),
        None => format!("Review it with `george show approval {}`", req.id),
    };
    let text = match event {
        Event::Requested => format!(
            "*Approval needed* for {what}: {} ({} action(s))\n{open}",
            slack_escape(&clip(&req.plan.summary, SUMMARY_CHARS)),
            req.plan.actions.len()
        ),
        Event::Cancelled => {
            let why = match &req.status {
                ApprovalStatus::Cancelled { reason, .. } if !reason.is_empty() => {
                    format!(": {}", slack_escape(&clip(reason, SUMMARY_CHARS)))
                }
                _ => String::new(),
            };
            format!(
                "*Approval no longer needed* for {what}: request {} was cancelled{why}",
                req.id
            )
        }
    };
    json!({ "text": text })
}

/// George's JSON event: `{"event", "id", "url", "request"}`, where `request` is the
/// stored [`ApprovalRequest`] as the API's `GET /api/v1/approvals/{id}` shows it and
/// `url` is the link to it (`null` without a base URL).
fn generic(event: Event, req: &ApprovalRequest, url: Option<&str>) -> serde_json::Value {
    json!({
        "event": event.as_str(),
        "id": req.id,
        "url": url,
        "request": req,
    })
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `body`).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 2 * tag.len());
    out.push_str("sha256=");
    for b in tag.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

impl Delivery {
    /// The notification of `event` for `req`.
    ///
    /// # Errors
    /// The request could not be serialized (it always can: its fields are plain data).
    pub(super) fn new(
        event: Event,
        req: &ApprovalRequest,
        format: WebhookFormat,
        base_url: Option<&str>,
        secret: Option<&[u8]>,
    ) -> serde_json::Result<Delivery> {
        let url = link(base_url, &req.id);
        let value = match format {
            WebhookFormat::Slack => slack(event, req, url.as_deref()),
            WebhookFormat::Json => generic(event, req, url.as_deref()),
        };
        let body = serde_json::to_vec(&value)?;
        let signature = secret.map(|s| signature(s, &body));
        Ok(Delivery {
            event,
            id: req.id.clone(),
            body,
            signature,
        })
    }
}
