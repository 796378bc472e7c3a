//! Signed links for customers (issue #18 items 5–7; NT-10, HD-12): what a link says (auto-login to a ticket, a
//! rating, an unsubscribe), signed with HMAC-SHA256 over (purpose, ids, expiry), and the check of a token.
//!
//! Pure: the caller hands in the key (derived from the install's secret key, `secrets::SecretBox::derive_key`) and
//! the time. A token is `base64url(fields) "." base64url(mac)`; the fields are the purpose, its ids and the expiry
//! (Unix seconds), one per line, so a token of one purpose never verifies as another. Tokens are not stored: a
//! link is good until it expires (single use is not a property of these links; the rating replaces itself,
//! unsubscribing twice does nothing, and auto-login only signs in the customer it names).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::kinds::Rating;

/// How long an auto-login link works (NT-10: three days).
pub const AUTO_LOGIN_TTL_SECS: i64 = 3 * 24 * 3600;
/// How long a rating link works, and for how long a given rating may be changed (HD-12).
pub const RATING_TTL_SECS: i64 = 7 * 24 * 3600;
/// How long an unsubscribe link works.
pub const UNSUBSCRIBE_TTL_SECS: i64 = 90 * 24 * 3600;

/// What a link does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Sign in as this customer and open this ticket in the portal.
    AutoLogin { customer_id: i64, conversation_id: i64 },
    /// Record this customer's rating of this ticket.
    Rate { conversation_id: i64, customer_id: i64, rating: Rating },
    /// Remove this address from the ticket's subscribers.
    Unsubscribe { conversation_id: i64, email: String },
}

impl Link {
    fn fields(&self) -> Vec<String> {
        match self {
            Link::AutoLogin { customer_id, conversation_id } => {
                vec!["login".into(), customer_id.to_string(), conversation_id.to_string()]
            }
            Link::Rate { conversation_id, customer_id, rating } => {
                vec!["rate".into(), conversation_id.to_string(), customer_id.to_string(), rating.as_str().into()]
            }
            Link::Unsubscribe { conversation_id, email } => {
                vec!["unsubscribe".into(), conversation_id.to_string(), email.clone()]
            }
        }
    }

    fn parse(fields: &[&str]) -> Option<Link> {
        let id = |s: &str| s.parse::<i64>().ok().filter(|n| *n > 0);
        match fields {
            ["login", customer, conversation] => {
                Some(Link::AutoLogin { customer_id: id(customer)?, conversation_id: id(conversation)? })
            }
            ["rate", conversation, customer, rating] => Some(Link::Rate {
                conversation_id: id(conversation)?,
                customer_id: id(customer)?,
                rating: rating.parse().ok()?,
            }),
            ["unsubscribe", conversation, email] if !email.is_empty() => {
                Some(Link::Unsubscribe { conversation_id: id(conversation)?, email: (*email).to_owned() })
            }
            _ => None,
        }
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not a token of ours, or altered (the signature does not match).
    Invalid,
    /// Signed by us, but its time is over.
    Expired,
}

/// A link that verified, and when it expires (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub link: Link,
    pub expires_at: i64,
}

fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(payload);
    m
}

/// The token of `link`, good until `expires_at` (Unix seconds).
pub fn sign(key: &[u8], link: &Link, expires_at: i64) -> String {
    let mut fields = link.fields();
    fields.push(expires_at.to_string());
    let payload = fields.join("\n");
    let tag = mac(key, payload.as_bytes()).finalize().into_bytes();
    format!("{}.{}", URL_SAFE_NO_PAD.encode(payload.as_bytes()), URL_SAFE_NO_PAD.encode(tag))
}

/// Check a token at `now` (Unix seconds): the signature first (in constant time), then the expiry.
pub fn verify(key: &[u8], token: &str, now: i64) -> Result<Verified, LinkError> {
    let (payload, tag) = token.split_once('.').ok_or(LinkError::Invalid)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| LinkError::Invalid)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| LinkError::Invalid)?;
    mac(key, &payload).verify_slice(&tag).map_err(|_| LinkError::Invalid)?;
    let text = std::str::from_utf8(&payload).map_err(|_| LinkError::Invalid)?;
    let fields: Vec<&str> = text.split('\n').collect();
    let (expiry, rest) = fields.split_last().ok_or(LinkError::Invalid)?;
    let expires_at: i64 = expiry.parse().map_err(|_| LinkError::Invalid)?;
    let link = Link::parse(rest).ok_or(LinkError::Invalid)?;
    if expires_at <= now {
        return Err(LinkError::Expired);
    }
    Ok(Verified { link, expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn nt_10_a_signed_link_verifies_until_it_expires() {
        let link = Link::AutoLogin { customer_id: 7, conversation_id: 42 };
        let token = sign(KEY, &link, 1_000);
        assert_eq!(verify(KEY, &token, 999), Ok(Verified { link: link.clone(), expires_at: 1_000 }));
        assert_eq!(verify(KEY, &token, 1_000), Err(LinkError::Expired));
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'), "URL-safe");
    }

    #[test]
    fn a_tampered_or_foreign_token_is_invalid() {
        let token = sign(KEY, &Link::AutoLogin { customer_id: 7, conversation_id: 42 }, 1_000);
        assert_eq!(verify(b"another key of the same length!!", &token, 0), Err(LinkError::Invalid));
        // Another customer id with the old signature.
        let (_, tag) = token.split_once('.').unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("login\n8\n42\n1000"));
        assert_eq!(verify(KEY, &forged, 0), Err(LinkError::Invalid));
        // A later expiry with the old signature.
        let later = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("login\n7\n42\n99999"));
        assert_eq!(verify(KEY, &later, 0), Err(LinkError::Invalid));
        for junk in ["", ".", "abc", "abc.def", "!!!.???"] {
            assert_eq!(verify(KEY, junk, 0), Err(LinkError::Invalid), "{junk:?}");
        }
    }

    #[test]
    fn a_token_of_one_purpose_is_never_another() {
        let rate = Link::Rate { conversation_id: 42, customer_id: 7, rating: Rating::Bad };
        let unsub = Link::Unsubscribe { conversation_id: 42, email: "ann@example.com".into() };
        for link in [rate, unsub] {
            let v = verify(KEY, &sign(KEY, &link, 50), 0).unwrap();
            assert_eq!(v.link, link);
            assert!(!matches!(v.link, Link::AutoLogin { .. }));
        }
        // A signed payload that is not a known purpose is refused even with a good signature.
        let odd = {
            let payload = "login\n7\n1000";
            let tag = mac(KEY, payload.as_bytes()).finalize().into_bytes();
            format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(tag))
        };
        assert_eq!(verify(KEY, &odd, 0), Err(LinkError::Invalid));
    }
}
