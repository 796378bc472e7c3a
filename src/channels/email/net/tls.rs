//! TLS for the mail clients (EM-1, EO-1): a TCP connection to `host:port`, wrapped in TLS from the start
//! ([`TlsMode::Implicit`]), upgraded later by the protocol's own command ([`upgrade`], after IMAP `STARTTLS` or POP3
//! `STLS`), or left plain ([`TlsMode::None`]).
//!
//! What it owns: the one stream type the IMAP and POP3 clients speak over ([`NetStream`]), the rustls client
//! configurations (ring provider, Mozilla's roots from `webpki-roots`), and the verifier that accepts any
//! certificate. That verifier is used only when the channel says `tls_insecure` (a self-signed server that the admin
//! chose to trust); without it a bad certificate is a [`NetError::Tls`] naming the reason.
//! SMTP does its TLS through lettre (see `smtp.rs`), with the same two policies.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{Endpoint, NetError, TlsMode};

/// A connection to a mail server, plain or TLS.
pub enum NetStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl NetStream {
    pub fn is_tls(&self) -> bool {
        matches!(self, NetStream::Tls(_))
    }
}

impl fmt::Debug for NetStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetStream::Plain(s) => f.debug_tuple("Plain").field(&s.peer_addr().ok()).finish(),
            NetStream::Tls(s) => f.debug_tuple("Tls").field(&s.get_ref().0.peer_addr().ok()).finish(),
        }
    }
}

impl AsyncRead for NetStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NetStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_flush(cx),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            NetStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Connect to the endpoint: TLS right away for [`TlsMode::Implicit`], plain TCP otherwise (for
/// [`TlsMode::Starttls`] the protocol client asks the server and then calls [`upgrade`]).
pub async fn connect(ep: &Endpoint) -> Result<NetStream, NetError> {
    // Resolved and judged by the outgoing-connection policy; the TLS below still verifies `ep.host`.
    let tcp = ep
        .policy
        .connect_tcp(&ep.host, ep.port)
        .await
        .map_err(|source| NetError::Connect { addr: format!("{}:{}", ep.host, ep.port), source })?;
    // Commands are small and answered one by one: do not let Nagle hold them back.
    let _ = tcp.set_nodelay(true);
    let stream = NetStream::Plain(tcp);
    match ep.tls {
        TlsMode::Implicit => upgrade(stream, ep).await,
        TlsMode::Starttls | TlsMode::None => Ok(stream),
    }
}

/// The TLS handshake over a plain connection (implicit TLS, or after the server agreed to `STARTTLS`/`STLS`).
/// The certificate must be valid for `ep.host` unless `ep.tls_insecure`.
pub async fn upgrade(stream: NetStream, ep: &Endpoint) -> Result<NetStream, NetError> {
    let tcp = match stream {
        NetStream::Plain(tcp) => tcp,
        NetStream::Tls(_) => return Err(NetError::Protocol("the connection is already encrypted".into())),
    };
    let name = ServerName::try_from(ep.host.clone())
        .map_err(|_| NetError::Tls { host: ep.host.clone(), message: "not a valid host name for TLS".into() })?;
    let connector = TlsConnector::from(client_config(ep.tls_insecure));
    let tls = connector.connect(name, tcp).await.map_err(|e| NetError::Tls {
        host: ep.host.clone(),
        // rustls reports e.g. "invalid peer certificate: UnknownIssuer" inside the io::Error.
        message: e.to_string(),
    })?;
    Ok(NetStream::Tls(Box::new(tls)))
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

/// The client configuration: verifying against Mozilla's roots, or (`insecure`) accepting any certificate.
/// Built once per process for each of the two.
pub fn client_config(insecure: bool) -> Arc<ClientConfig> {
    static VERIFYING: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    static INSECURE: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let cell = if insecure { &INSECURE } else { &VERIFYING };
    cell.get_or_init(|| {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default TLS versions");
        let config = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Arc::new(config)
    })
    .clone()
}

/// Accepts any server certificate (still checking that the handshake is signed by the key in it), for servers the
/// admin marked `tls_insecure`. The connection is encrypted but not authenticated.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
