//! The secret key: 32 random bytes, given as base64 by a setting (`SWITCHBOARD_SECRET_KEY`) or kept
//! in `{data_dir}/secret.key`, created with mode 0600 on the first start when neither exists.
//!
//! A [`SecretKey`] never prints: its `Debug` and `Display` show only its [`KeyId`], a fingerprint
//! that names the key in sealed values, in the database's key check and in error messages. The
//! bytes are wiped when the key is dropped.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// The key's length in bytes (XChaCha20-Poly1305 takes 256-bit keys).
pub const KEY_LEN: usize = 32;
/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "secret.key";

/// Names a key without revealing it: the first 8 bytes of SHA-256 over a label and the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub u64);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl KeyId {
    pub fn parse(hex16: &str) -> Option<Self> {
        (hex16.len() == 16 && hex16.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(hex16, 16).ok().map(Self))
            .flatten()
    }
}

/// A 256-bit key for sealing secrets at rest.
#[derive(Clone)]
pub struct SecretKey {
    bytes: [u8; KEY_LEN],
    id: KeyId,
}

impl SecretKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let digest = Sha256::new().chain_update(b"switchboard secret key id\0").chain_update(bytes).finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self { bytes, id: KeyId(u64::from_be_bytes(first)) }
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        use chacha20poly1305::aead::{KeyInit, OsRng};
        let key = chacha20poly1305::XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(&key);
        Self::from_bytes(bytes)
    }

    /// Read the base64 form (standard alphabet, padding optional, surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Option<Self> {
        let text = text.trim();
        let decoded =
            STANDARD.decode(text).or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text)).ok()?;
        let bytes: [u8; KEY_LEN] = decoded.as_slice().try_into().ok()?;
        Some(Self::from_bytes(bytes))
    }

    /// The base64 form, as the setting and the key file hold it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(super) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

/// Why no key could be had. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the secret key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "the secret key file {path} does not hold a key (expected the base64 of {KEY_LEN} random bytes on one line); \
         restore it from your backup — without it the stored channel secrets and mailbox passwords cannot be read"
    )]
    Malformed { path: PathBuf },
    #[error("cannot create the secret key file {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
}

/// Where the current key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `SWITCHBOARD_SECRET_KEY` (or `secret_key` in the configuration file).
    Setting,
    /// The key file in the data directory, read as it was.
    File(PathBuf),
    /// The key file, created just now (first start).
    Created(PathBuf),
}

/// The configured key, or the one in `{data_dir}/secret.key`, created (mode 0600) when missing.
pub fn load_or_create(setting: Option<&SecretKey>, data_dir: &Path) -> Result<(SecretKey, KeySource), KeyError> {
    if let Some(key) = setting {
        return Ok((key.clone(), KeySource::Setting));
    }
    let path = data_dir.join(KEY_FILE);
    match read_file(&path)? {
        Some(key) => Ok((key, KeySource::File(path))),
        None => create_file(&path),
    }
}

/// The key in `path`; `None` when there is no such file.
fn read_file(path: &Path) -> Result<Option<SecretKey>, KeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => SecretKey::from_base64(&text).map(Some).ok_or_else(|| KeyError::Malformed { path: path.into() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(KeyError::Malformed { path: path.into() }),
        Err(source) => Err(KeyError::Read { path: path.into(), source }),
    }
}

fn create_file(path: &Path) -> Result<(SecretKey, KeySource), KeyError> {
    let create = |source| KeyError::Create { path: path.into(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(create)?;
    }
    let key = SecretKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(format!("{}\n", key.to_base64()).as_bytes()).map_err(create)?;
            file.sync_all().map_err(create)?;
            Ok((key, KeySource::Created(path.into())))
        }
        // Another process sharing the data directory created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read_file(path)? {
            Some(key) => Ok((key, KeySource::File(path.into()))),
            None => Err(KeyError::Malformed { path: path.into() }),
        },
        Err(e) => Err(create(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_back_from_its_base64_and_never_prints() {
        let key = SecretKey::generate();
        let again = SecretKey::from_base64(&format!("  {}\n", key.to_base64())).unwrap();
        assert_eq!(again.id(), key.id());
        assert_ne!(SecretKey::generate().id(), key.id());
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.to_base64()), "{shown}");
        assert!(shown.contains(&key.id().to_string()));
        assert_eq!(KeyId::parse(&key.id().to_string()), Some(key.id()));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in ["", "not base64!", &STANDARD.encode([7u8; 16]), &STANDARD.encode([7u8; 33])] {
            assert!(SecretKey::from_base64(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_key_file_is_created_private_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (first, source) = load_or_create(None, &data).unwrap();
        assert_eq!(source, KeySource::Created(data.join(KEY_FILE)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (second, source) = load_or_create(None, &data).unwrap();
        assert_eq!((second.id(), source), (first.id(), KeySource::File(data.join(KEY_FILE))));
        std::fs::write(data.join(KEY_FILE), "garbage\n").unwrap();
        let err = load_or_create(None, &data).unwrap_err();
        assert!(matches!(err, KeyError::Malformed { .. }), "{err}");
        let configured = SecretKey::generate();
        assert_eq!(load_or_create(Some(&configured), &data).unwrap().0.id(), configured.id());
    }
}
