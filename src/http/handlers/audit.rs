//! The audit log (admin): who changed what.

use actix_web::web;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::session::Admin;
use crate::http::views::AuditView;
use crate::store;

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// `agent`, `team`, `channel`, `status`, `api_token`, `customer`, `conversation`.
    pub entity_type: Option<String>,
    pub entity_id: Option<i64>,
    /// Entries older than this id (paging).
    pub before_id: Option<i64>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
}

#[utoipa::path(get, operation_id = "audit_list", path = "/api/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = [AuditView])))]
pub async fn list(state: State, Admin(_p): Admin, q: web::Query<AuditQuery>) -> ApiResult<web::Json<Vec<AuditView>>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 200"));
    }
    if q.entity_id.is_some() && q.entity_type.is_none() {
        return Err(ApiError::field("entity_id", "needs entity_type"));
    }
    let entity = q.entity_type.as_deref().map(|t| (t, q.entity_id));
    let rows = store::audit::list(&state.store, entity, limit, q.before_id).await?;
    Ok(web::Json(rows.into_iter().map(AuditView::from).collect()))
}
