//! George on Kubernetes.
//!
//! - [`tools`]: [`KubeToolExecutor`](tools::KubeToolExecutor), the Kubernetes API as
//!   tools for agents (get, list, describe, events, logs, rollout status, schemas,
//!   server-side dry runs with diffs, apply, patch, scale, delete) within the operator's
//!   namespaces and kinds.
//! - [`testenv`] (feature `testenv`): a real kube-apiserver, etcd,
//!   kube-controller-manager and kube-scheduler (and kwok) for tests, from the binaries
//!   `scripts/k8s-testenv.sh` builds from Go modules.
//!
//! ```no_run
//! # #[cfg(feature = "testenv")]
//! # async fn t() {
//! let Some(env) = george_k8s::testenv::shared("doc").await else { return };
//! let ns = env.namespace("doc").await.unwrap();
//! println!("{} in namespace {}", env.server_url(), ns.name());
//! # }
//! ```

pub mod crd;
pub mod status;
#[cfg(feature = "testenv")]
pub mod testenv;
pub mod tools;

/// The Kubernetes API types (k8s-openapi, the `v1_36` API).
pub use k8s_openapi;
/// The kube-rs client this crate is built on (its `Client`, `Api`, discovery).
pub use kube;
