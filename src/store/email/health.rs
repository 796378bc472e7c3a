//! Each mailbox's connection health (EM-5: failures in a row disable it) and the remote keys it
//! already imported and left on the server.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db;
use crate::store::schema::{channel_instances, mail_log, mailbox_seen, mailbox_state};
use crate::store::{Store, StoreResult, now};

/// After this many connection failures in a row a mailbox is disabled (EM-5).
pub const MAX_FAILURES: i64 = 5;

/// A mailbox's connection health.
#[derive(Debug, Clone, Default, Queryable, Selectable)]
#[diesel(table_name = mailbox_state)]
pub struct MailboxState {
    pub channel_instance_id: i64,
    pub consecutive_failures: i64,
    pub last_error: Option<String>,
    pub last_checked_at: Option<NaiveDateTime>,
    pub last_success_at: Option<NaiveDateTime>,
    pub imported_total: i64,
}

/// A mailbox's health and how many of its mails are in its log (made no ticket), in one store call.
pub async fn mailbox_state(store: &Store, channel_id: i64) -> StoreResult<(MailboxState, i64)> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let row: Option<MailboxState> = db!(
                tx,
                mailbox_state::table.find(channel_id).select(MailboxState::as_select()).first(tx).await.optional()
            )?;
            let logged: i64 = db!(
                tx,
                mail_log::table.filter(mail_log::channel_instance_id.eq(channel_id)).count().get_result(tx).await
            )?;
            Ok((row.unwrap_or(MailboxState { channel_instance_id: channel_id, ..Default::default() }), logged))
        })
        .await
}

/// A check that reached the server and logged in.
pub async fn record_success(store: &Store, channel_id: i64) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            let t = now();
            db!(
                tx,
                diesel::insert_into(mailbox_state::table)
                    .values((
                        mailbox_state::channel_instance_id.eq(channel_id),
                        mailbox_state::last_checked_at.eq(Some(t)),
                        mailbox_state::last_success_at.eq(Some(t)),
                    ))
                    .on_conflict(mailbox_state::channel_instance_id)
                    .do_update()
                    .set((
                        mailbox_state::consecutive_failures.eq(0),
                        mailbox_state::last_error.eq(None::<String>),
                        mailbox_state::last_checked_at.eq(Some(t)),
                        mailbox_state::last_success_at.eq(Some(t)),
                    ))
                    .execute(tx)
                    .await
            )?;
            Ok(())
        })
        .await
}

/// A check that failed to connect or log in. Returns the failures in a row; at [`MAX_FAILURES`]
/// the mailbox is disabled with the error as its reason (EM-5).
pub async fn record_failure(store: &Store, channel_id: i64, error: String) -> StoreResult<i64> {
    // A change to the channel row (EM-5 disables it): cached channel rows are dropped (`store::cache`).
    store
        .run_change(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let failures: i64 = db!(
                    tx,
                    diesel::insert_into(mailbox_state::table)
                        .values((
                            mailbox_state::channel_instance_id.eq(channel_id),
                            mailbox_state::consecutive_failures.eq(1),
                            mailbox_state::last_error.eq(Some(&error)),
                            mailbox_state::last_checked_at.eq(Some(t)),
                        ))
                        .on_conflict(mailbox_state::channel_instance_id)
                        .do_update()
                        .set((
                            mailbox_state::consecutive_failures.eq(mailbox_state::consecutive_failures + 1),
                            mailbox_state::last_error.eq(Some(&error)),
                            mailbox_state::last_checked_at.eq(Some(t)),
                        ))
                        .returning(mailbox_state::consecutive_failures)
                        .get_result(tx)
                        .await
                )?;
                if failures >= MAX_FAILURES {
                    let reason = format!("{failures} connection failures in a row; last: {error}");
                    let enabled = channel_instances::table.find(channel_id).filter(channel_instances::enabled.eq(true));
                    db!(
                        tx,
                        diesel::update(enabled)
                            .set((
                                channel_instances::enabled.eq(false),
                                channel_instances::disabled_reason.eq(Some(&reason)),
                                channel_instances::updated_at.eq(t),
                            ))
                            .execute(tx)
                            .await
                    )?;
                }
                Ok(failures)
            })
            .await
        })
        .await
}

/// Forget the failures (an admin re-enabled the mailbox).
pub async fn reset_failures(store: &Store, channel_id: i64) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            db!(
                tx,
                diesel::update(mailbox_state::table.find(channel_id))
                    .set((mailbox_state::consecutive_failures.eq(0), mailbox_state::last_error.eq(None::<String>)))
                    .execute(tx)
                    .await
            )?;
            Ok(())
        })
        .await
}

/// Remote keys this mailbox imported and left on the server (POP3 without delete).
pub async fn seen_keys(store: &Store, channel_id: i64) -> StoreResult<HashSet<String>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let keys: Vec<String> = db!(
                tx,
                mailbox_seen::table
                    .filter(mailbox_seen::channel_instance_id.eq(channel_id))
                    .select(mailbox_seen::mail_key)
                    .load(tx)
                    .await
            )?;
            Ok(keys.into_iter().collect())
        })
        .await
}

pub async fn mark_seen(store: &Store, channel_id: i64, key: String) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            db!(
                tx,
                diesel::insert_into(mailbox_seen::table)
                    .values((
                        mailbox_seen::channel_instance_id.eq(channel_id),
                        mailbox_seen::mail_key.eq(&key),
                        mailbox_seen::created_at.eq(now()),
                    ))
                    .on_conflict_do_nothing()
                    .execute(tx)
                    .await
            )?;
            Ok(())
        })
        .await
}
