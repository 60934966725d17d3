//! `PgStateStore` over TLS, each `sslmode` as libpq means it, against the CI server
//! (`.ci/run` starts it with `ssl=on` and a certificate for 127.0.0.1 and localhost
//! signed by a throwaway CA, and exports that CA as `GEORGE_TEST_POSTGRES_TLS_CA`).
//!
//! Each test is an attack or a misconfiguration the mode must stop (a server with a
//! certificate from another CA, a certificate for another host) or a setting that must
//! keep working; "encrypted" is checked on the server (`pg_stat_ssl` of the store's
//! own connections), not taken on trust. Without `GEORGE_TEST_POSTGRES_URL` and the CA
//! the tests say loudly that they did not run; under CI they fail instead.
#![cfg(feature = "postgres")]

#[macro_use]
mod pg_support;

use std::path::Path;

use george_core::ErrorKind;
use george_core::conformance::state_store::{run_all, sample_job};
use george_core::state::NewEvent;
use george_core::store::{JobWrite, StateStore};
use george_store::{PgConfig, PgSslMode, PgStateStore};
use pg_support::TestSchema;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA that signed nothing the test server presents.
const OTHER_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBpjCCAUugAwIBAgIUaAri+wXyJOZmEl0l1hQBonn+OqIwCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUTm90IHRoZSBHZW9yZ2UgQ0kgQ0EwIBcNMjYxMTI5MjAxMzAy
WhgPMjEyNjExMDUyMDEzMDJaMB8xHTAbBgNVBAMMFE5vdCB0aGUgR2VvcmdlIENJ
IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEuMUwnrISMRLbjv8iDXKDuJSj
QEMvrSIDyCNrZn2CWwrldFPqq3f1BGreOGOZj5ezX6JD6/PDStzqr+nA4PZIzqNj
MGEwHQYDVR0OBBYEFPpDesJc7bnt5xWfKYCQqWD61UJjMB8GA1UdIwQYMBaAFPpD
esJc7bnt5xWfKYCQqWD61UJjMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQD
AgEGMAoGCCqGSM49BAMCA0kAMEYCIQDhJ/lLie52wR+Mhib8G/YCHOXPQsvewlMo
Xz3i03sn2AIhALfmsYrLQepNNb9lsLPP7OSyFBkSEBM6befuRWs+LI1B
-----END CERTIFICATE-----
";

/// `OTHER_CA` in a file that lives as long as the returned guard.
fn other_ca() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, OTHER_CA.as_bytes()).unwrap();
    file
}

/// A unique `application_name`, to find the store's connections in `pg_stat_ssl`.
fn app_name(test: &str) -> String {
    format!("george_tls_{test}_{:08x}", fastrand::u32(..))
}

/// Whether each of the server's connections named `app` is encrypted, and with which
/// protocol, asked over a separate plain connection.
async fn tls_of(schema: &TestSchema, app: &str) -> Vec<(bool, Option<String>)> {
    let (client, conn) = tokio_postgres::connect(schema.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT s.ssl, s.version FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// Asserts that the store's connections (at least one) are all encrypted, or all not.
async fn assert_encrypted(schema: &TestSchema, app: &str, encrypted: bool) {
    let seen = tls_of(schema, app).await;
    assert!(!seen.is_empty(), "no connection named {app} on the server");
    for (ssl, version) in &seen {
        assert_eq!(*ssl, encrypted, "{app}: {seen:?}");
        if encrypted {
            let version = version.as_deref().unwrap_or("");
            assert!(version.starts_with("TLSv1."), "{app}: {seen:?}");
        }
    }
}

/// A write and the reads of it, as the conformance suite does them.
async fn write_and_read(store: &PgStateStore, name: &str) {
    let job = sample_job(name);
    let event = NewEvent::new(1, "engine", "job.created", None, "");
    let revision = store
        .commit(JobWrite::create(job).event(event))
        .await
        .unwrap();
    assert_eq!(revision, 1);
    let stored = store.get_job(name).await.unwrap().expect("stored");
    assert_eq!(stored.revision, 1);
    assert_eq!(store.events(name, 0, 10).await.unwrap().len(), 1);
}

/// `key=value` connection string to the test server under the host name `host`,
/// connecting to the test server's IP address (`hostaddr`), so that only the name the
/// certificate is checked against changes.
fn as_host(schema: &TestSchema, host: &str, tls: &str) -> String {
    let pg: tokio_postgres::Config = schema.url().parse().unwrap();
    let addr = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        other => panic!("the TLS tests need a TCP test server, not {other:?}"),
    };
    assert!(
        addr.parse::<std::net::IpAddr>().is_ok(),
        "the TLS tests need GEORGE_TEST_POSTGRES_URL to name the server by IP address"
    );
    format!(
        "host={host} hostaddr={addr} port={} user={} dbname={} {tls}",
        pg.get_ports().first().copied().unwrap_or(5432),
        pg.get_user().unwrap_or("postgres"),
        pg.get_dbname().unwrap_or("postgres"),
    )
}

/// The store's connect error, which must be one: its text, kind and retry status.
async fn refused(config: PgConfig) -> george_core::Error {
    match PgStateStore::connect_with(config).await {
        Ok(store) => panic!("connected: {store:?}"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_ca_encrypts_and_passes_conformance() {
    let (schema, ca) = tls_or_skip!("verify_full_with_the_ca_encrypts_and_passes_conformance");
    let app = app_name("verify_full");
    let config = schema
        .config()
        .with_ssl_mode(PgSslMode::VerifyFull)
        .with_ssl_root_cert(&ca)
        .with_application_name(&app);
    let store = PgStateStore::connect_with(config).await.unwrap();
    run_all(&store).await;
    write_and_read(&store, "tls-verify-full").await;
    assert_encrypted(&schema, &app, true).await;
}

#[tokio::test(flavor = "current_thread")]
async fn tls_settings_in_the_url_are_read_as_libpq_reads_them() {
    let (schema, ca) = tls_or_skip!("tls_settings_in_the_url_are_read_as_libpq_reads_them");
    let app = app_name("url");
    let ca = ca.to_str().expect("a UTF-8 CA path");
    let encoded: String = ca
        .replace('%', "%25")
        .replace(' ', "%20")
        .replace('&', "%26");
    let sep = if schema.url().contains('?') { '&' } else { '?' };
    let url = format!(
        "{}{sep}sslmode=verify-full&sslrootcert={encoded}&application_name={app}",
        schema.url()
    );
    let config = PgConfig::new(url).with_schema(schema.config().schema);
    let store = PgStateStore::connect_with(config).await.unwrap();
    write_and_read(&store, "tls-url").await;
    assert_encrypted(&schema, &app, true).await;
    // localhost is in the certificate too; the key=value form reads the same settings.
    let app = app_name("localhost");
    let tls = format!("sslmode=verify-full sslrootcert='{ca}' application_name={app}");
    let config =
        PgConfig::new(as_host(&schema, "localhost", &tls)).with_schema(&schema.config().schema);
    let store = PgStateStore::connect_with(config).await.unwrap();
    write_and_read(&store, "tls-localhost").await;
    assert_encrypted(&schema, &app, true).await;
}

#[tokio::test(flavor = "current_thread")]
async fn verify_full_without_a_ca_is_refused_before_connecting() {
    let (schema, _ca) = tls_or_skip!("verify_full_without_a_ca_is_refused_before_connecting");
    for mode in [PgSslMode::VerifyFull, PgSslMode::VerifyCa] {
        let err = refused(schema.config().with_ssl_mode(mode)).await;
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let text = err.to_string();
        assert!(text.contains(&format!("sslmode={mode}")), "{text}");
        assert!(text.contains("sslrootcert"), "{text}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_server_certificate_from_another_ca_is_refused() {
    let (schema, _ca) = tls_or_skip!("a_server_certificate_from_another_ca_is_refused");
    let other = other_ca();
    // require with a root certificate checks the chain too, as in libpq.
    for mode in [
        PgSslMode::VerifyFull,
        PgSslMode::VerifyCa,
        PgSslMode::Require,
    ] {
        let config = schema
            .config()
            .with_ssl_mode(mode)
            .with_ssl_root_cert(other.path());
        let err = refused(config).await;
        assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
        assert!(
            !err.is_retryable(),
            "a refused certificate is not transient: {err}"
        );
        let text = err.to_string();
        assert!(text.contains(&format!("sslmode={mode}")), "{text}");
        assert!(text.contains("not signed by a CA of sslrootcert"), "{text}");
    }
    let missing = Path::new("/nonexistent/george-ca.pem");
    let err = refused(
        schema
            .config()
            .with_ssl_mode(PgSslMode::VerifyFull)
            .with_ssl_root_cert(missing),
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string().contains("/nonexistent/george-ca.pem"),
        "{err}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn verify_full_refuses_a_host_the_certificate_does_not_name() {
    let (schema, ca) = tls_or_skip!("verify_full_refuses_a_host_the_certificate_does_not_name");
    let ca = ca.to_str().expect("a UTF-8 CA path");
    let host = "george-tls-test.invalid";
    let url = as_host(
        &schema,
        host,
        &format!("sslmode=verify-full sslrootcert='{ca}'"),
    );
    let err = refused(PgConfig::new(url).with_schema(&schema.config().schema)).await;
    assert!(!err.is_retryable(), "{err}");
    let text = err.to_string();
    assert!(text.contains("sslmode=verify-full"), "{text}");
    assert!(
        text.contains(&format!("does not name the host \"{host}\"")),
        "{text}"
    );
    // verify-ca checks the chain only: the same connection is accepted.
    let app = app_name("verify_ca");
    let tls = format!("sslmode=verify-ca sslrootcert='{ca}' application_name={app}");
    let config = PgConfig::new(as_host(&schema, host, &tls)).with_schema(&schema.config().schema);
    let store = PgStateStore::connect_with(config).await.unwrap();
    write_and_read(&store, "tls-verify-ca").await;
    assert_encrypted(&schema, &app, true).await;
}

#[tokio::test(flavor = "current_thread")]
async fn require_encrypts_without_a_ca() {
    let (schema, _ca) = tls_or_skip!("require_encrypts_without_a_ca");
    let app = app_name("require");
    let config = schema
        .config()
        .with_ssl_mode(PgSslMode::Require)
        .with_application_name(&app);
    let store = PgStateStore::connect_with(config).await.unwrap();
    write_and_read(&store, "tls-require").await;
    assert_encrypted(&schema, &app, true).await;
}

#[tokio::test(flavor = "current_thread")]
async fn prefer_encrypts_and_falls_back_to_plain_when_tls_fails() {
    let (schema, _ca) = tls_or_skip!("prefer_encrypts_and_falls_back_to_plain_when_tls_fails");
    // The default mode is prefer: the server offers TLS, so it is used.
    let app = app_name("prefer");
    let store = PgStateStore::connect_with(schema.config().with_application_name(&app))
        .await
        .unwrap();
    write_and_read(&store, "tls-prefer").await;
    assert_encrypted(&schema, &app, true).await;
    // With a root certificate that does not match, the handshake fails: libpq's prefer
    // then connects without TLS.
    let other = other_ca();
    let app = app_name("prefer_fallback");
    let config = schema
        .config()
        .with_ssl_mode(PgSslMode::Prefer)
        .with_ssl_root_cert(other.path())
        .with_application_name(&app);
    let store = PgStateStore::connect_with(config).await.unwrap();
    write_and_read(&store, "tls-prefer-fallback").await;
    assert_encrypted(&schema, &app, false).await;
}

#[tokio::test(flavor = "current_thread")]
async fn disable_and_allow_connect_in_plain() {
    let (schema, _ca) = tls_or_skip!("disable_and_allow_connect_in_plain");
    for (mode, name) in [(PgSslMode::Disable, "disable"), (PgSslMode::Allow, "allow")] {
        let app = app_name(name);
        let config = schema
            .config()
            .with_ssl_mode(mode)
            .with_application_name(&app);
        let store = PgStateStore::connect_with(config).await.unwrap();
        write_and_read(&store, &format!("tls-{name}")).await;
        assert_encrypted(&schema, &app, false).await;
    }
}

/// A server that answers the TLS request with `N`, as PostgreSQL does with `ssl` off
/// (or an attacker stripping TLS); returns its port and the requests it got.
async fn server_refusing_tls() -> (u16, tokio::sync::mpsc::UnboundedReceiver<[u8; 8]>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 8];
            if socket.read_exact(&mut request).await.is_ok() {
                let _ = tx.send(request);
                let _ = socket.write_all(b"N").await;
            }
            let _ = socket.read_to_end(&mut Vec::new()).await;
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "current_thread")]
async fn a_server_refusing_tls_is_refused_when_the_mode_demands_it() {
    // Needs no PostgreSQL server: runs everywhere.
    let (port, mut requests) = server_refusing_tls().await;
    let ca = other_ca();
    let url = format!("postgres://george@127.0.0.1:{port}/george");
    for config in [
        PgConfig::new(format!("{url}?sslmode=require")),
        PgConfig::new(&url)
            .with_ssl_mode(PgSslMode::VerifyFull)
            .with_ssl_root_cert(ca.path()),
    ] {
        let mode = config
            .ssl_mode
            .map_or("require".to_string(), |m| m.to_string());
        let config = config.with_connect_timeout(std::time::Duration::from_secs(5));
        let err = refused(config).await;
        assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
        assert!(!err.is_retryable(), "{err}");
        let text = err.to_string();
        assert!(text.contains(&format!("sslmode={mode}")), "{text}");
        assert!(text.contains("does not accept TLS connections"), "{text}");
        // PostgreSQL's SSLRequest: length 8, code 80877103; nothing was sent before it.
        assert_eq!(requests.recv().await, Some([0, 0, 0, 8, 4, 210, 22, 47]));
    }
}
