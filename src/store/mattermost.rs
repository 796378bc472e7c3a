//! Mattermost bots (issue #15): what the connector keeps besides the channel instance row — the bot's connection
//! state for the dashboard (MM-11: connected / reconnecting / needs attention, with the reason) and the newest post
//! `create_at` stored, from which a fresh `hello` re-syncs; and the links from a Mattermost *place* (a DM or
//! channel in group-chat mode, a root post in thread mode; MM-5, MM-7) to its conversation, which also say where
//! agent replies go (channel id and `root_id`). An outbound conversation (MM-12) is created here with its link in one
//! transaction ([`create_outbound`]); in thread mode its link is re-keyed to its first post ([`thread_started`]).
//!
//! Storage only: which place a post belongs to is decided in `channels::mattermost::mapping`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::audit::Actor;
use super::conversations::{CreatedConversation, NewConversation};
use super::schema::{conversations, mattermost_links, mattermost_state, messages};
use super::{Store, StoreResult, Tx, now};
use crate::db;
use crate::domain::{ChannelScope, ConnectionState};

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
            write_link(tx, channel_id, &place, conversation_id, &mm_channel_id, &root_id).await
        })
        .await
}

async fn write_link(
    tx: &mut Tx<'_>,
    channel_id: i64,
    place: &str,
    conversation_id: i64,
    mm_channel_id: &str,
    root_id: &str,
) -> StoreResult<()> {
    db!(
        tx,
        diesel::insert_into(mattermost_links::table)
            .values((
                mattermost_links::channel_instance_id.eq(channel_id),
                mattermost_links::place.eq(place),
                mattermost_links::conversation_id.eq(conversation_id),
                mattermost_links::mm_channel_id.eq(mm_channel_id),
                mattermost_links::root_id.eq(root_id),
            ))
            .on_conflict((mattermost_links::channel_instance_id, mattermost_links::place))
            .do_update()
            .set(mattermost_links::conversation_id.eq(conversation_id))
            .execute(tx)
            .await
    )?;
    Ok(())
}

/// Where replies of a conversation go: the link of the place it came from (or was started for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTarget {
    pub place: String,
    pub mm_channel_id: String,
    /// Empty: top-level.
    pub root_id: String,
}

/// The place of an outbound conversation in a channel in thread mode before its first post exists (MM-7b): the
/// post will be the thread's root, and the link is re-keyed to `root:{post}` by [`thread_started`].
pub fn unstarted_thread(conversation_id: i64) -> String {
    format!("new:{conversation_id}")
}

/// Where replies of a conversation go, if it came from (or was started for) a Mattermost place.
pub async fn reply_target(store: &Store, conversation_id: i64) -> StoreResult<Option<ReplyTarget>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let row: Option<(String, String, String)> = db!(
                tx,
                mattermost_links::table
                    .filter(mattermost_links::conversation_id.eq(conversation_id))
                    .order(mattermost_links::place)
                    .select((mattermost_links::place, mattermost_links::mm_channel_id, mattermost_links::root_id))
                    .first(tx)
                    .await
                    .optional()
            )?;
            Ok(row.map(|(place, mm_channel_id, root_id)| ReplyTarget { place, mm_channel_id, root_id }))
        })
        .await
}

/// The first post of a thread-mode outbound conversation was posted as `post_id` (MM-7b): the conversation is now
/// the place `root:{post_id}` — later replies go under it, and the customers' replies in that thread join it.
pub async fn thread_started(store: &Store, channel_id: i64, conversation_id: i64, post_id: &str) -> StoreResult<()> {
    let (old, place, root) = (unstarted_thread(conversation_id), format!("root:{post_id}"), post_id.to_owned());
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            db!(
                tx,
                diesel::update(
                    mattermost_links::table
                        .filter(mattermost_links::channel_instance_id.eq(channel_id))
                        .filter(mattermost_links::place.eq(&old))
                )
                .set((mattermost_links::place.eq(&place), mattermost_links::root_id.eq(&root)))
                .execute(tx)
                .await
            )?;
            Ok(())
        })
        .await
}

/// Where an outbound conversation's replies go (MM-12): `place` `None` is a thread not started yet
/// ([`unstarted_thread`]).
#[derive(Debug, Clone)]
pub struct OutboundPlace {
    pub place: Option<String>,
    pub mm_channel_id: String,
}

/// MM-12: an outbound conversation and its link in ONE transaction, so the dispatcher never claims its first
/// message before it knows where to post it. A replay (the same `external_message_id`) writes nothing.
pub async fn create_outbound(
    store: &Store,
    input: NewConversation,
    scope: &ChannelScope,
    actor: Actor,
    at: OutboundPlace,
) -> StoreResult<CreatedConversation> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let presence = |a: i64| store.presence(a);
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let created = super::conversations::create_in(tx, &input, &scope, actor, &presence).await?;
                if created.created {
                    let id = created.conversation.conversation.id;
                    let place = at.place.clone().unwrap_or_else(|| unstarted_thread(id));
                    write_link(tx, input.channel_id, &place, id, &at.mm_channel_id, "").await?;
                }
                Ok(created)
            })
            .await
        })
        .await
}

/// Whether the post `post_id` is stored already (its id is the message's provider id).
pub async fn has_post(store: &Store, channel_id: i64, post_id: &str) -> StoreResult<bool> {
    let post_id = post_id.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let found: Option<i64> = db!(
                tx,
                messages::table
                    .filter(messages::channel_instance_id.eq(channel_id))
                    .filter(messages::provider_message_id.eq(&post_id))
                    .select(messages::id)
                    .first(tx)
                    .await
                    .optional()
            )?;
            Ok(found.is_some())
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
