//! Cross-file resolution of one name: which file owns it (the first path claiming
//! it), whether it is valid given the agents and templates it names, and which
//! dependents must be re-resolved because its state changed.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::index::{Dirty, ManifestIndex};
use super::parse::{FileEntry, Issue, Object, locate_issues};
use super::{DesiredJob, Fnv1a, Loaded, ManifestError, ManifestSet};
use crate::model::Kind;

/// The state of a name as seen by its dependents.
#[derive(Debug, PartialEq, Eq)]
enum State {
    Absent,
    Invalid,
    Valid(u64),
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

/// The object `name` of `kind`: the first path claiming it owns it (later ones get a
/// duplicate-name error), valid when that file has no error. Records every claimant's
/// errors; returns the valid object and whether any file's errors changed.
fn first_valid<T>(
    set: &mut ManifestSet,
    kind: Kind,
    name: &str,
    pick: impl Fn(&Object) -> Option<&Arc<T>>,
) -> (Option<Loaded<T>>, bool) {
    let claimants = set.index.claimants(kind, name);
    let mut errors_changed = false;
    let mut valid = None;
    for (i, path) in claimants.iter().enumerate() {
        let Some(entry) = set.index.files.get(path) else {
            continue;
        };
        let mut issues = Vec::new();
        if i > 0 {
            issues.push(duplicate(kind, name, &claimants[0]));
        }
        let errors = all_errors(path, entry, issues);
        if i == 0
            && errors.is_empty()
            && let Some(value) = pick(&entry.object)
        {
            valid = Some(Loaded {
                path: path.clone(),
                value: Arc::clone(value),
                hash: entry.hash,
            });
        }
        errors_changed |= set.index.set_errors(path, errors);
    }
    (valid, errors_changed)
}

pub(super) fn resolve_agent(set: &mut ManifestSet, name: &str, dirty: &mut Dirty) -> bool {
    let before = agent_state(set, name);
    let (valid, errors_changed) = first_valid(set, Kind::AgentSpec, name, |o| match o {
        Object::Agent(a) => Some(a),
        _ => None,
    });
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

/// Resolves a policy name: the first path claiming it owns it; it is valid when that
/// file has no error. Nothing else depends on a policy.
pub(super) fn resolve_policy(set: &mut ManifestSet, name: &str) -> bool {
    let (valid, errors_changed) = first_valid(set, Kind::Policy, name, |o| match o {
        Object::Policy(p) => Some(p),
        _ => None,
    });
    // Every claimant's validity is kept: while one is invalid, nothing is auto-approved.
    for path in set.index.claimants(Kind::Policy, name) {
        let ok = set.index.errors_of(&path).is_empty();
        if ok {
            set.invalid_policy_paths.remove(&path);
        } else {
            set.invalid_policy_paths.insert(path);
        }
    }
    match valid {
        Some(loaded) => set.policies.insert(name.to_string(), loaded),
        None => set.policies.remove(name),
    };
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

pub(super) fn resolve_template(set: &mut ManifestSet, name: &str, dirty: &mut Dirty) -> bool {
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
pub(super) fn mark_jobs_of(idx: &ManifestIndex, name: &str, dirty: &mut Dirty) {
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
        set.jobs.get(name).map(|j| (j.hash, j.path.to_string())),
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
                path: path.into(),
                job: Arc::clone(job),
                template: Arc::clone(&template.value),
                params: Arc::new(params),
                step_ids: compiled.step_ids.clone(),
                hash: h.finish(),
            })
        }
        Err(more) => {
            issues.extend(more);
            None
        }
    }
}

pub(super) fn resolve_job(
    set: &mut ManifestSet,
    name: &str,
    changed: &mut BTreeSet<String>,
) -> bool {
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
