//! The durable outbox: one row per outbound delivery (an agent reply to send by SMTP, to POST to
//! a webhook, …), written in the same transaction as the message it delivers, so a crash can
//! never lose a reply nor send one that was not stored. Each channel's dispatcher drains it.
//! Whether a message gets a row at all is one pure decision, [`queues_reply`].

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::events::{self, EventRow, NewEvent};
use super::models::OutboxItem;
use super::schema::outbox;
use super::{Store, StoreResult, Tx};
use crate::db;
use crate::domain::{ChannelKind, Direction};

/// Whether a new message gets an outbox row: only outbound messages, only on an enabled channel
/// (a disabled one queues nothing new), and only on a kind that has a sender — a row for a kind
/// without one would stay pending for ever (#14 item 12).
pub fn queues_reply(channel_kind: ChannelKind, channel_enabled: bool, direction: Direction) -> bool {
    direction == Direction::Out && channel_enabled && channel_kind.has_sender()
}

pub use super::models::NewDelivery;

/// A pending delivery of message `message_id`, due now.
pub fn new_delivery(channel_instance_id: i64, conversation_id: i64, message_id: i64, at: NaiveDateTime) -> NewDelivery {
    NewDelivery {
        delivery_id: uuid::Uuid::new_v4().to_string(),
        channel_instance_id,
        conversation_id: Some(conversation_id),
        message_id: Some(message_id),
        kind: "message.created",
        payload: "{}".into(),
        state: "pending",
        attempts: 0,
        next_attempt_at: at,
        created_at: at,
    }
}

/// The newest deliveries of a channel (its delivery log).
pub async fn list_for_channel(store: &Store, channel_instance_id: i64, limit: i64) -> StoreResult<Vec<OutboxItem>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                outbox::table
                    .filter(outbox::channel_instance_id.eq(channel_instance_id))
                    .order(outbox::id.desc())
                    .limit(limit)
                    .select(OutboxItem::as_select())
                    .load(tx)
                    .await
            )?)
        })
        .await
}

/// Deliveries queued for one message (tests and the message view use it).
pub async fn for_message(store: &Store, message_id: i64) -> StoreResult<Vec<OutboxItem>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                outbox::table
                    .filter(outbox::message_id.eq(message_id))
                    .order(outbox::id)
                    .select(OutboxItem::as_select())
                    .load(tx)
                    .await
            )?)
        })
        .await
}

/// Deliveries due now on enabled channels of these kinds, at most one per conversation — the
/// oldest pending one, so a conversation's replies go out in order (a later one waits while an
/// earlier one is being retried).
pub async fn due(
    store: &Store,
    channel_kinds: &[ChannelKind],
    delivery_kinds: &[&'static str],
    limit: i64,
) -> StoreResult<Vec<OutboxItem>> {
    use super::schema::channel_instances;
    let kinds: Vec<ChannelKind> = channel_kinds.to_vec();
    let delivery_kinds: Vec<&'static str> = delivery_kinds.to_vec();
    store
        .run(move |store| async move {
            let t = super::now();
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let candidates: Vec<OutboxItem> = db!(
                tx,
                outbox::table
                    .inner_join(channel_instances::table)
                    .filter(outbox::state.eq("pending"))
                    .filter(outbox::next_attempt_at.le(t))
                    .filter(outbox::locked_until.is_null().or(outbox::locked_until.lt(t)))
                    .filter(channel_instances::enabled.eq(true))
                    .filter(channel_instances::kind.eq_any(&kinds))
                    .filter(outbox::kind.eq_any(&delivery_kinds))
                    .order(outbox::id)
                    .limit(limit)
                    .select(OutboxItem::as_select())
                    .load(tx)
                    .await
            )?;
            let conversations: Vec<i64> = candidates.iter().filter_map(|c| c.conversation_id).collect();
            // Order holds within one stream (replies; notifications): a notification waiting for a
            // mailbox must not hold a conversation's replies back.
            let firsts: Vec<(Option<i64>, Option<i64>)> = db!(
                tx,
                outbox::table
                    .filter(outbox::state.eq("pending"))
                    .filter(outbox::kind.eq_any(&delivery_kinds))
                    .filter(outbox::conversation_id.eq_any(&conversations))
                    .group_by(outbox::conversation_id)
                    .select((outbox::conversation_id, diesel::dsl::min(outbox::id)))
                    .load(tx)
                    .await
            )?;
            Ok(candidates
                .into_iter()
                .filter(|c| match c.conversation_id {
                    None => true,
                    Some(conv) => firsts.iter().any(|(fc, first)| *fc == Some(conv) && *first == Some(c.id)),
                })
                .collect())
        })
        .await
}

/// Claim a delivery until `until`; false when another dispatcher holds it or it is no longer pending.
pub async fn claim(store: &Store, id: i64, until: NaiveDateTime) -> StoreResult<bool> {
    store
        .run(move |store| async move {
            let t = super::now();
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            let free = outbox::table
                .filter(outbox::id.eq(id))
                .filter(outbox::state.eq("pending"))
                .filter(outbox::locked_until.is_null().or(outbox::locked_until.lt(t)));
            let n = db!(tx, diesel::update(free).set(outbox::locked_until.eq(Some(until))).execute(tx).await)?;
            Ok(n == 1)
        })
        .await
}

/// Record the outcome of one attempt. `next` = `None` after success; `Some(Some(t))` retry at `t`;
/// `Some(None)` give up (failed). A delivery of a message whose state or error changed also records a
/// `message.updated` event in the same transaction (its `MessageView.delivery` changed; a retry failing as the one
/// before does not); the events come back to be published by the change layer.
pub async fn finish(
    store: &Store,
    id: i64,
    error: Option<String>,
    next: Option<Option<NaiveDateTime>>,
) -> StoreResult<Vec<EventRow>> {
    store
        .run(move |store| async move {
            let t = super::now();
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let row = outbox::table.find(id);
                let before: Option<(String, Option<String>)> =
                    db!(tx, row.select((outbox::state, outbox::last_error)).first(tx).await.optional())?;
                let unlocked = outbox::locked_until.eq(None::<NaiveDateTime>);
                let attempted = (outbox::attempts.eq(outbox::attempts + 1), outbox::updated_at.eq(Some(t)));
                let n = match next {
                    None => {
                        let delivered = (outbox::state.eq("delivered"), outbox::delivered_at.eq(Some(t)));
                        let values = (delivered, attempted, outbox::last_error.eq(None::<String>), unlocked);
                        db!(tx, diesel::update(row).set(values).execute(tx).await)?
                    }
                    Some(Some(at)) => {
                        let values =
                            (attempted, outbox::next_attempt_at.eq(at), outbox::last_error.eq(&error), unlocked);
                        db!(tx, diesel::update(row).set(values).execute(tx).await)?
                    }
                    Some(None) => {
                        let values = (outbox::state.eq("failed"), attempted, outbox::last_error.eq(&error), unlocked);
                        db!(tx, diesel::update(row).set(values).execute(tx).await)?
                    }
                };
                // A retry that failed the same way as the one before changes nothing an agent sees.
                let (state_after, error_after) = match next {
                    None => ("delivered", None),
                    Some(Some(_)) => ("pending", error.as_ref()),
                    Some(None) => ("failed", error.as_ref()),
                };
                let unchanged = before.as_ref().is_some_and(|(s, e)| s == state_after && e.as_ref() == error_after);
                if n == 0 || unchanged {
                    return Ok(Vec::new());
                }
                let (channel, conversation, message, kind): (i64, Option<i64>, Option<i64>, String) = db!(
                    tx,
                    outbox::table
                        .find(id)
                        .select((
                            outbox::channel_instance_id,
                            outbox::conversation_id,
                            outbox::message_id,
                            outbox::kind
                        ))
                        .first(tx)
                        .await
                )?;
                let (Some(conversation_id), Some(message_id), "message.created") =
                    (conversation, message, kind.as_str())
                else {
                    return Ok(Vec::new());
                };
                let event = events::record(
                    tx,
                    NewEvent {
                        conversation_id,
                        channel_instance_id: channel,
                        kind: events::MESSAGE_UPDATED,
                        seq: None,
                        message_id: Some(message_id),
                        created_at: t,
                    },
                )
                .await?;
                Ok(vec![event])
            })
            .await
        })
        .await
}

pub async fn get(store: &Store, id: i64) -> StoreResult<OutboxItem> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(tx, outbox::table.find(id).select(OutboxItem::as_select()).first(tx).await)?)
        })
        .await
}

/// Queue a delivery again (manual re-send from the delivery log): pending, due now, same delivery id. Conditional
/// on no attempt being in flight (a claimed row's `locked_until` lies ahead): releasing a claimed row would let
/// another dispatcher send it while the first still is — sent twice. `None`: it is being sent right now. A
/// message's delivery also records its `message.updated` event (its `delivery` is pending again), returned to be
/// published by the change layer, as a "Retry" does.
pub async fn resend(
    store: &Store,
    id: i64,
    actor: super::audit::Actor,
) -> StoreResult<Option<(OutboxItem, Vec<EventRow>)>> {
    use super::audit;
    store
        .run(move |store| async move {
            let t = super::now();
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let free = outbox::table
                    .filter(outbox::id.eq(id))
                    .filter(outbox::locked_until.is_null().or(outbox::locked_until.lt(t)));
                let values = (
                    outbox::state.eq("pending"),
                    outbox::next_attempt_at.eq(t),
                    outbox::locked_until.eq(None::<NaiveDateTime>),
                    outbox::last_error.eq(None::<String>),
                    outbox::updated_at.eq(Some(t)),
                );
                let item: Option<OutboxItem> = db!(
                    tx,
                    diesel::update(free)
                        .set(values)
                        .returning(OutboxItem::as_returning())
                        .get_result(tx)
                        .await
                        .optional()
                )?;
                let Some(item) = item else { return Ok(None) };
                let details = serde_json::json!({"delivery_id": item.delivery_id, "message_id": item.message_id});
                audit::write(tx, audit::entry(actor, "delivery.resend", "delivery", Some(item.id), details)).await?;
                let events = message_changed(tx, &item, t).await?.into_iter().collect();
                Ok(Some((item, events)))
            })
            .await
        })
        .await
}

/// What [`retry_failed`] did.
#[derive(Debug)]
pub enum Retry {
    /// The failed delivery is pending again, due now; the `message.updated` event to publish.
    Queued(Vec<EventRow>),
    /// The message's delivery is not failed (pending, being sent, sent): nothing changed.
    NotFailed,
    /// The message has no delivery (an incoming message, a note, a message the channel itself reported).
    NoDelivery,
}

/// An agent's "Retry" on a failed reply (issue #17 item 5): its newest delivery goes from `failed` back to
/// `pending`, due now, with the same delivery id (the receiver can deduplicate), and the dispatcher takes it like
/// any other — the one path that sends. Conditional on `failed`: a failed row is never claimed, so the update
/// cannot race an attempt in flight, and of two retries at once only one changes anything (never sent twice).
/// The message's `message.updated` event and an audit entry are written in the same transaction.
pub async fn retry_failed(store: &Store, message_id: i64, actor: super::audit::Actor) -> StoreResult<Retry> {
    use super::audit;
    store
        .run(move |store| async move {
            let t = super::now();
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let newest: Option<OutboxItem> = db!(
                    tx,
                    outbox::table
                        .filter(outbox::message_id.eq(Some(message_id)))
                        .filter(outbox::kind.eq("message.created"))
                        .order(outbox::id.desc())
                        .select(OutboxItem::as_select())
                        .first(tx)
                        .await
                        .optional()
                )?;
                let Some(item) = newest else { return Ok(Retry::NoDelivery) };
                let failed = outbox::table.filter(outbox::id.eq(item.id)).filter(outbox::state.eq("failed"));
                let values = (
                    outbox::state.eq("pending"),
                    outbox::next_attempt_at.eq(t),
                    outbox::locked_until.eq(None::<NaiveDateTime>),
                    outbox::last_error.eq(None::<String>),
                    outbox::updated_at.eq(Some(t)),
                );
                let n = db!(tx, diesel::update(failed).set(values).execute(tx).await)?;
                if n != 1 || item.conversation_id.is_none() {
                    return Ok(Retry::NotFailed);
                }
                let details = serde_json::json!({"delivery_id": item.delivery_id, "message_id": message_id});
                audit::write(tx, audit::entry(actor, "delivery.retry", "message", Some(message_id), details)).await?;
                Ok(Retry::Queued(message_changed(tx, &item, t).await?.into_iter().collect()))
            })
            .await
        })
        .await
}

/// The `message.updated` event of a message whose delivery `item` changed (its `MessageView.delivery`); `None` for
/// a delivery of no message (a system mail).
async fn message_changed(tx: &mut Tx<'_>, item: &OutboxItem, t: NaiveDateTime) -> StoreResult<Option<EventRow>> {
    let (Some(conversation_id), Some(message_id)) = (item.conversation_id, item.message_id) else { return Ok(None) };
    let event = NewEvent {
        conversation_id,
        channel_instance_id: item.channel_instance_id,
        kind: events::MESSAGE_UPDATED,
        seq: None,
        message_id: Some(message_id),
        created_at: t,
    };
    Ok(Some(events::record(tx, event).await?))
}

/// A channel's delivery log with the number of each delivery's conversation (the ticket number agents see); the
/// notification mails of its tickets are not in it.
pub async fn log_for_channel(
    store: &Store,
    channel_instance_id: i64,
    limit: i64,
) -> StoreResult<Vec<(OutboxItem, Option<i64>)>> {
    use super::schema::conversations;
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                outbox::table
                    .left_join(conversations::table.on(outbox::conversation_id.eq(conversations::id.nullable())))
                    .filter(outbox::channel_instance_id.eq(channel_instance_id))
                    // Notification mail (issue #18) is not the channel's traffic: it leaves through a mailbox.
                    .filter(outbox::kind.ne(super::mail_notifications::NOTIFICATION_EMAIL))
                    .order(outbox::id.desc())
                    .limit(limit)
                    .select((OutboxItem::as_select(), conversations::number.nullable()))
                    .load(tx)
                    .await
            )?)
        })
        .await
}

/// Everything a connector needs to send one delivery of a message.
pub struct DeliveryContext {
    pub channel: super::models::ChannelInstance,
    pub conversation: super::models::Conversation,
    pub message: super::models::Message,
    pub attachments: Vec<super::models::Attachment>,
    /// The customer's id on this channel (`user_custom_id`), if they have one.
    pub external_id: Option<String>,
    pub author_name: String,
}

/// Load the context of a message delivery; `None` when the message or its conversation is gone.
pub async fn context(store: &Store, message_id: i64) -> StoreResult<Option<DeliveryContext>> {
    use super::models::{Attachment, ChannelInstance, Conversation, Message};
    use super::schema::{agents, attachments, channel_instances, conversations, customer_identities, messages};
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let message: Option<Message> =
                db!(tx, messages::table.find(message_id).select(Message::as_select()).first(tx).await.optional())?;
            let Some(message) = message else {
                return Ok(None);
            };
            let conversation: Conversation = db!(
                tx,
                conversations::table.find(message.conversation_id).select(Conversation::as_select()).first(tx).await
            )?;
            let channel: ChannelInstance = db!(
                tx,
                channel_instances::table
                    .find(message.channel_instance_id)
                    .select(ChannelInstance::as_select())
                    .first(tx)
                    .await
            )?;
            let channel = super::sealing::open_channel(&store, channel)?;
            let files: Vec<Attachment> = db!(
                tx,
                attachments::table
                    .filter(attachments::message_id.eq(message.id))
                    .order(attachments::id)
                    .select(Attachment::as_select())
                    .load(tx)
                    .await
            )?;
            let external_id: Option<String> = db!(
                tx,
                customer_identities::table
                    .filter(customer_identities::customer_id.eq(conversation.customer_id))
                    .filter(customer_identities::kind.eq("external"))
                    .filter(customer_identities::channel_instance_id.eq(channel.id))
                    .order(customer_identities::id)
                    .select(customer_identities::value)
                    .first(tx)
                    .await
                    .optional()
            )?;
            let author_name: Option<String> = match message.author_agent_id {
                Some(a) => db!(tx, agents::table.find(a).select(agents::name).first(tx).await.optional())?,
                None => None,
            };
            let author_name = author_name.unwrap_or_default();
            Ok(Some(DeliveryContext { channel, conversation, message, attachments: files, external_id, author_name }))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_outbound_messages_on_enabled_channels_with_a_sender_are_queued() {
        assert!(queues_reply(ChannelKind::Email, true, Direction::Out));
        assert!(queues_reply(ChannelKind::Custom, true, Direction::Out));
        assert!(!queues_reply(ChannelKind::Custom, false, Direction::Out), "disabled");
        assert!(!queues_reply(ChannelKind::Custom, true, Direction::In));
        assert!(!queues_reply(ChannelKind::Email, true, Direction::Note));
        assert!(queues_reply(ChannelKind::Mattermost, true, Direction::Out), "posted by the bot (#15)");
        assert!(queues_reply(ChannelKind::Zalo, true, Direction::Out), "the OA send API (#16)");
    }
}
