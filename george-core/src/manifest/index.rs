//! The incremental engine behind [`ManifestSet::load`] and [`ManifestSet::update`].
//!
//! Files are parsed and validated on their own once ([`parse_file`]); what crosses
//! files is resolved per *name*: a changed file marks its old and new names dirty,
//! a dirty agent whose state changed marks the templates naming it, a dirty template
//! whose state changed marks the jobs using it. Only dirty names are re-resolved.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::ManifestLimits;
use super::parse::{FileEntry, Object, parse_file};
use super::resolve::{resolve_agent, resolve_job, resolve_policy, resolve_template};
use super::{ManifestError, ManifestSet};
use crate::git::{SourceFile, is_manifest_path};
use crate::model::{Kind, TaskTemplate};

/// Bookkeeping of a [`ManifestSet`] for incremental updates: the parsed files, which
/// files claim which names, who uses whom, and the errors by file. Opaque.
#[derive(Debug, Clone, Default)]
pub struct ManifestIndex {
    pub(super) files: HashMap<String, FileEntry>,
    /// Per kind: name → the paths claiming it (the first one owns it).
    pub(super) agent_claims: HashMap<String, Claims>,
    pub(super) template_claims: HashMap<String, Claims>,
    pub(super) job_claims: HashMap<String, Claims>,
    pub(super) policy_claims: HashMap<String, Claims>,
    /// Agent name → paths of the templates naming it.
    pub(super) agent_users: HashMap<String, HashSet<String>>,
    /// Template name → paths of the jobs using it.
    pub(super) template_users: HashMap<String, HashSet<String>>,
    /// Errors by path (no entry when a file has none).
    pub(super) errors: BTreeMap<String, Vec<ManifestError>>,
}

impl ManifestIndex {
    /// The errors of one file.
    pub(crate) fn errors_of(&self, path: &str) -> &[ManifestError] {
        self.errors.get(path).map_or(&[], Vec::as_slice)
    }

    fn claims(&mut self, kind: Kind) -> &mut HashMap<String, Claims> {
        match kind {
            Kind::AgentSpec => &mut self.agent_claims,
            Kind::TaskTemplate => &mut self.template_claims,
            Kind::Job => &mut self.job_claims,
            Kind::Policy => &mut self.policy_claims,
        }
    }

    pub(super) fn claimants(&self, kind: Kind, name: &str) -> Vec<String> {
        let map = match kind {
            Kind::AgentSpec => &self.agent_claims,
            Kind::TaskTemplate => &self.template_claims,
            Kind::Job => &self.job_claims,
            Kind::Policy => &self.policy_claims,
        };
        map.get(name)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Records the errors of `path`; returns whether they changed.
    pub(super) fn set_errors(&mut self, path: &str, errors: Vec<ManifestError>) -> bool {
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

/// The paths claiming one name, sorted (the first one owns it). Nearly always one path:
/// a sorted `Vec` holds it in one small allocation where a `BTreeSet` node takes ~280
/// bytes, which matters at 100,000 jobs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Claims(Vec<String>);

impl Claims {
    /// Adds `path` (once).
    pub(crate) fn insert(&mut self, path: String) {
        if let Err(at) = self.0.binary_search(&path) {
            self.0.insert(at, path);
        }
    }

    /// Removes `path` if present.
    pub(crate) fn remove(&mut self, path: &str) {
        if let Ok(at) = self.0.binary_search_by(|p| p.as_str().cmp(path)) {
            self.0.remove(at);
        }
    }

    /// Whether no path claims the name.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The owner: the first path in order.
    pub(crate) fn first(&self) -> Option<&String> {
        self.0.first()
    }

    /// The paths in order.
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }
}

/// Names to re-resolve.
#[derive(Default)]
pub(super) struct Dirty {
    agents: HashSet<String>,
    templates: HashSet<String>,
    jobs: HashSet<String>,
    policies: HashSet<String>,
}

impl Dirty {
    pub(super) fn mark(&mut self, kind: Kind, name: &str) {
        let set = match kind {
            Kind::AgentSpec => &mut self.agents,
            Kind::TaskTemplate => &mut self.templates,
            Kind::Job => &mut self.jobs,
            Kind::Policy => &mut self.policies,
        };
        if !set.contains(name) {
            set.insert(name.to_string());
        }
    }
}

fn remove_from(map: &mut HashMap<String, HashSet<String>>, key: &str, path: &str) {
    if let Some(set) = map.get_mut(key) {
        set.remove(path);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

pub(super) fn agent_names(t: &TaskTemplate) -> impl Iterator<Item = &String> {
    t.spec.steps.iter().filter_map(|s| s.agent.as_ref())
}

/// Parses and locally validates the manifest files among `changed` (others are
/// ignored): the costly, per-file part of an update, which needs no access to the set.
pub(super) fn parse(changed: Vec<SourceFile>, limits: &ManifestLimits) -> Vec<(String, FileEntry)> {
    let files: Vec<SourceFile> = changed
        .into_iter()
        .filter(|f| is_manifest_path(&f.path))
        .collect();
    parse_all(files, limits)
}

pub(super) fn apply(
    set: &mut ManifestSet,
    parsed: Vec<(String, FileEntry)>,
    removed: &[String],
) -> BTreeSet<String> {
    let mut dirty = Dirty::default();
    let mut errors_changed = false;
    for path in removed {
        errors_changed |= remove_file(set, path, &mut dirty);
    }
    for (path, entry) in parsed {
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
    // Nothing depends on a policy: it is read when a plan is decided.
    for name in dirty.policies.drain() {
        errors_changed |= resolve_policy(set, &name);
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
fn parse_all(files: Vec<SourceFile>, limits: &ManifestLimits) -> Vec<(String, FileEntry)> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(8);
    if files.len() < PARALLEL_THRESHOLD || threads < 2 {
        return parse_seq(files, limits);
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
            .map(|chunk| scope.spawn(move || parse_seq(chunk, limits)))
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

fn parse_seq(files: Vec<SourceFile>, limits: &ManifestLimits) -> Vec<(String, FileEntry)> {
    files
        .into_iter()
        .map(|f| {
            let entry = parse_file(&f.path, f.bytes, limits);
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
        Object::Agent(_) | Object::Policy(_) | Object::None => {}
    }
    set.invalid_job_paths.remove(path);
    set.invalid_policy_paths.remove(path);
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
        Object::Agent(_) | Object::Policy(_) | Object::None => {}
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
            match kind {
                Some(Kind::Job) => {
                    set.invalid_job_paths.insert(path.clone());
                }
                Some(Kind::Policy) => {
                    set.invalid_policy_paths.insert(path.clone());
                }
                _ => {}
            }
        }
    }
    idx.files.insert(path, entry);
    errors_changed
}
