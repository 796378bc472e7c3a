//! The caller's notification inbox (issue #17 item 2): list newest first with the unread count,
//! mark one or all read; and who may be @mentioned in a conversation's notes (item 3).
//!
//! Notifications are written by the change feed's consumer (`store::notifications::produce`), never
//! here. Every route is the caller's own: another agent's notification, or one whose conversation
//! the caller can no longer see, is 404.

use actix_web::web;
use serde::Deserialize;
use utoipa::IntoParams;

use super::not_found_as;
use crate::auth::Principal;
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::store;
use crate::view::MentionView;
use crate::view::notification::{NotificationPage, NotificationView, NotificationsRead};

/// Default page size.
const PAGE: i64 = 30;

#[derive(Debug, Deserialize, IntoParams)]
pub struct NotificationQuery {
    /// Only notifications older than this id (the last `id` of the previous page).
    pub before: Option<i64>,
    /// 1–100, default 30.
    pub limit: Option<i64>,
    /// Only unread ones.
    pub unread: Option<bool>,
}

/// The caller's notifications, newest first, with their unread count (all pages).
#[utoipa::path(get, operation_id = "notifications_list", path = "/api/v1/me/notifications", tag = "notifications", params(NotificationQuery),
    responses((status = 200, body = NotificationPage)))]
pub async fn list(
    state: State,
    p: Principal,
    q: web::Query<NotificationQuery>,
) -> ApiResult<web::Json<NotificationPage>> {
    let limit = q.limit.unwrap_or(PAGE);
    if !(1..=store::notifications::MAX_PAGE).contains(&limit) {
        return Err(ApiError::field("limit", format!("must be between 1 and {}", store::notifications::MAX_PAGE)));
    }
    if q.before.is_some_and(|b| b < 1) {
        return Err(ApiError::field("before", "must be a notification id"));
    }
    let page =
        store::notifications::list(&state.store, p.agent_id, &p.scope, q.before, q.unread.unwrap_or(false), limit)
            .await?;
    Ok(web::Json(NotificationPage {
        items: page.items.iter().map(NotificationView::from).collect(),
        unread_count: page.unread_count,
        has_more: page.has_more,
    }))
}

/// Mark one of the caller's notifications read (again: no change). Another agent's is 404.
#[utoipa::path(post, operation_id = "notifications_read", path = "/api/v1/me/notifications/{id}/read", tag = "notifications",
    params(("id" = i64, Path)),
    responses((status = 200, body = NotificationsRead), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn read(state: State, p: Principal, id: web::Path<i64>) -> ApiResult<web::Json<NotificationsRead>> {
    let n = store::notifications::mark_read(&state.store, p.agent_id, *id, &p.scope)
        .await
        .map_err(|e| not_found_as(e, "notification"))?;
    state.changes.notifications_read(p.agent_id, vec![n.row.id], false, n.unread_count);
    Ok(web::Json(NotificationsRead { unread_count: n.unread_count }))
}

/// Mark all of the caller's notifications read.
#[utoipa::path(post, operation_id = "notifications_read_all", path = "/api/v1/me/notifications/read-all", tag = "notifications",
    responses((status = 200, body = NotificationsRead)))]
pub async fn read_all(state: State, p: Principal) -> ApiResult<web::Json<NotificationsRead>> {
    let unread_count = store::notifications::mark_all_read(&state.store, p.agent_id, &p.scope).await?;
    state.changes.notifications_read(p.agent_id, Vec::new(), true, unread_count);
    Ok(web::Json(NotificationsRead { unread_count }))
}

/// The agents who may be @mentioned in this conversation's internal notes: the active agents who may
/// see its channel, by name (for the note editor's autocomplete).
#[utoipa::path(get, operation_id = "conversations_mentionable", path = "/api/v1/conversations/{id}/mentionable", tag = "conversations",
    params(("id" = i64, Path)),
    responses((status = 200, body = [MentionView]), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn mentionable(state: State, p: Principal, id: web::Path<i64>) -> ApiResult<web::Json<Vec<MentionView>>> {
    let agents = store::notifications::mentionable(&state.store, *id, &p.scope)
        .await
        .map_err(|e| not_found_as(e, "conversation"))?;
    Ok(web::Json(agents.into_iter().map(|(agent_id, name)| MentionView { agent_id, name }).collect()))
}
