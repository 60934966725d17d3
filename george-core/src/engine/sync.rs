//! Following Git: load the head of the followed reference, fully the first time, then
//! only the manifests changed since the last reconciled commit, and queue the jobs they
//! touch.

use super::{Engine, Shared, lock};
use crate::error::{Error, Result};
use crate::git::{CommitId, is_manifest_path};
use crate::manifest::{DesiredJob, ManifestSet};

const META_COMMIT: &str = "last_reconciled_commit";

pub(super) async fn sync(shared: &Shared, engine: &Engine) -> Result<Option<CommitId>> {
    let head = shared.git.resolve(&shared.config.reference).await?;
    let prev = shared.desired.read().ok().and_then(|d| d.commit.clone());
    if prev.as_ref() == Some(&head) {
        let recorded = shared.desired.read().map(|d| d.recorded).unwrap_or(true);
        if !recorded {
            record(shared, &head).await?;
        }
        return Ok(None);
    }
    let keys: Vec<String> = match prev {
        None => {
            let files = shared.git.read_manifests(&head).await?;
            let limits = shared.config.manifest_limits;
            let set =
                tokio::task::spawn_blocking(move || ManifestSet::load_with_limits(files, limits))
                    .await
                    .map_err(|e| Error::backend("manifest loading panicked").with_source(e))?;
            for e in &set.errors {
                tracing::warn!(error = %e, "invalid manifest");
            }
            let mut keys: Vec<String> = set.jobs.keys().cloned().collect();
            keys.extend(set.invalid_job_names.iter().cloned());
            keys.extend(lock(&shared.cache).keys().cloned());
            if let Ok(mut d) = shared.desired.write() {
                d.set = set;
                d.commit_id = head.0.as_str().into();
                d.commit = Some(head.clone());
            }
            keys
        }
        Some(prev) => {
            let changed: Vec<String> = shared
                .git
                .changed_paths(&prev, &head)
                .await?
                .into_iter()
                .filter(|p| is_manifest_path(p))
                .collect();
            let files = shared.git.read_files(&head, &changed).await?;
            let removed: Vec<String> = changed
                .iter()
                .filter(|p| !files.iter().any(|f| &f.path == *p))
                .cloned()
                .collect();
            // Parsing and validating each file is the costly part: it runs on a blocking
            // thread, outside the desired-state lock; applying it under the lock costs
            // what changed.
            let limits = shared.config.manifest_limits;
            let parsed = tokio::task::spawn_blocking(move || ManifestSet::parse(files, &limits))
                .await
                .map_err(|e| Error::backend("manifest parsing panicked").with_source(e))?;
            let mut d = shared
                .desired
                .write()
                .map_err(|_| Error::backend("desired-state lock poisoned"))?;
            let before: Vec<(String, DesiredJob)> = d
                .set
                .jobs
                .iter()
                .filter(|(_, j)| {
                    removed.iter().any(|p| **p == *j.path)
                        && j.job.spec.on_removal == crate::model::RemovalPolicy::Keep
                })
                .map(|(n, j)| (n.clone(), j.clone()))
                .collect();
            let keys = d.set.update_parsed(parsed, &removed);
            for (name, job) in before {
                if !d.set.jobs.contains_key(&name) {
                    d.retained.insert(name, job);
                }
            }
            let readded: Vec<String> = d
                .retained
                .keys()
                .filter(|n| d.set.jobs.contains_key(*n))
                .cloned()
                .collect();
            for n in readded {
                d.retained.remove(&n);
            }
            d.commit_id = head.0.as_str().into();
            d.commit = Some(head.clone());
            for e in d.set.errors.iter().filter(|e| changed.contains(&e.path)) {
                tracing::warn!(error = %e, "invalid manifest");
            }
            keys.into_iter().collect()
        }
    };
    // The desired state now is `head`'s: its jobs are queued before anything else can
    // fail, so a failed write below never loses this commit's reconcile (the next sync
    // sees `head` as done).
    engine.enqueue(keys);
    record(shared, &head).await?;
    Ok(Some(head))
}

/// Records `head` as the last reconciled commit (unless the desired state moved on).
async fn record(shared: &Shared, head: &CommitId) -> Result<()> {
    if let Ok(mut d) = shared.desired.write() {
        d.recorded = false;
    }
    shared.store.put_meta(META_COMMIT, head.as_str()).await?;
    if let Ok(mut d) = shared.desired.write()
        && d.commit.as_ref() == Some(head)
    {
        d.recorded = true;
    }
    Ok(())
}
