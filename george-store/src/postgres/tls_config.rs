//! The `rustls::ClientConfig` of a [`TlsPlan`]: which CA certificates, and how much of
//! the server's certificate is checked (all of it for `verify-full`, the chain for
//! `verify-ca` or when a root certificate is given, nothing otherwise).
//!
//! rustls with the aws-lc-rs provider (the one reqwest already uses in this
//! workspace), chosen explicitly so that no process-wide default provider is needed.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::PgSslMode;
use super::sslmode::{RootCerts, TlsPlan};
use crate::error::StoreError;

/// The client configuration for `plan`; `None` when its mode is `disable`.
pub(crate) fn client_config(plan: &TlsPlan) -> Result<Option<Arc<ClientConfig>>, StoreError> {
    let mode = plan.mode;
    if mode == PgSslMode::Disable {
        return Ok(None);
    }
    let fail = |what: String| StoreError::PgConfig(format!("sslmode={mode}: {what}"));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let roots = plan
        .roots
        .as_ref()
        .map(load_roots)
        .transpose()
        .map_err(fail)?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?;
    let mut config = match (mode, roots) {
        (PgSslMode::VerifyFull, Some(roots)) => {
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| fail(e.to_string()))?;
            builder.with_webpki_verifier(verifier).with_no_client_auth()
        }
        (_, Some(roots)) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly { roots, algorithms }))
            .with_no_client_auth(),
        // Refused earlier by TlsPlan::decide; checked again, since the alternative is
        // checking nothing.
        (m, None) if m.verifies_chain() => return Err(fail("no sslrootcert".into())),
        (_, None) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked { algorithms }))
            .with_no_client_auth(),
    };
    // What libpq sends (PostgreSQL 17 requires it for direct TLS negotiation).
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// The CA certificates of `roots`; the error says which file and why.
fn load_roots(roots: &RootCerts) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::File(path) => {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cannot read sslrootcert {shown}: {e}"))?;
            add_all(&mut store, certs, path)?;
        }
        RootCerts::System => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(format!(
                    "sslrootcert=system: no trusted CA certificates found on this system ({})",
                    errors.join("; ")
                ));
            }
            // Some systems ship certificates webpki cannot read; the others still count.
            store.add_parsable_certificates(found.certs);
        }
    }
    Ok(Arc::new(store))
}

fn add_all(
    store: &mut RootCertStore,
    certs: Vec<CertificateDer<'static>>,
    path: &Path,
) -> Result<(), String> {
    let shown = path.display();
    if certs.is_empty() {
        return Err(format!("sslrootcert {shown} holds no PEM certificate"));
    }
    for (i, cert) in certs.into_iter().enumerate() {
        store.add(cert).map_err(|e| {
            format!(
                "sslrootcert {shown}: certificate {} is not a usable CA certificate: {e}",
                i + 1
            )
        })?;
    }
    Ok(())
}

/// `verify-ca`, and `require` / `prefer` / `allow` with a root certificate: the chain
/// must lead to one of `roots`; the name in the certificate is not looked at.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `require` / `prefer` / `allow` without a root certificate: any certificate (the
/// connection is encrypted, the server is not authenticated), as in libpq. The
/// handshake's signatures are still checked against the certificate presented.
#[derive(Debug)]
struct Unchecked {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
