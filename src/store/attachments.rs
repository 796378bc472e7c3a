//! Attachment metadata. The bytes live on disk under the data directory (`crate::blobs`); the
//! database keeps name, type, size, hash and where the bytes are.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::Attachment;
use super::schema::{attachments, conversations, messages};
use super::{Store, StoreResult, Tx, now};
use crate::db;

/// An attachment's row before it is written; its bytes are already in `crate::blobs`.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub uploaded_by: Option<i64>,
    pub file_name: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub storage_key: String,
}

pub async fn insert(store: &Store, a: NewAttachment) -> StoreResult<Attachment> {
    insert_uploaded(store, a, None).await
}

/// Record a customer's upload in the portal (issue #18; `a.uploaded_by` is `None`): only that customer can name it
/// in a message (`store::portal::pending_uploads`) or download it before.
pub async fn insert_from_customer(store: &Store, customer_id: i64, a: NewAttachment) -> StoreResult<Attachment> {
    insert_uploaded(store, a, Some(customer_id)).await
}

async fn insert_uploaded(store: &Store, a: NewAttachment, customer_id: Option<i64>) -> StoreResult<Attachment> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            let values = (
                attachments::uploaded_by.eq(a.uploaded_by),
                attachments::uploaded_by_customer.eq(customer_id),
                attachments::file_name.eq(&a.file_name),
                attachments::mime_type.eq(&a.mime_type),
                attachments::size_bytes.eq(a.size_bytes),
                attachments::sha256.eq(&a.sha256),
                attachments::storage_key.eq(&a.storage_key),
                attachments::created_at.eq(now()),
            );
            Ok(db!(
                tx,
                diesel::insert_into(attachments::table)
                    .values(values)
                    .returning(Attachment::as_returning())
                    .get_result(tx)
                    .await
            )?)
        })
        .await
}

/// Write `files` as the attachments of message `message_id`, in the caller's transaction (a connector's inbound
/// message and its files commit together, MM-10). Returns them in the order given.
pub(super) async fn insert_for_message(
    tx: &mut Tx<'_>,
    message_id: i64,
    files: &[NewAttachment],
    t: chrono::NaiveDateTime,
) -> StoreResult<Vec<Attachment>> {
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let values = (
            attachments::message_id.eq(Some(message_id)),
            attachments::uploaded_by.eq(f.uploaded_by),
            attachments::file_name.eq(&f.file_name),
            attachments::mime_type.eq(&f.mime_type),
            attachments::size_bytes.eq(f.size_bytes),
            attachments::sha256.eq(&f.sha256),
            attachments::storage_key.eq(&f.storage_key),
            attachments::created_at.eq(t),
        );
        out.push(db!(
            tx,
            diesel::insert_into(attachments::table)
                .values(values)
                .returning(Attachment::as_returning())
                .get_result(tx)
                .await
        )?);
    }
    Ok(out)
}

/// The attachment and, when it is linked to a message, that message's conversation's channel
/// (the caller checks access against it).
pub async fn get(store: &Store, id: i64) -> StoreResult<(Attachment, Option<i64>)> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let a: Attachment = db!(tx, attachments::table.find(id).select(Attachment::as_select()).first(tx).await)?;
            let channel = match a.message_id {
                Some(m) => Some(db!(
                    tx,
                    messages::table
                        .inner_join(conversations::table)
                        .filter(messages::id.eq(m))
                        .select(conversations::channel_instance_id)
                        .first::<i64>(tx)
                        .await
                )?),
                None => None,
            };
            Ok((a, channel))
        })
        .await
}

/// Attachments of these messages, in upload order.
pub async fn for_messages(store: &Store, message_ids: &[i64]) -> StoreResult<Vec<Attachment>> {
    let message_ids = message_ids.to_vec();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                attachments::table
                    .filter(attachments::message_id.eq_any(&message_ids))
                    .order(attachments::id)
                    .select(Attachment::as_select())
                    .load(tx)
                    .await
            )?)
        })
        .await
}
