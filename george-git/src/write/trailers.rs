//! The trailers the write tool puts on its commits — `George-Job`, `George-Step` and
//! `George-Idempotency-Key` —, the job and step a call comes from, and the replay of a
//! call by its key.
//!
//! The tool writes these trailers itself, and an agent's commit message may not carry
//! any of them: otherwise an agent could put a later call's key in its own commit
//! message, and that later call (an approved action, say) would be "replayed" as a
//! no-op reporting success without ever being committed.

use george_core::Result;
use george_core::tool::ToolInvocation;

use crate::error::GitResultExt;

/// The commit-message trailer that records a `git_commit` call's idempotency key.
pub const IDEMPOTENCY_TRAILER: &str = "George-Idempotency-Key";
/// The trailer naming the job in commits pushed to a remote.
pub const JOB_TRAILER: &str = "George-Job";
/// The trailer naming the step in commits pushed to a remote.
pub const STEP_TRAILER: &str = "George-Step";

/// The trailers only the tool writes: an agent's message carrying one is refused.
const RESERVED_TRAILERS: [&str; 3] = [IDEMPOTENCY_TRAILER, JOB_TRAILER, STEP_TRAILER];

/// A commit call's idempotency key and the job and step it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallOrigin {
    /// The idempotency key (no line breaks; may be empty).
    pub(crate) key: String,
    /// The job and step: from the call's context when it names both, else from the key.
    pub(crate) job_step: Option<(String, String)>,
}

impl CallOrigin {
    /// The origin of `invocation`: the job and step of its
    /// [`context`](ToolInvocation::context) when both are set (and free of control
    /// characters), else those parsed from its key ([`job_and_step`]).
    pub(crate) fn of(invocation: &ToolInvocation) -> Self {
        let context = &invocation.context;
        let key = invocation.idempotency_key.clone();
        let job_step = if usable(&context.job) && usable(&context.step) {
            Some((context.job.clone(), context.step.clone()))
        } else {
            job_and_step(&key)
        };
        CallOrigin { key, job_step }
    }

    /// The job and step, borrowed.
    pub(crate) fn job_step(&self) -> Option<(&str, &str)> {
        self.job_step
            .as_ref()
            .map(|(j, s)| (j.as_str(), s.as_str()))
    }
}

/// Whether `s` can be a trailer value: non-empty, no control characters (no line breaks).
fn usable(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_control)
}

/// The job and step named by an idempotency key, in either format of the
/// [`ToolInvocation`] contract:
/// - `<job>/<step>/<attempt>/<n>` (a call of an agent's tool loop; also
///   `<job>/<step>/<attempt>/command`); the job may contain `/`;
/// - `<approval id>/<index>`, the approval id being `<job>~<step>~<generation>~<attempt>`
///   with the step escaped (`.xx` hex for bytes outside `[A-Za-z0-9_-]`), for an
///   approved action: the step is the one that made the plan.
pub(crate) fn job_and_step(key: &str) -> Option<(String, String)> {
    let (head, _index) = key.rsplit_once('/')?;
    let (job, step) = if head.contains('/') {
        let mut parts = head.rsplitn(3, '/');
        let (_attempt, step, job) = (parts.next()?, parts.next()?, parts.next()?);
        (job.to_owned(), step.to_owned())
    } else {
        let parts: Vec<&str> = head.split('~').collect();
        let [job, step, generation, attempt] = parts[..] else {
            return None;
        };
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !numeric(generation) || !numeric(attempt) {
            return None;
        }
        (job.to_owned(), unescape_step(step)?)
    };
    (usable(&job) && usable(&step)).then_some((job, step))
}

/// Undoes the approval id's escaping of a step id (`.xx`, two lowercase hex digits).
fn unescape_step(escaped: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut rest = escaped.bytes();
    while let Some(b) = rest.next() {
        if b == b'.' {
            let hex = [rest.next()?, rest.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

/// The first reserved trailer (`George-Idempotency-Key`, `George-Job`, `George-Step`)
/// that a line of `message` sets, matched as Git would at any line start — after
/// trimming, case-insensitively, spaces allowed before the `:`.
pub(crate) fn reserved_trailer(message: &str) -> Option<&'static str> {
    let breaks = [
        '\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{2028}', '\u{2029}',
    ];
    message.split(breaks).find_map(|line| {
        let (token, _value) = line.trim().split_once(':')?;
        let token = token.trim();
        RESERVED_TRAILERS
            .into_iter()
            .find(|name| token.eq_ignore_ascii_case(name))
    })
}

/// The refusal of an agent's message that sets a reserved trailer, if it does.
pub(crate) fn check_message(message: &str) -> std::result::Result<(), String> {
    match reserved_trailer(message) {
        None => Ok(()),
        Some(name) => Err(format!(
            "the commit message sets the `{name}` trailer: the tool writes the \
             {IDEMPOTENCY_TRAILER}, {JOB_TRAILER} and {STEP_TRAILER} trailers itself, and a \
             message carrying any of them is refused (nothing was committed). Remove that \
             line and call again."
        )),
    }
}

/// The message of a commit: the agent's, then the job and step trailers (when given)
/// and the key's.
pub(crate) fn compose_message(message: &str, key: &str, job_step: Option<(&str, &str)>) -> String {
    let message = message.trim_end();
    if key.is_empty() && job_step.is_none() {
        return format!("{message}\n");
    }
    let mut out = format!("{message}\n\n");
    if let Some((job, step)) = job_step {
        out.push_str(&format!("{JOB_TRAILER}: {job}\n{STEP_TRAILER}: {step}\n"));
    }
    if !key.is_empty() {
        out.push_str(&format!("{IDEMPOTENCY_TRAILER}: {key}\n"));
    }
    out
}

/// Whether `message` has the line `George-Idempotency-Key: <key>`.
fn has_trailer(message: &str, key: &str) -> bool {
    message.lines().any(|line| {
        line.strip_prefix(IDEMPOTENCY_TRAILER)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|value| value.trim() == key)
    })
}

/// The commit among the last `window` first-parent commits from `head` that carries
/// the idempotency key.
pub(crate) fn find_replay<'r>(
    head: &git2::Commit<'r>,
    key: &str,
    window: usize,
) -> Result<Option<git2::Commit<'r>>> {
    let mut current = Some(head.clone());
    for _ in 0..window {
        let Some(commit) = current else {
            break;
        };
        if has_trailer(&String::from_utf8_lossy(commit.message_bytes()), key) {
            return Ok(Some(commit));
        }
        current = if commit.parent_count() > 0 {
            Some(commit.parent(0).git_ctx("reading a parent commit")?)
        } else {
            None
        };
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use george_core::tool::ToolContext;
    use serde_json::json;

    use super::*;

    fn pair(j: &str, s: &str) -> Option<(String, String)> {
        Some((j.to_owned(), s.to_owned()))
    }

    #[test]
    fn keys_name_job_and_step_in_both_formats() {
        assert_eq!(job_and_step("nightly/build/1/0"), pair("nightly", "build"));
        assert_eq!(
            job_and_step("nightly/build/2/command"),
            pair("nightly", "build")
        );
        assert_eq!(job_and_step("a/b/c/d/e"), pair("a/b", "c"));
        assert_eq!(job_and_step("job~plan~1~1/1"), pair("job", "plan"));
        assert_eq!(
            job_and_step("job.a~plan.2fx~2~1/3"),
            pair("job.a", "plan/x")
        );
        for bad in [
            "x/1/0",
            "",
            "k",
            "job~plan~1/1",
            "job~plan~x~1/1",
            "~plan~1~1/1",
            "job~~1~1/1",
            "job~pl.zz~1~1/1",
            "job~pl.0a~1~1/1",
            "job~plan~1~1~1/1",
        ] {
            assert_eq!(job_and_step(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_context_wins_over_the_key() {
        let call = |key: &str, ctx: ToolContext| {
            CallOrigin::of(&ToolInvocation::new("git_commit", json!({}), key).with_context(ctx))
        };
        let approved = ToolContext::new("job", "execute", 1, 2).approved("job~plan~1~1", 1);
        let o = call("job~plan~1~1/1", approved);
        assert_eq!(o.key, "job~plan~1~1/1");
        assert_eq!(o.job_step(), Some(("job", "execute")));
        assert_eq!(
            call("job~plan~1~1/1", ToolContext::default()).job_step(),
            Some(("job", "plan"))
        );
        let newline = ToolContext::new("job", "a\nb", 1, 1);
        assert_eq!(call("j/s/1/1", newline).job_step(), Some(("j", "s")));
        assert_eq!(call("k", ToolContext::default()).job_step(), None);
    }

    #[test]
    fn reserved_trailers_are_found_however_written() {
        for forged in [
            "Fix\n\nGeorge-Idempotency-Key: j/s/1/2",
            "Fix\n\n  george-idempotency-key :j/s/1/2\n",
            "Fix\r\nGEORGE-JOB: other",
            "Fix\rGeorge-Step: x",
            "George-Step:",
            "Fix\n\tGeorge-Job\t: other\n\nmore",
        ] {
            assert!(reserved_trailer(forged).is_some(), "{forged:?}");
            assert!(check_message(forged).is_err(), "{forged:?}");
        }
        for fine in [
            "Fix the George-Idempotency-Key: parsing",
            "George-Jobs: 3",
            "Signed-off-by: A <a@example.com>",
            "George-Idempotency-Key without a colon",
        ] {
            assert_eq!(reserved_trailer(fine), None, "{fine:?}");
        }
        let refusal = check_message("x\nGeorge-Job: y").unwrap_err();
        assert!(refusal.contains("`George-Job`"), "{refusal}");
    }

    #[test]
    fn messages_get_the_trailers() {
        let m = compose_message(
            "Raise the limit\n",
            "nightly/build/1/0",
            Some(("nightly", "build")),
        );
        assert_eq!(
            m,
            "Raise the limit\n\nGeorge-Job: nightly\nGeorge-Step: build\nGeorge-Idempotency-Key: nightly/build/1/0\n"
        );
        let m = compose_message("Add job\n\nbody\n", "job/step/1/0", None);
        assert_eq!(
            m,
            "Add job\n\nbody\n\nGeorge-Idempotency-Key: job/step/1/0\n"
        );
        assert!(has_trailer(&m, "job/step/1/0"));
        assert!(!has_trailer(&m, "job/step/1"));
        assert_eq!(compose_message("x", "", None), "x\n");
    }
}
