//! Mattermost bots (issue #15): what the connector keeps besides the channel instance row — the bot's connection
//! state for the dashboard (MM-11: connected / reconnecting / needs attention, with the reason) and the newest post
//! `create_at` stored, from which a fresh `hello` re-syncs; and the links from a Mattermost *place* (a DM or
//! channel in group-chat mode, a root post in thread mode; MM-5, MM-7) to its conversation, which also say where
//! agent replies go (channel id and `root_id`).
//!
//! Storage only: which place a post belongs to is decided in `channels::mattermost::mapping`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{conversations, mattermost_links, mattermost_state};
use super::{Store, StoreResult, now};
use crate::db;
use crate::domain::ConnectionState;

/// A bot's connection as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotState {
    pub state: ConnectionState,
    pub reason: Option<String>,
    pub last_create_at: i64,
    pub updated_at: NaiveDateTime,
}

/// Where a place's conversation is, and where its replies go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub conversation_id: i64,
    /// The conversation's customer (a message for it is written as theirs).
    pub customer_id: i64,
    pub mm_channel_id: String,
    /// The thread root replies are posted under; empty for top-level replies (group-chat mode).
    pub root_id: String,
}

/// The bot's state, if its connector ever wrote one.
pub async fn state(store: &Store, channel_id: i64) -> StoreResult<Option<BotState>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let row: Option<(ConnectionState, Option<String>, i64, NaiveDateTime)> = db!(
                tx,
                mattermost_state::table
                    .find(channel_id)
                    .select((
                        mattermost_state::state,
                        mattermost_state::reason,
                        mattermost_state::last_create_at,
                        mattermost_state::updated_at
                    ))
                    .first(tx)
                    .await
                    .optional()
            )?;
            Ok(row.map(|(state, reason, last_create_at, updated_at)| BotState {
                state,
                reason,
                last_create_at,
                updated_at,
            }))
        })
        .await
}

/// Record the bot's connection state (and the reason, for `needs_attention` and `reconnecting`).
pub async fn set_state(
    store: &Store,
    channel_id: i64,
    state: ConnectionState,
    reason: Option<String>,
) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            let t = now();
            db!(
                tx,
                diesel::insert_into(mattermost_state::table)
                    .values((
                        mattermost_state::channel_instance_id.eq(channel_id),
                        mattermost_state::state.eq(&state),
                        mattermost_state::reason.eq(&reason),
                        mattermost_state::last_create_at.eq(0_i64),
                        mattermost_state::updated_at.eq(t),
                    ))
                    .on_conflict(mattermost_state::channel_instance_id)
                    .do_update()
                    .set((
                        mattermost_state::state.eq(&state),
                        mattermost_state::reason.eq(&reason),
                        mattermost_state::updated_at.eq(t)
                    ))
                    .execute(tx)
                    .await
            )?;
            Ok(())
        })
        .await
}

/// Remember that posts up to `create_at` are stored (never moves backwards).
pub async fn advance(store: &Store, channel_id: i64, create_at: i64) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            db!(
                tx,
                diesel::update(
                    mattermost_state::table.find(channel_id).filter(mattermost_state::last_create_at.lt(create_at))
                )
                .set(mattermost_state::last_create_at.eq(create_at))
                .execute(tx)
                .await
            )?;
            Ok(())
        })
        .await
}

/// The conversation of `place` on the bot's channel instance, if there is one.
pub async fn link(store: &Store, channel_id: i64, place: &str) -> StoreResult<Option<Link>> {
    let place = place.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let row: Option<(i64, i64, String, String)> = db!(
                tx,
                mattermost_links::table
                    .inner_join(conversations::table.on(conversations::id.eq(mattermost_links::conversation_id)))
                    .filter(mattermost_links::channel_instance_id.eq(channel_id))
                    .filter(mattermost_links::place.eq(&place))
                    .select((
                        mattermost_links::conversation_id,
                        conversations::customer_id,
                        mattermost_links::mm_channel_id,
                        mattermost_links::root_id
                    ))
                    .first(tx)
                    .await
                    .optional()
            )?;
            Ok(row.map(|(conversation_id, customer_id, mm_channel_id, root_id)| Link {
                conversation_id,
                customer_id,
                mm_channel_id,
                root_id,
            }))
        })
        .await
}

/// Point `place` at `conversation_id` (a new place, or its conversation was closed and a new one started).
pub async fn put_link(
    store: &Store,
    channel_id: i64,
    place: &str,
    conversation_id: i64,
    mm_channel_id: &str,
    root_id: &str,
) -> StoreResult<()> {
    let (place, mm_channel_id, root_id) = (place.to_owned(), mm_channel_id.to_owned(), root_id.to_owned());
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            db!(
                tx,
                diesel::insert_into(mattermost_links::table)
                    .values((
                        mattermost_links::channel_instance_id.eq(channel_id),
                        mattermost_links::place.eq(&place),
                        mattermost_links::conversation_id.eq(conversation_id),
                        mattermost_links::mm_channel_id.eq(&mm_channel_id),
                        mattermost_links::root_id.eq(&root_id),
                    ))
                    .on_conflict((mattermost_links::channel_instance_id, mattermost_links::place))
                    .do_update()
                    .set(mattermost_links::conversation_id.eq(conversation_id))
                    .execute(tx)
                    .await
            )?;
            Ok(())
        })
        .await
}

/// Where replies of a conversation go: (Mattermost channel id, root id), if it came from a Mattermost place.
pub async fn reply_target(store: &Store, conversation_id: i64) -> StoreResult<Option<(String, String)>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                mattermost_links::table
                    .filter(mattermost_links::conversation_id.eq(conversation_id))
                    .select((mattermost_links::mm_channel_id, mattermost_links::root_id))
                    .first(tx)
                    .await
                    .optional()
            )?)
        })
        .await
}

/// The Mattermost channels the bot has conversations in: where a re-sync reads the posts it may have missed.
pub async fn known_channels(store: &Store, channel_id: i64) -> StoreResult<Vec<String>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let mut ids: Vec<String> = db!(
                tx,
                mattermost_links::table
                    .filter(mattermost_links::channel_instance_id.eq(channel_id))
                    .select(mattermost_links::mm_channel_id)
                    .load(tx)
                    .await
            )?;
            ids.sort();
            ids.dedup();
            Ok(ids)
        })
        .await
}

/// Attach a file that came with a customer's post to its stored message (MM-10; the bytes are already in
/// `crate::blobs`). Returns the attachment's id.
pub async fn attach(store: &Store, message_id: i64, file: super::attachments::NewAttachment) -> StoreResult<i64> {
    use super::schema::attachments;
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                diesel::insert_into(attachments::table)
                    .values((
                        attachments::message_id.eq(Some(message_id)),
                        attachments::uploaded_by.eq(file.uploaded_by),
                        attachments::file_name.eq(&file.file_name),
                        attachments::mime_type.eq(&file.mime_type),
                        attachments::size_bytes.eq(file.size_bytes),
                        attachments::sha256.eq(&file.sha256),
                        attachments::storage_key.eq(&file.storage_key),
                        attachments::created_at.eq(now()),
                    ))
                    .returning(attachments::id)
                    .get_result(tx)
                    .await
            )?)
        })
        .await
}
