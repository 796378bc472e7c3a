//! Teams (categories, HD-13): an agent sees the categories they may access — the teams they are a member of —,
//! admins all; managed by admins. A category does not grant access to conversations: channel access stays the
//! access rule (`ChannelScope`), and an agent of a category is notified of its tickets only on channels they may
//! see (`store::mail_notifications`).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{actor, name_field};
use crate::auth::Principal;
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::session::Admin;
use crate::http::views::TeamView;
use crate::store;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeamRequest {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub member_ids: Vec<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTeamRequest {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamMembersRequest {
    pub agent_ids: Vec<i64>,
}

fn description(d: &str) -> ApiResult<String> {
    if d.chars().count() > 2000 {
        return Err(ApiError::field("description", "must be at most 2000 characters"));
    }
    Ok(d.trim().to_owned())
}

#[utoipa::path(get, operation_id = "teams_list", path = "/api/v1/teams", tag = "teams", responses((status = 200, body = [TeamView])))]
pub async fn list(state: State, p: Principal) -> ApiResult<web::Json<Vec<TeamView>>> {
    let teams = store::teams::list(&state.store).await?;
    Ok(web::Json(teams.into_iter().filter(|(_, m)| may_access(&p, m)).map(|(t, m)| TeamView::new(t, m)).collect()))
}

/// Whether `p` may access a category with these members (HD-13): admins every one, agents their own.
fn may_access(p: &Principal, members: &[i64]) -> bool {
    p.role.is_admin() || members.contains(&p.agent_id)
}

#[utoipa::path(get, operation_id = "teams_get", path = "/api/v1/teams/{id}", tag = "teams", params(("id" = i64, Path)),
    responses((status = 200, body = TeamView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get(state: State, p: Principal, id: web::Path<i64>) -> ApiResult<web::Json<TeamView>> {
    let (t, m) = store::teams::get(&state.store, *id).await?;
    if !may_access(&p, &m) {
        return Err(ApiError::not_found("team"));
    }
    Ok(web::Json(TeamView::new(t, m)))
}

#[utoipa::path(post, operation_id = "teams_create", path = "/api/v1/teams", tag = "teams", request_body = CreateTeamRequest,
    responses((status = 201, body = TeamView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn create(
    state: State,
    Admin(p): Admin,
    body: crate::http::body::Body<CreateTeamRequest>,
) -> ApiResult<HttpResponse> {
    let name = name_field("name", &body.name, 100)?;
    let description = description(&body.description)?;
    for agent in &body.member_ids {
        store::agents::get(&state.store, *agent).await.map_err(|_| ApiError::Unprocessable {
            code: "unknown_reference",
            message: format!("agent {agent} does not exist"),
        })?;
    }
    let team = store::teams::create(&state.store, &name, &description, actor(&p)).await?;
    let members = if body.member_ids.is_empty() {
        vec![]
    } else {
        store::teams::set_members(&state.store, team.id, &body.member_ids, actor(&p)).await?
    };
    Ok(HttpResponse::Created().json(TeamView::new(team, members)))
}

#[utoipa::path(patch, operation_id = "teams_update", path = "/api/v1/teams/{id}", tag = "teams", params(("id" = i64, Path)), request_body = UpdateTeamRequest,
    responses((status = 200, body = TeamView)))]
pub async fn update(
    state: State,
    Admin(p): Admin,
    id: web::Path<i64>,
    body: crate::http::body::Body<UpdateTeamRequest>,
) -> ApiResult<web::Json<TeamView>> {
    let name = match body.name.as_deref() {
        Some(n) => Some(name_field("name", n, 100)?),
        None => None,
    };
    let description = match body.description.as_deref() {
        Some(d) => Some(description(d)?),
        None => None,
    };
    store::teams::update(&state.store, *id, name.as_deref(), description.as_deref(), actor(&p)).await?;
    let (t, m) = store::teams::get(&state.store, *id).await?;
    if !may_access(&p, &m) {
        return Err(ApiError::not_found("team"));
    }
    Ok(web::Json(TeamView::new(t, m)))
}

#[utoipa::path(delete, operation_id = "teams_delete", path = "/api/v1/teams/{id}", tag = "teams", params(("id" = i64, Path)), responses((status = 204)))]
pub async fn delete(state: State, Admin(p): Admin, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    store::teams::delete(&state.store, *id, actor(&p)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(put, operation_id = "teams_set_members", path = "/api/v1/teams/{id}/members", tag = "teams", params(("id" = i64, Path)), request_body = TeamMembersRequest,
    responses((status = 200, body = TeamView)))]
pub async fn set_members(
    state: State,
    Admin(p): Admin,
    id: web::Path<i64>,
    body: crate::http::body::Body<TeamMembersRequest>,
) -> ApiResult<web::Json<TeamView>> {
    store::teams::set_members(&state.store, *id, &body.agent_ids, actor(&p)).await?;
    let (t, m) = store::teams::get(&state.store, *id).await?;
    if !may_access(&p, &m) {
        return Err(ApiError::not_found("team"));
    }
    Ok(web::Json(TeamView::new(t, m)))
}
