//! [`CrSource::follow`]: the engine reconciles each new revision of the custom resources at
//! once (rather than on its poll interval), and each CR learns whether George accepted
//! it — a `Ready` condition naming the failing field and line when not.

use std::collections::HashMap;
use std::sync::Arc;

use george_core::engine::Engine;
use george_core::manifest::ManifestError;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::CrSource;
use super::render::{self, SourceKind};

/// The field manager the source writes `Ready` conditions with.
pub const FIELD_MANAGER: &str = "george-source";

/// What was last written to one CR: `(generation, accepted, message)`.
type Written = (Option<i64>, bool, String);

/// A running [`CrSource::follow`].
pub type FollowHandle = crate::TaskHandle;

impl CrSource {
    /// Makes `engine` (built over this source) reconcile every new revision as soon as the
    /// watchers see it, and writes each CR's `Ready` condition after each reconcile: on
    /// `AgentSpec`s and `TaskTemplate`s `True` or `False`; on `Job`s `False` while the
    /// manifest is invalid (the engine's status projection owns the rest of a Job's
    /// status). Also forgets the revisions the engine no longer needs.
    pub fn follow(&self, engine: Engine) -> FollowHandle {
        let source = self.clone();
        crate::TaskHandle::spawn(move |stop| run(source, engine, stop))
    }

    /// Writes the `Ready` condition of every CR whose verdict changed since it was last
    /// written, from `engine`'s manifest errors. Returns how many were written; a failed
    /// write is logged and tried again next time.
    async fn write_conditions(
        &self,
        engine: &Engine,
        written: &mut HashMap<String, Written>,
    ) -> usize {
        let mut errors: HashMap<String, Vec<ManifestError>> = HashMap::new();
        for e in engine.manifest_errors() {
            errors.entry(e.path.clone()).or_default().push(e);
        }
        let paths = self.paths();
        written.retain(|p, _| paths.contains(p));
        let mut count = 0;
        for path in paths {
            let Some((kind, ns, name)) = render::parse_path(&path) else {
                continue;
            };
            let generation = self.generation_of(&path);
            let (ok, message) = verdict(errors.get(&path).map(Vec::as_slice));
            let now: Written = (generation, ok, message);
            if written.get(&path) == Some(&now) {
                continue;
            }
            // A valid Job's status belongs to the status projection; an invalid one's
            // `Ready=False` is withdrawn by applying nothing once it is valid again.
            let status = match (kind, ok) {
                (SourceKind::Job, true) if !written.contains_key(&path) => {
                    written.insert(path, now);
                    continue;
                }
                (SourceKind::Job, true) => json!({}),
                _ => status(kind, generation, ok, &now.2),
            };
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.inner.client.clone(), ns, &kind.api_resource());
            let patch = json!({
                "apiVersion": george_core::model::API_VERSION,
                "kind": kind.kind(),
                "status": status,
            });
            let pp = PatchParams::apply(FIELD_MANAGER).force();
            match api.patch_status(name, &pp, &Patch::Apply(&patch)).await {
                Ok(_) => {
                    count += 1;
                    written.insert(path, now);
                }
                Err(e) => tracing::warn!(%path, error = %e, "could not write a Ready condition"),
            }
        }
        count
    }
}

/// `(accepted, message)` for a CR with these manifest errors.
pub(crate) fn verdict(errors: Option<&[ManifestError]>) -> (bool, String) {
    match errors {
        None | Some([]) => (true, "accepted by George".to_string()),
        Some(errors) => {
            let parts: Vec<String> = errors
                .iter()
                .map(|e| {
                    let field = if e.field.is_empty() {
                        "(document)"
                    } else {
                        &e.field
                    };
                    format!("{field}: {} (line {})", e.message, e.line)
                })
                .collect();
            (false, parts.join("; "))
        }
    }
}

fn status(kind: SourceKind, generation: Option<i64>, ok: bool, message: &str) -> Value {
    let condition = json!({
        "type": "Ready",
        "status": if ok { "True" } else { "False" },
        "observedGeneration": generation,
        "lastTransitionTime": crate::status::rfc3339_now(),
        "reason": if ok { "Accepted" } else { "InvalidManifest" },
        "message": message,
    });
    match kind {
        SourceKind::Job => json!({ "conditions": [condition] }),
        _ => json!({ "observedGeneration": generation, "conditions": [condition] }),
    }
}

async fn run(source: CrSource, engine: Engine, stop: Arc<Notify>) {
    let mut changes = source.changes();
    let mut written = HashMap::new();
    loop {
        changes.borrow_and_update();
        match engine.sync().await {
            Ok(_) => {
                if let Some(commit) = engine.commit() {
                    source.prune_before(&commit);
                }
                source.write_conditions(&engine, &mut written).await;
            }
            Err(e) => tracing::warn!(error = %e, "reconciling the custom resources failed"),
        }
        tokio::select! {
            _ = stop.notified() => return,
            r = changes.changed() => if r.is_err() { return },
            // Retries a failed sync or condition write.
            _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(field: &str, line: usize, message: &str) -> ManifestError {
        ManifestError {
            path: "jobs/ns/j.yaml".into(),
            line,
            column: 1,
            field: field.into(),
            message: message.into(),
        }
    }

    #[test]
    fn verdicts_name_the_field_and_line() {
        assert_eq!(verdict(None), (true, "accepted by George".into()));
        assert_eq!(
            verdict(Some(&[err("spec.template", 6, "no template named nope")])),
            (
                false,
                "spec.template: no template named nope (line 6)".into()
            )
        );
        let two = [
            err("", 1, "bad YAML"),
            err("spec.params.n", 8, "expected an integer"),
        ];
        assert_eq!(
            verdict(Some(&two)).1,
            "(document): bad YAML (line 1); spec.params.n: expected an integer (line 8)"
        );
    }
}
