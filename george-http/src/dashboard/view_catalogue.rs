//! `GET /ui/catalogue`: agents (provider profile, model, tools and their effect classes,
//! limits), templates (parameters strict or fuzzy, step graph), tools, and the current
//! commit's manifest errors as `file:line:col`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::graph_svg::{self, Node};
use super::layout::{self, Nav};
use super::manifest;
use super::session::Viewer;
use crate::state::AppState;

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// A JSON value in one short line.
fn short(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn agents(state: &AppState, effects: &BTreeMap<String, String>) -> Markup {
    let c = state.engine.catalogue();
    html! {
        @if c.agents.is_empty() { p.muted { "No valid agent spec at this commit." } }
        div.scroll tabindex="0" { table data-testid="agents" {
            thead { tr {
                th scope="col" { "Agent" } th scope="col" { "Provider profile" } th scope="col" { "Model" }
                th scope="col" { "Tools (effect class)" } th scope="col" { "Limits" }
            } }
            tbody {
                @for a in &c.agents {
                    @let spec = json(&a.value.spec);
                    tr data-testid="agent" data-agent=(a.value.metadata.name) {
                        th scope="row" { (a.value.metadata.name) br; span.muted { code { (a.path) } } }
                        td { (a.value.spec.provider) }
                        td { (a.value.spec.model) }
                        td { ul {
                            @for t in &a.value.spec.tools {
                                li { code { (t) } " " span.badge.s-idle { (effects.get(t).map_or("not registered", String::as_str)) } }
                            }
                        } }
                        td { ul {
                            @if let Value::Object(m) = &spec {
                                @for (k, v) in m.iter().filter(|(k, v)| !matches!(k.as_str(), "provider" | "model" | "tools" | "system_prompt" | "base_url" | "api_key_env") && !v.is_null()) {
                                    li { (k) ": " (short(v)) }
                                }
                            }
                        } }
                    }
                }
            }
        } }
    }
}

fn templates(state: &AppState) -> Markup {
    let c = state.engine.catalogue();
    html! {
        @if c.templates.is_empty() { p.muted { "No valid task template at this commit." } }
        @for t in &c.templates {
            @let name = &t.value.metadata.name;
            @let params = json(&t.value.spec.parameters);
            section.template id={ "template-" (name) } data-testid="template" data-template=(name) aria-labelledby={ "t-" (name) } {
                h3 id={ "t-" (name) } { (name) " " span.muted { code { (t.path) } } }
                @if let Some(d) = &t.value.spec.description { p { (d) } }
                h4 { "Parameters" }
                @if let Value::Array(ps) = &params {
                    @if ps.is_empty() { p.muted { "None." } }
                    ul {
                        @for p in ps {
                            @let ty = p.get("type").map_or("string".to_string(), short);
                            li {
                                code { (p.get("name").map(short).unwrap_or_default()) } " — " (ty) " "
                                @if ty == "fuzzy" { span.badge.s-wait { "fuzzy" } } @else { span.badge.s-ok { "strict" } }
                                @if let Value::Object(m) = p {
                                    @for (k, v) in m.iter().filter(|(k, _)| !matches!(k.as_str(), "name" | "type")) {
                                        " · " (k) ": " (short(v))
                                    }
                                }
                            }
                        }
                    }
                }
                h4 { "Steps" }
                @let nodes: Vec<Node> = t.value.spec.steps.iter().map(|s| Node {
                    id: s.id.clone(),
                    deps: s.depends_on.clone(),
                    state: "pending".into(),
                    detail: if let Some(a) = &s.agent { format!("agent {a}") }
                        else if s.command.is_some() { "command".into() }
                        else if let Some(e) = &s.execute_approved { format!("runs {e}") }
                        else { String::new() }
                        + if s.approval.required { " · approval" } else { "" },
                }).collect();
                div.scroll tabindex="0" { (graph_svg::render(&nodes, &format!("Steps of template {name}"), graph_svg::TEMPLATE)) }
            }
        }
    }
}

fn tools(state: &AppState) -> Markup {
    let c = state.engine.catalogue();
    html! {
        div.scroll tabindex="0" { table data-testid="tools" {
            thead { tr { th scope="col" { "Tool" } th scope="col" { "Effect class" } th scope="col" { "Description" } } }
            tbody {
                @for t in &c.tools {
                    tr {
                        th scope="row" { code { (t.definition.name) } }
                        td { span.badge.s-idle { (t.definition.effect.as_str()) } @if t.effect_fixed { " (set by the operator)" } }
                        td { (t.definition.description) }
                    }
                }
            }
        } }
    }
}

async fn errors(state: &AppState, v: &Viewer) -> Markup {
    let errs = state.engine.manifest_errors();
    let commit = state.engine.commit().map(|c| c.0).unwrap_or_default();
    let mut texts: BTreeMap<String, Option<String>> = BTreeMap::new();
    for e in &errs {
        if !texts.contains_key(&e.path) {
            texts.insert(
                e.path.clone(),
                manifest::read(state, &commit, &e.path).await,
            );
        }
    }
    html! {
        @if errs.is_empty() { p data-testid="no-manifest-errors" { "Every manifest of this commit is valid." } }
        ul {
            @for e in &errs {
                li data-testid="manifest-error" {
                    @if manifest::available(state) {
                        a href=(manifest::link(v, &commit, &e.path, Some(e.line))) { code { (e.path) ":" (e.line) ":" (e.column) } }
                    } @else {
                        code { (e.path) ":" (e.line) ":" (e.column) }
                    }
                    " "
                    @if !e.field.is_empty() { code { (e.field) } ": " }
                    (e.message)
                    @if let Some(Some(text)) = texts.get(&e.path) { (manifest::snippet(text, e.line)) }
                }
            }
        }
    }
}

/// `GET /ui/catalogue`.
pub(crate) async fn catalogue(State(state): State<AppState>, v: Viewer) -> Response {
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
    let commit = state.engine.commit().map(|c| c.0);
    let body = html! {
        p.muted { "At commit " code { (commit.as_deref().unwrap_or("(none yet)")) } }
        section aria-labelledby="h-errors" {
            h2 #h-errors { "Manifest errors" }
            (errors(&state, &v).await)
        }
        section aria-labelledby="h-agents" {
            h2 #h-agents { "Agents" }
            (agents(&state, &effects))
        }
        section aria-labelledby="h-templates" {
            h2 #h-templates { "Templates" }
            (templates(&state))
        }
        section aria-labelledby="h-tools" {
            h2 #h-tools { "Tools" }
            (tools(&state))
        }
    };
    layout::page(&v, Some(Nav::Catalogue), "Catalogue", body)
}
