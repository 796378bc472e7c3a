//! The custom-channel contract (`docs/custom-channels.md`): the reply webhook's body,
//! headers and signature, and the retry schedule. Bytes and types only — no store, no network.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

pub const EVENT: &str = "message.created";
pub const HEADER_EVENT: &str = "X-Switchboard-Event";
pub const HEADER_DELIVERY: &str = "X-Switchboard-Delivery";
pub const HEADER_TIMESTAMP: &str = "X-Switchboard-Timestamp";
pub const HEADER_SIGNATURE: &str = "X-Switchboard-Signature";
/// A receiver has this long to answer 2xx.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// `sha256={hex HMAC-SHA256(secret, "{timestamp}.{raw body}")}`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// When to try again after `attempts` failed attempts (1 = the first failed): about 10 s, 1 min,
/// 5 min, 30 min, 2 h, then every 6 h — until 3 days after the delivery was created, after which
/// `None` (give up). `scale` shrinks the schedule for tests.
pub fn next_retry(attempts: u32, age: Duration, scale: f64) -> Option<Duration> {
    const STEPS: [u64; 5] = [10, 60, 300, 1800, 7200];
    let base = STEPS.get(attempts.saturating_sub(1) as usize).copied().unwrap_or(6 * 3600);
    let wait = Duration::from_secs_f64(base as f64 * scale);
    let limit = Duration::from_secs_f64(3.0 * 24.0 * 3600.0 * scale);
    (age + wait <= limit).then_some(wait)
}

#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    pub file_name: String,
    pub file_size: i64,
    pub mime_type: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub message_id: i64,
    pub content: String,
    pub content_html: String,
    pub staff_id: i64,
    pub staff_name: String,
    pub attachments: Vec<Attachment>,
    pub quoted_message_id: Option<i64>,
    pub sent_via_rule: u8,
    pub b_from_api: u8,
    pub created_at: String,
}

/// The body POSTed to a channel's webhook for every reply (CC-7).
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub event: &'static str,
    pub channel: i64,
    pub conversation_id: i64,
    pub number: String,
    pub user_id: i64,
    pub user_custom_id: String,
    pub message: Message,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_documented_formula() {
        // Independent computation: HMAC-SHA256 per RFC 2104 with the sha2 crate directly.
        let secret = "s3cr3t";
        let body = br#"{"event":"message.created"}"#;
        let ts = 1_700_000_000i64;
        let mut key = [0u8; 64];
        key[..secret.len()].copy_from_slice(secret.as_bytes());
        use sha2::Digest;
        let inner: Vec<u8> = key.iter().map(|b| b ^ 0x36).collect();
        let outer: Vec<u8> = key.iter().map(|b| b ^ 0x5c).collect();
        let mut h = Sha256::new();
        h.update(&inner);
        h.update(format!("{ts}.").as_bytes());
        h.update(body);
        let inner_hash = h.finalize();
        let mut h = Sha256::new();
        h.update(&outer);
        h.update(inner_hash);
        let expected = format!("sha256={}", hex::encode(h.finalize()));
        assert_eq!(signature(secret, ts, body), expected);
        assert_ne!(signature("other", ts, body), expected);
        assert_ne!(signature(secret, ts + 1, body), expected);
    }

    #[test]
    fn retry_schedule() {
        let s = |a, age_s: u64| next_retry(a, Duration::from_secs(age_s), 1.0).map(|d| d.as_secs());
        assert_eq!(s(1, 0), Some(10));
        assert_eq!(s(2, 10), Some(60));
        assert_eq!(s(3, 70), Some(300));
        assert_eq!(s(4, 400), Some(1800));
        assert_eq!(s(5, 2000), Some(7200));
        assert_eq!(s(6, 10_000), Some(6 * 3600));
        assert_eq!(s(20, 3 * 24 * 3600 - 10), None, "gives up after three days");
        assert_eq!(next_retry(1, Duration::ZERO, 0.01).map(|d| d.as_millis()), Some(100));
    }
}
