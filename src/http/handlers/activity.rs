//! A conversation's activity trail (issue #17 item 4): `GET /conversations/{id}/activity`, what was
//! changed on it, by whom and when (`store::activity`). Same access rule as the conversation: out of
//! the caller's scope is 404, and the other side of a merge is named only when they may see it.

use actix_web::web;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::not_found_as;
use crate::auth::Principal;
use crate::http::State;
use crate::http::error::ApiResult;
use crate::store;
use crate::store::activity::{ActivityKind, Entry};
use crate::store::audit::Actor;

/// What an entry says changed.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKindView {
    Status,
    Priority,
    Team,
    Assignee,
    Tags,
    Subject,
    /// One custom field, named by `field`.
    CustomField,
    /// Another conversation (`conversation`) was merged into this one.
    MergedFrom,
    /// This conversation was merged into another (`conversation`).
    MergedInto,
    /// The chat ended; `reason` is `agent`, `inactivity` or `rule`.
    ChatEnded,
}

/// Who made a change: an agent, or the server itself (`system`: timers, automatic reopening).
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityActor {
    /// `agent`, `system` or `customer` (a customer closing their ticket in the portal, issue #18).
    pub kind: String,
    pub agent_id: Option<i64>,
    /// The agent's name, or `System`.
    pub name: String,
}

/// The other conversation of a merge.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedConversation {
    pub id: i64,
    pub number: i64,
}

/// One line of the trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityView {
    pub kind: ActivityKindView,
    pub at: DateTime<Utc>,
    pub actor: ActivityActor,
    /// The audit entry it comes from (one change of several fields makes several lines with the same id).
    pub audit_id: i64,
    /// A custom field's key.
    pub field: Option<String>,
    /// The value before (status key, priority, team id, agent id, tag list, subject, field value); absent for
    /// changes recorded before the trail existed.
    pub from: Option<Value>,
    /// The value after.
    pub to: Option<Value>,
    /// Why a chat ended (`agent`, `inactivity`, `rule`), or why the system changed a status.
    pub reason: Option<String>,
    /// The other side of a merge, when the caller may see it.
    pub conversation: Option<LinkedConversation>,
}

fn kind(k: ActivityKind) -> ActivityKindView {
    match k {
        ActivityKind::Status => ActivityKindView::Status,
        ActivityKind::Priority => ActivityKindView::Priority,
        ActivityKind::Team => ActivityKindView::Team,
        ActivityKind::Assignee => ActivityKindView::Assignee,
        ActivityKind::Tags => ActivityKindView::Tags,
        ActivityKind::Subject => ActivityKindView::Subject,
        ActivityKind::CustomField => ActivityKindView::CustomField,
        ActivityKind::MergedFrom => ActivityKindView::MergedFrom,
        ActivityKind::MergedInto => ActivityKindView::MergedInto,
        ActivityKind::ChatEnded => ActivityKindView::ChatEnded,
    }
}

impl From<Entry> for ActivityView {
    fn from(e: Entry) -> Self {
        let actor = match e.actor {
            Actor::Agent(id) => ActivityActor {
                kind: "agent".into(),
                agent_id: Some(id),
                name: e.actor_name.unwrap_or_else(|| format!("Agent {id}")),
            },
            Actor::System => ActivityActor { kind: "system".into(), agent_id: None, name: "System".into() },
            Actor::Customer(_) => ActivityActor { kind: "customer".into(), agent_id: None, name: "Customer".into() },
        };
        ActivityView {
            kind: kind(e.draft.kind),
            at: DateTime::from_naive_utc_and_offset(e.at, Utc),
            actor,
            audit_id: e.audit_id,
            field: e.draft.field,
            from: e.draft.from,
            to: e.draft.to,
            reason: e.draft.reason,
            conversation: e.other.map(|(id, number)| LinkedConversation { id, number }),
        }
    }
}

/// The conversation's activity trail, oldest first (at most 1,000 entries, the newest).
#[utoipa::path(get, operation_id = "conversations_activity", path = "/api/v1/conversations/{id}/activity", tag = "conversations",
    params(("id" = i64, Path)), responses((status = 200, body = Vec<ActivityView>)))]
pub async fn list(state: State, p: Principal, id: web::Path<i64>) -> ApiResult<web::Json<Vec<ActivityView>>> {
    let entries =
        store::activity::list(&state.store, *id, &p.scope).await.map_err(|e| not_found_as(e, "conversation"))?;
    Ok(web::Json(entries.into_iter().map(ActivityView::from).collect()))
}
