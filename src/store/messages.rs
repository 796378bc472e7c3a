//! Messages of a conversation: reading them by sequence number, and appending agent replies and
//! internal notes. Each append takes the next per-conversation `seq` in the same transaction that
//! writes the message (DESIGN invariant 2), and an outbound reply gets its outbox row there too
//! (invariant 1). Internal notes never get one (CORE-10).

use chrono::Duration;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use diesel::sql_types::Bool;

use super::audit::Actor;
use super::conversations::{
    Contact, ConversationPatch, ConversationRow, Inserted, NewConversationRow, apply_patch, decorate_one, effect,
    insert, load_in_scope, resolve_contact, status_base, tags_of,
};
use super::events::{self, EventRow, NewEvent};
use super::locks::{self, Subject};
use super::models::{Attachment, ChannelInstance, Conversation, Customer, Message};
use super::schema::{
    agents, attachments, channel_instances, conversations, customer_identities, customers, messages, outbox, statuses,
};
use super::{Store, StoreError, StoreResult, Tx, Violation, now};
use crate::db;
use crate::domain::lifecycle::{self, ChatChange, Event, StatusChange};
use crate::domain::{ChannelKind, ChannelScope, Direction, Source, StatusBase};

#[derive(Clone)]
pub struct NewReply {
    pub conversation_id: i64,
    pub agent_id: i64,
    /// An internal note (technicians only) rather than a reply to the customer.
    pub note: bool,
    pub source: Source,
    pub content: String,
    pub content_html: Option<String>,
    pub quoted_message_id: Option<i64>,
    pub attachment_ids: Vec<i64>,
    /// "Send and set status" in one action (HD-10).
    pub then: Option<ConversationPatch>,
    /// The agents a note mentions (issue #17 item 3), as requested: checked against the note's text and
    /// the conversation's channel in its transaction (`store::notifications::record_mentions`).
    pub mentions: Vec<i64>,
}

pub struct AppendedMessage {
    pub message: Message,
    pub attachments: Vec<Attachment>,
    pub conversation: ConversationRow,
    pub events: Vec<EventRow>,
}

/// Messages with `after < seq < before`, oldest first, at most `limit`.
pub async fn list(
    store: &Store,
    conversation_id: i64,
    after_seq: Option<i64>,
    before_seq: Option<i64>,
    limit: i64,
    scope: &ChannelScope,
) -> StoreResult<Vec<(Message, Vec<Attachment>)>> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let c = load_in_scope(tx, conversation_id, &scope).await?;
            let mut rows: Vec<Message> = db!(tx, {
                let mut q = messages::table
                    .filter(messages::conversation_id.eq(c.id))
                    .select(Message::as_select())
                    .into_boxed();
                if let Some(after) = after_seq {
                    q = q.filter(messages::seq.gt(after));
                }
                if let Some(before) = before_seq {
                    q = q.filter(messages::seq.lt(before));
                }
                // Paging backwards from `before` wants the newest of the range.
                if before_seq.is_some() && after_seq.is_none() {
                    q.order(messages::seq.desc()).limit(limit).load(tx).await
                } else {
                    q.order(messages::seq.asc()).limit(limit).load(tx).await
                }
            })?;
            rows.sort_by_key(|m| m.seq);
            drop(conn);
            let ids: Vec<i64> = rows.iter().map(|m| m.id).collect();
            let files = super::attachments::for_messages(&store, &ids).await?;
            Ok(rows
                .into_iter()
                .map(|m| {
                    let mine = files.iter().filter(|a| a.message_id == Some(m.id)).cloned().collect();
                    (m, mine)
                })
                .collect())
        })
        .await
}

/// Append an agent reply or internal note, optionally changing the conversation's properties in
/// the same transaction.
pub async fn append_reply(
    store: &Store,
    reply: NewReply,
    scope: &ChannelScope,
    actor: Actor,
) -> StoreResult<AppendedMessage> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let before = load_in_scope(tx, reply.conversation_id, &scope).await?;
                // The lifecycle: a merged conversation is refused; a reply keeps a live chat alive.
                let base = status_base(tx, &before.status).await?;
                let effect = effect(&before, base, if reply.note { Event::Note } else { Event::AgentReply })?;
                if let Some(quoted) = reply.quoted_message_id {
                    let found: i64 = db!(
                        tx,
                        messages::table
                            .filter(messages::id.eq(quoted))
                            .filter(messages::conversation_id.eq(before.id))
                            .count()
                            .get_result(tx)
                            .await
                    )?;
                    if found == 0 {
                        return Err(StoreError::BadReference(format!("message {quoted} is not in this conversation")));
                    }
                }
                let files: Vec<Attachment> = db!(
                    tx,
                    attachments::table
                        .filter(attachments::id.eq_any(&reply.attachment_ids))
                        .select(Attachment::as_select())
                        .load(tx)
                        .await
                )?;
                for id in &reply.attachment_ids {
                    match files.iter().find(|a| a.id == *id) {
                        None => return Err(StoreError::BadReference(format!("attachment {id} does not exist"))),
                        Some(a) if a.uploaded_by != Some(reply.agent_id) => {
                            return Err(StoreError::BadReference(format!("attachment {id} does not exist")));
                        }
                        Some(a) if a.message_id.is_some() => {
                            return Err(Violation::AttachmentInUse { id: *id }.into());
                        }
                        Some(_) => {}
                    }
                }
                let (timeout_s, channel_enabled, channel_kind): (i64, bool, ChannelKind) = db!(
                    tx,
                    channel_instances::table
                        .find(before.channel_instance_id)
                        .select((
                            channel_instances::inactivity_timeout_s,
                            channel_instances::enabled,
                            channel_instances::kind,
                        ))
                        .first(tx)
                        .await
                )?;

                let direction = if reply.note { Direction::Note } else { Direction::Out };
                let deadline = if effect.is_some_and(|e| e.chat == ChatChange::KeepAlive) {
                    Some(t + Duration::seconds(timeout_s))
                } else {
                    before.inactivity_deadline
                };
                // A reply answers the customer (they wait no more); a note does not.
                let (first_response, last_agent) = if reply.note {
                    (before.first_response_at, before.last_agent_activity_at)
                } else {
                    (before.first_response_at.or(Some(t)), Some(t))
                };
                let waiting_since = lifecycle::waiting_since(before.waiting_since, direction, t);
                let seq: i64 = db!(
                    tx,
                    diesel::update(conversations::table.find(before.id))
                        .set((
                            conversations::last_seq.eq(conversations::last_seq + 1),
                            conversations::updated_at.eq(t),
                            conversations::first_response_at.eq(first_response),
                            conversations::last_agent_activity_at.eq(last_agent),
                            conversations::waiting_since.eq(waiting_since),
                            conversations::inactivity_deadline.eq(deadline),
                        ))
                        .returning(conversations::last_seq)
                        .get_result(tx)
                        .await
                )?;
                let message: Message = db!(
                    tx,
                    diesel::insert_into(messages::table)
                        .values((
                            messages::conversation_id.eq(before.id),
                            messages::seq.eq(seq),
                            messages::direction.eq(direction.as_str()),
                            messages::source.eq(reply.source.as_str()),
                            messages::author_agent_id.eq(reply.agent_id),
                            messages::body_text.eq(&reply.content),
                            messages::body_html.eq(&reply.content_html),
                            messages::quoted_message_id.eq(reply.quoted_message_id),
                            messages::channel_instance_id.eq(before.channel_instance_id),
                            messages::created_at.eq(t),
                        ))
                        .returning(Message::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let linked: Vec<Attachment> = if reply.attachment_ids.is_empty() {
                    Vec::new()
                } else {
                    db!(
                        tx,
                        diesel::update(attachments::table.filter(attachments::id.eq_any(&reply.attachment_ids)))
                            .set(attachments::message_id.eq(message.id))
                            .returning(Attachment::as_returning())
                            .get_results(tx)
                            .await
                    )?
                };
                if super::outbox::queues_reply(channel_kind, channel_enabled, direction) {
                    let delivery = super::outbox::new_delivery(before.channel_instance_id, before.id, message.id, t);
                    db!(tx, diesel::insert_into(outbox::table).values(&delivery).execute(tx).await)?;
                }
                let current: Conversation =
                    db!(tx, conversations::table.find(before.id).select(Conversation::as_select()).first(tx).await)?;
                let was = current.clone();
                let updated = match &reply.then {
                    Some(patch) if !patch.is_empty() => apply_patch(tx, current, patch, actor).await?,
                    _ => current,
                };
                if reply.note && !reply.mentions.is_empty() {
                    super::notifications::record_mentions(tx, &message, &reply.mentions).await?;
                }
                let event = events::record_with(
                    tx,
                    NewEvent {
                        conversation_id: updated.id,
                        channel_instance_id: updated.channel_instance_id,
                        kind: events::MESSAGE_CREATED,
                        seq: Some(seq),
                        message_id: Some(message.id),
                        created_at: t,
                    },
                    &super::feed::Detail::change(actor.agent_id(), &was, &updated),
                )
                .await?;
                let tags = tags_of(tx, updated.id).await?;
                let customer_name: String =
                    db!(tx, customers::table.find(updated.customer_id).select(customers::name).first(tx).await)?;
                let channel_kind: ChannelKind = db!(
                    tx,
                    channel_instances::table
                        .find(updated.channel_instance_id)
                        .select(channel_instances::kind)
                        .first(tx)
                        .await
                )?;
                let mut files = linked;
                files.sort_by_key(|a| a.id);
                Ok(AppendedMessage {
                    message,
                    attachments: files,
                    conversation: ConversationRow { conversation: updated, tags, customer_name, channel_kind },
                    events: vec![event],
                })
            })
            .await
        })
        .await
}

/// One message, if its conversation is in scope.
pub async fn get(store: &Store, id: i64, scope: &ChannelScope) -> StoreResult<Message> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let m: Message = db!(tx, messages::table.find(id).select(Message::as_select()).first(tx).await)?;
            if !scope.allows(m.channel_instance_id) {
                return Err(StoreError::NotFound);
            }
            Ok(m)
        })
        .await
}

/// Author names for message views: agents by id.
pub async fn agent_names(store: &Store, ids: &[i64]) -> StoreResult<Vec<(i64, String)>> {
    let ids = ids.to_vec();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                agents::table.filter(agents::id.eq_any(&ids)).select((agents::id, agents::name)).load(tx).await
            )?)
        })
        .await
}

/// Several messages by id with their attachments, in id order (callers check scope).
pub async fn get_many(store: &Store, ids: Vec<i64>) -> StoreResult<Vec<(Message, Vec<Attachment>)>> {
    let rows: Vec<Message> = store
        .run({
            let ids = ids.clone();
            move |store| async move {
                let mut conn = store.read().await?;
                let tx = &mut conn.tx();
                Ok(db!(
                    tx,
                    messages::table
                        .filter(messages::id.eq_any(&ids))
                        .order(messages::id)
                        .select(Message::as_select())
                        .load(tx)
                        .await
                )?)
            }
        })
        .await?;
    let files = super::attachments::for_messages(store, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|m| {
            let mine = files.iter().filter(|a| a.message_id == Some(m.id)).cloned().collect();
            (m, mine)
        })
        .collect())
}

/// Which conversation a customer message is for, and from whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The one the integrator names, from this customer (CC-8); a merged one means its survivor (CC-9 c).
    Conversation { id: i64, customer_id: i64 },
    /// The latest conversation on the channel (CC-9) of the customer the integrator knows by this
    /// id (`user_custom_id`, CC-4). An id not known on the channel is a new customer, created in
    /// the same transaction with `profile` (CC-5, CC-6) and their first conversation.
    Latest { user_custom_id: String, profile: Profile },
    /// Like [`Target::Latest`], but always a new conversation for this customer: a connector that keeps its own
    /// map of places to conversations starts one for a new place (a Mattermost DM, channel or root post, MM-7).
    Fresh { user_custom_id: String, profile: Profile },
}

/// What the integrator tells about a customer with a message; used when the customer is new.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CustomerMessage {
    pub channel_id: i64,
    pub target: Target,
    pub content: String,
    pub content_html: Option<String>,
    /// Idempotency key on the channel.
    pub external_message_id: Option<String>,
    pub subject: String,
    /// Files already in the attachment store (`crate::blobs`), attached to the message in its transaction, so
    /// the `message.created` event carries them (Zalo, #16).
    pub attachments: Vec<super::attachments::NewAttachment>,
    /// The earlier message it answers (CORE-9), resolved by the connector on the same channel.
    pub quoted_message_id: Option<i64>,
    /// The business wrote it from the channel's own tools (Zalo's `oa_send_*` sent outside the product): stored as
    /// outgoing, source `channel`, by no agent, with no outbox row (it is already delivered); for the lifecycle it
    /// is an agent's reply. `false`: the customer's message.
    pub outgoing: bool,
}

impl CustomerMessage {
    /// A customer's text message with nothing else.
    pub fn text(channel_id: i64, target: Target, content: String, external_message_id: Option<String>) -> Self {
        Self {
            channel_id,
            target,
            content,
            content_html: None,
            external_message_id,
            subject: String::new(),
            attachments: Vec::new(),
            quoted_message_id: None,
            outgoing: false,
        }
    }
}

pub struct AppendedCustomer {
    pub message: Message,
    /// The files attached to it in the same transaction.
    pub attachments: Vec<Attachment>,
    pub conversation: ConversationRow,
    pub events: Vec<EventRow>,
    /// A new conversation was started (none open, or the last one closed: CC-9 a).
    pub created: bool,
    /// `external_message_id` was known: nothing was written.
    pub duplicate: bool,
}

/// Add a customer's message by the last-chat rule (CC-9), as `domain::lifecycle` decides it for
/// every channel: the target conversation (following merges) if it is open or pending; a new
/// conversation if it is closed or there is none. A pending one (any status whose base is
/// pending) is reopened to `open`; a chat that had ended becomes live again.
///
/// One conversation per customer under concurrency (CORE-7, issue #13): the decision to *start*
/// a conversation is made under the customer's decision lock ([`super::locks`]), reading their
/// latest conversation again after taking it, so concurrent messages (on any node) that all saw
/// no open conversation start one, and the others join it. A new customer is created here too,
/// under their id's lock, rather than by a second call that could race with this one. Appending
/// to an open conversation needs no lock: its row update orders concurrent appends.
///
/// Round trips, for the common case (a known customer writing to their open conversation,
/// issue #4): one read — channel, customer by `user_custom_id`, their latest conversation on the
/// channel with its status' base, and an earlier message with the same `external_message_id` —
/// then the conversation update, the message, the event, the conversation's tags. Nothing else is
/// read back: the update and inserts return their rows.
pub async fn append_customer(store: &Store, msg: CustomerMessage, actor: Actor) -> StoreResult<AppendedCustomer> {
    store
        .run(move |store| async move {
            let presence = |a: i64| store.presence(a);
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let ext: String = msg.external_message_id.clone().unwrap_or_default();
                let ext_given = msg.external_message_id.is_some();
                let target = msg.target.clone();
                let no_channel = || StoreError::BadReference(format!("channel {} does not exist", msg.channel_id));
                // (channel, customer, earlier message with this external id, conversation, its status' base)
                let (channel, customer, seen, start, start_base): (
                    ChannelInstance,
                    Customer,
                    Option<i64>,
                    Option<Conversation>,
                    Option<StatusBase>,
                ) = match &target {
                    Target::Latest { user_custom_id, profile } | Target::Fresh { user_custom_id, profile } => {
                        let (channel, customer, seen, latest, base): (
                            ChannelInstance,
                            Option<Customer>,
                            Option<i64>,
                            Option<Conversation>,
                            Option<StatusBase>,
                        ) = db!(
                            tx,
                            channel_instances::table
                                .left_join(
                                    customer_identities::table.on(customer_identities::channel_instance_id
                                        .eq(channel_instances::id.nullable())
                                        .and(customer_identities::kind.eq("external"))
                                        // Owned binds: diesel wants this joined query 'static.
                                        .and(customer_identities::value.eq(user_custom_id.clone()))),
                                )
                                .left_join(customers::table.on(customers::id.eq(customer_identities::customer_id)))
                                .left_join(
                                    messages::table.on(messages::channel_instance_id
                                        .eq(channel_instances::id)
                                        .and(messages::provider_message_id.eq(ext.clone()))
                                        .and(ext_given.into_sql::<Bool>())),
                                )
                                .left_join(
                                    conversations::table.on(conversations::channel_instance_id
                                        .eq(channel_instances::id)
                                        .and(conversations::customer_id.eq(customers::id))),
                                )
                                .left_join(statuses::table.on(statuses::key.eq(conversations::status)))
                                .filter(channel_instances::id.eq(msg.channel_id))
                                .order(conversations::id.desc())
                                .select((
                                    ChannelInstance::as_select(),
                                    Option::<Customer>::as_select(),
                                    messages::id.nullable(),
                                    Option::<Conversation>::as_select(),
                                    statuses::base.nullable(),
                                ))
                                .first(tx)
                                .await
                                .optional()
                        )?
                        .ok_or_else(no_channel)?;
                        super::channels::ensure_enabled(&channel)?;
                        match (customer, seen) {
                            (None, Some(seen)) => return replay(tx, seen).await,
                            // A new customer (or one a concurrent message is creating: the id's
                            // lock makes this wait for it, and then find it). Their latest
                            // conversation is read under the decision lock below.
                            (None, None) => {
                                let contact = Contact {
                                    channel: &channel,
                                    external_id: user_custom_id,
                                    name: &profile.name,
                                    email: &profile.email,
                                    phone: &profile.phone,
                                    company: &profile.company,
                                };
                                let id = resolve_contact(tx, &contact, t).await?;
                                let customer: Customer =
                                    db!(tx, customers::table.find(id).select(Customer::as_select()).first(tx).await)?;
                                (channel, customer, None, None, None)
                            }
                            (Some(customer), seen) => match customer.merged_into_id {
                                // Merged away: the survivor's latest conversation (read below).
                                Some(survivor) => {
                                    let latest = latest_conversation(tx, channel.id, survivor).await?;
                                    (channel, customer, seen, latest, None)
                                }
                                None => (channel, customer, seen, latest, base),
                            },
                        }
                    }
                    Target::Conversation { id, customer_id } => {
                        let channel: ChannelInstance = db!(
                            tx,
                            channel_instances::table
                                .find(msg.channel_id)
                                .select(ChannelInstance::as_select())
                                .first(tx)
                                .await
                                .optional()
                        )?
                        .ok_or_else(no_channel)?;
                        super::channels::ensure_enabled(&channel)?;
                        let customer: Customer = db!(
                            tx,
                            customers::table
                                .find(*customer_id)
                                .select(Customer::as_select())
                                .first(tx)
                                .await
                                .optional()
                        )?
                        // Answered like a customer who is not this conversation's: the id of one on a
                        // channel the caller may not see must not answer differently (invariant 4).
                        .ok_or_else(|| {
                            StoreError::BadReference(format!(
                                "conversation {id} is not user {customer_id}'s on this channel"
                            ))
                        })?;
                        let seen: Option<i64> = if ext_given {
                            db!(
                                tx,
                                messages::table
                                    .filter(messages::channel_instance_id.eq(channel.id))
                                    .filter(messages::provider_message_id.eq(&ext))
                                    .select(messages::id)
                                    .first(tx)
                                    .await
                                    .optional()
                            )?
                        } else {
                            None
                        };
                        // An idempotent replay is answered below without looking at the target.
                        let c: Option<Conversation> =
                            if seen.is_some() { None } else { Some(load_in_scope(tx, *id, &ChannelScope::All).await?) };
                        (channel, customer, seen, c, None)
                    }
                };
                let fresh = matches!(target, Target::Fresh { .. });
                let (start, start_base) = if fresh { (None, None) } else { (start, start_base) };
                let customer_id = customer.merged_into_id.unwrap_or(customer.id);
                if let Some(seen) = seen {
                    return replay(tx, seen).await;
                }
                if let (Target::Conversation { id, .. }, Some(c)) = (&target, &start) {
                    let owner: Option<i64> = db!(
                        tx,
                        customers::table.find(c.customer_id).select(customers::merged_into_id).first(tx).await
                    )?;
                    if c.channel_instance_id != channel.id || owner.unwrap_or(c.customer_id) != customer_id {
                        return Err(StoreError::BadReference(format!(
                            "conversation {id} is not user {}'s on this channel",
                            customer.id
                        )));
                    }
                }
                let event = if msg.outgoing { Event::AgentReply } else { Event::CustomerMessage };
                let (conv, effect) = match joinable(tx, start, start_base, event).await? {
                    Some(joined) => joined,
                    None => {
                        // Start a conversation only under the customer's decision lock, deciding
                        // again from their latest conversation as read after taking it: a
                        // concurrent message may have started one meanwhile (CORE-7, issue #13).
                        locks::take(tx, Subject::CustomerChannel { channel_id: channel.id, customer_id }).await?;
                        let latest =
                            if fresh { None } else { latest_conversation(tx, channel.id, customer_id).await? };
                        match joinable(tx, latest, None, event).await? {
                            Some(joined) => joined,
                            None => {
                                let Inserted { conversation, message, event, tags } = insert(
                                    tx,
                                    &NewConversationRow {
                                        channel: &channel,
                                        customer_id,
                                        subject: &msg.subject,
                                        direction: if msg.outgoing { Direction::Out } else { Direction::In },
                                        source: Source::Channel,
                                        author_agent_id: None,
                                        content: &msg.content,
                                        content_html: &msg.content_html,
                                        external_id: &msg.external_message_id,
                                        t,
                                        actor,
                                        presence: &presence,
                                    },
                                )
                                .await?;
                                let files =
                                    super::attachments::insert_for_message(tx, message.id, &msg.attachments, t).await?;
                                let customer_name = customer_name(tx, &customer, conversation.customer_id).await?;
                                let row =
                                    ConversationRow { conversation, tags, customer_name, channel_kind: channel.kind };
                                let message = with_quote(tx, message, &msg).await?;
                                return Ok(AppendedCustomer {
                                    message,
                                    attachments: files,
                                    conversation: row,
                                    events: vec![event],
                                    created: true,
                                    duplicate: false,
                                });
                            }
                        }
                    }
                };
                // The lifecycle's effect: a pending conversation reopens, a chat is live (again).
                let live = matches!(effect.chat, ChatChange::KeepAlive | ChatChange::Revive);
                let deadline = if live {
                    Some(t + Duration::seconds(channel.inactivity_timeout_s))
                } else {
                    conv.inactivity_deadline
                };
                let ended_at = if live { None } else { conv.ended_at };
                // Built-in statuses are keyed by their base.
                let reopen_status: String = match effect.status {
                    StatusChange::Keep => conv.status.clone(),
                    StatusChange::Set(base) => base.as_str().to_owned(),
                };
                // A message of the business (outgoing) is the agents' activity, and a first response.
                let (customer_at, agent_at, first_response) = if msg.outgoing {
                    (conv.last_customer_activity_at, Some(t), conv.first_response_at.or(Some(t)))
                } else {
                    (Some(t), conv.last_agent_activity_at, conv.first_response_at)
                };
                let direction = if msg.outgoing { Direction::Out } else { Direction::In };
                let waiting_since = lifecycle::waiting_since(conv.waiting_since, direction, t);
                let updated: Conversation = db!(
                    tx,
                    diesel::update(conversations::table.find(conv.id))
                        .set((
                            conversations::last_seq.eq(conversations::last_seq + 1),
                            conversations::updated_at.eq(t),
                            conversations::last_customer_activity_at.eq(customer_at),
                            conversations::last_agent_activity_at.eq(agent_at),
                            conversations::waiting_since.eq(waiting_since),
                            conversations::first_response_at.eq(first_response),
                            conversations::inactivity_deadline.eq(deadline),
                            conversations::ended_at.eq(ended_at),
                            conversations::status.eq(&reopen_status),
                        ))
                        .returning(Conversation::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let seq = updated.last_seq;
                if reopen_status != conv.status {
                    super::activity::status_changed_by_message(
                        tx,
                        conv.id,
                        &conv.status,
                        &reopen_status,
                        "customer_message",
                    )
                    .await?;
                }
                let message: Message = db!(
                    tx,
                    diesel::insert_into(messages::table)
                        .values((
                            messages::conversation_id.eq(conv.id),
                            messages::seq.eq(seq),
                            messages::direction.eq(if msg.outgoing { Direction::Out } else { Direction::In }.as_str()),
                            messages::source.eq(Source::Channel.as_str()),
                            messages::author_customer_id.eq((!msg.outgoing).then_some(customer_id)),
                            messages::quoted_message_id.eq(msg.quoted_message_id),
                            messages::body_text.eq(&msg.content),
                            messages::body_html.eq(&msg.content_html),
                            messages::channel_instance_id.eq(channel.id),
                            messages::provider_message_id.eq(&msg.external_message_id),
                            messages::created_at.eq(t),
                        ))
                        .returning(Message::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let files = super::attachments::insert_for_message(tx, message.id, &msg.attachments, t).await?;
                let event = events::record(
                    tx,
                    NewEvent {
                        conversation_id: conv.id,
                        channel_instance_id: channel.id,
                        kind: events::MESSAGE_CREATED,
                        seq: Some(seq),
                        message_id: Some(message.id),
                        created_at: t,
                    },
                )
                .await?;
                // The row as updated, decorated with what this transaction already read.
                let tags = tags_of(tx, updated.id).await?;
                let customer_name = customer_name(tx, &customer, updated.customer_id).await?;
                let row = ConversationRow { conversation: updated, tags, customer_name, channel_kind: channel.kind };
                Ok(AppendedCustomer {
                    message,
                    attachments: files,
                    conversation: row,
                    events: vec![event],
                    created: false,
                    duplicate: false,
                })
            })
            .await
        })
        .await
}

/// An idempotent replay of a customer message: the earlier message `seen`, nothing written.
async fn replay(tx: &mut Tx<'_>, seen: i64) -> StoreResult<AppendedCustomer> {
    let message: Message = db!(tx, messages::table.find(seen).select(Message::as_select()).first(tx).await)?;
    let row = decorate_one(tx, message.conversation_id).await?;
    let attachments: Vec<Attachment> = db!(
        tx,
        attachments::table
            .filter(attachments::message_id.eq(message.id))
            .order(attachments::id)
            .select(Attachment::as_select())
            .load(tx)
            .await
    )?;
    Ok(AppendedCustomer { message, attachments, conversation: row, events: vec![], created: false, duplicate: true })
}

/// What [`insert`] does not write for a channel's first message: the quote (its files are written by the caller).
async fn with_quote(tx: &mut Tx<'_>, message: Message, msg: &CustomerMessage) -> StoreResult<Message> {
    let Some(q) = msg.quoted_message_id else { return Ok(message) };
    Ok(db!(
        tx,
        diesel::update(messages::table.find(message.id))
            .set(messages::quoted_message_id.eq(Some(q)))
            .returning(Message::as_returning())
            .get_result(tx)
            .await
    )?)
}

/// The newest conversation of `customer_id` on channel `channel_id`, if any.
async fn latest_conversation(tx: &mut Tx<'_>, channel_id: i64, customer_id: i64) -> StoreResult<Option<Conversation>> {
    Ok(db!(
        tx,
        conversations::table
            .filter(conversations::channel_instance_id.eq(channel_id))
            .filter(conversations::customer_id.eq(customer_id))
            .order(conversations::id.desc())
            .select(Conversation::as_select())
            .first(tx)
            .await
            .optional()
    )?)
}

/// The conversation a customer's message for `start` joins, and how, by the lifecycle: it, or the
/// survivor it was merged into (CC-9 c); none when that is closed (CORE-7) or there is none.
/// `base`: its status' base, when already read. `event`: the customer's message, or an agent's reply for a
/// message the business sent from the channel's own tools ([`CustomerMessage::outgoing`]).
async fn joinable(
    tx: &mut Tx<'_>,
    start: Option<Conversation>,
    base: Option<StatusBase>,
    event: Event,
) -> StoreResult<Option<(Conversation, lifecycle::Effect)>> {
    let mut current = start;
    let mut base = base;
    let mut hops = 0;
    loop {
        let Some(c) = current else { return Ok(None) };
        let b = match base {
            Some(b) => b,
            None => status_base(tx, &c.status).await?,
        };
        match lifecycle::decide(super::conversations::lifecycle_state(&c, b)?, event) {
            lifecycle::Outcome::Apply(effect) => return Ok(Some((c, effect))),
            lifecycle::Outcome::FollowMerge => {
                hops += 1;
                if hops > 32 {
                    return Err(Violation::MergeChainTooLong.into());
                }
                let into = c.merged_into_id.unwrap_or(c.id);
                current =
                    Some(db!(tx, conversations::table.find(into).select(Conversation::as_select()).first(tx).await)?);
                base = None;
            }
            lifecycle::Outcome::StartNew => return Ok(None),
            // Never for a customer's message (the table in `domain::lifecycle`).
            lifecycle::Outcome::Unchanged => {
                return Ok(Some((c, lifecycle::Effect { status: StatusChange::Keep, chat: ChatChange::None })));
            }
            lifecycle::Outcome::Refuse(why) => return Err(Violation::refused(c.id, c.merged_into_id, why).into()),
        }
    }
}

/// The name of customer `id`, the one a conversation of `customer` belongs to: known unless it is
/// a merge survivor.
async fn customer_name(tx: &mut Tx<'_>, customer: &Customer, id: i64) -> StoreResult<String> {
    if id == customer.id {
        Ok(customer.name.clone())
    } else {
        Ok(db!(tx, customers::table.find(id).select(customers::name).first::<String>(tx).await)?)
    }
}
