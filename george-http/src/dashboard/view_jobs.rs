//! `GET /ui/jobs`: the job list, with its filters, sort, page and grouping in the URL
//! (the API's own list code does the filtering, sorting and paging).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Nav, badge, count, page_with, time_el, urlencode, usd};
use super::session::Viewer;
use crate::api::job_types::{ApiJobStatus, JobList, JobSummary};
use crate::api::list::{self, JobQuery};
use crate::state::AppState;

/// Rows per page.
const PAGE: usize = 50;

/// The list's query: every field is optional, kept in the URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    template: Option<String>,
    agent: Option<String>,
    text: Option<String>,
    sort: Option<String>,
    from: Option<String>,
    to: Option<String>,
    group: Option<String>,
    page: Option<String>,
    fragment: Option<String>,
}

fn some(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl ListQuery {
    /// The query string of these filters (without `page` and `fragment`), `&`-joined.
    fn filters(&self) -> String {
        let pairs = [
            ("status", &self.status),
            ("template", &self.template),
            ("agent", &self.agent),
            ("text", &self.text),
            ("sort", &self.sort),
            ("from", &self.from),
            ("to", &self.to),
            ("group", &self.group),
        ];
        pairs
            .iter()
            .filter_map(|(k, v)| some(v).map(|v| format!("{k}={}", urlencode(&v))))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn page_no(&self) -> usize {
        some(&self.page)
            .and_then(|p| p.parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }
}

/// The words of the API's statuses, as the job page shows them.
pub(crate) fn status_word(s: ApiJobStatus) -> &'static str {
    match s {
        ApiJobStatus::Pending => "Pending",
        ApiJobStatus::Running => "Running",
        ApiJobStatus::AwaitingApproval => "AwaitingApproval",
        ApiJobStatus::Blocked => "Blocked",
        ApiJobStatus::Succeeded => "Succeeded",
        ApiJobStatus::Failed => "Failed",
        ApiJobStatus::Cancelled => "Cancelled",
    }
}

const STATUSES: [(&str, &str); 7] = [
    ("pending", "Pending"),
    ("running", "Running"),
    ("awaiting_approval", "AwaitingApproval"),
    ("blocked", "Blocked"),
    ("succeeded", "Succeeded"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
];

const SORTS: [(&str, &str); 8] = [
    ("name", "Name (A–Z)"),
    ("-name", "Name (Z–A)"),
    ("-updated", "Updated (newest)"),
    ("updated", "Updated (oldest)"),
    ("-created", "Created (newest)"),
    ("created", "Created (oldest)"),
    ("status", "Status"),
    ("-status", "Status (reversed)"),
];

/// `YYYY-MM-DD` as milliseconds at the start of that day (UTC).
fn day_ms(text: &str) -> Option<u64> {
    let mut it = text.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    u64::try_from(layout::days_from_civil(y, m, d) * 86_400_000).ok()
}

/// The page of jobs `q` asks for, or the problem with the query.
async fn load(state: &AppState, q: &ListQuery) -> Result<JobList, String> {
    let mut jobs = state.engine.jobs().await.map_err(|e| e.to_string())?;
    let from = match some(&q.from) {
        Some(f) => Some(day_ms(&f).ok_or(format!("from: {f:?} is not a date (YYYY-MM-DD)"))?),
        None => None,
    };
    let to = match some(&q.to) {
        Some(t) => {
            Some(day_ms(&t).ok_or(format!("to: {t:?} is not a date (YYYY-MM-DD)"))? + 86_400_000)
        }
        None => None,
    };
    if from.is_some() || to.is_some() {
        jobs.retain(|j| {
            from.is_none_or(|f| j.created_at_ms >= f) && to.is_none_or(|t| j.created_at_ms < t)
        });
    }
    let jq = JobQuery {
        status: some(&q.status),
        template: some(&q.template),
        agent: some(&q.agent),
        text: some(&q.text),
        sort: some(&q.sort),
        limit: Some(PAGE),
        cursor: None,
        page: Some(q.page_no()),
    };
    list::page(jobs, &jq, &state.agents_by_template()).map_err(|p| p.detail)
}

fn rows(v: &Viewer, jobs: &[&JobSummary]) -> Markup {
    html! {
        div.scroll tabindex="0" {
            table data-testid="job-table" {
                thead { tr {
                    th scope="col" { "Job" }
                    th scope="col" { "Template" }
                    th scope="col" { "Status" }
                    th scope="col" class="num" { "Steps" }
                    th scope="col" class="num" { "Tokens" }
                    th scope="col" class="num" { "Cost" }
                    th scope="col" { "Updated" }
                } }
                tbody {
                    @for j in jobs {
                        @let word = status_word(j.status);
                        tr data-testid="job-row" data-job=(j.name) data-status=(word) {
                            td { a href={ (v.base) "/jobs/" (urlencode(&j.name)) } { (j.name) } }
                            td { (j.template) }
                            td { (badge(word)) }
                            td.num { (j.steps_succeeded) "/" (j.steps_total) }
                            td.num { (count(j.usage.input_tokens + j.usage.output_tokens)) }
                            td.num { (usd(j.usage.cost_usd)) }
                            td { (time_el(j.updated_at_ms)) }
                        }
                    }
                }
            }
        }
    }
}

/// The live part: the count, the table(s) and the pager.
fn listing(v: &Viewer, q: &ListQuery, list: &JobList) -> Markup {
    let filters = q.filters();
    let page = q.page_no();
    let pages = list.total.div_ceil(PAGE).max(1);
    let link = |p: usize| {
        let mut s = format!("{}/jobs?", v.base);
        if !filters.is_empty() {
            s.push_str(&filters);
            s.push('&');
        }
        s.push_str(&format!("page={p}"));
        s
    };
    let group = some(&q.group);
    let mut groups: BTreeMap<String, Vec<&JobSummary>> = BTreeMap::new();
    match group.as_deref() {
        Some("template") => list.jobs.iter().for_each(|j| {
            groups.entry(j.template.clone()).or_default().push(j);
        }),
        Some("status") => list.jobs.iter().for_each(|j| {
            groups
                .entry(status_word(j.status).to_string())
                .or_default()
                .push(j);
        }),
        _ => {}
    }
    html! {
        p.muted role="status" {
            (count(list.total as u64))
            @if list.total == 1 { " job matches" } @else { " jobs match" }
            " · page " (page) " of " (pages)
        }
        @if list.jobs.is_empty() {
            p { "No job matches these filters." }
        } @else if groups.is_empty() {
            (rows(v, &list.jobs.iter().collect::<Vec<_>>()))
        } @else {
            @for (name, jobs) in &groups {
                section.group data-testid="job-group" data-group=(name) {
                    h2 { (name) " " span.muted { "(" (jobs.len()) ")" } }
                    (rows(v, jobs))
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if page > 1 { a rel="prev" href=(link(page - 1)) { "← Previous" } }
            @if page < pages { a rel="next" href=(link(page + 1)) { "Next →" } }
        }
    }
}

fn select(name: &str, label: &str, current: Option<&str>, options: &[(String, String)]) -> Markup {
    html! {
        div.field {
            label for={ "f-" (name) } { (label) }
            select id={ "f-" (name) } name=(name) {
                @for (value, text) in options {
                    option value=(value) selected[current == Some(value.as_str()) || (current.is_none() && value.is_empty())] { (text) }
                }
            }
        }
    }
}

fn filters_form(v: &Viewer, state: &AppState, q: &ListQuery) -> Markup {
    let catalogue = state.engine.catalogue();
    let any = || vec![(String::new(), "Any".to_string())];
    let mut statuses = any();
    statuses.extend(STATUSES.iter().map(|(v, t)| (v.to_string(), t.to_string())));
    let mut templates = any();
    templates.extend(catalogue.templates.iter().map(|t| {
        let n = t.value.metadata.name.clone();
        (n.clone(), n)
    }));
    let mut agents = any();
    agents.extend(catalogue.agents.iter().map(|a| {
        let n = a.value.metadata.name.clone();
        (n.clone(), n)
    }));
    let sorts: Vec<(String, String)> = SORTS
        .iter()
        .map(|(v, t)| (v.to_string(), t.to_string()))
        .collect();
    let groups = vec![
        (String::new(), "None".to_string()),
        ("template".to_string(), "Template".to_string()),
        ("status".to_string(), "Status".to_string()),
    ];
    let cur = |f: &Option<String>| some(f);
    let (status, template, agent, sort, group) = (
        cur(&q.status),
        cur(&q.template),
        cur(&q.agent),
        cur(&q.sort),
        cur(&q.group),
    );
    html! {
        form.filters data-testid="job-filters" method="get" action={ (v.base) "/jobs" } role="search" aria-label="Filter jobs" {
            (select("status", "Status", status.as_deref(), &statuses))
            (select("template", "Template", template.as_deref(), &templates))
            (select("agent", "Agent", agent.as_deref(), &agents))
            div.field {
                label for="f-text" { "Text" }
                input #f-text type="search" name="text" value=(cur(&q.text).unwrap_or_default()) placeholder="name, path, message";
            }
            div.field {
                label for="f-from" { "Created from" }
                input #f-from type="date" name="from" value=(cur(&q.from).unwrap_or_default());
            }
            div.field {
                label for="f-to" { "Created to" }
                input #f-to type="date" name="to" value=(cur(&q.to).unwrap_or_default());
            }
            (select("sort", "Sort", Some(sort.as_deref().unwrap_or("name")), &sorts))
            (select("group", "Group by", group.as_deref(), &groups))
            button.primary type="submit" { "Apply" }
            a href={ (v.base) "/jobs" } { "Clear" }
        }
    }
}

/// `GET /ui/jobs` (with `fragment=1`: only the live part).
pub(crate) async fn jobs(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    render(&state, &v, &q).await
}

/// The list page (or its fragment) for `q`.
pub(crate) async fn render(state: &AppState, v: &Viewer, q: &ListQuery) -> Response {
    let result = load(state, q).await;
    let fragment = some(&q.fragment).is_some();
    let (status, inner) = match &result {
        Ok(list) => (StatusCode::OK, listing(v, q, list)),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            html! { p.notice.error role="alert" { (e) } },
        ),
    };
    if fragment {
        return layout::respond(status, inner);
    }
    let filters = q.filters();
    let src = format!(
        "{}/jobs?{filters}{}fragment=1&page={}",
        v.base,
        if filters.is_empty() { "" } else { "&" },
        q.page_no()
    );
    page_with(
        v,
        Some(Nav::Jobs),
        "Jobs",
        status,
        html! {
            (filters_form(v, state, q))
            div #job-list data-live-src=(src) {
                (inner)
            }
        },
    )
}
