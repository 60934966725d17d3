//! George on Kubernetes.
//!
//! ```
//! use george_k8s::crd::{self, Job, JobSpec};
//! use kube::CustomResourceExt as _;
//!
//! // The same Job as in Git, as a custom resource (group george.dev, v1alpha1).
//! let manifest = "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: podinfo-right-size}\n\
//!                 spec: {template: right-size-deployment, params: {target_replicas: 2}}\n";
//! let job: george_core::model::Job = serde_saphyr::from_str(manifest).unwrap();
//! let cr = Job::new(&job.metadata.name, JobSpec(job.spec));
//! assert_eq!(cr.spec.0.template, "right-size-deployment");
//! // Its CRD, with a structural schema from the same types, a status subresource and columns.
//! assert_eq!(Job::crd().metadata.name.as_deref(), Some("jobs.george.dev"));
//! assert_eq!(crd::all().len(), 3);
//! ```
//!
//! - [`crd`]: `AgentSpec`, `TaskTemplate`, `Job` as CRDs generated from George's own
//!   manifest types (committed under `deploy/crds/`), installed with [`crd::install`].
//! - [`source`]: [`CrSource`](source::CrSource), the CRs of a namespace (or of all, by
//!   label selector) as the engine's source of desired state, with `Ready` conditions on
//!   the invalid ones.
//! - [`status`]: [`StatusProjector`](status::StatusProjector), each job's status (phase,
//!   conditions, step summaries, open approvals) projected into its `Job` CR by
//!   server-side apply, with Kubernetes Events for its transitions.
//! - [`tools`]: [`KubeToolExecutor`](tools::KubeToolExecutor), the Kubernetes API as
//!   tools for agents (get, list, describe, events, logs, rollout status, schemas,
//!   server-side dry runs with diffs, apply, patch, scale, delete) within the operator's
//!   namespaces and kinds.
//! - `testenv` (feature `testenv`): a real kube-apiserver, etcd,
//!   kube-controller-manager and kube-scheduler (and kwok) for tests, from the binaries
//!   `scripts/k8s-testenv.sh` builds from Go modules:
//!
//! ```no_run
//! # #[cfg(feature = "testenv")]
//! # async fn t() {
//! let Some(env) = george_k8s::testenv::shared("doc").await else { return }; // skipped loudly
//! let ns = env.namespace("doc").await.unwrap();
//! println!("{} in namespace {}", env.server_url(), ns.name());
//! # }
//! ```

#![warn(missing_docs, missing_debug_implementations)]

pub mod crd;
mod handle;
pub mod source;
pub mod status;
#[cfg(feature = "testenv")]
pub mod testenv;
pub mod tools;

pub use handle::TaskHandle;

/// The Kubernetes API types (k8s-openapi, the `v1_36` API).
pub use k8s_openapi;
/// The kube-rs client this crate is built on (its `Client`, `Api`, discovery).
pub use kube;
