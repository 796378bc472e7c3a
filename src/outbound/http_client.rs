//! The one outgoing HTTP client ([`HttpClient`]): reqwest (rustls) with
//! - a resolver ([`FilteringResolver`]) that resolves every host name and keeps only the addresses the [`Policy`]
//!   permits (none left: the request fails with [`OutboundError::Refused`] inside reqwest's error);
//! - a check of IP-literal hosts before sending ([`HttpClient::post`]), since reqwest connects to those without
//!   asking a resolver — the URL parser has already turned `2130706433`, `0x7f.1` or `[::ffff:7f00:1]` into the
//!   address it means, and that address is judged;
//! - no proxies (a proxy would resolve the target itself), no redirects (a 3xx is the answer), time limits;
//! - [`drain_capped`]: a response body is read up to [`BODY_CAP`] and dropped, so a receiver answering
//!   gigabytes costs nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::{OutboundError, Policy};

/// How much of a response body is read (then the connection is dropped).
pub const BODY_CAP: usize = 64 * 1024;
/// Connecting (TCP and TLS) may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP client whose every request obeys the [`Policy`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    policy: Policy,
    client: reqwest::Client,
}

impl HttpClient {
    pub fn new(policy: Policy) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("Switchboard/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(FilteringResolver { policy: policy.clone() }))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            // Only a broken TLS backend fails here, and nothing could be sent without one.
            .expect("the HTTP client can be built");
        Self { policy, client }
    }

    /// A POST to `url`, once the URL is known to be acceptable: http(s) with a host, no credentials, and an IP
    /// literal host only if the policy permits it (a host name is judged by the resolver when connecting).
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, OutboundError> {
        self.request(reqwest::Method::POST, url)
    }

    /// A request of any method to `url`, checked as [`HttpClient::post`] is (the Mattermost REST client).
    pub fn request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder, OutboundError> {
        let url = Url::parse(url).map_err(|_| OutboundError::BadUrl)?;
        check_url(&self.policy, &url)?;
        Ok(self.client.request(method, url))
    }

    /// The policy its requests obey (for connections it cannot make itself, such as a WebSocket).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// Whether `url` may be requested: see [`HttpClient::post`].
pub fn check_url(policy: &Policy, url: &Url) -> Result<(), OutboundError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OutboundError::BadUrl);
    }
    if has_credentials(url) {
        return Err(OutboundError::Credentials);
    }
    match url.host() {
        Some(Host::Ipv4(ip)) => policy.check(None, ip.into()),
        Some(Host::Ipv6(ip)) => policy.check(None, ip.into()),
        Some(Host::Domain(_)) => Ok(()),
        None => Err(OutboundError::BadUrl),
    }
}

/// A user name or password in the URL.
pub fn has_credentials(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// The [`OutboundError`] inside a reqwest error, if the policy caused it.
pub fn refusal(e: &reqwest::Error) -> Option<&OutboundError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(found) = s.downcast_ref::<OutboundError>() {
            return Some(found);
        }
        source = s.source();
    }
    None
}

/// Read at most about [`BODY_CAP`] bytes of the body within `limit`, then drop the response (and with it the
/// connection when the body was longer). Returns how many bytes were read.
pub async fn drain_capped(mut response: reqwest::Response, limit: Duration) -> usize {
    let mut read = 0usize;
    let _ = tokio::time::timeout(limit, async {
        while read < BODY_CAP {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
    })
    .await;
    read
}

/// Resolves a host name and keeps the addresses the policy permits for it.
struct FilteringResolver {
    policy: Policy,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port on each address.
            let allowed: Vec<SocketAddr> = policy.resolve(name.as_str(), 0).await?;
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::AllowedInternal;

    fn verdict(policy: &Policy, url: &str) -> Result<(), String> {
        check_url(policy, &Url::parse(url).unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn ip_literal_urls_are_judged_by_the_address_the_parser_gives() {
        let strict = Policy::default();
        for url in [
            "http://127.0.0.1/",
            "http://[::1]:8080/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0:9/",
            "http://[::ffff:127.0.0.1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://017700000001/",
            "http://127.1/",
            "https://[fd00::1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
        ] {
            assert!(verdict(&strict, url).unwrap_err().contains("internal address"), "{url}");
        }
        assert!(verdict(&strict, "https://93.184.216.34/hook").is_ok());
        assert!(verdict(&strict, "https://hooks.example.com/x").is_ok(), "names are judged when resolved");
        let loopback = Policy::new(AllowedInternal::parse("127.0.0.0/8,::1").unwrap());
        assert!(verdict(&loopback, "http://2130706433:8080/").is_ok());
        assert!(verdict(&loopback, "http://[::ffff:127.0.0.1]/").is_ok());
        assert!(verdict(&loopback, "http://169.254.169.254/").is_err());
    }

    #[test]
    fn credentials_and_other_schemes_are_refused() {
        let open = Policy::new(AllowedInternal::parse("0.0.0.0/0,::/0").unwrap());
        assert_eq!(verdict(&open, "https://user:pw@example.com/").unwrap_err(), OutboundError::Credentials.to_string());
        assert!(verdict(&open, "https://user@example.com/").is_err());
        assert!(verdict(&open, "https://:pw@example.com/").is_err());
        assert!(verdict(&open, "ftp://example.com/").is_err());
        assert!(verdict(&open, "file:///etc/passwd").is_err());
    }

    #[tokio::test]
    async fn names_resolving_inside_are_refused_by_the_resolver() {
        let client = HttpClient::new(Policy::default());
        let e = client.post("http://localhost:9/").unwrap().send().await.unwrap_err();
        let refused = refusal(&e).expect("the policy's error is inside reqwest's");
        assert!(refused.is_refused(), "{refused}");
    }
}
