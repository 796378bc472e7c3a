//! Row structs: what a query returns and what an insert takes. Plain data, no behaviour.
//!
//! Enumerated columns come out as their `domain` enums (role, channel kind, mode, status base,
//! message direction and source): a damaged stored value fails the read as `StoreError::BadData`.
//! A conversation's `status` is a key into the admin's statuses and stays text.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::*;
use crate::domain::{ChannelKind, Direction, Mode, Role, Source, StatusBase};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = agents)]
pub struct Agent {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub role: Role,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = agents)]
pub struct NewAgent<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: Option<&'a str>,
    pub role: Role,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: i64,
    pub token_hash: String,
    pub csrf_token: String,
    pub agent_id: i64,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: i64,
    pub agent_id: i64,
    pub name: String,
    pub token_hash: String,
    pub prefix: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = teams)]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub created_at: NaiveDateTime,
}

/// A channel instance. Read through `channels` (or a delivery's context) its `secret` and the
/// secret fields of its `settings` are plaintext; in the database they are sealed
/// (`store::sealing`). `Debug` shows neither.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = channel_instances)]
pub struct ChannelInstance {
    pub id: i64,
    pub kind: ChannelKind,
    pub name: String,
    pub mode: Mode,
    pub settings: String,
    pub secret: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub inactivity_timeout_s: i64,
    pub default_team_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl std::fmt::Debug for ChannelInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelInstance")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("enabled", &self.enabled)
            .field("disabled_reason", &self.disabled_reason)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = statuses)]
pub struct Status {
    pub id: i64,
    pub key: String,
    pub name: String,
    pub base: StatusBase,
    pub required_fields: String,
    pub builtin: bool,
    pub position: i64,
    pub created_at: NaiveDateTime,
}

impl Status {
    pub fn required_fields(&self) -> Vec<String> {
        serde_json::from_str(&self.required_fields).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = companies)]
pub struct Company {
    pub id: i64,
    pub name: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customers)]
pub struct Customer {
    pub id: i64,
    pub name: String,
    pub company_id: Option<i64>,
    pub owner_agent_id: Option<i64>,
    pub notes: String,
    pub custom_fields: String,
    pub merged_into_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// CU-1 profile fields (issue #18).
    pub department: String,
    pub location: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customer_identities)]
pub struct Identity {
    pub id: i64,
    pub customer_id: i64,
    pub kind: String,
    pub channel_instance_id: Option<i64>,
    pub value: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = conversations)]
pub struct Conversation {
    pub id: i64,
    pub number: i64,
    pub channel_instance_id: i64,
    pub customer_id: i64,
    pub mode: Mode,
    pub status: String,
    pub assignee_id: Option<i64>,
    pub team_id: Option<i64>,
    pub priority: String,
    pub subject: String,
    pub custom_fields: String,
    pub last_seq: i64,
    pub merged_into_id: Option<i64>,
    pub inactivity_deadline: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub first_response_at: Option<NaiveDateTime>,
    pub last_customer_activity_at: Option<NaiveDateTime>,
    pub last_agent_activity_at: Option<NaiveDateTime>,
    pub ended_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    /// The first customer message no agent reply has followed yet (issue #17): the customer waits since then.
    pub waiting_since: Option<NaiveDateTime>,
    /// The customer's rating of the ticket (HD-12, issue #18; `store::portal::rate`), if any.
    pub csat: Option<crate::domain::Rating>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = messages)]
pub struct Message {
    pub id: i64,
    pub conversation_id: i64,
    pub seq: i64,
    pub direction: Direction,
    pub source: Source,
    pub author_agent_id: Option<i64>,
    pub author_customer_id: Option<i64>,
    pub body_text: String,
    pub body_html: Option<String>,
    pub quoted_message_id: Option<i64>,
    pub channel_instance_id: i64,
    pub provider_message_id: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = attachments)]
pub struct Attachment {
    pub id: i64,
    pub message_id: Option<i64>,
    pub uploaded_by: Option<i64>,
    pub file_name: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub storage_key: String,
    pub content_id: Option<String>,
    pub created_at: NaiveDateTime,
    /// The customer who uploaded it through the portal (issue #18), if a customer did.
    pub uploaded_by_customer: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxItem {
    pub id: i64,
    pub delivery_id: String,
    pub channel_instance_id: i64,
    pub conversation_id: Option<i64>,
    pub message_id: Option<i64>,
    pub kind: String,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
    pub locked_until: Option<NaiveDateTime>,
    /// When its state, attempts or error last changed (`None`: rows written before #16, and never attempted).
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: i64,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<i64>,
    pub details: String,
    pub created_at: NaiveDateTime,
}

/// Kinds of `events` rows (the change feed's consumers subscribe by kind, `store::feed`).
pub const CONVERSATION_CREATED: &str = "conversation.created";
pub const MESSAGE_CREATED: &str = "message.created";
pub const CONVERSATION_UPDATED: &str = "conversation.updated";
pub const CONVERSATION_ENDED: &str = "conversation.ended";
/// A message's delivery state changed (sent, failed, delivered, read: `MessageView.delivery`).
pub const MESSAGE_UPDATED: &str = "message.updated";

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: i64,
    pub conversation_id: i64,
    pub channel_instance_id: i64,
    pub kind: String,
    pub seq: Option<i64>,
    pub message_id: Option<i64>,
    pub created_at: NaiveDateTime,
}

/// A Zalo webhook event as stored before it was answered (issue #16, `store::zalo`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = zalo_events)]
pub struct ZaloEvent {
    pub id: i64,
    pub channel_instance_id: i64,
    pub dedupe_key: String,
    pub zalo_user_id: String,
    pub event_name: String,
    pub body: String,
    pub received_at: NaiveDateTime,
    pub processed_at: Option<NaiveDateTime>,
    pub attempts: i64,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
}

/// An outbox row before it is written (`outbox::new_delivery`; the change feed's owner-offline mail).
#[derive(Debug, Insertable)]
#[diesel(table_name = outbox)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub channel_instance_id: i64,
    pub conversation_id: Option<i64>,
    pub message_id: Option<i64>,
    pub kind: &'static str,
    pub payload: String,
    pub state: &'static str,
    pub attempts: i64,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// A row of the durable change feed (`store::feed`), and what it says beyond its event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = change_feed)]
pub struct FeedRow {
    pub id: i64,
    pub consumer: String,
    pub event_id: i64,
    pub conversation_id: i64,
    pub kind: String,
    pub created_at: chrono::NaiveDateTime,
    pub detail: Option<String>,
}

/// What a consumer needs to know about a change that its event row does not say, kept with the
/// feed rows (`change_feed.detail`, JSON; absent when there is nothing to say). A message's author
/// and mentions are on the message, so only conversation changes carry one.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Detail {
    /// The agent who made the change (`None`: a customer, a channel, routing, a timer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<i64>,
    /// The agent this change assigned the conversation to (`None`: it assigned nobody new).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<i64>,
    /// The category (team) the conversation left, when this change moved it to another one (issue #18, NT-5);
    /// `Some(None)`: it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from_team: Option<Option<i64>>,
    /// The category it moved to (with [`Detail::moved_from_team`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to_team: Option<Option<i64>>,
    /// The customer who made the change (a `#close#` by mail), so they are not mailed about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<i64>,
    /// This change closed the conversation (NT-2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
}

impl Detail {
    /// The detail of a change by agent `actor` from conversation state `before` to `after`: the assignment,
    /// a move to another category, a close.
    pub fn change(actor: Option<i64>, before: &Conversation, after: &Conversation) -> Self {
        let moved = before.team_id != after.team_id;
        Detail {
            moved_from_team: moved.then_some(before.team_id),
            moved_to_team: moved.then_some(after.team_id),
            closed: before.closed_at.is_none() && after.closed_at.is_some(),
            ..Detail::assignment(actor, before.assignee_id, after.assignee_id)
        }
    }

    /// The detail of a change by agent `actor` (`None`: not an agent) that moved the assignee from `before` to
    /// `after`.
    pub fn assignment(actor: Option<i64>, before: Option<i64>, after: Option<i64>) -> Self {
        Detail { actor, assigned_to: after.filter(|a| before != Some(*a)), ..Detail::default() }
    }

    pub(crate) fn stored(&self) -> Option<String> {
        (*self != Detail::default()).then(|| serde_json::to_string(self).unwrap_or_default())
    }

    /// The detail of a feed row (a missing or unreadable one says nothing).
    pub fn of(row: &FeedRow) -> Self {
        row.detail.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default()
    }
}
