//! The run log: one line per `work` tool call start and end, appended by every worker
//! process to one file (`O_APPEND` writes of one short line are atomic on Linux).
//!
//! Line format: `start|end <job>/<step>/<attempt>/<call> <engine id> <unix ms>`.
//!
//! The approved-actions crash test writes more kinds of lines with other keys (see
//! [`append_line`] and [`read_lines`]): `start|effect|end <approval id>/<index>` from
//! the `apply` tool, and `ack <approval id>/<index>` once a worker read the action's
//! `action.executed` event back from the store. [`read`] skips them (their keys are
//! not `<job>/<step>/<attempt>/<call>`).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// One line of the run log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `true` for `start`, `false` for `end`.
    pub start: bool,
    /// The job.
    pub job: String,
    /// The step.
    pub step: String,
    /// The attempt (1-based).
    pub attempt: u32,
    /// The engine that ran it.
    pub engine: String,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
}

/// Appends one line for a tool call with `idempotency_key` (`job/step/attempt/n`).
pub fn append(path: &Path, start: bool, idempotency_key: &str, engine: &str, at_ms: u64) {
    let kind = if start { "start" } else { "end" };
    append_line(path, kind, idempotency_key, engine, at_ms);
}

/// Appends `<kind> <key> <engine> <at_ms>` in one `write` (atomic with `O_APPEND`).
/// Neither `kind` nor `key` may contain spaces or line breaks.
pub fn append_line(path: &Path, kind: &str, key: &str, engine: &str, at_ms: u64) {
    let line = format!("{kind} {key} {engine} {at_ms}\n");
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("cannot append to the run log {}: {e}", path.display());
    }
}

/// Reads the run log; a torn last line (a process killed mid-write) is ignored.
pub fn read(path: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            let kind = parts.next()?;
            let key = parts.next()?;
            let engine = parts.next()?.to_string();
            let at_ms = parts.next()?.parse().ok()?;
            let mut k = key.split('/');
            let job = k.next()?.to_string();
            let step = k.next()?.to_string();
            let attempt = k.next()?.parse().ok()?;
            Some(Entry {
                start: kind == "start",
                job,
                step,
                attempt,
                engine,
                at_ms,
            })
        })
        .collect()
}

/// The `start` entries grouped by (job, step, attempt).
pub fn starts(entries: &[Entry]) -> BTreeMap<(String, String, u32), Vec<&Entry>> {
    let mut out: BTreeMap<(String, String, u32), Vec<&Entry>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.start) {
        out.entry((e.job.clone(), e.step.clone(), e.attempt))
            .or_default()
            .push(e);
    }
    out
}

/// One line of the run log, whatever its kind and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// `start`, `effect`, `end`, `ack`, …
    pub kind: String,
    /// The idempotency key.
    pub key: String,
    /// The engine that wrote it.
    pub engine: String,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
}

/// Reads every line of the run log, in file order; a torn line is skipped.
pub fn read_lines(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            let line = Line {
                kind: parts.next()?.to_string(),
                key: parts.next()?.to_string(),
                engine: parts.next()?.to_string(),
                at_ms: parts.next()?.parse().ok()?,
            };
            parts.next().is_none().then_some(line)
        })
        .collect()
}
