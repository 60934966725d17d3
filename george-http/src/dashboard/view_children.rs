//! The job page's parent/child tree ([sub-jobs](george_core::children)): the job that
//! ordered this one, this job, and the children each of its steps ordered, each with its
//! current status and a link.

use george_core::state::JobRecord;
use maud::{Markup, html};

use super::layout::{badge, urlencode};
use super::session::Viewer;
use crate::state::AppState;

/// The tree around `rec`: its parent (if ordered), itself, its children by step.
pub(crate) async fn tree(state: &AppState, v: &Viewer, rec: &JobRecord) -> Markup {
    let mut children = Vec::new();
    for s in &rec.steps {
        for link in &s.children {
            // The child's own record says how it is now; the link, how the parent saw it.
            let now = match state.engine.job(&link.job).await {
                Ok(Some(c)) => Some(c.status),
                _ => link.status,
            };
            children.push((s.id.to_string(), link, now));
        }
    }
    let job = |name: &str| html! { a href={ (v.base) "/jobs/" (urlencode(name)) } { (name) } };
    html! {
        ul.tree data-testid="job-tree" {
            @if let Some(p) = &rec.ordered_by {
                li data-testid="parent-job" {
                    "ordered by " (job(&p.job)) " / " (p.step) " (attempt " (p.attempt) ", commit "
                    code { (p.commit.get(..12).unwrap_or(&p.commit)) } ")"
                    @if p.abandoned { " — abandoned by its parent" }
                }
            }
            li {
                strong { (rec.name) } " " (badge(&rec.status.to_string()))
                ul.tree {
                    @for (step, link, status) in &children {
                        li data-testid="child-job" {
                            (job(&link.job)) " "
                            @match status {
                                Some(s) => (badge(&s.to_string())),
                                None => span.muted { "unknown" },
                            }
                            " — step " (step) ", template " (link.template)
                            @if link.wait { ", waited for" }
                            ", on parent close: " (link.parent_close.as_str())
                        }
                    }
                    @if children.is_empty() {
                        li.muted { "No child jobs." }
                    }
                }
            }
        }
    }
}
