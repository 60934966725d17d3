//! The timeline of a job: each step's attempts, deferrals and approval waits on a time
//! axis, as inline SVG, computed from the event log.

use george_core::state::Event;
use maud::{Markup, html};

use super::layout::{duration, time};

/// What a bar stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An attempt, and how it ended (`None`: still running).
    Attempt(Option<bool>),
    /// Waiting for a human's decision.
    Approval,
    /// Deferred until a later check.
    Deferred,
}

/// One bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) step: String,
    pub(crate) kind: Kind,
    pub(crate) from_ms: u64,
    pub(crate) to_ms: u64,
    pub(crate) label: String,
}

/// The bars of `events` (in order), with open ones ending at `now_ms`.
pub(crate) fn spans(events: &[Event], now_ms: u64) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    // Open spans by (step, kind tag): index into `out`.
    let mut open: Vec<(String, u8, usize)> = Vec::new();
    let mut attempts: std::collections::HashMap<String, u32> = Default::default();
    let close = |out: &mut Vec<Span>,
                 open: &mut Vec<(String, u8, usize)>,
                 step: &str,
                 tag: u8,
                 at: u64,
                 ok: Option<bool>| {
        if let Some(pos) = open.iter().position(|(s, t, _)| s == step && *t == tag) {
            let (_, _, i) = open.remove(pos);
            out[i].to_ms = at.max(out[i].from_ms);
            if let Kind::Attempt(_) = out[i].kind {
                out[i].kind = Kind::Attempt(ok);
            }
        }
    };
    for e in events {
        let Some(step) = e.step.as_deref() else {
            continue;
        };
        match e.action.as_str() {
            "step.started" => {
                close(&mut out, &mut open, step, 2, e.at_ms, None);
                close(&mut out, &mut open, step, 0, e.at_ms, Some(false));
                let n = attempts.entry(step.to_string()).or_default();
                *n += 1;
                open.push((step.to_string(), 0, out.len()));
                out.push(Span {
                    step: step.to_string(),
                    kind: Kind::Attempt(None),
                    from_ms: e.at_ms,
                    to_ms: now_ms.max(e.at_ms),
                    label: format!("{step}: attempt {n}"),
                });
            }
            "step.succeeded" => close(&mut out, &mut open, step, 0, e.at_ms, Some(true)),
            "step.failed" | "step.blocked" | "step.interrupted" => {
                close(&mut out, &mut open, step, 0, e.at_ms, Some(false));
            }
            "step.deferred" => {
                close(&mut out, &mut open, step, 0, e.at_ms, Some(true));
                open.push((step.to_string(), 2, out.len()));
                out.push(Span {
                    step: step.to_string(),
                    kind: Kind::Deferred,
                    from_ms: e.at_ms,
                    to_ms: now_ms.max(e.at_ms),
                    label: format!("{step}: deferred"),
                });
            }
            "approval.requested" => {
                close(&mut out, &mut open, step, 0, e.at_ms, Some(true));
                open.push((step.to_string(), 1, out.len()));
                out.push(Span {
                    step: step.to_string(),
                    kind: Kind::Approval,
                    from_ms: e.at_ms,
                    to_ms: now_ms.max(e.at_ms),
                    label: format!("{step}: waiting for approval"),
                });
            }
            "approval.approved" | "approval.rejected" | "approval.cancelled"
            | "approval.voided" => close(&mut out, &mut open, step, 1, e.at_ms, None),
            _ => {}
        }
    }
    out
}

const LABEL_W: u64 = 130;
const PLOT_W: u64 = 640;
const ROW_H: u64 = 26;

fn class(kind: Kind) -> &'static str {
    match kind {
        Kind::Attempt(None) => "bar s-run",
        Kind::Attempt(Some(true)) => "bar s-ok",
        Kind::Attempt(Some(false)) => "bar s-bad",
        Kind::Approval => "bar s-wait",
        Kind::Deferred => "bar s-deferred",
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Attempt(_) => "attempt",
        Kind::Approval => "approval",
        Kind::Deferred => "deferred",
    }
}

/// The timeline of `steps` (row order) from `spans` as an `<svg>`.
pub(crate) fn render(steps: &[String], spans: &[Span]) -> Markup {
    let t0 = spans.iter().map(|s| s.from_ms).min().unwrap_or(0);
    let t1 = spans
        .iter()
        .map(|s| s.to_ms)
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let span_ms = t1 - t0;
    let xs = |t: u64| LABEL_W + (t.saturating_sub(t0)).saturating_mul(PLOT_W) / span_ms;
    let height = 30 + ROW_H * steps.len().max(1) as u64;
    let width = LABEL_W + PLOT_W + 10;
    let aria = if spans.is_empty() {
        "Timeline: no attempt yet".to_string()
    } else {
        format!(
            "Timeline from {} to {} ({}): {} attempts, {} approval waits",
            time(t0),
            time(t1),
            duration(span_ms),
            spans
                .iter()
                .filter(|s| matches!(s.kind, Kind::Attempt(_)))
                .count(),
            spans.iter().filter(|s| s.kind == Kind::Approval).count()
        )
    };
    html! {
        svg data-testid="timeline" role="img" aria-label=(aria)
            viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height)
            xmlns="http://www.w3.org/2000/svg" {
            title { (aria) }
            line.axis x1=(LABEL_W) y1="20" x2=(LABEL_W + PLOT_W) y2="20" {}
            text x=(LABEL_W) y="14" { "+0 s" }
            text x=(LABEL_W + PLOT_W) y="14" text-anchor="end" { "+" (duration(span_ms)) }
            @for (r, step) in steps.iter().enumerate() {
                @let y = 26 + ROW_H * r as u64;
                text x="4" y=(y + 14) { (step) }
                line.axis x1=(LABEL_W) y1=(y + ROW_H - 2) x2=(LABEL_W + PLOT_W) y2=(y + ROW_H - 2) {}
                @for s in spans.iter().filter(|s| &s.step == step) {
                    @let x = xs(s.from_ms);
                    @let w = xs(s.to_ms).saturating_sub(x).max(3);
                    rect class=(class(s.kind)) data-kind=(kind_name(s.kind)) x=(x) y=(y + 3) width=(w) height=(ROW_H - 8) rx="3" {
                        title { (s.label) " — " (time(s.from_ms)) ", " (duration(s.to_ms - s.from_ms)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: u64, action: &str, step: &str) -> Event {
        Event {
            job: "j".into(),
            seq: at,
            at_ms: at,
            actor: "engine".into(),
            action: action.into(),
            step: Some(step.into()),
            detail: String::new(),
        }
    }

    #[test]
    fn attempts_and_waits() {
        let events = vec![
            ev(10, "step.started", "plan"),
            ev(20, "approval.requested", "plan"),
            ev(30, "approval.rejected", "plan"),
            ev(31, "step.started", "plan"),
            ev(40, "approval.requested", "plan"),
            ev(50, "approval.approved", "plan"),
            ev(60, "step.started", "apply"),
        ];
        let got = spans(&events, 100);
        let kinds: Vec<(Kind, u64, u64)> =
            got.iter().map(|s| (s.kind, s.from_ms, s.to_ms)).collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::Attempt(Some(true)), 10, 20),
                (Kind::Approval, 20, 30),
                (Kind::Attempt(Some(true)), 31, 40),
                (Kind::Approval, 40, 50),
                (Kind::Attempt(None), 60, 100),
            ]
        );
        let svg = render(&["plan".into(), "apply".into()], &got).into_string();
        assert!(svg.contains("data-testid=\"timeline\""));
        assert_eq!(svg.matches("data-kind=\"attempt\"").count(), 3);
    }
}
