//! The log of mail that made no ticket (EM-8, EM-12), and raw mail sources: where they are kept
//! ([`RawSource`]) and how they are read back.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::blobs::Blobs;
use crate::db;
use crate::store::Tx;
use crate::store::schema::{mail_log, mail_sources, messages};
use crate::store::{Store, StoreResult, now};

/// A stored source's `storage_key`, `content` and `size_bytes` columns.
pub(super) type SourceColumns = (Option<String>, Option<Vec<u8>>, i64);

/// Where a mail's raw source is kept for audit: in its database row when small, in the blob store when large.
///
/// Why both: nearly all mail is a few KiB, and a file of its own cost an import more than parsing and storing
/// the mail together (a new inode, a temporary name and a rename); a 20 MiB mail with attachments would bloat the
/// database and every backup of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawSource {
    Inline(Vec<u8>),
    File { storage_key: String, size_bytes: i64 },
}

impl RawSource {
    /// Sources up to this size are kept in the row.
    pub const INLINE_MAX: usize = 64 * 1024;

    /// Keep `raw`: in the row when small, else as a file in `blobs`. Blocking (hashing, file writes).
    pub fn keep_blocking(blobs: &Blobs, raw: &[u8]) -> std::io::Result<Self> {
        if raw.len() <= Self::INLINE_MAX {
            return Ok(Self::Inline(raw.to_vec()));
        }
        let b = blobs.put_blocking(raw)?;
        Ok(Self::File { storage_key: b.storage_key, size_bytes: b.size as i64 })
    }

    /// [`RawSource::keep_blocking`] from async code (on a blocking thread).
    pub async fn keep(blobs: &Blobs, raw: Vec<u8>) -> std::io::Result<Self> {
        let blobs = blobs.clone();
        match tokio::task::spawn_blocking(move || Self::keep_blocking(&blobs, &raw)).await {
            Ok(kept) => kept,
            Err(e) => Err(std::io::Error::other(format!("keeping a mail's source was cancelled: {e}"))),
        }
    }

    pub fn size_bytes(&self) -> i64 {
        match self {
            Self::Inline(bytes) => bytes.len() as i64,
            Self::File { size_bytes, .. } => *size_bytes,
        }
    }

    /// The bytes, read from the blob store when they are a file.
    pub async fn bytes(self, blobs: &Blobs) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Inline(bytes) => Ok(bytes),
            Self::File { storage_key, .. } => blobs.get(&storage_key).await,
        }
    }

    /// The `storage_key` and `content` columns (exactly one is set; the tables check it too).
    pub(super) fn columns(&self) -> (Option<&str>, Option<&[u8]>) {
        match self {
            Self::Inline(bytes) => (None, Some(bytes)),
            Self::File { storage_key, .. } => (Some(storage_key), None),
        }
    }

    /// Back from the `(storage_key, content, size_bytes)` columns.
    pub(super) fn from_columns((storage_key, content, size_bytes): SourceColumns) -> Option<Self> {
        match (storage_key, content) {
            (_, Some(bytes)) => Some(Self::Inline(bytes)),
            (Some(storage_key), None) => Some(Self::File { storage_key, size_bytes }),
            (None, None) => None,
        }
    }
}

/// A mail that made no ticket, for admins (EM-8, EM-12).
#[derive(Debug, Clone)]
pub struct LoggedMail {
    pub channel_id: i64,
    pub message_id: String,
    pub from_address: String,
    pub subject: String,
    /// `junk`, `rejected` or `unparseable`.
    pub outcome: &'static str,
    pub reason: String,
    pub source: RawSource,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mail_log)]
pub struct MailLogRow {
    pub id: i64,
    pub channel_instance_id: i64,
    pub message_id_header: String,
    pub from_address: String,
    pub subject: String,
    pub outcome: String,
    pub reason: String,
    pub size_bytes: i64,
    pub created_at: NaiveDateTime,
}

/// Log a [`LoggedMail`] once: the same Message-ID on the same mailbox is logged once.
pub(super) async fn write_log(tx: &mut Tx<'_>, m: &LoggedMail) -> StoreResult<()> {
    let (storage_key, content) = m.source.columns();
    db!(
        tx,
        diesel::insert_into(mail_log::table)
            .values((
                mail_log::channel_instance_id.eq(m.channel_id),
                mail_log::message_id_header.eq(&m.message_id),
                mail_log::from_address.eq(&m.from_address),
                mail_log::subject.eq(&m.subject),
                mail_log::outcome.eq(m.outcome),
                mail_log::reason.eq(&m.reason),
                mail_log::storage_key.eq(storage_key),
                mail_log::content.eq(content),
                mail_log::size_bytes.eq(m.source.size_bytes()),
                mail_log::created_at.eq(now()),
            ))
            .on_conflict_do_nothing()
            .execute(tx)
            .await
    )?;
    Ok(())
}

pub async fn mail_log(store: &Store, channel_id: i64, limit: i64) -> StoreResult<Vec<MailLogRow>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                mail_log::table
                    .filter(mail_log::channel_instance_id.eq(channel_id))
                    .order(mail_log::id.desc())
                    .limit(limit)
                    .select(MailLogRow::as_select())
                    .load(tx)
                    .await
            )?)
        })
        .await
}

/// Keep the raw source of a sent mail (audit).
pub async fn record_source(
    store: &Store,
    message_id: i64,
    source: RawSource,
    from: String,
    to: Vec<String>,
) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            let (storage_key, content) = source.columns();
            db!(
                tx,
                diesel::insert_into(mail_sources::table)
                    .values((
                        mail_sources::message_id.eq(message_id),
                        mail_sources::storage_key.eq(storage_key),
                        mail_sources::content.eq(content),
                        mail_sources::size_bytes.eq(source.size_bytes()),
                        mail_sources::from_address.eq(&from),
                        mail_sources::recipients.eq(serde_json::to_string(&to).unwrap_or_else(|_| "[]".into())),
                        mail_sources::created_at.eq(now()),
                    ))
                    .on_conflict_do_nothing()
                    .execute(tx)
                    .await
            )?;
            Ok(())
        })
        .await
}

/// The stored raw source of a message of this conversation, if it came or went by mail.
pub async fn source_of(store: &Store, conversation_id: i64, message_id: i64) -> StoreResult<Option<RawSource>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let of_conversation =
                messages::table.filter(messages::conversation_id.eq(conversation_id)).select(messages::id);
            let row: Option<SourceColumns> = db!(
                tx,
                mail_sources::table
                    .find(message_id)
                    .filter(mail_sources::message_id.eq_any(of_conversation))
                    .select((mail_sources::storage_key, mail_sources::content, mail_sources::size_bytes))
                    .first(tx)
                    .await
                    .optional()
            )?;
            Ok(row.and_then(RawSource::from_columns))
        })
        .await
}

/// The raw source of a mail in a mailbox's log.
pub async fn logged_source(store: &Store, channel_id: i64, log_id: i64) -> StoreResult<Option<RawSource>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let row: Option<SourceColumns> = db!(
                tx,
                mail_log::table
                    .find(log_id)
                    .filter(mail_log::channel_instance_id.eq(channel_id))
                    .select((mail_log::storage_key, mail_log::content, mail_log::size_bytes))
                    .first(tx)
                    .await
                    .optional()
            )?;
            Ok(row.and_then(RawSource::from_columns))
        })
        .await
}
