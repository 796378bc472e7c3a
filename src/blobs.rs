//! Attachment bytes on disk, under `{data_dir}/attachments/`, addressed by their SHA-256 (so
//! the same file uploaded twice is stored once). Writes go to a temporary file first and are
//! renamed into place, so a crash never leaves half a file under a real name.
//!
//! Layout: `{first two hex digits}/{sha256}`, at most 256 folders (like Git's objects). Keys are stored
//! as relative paths, so files written under the earlier two-level layout (`ab/cd/{sha256}`) are still
//! read. Why one level: a mail import writes several files a mail, and with 65,536 possible folders
//! nearly every file made a new folder; on ext4 a new folder costs an inode search across block groups,
//! which was a quarter of the server's CPU in the email import benchmark.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Clone)]
pub struct Blobs {
    root: PathBuf,
}

/// A stored file: where it is and what it is.
pub struct StoredBlob {
    pub storage_key: String,
    pub sha256: String,
    pub size: u64,
}

impl Blobs {
    pub fn new(data_dir: &Path) -> Self {
        Self { root: data_dir.join("attachments") }
    }

    /// Store `bytes`; returns its key (relative path) and hash. Hashing and the file calls run on one blocking
    /// thread (one hop rather than one per file call).
    pub async fn put(&self, bytes: &[u8]) -> std::io::Result<StoredBlob> {
        let blobs = self.clone();
        let bytes = bytes.to_vec();
        match tokio::task::spawn_blocking(move || blobs.put_blocking(&bytes)).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(format!("storing a file was cancelled: {e}"))),
        }
    }

    /// [`Blobs::put`] for a caller already on a blocking thread.
    pub fn put_blocking(&self, bytes: &[u8]) -> std::io::Result<StoredBlob> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let storage_key = format!("{}/{}", &sha256[..2], sha256);
        let path = self.root.join(&storage_key);
        let blob = StoredBlob { storage_key, sha256, size: bytes.len() as u64 };
        if path.try_exists()? {
            return Ok(blob);
        }
        let dir = path.parent().expect("a storage key always has a parent folder");
        let tmp = dir.join(format!(".{}.{}", blob.sha256, uuid::Uuid::new_v4()));
        // The folder usually exists: make it only when the write says it is missing.
        if let Err(e) = std::fs::write(&tmp, bytes) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(e);
            }
            std::fs::create_dir_all(dir)?;
            std::fs::write(&tmp, bytes)?;
        }
        std::fs::rename(&tmp, &path)?;
        Ok(blob)
    }

    pub async fn get(&self, storage_key: &str) -> std::io::Result<Vec<u8>> {
        if storage_key.contains("..") || storage_key.starts_with('/') {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad storage key"));
        }
        tokio::fs::read(self.root.join(storage_key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_by_content_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(dir.path());
        let a = blobs.put(b"hello").await.unwrap();
        let b = blobs.put(b"hello").await.unwrap();
        assert_eq!(a.storage_key, b.storage_key);
        assert_eq!(a.size, 5);
        assert_eq!(blobs.get(&a.storage_key).await.unwrap(), b"hello");
        assert!(blobs.get("../../etc/passwd").await.is_err());
        // One folder level: the first two hex digits of the hash.
        assert_eq!(a.storage_key, format!("{}/{}", &a.sha256[..2], a.sha256));
    }

    #[tokio::test]
    async fn files_under_the_earlier_two_level_layout_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(dir.path());
        let sha = hex::encode(Sha256::digest(b"old"));
        let key = format!("{}/{}/{}", &sha[..2], &sha[2..4], sha);
        std::fs::create_dir_all(dir.path().join("attachments").join(&key).parent().unwrap()).unwrap();
        std::fs::write(dir.path().join("attachments").join(&key), b"old").unwrap();
        assert_eq!(blobs.get(&key).await.unwrap(), b"old");
    }
}
