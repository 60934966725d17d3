//! The two tools' calls: argument checks, the path scope, then the work on the
//! blocking pool, one call at a time per tool.

use std::sync::{Arc, Mutex};

use george_core::tool::{ToolInvocation, ToolOutput};
use george_core::{Error, Result};
use serde_json::Value;

use super::args::{Change, parse_commit, validate_path};
use super::author::Committer;
use super::local;
use super::read::{read_file, validate_ref};
use super::remote;
use super::settings::Settings;
use super::trailers::{CallOrigin, check_message};
use crate::error::blocking;

/// Runs `f` on the blocking pool, serialised with the tool's other calls.
async fn serialised<F>(settings: &Arc<Settings>, lock: &Arc<Mutex<()>>, f: F) -> Result<ToolOutput>
where
    F: FnOnce(&Settings) -> Result<ToolOutput> + Send + 'static,
{
    let (settings, lock) = (settings.clone(), lock.clone());
    blocking(move || {
        let _serial = lock.lock().unwrap_or_else(|e| e.into_inner());
        f(&settings)
    })
    .await
}

/// The read tool's call: checks the arguments, then reads (fetching first over a
/// remote), serialised with the tool's other calls.
pub(crate) async fn read(
    settings: &Arc<Settings>,
    lock: &Arc<Mutex<()>>,
    arguments: &Value,
) -> Result<ToolOutput> {
    let path = match arguments.get("path").and_then(Value::as_str) {
        Some(p) => p.to_owned(),
        None => return Ok(ToolOutput::error("`path` (a string) is required")),
    };
    let reference = match arguments.get("ref") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => match validate_ref(r) {
            Ok(()) => Some(r.clone()),
            Err(msg) => return Ok(ToolOutput::error(msg)),
        },
        Some(_) => return Ok(ToolOutput::error("`ref` must be a string")),
    };
    let path = match validate_path(&path) {
        Ok(p) => p,
        Err(e) => return Ok(ToolOutput::error(e)),
    };
    // Remote reads share the work clone (and its fetches) with commits.
    serialised(settings, lock, move |s| match &s.remote {
        Some(t) => remote::read(t, &s.branch, &path, reference.as_deref(), s.max_read_bytes),
        None => read_file(
            &s.path,
            &s.branch,
            &path,
            reference.as_deref(),
            s.max_read_bytes,
        ),
    })
    .await
}

/// The commit tool's call: checks the arguments, the message and the path scope
/// (a refusal commits nothing), then commits (and pushes over a remote), serialised
/// with the tool's other calls.
///
/// # Errors
/// `InvalidInput` for an idempotency key with a line break; the commit's errors.
pub(crate) async fn commit(
    settings: &Arc<Settings>,
    lock: &Arc<Mutex<()>>,
    invocation: &ToolInvocation,
) -> Result<ToolOutput> {
    if invocation.idempotency_key.contains(['\n', '\r']) {
        return Err(Error::invalid_input(
            "an idempotency key cannot contain line breaks",
        ));
    }
    let origin = CallOrigin::of(invocation);
    let request = match parse_commit(&invocation.arguments) {
        Ok(r) => r,
        Err(msg) => return Ok(ToolOutput::error(msg)),
    };
    if let Err(msg) = check_message(&request.message) {
        tracing::warn!(key = %origin.key, "commit refused: the message sets a George trailer");
        return Ok(ToolOutput::error(msg));
    }
    if let Err(refusal) = settings
        .scope
        .check(request.changes.iter().map(Change::path))
    {
        tracing::warn!(key = %origin.key, refusal = %refusal.content, "commit refused by the path scope");
        return Ok(refusal);
    }
    serialised(settings, lock, move |s| {
        let who = Committer {
            author: &s.author,
            branch: &s.branch,
            replay_window: s.replay_window,
        };
        match &s.remote {
            Some(target) => remote::commit(target, who, &request, &origin),
            None => local::commit(&s.path, who, &request, &origin.key),
        }
    })
    .await
}
