//! Zalo Official Accounts (issue #16): what the channel keeps besides its channel instance row.
//!
//! - **Tokens** (`zalo_tokens`): the OA access and refresh tokens, sealed at rest like every channel secret
//!   ([`super::sealing`]), their expiry, a *refresh claim* (Zalo's refresh tokens are single use: one node at a time
//!   may spend one, [`claim_refresh`]) and the connection state the dashboard shows (connected / needs attention,
//!   with the reason and since when). A refresh's new tokens are written in one statement that also checks nobody
//!   changed them meanwhile ([`refreshed`]); the stored refresh token is only ever replaced by its successor.
//! - **Events** (`zalo_events`): every webhook event as Zalo sent it, stored before the webhook is answered
//!   ([`insert_events`]: many in one transaction, a retried event ignored by its dedupe key) and marked processed
//!   after its effect committed ([`events_done`]).
//! - The few reads and writes the processor needs around the change layer: a message by its Zalo id (quotes,
//!   echoes, idempotency), recording the `message_id` Zalo gave our reply, whether a reply to a user is being
//!   sent right now, delivery and read receipts ([`receipts`]) and follow / unfollow on the customer's profile.
//!
//! Storage only: what an event means is decided in `channels::zalo`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Map, Value};

use super::audit::Actor;
use super::channels::CreateChannel;
use super::events::{self, EventRow, NewEvent};
use super::models::{ChannelInstance, ZaloEvent};
use super::schema::{
    channel_instances, conversations, customer_identities, customers, message_receipts, messages, outbox, zalo_events,
    zalo_sent, zalo_tokens,
};
use super::{Store, StoreResult, Tx, now, sealing};
use crate::db;
use crate::domain::{ConnectionState, Direction, Receipt};

/// An OA's tokens and connection state, opened. `Debug` shows no token.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token expires; `None`: not known (refreshed at the first chance).
    pub expires_at: Option<NaiveDateTime>,
    /// A node is refreshing until then.
    pub refreshing_until: Option<NaiveDateTime>,
    /// Bumped by every change of the tokens: a refresh commits only over the generation it started from.
    pub generation: i64,
    pub state: ConnectionState,
    pub reason: Option<String>,
    pub state_since: NaiveDateTime,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("expires_at", &self.expires_at)
            .field("generation", &self.generation)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Tokens as an admin gives them (ZL-1).
#[derive(Clone)]
pub struct NewTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: Option<NaiveDateTime>,
}

type TokenRow =
    (String, String, Option<NaiveDateTime>, Option<NaiveDateTime>, i64, ConnectionState, Option<String>, NaiveDateTime);

fn open_tokens(store: &Store, row: TokenRow) -> StoreResult<Tokens> {
    let secrets = store.secrets()?;
    let (access, refresh, expires_at, refreshing_until, generation, state, reason, state_since) = row;
    Ok(Tokens {
        access_token: secrets.open_text(&access)?,
        refresh_token: secrets.open_text(&refresh)?,
        expires_at,
        refreshing_until,
        generation,
        state,
        reason,
        state_since,
    })
}

async fn token_row(tx: &mut Tx<'_>, channel_id: i64) -> StoreResult<Option<TokenRow>> {
    Ok(db!(
        tx,
        zalo_tokens::table
            .find(channel_id)
            .select((
                zalo_tokens::access_token,
                zalo_tokens::refresh_token,
                zalo_tokens::expires_at,
                zalo_tokens::refreshing_until,
                zalo_tokens::generation,
                zalo_tokens::state,
                zalo_tokens::reason,
                zalo_tokens::state_since,
            ))
            .first(tx)
            .await
            .optional()
    )?)
}

/// Connect an OA: its channel row and its tokens in one transaction (the secrets of both sealed).
pub async fn connect(
    store: &Store,
    input: CreateChannel,
    tokens: NewTokens,
    actor: Actor,
) -> StoreResult<ChannelInstance> {
    store
        .run_change(move |store| async move {
            let settings = sealing::seal_settings(&store, &input.settings)?;
            let secret = sealing::seal_secret(&store, input.secret.as_deref())?;
            let secrets = store.secrets()?;
            let access = secrets.seal(&tokens.access_token).into_string();
            let refresh = secrets.seal(&tokens.refresh_token).into_string();
            let mut conn = store.write().await?;
            let ch = conn
                .transaction(async |tx| {
                    let ch = super::channels::insert(tx, &input, &settings, &secret, actor).await?;
                    let t = now();
                    db!(
                        tx,
                        diesel::insert_into(zalo_tokens::table)
                            .values((
                                zalo_tokens::channel_instance_id.eq(ch.id),
                                zalo_tokens::access_token.eq(&access),
                                zalo_tokens::refresh_token.eq(&refresh),
                                zalo_tokens::expires_at.eq(tokens.expires_at),
                                zalo_tokens::generation.eq(0_i64),
                                zalo_tokens::state.eq(ConnectionState::Connected),
                                zalo_tokens::state_since.eq(t),
                                zalo_tokens::updated_at.eq(t),
                            ))
                            .execute(tx)
                            .await
                    )?;
                    Ok(ch)
                })
                .await?;
            sealing::open_channel(&store, ch)
        })
        .await
}

/// The OA's tokens and state, if it has any (a Zalo channel made by the generic channel API has none).
pub async fn tokens(store: &Store, channel_id: i64) -> StoreResult<Option<Tokens>> {
    store
        .run(move |store| async move {
            let row = {
                let mut conn = store.read().await?;
                token_row(&mut conn.tx(), channel_id).await?
            };
            row.map(|r| open_tokens(&store, r)).transpose()
        })
        .await
}

/// An admin gives new tokens (ZL-1): they replace the stored ones whatever a refresh is doing (its commit will
/// find another generation and change nothing), and the state is connected again.
pub async fn set_tokens(store: &Store, channel_id: i64, tokens: NewTokens) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let secrets = store.secrets()?;
            let access = secrets.seal(&tokens.access_token).into_string();
            let refresh = secrets.seal(&tokens.refresh_token).into_string();
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            let t = now();
            let values = (
                zalo_tokens::channel_instance_id.eq(channel_id),
                zalo_tokens::access_token.eq(&access),
                zalo_tokens::refresh_token.eq(&refresh),
                zalo_tokens::expires_at.eq(tokens.expires_at),
                zalo_tokens::refreshing_until.eq(None::<NaiveDateTime>),
                zalo_tokens::state.eq(ConnectionState::Connected),
                zalo_tokens::reason.eq(None::<String>),
                zalo_tokens::state_since.eq(t),
                zalo_tokens::updated_at.eq(t),
            );
            db!(
                tx,
                diesel::insert_into(zalo_tokens::table)
                    .values((values.clone(), zalo_tokens::generation.eq(0_i64)))
                    .on_conflict(zalo_tokens::channel_instance_id)
                    .do_update()
                    .set((values, zalo_tokens::generation.eq(zalo_tokens::generation + 1)))
                    .execute(tx)
                    .await
            )?;
            Ok(())
        })
        .await
}

/// Claim the refresh of the tokens of `generation` until `until`: the claimed tokens, or `None` when another
/// node is refreshing (its claim has not lapsed) or the tokens changed since.
pub async fn claim_refresh(
    store: &Store,
    channel_id: i64,
    generation: i64,
    until: NaiveDateTime,
) -> StoreResult<Option<Tokens>> {
    store
        .run(move |store| async move {
            let row = {
                let mut conn = store.write().await?;
                let tx = &mut conn.tx();
                let t = now();
                let free = zalo_tokens::table
                    .find(channel_id)
                    .filter(zalo_tokens::generation.eq(generation))
                    .filter(zalo_tokens::refreshing_until.is_null().or(zalo_tokens::refreshing_until.lt(t)));
                let n =
                    db!(tx, diesel::update(free).set(zalo_tokens::refreshing_until.eq(Some(until))).execute(tx).await)?;
                if n == 0 {
                    return Ok(None);
                }
                token_row(tx, channel_id).await?
            };
            row.map(|r| open_tokens(&store, r)).transpose()
        })
        .await
}

/// Store a refresh's new tokens over `generation` (one statement: the old refresh token is replaced by its
/// successor and by nothing else), clear the claim, and mark the OA connected. False when the tokens changed
/// meanwhile (an admin gave new ones): nothing is written.
pub async fn refreshed(
    store: &Store,
    channel_id: i64,
    generation: i64,
    access_token: &str,
    refresh_token: &str,
    expires_at: NaiveDateTime,
) -> StoreResult<bool> {
    let (access_token, refresh_token) = (access_token.to_owned(), refresh_token.to_owned());
    store
        .run(move |store| async move {
            let secrets = store.secrets()?;
            let access = secrets.seal(&access_token).into_string();
            let refresh = secrets.seal(&refresh_token).into_string();
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let before: Option<(ConnectionState, NaiveDateTime)> = db!(
                    tx,
                    zalo_tokens::table
                        .find(channel_id)
                        .filter(zalo_tokens::generation.eq(generation))
                        .select((zalo_tokens::state, zalo_tokens::state_since))
                        .first(tx)
                        .await
                        .optional()
                )?;
                let Some((state, since)) = before else { return Ok(false) };
                let since = if state == ConnectionState::Connected { since } else { t };
                let row = zalo_tokens::table.find(channel_id).filter(zalo_tokens::generation.eq(generation));
                let n = db!(
                    tx,
                    diesel::update(row)
                        .set((
                            zalo_tokens::access_token.eq(&access),
                            zalo_tokens::refresh_token.eq(&refresh),
                            zalo_tokens::expires_at.eq(Some(expires_at)),
                            zalo_tokens::refreshing_until.eq(None::<NaiveDateTime>),
                            zalo_tokens::generation.eq(generation + 1),
                            zalo_tokens::state.eq(ConnectionState::Connected),
                            zalo_tokens::reason.eq(None::<String>),
                            zalo_tokens::state_since.eq(since),
                            zalo_tokens::updated_at.eq(t),
                        ))
                        .execute(tx)
                        .await
                )?;
                Ok(n == 1)
            })
            .await
        })
        .await
}

/// A refresh of `generation` did not succeed: the claim is let go; `attention` (Zalo refused the refresh token)
/// marks the OA as needing an admin, with the reason.
pub async fn refresh_failed(
    store: &Store,
    channel_id: i64,
    generation: i64,
    attention: Option<String>,
) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            let row = zalo_tokens::table.find(channel_id).filter(zalo_tokens::generation.eq(generation));
            let t = now();
            match attention {
                Some(reason) => db!(
                    tx,
                    diesel::update(row)
                        .set((
                            zalo_tokens::refreshing_until.eq(None::<NaiveDateTime>),
                            zalo_tokens::state.eq(ConnectionState::NeedsAttention),
                            zalo_tokens::reason.eq(Some(reason)),
                            zalo_tokens::state_since.eq(t),
                            zalo_tokens::updated_at.eq(t),
                        ))
                        .execute(tx)
                        .await
                )?,
                None => db!(
                    tx,
                    diesel::update(row).set(zalo_tokens::refreshing_until.eq(None::<NaiveDateTime>)).execute(tx).await
                )?,
            };
            Ok(())
        })
        .await
}

/// An event to store as it arrived.
#[derive(Debug, Clone)]
pub struct NewZaloEvent {
    pub channel_id: i64,
    pub dedupe_key: String,
    pub zalo_user_id: String,
    pub event_name: String,
    pub body: String,
}

/// Store events in one transaction, each once per channel and dedupe key: for each, true when it is new, false
/// when it had been stored before (a retried delivery).
pub async fn insert_events(store: &Store, batch: Vec<NewZaloEvent>) -> StoreResult<Vec<bool>> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let mut out = Vec::with_capacity(batch.len());
                for e in &batch {
                    let n = db!(
                        tx,
                        diesel::insert_into(zalo_events::table)
                            .values((
                                zalo_events::channel_instance_id.eq(e.channel_id),
                                zalo_events::dedupe_key.eq(&e.dedupe_key),
                                zalo_events::zalo_user_id.eq(&e.zalo_user_id),
                                zalo_events::event_name.eq(&e.event_name),
                                zalo_events::body.eq(&e.body),
                                zalo_events::received_at.eq(t),
                                zalo_events::attempts.eq(0_i64),
                            ))
                            .on_conflict((zalo_events::channel_instance_id, zalo_events::dedupe_key))
                            .do_nothing()
                            .execute(tx)
                            .await
                    )?;
                    out.push(n == 1);
                }
                Ok(out)
            })
            .await
        })
        .await
}

/// The oldest unprocessed events of a channel, in id order (due or not: the processor keeps each user's order).
pub async fn pending_events(store: &Store, channel_id: i64, limit: i64) -> StoreResult<Vec<ZaloEvent>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                zalo_events::table
                    .filter(zalo_events::channel_instance_id.eq(channel_id))
                    .filter(zalo_events::processed_at.is_null())
                    .order(zalo_events::id)
                    .limit(limit)
                    .select(ZaloEvent::as_select())
                    .load(tx)
                    .await
            )?)
        })
        .await
}

/// How many events of a channel wait to be processed.
pub async fn pending_count(store: &Store, channel_id: i64) -> StoreResult<i64> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                zalo_events::table
                    .filter(zalo_events::channel_instance_id.eq(channel_id))
                    .filter(zalo_events::processed_at.is_null())
                    .count()
                    .get_result(tx)
                    .await
            )?)
        })
        .await
}

/// Every stored event of a channel, oldest first (tests and diagnostics).
pub async fn events_of(store: &Store, channel_id: i64) -> StoreResult<Vec<ZaloEvent>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                zalo_events::table
                    .filter(zalo_events::channel_instance_id.eq(channel_id))
                    .order(zalo_events::id)
                    .select(ZaloEvent::as_select())
                    .load(tx)
                    .await
            )?)
        })
        .await
}

/// Mark events processed (their effect committed; `error`: given up on, with why).
pub async fn events_done(store: &Store, ids: Vec<i64>, error: Option<String>) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            let values = (zalo_events::processed_at.eq(Some(now())), zalo_events::last_error.eq(&error));
            db!(
                tx,
                diesel::update(zalo_events::table.filter(zalo_events::id.eq_any(&ids))).set(values).execute(tx).await
            )?;
            Ok(())
        })
        .await
}

/// An event to try again at `next` (`counted`: an attempt failed, with `error`; else only put off).
pub async fn event_retry(
    store: &Store,
    id: i64,
    next: NaiveDateTime,
    error: Option<String>,
    counted: bool,
) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            let row = zalo_events::table.find(id);
            let add = if counted { 1_i64 } else { 0 };
            let values = (
                zalo_events::attempts.eq(zalo_events::attempts + add),
                zalo_events::next_attempt_at.eq(Some(next)),
                zalo_events::last_error.eq(&error),
            );
            db!(tx, diesel::update(row).set(values).execute(tx).await)?;
            Ok(())
        })
        .await
}

/// Forget processed events received before `before` (Zalo's retries end within about two hours).
pub async fn prune_events(store: &Store, channel_id: i64, before: NaiveDateTime) -> StoreResult<usize> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            let old = zalo_events::table
                .filter(zalo_events::channel_instance_id.eq(channel_id))
                .filter(zalo_events::processed_at.is_not_null())
                .filter(zalo_events::received_at.lt(before));
            Ok(db!(tx, diesel::delete(old).execute(tx).await)?)
        })
        .await
}

/// The message of this channel with Zalo id `msg_id` (ours or the customer's), if stored.
pub async fn message_by_zalo_id(store: &Store, channel_id: i64, msg_id: &str) -> StoreResult<Option<i64>> {
    let msg_id = msg_id.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                messages::table
                    .filter(messages::channel_instance_id.eq(channel_id))
                    .filter(messages::provider_message_id.eq(&msg_id))
                    .select(messages::id)
                    .first(tx)
                    .await
                    .optional()
            )?)
        })
        .await
}

/// Record the `message_id` Zalo gave part `part` of our reply `message_id` (ZL-6): its `oa_send_*` echo is then
/// recognised and skipped, its receipts find the reply, and a retry does not send it again. The first part's id
/// is also the message's external id.
pub async fn record_sent(
    store: &Store,
    channel_id: i64,
    message_id: i64,
    part: i64,
    zalo_msg_id: &str,
) -> StoreResult<()> {
    let zalo_msg_id = zalo_msg_id.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                db!(
                    tx,
                    diesel::insert_into(zalo_sent::table)
                        .values((
                            zalo_sent::channel_instance_id.eq(channel_id),
                            zalo_sent::zalo_msg_id.eq(&zalo_msg_id),
                            zalo_sent::message_id.eq(message_id),
                            zalo_sent::part.eq(part),
                            zalo_sent::created_at.eq(now()),
                        ))
                        .on_conflict((zalo_sent::channel_instance_id, zalo_sent::zalo_msg_id))
                        .do_nothing()
                        .execute(tx)
                        .await
                )?;
                if part == 0 {
                    db!(
                        tx,
                        diesel::update(
                            messages::table.find(message_id).filter(messages::provider_message_id.is_null())
                        )
                        .set(messages::provider_message_id.eq(Some(&zalo_msg_id)))
                        .execute(tx)
                        .await
                    )?;
                }
                Ok(())
            })
            .await
        })
        .await
}

/// How many parts of our reply `message_id` Zalo has taken (a retry sends the rest).
pub async fn sent_parts(store: &Store, message_id: i64) -> StoreResult<i64> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let max: Option<i64> = db!(
                tx,
                zalo_sent::table
                    .filter(zalo_sent::message_id.eq(message_id))
                    .select(diesel::dsl::max(zalo_sent::part))
                    .first(tx)
                    .await
            )?;
            Ok(max.map_or(0, |m| m + 1))
        })
        .await
}

/// Whether Zalo message `msg_id` is known on the channel: one of our replies' parts, or a stored message.
pub async fn is_known(store: &Store, channel_id: i64, msg_id: &str) -> StoreResult<bool> {
    let msg_id = msg_id.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let sent: i64 = db!(
                tx,
                zalo_sent::table
                    .filter(zalo_sent::channel_instance_id.eq(channel_id))
                    .filter(zalo_sent::zalo_msg_id.eq(&msg_id))
                    .count()
                    .get_result(tx)
                    .await
            )?;
            if sent > 0 {
                return Ok(true);
            }
            let stored: i64 = db!(
                tx,
                messages::table
                    .filter(messages::channel_instance_id.eq(channel_id))
                    .filter(messages::provider_message_id.eq(&msg_id))
                    .count()
                    .get_result(tx)
                    .await
            )?;
            Ok(stored > 0)
        })
        .await
}

/// Whether a reply to the customer known on the channel as `customer_key` is being sent right now (claimed by a
/// dispatcher, not finished): an `oa_send_*` event not yet matched may be its echo, so it waits for the result.
pub async fn sending_to(store: &Store, channel_id: i64, customer_key: &str) -> StoreResult<bool> {
    let key = customer_key.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let t = now();
            let n: i64 = db!(
                tx,
                outbox::table
                    .inner_join(conversations::table.on(conversations::id.nullable().eq(outbox::conversation_id)))
                    .inner_join(
                        customer_identities::table.on(customer_identities::customer_id.eq(conversations::customer_id)),
                    )
                    .filter(outbox::channel_instance_id.eq(channel_id))
                    .filter(outbox::state.eq("pending"))
                    .filter(outbox::locked_until.gt(t))
                    .filter(customer_identities::kind.eq("external"))
                    .filter(customer_identities::channel_instance_id.eq(channel_id))
                    .filter(customer_identities::value.eq(&key))
                    .count()
                    .get_result(tx)
                    .await
            )?;
            Ok(n > 0)
        })
        .await
}

/// Receipts for our messages `msg_ids` (Zalo ids) on the channel: each outgoing message whose mark rises records a
/// `message.updated` event in the same transaction. Returns the events (to publish through the change layer).
pub async fn receipts(
    store: &Store,
    channel_id: i64,
    msg_ids: Vec<String>,
    receipt: Receipt,
) -> StoreResult<Vec<EventRow>> {
    if msg_ids.is_empty() {
        return Ok(Vec::new());
    }
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                // Our replies' parts (`zalo_sent`), and outgoing messages stored with a Zalo id (sent from Zalo's
                // own tools: `oa_send_*`).
                let mut found: Vec<(i64, i64)> = db!(
                    tx,
                    zalo_sent::table
                        .inner_join(messages::table.on(messages::id.eq(zalo_sent::message_id)))
                        .filter(zalo_sent::channel_instance_id.eq(channel_id))
                        .filter(zalo_sent::zalo_msg_id.eq_any(&msg_ids))
                        .select((messages::id, messages::conversation_id))
                        .load(tx)
                        .await
                )?;
                found.extend(db!(
                    tx,
                    messages::table
                        .filter(messages::channel_instance_id.eq(channel_id))
                        .filter(messages::provider_message_id.eq_any(&msg_ids))
                        .filter(messages::direction.eq(Direction::Out.as_str()))
                        .select((messages::id, messages::conversation_id))
                        .load::<(i64, i64)>(tx)
                        .await
                )?);
                found.sort_unstable();
                found.dedup();
                let mut out = Vec::new();
                for (message_id, conversation_id) in found {
                    let current: Option<Receipt> = db!(
                        tx,
                        message_receipts::table
                            .find(message_id)
                            .select(message_receipts::state)
                            .first(tx)
                            .await
                            .optional()
                    )?;
                    if current.is_some_and(|c| c.covers(receipt)) {
                        continue;
                    }
                    db!(
                        tx,
                        diesel::insert_into(message_receipts::table)
                            .values((
                                message_receipts::message_id.eq(message_id),
                                message_receipts::state.eq(receipt),
                                message_receipts::updated_at.eq(t),
                            ))
                            .on_conflict(message_receipts::message_id)
                            .do_update()
                            .set((message_receipts::state.eq(receipt), message_receipts::updated_at.eq(t)))
                            .execute(tx)
                            .await
                    )?;
                    out.push(
                        events::record(
                            tx,
                            NewEvent {
                                conversation_id,
                                channel_instance_id: channel_id,
                                kind: events::MESSAGE_UPDATED,
                                seq: None,
                                message_id: Some(message_id),
                                created_at: t,
                            },
                        )
                        .await?,
                    );
                }
                Ok(out)
            })
            .await
        })
        .await
}

/// Merge `fields` into the `custom_fields` of the customer known on the channel as `customer_key` (follow /
/// unfollow, `user_id_by_app`), creating the customer (named `name`) when Zalo told of them before any message.
pub async fn customer_fields(
    store: &Store,
    channel_id: i64,
    customer_key: &str,
    name: &str,
    fields: Map<String, Value>,
) -> StoreResult<i64> {
    let (key, name) = (customer_key.to_owned(), name.to_owned());
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let channel: ChannelInstance = db!(
                    tx,
                    channel_instances::table.find(channel_id).select(ChannelInstance::as_select()).first(tx).await
                )?;
                let name = Some(name.clone());
                let contact = super::conversations::Contact {
                    channel: &channel,
                    external_id: &key,
                    name: &name,
                    email: &None,
                    phone: &None,
                    company: &None,
                };
                let id = super::conversations::resolve_contact(tx, &contact, t).await?;
                // A merged customer's profile is the survivor's.
                let (merged_into, current): (Option<i64>, String) = db!(
                    tx,
                    customers::table
                        .find(id)
                        .select((customers::merged_into_id, customers::custom_fields))
                        .first(tx)
                        .await
                )?;
                let (id, current) = match merged_into {
                    Some(survivor) => {
                        let fields: String =
                            db!(tx, customers::table.find(survivor).select(customers::custom_fields).first(tx).await)?;
                        (survivor, fields)
                    }
                    None => (id, current),
                };
                let mut map: Map<String, Value> = serde_json::from_str(&current).unwrap_or_default();
                if fields.iter().all(|(k, v)| map.get(k) == Some(v)) {
                    return Ok(id);
                }
                map.extend(fields.clone());
                let text = Value::Object(map).to_string();
                db!(
                    tx,
                    diesel::update(customers::table.find(id))
                        .set((customers::custom_fields.eq(&text), customers::updated_at.eq(t)))
                        .execute(tx)
                        .await
                )?;
                Ok(id)
            })
            .await
        })
        .await
}
