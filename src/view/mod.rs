//! The JSON shapes of a conversation and its messages, the same for the REST API (`http::views`
//! re-exports them) and for socket events ([`event`]): one place that decides what agents see.
//! Times are RFC 3339 UTC.

pub mod event;
pub mod notification;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::domain::Mode;
use crate::store::conversations::ConversationRow;
use crate::store::models;

pub(crate) fn ts(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

pub(crate) fn ts_opt(t: Option<NaiveDateTime>) -> Option<DateTime<Utc>> {
    t.map(ts)
}

pub(crate) fn json_object(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversationView {
    pub id: i64,
    /// Human-readable number (shown as `#1234`, used in email subjects as `{#1234}`).
    pub number: i64,
    pub channel_id: i64,
    pub channel_kind: String,
    pub customer_id: i64,
    pub customer_name: String,
    pub mode: String,
    pub status: String,
    pub assignee_id: Option<i64>,
    pub team_id: Option<i64>,
    pub priority: String,
    pub subject: String,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    /// Sequence number of the newest message.
    pub last_seq: i64,
    pub merged_into_id: Option<i64>,
    /// True for a chat still in progress (not yet in the ticket list).
    pub active_chat: bool,
    /// When an idle chat will end by itself.
    pub inactivity_deadline: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub last_customer_activity_at: Option<DateTime<Utc>>,
    pub last_agent_activity_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Since when the customer waits for an answer: the time of their last message, while no reply (an outgoing
    /// message; internal notes do not count) has followed it; `null` when the last word was the business's. Kept in
    /// the transaction of every message, so socket events carry it as current as the REST API (issue #17).
    pub waiting_since: Option<DateTime<Utc>>,
    /// The customer's satisfaction rating (HD-12, issue #18): `good`, `average` or `bad`; `null` when not rated.
    /// Given through the rating links of the "ticket closed" mail or in the customer portal; changeable for 7 days.
    #[schema(value_type = Option<String>, example = "good")]
    pub csat: Option<crate::domain::Rating>,
    /// List responses only (`GET /conversations`): the plain text of the newest customer message or reply (never
    /// an internal note), white space collapsed, cut at 140 characters with `…`; `📎 Attachment` for files
    /// without text. Absent elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message_preview: Option<String>,
    /// List responses only: who wrote the preview's message, `in` (the customer) or `out` (a reply). Absent
    /// elsewhere and when there is no preview.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "in")]
    pub last_message_direction: Option<String>,
    /// List responses only: the agent who wrote the preview's reply, when an agent did. Absent elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message_agent_id: Option<i64>,
    /// The caller's unread customer messages in it (after their read cursor, issue #17 item 1). Only in
    /// `GET /conversations` and `GET /conversations/{id}`; socket frames, rendered once for everyone, leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<i64>,
}

impl From<ConversationRow> for ConversationView {
    fn from(row: ConversationRow) -> Self {
        let c = row.conversation;
        Self {
            id: c.id,
            number: c.number,
            channel_id: c.channel_instance_id,
            channel_kind: row.channel_kind.to_string(),
            customer_id: c.customer_id,
            customer_name: row.customer_name,
            active_chat: c.mode == Mode::Sync && c.ended_at.is_none(),
            mode: c.mode.to_string(),
            status: c.status,
            assignee_id: c.assignee_id,
            team_id: c.team_id,
            priority: c.priority,
            subject: c.subject,
            tags: row.tags,
            custom_fields: json_object(&c.custom_fields),
            last_seq: c.last_seq,
            merged_into_id: c.merged_into_id,
            inactivity_deadline: ts_opt(c.inactivity_deadline),
            created_at: ts(c.created_at),
            updated_at: ts(c.updated_at),
            first_response_at: ts_opt(c.first_response_at),
            last_customer_activity_at: ts_opt(c.last_customer_activity_at),
            last_agent_activity_at: ts_opt(c.last_agent_activity_at),
            ended_at: ts_opt(c.ended_at),
            closed_at: ts_opt(c.closed_at),
            waiting_since: ts_opt(c.waiting_since),
            csat: c.csat,
            last_message_preview: None,
            last_message_direction: None,
            last_message_agent_id: None,
            unread: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttachmentView {
    pub id: i64,
    pub file_name: String,
    pub mime_type: String,
    pub size: i64,
    /// Where to download it (same authentication as the API).
    pub url: String,
}

impl From<models::Attachment> for AttachmentView {
    fn from(a: models::Attachment) -> Self {
        Self {
            url: format!("/api/v1/attachments/{}", a.id),
            id: a.id,
            file_name: a.file_name,
            mime_type: a.mime_type,
            size: a.size_bytes,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuthorView {
    /// `customer`, `agent` or `system`.
    pub kind: String,
    pub id: Option<i64>,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageView {
    pub id: i64,
    pub conversation_id: i64,
    /// Position in the conversation: 1, 2, 3, … with no gaps, the same order for everyone.
    pub seq: i64,
    /// `in` (from the customer), `out` (to the customer) or `note` (internal, never sent).
    pub direction: String,
    /// `channel`, `agent`, `api`, `rule` or `system`.
    pub source: String,
    pub author: AuthorView,
    pub content: String,
    /// Sanitised HTML, when the message has a rich version.
    pub content_html: Option<String>,
    pub quoted_message_id: Option<i64>,
    pub external_message_id: Option<String>,
    pub attachments: Vec<AttachmentView>,
    pub created_at: DateTime<Utc>,
    /// Where an outgoing message is (`null` for incoming messages and notes, and for a reply that is not sent
    /// through a channel). A change is the socket event `message.updated`.
    pub delivery: Option<MessageDelivery>,
    /// The agents an internal note mentions (`@Name` in its text; issue #17 item 3), by name; empty for other
    /// messages.
    pub mentions: Vec<MentionView>,
}

/// An agent a note mentions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MentionView {
    pub agent_id: i64,
    pub name: String,
}

/// The delivery state of an outgoing message (issue #16), the same for every channel: `pending`, `sent` or
/// `failed` from the outbox; `delivered` or `read` from the channel's receipts (Zalo).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageDelivery {
    /// `pending`, `sent`, `failed`, `delivered` or `read`.
    pub state: String,
    /// Why the last attempt failed (`pending`: it will be tried again; `failed`: for good).
    pub error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<crate::store::receipts::Delivery> for MessageDelivery {
    fn from(d: crate::store::receipts::Delivery) -> Self {
        Self { state: d.state.as_str().to_owned(), error: d.error, updated_at: ts(d.updated_at) }
    }
}

impl MessageView {
    pub fn new(
        m: models::Message,
        attachments: Vec<models::Attachment>,
        author: AuthorView,
        delivery: Option<MessageDelivery>,
    ) -> Self {
        Self {
            id: m.id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            direction: m.direction.to_string(),
            source: m.source.to_string(),
            author,
            content: m.body_text,
            content_html: m.body_html,
            quoted_message_id: m.quoted_message_id,
            external_message_id: m.provider_message_id,
            attachments: attachments.into_iter().map(AttachmentView::from).collect(),
            created_at: ts(m.created_at),
            delivery,
            mentions: Vec::new(),
        }
    }
}
