//! Every connection Switchboard makes to the outside — reply webhooks, mailbox hosts (IMAP, POP3), SMTP, and each
//! connector to come — goes through this module (issue #13, DESIGN "one outgoing HTTP/TCP client policy").
//!
//! What it owns:
//! - [`ip::is_internal`]: which addresses are internal (loopback, private, link-local, unique-local, unspecified,
//!   CGNAT, multicast, …, and IPv6 forms carrying such an IPv4 address);
//! - [`AllowedInternal`]: the exceptions from `SWITCHBOARD_ALLOWED_INTERNAL_HOSTS`, parsed once in `config`;
//! - [`Policy`]: the decision, made on the **resolved** address at connect time (a name that resolves to an
//!   internal address is refused, so DNS rebinding gains nothing): [`Policy::resolve`] and
//!   [`Policy::connect_tcp`] for the mail clients;
//! - [`http_client::HttpClient`]: the one HTTP client — reqwest with a resolver that filters, a check of IP-literal hosts
//!   (reqwest does not ask the resolver for those), no proxies, **no redirects**, time limits, URLs with
//!   credentials refused, and response bodies read only up to a small cap and dropped.
//!
//! What it must never do: decide by matching the text of a URL or host name against internal-looking strings
//! (`http://2130706433/` is 127.0.0.1: the URL parser gives the address, the address is judged), or put what a
//! refused target answered into an error.

pub mod http_client;
pub mod ip;
mod policy;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpStream;

pub use policy::AllowedInternal;

/// Why an outgoing connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The target is internal and not allowed by `SWITCHBOARD_ALLOWED_INTERNAL_HOSTS`.
    #[error(
        "{target} is an internal address; outgoing connections to it are refused unless SWITCHBOARD_ALLOWED_INTERNAL_HOSTS allows it"
    )]
    Refused { target: String },
    /// The URL carries a user name or password.
    #[error("the URL carries credentials; they are not sent")]
    Credentials,
    /// Not an http:// or https:// URL with a host.
    #[error("not an http:// or https:// URL")]
    BadUrl,
    /// The name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// No allowed address accepted the connection (the text is the system's reason; callers name the target).
    #[error("{source}")]
    Connect {
        target: String,
        #[source]
        source: std::io::Error,
    },
}

impl OutboundError {
    /// The target was refused by the policy (as opposed to being unreachable).
    pub fn is_refused(&self) -> bool {
        matches!(self, OutboundError::Refused { .. })
    }
}

/// The outgoing-connection policy, built once from the settings and cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allowed: Arc<AllowedInternal>,
}

impl Policy {
    pub fn new(allowed: AllowedInternal) -> Self {
        Self { allowed: Arc::new(allowed) }
    }

    /// Whether `ip`, reached as `host` (`None`: an IP literal), may be connected to.
    pub fn permits(&self, host: Option<&str>, ip: IpAddr) -> bool {
        self.allowed.permits(host, ip)
    }

    /// `Err(Refused)` unless [`Policy::permits`].
    pub fn check(&self, host: Option<&str>, ip: IpAddr) -> Result<(), OutboundError> {
        if self.permits(host, ip) { Ok(()) } else { Err(OutboundError::Refused { target: ip.to_string() }) }
    }

    /// The addresses of `host:port` that may be connected to, in resolver order. An IP literal (also in brackets)
    /// is judged as it is; a name is resolved and each address judged. `Refused` when every address is refused.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, OutboundError> {
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check(None, ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|source| OutboundError::Resolve { host: bare.to_owned(), source })?
            .collect();
        let allowed: Vec<SocketAddr> = found.iter().copied().filter(|a| self.permits(Some(bare), a.ip())).collect();
        match (allowed.is_empty(), found.first()) {
            (false, _) => Ok(allowed),
            (true, Some(first)) => {
                tracing::warn!(host = bare, address = %first.ip(), "outgoing connection refused: internal address");
                Err(OutboundError::Refused { target: format!("{bare} ({})", first.ip()) })
            }
            (true, None) => Err(OutboundError::Resolve {
                host: bare.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            }),
        }
    }

    /// A TCP connection to `host:port` (the mail clients): resolve, drop the refused addresses, connect to the
    /// allowed ones in turn. The caller keeps `host` for TLS (SNI and certificate name).
    pub async fn connect_tcp(&self, host: &str, port: u16) -> Result<TcpStream, OutboundError> {
        let mut last = None;
        for addr in self.resolve(host, port).await? {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(OutboundError::Connect {
            target: format!("{host}:{port}"),
            source: last.unwrap_or_else(|| std::io::ErrorKind::NotFound.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_and_names_are_judged_by_address() {
        let strict = Policy::default();
        for host in ["127.0.0.1", "[::1]", "::ffff:127.0.0.1", "0.0.0.0", "169.254.169.254", "localhost"] {
            let e = strict.resolve(host, 25).await.expect_err(host);
            assert!(e.is_refused(), "{host}: {e}");
        }
        let loopback = Policy::new(AllowedInternal::parse("127.0.0.0/8,::1").unwrap());
        assert_eq!(loopback.resolve("127.0.0.1", 25).await.unwrap(), vec!["127.0.0.1:25".parse().unwrap()]);
        assert_eq!(loopback.resolve("[::1]", 25).await.unwrap(), vec!["[::1]:25".parse().unwrap()]);
        let by_name = loopback.resolve("localhost", 25).await.unwrap();
        assert!(by_name.iter().all(|a| a.ip().is_loopback()), "{by_name:?}");
        assert!(loopback.resolve("10.0.0.1", 25).await.unwrap_err().is_refused());
    }

    #[tokio::test]
    async fn connect_tcp_reaches_only_allowed_addresses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let e = Policy::default().connect_tcp("127.0.0.1", port).await.unwrap_err();
        assert!(e.is_refused(), "{e}");
        let allowed = Policy::new(AllowedInternal::parse("127.0.0.1").unwrap());
        let stream = allowed.connect_tcp("127.0.0.1", port).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap().port(), port);
    }
}
