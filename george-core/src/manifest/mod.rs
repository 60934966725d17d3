//! Loading and validating manifests: files (path → bytes, from any `GitSource`) in,
//! a [`ManifestSet`] of valid objects plus one [`ManifestError`] per problem out.
//!
//! - [`ManifestSet::load`] parses every manifest file ([`crate::git::is_manifest_path`];
//!   other paths are ignored), dispatches on `kind`, validates each object on its own
//!   (syntax, types, unknown fields, names, steps, dependencies, regular expressions,
//!   template syntax, policy rules) and then across files (duplicate names, unknown
//!   agents and templates, job parameters against their template, defaults applied).
//! - [`ManifestSet::update`] applies a commit's changed and removed files
//!   incrementally: only the touched objects and those depending on them are
//!   re-validated, and the names of the jobs whose desired state may have changed are
//!   returned.
//! - One invalid manifest never stops the others. An invalid template makes its jobs
//!   invalid; an invalid agent makes the templates naming it invalid.
//!
//! Every error names the file, the 1-based line and column of the offending node
//! and the field path (`spec.steps[1].depends_on[0]`).
//!
//! ```
//! use george_core::git::SourceFile;
//! use george_core::manifest::ManifestSet;
//!
//! let file = |path: &str, text: &str| SourceFile { path: path.into(), bytes: text.into() };
//! let set = ManifestSet::load(vec![
//!     file("task-templates/hello.yaml", "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata:\n  name: hello\nspec:\n  parameters:\n    - name: who\n  steps:\n    - id: greet\n      command: {program: echo, args: [\"hello {{ params.who }}\"]}\n"),
//!     file("jobs/a.yaml", "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata:\n  name: a\nspec:\n  template: hello\n  params: {who: world}\n"),
//!     file("jobs/b.yaml", "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata:\n  name: b\nspec:\n  template: hello\n"),
//! ]);
//! assert!(set.jobs.contains_key("a"));
//! assert_eq!(
//!     set.errors[0].to_string(),
//!     "jobs/b.yaml:5:1: spec.params: missing required parameter `who` (template `hello`)"
//! );
//! assert!(set.invalid_job_names.contains("b"));
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::git::SourceFile;
use crate::model::{AgentSpec, Job, Kind, Policy, TaskTemplate};

mod graph;
mod index;
mod locate;
mod order;
mod params;
mod parse;
mod resolve;
mod validate;

pub use index::ManifestIndex;

/// An invalid manifest: where (file, line, column, field path) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}:{column}: {field}: {message}")]
pub struct ManifestError {
    /// Repository-relative path of the file.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Field path, e.g. `spec.steps[2].depends_on[0]` (empty for a syntax error).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A valid manifest and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// Repository-relative path.
    pub path: String,
    /// The object.
    pub value: Arc<T>,
    /// FNV-1a 64 hash of the file's bytes.
    pub hash: u64,
}

/// A job whose manifest, template, agents and parameters all validated: what the
/// reconciler wants to exist.
#[derive(Debug, Clone)]
pub struct DesiredJob {
    /// Repository-relative path of the Job manifest.
    pub path: Arc<str>,
    /// The Job.
    pub job: Arc<Job>,
    /// Its template.
    pub template: Arc<TaskTemplate>,
    /// Parameter values with defaults applied.
    pub params: Arc<crate::model::Params>,
    /// The template's step ids in order, shared by every job of the template and every
    /// record made from them (a record's step ids are these very strings).
    pub step_ids: Arc<[Arc<str>]>,
    /// Hash of the job, its template and the agents its steps use: changes iff the
    /// desired definition changes.
    pub hash: u64,
}

impl DesiredJob {
    /// The generation the source gives the job (the annotation
    /// [`SOURCE_GENERATION_ANNOTATION`](crate::model::SOURCE_GENERATION_ANNOTATION), a
    /// decimal number), when it has one: Kubernetes sources set it from the CR's
    /// `metadata.generation`; Git manifests have none.
    pub fn source_generation(&self) -> Option<u64> {
        self.job.metadata.source_generation()
    }
}

/// The desired state at one commit.
#[derive(Debug, Clone, Default)]
pub struct ManifestSet {
    /// Valid agent specs by name.
    pub agents: HashMap<String, Loaded<AgentSpec>>,
    /// Valid templates by name.
    pub templates: HashMap<String, Loaded<TaskTemplate>>,
    /// Valid jobs by name.
    pub jobs: HashMap<String, DesiredJob>,
    /// Valid policies by name (under `policies/`). An invalid policy is absent here
    /// (its errors are in [`errors`](Self::errors)) and its path is in
    /// [`invalid_policy_paths`](Self::invalid_policy_paths).
    pub policies: HashMap<String, Loaded<Policy>>,
    /// Paths of Policy files that exist but did not validate. While any is here,
    /// [`crate::policy::decide_plan`] auto-approves nothing (a broken policy may have
    /// been the one that denies or asks); the valid policies still deny.
    pub invalid_policy_paths: BTreeSet<String>,
    /// One error per invalid manifest (or per problem in it).
    pub errors: Vec<ManifestError>,
    /// Paths of Job files that exist but did not validate.
    pub invalid_job_paths: HashSet<String>,
    /// Names of Jobs that exist but did not validate (when the name could be read).
    /// A name is never both here and in [`jobs`](Self::jobs).
    pub invalid_job_names: HashSet<String>,
    /// Bookkeeping for [`update`](Self::update): the parsed files and who uses whom.
    pub index: ManifestIndex,
    /// The caps every file is checked against.
    pub limits: ManifestLimits,
}

/// Files parsed and validated on their own ([`ManifestSet::parse`]), ready to apply.
#[derive(Debug)]
pub struct ParsedFiles(Vec<(String, parse::FileEntry)>);

/// Caps on what a commit may ask of the engine, each an error naming the cap when
/// exceeded (the file is invalid; the others load). The operator sets them
/// (`EngineBuilder::manifest_limits`); manifests cannot raise them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestLimits {
    /// The largest manifest file, in bytes (default 1 MiB).
    pub max_file_bytes: usize,
    /// The most steps a template may have (default 10,000).
    pub max_steps: usize,
    /// The most parameters a template may declare or a job may set (default 1,000).
    pub max_params: usize,
    /// The fuel and output cap of every render of a template's text
    /// ([`crate::template::Limits`]); validation refuses templates that exceed them
    /// with no parameters at all ([`crate::template::check_bounded`]).
    pub template: crate::template::Limits,
}

impl Default for ManifestLimits {
    fn default() -> Self {
        ManifestLimits {
            max_file_bytes: 1024 * 1024,
            max_steps: 10_000,
            max_params: 1_000,
            template: crate::template::Limits::default(),
        }
    }
}

impl ManifestSet {
    /// Loads and validates every file. Paths that are not manifest paths
    /// ([`crate::git::is_manifest_path`]) are ignored. Never fails: problems are in
    /// [`errors`](Self::errors).
    pub fn load(files: Vec<SourceFile>) -> ManifestSet {
        Self::load_with_limits(files, ManifestLimits::default())
    }

    /// [`load`](Self::load) under `limits` (kept for later [`update`](Self::update)s).
    pub fn load_with_limits(files: Vec<SourceFile>, limits: ManifestLimits) -> ManifestSet {
        let mut set = ManifestSet {
            limits,
            ..ManifestSet::default()
        };
        set.update(files, &[]);
        set
    }

    /// Applies changed (added or modified) files and removed paths, re-validating only
    /// the objects they affect (a changed template re-validates its jobs, a changed
    /// agent the templates naming it and their jobs). Returns the names of the jobs
    /// whose desired state may have changed: added, removed, edited, newly invalid,
    /// valid again, or with a new [`DesiredJob::hash`].
    ///
    /// The cost follows what changed, not how many jobs exist.
    pub fn update(&mut self, changed: Vec<SourceFile>, removed: &[String]) -> BTreeSet<String> {
        let parsed = Self::parse(changed, &self.limits);
        self.update_parsed(parsed, removed)
    }

    /// The first half of [`update`](Self::update): parses and validates each file on
    /// its own, without the set — so a caller can do it outside the lock that guards
    /// the set (on a blocking thread), and then apply the result with
    /// [`update_parsed`](Self::update_parsed).
    pub fn parse(changed: Vec<SourceFile>, limits: &ManifestLimits) -> ParsedFiles {
        ParsedFiles(index::parse(changed, limits))
    }

    /// The second half of [`update`](Self::update): applies files parsed by
    /// [`parse`](Self::parse) (with this set's limits) and removed paths; the cross-file
    /// checks cost what changed.
    pub fn update_parsed(&mut self, parsed: ParsedFiles, removed: &[String]) -> BTreeSet<String> {
        index::apply(self, parsed.0, removed)
    }

    /// The errors of one file (empty when it is valid or unknown).
    pub fn errors_of(&self, path: &str) -> &[ManifestError] {
        self.index.errors_of(path)
    }
}

/// The JSON Schema (generated with schemars) of a kind's manifests, for editors and CI.
pub fn json_schema(kind: Kind) -> serde_json::Value {
    let schema = match kind {
        Kind::AgentSpec => schemars::schema_for!(AgentSpec),
        Kind::TaskTemplate => schemars::schema_for!(TaskTemplate),
        Kind::Job => schemars::schema_for!(Job),
        Kind::Policy => schemars::schema_for!(Policy),
    };
    schema.to_value()
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`: the (deterministic, process-independent) hash of manifest files.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a::new();
    h.write(bytes);
    h.finish()
}

/// An incremental FNV-1a 64 hasher.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv1a(u64);

impl Fnv1a {
    pub(crate) fn new() -> Fnv1a {
        Fnv1a(FNV_OFFSET)
    }
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }
    pub(crate) fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }
    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
