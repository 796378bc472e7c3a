//! Unread state on the server (issue #17 item 1): an agent's read cursor per conversation
//! (`POST /conversations/{id}/read`), their unread counts per conversation and per view
//! (`GET /me/unread`), and the `unread` of conversation list and get answers. What counts as
//! unread is `store::reads`'s rule; a conversation the caller may not see is 404 here and absent
//! from every count.

use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::not_found_as;
use crate::auth::Principal;
use crate::http::State;
use crate::http::error::ApiResult;
use crate::http::views::ConversationView;
use crate::store;
use crate::store::reads::{Summary, Totals};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    /// The seq of the newest message read (1 to the conversation's `last_seq`). A cursor only rises: a lower
    /// seq than the one stored changes nothing.
    pub seq: i64,
}

/// The caller's read cursor on a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadView {
    pub conversation_id: i64,
    /// The cursor now: the higher of the stored one and the one sent.
    pub last_read_seq: i64,
    /// Customer messages after it.
    pub unread: i64,
}

/// Per view: conversations with unread customer messages, and how many messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadTotals {
    pub conversations: i64,
    pub messages: i64,
}

/// Which navigation view a conversation is counted in: `chats` (a chat in progress) or `tickets`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnreadViewName {
    Chats,
    Tickets,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadConversation {
    pub conversation_id: i64,
    pub number: i64,
    pub view: UnreadViewName,
    pub unread: i64,
    pub last_read_seq: i64,
}

/// The caller's unread state: conversations in their scope, not merged away, not closed, with customer
/// messages after their read cursor.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadSummary {
    pub chats: UnreadTotals,
    pub tickets: UnreadTotals,
    /// Newest conversations first, at most 1,000 (the totals count every one).
    pub conversations: Vec<UnreadConversation>,
    /// More conversations had unread messages than `conversations` lists.
    pub truncated: bool,
}

impl From<Totals> for UnreadTotals {
    fn from(t: Totals) -> Self {
        Self { conversations: t.conversations, messages: t.messages }
    }
}

impl From<Summary> for UnreadSummary {
    fn from(s: Summary) -> Self {
        Self {
            chats: s.chats.into(),
            tickets: s.tickets.into(),
            conversations: s
                .items
                .into_iter()
                .map(|i| UnreadConversation {
                    conversation_id: i.conversation_id,
                    number: i.number,
                    view: match i.view {
                        store::reads::View::Chats => UnreadViewName::Chats,
                        store::reads::View::Tickets => UnreadViewName::Tickets,
                    },
                    unread: i.unread,
                    last_read_seq: i.last_read_seq,
                })
                .collect(),
            truncated: s.truncated,
        }
    }
}

/// Mark a conversation read up to a message: the caller's read cursor rises to `seq` (never falls). The
/// caller's other sockets get a `read` frame when it moved.
#[utoipa::path(post, operation_id = "conversations_read", path = "/api/v1/conversations/{id}/read", tag = "conversations",
    params(("id" = i64, Path)), request_body = ReadRequest,
    responses((status = 200, body = ReadView)))]
pub async fn mark(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    body: crate::http::body::Body<ReadRequest>,
) -> ApiResult<web::Json<ReadView>> {
    let mark = state
        .changes
        .mark_read(p.agent_id, *id, body.seq, &p.scope)
        .await
        .map_err(|e| not_found_as(e, "conversation"))?;
    Ok(web::Json(ReadView {
        conversation_id: mark.conversation_id,
        last_read_seq: mark.last_read_seq,
        unread: mark.unread,
    }))
}

/// The caller's unread counts: per conversation and per view (the dashboard's Chats and Tickets badges).
#[utoipa::path(get, operation_id = "me_unread", path = "/api/v1/me/unread", tag = "conversations",
    responses((status = 200, body = UnreadSummary)))]
pub async fn unread(state: State, p: Principal) -> ApiResult<web::Json<UnreadSummary>> {
    Ok(web::Json(store::reads::summary(&state.store, p.agent_id, &p.scope).await?.into()))
}

/// Fill in the caller's `unread` of conversations they may see (list and get answers).
pub(super) async fn with_unread(
    state: &State,
    p: &Principal,
    mut views: Vec<ConversationView>,
) -> ApiResult<Vec<ConversationView>> {
    let ids = views.iter().map(|v| v.id).collect();
    let counts = store::reads::unread_counts(&state.store, p.agent_id, ids).await?;
    for v in &mut views {
        v.unread = Some(counts.get(&v.id).copied().unwrap_or(0));
    }
    Ok(views)
}
