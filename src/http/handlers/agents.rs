//! Agents (admin): create, list, change role/name/password/active, channel access (HD-3).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{actor, hash_password, name_field};
use crate::auth::{Credential, Principal, verify_password};
use crate::domain::Role;
use crate::domain::text::normalize_email;
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::session::Admin;
use crate::http::views::AgentView;
use crate::store;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentRequest {
    pub email: String,
    pub name: String,
    /// At least 8 characters. Leave out to create an agent who cannot sign in yet.
    pub password: Option<String>,
    /// `super_admin`, `admin` or `agent` (default).
    pub role: Option<String>,
    /// Channel instances the agent may work in.
    #[serde(default)]
    pub channel_ids: Vec<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgentRequest {
    pub name: Option<String>,
    pub role: Option<String>,
    pub active: Option<bool>,
    /// A new password (at least 8 characters). Ends every other session of the agent.
    pub password: Option<String>,
    /// Your current password: required with `password` when you change your own (and have one).
    pub current_password: Option<String>,
    /// With `password`: also revoke every API token of the agent. Default false.
    #[serde(default)]
    pub revoke_tokens: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelAccessRequest {
    pub channel_ids: Vec<i64>,
}

fn parse_role(raw: &str) -> ApiResult<Role> {
    raw.parse().map_err(|e| ApiError::field("role", e))
}

async fn view(state: &State, agent: store::models::Agent) -> ApiResult<AgentView> {
    let channels = store::agents::channel_ids(&state.store, agent.id).await?;
    let teams = store::agents::team_ids(&state.store, agent.id).await?;
    Ok(AgentView::new(agent, channels, teams))
}

/// Every agent (any signed-in agent may list them, e.g. to assign a conversation).
#[utoipa::path(get, operation_id = "agents_list", path = "/api/v1/agents", tag = "agents", responses((status = 200, body = [AgentView])))]
pub async fn list(state: State, _p: Principal) -> ApiResult<web::Json<Vec<AgentView>>> {
    let mut out = Vec::new();
    for agent in store::agents::list(&state.store).await? {
        out.push(view(&state, agent).await?);
    }
    Ok(web::Json(out))
}

#[utoipa::path(get, operation_id = "agents_get", path = "/api/v1/agents/{id}", tag = "agents", params(("id" = i64, Path)),
    responses((status = 200, body = AgentView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get(state: State, _p: Principal, id: web::Path<i64>) -> ApiResult<web::Json<AgentView>> {
    let agent = store::agents::get(&state.store, *id).await?;
    Ok(web::Json(view(&state, agent).await?))
}

/// Create an agent (admin). Only a super admin creates super admins.
#[utoipa::path(post, operation_id = "agents_create", path = "/api/v1/agents", tag = "agents", request_body = CreateAgentRequest,
    responses((status = 201, body = AgentView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn create(
    state: State,
    Admin(p): Admin,
    body: crate::http::body::Body<CreateAgentRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let email = normalize_email(&body.email).ok_or_else(|| ApiError::field("email", "is not a valid email address"))?;
    let name = name_field("name", &body.name, 100)?;
    let role = parse_role(body.role.as_deref().unwrap_or("agent"))?;
    if !p.role.may_grant(role) {
        return Err(ApiError::forbidden(format!("only a super admin may create a {role}")));
    }
    for ch in &body.channel_ids {
        store::channels::get(&state.store, *ch, &crate::domain::ChannelScope::All).await.map_err(|_| {
            ApiError::Unprocessable { code: "unknown_reference", message: format!("channel {ch} does not exist") }
        })?;
    }
    let password_hash = match body.password {
        Some(pw) => Some(hash_password(pw).await?),
        None => None,
    };
    let agent =
        store::agents::create(&state.store, store::agents::CreateAgent { email, name, password_hash, role }, actor(&p))
            .await?;
    if !body.channel_ids.is_empty() {
        store::agents::set_channels(&state.store, agent.id, &body.channel_ids, actor(&p)).await?;
    }
    Ok(HttpResponse::Created().json(view(&state, agent).await?))
}

/// Change an agent. Admins change anyone (not into or out of super admin unless they are one);
/// an agent may change their own name and password.
///
/// A new password ends every session of the agent except the caller's own, and with
/// `revoke_tokens` every API token of theirs; changing your own needs `current_password`.
/// Open sockets follow within 2 s on every node (`docs/realtime.md`).
#[utoipa::path(patch, operation_id = "agents_update", path = "/api/v1/agents/{id}", tag = "agents", params(("id" = i64, Path)), request_body = UpdateAgentRequest,
    responses((status = 200, body = AgentView), (status = 400, body = crate::http::error::ErrorBody), (status = 403, body = crate::http::error::ErrorBody)))]
pub async fn update(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    body: crate::http::body::Body<UpdateAgentRequest>,
) -> ApiResult<web::Json<AgentView>> {
    let id = id.into_inner();
    let body = body.into_inner();
    let own = id == p.agent_id;
    if !p.is_admin() && (!own || body.role.is_some() || body.active.is_some()) {
        return Err(ApiError::forbidden("agents may change only their own name and password"));
    }
    let target = store::agents::get(&state.store, id).await?;
    let target_role = target.role;
    let role = match body.role.as_deref() {
        Some(r) => Some(parse_role(r)?),
        None => None,
    };
    // Nobody (themselves included) may give a role they could not grant, or change a super admin without being one.
    if p.is_admin() && ((!own && !p.role.may_grant(target_role)) || role.is_some_and(|r| !p.role.may_grant(r))) {
        return Err(ApiError::forbidden("only a super admin may change a super admin or make one"));
    }
    let name = match body.name.as_deref() {
        Some(n) => Some(name_field("name", n, 100)?),
        None => None,
    };
    if body.password.is_none() && (body.current_password.is_some() || body.revoke_tokens) {
        return Err(ApiError::validation("current_password and revoke_tokens go with a new password"));
    }
    if own && body.password.is_some() {
        check_current_password(&target, body.current_password).await?;
    }
    let password_hash = match body.password {
        Some(pw) => Some(hash_password(pw).await?),
        None => None,
    };
    // The caller's own session survives their own password change; every other one ends.
    let keep = match (&p.credential, own) {
        (Credential::Session { token_hash, .. }, true) => Some(token_hash.clone()),
        _ => None,
    };
    let end_sessions =
        password_hash.is_some().then_some(store::agents::EndSessions { keep, revoke_tokens: body.revoke_tokens });
    let patch = store::agents::AgentPatch { name, role, active: body.active, password_hash, end_sessions };
    let agent = store::agents::update(&state.store, id, patch, actor(&p)).await?;
    // A new role, a deactivation, a new password: the agent's sockets re-check on every node, and
    // other nodes drop their cached principals of this agent too.
    state.changes.access_changed(id);
    Ok(web::Json(view(&state, agent).await?))
}

/// Changing one's own password needs the current one (when there is one), so a session or token
/// left open somewhere cannot lock its owner out.
async fn check_current_password(agent: &store::models::Agent, current: Option<String>) -> ApiResult<()> {
    let Some(hash) = agent.password_hash.clone() else { return Ok(()) };
    let current =
        current.ok_or_else(|| ApiError::field("current_password", "is required to change your own password"))?;
    let ok = web::block(move || verify_password(&current, &hash)).await.map_err(ApiError::internal)?;
    if !ok {
        return Err(ApiError::Forbidden {
            code: "wrong_password",
            message: "current_password is not your password".into(),
        });
    }
    Ok(())
}

/// Replace the channel instances an agent may work in (admin).
#[utoipa::path(put, operation_id = "agents_set_channels", path = "/api/v1/agents/{id}/channels", tag = "agents", params(("id" = i64, Path)), request_body = ChannelAccessRequest,
    responses((status = 200, body = AgentView), (status = 422, body = crate::http::error::ErrorBody)))]
pub async fn set_channels(
    state: State,
    Admin(p): Admin,
    id: web::Path<i64>,
    body: crate::http::body::Body<ChannelAccessRequest>,
) -> ApiResult<web::Json<AgentView>> {
    store::agents::set_channels(&state.store, *id, &body.channel_ids, actor(&p)).await?;
    state.changes.access_changed(*id);
    let agent = store::agents::get(&state.store, *id).await?;
    Ok(web::Json(view(&state, agent).await?))
}
