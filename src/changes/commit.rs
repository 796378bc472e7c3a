//! Each change as one step: commit through the store, then publish the events the commit
//! recorded, rendered once. Nothing is published for a change that did not commit, and nothing
//! outside this file publishes a stored event (DESIGN invariant 1). The conversation actors call
//! these one at a time per conversation; creations call them directly (a new conversation has no
//! actor yet).

use std::sync::Arc;

use chrono::NaiveDateTime;

use crate::bus::{Bus, BusEvent};
use crate::domain::ChannelScope;
use crate::store::audit::Actor as Who;
use crate::store::conversations::{
    ConversationPatch, ConversationRow, CreatedConversation, EndReason, NewConversation,
};
use crate::store::events::EventRow;
use crate::store::messages::NewReply;
use crate::store::{self, Store, StoreResult};
use crate::view::event as render;
use crate::view::{ConversationView, MessageView};

/// What a change needs: the store that commits it and the bus that publishes it.
#[derive(Clone)]
pub struct Core {
    pub store: Store,
    pub bus: Arc<dyn Bus>,
}

pub struct Replied {
    pub message: MessageView,
    pub conversation: ConversationView,
    /// The chat's inactivity deadline after this change (`None`: not an active chat).
    pub deadline: Option<NaiveDateTime>,
}

pub struct Updated {
    pub conversation: ConversationView,
    pub deadline: Option<NaiveDateTime>,
}

pub struct Created {
    pub conversation: ConversationView,
    pub message: MessageView,
    pub deadline: Option<NaiveDateTime>,
    /// False when the idempotency key had been seen: nothing was written or published.
    pub created: bool,
}

fn deadline(row: &ConversationRow) -> Option<NaiveDateTime> {
    let c = &row.conversation;
    if c.ended_at.is_none() { c.inactivity_deadline } else { None }
}

fn publish(rt: &Core, events: &[EventRow], body: &str) {
    for e in events {
        rt.bus.publish(BusEvent::Stored(render::stored(e, body.to_owned())));
    }
}

/// A new conversation with its first message (REST API), routed and auto-assigned inside its
/// transaction: one commit, one `conversation.created` event.
pub async fn create(rt: &Core, input: NewConversation, scope: &ChannelScope, who: Who) -> StoreResult<Created> {
    let c = store::conversations::create(&rt.store, input, scope, who).await?;
    created(rt, &c).await
}

/// Publish a conversation its producer committed with its first message (the mail importer's
/// batch, [`create`]).
pub async fn created(rt: &Core, c: &CreatedConversation) -> StoreResult<Created> {
    let row = &c.conversation;
    let conversation = ConversationView::from(row.clone());
    // `store::conversations::create` links no attachments to a first message: none to read.
    let message =
        render::message_views(&rt.store, &row.customer_name, vec![(c.message.clone(), Vec::new())]).await?.remove(0);
    publish(rt, &c.events, &render::body(&conversation, Some(&message)));
    Ok(Created { conversation, message, deadline: deadline(row), created: c.created })
}

pub async fn reply(rt: &Core, reply: NewReply, scope: &ChannelScope, who: Who) -> StoreResult<Replied> {
    let appended = store::messages::append_reply(&rt.store, reply, scope, who).await?;
    let row = appended.conversation;
    let message = render::message_views(&rt.store, &row.customer_name, vec![(appended.message, appended.attachments)])
        .await?
        .remove(0);
    let d = deadline(&row);
    let conversation = ConversationView::from(row);
    publish(rt, &appended.events, &render::body(&conversation, Some(&message)));
    Ok(Replied { message, conversation, deadline: d })
}

/// Publish a message a channel connector stored with its conversation in one transaction (mail).
pub async fn appended(
    rt: &Core,
    message: store::models::Message,
    files: Vec<store::models::Attachment>,
    row: ConversationRow,
    events: &[EventRow],
) -> StoreResult<Replied> {
    let message = render::message_views(&rt.store, &row.customer_name, vec![(message, files)]).await?.remove(0);
    let d = deadline(&row);
    let conversation = ConversationView::from(row);
    publish(rt, events, &render::body(&conversation, Some(&message)));
    Ok(Replied { message, conversation, deadline: d })
}

/// Commit a mail that threads into an existing ticket (the ticket's actor calls this, one change at a time). Only
/// the commit: the mail importer publishes what it stored in mail order ([`created`], [`appended`]), after the new
/// tickets stored before it in the same batch.
pub async fn mail(
    rt: &Core,
    mail: Arc<store::email::IncomingMail>,
    subject: String,
) -> StoreResult<store::email::Imported> {
    store::email::import_to_ticket(&rt.store, mail, subject).await
}

pub async fn update(
    rt: &Core,
    id: i64,
    patch: &ConversationPatch,
    scope: &ChannelScope,
    who: Who,
) -> StoreResult<Updated> {
    let changed = store::conversations::update(&rt.store, id, patch, scope, who).await?;
    let d = deadline(&changed.conversation);
    let conversation = ConversationView::from(changed.conversation);
    publish(rt, &changed.events, &render::body(&conversation, None));
    Ok(Updated { conversation, deadline: d })
}

/// A customer's rating of their ticket (HD-12, issue #18): committed with its `conversation.updated` event (none
/// when the same rating was given again), then published so the ticket view shows it live.
pub async fn rate(rt: &Core, id: i64, customer_id: i64, rating: crate::domain::Rating) -> StoreResult<Updated> {
    let rated = store::portal::rate(&rt.store, customer_id, id, rating).await?;
    let d = deadline(&rated.conversation);
    let conversation = ConversationView::from(rated.conversation);
    publish(rt, &rated.events, &render::body(&conversation, None));
    Ok(Updated { conversation, deadline: d })
}

/// A ticket a customer opened in the portal (issue #18), committed on the web channel with its first message.
pub async fn portal_ticket(rt: &Core, input: store::portal::NewTicket) -> StoreResult<Created> {
    let channel = store::portal::web_channel(&rt.store).await?;
    let c = store::portal::open_ticket(&rt.store, channel, input).await?;
    created(rt, &c).await
}

pub async fn merge(rt: &Core, id: i64, into: i64, scope: &ChannelScope, who: Who) -> StoreResult<Updated> {
    let changed = store::conversations::merge(&rt.store, id, into, scope, who).await?;
    // Each conversation's event carries that conversation.
    let rows = store::conversations::get_many(&rt.store, vec![id, into]).await?;
    for event in &changed.events {
        if let Some(row) = rows.iter().find(|r| r.conversation.id == event.conversation_id) {
            publish(rt, std::slice::from_ref(event), &render::body(&ConversationView::from(row.clone()), None));
        }
    }
    let d = deadline(&changed.conversation);
    Ok(Updated { conversation: ConversationView::from(changed.conversation), deadline: d })
}

pub async fn end(
    rt: &Core,
    id: i64,
    scope: &ChannelScope,
    status: Option<String>,
    reason: EndReason,
    who: Who,
) -> StoreResult<Option<Updated>> {
    let Some(changed) = store::conversations::end_chat(&rt.store, id, scope, status, reason, who).await? else {
        return Ok(None);
    };
    let conversation = ConversationView::from(changed.conversation);
    publish(rt, &changed.events, &render::body(&conversation, None));
    Ok(Some(Updated { conversation, deadline: None }))
}

pub struct Inbound {
    pub conversation: ConversationView,
    pub message: MessageView,
    /// A new conversation was started for it (CC-9 a).
    pub created: bool,
    /// The same `external_message_id` had been received before: nothing new.
    pub duplicate: bool,
    pub deadline: Option<NaiveDateTime>,
}

/// A customer's message from a channel, by the last-chat rule; a new conversation is routed
/// and auto-assigned in the same transaction (CC-12).
pub async fn customer_message(rt: &Core, msg: store::messages::CustomerMessage) -> StoreResult<Inbound> {
    let appended = store::messages::append_customer(&rt.store, msg, Who::System).await?;
    let row = appended.conversation;
    let message = render::message_views(&rt.store, &row.customer_name, vec![(appended.message, appended.attachments)])
        .await?
        .remove(0);
    let d = deadline(&row);
    let conversation = ConversationView::from(row);
    publish(rt, &appended.events, &render::body(&conversation, Some(&message)));
    Ok(Inbound { conversation, message, created: appended.created, duplicate: appended.duplicate, deadline: d })
}

/// Publish `message.updated` events a store change recorded (a delivery's outcome, a channel's receipts): each
/// with its conversation and message as they are now (`MessageView.delivery`).
pub async fn message_updated(rt: &Core, events: &[EventRow]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    for e in render::from_log(&rt.store, events.to_vec()).await? {
        rt.bus.publish(BusEvent::Stored(e));
    }
    Ok(())
}
