//! What the API sends back: one view type per resource, converted by hand from store rows so
//! the JSON contract changes only when this file does. Times are RFC 3339 UTC.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::store::customers::CustomerDetail;
use crate::store::models;

pub use crate::view::{AttachmentView, AuthorView, ConversationView, MessageView};
use crate::view::{json_object, ts, ts_opt};

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// `super_admin`, `admin` or `agent`.
    pub role: String,
    pub active: bool,
    /// False until the agent has a password: an invitation not yet accepted (or created without one).
    pub has_password: bool,
    /// Channel instances this agent was given (admins see every channel regardless).
    pub channel_ids: Vec<i64>,
    pub team_ids: Vec<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AgentView {
    pub fn new(a: models::Agent, channel_ids: Vec<i64>, team_ids: Vec<i64>) -> Self {
        Self {
            id: a.id,
            email: a.email,
            name: a.name,
            role: a.role.to_string(),
            active: a.active,
            has_password: a.password_hash.is_some(),
            channel_ids,
            team_ids,
            created_at: ts(a.created_at),
            updated_at: ts(a.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    pub agent: AgentView,
    /// Send this in `X-CSRF-Token` on state-changing requests made with the session cookie.
    /// Absent when authenticated by API token.
    pub csrf_token: Option<String>,
    /// True for admins: every channel is visible.
    pub all_channels: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamView {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub member_ids: Vec<i64>,
    pub created_at: DateTime<Utc>,
}

impl TeamView {
    pub fn new(t: models::Team, member_ids: Vec<i64>) -> Self {
        Self { id: t.id, name: t.name, description: t.description, member_ids, created_at: ts(t.created_at) }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    pub id: i64,
    /// `email`, `mattermost`, `zalo` or `custom` (the kinds with a connector; see `OfferedChannelKind`), or `web`: the
    /// customer portal's one channel, made on first use (issue #18).
    pub kind: String,
    pub name: String,
    /// `sync` (chats) or `async` (tickets).
    pub mode: String,
    /// Kind-specific settings; secrets inside are masked, and only admins see settings at all.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
    pub enabled: bool,
    /// Why the server disabled it (e.g. repeated connection failures), if it did.
    pub disabled_reason: Option<String>,
    pub inactivity_timeout_s: i64,
    pub default_team_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Keys whose values are never sent back (the fields also sealed at rest).
const SECRET_KEYS: &[&str] = crate::secrets::SECRET_FIELDS;

impl ChannelView {
    pub fn new(c: models::ChannelInstance, show_settings: bool) -> Self {
        let settings = show_settings.then(|| mask_secrets(json_object(&c.settings)));
        Self {
            id: c.id,
            kind: c.kind.to_string(),
            name: c.name,
            mode: c.mode.to_string(),
            settings,
            enabled: c.enabled,
            disabled_reason: c.disabled_reason,
            inactivity_timeout_s: c.inactivity_timeout_s,
            default_team_id: c.default_team_id,
            created_at: ts(c.created_at),
            updated_at: ts(c.updated_at),
        }
    }
}

/// What a secret looks like in answers.
pub const MASK: &str = "********";

fn mask_secrets(mut map: Map<String, Value>) -> Map<String, Value> {
    for (key, value) in map.iter_mut() {
        if SECRET_KEYS.contains(&key.as_str()) && !value.is_null() {
            *value = Value::String(MASK.into());
        } else if let Value::Object(inner) = value {
            *value = Value::Object(mask_secrets(std::mem::take(inner)));
        }
    }
    map
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    pub key: String,
    pub name: String,
    /// What the status means: `open`, `pending` or `closed`.
    pub base: String,
    /// What must be filled in before a conversation may take this status.
    pub required_fields: Vec<String>,
    pub builtin: bool,
    pub position: i64,
}

impl From<models::Status> for StatusView {
    fn from(s: models::Status) -> Self {
        Self {
            required_fields: s.required_fields(),
            key: s.key,
            name: s.name,
            base: s.base.to_string(),
            builtin: s.builtin,
            position: s.position,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationPage {
    pub items: Vec<ConversationView>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageCreated {
    pub message_id: i64,
    pub conversation_id: i64,
    pub seq: i64,
    pub message: MessageView,
    pub conversation: ConversationView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationCreated {
    pub conversation_id: i64,
    pub number: i64,
    /// The customer's id: store it against your `user_custom_id` (CC-4).
    pub user_id: i64,
    pub status: String,
    pub mode: String,
    pub message_id: i64,
    /// False when `external_message_id` was already known: nothing new was stored.
    pub created: bool,
    pub conversation: ConversationView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityView {
    pub id: i64,
    /// `external` (an id on one channel), `email` or `phone`.
    pub kind: String,
    pub channel_id: Option<i64>,
    pub value: String,
}

impl From<models::Identity> for IdentityView {
    fn from(i: models::Identity) -> Self {
        Self { id: i.id, kind: i.kind, channel_id: i.channel_instance_id, value: i.value }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyView {
    pub id: i64,
    pub name: String,
}

impl From<models::Company> for CompanyView {
    fn from(c: models::Company) -> Self {
        Self { id: c.id, name: c.name }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub id: i64,
    pub name: String,
    pub company: Option<CompanyView>,
    pub owner_agent_id: Option<i64>,
    pub notes: String,
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    pub merged_into_id: Option<i64>,
    pub identities: Vec<IdentityView>,
    /// CU-1 profile fields (issue #18); empty when unknown.
    pub department: String,
    pub location: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<CustomerDetail> for CustomerView {
    fn from(d: CustomerDetail) -> Self {
        let c = d.customer;
        Self {
            id: c.id,
            name: c.name,
            company: d.company.map(CompanyView::from),
            owner_agent_id: c.owner_agent_id,
            notes: c.notes,
            custom_fields: json_object(&c.custom_fields),
            merged_into_id: c.merged_into_id,
            identities: d.identities.into_iter().map(IdentityView::from).collect(),
            department: c.department,
            location: c.location,
            created_at: ts(c.created_at),
            updated_at: ts(c.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerSummary {
    pub id: i64,
    pub name: String,
    pub company_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl From<models::Customer> for CustomerSummary {
    fn from(c: models::Customer) -> Self {
        Self { id: c.id, name: c.name, company_id: c.company_id, created_at: ts(c.created_at) }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPage {
    pub items: Vec<CustomerSummary>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub agent_id: i64,
    pub name: String,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<models::ApiToken> for TokenView {
    fn from(t: models::ApiToken) -> Self {
        Self {
            id: t.id,
            agent_id: t.agent_id,
            name: t.name,
            prefix: t.prefix,
            created_at: ts(t.created_at),
            last_used_at: ts_opt(t.last_used_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreated {
    #[serde(flatten)]
    pub info: TokenView,
    /// The token itself, to send as `Authorization: Bearer …`. Shown once; only its hash is kept.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    /// `agent`, `system` or `integration`.
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<i64>,
    #[schema(value_type = Object)]
    pub details: Value,
    pub created_at: DateTime<Utc>,
}

impl From<models::AuditEntry> for AuditView {
    fn from(e: models::AuditEntry) -> Self {
        Self {
            id: e.id,
            actor_kind: e.actor_kind,
            actor_id: e.actor_id,
            action: e.action,
            entity_type: e.entity_type,
            entity_id: e.entity_id,
            details: serde_json::from_str(&e.details).unwrap_or(Value::Null),
            created_at: ts(e.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub delivery_id: String,
    pub conversation_id: Option<i64>,
    /// The conversation's number, the one agents see (`#42`); in the channel's delivery logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_number: Option<i64>,
    pub message_id: Option<i64>,
    pub kind: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<models::OutboxItem> for DeliveryView {
    fn from(o: models::OutboxItem) -> Self {
        Self {
            id: o.id,
            delivery_id: o.delivery_id,
            conversation_id: o.conversation_id,
            conversation_number: None,
            message_id: o.message_id,
            kind: o.kind,
            state: o.state,
            attempts: o.attempts,
            next_attempt_at: ts(o.next_attempt_at),
            last_error: o.last_error,
            created_at: ts(o.created_at),
            delivered_at: ts_opt(o.delivered_at),
        }
    }
}

impl DeliveryView {
    /// A delivery log row: the delivery and its conversation's number.
    pub fn numbered((o, number): (models::OutboxItem, Option<i64>)) -> Self {
        Self { conversation_number: number, ..Self::from(o) }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SetupView {
    /// True until the first admin exists; the dashboard then shows its first-run page.
    pub needs_admin: bool,
    /// The CLI command that creates the first admin.
    pub command: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_channel_settings_are_masked_at_any_depth() {
        let masked = mask_secrets(json_object(
            r#"{"host":"imap.example.com","password":"hunter2","smtp":{"password":"x","port":25},"token":null}"#,
        ));
        let text = serde_json::to_string(&masked).unwrap();
        assert!(!text.contains("hunter2") && !text.contains("\"x\""), "{text}");
        assert_eq!(masked["host"], "imap.example.com");
        assert_eq!(masked["smtp"]["port"], 25);
        assert!(masked["token"].is_null(), "an unset secret stays visibly unset");
    }
}
