//! Conversation statuses: built-in and custom, with conditions (CORE-6).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{actor, name_field};
use crate::auth::Principal;
use crate::domain::StatusBase;
use crate::domain::status::is_requirable;
use crate::domain::text::is_valid_key;
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::session::Admin;
use crate::http::views::StatusView;
use crate::store;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStatusRequest {
    /// Machine key: lower-case letters, digits and `_`, starting with a letter.
    pub key: String,
    pub name: String,
    /// `open`, `pending` or `closed`: how the product treats conversations in this status.
    pub base: String,
    /// `assignee`, `team`, `subject`, `tags` or `custom:{field}`.
    #[serde(default)]
    pub required_fields: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStatusRequest {
    pub name: Option<String>,
    pub required_fields: Option<Vec<String>>,
    pub position: Option<i64>,
}

fn check_required(fields: &[String]) -> ApiResult<()> {
    if fields.len() > 20 {
        return Err(ApiError::field("required_fields", "at most 20"));
    }
    match fields.iter().find(|f| !is_requirable(f)) {
        Some(bad) => Err(ApiError::field(
            "required_fields",
            format!("{bad:?} is not one of assignee, team, subject, tags, custom:{{name}}"),
        )),
        None => Ok(()),
    }
}

#[utoipa::path(get, operation_id = "statuses_list", path = "/api/v1/statuses", tag = "statuses", responses((status = 200, body = [StatusView])))]
pub async fn list(state: State, _p: Principal) -> ApiResult<web::Json<Vec<StatusView>>> {
    let rows = store::statuses::list(&state.store).await?;
    Ok(web::Json(rows.into_iter().map(StatusView::from).collect()))
}

#[utoipa::path(post, operation_id = "statuses_create", path = "/api/v1/statuses", tag = "statuses", request_body = CreateStatusRequest,
    responses((status = 201, body = StatusView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn create(
    state: State,
    Admin(p): Admin,
    body: crate::http::body::Body<CreateStatusRequest>,
) -> ApiResult<HttpResponse> {
    if !is_valid_key(&body.key) {
        return Err(ApiError::field("key", "use lower-case letters, digits and _, starting with a letter (max 40)"));
    }
    let name = name_field("name", &body.name, 60)?;
    let base: StatusBase = body.base.parse().map_err(|e| ApiError::field("base", e))?;
    check_required(&body.required_fields)?;
    let s = store::statuses::create(&state.store, &body.key, &name, base, &body.required_fields, actor(&p)).await?;
    Ok(HttpResponse::Created().json(StatusView::from(s)))
}

#[utoipa::path(patch, operation_id = "statuses_update", path = "/api/v1/statuses/{key}", tag = "statuses", params(("key" = String, Path)), request_body = UpdateStatusRequest,
    responses((status = 200, body = StatusView)))]
pub async fn update(
    state: State,
    Admin(p): Admin,
    key: web::Path<String>,
    body: crate::http::body::Body<UpdateStatusRequest>,
) -> ApiResult<web::Json<StatusView>> {
    let name = match body.name.as_deref() {
        Some(n) => Some(name_field("name", n, 60)?),
        None => None,
    };
    if let Some(r) = &body.required_fields {
        check_required(r)?;
    }
    let s = store::statuses::update(
        &state.store,
        &key,
        name.as_deref(),
        body.required_fields.as_deref(),
        body.position,
        actor(&p),
    )
    .await?;
    Ok(web::Json(StatusView::from(s)))
}

/// Delete a custom status no conversation uses.
#[utoipa::path(delete, operation_id = "statuses_delete", path = "/api/v1/statuses/{key}", tag = "statuses", params(("key" = String, Path)), responses((status = 204)))]
pub async fn delete(state: State, Admin(p): Admin, key: web::Path<String>) -> ApiResult<HttpResponse> {
    store::statuses::delete(&state.store, &key, actor(&p)).await?;
    Ok(HttpResponse::NoContent().finish())
}
