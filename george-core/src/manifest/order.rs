//! The desired state of a child job ([sub-jobs](crate::children)): a Job built from a
//! template name and parameter values an agent ordered, validated exactly as a Job
//! manifest is (strict parameters, defaults applied), against the templates and agents
//! of one manifest set — the one at the parent's commit, so the child's definition is
//! pinned to it.

use std::sync::Arc;

use super::parse::Object;
use super::{DesiredJob, Fnv1a, ManifestSet};
use crate::model::{Job, JobSpec, ObjectMeta, Params, RemovalPolicy};

impl ManifestSet {
    /// The desired state of child job `name`, at `path` (not a file: the record's
    /// `path`, e.g. `ordered-by:<parent>/<step>`), from `template` with `params`.
    ///
    /// The hash covers the name, template name and canonical parameters, then the
    /// template's and its agents' file hashes in this set, as a manifest job's does: the
    /// same order at the same commit always resolves to the same hash.
    ///
    /// # Errors
    /// An unknown or invalid template, or parameters that do not validate (each issue as
    /// `field: message`, as a Job manifest's errors say it).
    pub fn resolve_ordered(
        &self,
        name: &str,
        path: &str,
        template: &str,
        params: &Params,
    ) -> Result<DesiredJob, String> {
        let Some(t) = self.templates.get(template) else {
            return Err(format!("unknown template `{template}`"));
        };
        let Some(Object::Template(_, Some(compiled))) =
            self.index.files.get(&t.path).map(|e| &e.object)
        else {
            return Err(format!("template `{template}` is invalid"));
        };
        let resolved = compiled
            .params
            .resolve(template, params)
            .map_err(|issues| {
                issues
                    .iter()
                    .map(|i| format!("{}: {}", i.field, i.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
        let job = Job {
            api_version: crate::model::API_VERSION.to_string(),
            kind: "Job".to_string(),
            metadata: ObjectMeta {
                name: name.to_string(),
                labels: Default::default(),
                annotations: Default::default(),
            },
            spec: JobSpec {
                template: template.to_string(),
                params: params.clone(),
                on_removal: RemovalPolicy::Cancel,
                max_parallel_steps: None,
                budget: None,
                // The template's target applies (a child works where its template says).
                target: Default::default(),
            },
        };
        let mut h = Fnv1a::new();
        h.write(name.as_bytes());
        h.write(&[0]);
        h.write(template.as_bytes());
        h.write(&[0]);
        h.write(serde_json::to_string(params).unwrap_or_default().as_bytes());
        h.write_u64(t.hash);
        for agent in &compiled.agents {
            h.write_u64(self.agents.get(agent).map_or(0, |a| a.hash));
        }
        Ok(DesiredJob {
            path: path.into(),
            job: Arc::new(job),
            template: Arc::clone(&t.value),
            params: Arc::new(resolved),
            step_ids: compiled.step_ids.clone(),
            hash: h.finish(),
        })
    }
}
