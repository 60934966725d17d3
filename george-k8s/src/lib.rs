//! George on Kubernetes.
//!
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

#[cfg(feature = "testenv")]
pub mod testenv;
