//! A customer's files in the portal: their uploads (recorded by `store::attachments::insert_from_customer`) as they
//! are named in a message, and the files they may download (of their own tickets' public messages, or their own
//! pending uploads).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db;
use crate::domain::Direction;
use crate::store::models::Attachment;
use crate::store::schema::{attachments, conversations, messages};
use crate::store::{Store, StoreError, StoreResult};

/// The customer's own uploads not yet in a message, by id, as new attachments for their message (a reply goes
/// through `messages::append_customer`, which writes its files itself). An id that is not such an upload is a bad
/// reference.
pub async fn pending_uploads(
    store: &Store,
    customer_id: i64,
    ids: Vec<i64>,
) -> StoreResult<Vec<crate::store::attachments::NewAttachment>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let rows: Vec<Attachment> = db!(
                tx,
                attachments::table
                    .filter(attachments::id.eq_any(&ids))
                    .filter(attachments::uploaded_by_customer.eq(Some(customer_id)))
                    .filter(attachments::message_id.is_null())
                    .select(Attachment::as_select())
                    .load(tx)
                    .await
            )?;
            ids.iter()
                .map(|id| {
                    let a = rows
                        .iter()
                        .find(|a| a.id == *id)
                        .ok_or_else(|| StoreError::BadReference(format!("attachment {id} does not exist")))?;
                    Ok(crate::store::attachments::NewAttachment {
                        uploaded_by: None,
                        file_name: a.file_name.clone(),
                        mime_type: a.mime_type.clone(),
                        size_bytes: a.size_bytes,
                        sha256: a.sha256.clone(),
                        storage_key: a.storage_key.clone(),
                    })
                })
                .collect()
        })
        .await
}

/// Forget uploads that were copied into a message (their bytes stay: blobs are content-addressed and shared).
pub async fn drop_uploads(store: &Store, customer_id: i64, ids: Vec<i64>) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            db!(
                tx,
                diesel::delete(
                    attachments::table
                        .filter(attachments::id.eq_any(&ids))
                        .filter(attachments::uploaded_by_customer.eq(Some(customer_id)))
                        .filter(attachments::message_id.is_null())
                )
                .execute(tx)
                .await
            )?;
            Ok(())
        })
        .await
}

/// A file the customer may download: one of a public message of their own ticket, or their own pending upload.
pub async fn attachment(store: &Store, customer_id: i64, id: i64) -> StoreResult<Attachment> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let a: Attachment =
                db!(tx, attachments::table.find(id).select(Attachment::as_select()).first(tx).await.optional())?
                    .ok_or(StoreError::NotFound)?;
            let Some(message_id) = a.message_id else {
                return if a.uploaded_by_customer == Some(customer_id) { Ok(a) } else { Err(StoreError::NotFound) };
            };
            let visible: i64 = db!(
                tx,
                messages::table
                    .inner_join(conversations::table)
                    .filter(messages::id.eq(message_id))
                    .filter(messages::direction.eq_any([Direction::In.as_str(), Direction::Out.as_str()]))
                    .filter(conversations::customer_id.eq(customer_id))
                    .count()
                    .get_result(tx)
                    .await
            )?;
            if visible == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(a)
        })
        .await
}
