//! Starting the processes: etcd, then kube-apiserver (waiting for `/readyz`), then
//! kube-controller-manager, kube-scheduler and kwok with a fake node.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::Client;

use super::certs::{self, Credentials};
use super::process::{Proc, free_port, remove_at_exit};
use super::{Error, TestNamespace};

/// How long kube-apiserver may take to report ready.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// The fake node kwok manages, when kwok is there.
pub(crate) const NODE: &str = "kwok-node-0";

/// A running control plane. Dropping it kills its processes and removes its directory;
/// the [`shared`](super::shared) one lives until the test binary exits.
pub struct TestEnv {
    dir: PathBuf,
    bin: PathBuf,
    creds: Credentials,
    server: String,
    kubeconfig: PathBuf,
    kwok: bool,
    procs: Mutex<Vec<Proc>>,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("server", &self.server)
            .field("dir", &self.dir)
            .field("kwok", &self.kwok)
            .finish_non_exhaustive()
    }
}

fn arg(name: &str, value: impl std::fmt::Display) -> String {
    format!("--{name}={value}")
}

impl TestEnv {
    /// Starts a control plane from the binaries in `bin` (`etcd`, `kube-apiserver`,
    /// `kube-controller-manager`, `kube-scheduler`, and `kwok` if present). Must be called
    /// inside a Tokio runtime. Port clashes are retried.
    ///
    /// # Errors
    /// A binary is missing, a process exits early, or the API server is not ready within
    /// 60 s (the error quotes the end of its log).
    pub async fn start(bin: &Path) -> Result<TestEnv, Error> {
        for b in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            if !bin.join(b).is_file() {
                return Err(Error::Start(format!(
                    "{} is missing: run `bash scripts/k8s-testenv.sh`",
                    bin.join(b).display()
                )));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("george-k8s-testenv-")
            .tempdir()
            .map_err(|e| Error::io(&std::env::temp_dir(), e))?
            .keep();
        remove_at_exit(&dir);
        let creds = certs::generate(&dir)?;
        let mut last = None;
        for _ in 0..3 {
            match Self::start_core(bin, &dir, &creds).await {
                Ok((server, procs)) => {
                    let mut env = TestEnv {
                        dir: dir.clone(),
                        bin: bin.to_path_buf(),
                        kubeconfig: dir.join("kubeconfig"),
                        creds: creds.clone(),
                        server,
                        kwok: false,
                        procs: Mutex::new(procs),
                    };
                    env.write_kubeconfig()?;
                    env.start_controllers().await?;
                    return Ok(env);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Start("no attempt".into())))
    }

    /// etcd and kube-apiserver, ready.
    async fn start_core(
        bin: &Path,
        dir: &Path,
        creds: &Credentials,
    ) -> Result<(String, Vec<Proc>), Error> {
        let (client_port, peer_port, api_port) = (free_port()?, free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let data = dir.join(format!("etcd-{client_port}"));
        let mut etcd = Proc::start(
            "etcd",
            &bin.join("etcd"),
            &[
                arg("name", "default"),
                arg("data-dir", data.display()),
                arg("listen-client-urls", &etcd_url),
                arg("advertise-client-urls", &etcd_url),
                arg("listen-peer-urls", &peer_url),
                arg("initial-advertise-peer-urls", &peer_url),
                arg("initial-cluster", format!("default={peer_url}")),
                "--unsafe-no-fsync".into(),
                arg("log-level", "warn"),
            ],
            dir.join("etcd.log"),
        )?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", client_port)).is_err() {
            if let Some(st) = etcd.exited() {
                return Err(died(&etcd, st));
            }
            if Instant::now() > deadline {
                return Err(Error::Start(format!(
                    "etcd did not listen within 20 s:\n{}",
                    etcd.log_tail(4000)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let server = format!("https://127.0.0.1:{api_port}");
        let mut api = Proc::start(
            "kube-apiserver",
            &bin.join("kube-apiserver"),
            &[
                arg("etcd-servers", &etcd_url),
                arg("bind-address", "127.0.0.1"),
                arg("advertise-address", "127.0.0.1"),
                arg("secure-port", api_port),
                arg("cert-dir", dir.display()),
                arg("tls-cert-file", creds.serving_cert.display()),
                arg("tls-private-key-file", creds.serving_key.display()),
                arg("client-ca-file", creds.ca_cert.display()),
                arg("token-auth-file", creds.token_file.display()),
                arg("authorization-mode", "RBAC"),
                arg("service-cluster-ip-range", "10.0.0.0/24"),
                arg("service-account-issuer", "https://kubernetes.default.svc"),
                arg("service-account-key-file", creds.sa_pub.display()),
                arg("service-account-signing-key-file", creds.sa_key.display()),
                // Pods in a fresh namespace need not wait for its `default` account.
                arg("disable-admission-plugins", "ServiceAccount"),
                arg("allow-privileged", "true"),
                // `pods/log` is proxied to kwok's kubelet API: at the node's InternalIP
                // (127.0.0.1; its Hostname does not resolve), verified with the CA.
                arg("kubelet-preferred-address-types", "InternalIP"),
                arg("kubelet-certificate-authority", creds.ca_cert.display()),
                arg("profiling", "false"),
                arg("v", 0),
            ],
            dir.join("kube-apiserver.log"),
        )?;
        let client = client_for(&server, creds)?;
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(st) = api.exited() {
                return Err(died(&api, st));
            }
            let req = http::Request::get("/readyz").body(Vec::new());
            if let Ok(req) = req
                && let Ok(body) = client.request_text(req).await
                && body.trim() == "ok"
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::Start(format!(
                    "kube-apiserver was not ready within {} s:\n{}",
                    READY_WITHIN.as_secs(),
                    api.log_tail(4000)
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok((server, vec![etcd, api]))
    }

    fn write_kubeconfig(&mut self) -> Result<(), Error> {
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: testenv\n  cluster:\n    \
             server: {server}\n    certificate-authority: {ca}\nusers:\n- name: admin\n  \
             user:\n    token: {token}\ncontexts:\n- name: testenv\n  context:\n    \
             cluster: testenv\n    user: admin\n    namespace: default\n\
             current-context: testenv\n",
            server = self.server,
            ca = self.creds.ca_cert.display(),
            token = self.creds.token,
        );
        std::fs::write(&self.kubeconfig, yaml).map_err(|e| Error::io(&self.kubeconfig, e))
    }

    /// kube-controller-manager, kube-scheduler, and kwok with its node when kwok exists.
    async fn start_controllers(&mut self) -> Result<(), Error> {
        let kc = arg("kubeconfig", self.kubeconfig.display());
        let kcm = Proc::start(
            "kube-controller-manager",
            &self.bin.join("kube-controller-manager"),
            &[
                kc.clone(),
                arg("leader-elect", "false"),
                arg("secure-port", 0),
                arg(
                    "service-account-private-key-file",
                    self.creds.sa_key.display(),
                ),
                arg("root-ca-file", self.creds.ca_cert.display()),
                arg("use-service-account-credentials", "false"),
                arg("v", 0),
            ],
            self.dir.join("kube-controller-manager.log"),
        )?;
        let sched = Proc::start(
            "kube-scheduler",
            &self.bin.join("kube-scheduler"),
            &[
                kc.clone(),
                arg("leader-elect", "false"),
                arg("secure-port", 0),
                arg("v", 0),
            ],
            self.dir.join("kube-scheduler.log"),
        )?;
        let mut procs = vec![kcm, sched];
        let stages = self.bin.join("kwok-stages.yaml");
        if self.bin.join("kwok").is_file() && stages.is_file() {
            let config = super::pods::write_kwok_config(&self.dir, &stages)?;
            // kwok's kubelet API (container logs): the node's InternalIP and
            // daemonEndpoints.kubeletEndpoint.Port, which the API server proxies to.
            let port = free_port()?;
            procs.push(Proc::start(
                "kwok",
                &self.bin.join("kwok"),
                &[
                    kc,
                    arg("config", config.display()),
                    arg("manage-all-nodes", "false"),
                    arg(
                        "manage-nodes-with-annotation-selector",
                        "kwok.x-k8s.io/node=fake",
                    ),
                    arg("cidr", "10.0.1.0/24"),
                    arg("node-ip", "127.0.0.1"),
                    arg("node-port", port),
                    arg("server-address", format!("127.0.0.1:{port}")),
                    arg("tls-cert-file", self.creds.kubelet_cert.display()),
                    arg("tls-private-key-file", self.creds.kubelet_key.display()),
                ],
                self.dir.join("kwok.log"),
            )?);
            self.kwok = true;
        }
        self.procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(procs);
        // Give them a moment; a process that dies at once (a bad flag) is reported now.
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.check_alive()?;
        if self.kwok {
            super::pods::add_fake_node(self).await?;
        }
        Ok(())
    }

    /// An error naming the first process that has exited, with the end of its log.
    ///
    /// # Errors
    /// That process's exit.
    pub fn check_alive(&self) -> Result<(), Error> {
        let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        for p in procs.iter_mut() {
            if let Some(st) = p.exited() {
                return Err(died(p, st));
            }
        }
        Ok(())
    }

    /// A new client, authenticated as the admin (`system:masters`). Call it inside the
    /// Tokio runtime that will use it.
    ///
    /// # Panics
    /// When the client cannot be built (never, for a started environment).
    pub fn client(&self) -> Client {
        client_for(&self.server, &self.creds).expect("a client for the test API server")
    }

    /// Creates a fresh namespace named after `test` (lower-cased, shortened, with a
    /// random suffix) and returns it with a client whose default namespace it is.
    ///
    /// # Errors
    /// The API server refused.
    pub async fn namespace(&self, test: &str) -> Result<TestNamespace, Error> {
        use k8s_openapi::api::core::v1::Namespace;
        let mut base: String = test
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        base.truncate(40);
        let base = base.trim_matches('-');
        let name = format!(
            "{}-{:06x}",
            if base.is_empty() { "t" } else { base },
            rand24()
        );
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.clone());
        ns.metadata.labels = Some([("george.dev/testenv".to_string(), "true".to_string())].into());
        let client = self.client();
        kube::Api::<Namespace>::all(client)
            .create(&Default::default(), &ns)
            .await?;
        let mut cfg = self.config()?;
        cfg.default_namespace = name.clone();
        let client = Client::try_from(cfg)?;
        Ok(TestNamespace { name, client })
    }

    /// The admin's client configuration, to adjust (e.g. `auth_info.impersonate`, to act
    /// as a service account and test its RBAC) before `kube::Client::try_from`.
    ///
    /// # Errors
    /// Never, for a started environment.
    pub fn config(&self) -> Result<kube::Config, Error> {
        config_for(&self.server, &self.creds)
    }

    /// The API server's URL (`https://127.0.0.1:<port>`).
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// A kubeconfig file for the admin (CA file, token), for other programs.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The CA certificate (PEM file) that signed the API server's certificate.
    pub fn ca_cert_path(&self) -> &Path {
        &self.creds.ca_cert
    }

    /// The admin's bearer token.
    pub fn admin_token(&self) -> &str {
        &self.creds.token
    }

    /// The directory holding the processes' logs and data.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether kwok runs: then pods are scheduled on its node [`TestEnv::node_name`] and
    /// become Running and Ready by themselves, and it serves the logs of the containers
    /// named in [`LOGGED_CONTAINERS`](super::LOGGED_CONTAINERS) (see
    /// [`TestEnv::write_container_log`]); otherwise use
    /// [`mark_pods_ready`](super::mark_pods_ready).
    pub fn has_kwok(&self) -> bool {
        self.kwok
    }

    /// The fake node kwok manages (when [`TestEnv::has_kwok`]).
    pub fn node_name(&self) -> &str {
        NODE
    }

    /// The directory the binaries were started from.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// The PIDs and names of the running processes.
    pub fn processes(&self) -> Vec<(&'static str, u32)> {
        let procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        procs.iter().map(|p| (p.name(), p.pid())).collect()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Controllers first, the API server, then etcd.
        let mut procs = std::mem::take(&mut *self.procs.lock().unwrap_or_else(|e| e.into_inner()));
        while procs.pop().is_some() {}
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn died(p: &Proc, st: std::process::ExitStatus) -> Error {
    Error::Start(format!(
        "{} exited ({st}); the end of {}:\n{}",
        p.name(),
        p.log().display(),
        p.log_tail(4000)
    ))
}

fn config_for(server: &str, creds: &Credentials) -> Result<kube::Config, Error> {
    let url = server
        .parse()
        .map_err(|e| Error::Start(format!("{server}: {e}")))?;
    let mut cfg = kube::Config::new(url);
    cfg.root_cert = Some(vec![creds.ca_der.clone()]);
    cfg.auth_info.token = Some(secrecy::SecretString::from(creds.token.clone()));
    cfg.read_timeout = Some(Duration::from_secs(60));
    Ok(cfg)
}

fn client_for(server: &str, creds: &Credentials) -> Result<Client, Error> {
    Ok(Client::try_from(config_for(server, creds)?)?)
}

fn rand24() -> u32 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    (h.finish() & 0xff_ffff) as u32
}
