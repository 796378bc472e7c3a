//! Secrets at rest (issue #13): channel signing secrets, mailbox IMAP/POP3 and SMTP passwords and
//! the tokens of channels to come are sealed with XChaCha20-Poly1305 (RustCrypto) before they
//! reach the database, and opened only when read back for the code that uses them.
//!
//! A sealed value describes itself: `sb1:{key id, 16 hex}:{base64url(nonce ‖ ciphertext ‖ tag)}`.
//! The version prefix tells sealed values from plaintext rows of older versions (sealed on
//! start, see `store::sealing`), and the key id tells which key sealed it: the current key, a
//! previous one during a rotation (opened and sealed again on start), or one this node does not
//! have (a clear error, never silent garbage).
//!
//! This module owns the cryptography and the list of secret-bearing settings fields; it has no
//! I/O except reading or creating the key file ([`key`]). It never logs a value, and neither
//! [`SecretKey`] nor [`Sealed`] prints its contents.

pub mod key;

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde_json::Value;

pub use key::{KeyError, KeyId, KeySource, SecretKey};

/// The prefix of every sealed value; the `1` is the format version.
const PREFIX: &str = "sb1:";
/// Bound into every seal as associated data, so a value only opens as what it was sealed as.
const AAD: &[u8] = b"switchboard secret v1";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Keys of a channel's settings JSON whose values are secrets, at any depth: sealed at rest,
/// masked in API answers (`http::views`).
pub const SECRET_FIELDS: &[&str] =
    &["password", "token", "secret", "access_token", "refresh_token", "app_secret", "oa_secret_key", "bot_token"];

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "a stored secret is sealed with key {found}, which this node does not have (its key is {current}): \
         every node must start with the same SWITCHBOARD_SECRET_KEY (or the same secret.key file); \
         while rotating, give the old key as SWITCHBOARD_SECRET_KEY_PREVIOUS"
    )]
    UnknownKey { found: KeyId, current: KeyId },
    #[error("a stored secret sealed with key {0} does not open with it: the value was damaged")]
    Damaged(KeyId),
    #[error("a stored secret is not in the sealed format")]
    Malformed,
}

/// Ciphertext as stored: `sb1:{key id}:{base64url}`. `Debug` shows the key id only.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(String);

impl Sealed {
    /// Recognise a sealed value; `None` for anything else (a plaintext row of an older version).
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(PREFIX)?;
        let (id, body) = rest.split_once(':')?;
        KeyId::parse(id)?;
        let ok = body.len() >= (NONCE_LEN + TAG_LEN) * 4 / 3
            && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(text.to_owned()))
    }

    pub fn key_id(&self) -> KeyId {
        // Checked by `parse` and written by `SecretBox::seal`, the only constructors.
        KeyId::parse(&self.0[PREFIX.len()..PREFIX.len() + 16]).unwrap_or(KeyId(0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    fn body(&self) -> &str {
        &self.0[PREFIX.len() + 17..]
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed(key {})", self.key_id())
    }
}

/// A key derived from the secret key for one purpose ([`SecretBox::derive_key`]); wiped on drop, never printed.
#[derive(Clone)]
pub struct DerivedKey([u8; 32]);

impl DerivedKey {
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for DerivedKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKey(…)")
    }
}

/// The current key, and the previous ones still accepted while a rotation finishes. Built once at
/// start (`server::open_store`) and kept by the store.
pub struct SecretBox {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBox").field("current", &self.current).field("previous", &self.previous).finish()
    }
}

impl SecretBox {
    pub fn new(current: SecretKey, previous: Vec<SecretKey>) -> Self {
        let previous = previous.into_iter().filter(|k| k.id() != current.id()).collect();
        Self { current, previous }
    }

    pub fn current_id(&self) -> KeyId {
        self.current.id()
    }

    /// A key for another use than sealing (issue #18: the customer links' HMAC key), derived from the current key
    /// as HMAC-SHA256(key, "switchboard derived key\0" ‖ purpose): never the sealing key itself, and a different
    /// key per purpose. Rotating the secret key changes it (links signed before stop working).
    pub fn derive_key(&self, purpose: &str) -> DerivedKey {
        use hmac::{Hmac, Mac};
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.current.bytes()).expect("any key length");
        m.update(b"switchboard derived key\0");
        m.update(purpose.as_bytes());
        DerivedKey(m.finalize().into_bytes().into())
    }

    /// True when `id` is one of the previous keys (a rotation in progress).
    pub fn is_previous(&self, id: KeyId) -> bool {
        self.previous.iter().any(|k| k.id() == id)
    }

    /// Seal under the current key, with a fresh random nonce.
    pub fn seal(&self, plaintext: &str) -> Sealed {
        let cipher = XChaCha20Poly1305::new(Key::from_slice(self.current.bytes()));
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption only fails for messages over 256 GiB; a setting is never near that.
        let ciphertext = cipher.encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: AAD }).unwrap_or_default();
        let mut raw = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ciphertext);
        Sealed(format!("{PREFIX}{}:{}", self.current.id(), URL_SAFE_NO_PAD.encode(raw)))
    }

    /// Open with whichever known key sealed it.
    pub fn open(&self, sealed: &Sealed) -> Result<String, SecretError> {
        let id = sealed.key_id();
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id() == id)
            .ok_or(SecretError::UnknownKey { found: id, current: self.current.id() })?;
        let raw = URL_SAFE_NO_PAD.decode(sealed.body()).map_err(|_| SecretError::Malformed)?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::Malformed);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new(Key::from_slice(key.bytes()));
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: AAD })
            .map_err(|_| SecretError::Damaged(id))?;
        String::from_utf8(plain).map_err(|_| SecretError::Damaged(id))
    }

    /// A stored value as the code uses it: sealed values opened, anything else (a plaintext row
    /// not yet sealed) as it is.
    pub fn open_text(&self, stored: &str) -> Result<String, SecretError> {
        match Sealed::parse(stored) {
            Some(sealed) => self.open(&sealed),
            None => Ok(stored.to_owned()),
        }
    }

    /// What a stored value should become at rest: `None` when it already is sealed under the
    /// current key (or is empty), else the value sealed under the current key — plaintext from an
    /// older version, or a value sealed under a previous key.
    pub fn reseal_text(&self, stored: &str) -> Result<Option<Sealed>, SecretError> {
        if stored.is_empty() {
            return Ok(None);
        }
        match Sealed::parse(stored) {
            Some(sealed) if sealed.key_id() == self.current.id() => Ok(None),
            Some(sealed) => Ok(Some(self.seal(&self.open(&sealed)?))),
            None => Ok(Some(self.seal(stored))),
        }
    }

    /// Seal every non-empty string under a [`SECRET_FIELDS`] key of `value`, at any depth.
    /// `value` holds plaintext (what the API was given, or what [`Self::open_fields`] gave).
    pub fn seal_fields(&self, value: &mut Value) {
        // The closure never fails.
        let _ = walk(value, &mut |s| {
            if !s.is_empty() {
                *s = self.seal(s).into_string();
            }
            Ok(())
        });
    }

    /// Open every sealed secret field of `value` (plaintext ones stay as they are).
    pub fn open_fields(&self, value: &mut Value) -> Result<(), SecretError> {
        walk(value, &mut |s| {
            if let Some(sealed) = Sealed::parse(s) {
                *s = self.open(&sealed)?;
            }
            Ok(())
        })
    }

    /// [`Self::reseal_text`] for every secret field; true when anything changed.
    pub fn reseal_fields(&self, value: &mut Value) -> Result<bool, SecretError> {
        let mut changed = false;
        walk(value, &mut |s| {
            if let Some(sealed) = self.reseal_text(s)? {
                *s = sealed.into_string();
                changed = true;
            }
            Ok(())
        })?;
        Ok(changed)
    }
}

/// `value` as JSON with every [`SECRET_FIELDS`] string replaced by `"***"`: the `Debug` of
/// settings types that hold plaintext passwords (`channels::email::settings`).
pub fn redacted(value: &impl serde::Serialize) -> String {
    let mut v = serde_json::to_value(value).unwrap_or(Value::Null);
    // The closure never fails.
    let _ = walk(&mut v, &mut |s| {
        *s = "***".into();
        Ok(())
    });
    v.to_string()
}

/// Call `f` on every string under a secret field name, at any depth of objects.
fn walk(value: &mut Value, f: &mut impl FnMut(&mut String) -> Result<(), SecretError>) -> Result<(), SecretError> {
    if let Value::Object(map) = value {
        for (key, inner) in map.iter_mut() {
            match inner {
                Value::String(s) if SECRET_FIELDS.contains(&key.as_str()) => f(s)?,
                Value::Object(_) => walk(inner, f)?,
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn boxed() -> SecretBox {
        SecretBox::new(SecretKey::generate(), vec![])
    }

    #[test]
    fn sealed_values_open_and_show_nothing() {
        let b = boxed();
        let sealed = b.seal("hunter2");
        assert!(sealed.as_str().starts_with(&format!("sb1:{}:", b.current_id())));
        assert!(!sealed.as_str().contains("hunter2"));
        assert_ne!(b.seal("hunter2"), sealed, "a fresh nonce every time");
        assert_eq!(Sealed::parse(sealed.as_str()), Some(sealed.clone()));
        assert_eq!(sealed.key_id(), b.current_id());
        assert_eq!(b.open(&sealed).unwrap(), "hunter2");
        assert_eq!(b.open_text(sealed.as_str()).unwrap(), "hunter2");
        assert_eq!(b.open_text("plain from an old row").unwrap(), "plain from an old row");
        assert!(!format!("{sealed:?} {b:?}").contains("hunter2"));
    }

    #[test]
    fn plaintext_is_not_taken_for_sealed() {
        for plain in ["", "hunter2", "sb1:", "sb1:abc:def", "sb1:0123456789abcdef:short", "sb1:0123456789abcdef:"] {
            assert!(Sealed::parse(plain).is_none(), "{plain:?}");
        }
    }

    #[test]
    fn a_wrong_key_or_a_damaged_value_is_an_error_not_garbage() {
        let (a, b) = (boxed(), boxed());
        let sealed = a.seal("pw");
        assert!(matches!(b.open(&sealed), Err(SecretError::UnknownKey { .. })));
        let mut text = sealed.into_string();
        let last = text.pop().unwrap();
        text.push(if last == 'A' { 'B' } else { 'A' });
        assert!(matches!(a.open(&Sealed::parse(&text).unwrap()), Err(SecretError::Damaged(_))));
    }

    #[test]
    fn rotation_opens_with_the_previous_key_and_reseals_under_the_current() {
        let old = SecretKey::generate();
        let before = SecretBox::new(old.clone(), vec![]);
        let sealed = before.seal("pw");
        let after = SecretBox::new(SecretKey::generate(), vec![old]);
        assert_eq!(after.open(&sealed).unwrap(), "pw");
        let resealed = after.reseal_text(sealed.as_str()).unwrap().unwrap();
        assert_eq!(resealed.key_id(), after.current_id());
        assert_eq!(after.reseal_text(resealed.as_str()).unwrap(), None, "idempotent");
        assert_eq!(after.reseal_text("").unwrap(), None);
        assert_eq!(after.open(&after.reseal_text("plain").unwrap().unwrap()).unwrap(), "plain");
    }

    #[test]
    fn redacted_shows_everything_but_secrets() {
        let shown = redacted(&json!({"password": "p1", "smtp": {"password": "p2", "host": "h"}}));
        assert!(!shown.contains("p1") && !shown.contains("p2") && shown.contains("\"host\":\"h\""), "{shown}");
    }

    #[test]
    fn secret_fields_are_sealed_at_any_depth_and_nothing_else() {
        let b = boxed();
        // Plain texts with a space: sealed text is base64, which never holds one, so a
        // random ciphertext cannot contain them by chance (it once held "p1").
        let mut v = json!({"password": "p 1", "host": "h", "smtp": {"password": "p 2", "port": 25, "username": "u"},
                           "token": null, "routing": {"tags": ["x"]}});
        b.seal_fields(&mut v);
        assert!(!v.to_string().contains("p 1") && !v.to_string().contains("p 2"), "{v}");
        assert_eq!((v["host"].as_str(), v["smtp"]["username"].as_str()), (Some("h"), Some("u")));
        assert!(v["token"].is_null());
        let mut again = v.clone();
        assert!(!b.reseal_fields(&mut again).unwrap());
        b.open_fields(&mut v).unwrap();
        assert_eq!(v["password"], "p 1");
        assert_eq!(v["smtp"]["password"], "p 2");
        let mut old = json!({"password": "plain"});
        assert!(b.reseal_fields(&mut old).unwrap());
        assert!(Sealed::parse(old["password"].as_str().unwrap()).is_some());
    }
}
