//! A real Kubernetes control plane for tests (feature `testenv`), in the manner of
//! controller-runtime's envtest: etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler and, when it was built, kwok (a fake node that makes pods Running and
//! Ready, and serves container logs that tests write), on 127.0.0.1 with random ports and a
//! temporary directory.
//!
//! The binaries come from `scripts/k8s-testenv.sh`, which builds them from Go modules (or
//! reuses its per-machine cache) and prints their directory; `.ci/run` exports it as
//! `GEORGE_TEST_K8S_BIN`. Without that variable a test skips *loudly* (it says so on
//! stderr and returns), as the PostgreSQL tests do; under CI (`CI` set) it fails instead.
//!
//! One control plane serves a whole test binary ([`shared`], or the
//! [`testenv_or_skip!`](crate::testenv_or_skip) macro); each test takes its own namespace
//! ([`TestEnv::namespace`]) and its own [`kube::Client`] ([`TestEnv::client`]: a client is
//! bound to the Tokio runtime it was made in, and every `#[tokio::test]` has its own). The
//! processes are killed by PID when the binary exits (and by the kernel if it dies), or
//! when an owned [`TestEnv`] is dropped.
//!
//! ```no_run
//! # async fn t() {
//! use george_k8s::testenv;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, PostParams};
//!
//! let Some(env) = testenv::shared("my_test").await else { return }; // skipped loudly
//! let ns = env.namespace("my-test").await.unwrap();
//! let cms: Api<ConfigMap> = ns.api();
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("c".into());
//! cms.create(&PostParams::default(), &cm).await.unwrap();
//! # }
//! ```

mod certs;
mod control_plane;
mod pods;
mod process;

use std::path::{Path, PathBuf};

use kube::Client;

pub use control_plane::TestEnv;
pub use pods::{LOGGED_CONTAINERS, mark_pods_ready};
pub use process::Proc;

/// The variable naming the directory of the control-plane binaries.
pub const BIN_ENV: &str = "GEORGE_TEST_K8S_BIN";

/// Why the control plane could not start or be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or process could not be created.
    #[error("{path}: {source}")]
    Io {
        /// The file, program or address.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A process did not start or become ready; the message names it and quotes its log.
    #[error("the test control plane did not start: {0}")]
    Start(String),
    /// The environment lacks what was asked of it (e.g. container logs without kwok).
    #[error("the test control plane cannot do this: {0}")]
    Unsupported(String),
    /// A call to the API server failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The binaries' directory from [`BIN_ENV`], or `None` after saying loudly on stderr that
/// `test` did not run. Under CI (`CI` set) a missing variable panics: there the
/// Kubernetes tests must run.
pub fn bin_dir(test: &str) -> Option<PathBuf> {
    match std::env::var_os(BIN_ENV) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ if std::env::var_os("CI").is_some() => panic!(
            "CI is set but {BIN_ENV} is not: the Kubernetes tests must run \
             (.ci/run exports it from scripts/k8s-testenv.sh)"
        ),
        _ => {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! Kubernetes test `{test}` DID NOT RUN: set {BIN_ENV} to the directory \
                 `bash scripts/k8s-testenv.sh` prints (it builds kube-apiserver, etcd, ... \
                 from Go modules once per machine) !!!\n"
            );
            None
        }
    }
}

static SHARED: tokio::sync::OnceCell<Result<TestEnv, String>> = tokio::sync::OnceCell::const_new();

/// The test binary's control plane, started by the first test that asks for it, or
/// `None` when the binaries are not configured (see [`bin_dir`]; the skip is reported).
///
/// # Panics
/// When [`BIN_ENV`] is set but the control plane does not start: a broken environment
/// fails every test that needs it rather than skipping it.
pub async fn shared(test: &str) -> Option<&'static TestEnv> {
    let bin = bin_dir(test)?;
    let env = SHARED
        .get_or_init(|| async move { TestEnv::start(&bin).await.map_err(|e| e.to_string()) })
        .await;
    match env {
        Ok(env) => Some(env),
        Err(e) => panic!("{e}"),
    }
}

/// `let env = testenv_or_skip!("test_name");` — the shared [`TestEnv`], or `return` from
/// the (async) test after reporting the skip.
#[macro_export]
macro_rules! testenv_or_skip {
    ($test:expr) => {
        match $crate::testenv::shared($test).await {
            Some(env) => env,
            None => return,
        }
    };
}

/// A namespace of its own for one test, with a client.
#[derive(Clone)]
pub struct TestNamespace {
    name: String,
    client: Client,
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TestNamespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A client (its default namespace is this one).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// An [`kube::Api`] for namespaced `K` in this namespace.
    pub fn api<K>(&self) -> kube::Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        kube::Api::namespaced(self.client.clone(), &self.name)
    }
}
