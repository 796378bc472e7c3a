//! API tokens: an agent's own, or (admins) anyone's.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{actor, name_field};
use crate::auth::{Principal, new_api_token, secret_hash};
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::views::{TokenCreated, TokenView};
use crate::store;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// What the token is for, e.g. "shop integration".
    pub name: String,
    /// Create it for another agent (admins only). Default: yourself.
    pub agent_id: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TokenQuery {
    /// Admins: only this agent's tokens. Others always see only their own.
    pub agent_id: Option<i64>,
}

#[utoipa::path(get, operation_id = "tokens_list", path = "/api/v1/tokens", tag = "tokens", params(TokenQuery), responses((status = 200, body = [TokenView])))]
pub async fn list(state: State, p: Principal, q: web::Query<TokenQuery>) -> ApiResult<web::Json<Vec<TokenView>>> {
    let whose = if p.is_admin() { q.agent_id } else { Some(p.agent_id) };
    let rows = store::auth::list_tokens(&state.store, whose).await?;
    Ok(web::Json(rows.into_iter().map(TokenView::from).collect()))
}

/// Create an API token. The secret is in the answer once and never again.
#[utoipa::path(post, operation_id = "tokens_create", path = "/api/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 201, body = TokenCreated)))]
pub async fn create(
    state: State,
    p: Principal,
    body: crate::http::body::Body<CreateTokenRequest>,
) -> ApiResult<HttpResponse> {
    let name = name_field("name", &body.name, 100)?;
    let agent_id = body.agent_id.unwrap_or(p.agent_id);
    if agent_id != p.agent_id && !p.is_admin() {
        return Err(ApiError::forbidden("only admins create tokens for other agents"));
    }
    if agent_id != p.agent_id {
        // Acting as someone needs the right to grant their role: admins cannot mint super admin tokens.
        let target = store::agents::get(&state.store, agent_id).await.map_err(|_| ApiError::Unprocessable {
            code: "unknown_reference",
            message: format!("agent {agent_id} does not exist"),
        })?;
        if !p.role.may_grant(target.role) {
            return Err(ApiError::forbidden("only a super admin may create a token for a super admin"));
        }
    }
    let (secret, prefix) = new_api_token();
    let token = store::auth::create_token(&state.store, agent_id, &name, &secret_hash(&secret), &prefix, actor(&p))
        .await
        .map_err(|e| match e {
            store::StoreError::NotFound => ApiError::Unprocessable {
                code: "unknown_reference",
                message: format!("agent {agent_id} does not exist"),
            },
            other => other.into(),
        })?;
    Ok(HttpResponse::Created().json(TokenCreated { info: TokenView::from(token), token: secret }))
}

/// Revoke a token (your own; admins anyone's but a super admin's, which only a super admin may).
/// Sockets opened with it close within 2 s on every node.
#[utoipa::path(delete, operation_id = "tokens_delete", path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = crate::http::error::ErrorBody), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn delete(state: State, p: Principal, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    let token = store::auth::get_token(&state.store, *id).await?;
    if token.agent_id != p.agent_id {
        if !p.is_admin() {
            return Err(ApiError::not_found("token"));
        }
        // Like creating one: only a super admin touches a super admin's tokens (issue #13, 7a).
        let owner = store::agents::get(&state.store, token.agent_id).await?;
        if !p.role.may_grant(owner.role) {
            return Err(ApiError::forbidden("only a super admin may revoke a super admin's token"));
        }
    }
    store::auth::delete_token(&state.store, *id, actor(&p)).await?;
    // Other nodes drop their cached principals too (this node already did, in the store).
    state.changes.access_changed(token.agent_id);
    Ok(HttpResponse::NoContent().finish())
}
