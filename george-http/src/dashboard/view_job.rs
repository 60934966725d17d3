//! `GET /ui/jobs/{name}`: one job — status, step graph, timeline, steps with outputs,
//! usage and cost, the event log (filters `step`, `actor`), child jobs — its live
//! fragments, and an attempt's transcript.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use george_core::provider::Message;
use george_core::state::{Event, JobRecord};
use maud::{Markup, html};
use serde::Deserialize;

use super::graph_svg::{self, Node};
use super::layout::{self, Nav, badge, count, error_page, json_block, time_el, urlencode, usd};
use super::manifest;
use super::session::Viewer;
use super::timeline;
use crate::state::AppState;

/// The event log's filters, and which fragment.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct JobQuery {
    step: Option<String>,
    actor: Option<String>,
    part: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn load(
    state: &AppState,
    name: &str,
) -> Result<(JobRecord, Vec<Event>), (StatusCode, String)> {
    let rec = state
        .engine
        .job(name)
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .ok_or((StatusCode::NOT_FOUND, format!("no job {name}")))?;
    let events = state
        .engine
        .events(name)
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((rec, events))
}

fn step_nodes(state: &AppState, rec: &JobRecord) -> Vec<Node> {
    let catalogue = state.engine.catalogue();
    let template = catalogue
        .templates
        .iter()
        .find(|t| *t.value.metadata.name == *rec.template);
    let deps: BTreeMap<&str, Vec<String>> = template
        .map(|t| {
            t.value
                .spec
                .steps
                .iter()
                .map(|s| (s.id.as_str(), s.depends_on.clone()))
                .collect()
        })
        .unwrap_or_default();
    rec.steps
        .iter()
        .map(|s| Node {
            id: s.id.to_string(),
            deps: deps.get(&*s.id).cloned().unwrap_or_default(),
            state: s.state.name().to_string(),
            detail: format!(
                "{} · {} attempt{}",
                s.state.name(),
                s.attempt,
                if s.attempt == 1 { "" } else { "s" }
            ),
        })
        .collect()
}

/// Status, graph, timeline and steps.
fn summary_part(state: &AppState, v: &Viewer, rec: &JobRecord, events: &[Event]) -> Markup {
    let word = rec.status.name();
    let nodes = step_nodes(state, rec);
    let steps: Vec<String> = rec.steps.iter().map(|s| s.id.to_string()).collect();
    let end = if rec.status.is_finished() {
        events.last().map_or(rec.updated_at_ms, |e| e.at_ms)
    } else {
        now_ms()
    };
    let spans = timeline::spans(events, end);
    let agents = state.step_agents(&rec.template);
    let usage = rec.usage();
    let job_url = format!("{}/jobs/{}", v.base, urlencode(&rec.name));
    html! {
        p.status { "Status: " span data-testid="job-status" class={ "badge s-" (layout::state_class(word)) } { (word) } }
        p.muted {
            (count(usage.input_tokens + usage.output_tokens)) " tokens · "
            (usd(usage.cost_usd)) " · revision " (rec.revision)
        }
        section aria-labelledby="h-graph" {
            h2 #h-graph { "Step graph" }
            div.scroll tabindex="0" { (graph_svg::render(&nodes, "Step graph", graph_svg::JOB)) }
        }
        section aria-labelledby="h-timeline" {
            h2 #h-timeline { "Timeline" }
            div.legend {
                span.badge.s-run { "attempt running" }
                span.badge.s-ok { "attempt done" }
                span.badge.s-bad { "attempt failed" }
                span.badge.s-wait { "waiting for approval" }
                span.badge.s-deferred { "deferred" }
            }
            div.scroll tabindex="0" { (timeline::render(&steps, &spans)) }
        }
        section aria-labelledby="h-steps" {
            h2 #h-steps { "Steps" }
            div.scroll tabindex="0" { table data-testid="steps" {
                thead { tr {
                    th scope="col" { "Step" } th scope="col" { "State" } th scope="col" { "Agent" }
                    th scope="col" { "Attempts" } th scope="col" class="num" { "Tokens in / out" }
                    th scope="col" class="num" { "Cost" } th scope="col" { "Message" }
                } }
                tbody {
                    @for s in &rec.steps {
                        @let agent = agents.get(&*s.id);
                        tr data-step=(s.id) {
                            th scope="row" { (s.id) }
                            td { (badge(s.state.name())) }
                            td { (agent.map_or("—", String::as_str)) }
                            td {
                                @if agent.is_some() && s.attempt > 0 {
                                    @for n in 1..=s.attempt {
                                        a href={ (job_url) "/steps/" (urlencode(&s.id)) "/attempts/" (n) } { "attempt " (n) }
                                        " "
                                    }
                                } @else { (s.attempt) }
                            }
                            td.num { (count(s.usage.input_tokens)) " / " (count(s.usage.output_tokens)) }
                            td.num { (usd(s.usage.cost_usd)) }
                            td { (s.message.as_deref().unwrap_or("")) }
                        }
                    }
                }
            } }
            @for s in rec.steps.iter().filter(|s| s.outputs.is_some() || !s.rejections.is_empty()) {
                details {
                    summary { "Step " (s.id) ": outputs and rejected plans" }
                    @if let Some(o) = &s.outputs { h3 { "Outputs" } (json_block(o)) }
                    @if !s.rejections.is_empty() {
                        h3 { "Rejected plans" }
                        ol { @for r in &s.rejections { li { strong { (r.plan) } " — rejected by " (r.by) ": " (r.reason) } } }
                    }
                }
            }
        }
    }
}

/// The event log table, filtered.
fn events_part(events: &[Event], q: &JobQuery) -> Markup {
    let step = nonempty(&q.step);
    let actor = nonempty(&q.actor);
    let shown: Vec<&Event> = events
        .iter()
        .filter(|e| step.is_none_or(|s| e.step.as_deref() == Some(s)))
        .filter(|e| actor.is_none_or(|a| e.actor == a))
        .collect();
    html! {
        p.muted { (shown.len()) " of " (events.len()) " events" }
        div.scroll tabindex="0" { table data-testid="event-log" {
            caption.muted { "Event log, oldest first" }
            thead { tr {
                th scope="col" class="num" { "#" } th scope="col" { "When" } th scope="col" { "Actor" }
                th scope="col" { "Action" } th scope="col" { "Step" } th scope="col" { "Detail" }
            } }
            tbody {
                @for e in shown {
                    tr data-testid="event" data-action=(e.action) {
                        td.num { (e.seq) }
                        td { (time_el(e.at_ms)) }
                        td { (e.actor) }
                        td { (e.action) }
                        td { (e.step.as_deref().unwrap_or("")) }
                        td.detail { (e.detail) }
                    }
                }
            }
        } }
    }
}

fn event_filters(v: &Viewer, rec: &JobRecord, events: &[Event], q: &JobQuery) -> Markup {
    let actors: BTreeSet<&str> = events.iter().map(|e| e.actor.as_str()).collect();
    let step = nonempty(&q.step);
    let actor = nonempty(&q.actor);
    html! {
        form.filters data-testid="event-filters" method="get" action={ (v.base) "/jobs/" (urlencode(&rec.name)) } aria-label="Filter the event log" {
            div.field {
                label for="e-step" { "Step" }
                select #e-step name="step" {
                    option value="" selected[step.is_none()] { "Any" }
                    @for s in &rec.steps { option value=(s.id) selected[step == Some(&*s.id)] { (s.id) } }
                }
            }
            div.field {
                label for="e-actor" { "Actor" }
                select #e-actor name="actor" {
                    option value="" selected[actor.is_none()] { "Any" }
                    @for a in &actors { option value=(a) selected[actor == Some(*a)] { (a) } }
                }
            }
            button type="submit" { "Filter" }
        }
    }
}

fn query_of(q: &JobQuery) -> String {
    let mut s = String::new();
    for (k, v) in [("step", nonempty(&q.step)), ("actor", nonempty(&q.actor))] {
        if let Some(v) = v {
            s.push_str(&format!("&{k}={}", urlencode(v)));
        }
    }
    s
}

/// `GET /ui/jobs/{name}`.
pub(crate) async fn job(
    State(state): State<AppState>,
    v: Viewer,
    Path(name): Path<String>,
    Query(q): Query<JobQuery>,
) -> Response {
    let (rec, events) = match load(&state, &name).await {
        Ok(x) => x,
        Err((status, e)) => return error_page(&v, status, &e),
    };
    let frag = format!("{}/jobs/{}/fragment", v.base, urlencode(&name));
    let filters = query_of(&q);
    let tree = super::view_children::tree(&state, &v, &rec).await;
    let body = html! {
        dl.facts {
            dt { "Template" } dd { a href={ (v.base) "/catalogue#template-" (rec.template) } { (rec.template) } }
            dt { "Generation" } dd { (rec.generation) }
            dt { "Commit" } dd { code title=(rec.commit) { (rec.commit.get(..12).unwrap_or(&rec.commit)) } }
            dt { "Manifest" } dd {
                @if manifest::available(&state) {
                    a href=(manifest::link(&v, &rec.commit, &rec.path, None)) { code { (rec.path) } }
                } @else { code { (rec.path) } }
                @if rec.removed { " (removed from Git)" }
            }
            dt { "Created" } dd { (time_el(rec.created_at_ms)) }
            dt { "Updated" } dd { (time_el(rec.updated_at_ms)) }
        }
        div #job-live data-live-src={ (frag) "?part=summary" } data-live-job=(name) {
            (summary_part(&state, &v, &rec, &events))
        }
        section aria-labelledby="h-events" {
            h2 #h-events { "Event log" }
            (event_filters(&v, &rec, &events, &q))
            div #job-events data-live-src={ (frag) "?part=events" (filters) } data-live-job=(name) {
                (events_part(&events, &q))
            }
        }
        section aria-labelledby="h-children" data-testid="child-jobs" {
            h2 #h-children { "Child jobs" }
            (tree)
        }
    };
    layout::page(&v, Some(Nav::Jobs), &format!("Job {name}"), body)
}

/// `GET /ui/jobs/{name}/fragment?part=summary|events`: a live part of the job page.
pub(crate) async fn fragment(
    State(state): State<AppState>,
    v: Viewer,
    Path(name): Path<String>,
    Query(q): Query<JobQuery>,
) -> Response {
    let (rec, events) = match load(&state, &name).await {
        Ok(x) => x,
        Err((status, e)) => return layout::respond(status, html! { p.notice.error { (e) } }),
    };
    let markup = match nonempty(&q.part) {
        Some("events") => events_part(&events, &q),
        _ => summary_part(&state, &v, &rec, &events),
    };
    layout::respond(StatusCode::OK, markup)
}

/// `GET /ui/jobs/{name}/steps/{step}/attempts/{attempt}`: the conversation.
pub(crate) async fn transcript(
    State(state): State<AppState>,
    v: Viewer,
    Path((name, step, attempt)): Path<(String, String, u32)>,
) -> Response {
    let messages = match state.engine.transcript(&name, &step, attempt).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            return error_page(
                &v,
                StatusCode::NOT_FOUND,
                &format!(
                    "no transcript of {name}/{step} attempt {attempt} (never written, or compacted)"
                ),
            );
        }
        Err(e) => return error_page(&v, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let effects: BTreeMap<String, String> = state
        .engine
        .catalogue()
        .tools
        .iter()
        .map(|t| {
            (
                t.definition.name.clone(),
                t.definition.effect.as_str().to_string(),
            )
        })
        .collect();
    let effect = |tool: &str| effects.get(tool).map_or("not registered", String::as_str);
    let body = html! {
        p { a href={ (v.base) "/jobs/" (urlencode(&name)) } { "← Job " (name) } }
        p.muted { (messages.len()) " messages" }
        @for (i, m) in messages.iter().enumerate() {
            @match m {
                Message::User { content } => {
                    section.msg.user data-testid="message" data-role="user" aria-label={ "Message " (i + 1) ": user" } {
                        h2 { "User" }
                        pre tabindex="0" { (content) }
                    }
                }
                Message::Assistant(a) => {
                    section.msg.assistant data-testid="message" data-role="assistant" aria-label={ "Message " (i + 1) ": assistant" } {
                        h2 { "Assistant" }
                        @if let Some(c) = &a.content { pre tabindex="0" { (c) } }
                        @for c in &a.tool_calls {
                            div data-testid="tool-call" data-tool=(c.name) {
                                h3 { "Tool call " code { (c.name) } " " span.badge.s-idle data-testid="effect" { (effect(&c.name)) } }
                                (json_block(&c.arguments))
                            }
                        }
                    }
                }
                Message::Tool { name: tool, content, is_error, .. } => {
                    section class={ "msg tool" @if *is_error { " error" } } data-testid="message" data-role="tool" aria-label={ "Message " (i + 1) ": tool result" } {
                        h2 { "Result of " code { (tool) } " " span.badge.s-idle data-testid="effect" { (effect(tool)) }
                            @if *is_error { " " span.badge.s-bad { "error" } } }
                        pre tabindex="0" { (content) }
                    }
                }
            }
        }
    };
    layout::page(
        &v,
        Some(Nav::Jobs),
        &format!("{name} / {step} / attempt {attempt}"),
        body,
    )
}
