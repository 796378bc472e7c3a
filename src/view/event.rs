//! The JSON of socket events: message and conversation views for event frames, rendered once
//! per event by the node that made the change (`changes`) or, for a replay or a repair, from
//! the event log (`realtime::hub`, `realtime::session`).

use std::collections::HashMap;

use super::{AuthorView, ConversationView, MentionView, MessageDelivery, MessageView};
use crate::bus::StoredEvent;
use crate::domain::Direction;
use crate::store::events::EventRow;
use crate::store::models::{Attachment, Message};
use crate::store::{self, Store, StoreResult};

/// The author of a message as shown to agents.
pub fn author(m: &Message, customer_name: &str, agent_names: &[(i64, String)]) -> AuthorView {
    match (m.author_agent_id, m.author_customer_id) {
        (Some(a), _) => AuthorView {
            kind: "agent".into(),
            id: Some(a),
            name: agent_names.iter().find(|(id, _)| *id == a).map(|(_, n)| n.clone()).unwrap_or_default(),
        },
        (None, Some(c)) => AuthorView { kind: "customer".into(), id: Some(c), name: customer_name.to_owned() },
        (None, None) => AuthorView { kind: "system".into(), id: None, name: "Switchboard".into() },
    }
}

/// Message views for rows of one conversation (one query for the agents' names).
pub async fn message_views(
    store: &Store,
    customer_name: &str,
    rows: Vec<(Message, Vec<Attachment>)>,
) -> StoreResult<Vec<MessageView>> {
    let mut ids: Vec<i64> = rows.iter().filter_map(|(m, _)| m.author_agent_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let names = if ids.is_empty() { vec![] } else { store::messages::agent_names(store, &ids).await? };
    let mut deliveries = deliveries(store, rows.iter().map(|(m, _)| m)).await?;
    let mut mentioned = mentions(store, rows.iter().map(|(m, _)| m)).await?;
    Ok(rows
        .into_iter()
        .map(|(m, files)| {
            let who = author(&m, customer_name, &names);
            let delivery = deliveries.remove(&m.id);
            let id = m.id;
            let mut view = MessageView::new(m, files, who, delivery);
            view.mentions = mentioned.remove(&id).unwrap_or_default();
            view
        })
        .collect())
}

/// The mentions of the notes among `messages` (one query, none when there is no note).
async fn mentions<'a>(
    store: &Store,
    messages: impl Iterator<Item = &'a Message>,
) -> StoreResult<HashMap<i64, Vec<MentionView>>> {
    let notes: Vec<i64> = messages.filter(|m| m.direction == Direction::Note).map(|m| m.id).collect();
    let mut out: HashMap<i64, Vec<MentionView>> = HashMap::new();
    for (message_id, agent_id, name) in store::notifications::mentions_of(store, notes).await? {
        out.entry(message_id).or_default().push(MentionView { agent_id, name });
    }
    Ok(out)
}

/// The delivery state of the outgoing ones among `messages` (one query, none when there is no outgoing one: the
/// inbound path reads nothing more).
async fn deliveries<'a>(
    store: &Store,
    messages: impl Iterator<Item = &'a Message>,
) -> StoreResult<HashMap<i64, MessageDelivery>> {
    let out: Vec<i64> = messages.filter(|m| m.direction == Direction::Out).map(|m| m.id).collect();
    if out.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(store::receipts::of_messages(store, out).await?.into_iter().map(|(id, d)| (id, d.into())).collect())
}

/// The members of an event frame: `"conversation":{…}` and, for message events, `"message":{…}`.
pub fn body(conversation: &ConversationView, message: Option<&MessageView>) -> String {
    let c = serde_json::to_string(conversation).unwrap_or_else(|_| "null".into());
    match message {
        Some(m) => {
            format!(r#""conversation":{c},"message":{}"#, serde_json::to_string(m).unwrap_or_else(|_| "null".into()))
        }
        None => format!(r#""conversation":{c}"#),
    }
}

pub fn stored(row: &EventRow, body: String) -> StoredEvent {
    StoredEvent {
        id: row.id,
        conversation_id: row.conversation_id,
        channel_id: row.channel_instance_id,
        kind: row.kind.clone(),
        seq: row.seq,
        body,
    }
}

/// Render events read back from the event log (replay and repair). Conversations are shown as
/// they are now; messages as they were written.
pub async fn from_log(store: &Store, rows: Vec<EventRow>) -> StoreResult<Vec<StoredEvent>> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let mut conv_ids: Vec<i64> = rows.iter().map(|r| r.conversation_id).collect();
    conv_ids.sort_unstable();
    conv_ids.dedup();
    let message_ids: Vec<i64> = rows.iter().filter_map(|r| r.message_id).collect();
    let conversations = store::conversations::get_many(store, conv_ids).await?;
    let messages = if message_ids.is_empty() { vec![] } else { store::messages::get_many(store, message_ids).await? };
    let mut agent_ids: Vec<i64> = messages.iter().filter_map(|(m, _)| m.author_agent_id).collect();
    agent_ids.sort_unstable();
    agent_ids.dedup();
    let names = if agent_ids.is_empty() { vec![] } else { store::messages::agent_names(store, &agent_ids).await? };
    let delivered = deliveries(store, messages.iter().map(|(m, _)| m)).await?;
    let mentioned = mentions(store, messages.iter().map(|(m, _)| m)).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(conv) = conversations.iter().find(|c| c.conversation.id == row.conversation_id) else {
            continue;
        };
        let view = ConversationView::from(conv.clone());
        let message = row.message_id.and_then(|mid| messages.iter().find(|(m, _)| m.id == mid)).map(|(m, files)| {
            let delivery = delivered.get(&m.id).cloned();
            let mut view = MessageView::new(m.clone(), files.clone(), author(m, &conv.customer_name, &names), delivery);
            view.mentions = mentioned.get(&m.id).cloned().unwrap_or_default();
            view
        });
        out.push(stored(&row, body(&view, message.as_ref())));
    }
    Ok(out)
}
