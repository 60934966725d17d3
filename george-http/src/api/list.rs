//! Listing jobs: filters, a total order, and pages by cursor or by number (pure: no I/O).
//!
//! Every sort is a total order: ties on the sort key are broken by name. A cursor is
//! the position after the last job of a page (the sort, the key and the name, hex-encoded
//! JSON: opaque to clients), so a job created or changed between two pages neither
//! shifts nor repeats the others — unlike a page number, which counts positions.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use george_core::state::JobRecord;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::job_types::{ApiJobStatus, JobList, JobSummary};
use crate::problem::Problem;

/// The largest page.
pub const MAX_LIMIT: usize = 500;

/// Filters, order and page of `GET /jobs`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Only jobs in these statuses, comma-separated (`running,awaiting_approval`); empty:
    /// any status.
    #[param(
        pattern = "^((pending|running|awaiting_approval|blocked|succeeded|failed|cancelled)(,(pending|running|awaiting_approval|blocked|succeeded|failed|cancelled))*)?$"
    )]
    pub status: Option<String>,
    /// Only jobs of this template.
    pub template: Option<String>,
    /// Only jobs whose template has a step run by this agent (at the current commit).
    pub agent: Option<String>,
    /// Only jobs whose name, template, path or a step's message contains this text
    /// (case-insensitive).
    pub text: Option<String>,
    /// `name` (the default), `created`, `updated` or `status`; a leading `-` reverses.
    #[param(pattern = "^-?(name|created|updated|status)$")]
    pub sort: Option<String>,
    /// Jobs per page: 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// A 1-based page number, instead of a cursor (ignored when `cursor` is given).
    #[param(minimum = 1)]
    pub page: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
enum Key {
    Num(u64),
    Text(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    s: String,
    k: Key,
    n: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Created,
    Updated,
    Status,
}

fn key(field: Field, rec: &JobRecord) -> Key {
    match field {
        Field::Name => Key::Text(String::new()),
        Field::Created => Key::Num(rec.created_at_ms),
        Field::Updated => Key::Num(rec.updated_at_ms),
        Field::Status => Key::Text(rec.status.name().to_string()),
    }
}

fn parse_statuses(text: &str) -> Result<Vec<ApiJobStatus>, Problem> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
                Problem::invalid(format!(
                    "status: unknown status {s:?} (pending, running, awaiting_approval, blocked, succeeded, failed, cancelled)"
                ))
            })
        })
        .collect()
}

/// The page of `jobs` that `q` asks for; `agents` gives each template's agents.
///
/// # Errors
/// 400 for an unknown status or sort, a limit out of range, a bad cursor, a cursor made
/// for another sort, or both `cursor` and `page`.
pub(crate) fn page(
    jobs: Vec<JobRecord>,
    q: &JobQuery,
    agents: &BTreeMap<String, Vec<String>>,
) -> Result<JobList, Problem> {
    let sort = q.sort.clone().unwrap_or_else(|| "name".into());
    let (desc, name) = match sort.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sort.as_str()),
    };
    let field = match name {
        "name" => Field::Name,
        "created" => Field::Created,
        "updated" => Field::Updated,
        "status" => Field::Status,
        other => {
            return Err(Problem::invalid(format!(
                "sort: unknown sort {other:?} (name, created, updated, status; `-` reverses)"
            )));
        }
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::invalid(format!("limit: must be 1 to {MAX_LIMIT}")));
    }
    let statuses = q
        .status
        .as_deref()
        .map(parse_statuses)
        .transpose()?
        .filter(|s| !s.is_empty());
    let text = q.text.as_deref().map(str::to_lowercase);
    let no_agents = Vec::new();
    let agents_of = |r: &JobRecord| agents.get(&*r.template).unwrap_or(&no_agents);
    // Sorted by reference: moving whole records around costs more than comparing them.
    let mut rows: Vec<(Key, &JobRecord)> = jobs
        .iter()
        .filter(|r| {
            statuses
                .as_ref()
                .is_none_or(|s| s.contains(&ApiJobStatus::from(r.status)))
                && q.template.as_ref().is_none_or(|t| **t == *r.template)
                && q.agent.as_ref().is_none_or(|a| agents_of(r).contains(a))
                && text.as_ref().is_none_or(|t| matches_text(r, t))
        })
        .map(|r| (key(field, r), r))
        .collect();
    let order = |a: (&Key, &str), b: (&Key, &str)| {
        let o = a.cmp(&b);
        if desc { o.reverse() } else { o }
    };
    rows.sort_by(|a, b| order((&a.0, &a.1.name), (&b.0, &b.1.name)));
    let total = rows.len();
    let cursor = q.cursor.as_deref().filter(|c| !c.is_empty());
    let start = match (cursor, q.page) {
        (Some(c), _) => {
            let c = decode(c)?;
            if c.s != sort {
                return Err(Problem::invalid(format!(
                    "cursor: made for sort {:?}, not {sort:?}",
                    c.s
                )));
            }
            rows.partition_point(|r| order((&r.0, &r.1.name), (&c.k, &c.n)) != Ordering::Greater)
        }
        (None, Some(0)) => return Err(Problem::invalid("page: pages start at 1")),
        (None, Some(p)) => (p - 1).saturating_mul(limit).min(total),
        (None, None) => 0,
    };
    let end = start.saturating_add(limit).min(total);
    let next_cursor = (end < total && end > start).then(|| {
        let (k, r) = &rows[end - 1];
        encode(&Cursor {
            s: sort.clone(),
            k: k.clone(),
            n: r.name.clone(),
        })
    });
    let jobs = rows[start..end]
        .iter()
        .map(|(_, r)| JobSummary::of(r, agents_of(r).clone()))
        .collect();
    Ok(JobList {
        jobs,
        total,
        next_cursor,
    })
}

fn matches_text(r: &JobRecord, needle: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(needle);
    has(&r.name)
        || has(&r.template)
        || has(&r.path)
        || r.steps
            .iter()
            .any(|s| s.message.as_deref().is_some_and(has))
}

fn encode(c: &Cursor) -> String {
    let json = serde_json::to_vec(c).unwrap_or_default();
    let mut out = String::with_capacity(json.len() * 2);
    for b in json {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

fn decode(text: &str) -> Result<Cursor, Problem> {
    let bad = || Problem::invalid("cursor: not a cursor this API made");
    if text.len() % 2 != 0 || text.len() > 8192 {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(bad)
        })
        .collect::<Result<_, _>>()?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

#[cfg(test)]
#[path = "list_tests.rs"]
mod tests;
