//! The test control plane's credentials, generated with `rcgen`: a throw-away CA, the API
//! server's serving certificate for 127.0.0.1 and localhost signed by it, kwok's
//! kubelet-like server's certificate for 127.0.0.1 (the API server verifies it with the
//! CA when it proxies `pods/log`), the service-account signing key, and the admin token.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use super::Error;

/// The files the processes read, under the environment's directory.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    /// The CA certificate (PEM) clients trust.
    pub ca_cert: PathBuf,
    /// The CA certificate, DER, for `kube::Config::root_cert`.
    pub ca_der: Vec<u8>,
    /// The serving certificate (PEM).
    pub serving_cert: PathBuf,
    /// Its private key (PEM).
    pub serving_key: PathBuf,
    /// The serving certificate of kwok's kubelet API (PEM), for 127.0.0.1.
    pub kubelet_cert: PathBuf,
    /// Its private key (PEM).
    pub kubelet_key: PathBuf,
    /// The service-account signing key (PEM, PKCS#8).
    pub sa_key: PathBuf,
    /// Its public half (PEM), which verifies the tokens.
    pub sa_pub: PathBuf,
    /// `--token-auth-file`: one line, the admin token in `system:masters`.
    pub token_file: PathBuf,
    /// The admin token.
    pub token: String,
}

fn rc(e: rcgen::Error) -> Error {
    Error::Start(format!("generating certificates: {e}"))
}

fn write(path: &Path, contents: &str) -> Result<(), Error> {
    std::fs::write(path, contents).map_err(|e| Error::io(path, e))
}

/// Generates the credentials into `dir`.
pub(crate) fn generate(dir: &Path) -> Result<Credentials, Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "george-k8s testenv CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(rc)?).map_err(rc)?;

    let (cert, key) = serving(
        &ca,
        "kube-apiserver",
        &[
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
        ],
    )?;
    let (kubelet_cert, kubelet_key) = serving(&ca, "kwok-kubelet", &["localhost"])?;

    let sa = KeyPair::generate().map_err(rc)?;
    let token = format!("george-admin-{:016x}{:016x}", rand64(), rand64());

    let creds = Credentials {
        ca_cert: dir.join("ca.pem"),
        ca_der: ca.der().to_vec(),
        serving_cert: dir.join("apiserver.pem"),
        serving_key: dir.join("apiserver-key.pem"),
        kubelet_cert: dir.join("kubelet.pem"),
        kubelet_key: dir.join("kubelet-key.pem"),
        sa_key: dir.join("sa-key.pem"),
        sa_pub: dir.join("sa-pub.pem"),
        token_file: dir.join("tokens.csv"),
        token,
    };
    write(&creds.ca_cert, &ca.pem())?;
    write(&creds.serving_cert, &cert.pem())?;
    write(&creds.serving_key, &key.serialize_pem())?;
    write(&creds.kubelet_cert, &kubelet_cert.pem())?;
    write(&creds.kubelet_key, &kubelet_key.serialize_pem())?;
    write(&creds.sa_key, &sa.serialize_pem())?;
    write(&creds.sa_pub, &sa.public_key_pem())?;
    write(
        &creds.token_file,
        &format!("{},george-admin,george-admin,system:masters\n", creds.token),
    )?;
    Ok(creds)
}

/// A serving certificate signed by `ca` for `names` and 127.0.0.1, and its key.
fn serving(
    ca: &CertifiedIssuer<'_, KeyPair>,
    common_name: &str,
    names: &[&str],
) -> Result<(rcgen::Certificate, KeyPair), Error> {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .map_err(rc)?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(rc)?;
    let cert = params.signed_by(&key, ca).map_err(rc)?;
    Ok((cert, key))
}

/// 64 random bits from the OS (via std's hasher seeds; enough for a test token).
fn rand64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
