//! Authentication primitives: password hashing (argon2), random secrets for sessions, CSRF and
//! API tokens, and the [`Principal`] every request acts as. No HTTP and no database here: the
//! HTTP layer (`http::session`) finds the principal, the store keeps the hashed secrets.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::{ChannelScope, Role};

/// Login throttling: failed sign-ins per account and per client address (issue #13).
pub mod throttle;

/// The name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "sb_session";
/// The header carrying the CSRF token on state-changing requests made with the session cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// API tokens start with this, so secret scanners and people can recognise them.
pub const TOKEN_PREFIX: &str = "sbt_";
/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Hash a password with argon2id and a random salt (PHC string). CPU-heavy: call off the async
/// executor (`spawn_blocking`).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Check a password against a stored PHC hash. A malformed hash never verifies.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// A fresh random secret: 32 bytes, hex.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The SHA-256 (hex) under which a secret is stored. Secrets are random, so no salt is needed.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new API token and the public prefix shown in listings.
pub fn new_api_token() -> (String, String) {
    let token = format!("{TOKEN_PREFIX}{}", random_secret());
    let prefix = token[..TOKEN_PREFIX.len() + 6].to_owned();
    (token, prefix)
}

/// Constant-time comparison of two secrets.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The dashboard's session cookie; unsafe methods must also carry the CSRF token.
    Session { token_hash: String, csrf_token: String },
    /// `Authorization: Bearer …` (integrations); no CSRF, since browsers never add it by themselves.
    ApiToken { id: i64 },
}

/// The agent a request acts as, with what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub agent_id: i64,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub scope: ChannelScope,
    pub credential: Credential,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role.is_admin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horse ", &h));
        assert!(!verify_password("correct horse", "not-a-hash"));
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn tokens_are_random_prefixed_and_stored_hashed() {
        let (a, prefix) = new_api_token();
        let (b, _) = new_api_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert!(a.starts_with(&prefix));
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), secret_hash(&b));
        assert!(secrets_equal(&a, &a.clone()));
        assert!(!secrets_equal(&a, &b));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
