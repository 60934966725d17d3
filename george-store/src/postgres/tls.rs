//! TLS for PostgreSQL connections with rustls: tokio-postgres's `MakeTlsConnect` over
//! a `rustls::ClientConfig` built by [`tls_config`](super::tls_config), and the error
//! naming the `sslmode` and the cause of a failure.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_postgres::Socket;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use super::PgSslMode;

/// PostgreSQL's `SSLRequest` message: length 8, request code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Makes one [`RustlsConnector`] per connection. With no client configuration
/// (`sslmode=disable`) it never offers TLS.
#[derive(Clone)]
pub(crate) struct RustlsConnect {
    config: Option<Arc<ClientConfig>>,
    mode: PgSslMode,
    /// Whether the connector sends the `SSLRequest` itself (tokio-postgres is then set
    /// to direct negotiation, so that every failure passes through [`TlsError`]).
    ssl_request: bool,
}

impl RustlsConnect {
    /// A connector for `mode` with `config` (`None`: never TLS).
    pub(crate) fn new(
        config: Option<Arc<ClientConfig>>,
        mode: PgSslMode,
        ssl_request: bool,
    ) -> Self {
        RustlsConnect {
            config,
            mode,
            ssl_request,
        }
    }
}

impl MakeTlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnector;
    type Error = TlsError;

    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnector, TlsError> {
        let name = match ServerName::try_from(host) {
            Ok(name) => name.to_owned(),
            // Only verify-full needs the name; the others send no SNI for it.
            Err(_) if self.mode != PgSslMode::VerifyFull => {
                ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into())
            }
            Err(_) => return Err(TlsError::new(self.mode, host, TlsFailure::HostName)),
        };
        Ok(RustlsConnector {
            config: self.config.clone(),
            mode: self.mode,
            ssl_request: self.ssl_request,
            host: host.to_string(),
            name,
        })
    }
}

/// Negotiates TLS on one connection.
pub(crate) struct RustlsConnector {
    config: Option<Arc<ClientConfig>>,
    mode: PgSslMode,
    ssl_request: bool,
    host: String,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for RustlsConnector {
    type Stream = RustlsStream;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream, TlsError>> + Send>>;

    fn connect(self, mut stream: Socket) -> Self::Future {
        Box::pin(async move {
            let fail = |failure| TlsError::new(self.mode, &self.host, failure);
            let Some(config) = self.config.clone() else {
                return Err(fail(TlsFailure::Off));
            };
            if self.ssl_request {
                stream
                    .write_all(&SSL_REQUEST)
                    .await
                    .map_err(|e| fail(TlsFailure::Io(e)))?;
                let mut answer = [0u8; 1];
                stream
                    .read_exact(&mut answer)
                    .await
                    .map_err(|e| fail(TlsFailure::Io(e)))?;
                if answer[0] != b'S' {
                    return Err(fail(TlsFailure::Refused(answer[0])));
                }
            }
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(self.name.clone(), stream)
                .await
                .map_err(|e| fail(TlsFailure::Handshake(e)))?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

/// An encrypted connection.
pub(crate) struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl TlsStream for RustlsStream {
    /// No channel binding yet: SCRAM authenticates without it (as with
    /// `channel_binding=prefer` against a client that cannot bind).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// Why TLS failed on a connection; its text names the `sslmode`, the host and the cause.
#[derive(Debug)]
pub(crate) struct TlsError {
    mode: PgSslMode,
    host: String,
    failure: TlsFailure,
}

#[derive(Debug)]
enum TlsFailure {
    /// verify-full with a host that is not a DNS name or an IP address.
    HostName,
    /// TLS was asked of a connector without a client configuration.
    Off,
    /// The server answered the `SSLRequest` with this byte, not `S`.
    Refused(u8),
    /// The connection failed while asking for TLS.
    Io(io::Error),
    /// The TLS handshake failed (rustls's error inside, when it is rustls's).
    Handshake(io::Error),
}

impl TlsError {
    fn new(mode: PgSslMode, host: &str, failure: TlsFailure) -> Self {
        TlsError {
            mode,
            host: host.to_string(),
            failure,
        }
    }

    /// Whether a retry may succeed: the connection broke, as opposed to the server
    /// refusing TLS or its certificate being refused.
    pub(crate) fn is_transient(&self) -> bool {
        match &self.failure {
            TlsFailure::Io(_) => true,
            TlsFailure::Handshake(e) => rustls_error(e).is_none(),
            _ => false,
        }
    }
}

/// The rustls error inside a handshake's I/O error.
fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mode, host) = (self.mode, &self.host);
        write!(f, "sslmode={mode}: ")?;
        match &self.failure {
            TlsFailure::HostName => write!(
                f,
                "host {host:?} is neither a DNS name nor an IP address, so the server's \
                 certificate cannot be checked against it"
            ),
            TlsFailure::Off => write!(f, "TLS is off for this connection"),
            TlsFailure::Refused(answer) => write!(
                f,
                "the server at {host} does not accept TLS connections (it answered {:?} \
                 to the TLS request; is `ssl` on in its configuration?)",
                char::from(*answer)
            ),
            TlsFailure::Io(e) => write!(
                f,
                "the connection to {host} broke while asking for TLS: {e}"
            ),
            TlsFailure::Handshake(e) => match rustls_error(e) {
                Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => write!(
                    f,
                    "the certificate of {host} is not signed by a CA of sslrootcert \
                     (unknown issuer)"
                ),
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => write!(
                    f,
                    "the certificate of the server does not name the host {host:?}: {e}"
                ),
                Some(rustls::Error::InvalidCertificate(_)) => {
                    write!(f, "the certificate of {host} is refused: {e}")
                }
                _ => write!(f, "the TLS handshake with {host} failed: {e}"),
            },
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.failure {
            TlsFailure::Io(e) | TlsFailure::Handshake(e) => Some(e),
            _ => None,
        }
    }
}
