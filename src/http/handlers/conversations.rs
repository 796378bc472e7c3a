//! Conversations and their messages: list with filters and paging, get, create (a customer's
//! first message through an integration, or an agent's outbound message), change properties,
//! merge, read messages by seq range, reply, and add internal notes.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{actor, not_found_as, nullable, paging};
use crate::auth::{Credential, Principal};
use crate::domain::html::sanitize as sanitize_html;
use crate::domain::text::{normalize_email, normalize_phone, normalize_tag};
use crate::domain::{Direction, Mode, Priority, Source};
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::views::{ConversationCreated, ConversationPage, ConversationView, MessageCreated, MessageView};
use crate::store;
use crate::store::conversations::{
    AssigneeFilter, ConversationFilter, ConversationPatch, Counterpart, EndReason, NewConversation, SortOrder,
};
use crate::store::messages::NewReply;

/// Longest message text accepted (characters).
const MAX_CONTENT: usize = 100_000;
const MAX_SUBJECT: usize = 300;
const MAX_TAGS: usize = 50;
const MAX_ATTACHMENTS: usize = 20;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ConversationQuery {
    /// Status keys, comma-separated (e.g. `open,pending`).
    pub status: Option<String>,
    /// `sync` (chats) or `async` (tickets).
    pub mode: Option<String>,
    /// Channel instance id.
    pub channel: Option<i64>,
    /// An agent id, `me`, or `none` for unassigned.
    pub assignee: Option<String>,
    pub team: Option<i64>,
    /// Only conversations in the caller's own categories (the teams they are a member of; HD-13).
    pub my_teams: Option<bool>,
    pub tag: Option<String>,
    /// Customer id.
    pub customer: Option<i64>,
    /// The customer's id as returned to integrations (same as `customer`; CC-10).
    pub user_id: Option<i64>,
    pub priority: Option<String>,
    /// Text search in subject, messages, customer name; `#123` or `123` also matches the number.
    pub q: Option<String>,
    /// Include chats still in progress (CC-10). Default false: tickets and ended chats only.
    pub show_active_chats: Option<bool>,
    /// Only chats still in progress (the live chat panel).
    pub active: Option<bool>,
    /// Include conversations merged into others.
    pub include_merged: Option<bool>,
    /// Only conversations whose customer waits for an answer (`waiting_since` set).
    pub waiting: Option<bool>,
    /// The customer's rating (HD-12): `good`, `average`, `bad`, or `none` for tickets not rated.
    pub csat: Option<String>,
    /// `updated_desc` (default), `updated_asc`, `created_desc`, `created_asc`, or `waiting_longest` (the customer
    /// waiting longest first, then those nobody waits on).
    pub sort: Option<String>,
    /// 1-based page number.
    pub page: Option<i64>,
    /// 1–100, default 25.
    pub per_page: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateConversationRequest {
    /// Channel instance id to create it on.
    pub channel: i64,
    /// The integrator's id for the customer (CC-4). Makes the first message the customer's.
    pub user_custom_id: Option<String>,
    /// An existing customer an agent writes to (CORE-11). Makes the first message an agent's.
    pub customer_id: Option<i64>,
    pub content: String,
    pub content_html: Option<String>,
    pub subject: Option<String>,
    /// Customer's name (with `user_custom_id`).
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    /// Idempotency key: the same value on the same channel never creates a second message.
    pub external_message_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchConversationRequest {
    /// A status key (built-in or custom).
    pub status: Option<String>,
    /// An agent id, or null to unassign.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable)]
    pub assignee_id: Option<Option<i64>>,
    /// A team id, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable)]
    pub team_id: Option<Option<i64>>,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: Option<String>,
    pub subject: Option<String>,
    /// Replace all tags.
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub add_tags: Vec<String>,
    #[serde(default)]
    pub remove_tags: Vec<String>,
    /// Merged into the existing custom fields; a null value removes that field.
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The conversation that survives.
    pub into: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MessageQuery {
    /// Only messages with a seq greater than this.
    pub after_seq: Option<i64>,
    /// Only messages with a seq less than this (newest page before it).
    pub before_seq: Option<i64>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateMessageRequest {
    pub content: String,
    /// Limited HTML; sanitised before it is stored.
    pub content_html: Option<String>,
    /// A message of this conversation being answered (MM-8).
    pub quoted_message_id: Option<i64>,
    /// Ids from `POST /api/v1/attachments`.
    #[serde(default)]
    pub attachment_ids: Vec<i64>,
    /// An internal note instead of a reply (CORE-10).
    #[serde(default)]
    pub note: bool,
    /// With `note`: the agents the note @mentions (issue #17 item 3), each written `@Name` in `content`.
    /// Only agents who may see the conversation's channel (`GET …/mentionable`); another is refused (422
    /// `rule_violation`); one whose `@Name` is not in the text is dropped. Each mentioned agent is notified.
    #[serde(default)]
    pub mentions: Vec<i64>,
    /// Set this status in the same action (HD-10).
    pub status: Option<String>,
    /// A customer's message instead of an agent reply (custom channels, CC-8): the customer's id.
    /// A merged conversation's message lands in the survivor; a closed one's starts a new conversation.
    pub user_id: Option<i64>,
    /// With `user_id`: the integrator's idempotency key.
    pub external_message_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNoteRequest {
    pub content: String,
    pub content_html: Option<String>,
    #[serde(default)]
    pub attachment_ids: Vec<i64>,
    /// The agents the note @mentions (see `CreateMessageRequest.mentions`).
    #[serde(default)]
    pub mentions: Vec<i64>,
}

fn content(field: &str, text: &str) -> ApiResult<String> {
    if text.trim().is_empty() {
        return Err(ApiError::field(field, "must not be empty"));
    }
    if text.chars().count() > MAX_CONTENT {
        return Err(ApiError::field(field, format!("must be at most {MAX_CONTENT} characters")));
    }
    Ok(text.to_owned())
}

fn html(text: Option<&str>) -> ApiResult<Option<String>> {
    match text {
        Some(h) if h.len() > MAX_CONTENT * 4 => Err(ApiError::field("content_html", "is too long")),
        Some(h) if !h.trim().is_empty() => Ok(Some(sanitize_html(h))),
        _ => Ok(None),
    }
}

fn tags(field: &str, raw: &[String]) -> ApiResult<Vec<String>> {
    if raw.len() > MAX_TAGS {
        return Err(ApiError::field(field, format!("at most {MAX_TAGS} tags")));
    }
    raw.iter()
        .map(|t| {
            normalize_tag(t)
                .ok_or_else(|| ApiError::field(field, format!("{t:?} is not a valid tag (1–50 characters, no commas)")))
        })
        .collect()
}

fn optional_id(field: &str, id: Option<i64>) -> ApiResult<Option<i64>> {
    match id {
        Some(v) if v <= 0 => Err(ApiError::field(field, "must be a positive id")),
        other => Ok(other),
    }
}

fn source_of(p: &Principal) -> Source {
    match p.credential {
        Credential::ApiToken { .. } => Source::Api,
        Credential::Session { .. } => Source::Agent,
    }
}

/// Conversations the caller may see, filtered and paged. Without `show_active_chats=true` chats
/// still in progress are left out (they are in the chat panel: `active=true`). Each item carries its
/// `last_message_preview` (issue #17).
#[utoipa::path(get, operation_id = "conversations_list", path = "/api/v1/conversations", tag = "conversations", params(ConversationQuery),
    responses((status = 200, body = ConversationPage), (status = 400, body = crate::http::error::ErrorBody)))]
pub async fn list(
    state: State,
    p: Principal,
    q: web::Query<ConversationQuery>,
) -> ApiResult<web::Json<ConversationPage>> {
    let (filter, page, per_page) = filter_of(q.into_inner(), &p)?;
    let mut listed = store::conversations::list_page(&state.store, &filter, &p.scope).await?;
    let items = listed
        .rows
        .into_iter()
        .map(|row| {
            let preview = listed.previews.remove(&row.conversation.id);
            ConversationView {
                last_message_direction: preview.as_ref().map(|p| p.direction.to_string()),
                last_message_agent_id: preview.as_ref().and_then(|p| p.agent_id),
                last_message_preview: preview.map(|p| p.text),
                ..row.into()
            }
        })
        .collect();
    let items = super::reads::with_unread(&state, &p, items).await?;
    Ok(web::Json(ConversationPage { items, total: listed.total, page, per_page }))
}

/// The filter a list query asks for, with its page and page size.
fn filter_of(q: ConversationQuery, p: &Principal) -> ApiResult<(ConversationFilter, i64, i64)> {
    let (page, per_page, offset) = paging(q.page, q.per_page, 25)?;
    let statuses: Vec<String> = q
        .status
        .as_deref()
        .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let mode = match q.mode.as_deref() {
        Some(m) => Some(m.parse::<Mode>().map_err(|e| ApiError::field("mode", e))?),
        None => None,
    };
    let assignee = match q.assignee.as_deref() {
        None => None,
        Some("none") => Some(AssigneeFilter::Nobody),
        Some("me") => Some(AssigneeFilter::Agent(p.agent_id)),
        Some(id) => Some(AssigneeFilter::Agent(
            id.parse().map_err(|_| ApiError::field("assignee", "must be an agent id, `me` or `none`"))?,
        )),
    };
    let priority = match q.priority.as_deref() {
        Some(pr) => Some(pr.parse::<Priority>().map_err(|e| ApiError::field("priority", e))?.as_str().to_owned()),
        None => None,
    };
    let csat = match q.csat.as_deref() {
        None => None,
        Some("none") => Some(store::conversations::CsatFilter::None),
        Some(r) => Some(store::conversations::CsatFilter::Rated(
            r.parse().map_err(|_| ApiError::field("csat", "must be good, average, bad or none"))?,
        )),
    };
    let sort = match q.sort.as_deref().unwrap_or("updated_desc") {
        "updated_desc" => SortOrder::UpdatedDesc,
        "updated_asc" => SortOrder::UpdatedAsc,
        "created_desc" => SortOrder::CreatedDesc,
        "created_asc" => SortOrder::CreatedAsc,
        "waiting_longest" => SortOrder::WaitingLongest,
        _ => {
            return Err(ApiError::field(
                "sort",
                "must be updated_desc, updated_asc, created_desc, created_asc or waiting_longest",
            ));
        }
    };
    if let (Some(a), Some(b)) = (q.customer, q.user_id)
        && a != b
    {
        return Err(ApiError::validation("customer and user_id name different customers"));
    }
    let text = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    if text.as_ref().is_some_and(|t| t.chars().count() > 200) {
        return Err(ApiError::field("q", "must be at most 200 characters"));
    }
    let filter = ConversationFilter {
        statuses,
        mode,
        channel_id: q.channel,
        assignee,
        team_id: q.team,
        teams_of: q.my_teams.unwrap_or(false).then_some(p.agent_id),
        tag: q.tag.as_deref().and_then(normalize_tag),
        customer_id: q.customer.or(q.user_id),
        priority,
        q: text,
        show_active_chats: q.show_active_chats.unwrap_or(false),
        active_chats_only: q.active.unwrap_or(false),
        include_merged: q.include_merged.unwrap_or(false),
        waiting: q.waiting.unwrap_or(false),
        csat,
        sort,
        limit: per_page,
        offset,
    };
    Ok((filter, page, per_page))
}

/// Most views one counts request may name.
const MAX_VIEWS: usize = 50;

/// Views to count: a name of the caller's choice → the query string of a `GET /conversations` (e.g.
/// `status=open&assignee=me`; `page` and `per_page` are ignored).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountsRequest {
    #[schema(example = json!({"open": "status=open", "mine": "assignee=me", "waiting": "waiting=true"}))]
    pub views: std::collections::BTreeMap<String, String>,
}

/// How many conversations each view selects.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountsView {
    pub counts: std::collections::BTreeMap<String, i64>,
}

/// Count several lists in one call (issue #17 item 7: a count on every view). Each view is counted exactly as
/// `GET /conversations` would total it for the caller: only channels the caller may see. It changes nothing; POST
/// because it carries a body.
#[utoipa::path(post, operation_id = "conversations_counts", path = "/api/v1/conversations/counts", tag = "conversations", request_body = CountsRequest,
    responses((status = 200, body = CountsView), (status = 400, body = crate::http::error::ErrorBody)))]
pub async fn counts(state: State, p: Principal, body: web::Json<CountsRequest>) -> ApiResult<web::Json<CountsView>> {
    let views = body.into_inner().views;
    if views.len() > MAX_VIEWS {
        return Err(ApiError::field("views", format!("at most {MAX_VIEWS} views")));
    }
    let mut names = Vec::with_capacity(views.len());
    let mut filters = Vec::with_capacity(views.len());
    for (name, query) in views {
        let q = web::Query::<ConversationQuery>::from_query(query.trim_start_matches('?'))
            .map_err(|e| ApiError::field("views", format!("{name}: {e}")))?;
        let (filter, _, _) = filter_of(q.into_inner(), &p)?;
        names.push(name);
        filters.push(filter);
    }
    let counts = store::conversations::count_each(&state.store, filters, &p.scope).await?;
    Ok(web::Json(CountsView { counts: names.into_iter().zip(counts).collect() }))
}

#[utoipa::path(get, operation_id = "conversations_get", path = "/api/v1/conversations/{id}", tag = "conversations", params(("id" = i64, Path)),
    responses((status = 200, body = ConversationView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get(state: State, p: Principal, id: web::Path<i64>) -> ApiResult<web::Json<ConversationView>> {
    let row =
        store::conversations::get(&state.store, *id, &p.scope).await.map_err(|e| not_found_as(e, "conversation"))?;
    let mut one = super::reads::with_unread(&state, &p, vec![row.into()]).await?;
    Ok(web::Json(one.remove(0)))
}

/// Start a conversation: with `user_custom_id` the first message is the customer's (an
/// integration creating it, CC-4…CC-6); with `customer_id` it is an agent's outbound message
/// (CORE-11), queued for delivery.
#[utoipa::path(post, operation_id = "conversations_create", path = "/api/v1/conversations", tag = "conversations", request_body = CreateConversationRequest,
    responses((status = 201, body = ConversationCreated), (status = 200, description = "`external_message_id` already known: nothing stored", body = ConversationCreated),
        (status = 422, body = crate::http::error::ErrorBody)))]
pub async fn create(
    state: State,
    p: Principal,
    body: crate::http::body::Body<CreateConversationRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    if body.channel <= 0 {
        return Err(ApiError::field("channel", "must be a channel id"));
    }
    let text = content("content", &body.content)?;
    let subject = body.subject.as_deref().map(str::trim).unwrap_or_default().to_owned();
    if subject.chars().count() > MAX_SUBJECT {
        return Err(ApiError::field("subject", format!("must be at most {MAX_SUBJECT} characters")));
    }
    let external_message_id = match body.external_message_id.as_deref().map(str::trim) {
        Some("") => return Err(ApiError::field("external_message_id", "must not be empty")),
        Some(e) if e.len() > 500 => {
            return Err(ApiError::field("external_message_id", "must be at most 500 characters"));
        }
        other => other.map(str::to_owned),
    };
    let (counterpart, direction, source, author) = match (body.user_custom_id.as_deref(), body.customer_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation("give either user_custom_id or customer_id, not both"));
        }
        (None, None) => {
            return Err(ApiError::validation(
                "user_custom_id (a customer writing in) or customer_id (writing to a customer) is required",
            ));
        }
        (Some(ext), None) => {
            let ext = ext.trim();
            if ext.is_empty() || ext.len() > 255 {
                return Err(ApiError::field("user_custom_id", "must be 1–255 characters"));
            }
            let email = match body.email.as_deref().filter(|e| !e.trim().is_empty()) {
                Some(e) => {
                    Some(normalize_email(e).ok_or_else(|| ApiError::field("email", "is not a valid email address"))?)
                }
                None => None,
            };
            let phone = match body.phone.as_deref().filter(|e| !e.trim().is_empty()) {
                Some(ph) => {
                    Some(normalize_phone(ph).ok_or_else(|| ApiError::field("phone", "is not a valid phone number"))?)
                }
                None => None,
            };
            let name = match body.name.as_deref().filter(|n| !n.trim().is_empty()) {
                Some(n) => Some(super::name_field("name", n, 200)?),
                None => None,
            };
            let company = match body.company.as_deref().filter(|n| !n.trim().is_empty()) {
                Some(n) => Some(super::name_field("company", n, 200)?),
                None => None,
            };
            let counterpart = Counterpart::Contact { external_id: ext.to_owned(), name, email, phone, company };
            (counterpart, Direction::In, Source::Channel, None)
        }
        (None, Some(customer)) => {
            optional_id("customer_id", Some(customer))?;
            (Counterpart::Customer(customer), Direction::Out, source_of(&p), Some(p.agent_id))
        }
    };
    let created = state
        .changes
        .create(
            NewConversation {
                channel_id: body.channel,
                counterpart,
                subject,
                content: text,
                content_html: html(body.content_html.as_deref())?,
                external_message_id,
                direction,
                source,
                author_agent_id: author,
            },
            &p.scope,
            actor(&p),
        )
        .await?;
    if created.created {
        // Custom-channel inbound remembers each customer's latest conversation: this is newer.
        let (channel, customer) = (body.channel, created.conversation.customer_id);
        state.routes.remove_where(|k, v| k.0 == channel && v.0 == customer);
    }
    let view: ConversationView = created.conversation;
    let answer = ConversationCreated {
        conversation_id: view.id,
        number: view.number,
        user_id: view.customer_id,
        status: view.status.clone(),
        mode: view.mode.clone(),
        message_id: created.message.id,
        created: created.created,
        conversation: view,
    };
    Ok(if created.created { HttpResponse::Created().json(answer) } else { HttpResponse::Ok().json(answer) })
}

fn patch_from(body: PatchConversationRequest) -> ApiResult<ConversationPatch> {
    let priority = match body.priority.as_deref() {
        Some(pr) => Some(pr.parse::<Priority>().map_err(|e| ApiError::field("priority", e))?.as_str().to_owned()),
        None => None,
    };
    let subject = match body.subject.as_deref() {
        Some(s) if s.chars().count() > MAX_SUBJECT => {
            return Err(ApiError::field("subject", format!("must be at most {MAX_SUBJECT} characters")));
        }
        Some(s) => Some(s.trim().to_owned()),
        None => None,
    };
    if let Some(Some(a)) = body.assignee_id {
        optional_id("assignee_id", Some(a))?;
    }
    if let Some(Some(t)) = body.team_id {
        optional_id("team_id", Some(t))?;
    }
    if let Some(fields) = &body.custom_fields {
        if fields.len() > 100 {
            return Err(ApiError::field("custom_fields", "at most 100 fields"));
        }
        if let Some(bad) = fields.keys().find(|k| !crate::domain::text::is_valid_key(k)) {
            return Err(ApiError::field("custom_fields", format!("{bad:?} is not a valid field name (a-z, 0-9, _)")));
        }
        if serde_json::to_string(fields).map(|s| s.len()).unwrap_or(0) > 64 * 1024 {
            return Err(ApiError::field("custom_fields", "too large"));
        }
    }
    let patch = ConversationPatch {
        status: body.status.map(|s| s.trim().to_owned()),
        assignee_id: body.assignee_id,
        team_id: body.team_id,
        priority,
        subject,
        tags: match &body.tags {
            Some(t) => Some(tags("tags", t)?),
            None => None,
        },
        add_tags: tags("add_tags", &body.add_tags)?,
        remove_tags: tags("remove_tags", &body.remove_tags)?,
        custom_fields: body.custom_fields,
    };
    Ok(patch)
}

/// Change status, assignee, team, priority, subject, tags or custom fields. A conditional status
/// is refused (422) until what it requires is filled in (CORE-6).
#[utoipa::path(patch, operation_id = "conversations_update", path = "/api/v1/conversations/{id}", tag = "conversations", params(("id" = i64, Path)),
    request_body = PatchConversationRequest,
    responses((status = 200, body = ConversationView), (status = 404, body = crate::http::error::ErrorBody), (status = 422, body = crate::http::error::ErrorBody)))]
pub async fn update(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    body: crate::http::body::Body<PatchConversationRequest>,
) -> ApiResult<web::Json<ConversationView>> {
    let patch = patch_from(body.into_inner())?;
    if patch.is_empty() {
        return Err(ApiError::validation("nothing to change"));
    }
    let updated =
        state.changes.update(*id, patch, &p.scope, actor(&p)).await.map_err(|e| not_found_as(e, "conversation"))?;
    Ok(web::Json(updated.conversation))
}

/// Merge this conversation into another (CORE-8); answers with the survivor.
#[utoipa::path(post, operation_id = "conversations_merge", path = "/api/v1/conversations/{id}/merge", tag = "conversations", params(("id" = i64, Path)),
    request_body = MergeRequest, responses((status = 200, body = ConversationView), (status = 422, body = crate::http::error::ErrorBody)))]
pub async fn merge(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    body: crate::http::body::Body<MergeRequest>,
) -> ApiResult<web::Json<ConversationView>> {
    let updated =
        state.changes.merge(*id, body.into, &p.scope, actor(&p)).await.map_err(|e| not_found_as(e, "conversation"))?;
    Ok(web::Json(updated.conversation))
}

/// Messages in seq order. `after_seq` pages forward (what a reconnecting client missed),
/// `before_seq` pages back through history.
#[utoipa::path(get, operation_id = "conversations_messages", path = "/api/v1/conversations/{id}/messages", tag = "conversations", params(("id" = i64, Path), MessageQuery),
    responses((status = 200, body = [MessageView]), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn messages(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    q: web::Query<MessageQuery>,
) -> ApiResult<web::Json<Vec<MessageView>>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 200"));
    }
    let conversation =
        store::conversations::get(&state.store, *id, &p.scope).await.map_err(|e| not_found_as(e, "conversation"))?;
    let rows = store::messages::list(&state.store, *id, q.after_seq, q.before_seq, limit, &p.scope).await?;
    Ok(web::Json(crate::view::event::message_views(&state.store, &conversation.customer_name, rows).await?))
}

/// The raw source of a message that came or went by mail, kept for audit (EM-2), as a `message/rfc822` download.
/// 404 when the message is not in this conversation or did not travel by mail.
#[utoipa::path(get, operation_id = "conversations_message_source", path = "/api/v1/conversations/{id}/messages/{message_id}/source",
    tag = "conversations", params(("id" = i64, Path), ("message_id" = i64, Path)),
    responses((status = 200, content_type = "message/rfc822", body = Vec<u8>), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn message_source(state: State, p: Principal, path: web::Path<(i64, i64)>) -> ApiResult<HttpResponse> {
    let (id, message_id) = path.into_inner();
    store::conversations::get(&state.store, id, &p.scope).await.map_err(|e| not_found_as(e, "conversation"))?;
    let source = store::email::source_of(&state.store, id, message_id)
        .await?
        .ok_or_else(|| ApiError::not_found("mail source"))?;
    let bytes = source.bytes(&state.blobs).await.map_err(ApiError::internal)?;
    Ok(super::raw_mail(bytes, format!("message-{message_id}.eml")))
}

async fn append(state: State, p: Principal, id: i64, reply: NewReply) -> ApiResult<HttpResponse> {
    let replied = state.changes.reply(reply, &p.scope, actor(&p)).await.map_err(|e| not_found_as(e, "conversation"))?;
    Ok(HttpResponse::Created().json(MessageCreated {
        message_id: replied.message.id,
        conversation_id: id,
        seq: replied.message.seq,
        message: replied.message,
        conversation: replied.conversation,
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndChatRequest {
    /// A status to set as the chat ends (it then enters the ticket list with it). Default: unchanged.
    pub status: Option<String>,
}

/// End a chat in progress (CORE-5 a): it leaves the chat panel and enters the ticket list.
#[utoipa::path(post, operation_id = "conversations_end", path = "/api/v1/conversations/{id}/end", tag = "conversations", params(("id" = i64, Path)),
    request_body = EndChatRequest,
    responses((status = 200, body = ConversationView), (status = 409, description = "the chat had already ended", body = crate::http::error::ErrorBody),
        (status = 422, description = "not a chat", body = crate::http::error::ErrorBody)))]
pub async fn end(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    body: crate::http::body::OptionalBody<EndChatRequest>,
) -> ApiResult<web::Json<ConversationView>> {
    let status = body.0.and_then(|b| b.status).map(|s| s.trim().to_owned());
    match state
        .changes
        .end(*id, status, EndReason::Agent, &p.scope, actor(&p))
        .await
        .map_err(|e| not_found_as(e, "conversation"))?
    {
        Some(updated) => Ok(web::Json(updated.conversation)),
        None => Err(ApiError::Conflict("this chat has already ended".into())),
    }
}

fn attachment_ids(ids: Vec<i64>) -> ApiResult<Vec<i64>> {
    if ids.len() > MAX_ATTACHMENTS {
        return Err(ApiError::field("attachment_ids", format!("at most {MAX_ATTACHMENTS}")));
    }
    let mut ids = ids;
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

fn mention_ids(ids: Vec<i64>) -> ApiResult<Vec<i64>> {
    let max = crate::domain::notifications::MAX_MENTIONS;
    if ids.len() > max {
        return Err(ApiError::field("mentions", format!("at most {max}")));
    }
    optional_id("mentions", ids.iter().copied().find(|id| *id < 1))?;
    Ok(ids)
}

/// An agent reply (queued for delivery on the conversation's channel) or, with `note: true`, an
/// internal note. `status` sets a status in the same action.
#[utoipa::path(post, operation_id = "conversations_reply", path = "/api/v1/conversations/{id}/messages", tag = "conversations", params(("id" = i64, Path)),
    request_body = CreateMessageRequest,
    responses((status = 201, body = MessageCreated), (status = 404, body = crate::http::error::ErrorBody), (status = 422, body = crate::http::error::ErrorBody)))]
pub async fn reply(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    body: crate::http::body::Body<CreateMessageRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    if let Some(user_id) = body.user_id {
        if body.note
            || body.status.is_some()
            || body.quoted_message_id.is_some()
            || !body.attachment_ids.is_empty()
            || !body.mentions.is_empty()
        {
            return Err(ApiError::validation(
                "a customer message (with user_id) takes content, content_html and external_message_id only",
            ));
        }
        return super::custom_channels::customer_message(
            &state,
            &p,
            *id,
            user_id,
            &body.content,
            body.content_html.as_deref(),
            body.external_message_id.as_deref(),
        )
        .await;
    }
    if !body.note && !body.mentions.is_empty() {
        return Err(ApiError::field("mentions", "only an internal note (note: true) mentions agents"));
    }
    let then = body.status.map(|s| ConversationPatch { status: Some(s.trim().to_owned()), ..Default::default() });
    let reply = NewReply {
        conversation_id: *id,
        agent_id: p.agent_id,
        note: body.note,
        source: source_of(&p),
        content: content("content", &body.content)?,
        content_html: html(body.content_html.as_deref())?,
        quoted_message_id: optional_id("quoted_message_id", body.quoted_message_id)?,
        attachment_ids: attachment_ids(body.attachment_ids)?,
        then,
        mentions: mention_ids(body.mentions)?,
    };
    append(state, p, *id, reply).await
}

/// An internal note: visible to agents only, never delivered (CORE-10).
#[utoipa::path(post, operation_id = "conversations_note", path = "/api/v1/conversations/{id}/notes", tag = "conversations", params(("id" = i64, Path)),
    request_body = CreateNoteRequest, responses((status = 201, body = MessageCreated), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn note(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    body: crate::http::body::Body<CreateNoteRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let reply = NewReply {
        conversation_id: *id,
        agent_id: p.agent_id,
        note: true,
        source: source_of(&p),
        content: content("content", &body.content)?,
        content_html: html(body.content_html.as_deref())?,
        quoted_message_id: None,
        attachment_ids: attachment_ids(body.attachment_ids)?,
        then: None,
        mentions: mention_ids(body.mentions)?,
    };
    append(state, p, *id, reply).await
}
