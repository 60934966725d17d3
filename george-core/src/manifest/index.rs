//! The incremental engine behind [`ManifestSet::load`] and [`ManifestSet::update`].
//!
//! Files are parsed and validated on their own once ([`parse_file`]); what crosses
//! files is resolved per *name*: a changed file marks its old and new names dirty,
//! a dirty agent whose state changed marks the templates naming it, a dirty template
//! whose state changed marks the jobs using it. Only dirty names are re-resolved.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::parse::{FileEntry, Issue, Object, locate_issues, parse_file};
use super::{DesiredJob, Fnv1a, Loaded, ManifestError, ManifestSet};
use crate::git::{SourceFile, is_manifest_path};
use crate::model::{Kind, TaskTemplate};

/// Bookkeeping of a [`ManifestSet`] for incremental updates: the parsed files, which
/// files claim which names, who uses whom, and the errors by file. Opaque.
#[derive(Debug, Clone, Default)]
pub struct ManifestIndex {
    files: HashMap<String, FileEntry>,
    /// Per kind: name → the paths claiming it (the first one owns it).
    agent_claims: HashMap<String, BTreeSet<String>>,
    template_claims: HashMap<String, BTreeSet<String>>,
    job_claims: HashMap<String, BTreeSet<String>>,
    /// Agent name → paths of the templates naming it.
    agent_users: HashMap<String, HashSet<String>>,
    /// Template name → paths of the jobs using it.
    template_users: HashMap<String, HashSet<String>>,
    /// Errors by path (no entry when a file has none).
    errors: BTreeMap<String, Vec<ManifestError>>,
}

impl ManifestIndex {
    /// The errors of one file.
    pub(crate) fn errors_of(&self, path: &str) -> &[ManifestError] {
        self.errors.get(path).map_or(&[], Vec::as_slice)
    }

    fn claims(&mut self, kind: Kind) -> &mut HashMap<String, BTreeSet<String>> {
        match kind {
            Kind::AgentSpec => &mut self.agent_claims,
            Kind::TaskTemplate => &mut self.template_claims,
            Kind::Job => &mut self.job_claims,
        }
    }

    fn claimants(&self, kind: Kind, name: &str) -> Vec<String> {
        let map = match kind {
            Kind::AgentSpec => &self.agent_claims,
            Kind::TaskTemplate => &self.template_claims,
            Kind::Job => &self.job_claims,
        };
        map.get(name)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Records the errors of `path`; returns whether they changed.
    fn set_errors(&mut self, path: &str, errors: Vec<ManifestError>) -> bool {
        if errors.is_empty() {
            self.errors.remove(path).is_some()
        } else if self.errors.get(path) == Some(&errors) {
            false
        } else {
            self.errors.insert(path.to_string(), errors);
            true
        }
    }
}

/// Names to re-resolve.
#[derive(Default)]
struct Dirty {
    agents: HashSet<String>,
    templates: HashSet<String>,
    jobs: HashSet<String>,
}

impl Dirty {
    fn mark(&mut self, kind: Kind, name: &str) {
        let set = match kind {
            Kind::AgentSpec => &mut self.agents,
            Kind::TaskTemplate => &mut self.templates,
            Kind::Job => &mut self.jobs,
        };
        if !set.contains(name) {
            set.insert(name.to_string());
        }
    }
}

/// The state of a name as seen by its dependents.
#[derive(Debug, PartialEq, Eq)]
enum State {
    Absent,
    Invalid,
    Valid(u64),
}

fn remove_from(map: &mut HashMap<String, HashSet<String>>, key: &str, path: &str) {
    if let Some(set) = map.get_mut(key) {
        set.remove(path);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

fn agent_names(t: &TaskTemplate) -> impl Iterator<Item = &String> {
    t.spec.steps.iter().filter_map(|s| s.agent.as_ref())
}

pub(super) fn apply(
    set: &mut ManifestSet,
    changed: Vec<SourceFile>,
    removed: &[String],
) -> BTreeSet<String> {
    let mut dirty = Dirty::default();
    let mut errors_changed = false;
    for path in removed {
        errors_changed |= remove_file(set, path, &mut dirty);
    }
    let files: Vec<SourceFile> = changed
        .into_iter()
        .filter(|f| is_manifest_path(&f.path))
        .collect();
    for (path, entry) in parse_all(files) {
        errors_changed |= remove_file(set, &path, &mut dirty);
        errors_changed |= add_file(set, path, entry, &mut dirty);
    }
    let mut agents: Vec<String> = dirty.agents.drain().collect();
    agents.sort();
    for name in agents {
        errors_changed |= resolve_agent(set, &name, &mut dirty);
    }
    let mut templates: Vec<String> = dirty.templates.drain().collect();
    templates.sort();
    for name in templates {
        errors_changed |= resolve_template(set, &name, &mut dirty);
    }
    let mut changed_jobs = BTreeSet::new();
    for name in dirty.jobs.drain() {
        errors_changed |= resolve_job(set, &name, &mut changed_jobs);
    }
    if errors_changed {
        set.errors = set.index.errors.values().flatten().cloned().collect();
    }
    changed_jobs
}

/// Below this many files, parsing stays on the calling thread.
const PARALLEL_THRESHOLD: usize = 256;

/// Parses files (on a few scoped threads for a cold load: parsing dominates), keeping
/// their order.
fn parse_all(files: Vec<SourceFile>) -> Vec<(String, FileEntry)> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(8);
    if files.len() < PARALLEL_THRESHOLD || threads < 2 {
        return parse_seq(files);
    }
    let per_chunk = files.len().div_ceil(threads);
    let mut chunks: Vec<Vec<SourceFile>> = Vec::with_capacity(threads);
    let mut iter = files.into_iter();
    loop {
        let chunk: Vec<SourceFile> = iter.by_ref().take(per_chunk).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || parse_seq(chunk)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(parsed) => parsed,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

fn parse_seq(files: Vec<SourceFile>) -> Vec<(String, FileEntry)> {
    files
        .into_iter()
        .map(|f| {
            let entry = parse_file(&f.path, f.bytes);
            (f.path, entry)
        })
        .collect()
}

/// Forgets a file; returns whether errors changed.
fn remove_file(set: &mut ManifestSet, path: &str, dirty: &mut Dirty) -> bool {
    let idx = &mut set.index;
    let Some(entry) = idx.files.remove(path) else {
        return false;
    };
    if let (Some(kind), Some(name)) = (entry.kind, &entry.name) {
        let claims = idx.claims(kind);
        if let Some(paths) = claims.get_mut(name) {
            paths.remove(path);
            if paths.is_empty() {
                claims.remove(name);
            }
        }
        dirty.mark(kind, name);
    }
    match &entry.object {
        Object::Template(t, _) => {
            for agent in agent_names(t) {
                remove_from(&mut idx.agent_users, agent, path);
            }
        }
        Object::Job(j) => remove_from(&mut idx.template_users, &j.spec.template, path),
        Object::Agent(_) | Object::None => {}
    }
    set.invalid_job_paths.remove(path);
    idx.set_errors(path, Vec::new())
}

/// Registers a parsed file; returns whether errors changed.
fn add_file(set: &mut ManifestSet, path: String, entry: FileEntry, dirty: &mut Dirty) -> bool {
    let idx = &mut set.index;
    match &entry.object {
        Object::Template(t, _) => {
            for agent in agent_names(t) {
                idx.agent_users
                    .entry(agent.clone())
                    .or_default()
                    .insert(path.clone());
            }
        }
        Object::Job(j) => {
            idx.template_users
                .entry(j.spec.template.clone())
                .or_default()
                .insert(path.clone());
        }
        Object::Agent(_) | Object::None => {}
    }
    let mut errors_changed = false;
    match (entry.kind, &entry.name) {
        (Some(kind), Some(name)) => {
            idx.claims(kind)
                .entry(name.clone())
                .or_default()
                .insert(path.clone());
            dirty.mark(kind, name);
        }
        (kind, _) => {
            // No name: nothing can refer to it, its errors are its own.
            errors_changed = idx.set_errors(&path, entry.local_errors.clone());
            if kind == Some(Kind::Job) {
                set.invalid_job_paths.insert(path.clone());
            }
        }
    }
    idx.files.insert(path, entry);
    errors_changed
}

/// The duplicate-name issue of a file that does not own its name.
fn duplicate(kind: Kind, name: &str, owner: &str) -> Issue {
    Issue::new(
        "metadata.name",
        format!(
            "duplicate {} name `{name}`: already defined in {owner}",
            kind.as_str()
        ),
    )
}

/// Local errors plus located cross-file issues.
fn all_errors(path: &str, entry: &FileEntry, issues: Vec<Issue>) -> Vec<ManifestError> {
    let mut errors = entry.local_errors.clone();
    errors.extend(locate_issues(path, &entry.text, issues));
    errors
}

fn resolve_agent(set: &mut ManifestSet, name: &str, dirty: &mut Dirty) -> bool {
    let before = agent_state(set, name);
    let claimants = set.index.claimants(Kind::AgentSpec, name);
    let mut errors_changed = false;
    let mut valid = None;
    for (i, path) in claimants.iter().enumerate() {
        let Some(entry) = set.index.files.get(path) else {
            continue;
        };
        let mut issues = Vec::new();
        if i > 0 {
            issues.push(duplicate(Kind::AgentSpec, name, &claimants[0]));
        }
        let errors = all_errors(path, entry, issues);
        if i == 0 && errors.is_empty() {
            if let Object::Agent(a) = &entry.object {
                valid = Some(Loaded {
                    path: path.clone(),
                    value: Arc::clone(a),
                    hash: entry.hash,
                });
            }
        }
        errors_changed |= set.index.set_errors(path, errors);
    }
    match valid {
        Some(loaded) => set.agents.insert(name.to_string(), loaded),
        None => set.agents.remove(name),
    };
    if agent_state(set, name) != before {
        // The templates naming it are re-validated, and their jobs get a new hash.
        if let Some(users) = set.index.agent_users.get(name) {
            for path in users {
                if let Some(t) = set.index.files.get(path).and_then(|e| e.name.as_ref()) {
                    dirty.mark(Kind::TaskTemplate, t);
                    mark_jobs_of(&set.index, t, dirty);
                }
            }
        }
    }
    errors_changed
}

fn agent_state(set: &ManifestSet, name: &str) -> State {
    match set.agents.get(name) {
        Some(l) => State::Valid(l.hash),
        None if set.index.agent_claims.contains_key(name) => State::Invalid,
        None => State::Absent,
    }
}

/// A template's state as its jobs see it (agent changes mark the jobs directly).
fn template_state(set: &ManifestSet, name: &str) -> State {
    let Some(l) = set.templates.get(name) else {
        return if set.index.template_claims.contains_key(name) {
            State::Invalid
        } else {
            State::Absent
        };
    };
    State::Valid(l.hash)
}

fn resolve_template(set: &mut ManifestSet, name: &str, dirty: &mut Dirty) -> bool {
    let before = template_state(set, name);
    let claimants = set.index.claimants(Kind::TaskTemplate, name);
    let mut errors_changed = false;
    let mut valid = None;
    for (i, path) in claimants.iter().enumerate() {
        let Some(entry) = set.index.files.get(path) else {
            continue;
        };
        let mut issues = Vec::new();
        if i > 0 {
            issues.push(duplicate(Kind::TaskTemplate, name, &claimants[0]));
        }
        if let Object::Template(t, _) = &entry.object {
            for (s, step) in t.spec.steps.iter().enumerate() {
                let Some(agent) = &step.agent else { continue };
                if set.agents.contains_key(agent) {
                    continue;
                }
                let message = match set.index.agent_claims.get(agent).and_then(|p| p.first()) {
                    Some(p) => format!("agent `{agent}` is invalid (see {p})"),
                    None => format!("unknown agent `{agent}`"),
                };
                issues.push(Issue::new(format!("spec.steps[{s}].agent"), message));
            }
        }
        let errors = all_errors(path, entry, issues);
        if i == 0 && errors.is_empty() {
            if let Object::Template(t, Some(_)) = &entry.object {
                valid = Some(Loaded {
                    path: path.clone(),
                    value: Arc::clone(t),
                    hash: entry.hash,
                });
            }
        }
        errors_changed |= set.index.set_errors(path, errors);
    }
    match valid {
        Some(loaded) => set.templates.insert(name.to_string(), loaded),
        None => set.templates.remove(name),
    };
    if template_state(set, name) != before {
        mark_jobs_of(&set.index, name, dirty);
    }
    errors_changed
}

/// Marks the jobs using template `name` dirty.
fn mark_jobs_of(idx: &ManifestIndex, name: &str, dirty: &mut Dirty) {
    if let Some(users) = idx.template_users.get(name) {
        for path in users {
            if let Some(j) = idx.files.get(path).and_then(|e| e.name.as_ref()) {
                dirty.mark(Kind::Job, j);
            }
        }
    }
}

/// What the reconciler sees of a job name: its desired hash and path, or whether it is invalid.
fn job_state(set: &ManifestSet, name: &str) -> (Option<(u64, String)>, bool) {
    (
        set.jobs.get(name).map(|j| (j.hash, j.path.clone())),
        set.invalid_job_names.contains(name),
    )
}

/// Checks a job against its template: the template exists and is valid, and the
/// parameters validate. Returns the desired job (without its final hash) or issues.
fn check_job(
    set: &ManifestSet,
    path: &str,
    entry: &FileEntry,
    issues: &mut Vec<Issue>,
) -> Option<DesiredJob> {
    let Object::Job(job) = &entry.object else {
        return None;
    };
    let tname = &job.spec.template;
    let Some(template) = set.templates.get(tname) else {
        let message = match set.index.template_claims.get(tname).and_then(|p| p.first()) {
            Some(p) => format!("template `{tname}` is invalid (see {p})"),
            None => format!("unknown template `{tname}`"),
        };
        issues.push(Issue::new("spec.template", message));
        return None;
    };
    let compiled = match set.index.files.get(&template.path).map(|e| &e.object) {
        Some(Object::Template(_, Some(c))) => c,
        _ => {
            issues.push(Issue::new(
                "spec.template",
                format!("template `{tname}` is invalid"),
            ));
            return None;
        }
    };
    match compiled.params.resolve(tname, &job.spec.params) {
        Ok(params) => {
            let mut h = Fnv1a::new();
            h.write_u64(entry.hash);
            h.write_u64(template.hash);
            for agent in &compiled.agents {
                h.write_u64(set.agents.get(agent).map_or(0, |a| a.hash));
            }
            Some(DesiredJob {
                path: path.to_string(),
                job: Arc::clone(job),
                template: Arc::clone(&template.value),
                params: Arc::new(params),
                hash: h.finish(),
            })
        }
        Err(more) => {
            issues.extend(more);
            None
        }
    }
}

fn resolve_job(set: &mut ManifestSet, name: &str, changed: &mut BTreeSet<String>) -> bool {
    let before = job_state(set, name);
    let claimants = set.index.claimants(Kind::Job, name);
    let mut errors_changed = false;
    let mut valid = None;
    for (i, path) in claimants.iter().enumerate() {
        let Some(entry) = set.index.files.get(path) else {
            continue;
        };
        let mut issues = Vec::new();
        if i > 0 {
            issues.push(duplicate(Kind::Job, name, &claimants[0]));
        }
        let desired = check_job(set, path, entry, &mut issues);
        let errors = all_errors(path, entry, issues);
        if errors.is_empty() {
            set.invalid_job_paths.remove(path);
            if i == 0 {
                valid = desired;
            }
        } else {
            set.invalid_job_paths.insert(path.clone());
        }
        errors_changed |= set.index.set_errors(path, errors);
    }
    match valid {
        Some(job) => {
            set.jobs.insert(name.to_string(), job);
            set.invalid_job_names.remove(name);
        }
        None => {
            set.jobs.remove(name);
            if claimants.is_empty() {
                set.invalid_job_names.remove(name);
            } else {
                set.invalid_job_names.insert(name.to_string());
            }
        }
    }
    if job_state(set, name) != before {
        changed.insert(name.to_string());
    }
    errors_changed
}
