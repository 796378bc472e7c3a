//! Signed customer links (issue #18 items 5–7; NT-10, HD-12): the one signer of auto-login, rating and unsubscribe
//! URLs, built once at start from the install's secret key and `SWITCHBOARD_PUBLIC_URL`, kept in the app state
//! (handlers) and handed to the outbox dispatcher (notification mail). Signing and checking are
//! `domain::links`; the key is derived from the secret key for this purpose only
//! (`SecretBox::derive_key("customer links")`), never a constant.
//!
//! URLs: `{public_url}/portal/auto-login/{token}` (3 days), `{public_url}/portal/rate/{token}` (7 days),
//! `{public_url}/portal/unsubscribe/{token}` (90 days).

use crate::domain::Rating;
use crate::domain::links::{
    self, AUTO_LOGIN_TTL_SECS, Link, LinkError, RATING_TTL_SECS, UNSUBSCRIBE_TTL_SECS, Verified,
};
use crate::domain::templates::{LinkMaker, PlainLinks, RatingLinks, Recipient, RecipientKind};
use crate::secrets::{DerivedKey, SecretBox};

/// The purpose the links' key is derived for.
pub const KEY_PURPOSE: &str = "customer links";

/// Signs and checks customer links (cheap to clone).
#[derive(Clone)]
pub struct Links {
    key: DerivedKey,
    public_url: String,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links").field("public_url", &self.public_url).finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Links {
    /// The signer of an install: its secret key and its public URL (`SWITCHBOARD_PUBLIC_URL`).
    pub fn new(secrets: &SecretBox, public_url: &str) -> Self {
        Self { key: secrets.derive_key(KEY_PURPOSE), public_url: public_url.trim_end_matches('/').to_owned() }
    }

    /// The signer of the node whose store has its secret key loaded (`server::open_store`).
    pub fn of_store(store: &crate::store::Store, public_url: &str) -> crate::store::StoreResult<Self> {
        Ok(Self::new(store.secrets()?, public_url))
    }

    /// `{public_url}/portal/{path}/{token}` for `link`, good until `expires_at` (Unix seconds). The three methods
    /// below are what mail uses; this is for tests and tools that need another expiry.
    pub fn url_until(&self, link: &Link, expires_at: i64) -> String {
        let path = match link {
            Link::AutoLogin { .. } => "auto-login",
            Link::Rate { .. } => "rate",
            Link::Unsubscribe { .. } => "unsubscribe",
        };
        format!("{}/portal/{path}/{}", self.public_url, links::sign(self.key.bytes(), link, expires_at))
    }

    /// Opens ticket `conversation_id` in the portal signed in as customer `customer_id`; works for 3 days (NT-10).
    pub fn auto_login_url(&self, customer_id: i64, conversation_id: i64) -> String {
        self.url_until(&Link::AutoLogin { customer_id, conversation_id }, unix_now() + AUTO_LOGIN_TTL_SECS)
    }

    /// Records `rating` of ticket `conversation_id` by customer `customer_id`; works for 7 days (HD-12).
    pub fn rating_url(&self, conversation_id: i64, customer_id: i64, rating: Rating) -> String {
        self.url_until(&Link::Rate { conversation_id, customer_id, rating }, unix_now() + RATING_TTL_SECS)
    }

    /// Removes `email` from ticket `conversation_id`'s subscribers; works for 90 days.
    pub fn unsubscribe_url(&self, conversation_id: i64, email: &str) -> String {
        let email = email.trim().to_lowercase();
        self.url_until(&Link::Unsubscribe { conversation_id, email }, unix_now() + UNSUBSCRIBE_TTL_SECS)
    }

    /// Check a token from one of these URLs now.
    pub fn verify(&self, token: &str) -> Result<Verified, LinkError> {
        links::verify(self.key.bytes(), token, unix_now())
    }
}

/// The links notification mail carries (TP-2 `#URL#`, `#RatingLinks#`, `#Unsubscribe#`), signed by [`Links`] within
/// what the notification settings allow: a customer's `#URL#` is an auto-login link only with NT-10 on and never
/// in one CC mail to many (NT-11), which also has no rating and no unsubscribe link (whose would they be?); agents
/// and bare addresses get the plain ticket link (never an auto-login).
pub struct MailLinks<'a> {
    pub links: &'a Links,
    /// NT-10 is on for this mail.
    pub auto_login: bool,
    /// One mail to several subscribers in Cc (NT-11).
    pub cc_mode: bool,
}

impl LinkMaker for MailLinks<'_> {
    fn ticket_url(&self, conversation_id: i64, recipient: &Recipient) -> String {
        match (recipient.kind, recipient.id) {
            (RecipientKind::Customer, Some(customer_id)) if self.auto_login && !self.cc_mode => {
                self.links.auto_login_url(customer_id, conversation_id)
            }
            _ => PlainLinks { public_url: self.links.public_url.clone() }.ticket_url(conversation_id, recipient),
        }
    }

    fn rating_urls(&self, conversation_id: i64, customer_id: i64) -> Option<RatingLinks> {
        (!self.cc_mode).then(|| RatingLinks {
            good: self.links.rating_url(conversation_id, customer_id, Rating::Good),
            average: self.links.rating_url(conversation_id, customer_id, Rating::Average),
            bad: self.links.rating_url(conversation_id, customer_id, Rating::Bad),
        })
    }

    fn unsubscribe_url(&self, conversation_id: i64, email: &str) -> Option<String> {
        (!self.cc_mode).then(|| self.links.unsubscribe_url(conversation_id, email))
    }
}
