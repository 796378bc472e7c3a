//! Finding the [`Principal`] of a request: the session cookie (dashboard) or a Bearer API token
//! (integrations). Requests with the cookie that change state must echo the session's CSRF token
//! in `X-CSRF-Token`; together with `SameSite=Strict` this stops cross-site request forgery.
//!
//! A Bearer token's principal is cached (`AppState::tokens`, see `store::cache`): a revoked
//! token, a deactivated or demoted agent or changed channel access is seen by the next request
//! on this node; on other nodes when the bus announces it, and at the latest after [`TOKEN_TTL`].
//! Sessions are not cached.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, web};
use chrono::Duration;

use super::AppState;
use super::error::ApiError;
use crate::auth::{CSRF_HEADER, Credential, Principal, SESSION_COOKIE, secret_hash, secrets_equal};
use crate::domain::{ChannelScope, Role};
use crate::store::{self, models::Agent};

/// How long a cached API-token principal may be used without a change announced (`store::cache`).
pub const TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// What an API token resolves to, cached by its hash: the principal, and when the token was last
/// noted as used (so the once-a-minute `touch_token` still happens).
#[derive(Clone)]
pub struct CachedToken {
    principal: Principal,
    last_used_at: Option<chrono::NaiveDateTime>,
}

/// A principal that must be an admin or super admin.
pub struct Admin(pub Principal);

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let p = authenticate(&req).await?;
            if !p.is_admin() {
                return Err(ApiError::forbidden("this needs an admin"));
            }
            Ok(Admin(p))
        })
    }
}

/// A principal that must be a super admin: connecting, editing and deleting channels of any kind (CC-11).
pub struct SuperAdmin(pub Principal);

impl FromRequest for SuperAdmin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let p = authenticate(&req).await?;
            if p.role != Role::SuperAdmin {
                return Err(ApiError::forbidden("only a super admin may connect, change or remove channels (CC-11)"));
            }
            Ok(SuperAdmin(p))
        })
    }
}

pub(super) fn state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))
}

async fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    let state = state(req)?;
    let store = &state.store;
    if let Some(header) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let value = header.to_str().map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
        let token = value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <token>`"))?;
        let hash = secret_hash(token);
        let stale = |used: Option<chrono::NaiveDateTime>| used.is_none_or(|t| store::now() - t > Duration::seconds(60));
        // Read before the database, so a change committed meanwhile invalidates what we load.
        let generation = store.generation();
        if let Some(cached) = state.tokens.get(&hash, generation) {
            if stale(cached.last_used_at) {
                if let Credential::ApiToken { id } = cached.principal.credential {
                    store::auth::touch_token(store, id).await?;
                }
                state.tokens.update(&hash, |c| c.last_used_at = Some(store::now()));
            }
            return Ok(cached.principal);
        }
        let (api_token, agent) =
            store::auth::token(store, &hash).await?.ok_or_else(|| ApiError::unauthorized("invalid API token"))?;
        let mut last_used_at = api_token.last_used_at;
        if stale(last_used_at) {
            store::auth::touch_token(store, api_token.id).await?;
            last_used_at = Some(store::now());
        }
        let p = principal(store, agent, Credential::ApiToken { id: api_token.id }).await?;
        state.tokens.put(hash, CachedToken { principal: p.clone(), last_used_at }, generation);
        return Ok(p);
    }
    let cookie = req
        .cookie(SESSION_COOKIE)
        .ok_or_else(|| ApiError::unauthorized("sign in, or send an API token as `Authorization: Bearer <token>`"))?;
    let token_hash = secret_hash(cookie.value());
    let (session, agent) = store::auth::session(store, &token_hash)
        .await?
        .ok_or_else(|| ApiError::unauthorized("session expired; sign in again"))?;
    check_csrf(req, &session.csrf_token)?;
    principal(store, agent, Credential::Session { token_hash, csrf_token: session.csrf_token }).await
}

/// A cookie session's CSRF check, for agents and customers alike: a request that changes something (not GET, HEAD
/// or OPTIONS) must send the session's token in the `CSRF_HEADER` header.
pub(super) fn check_csrf(req: &HttpRequest, expected: &str) -> Result<(), ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if secrets_equal(sent, expected) {
        Ok(())
    } else {
        Err(ApiError::Forbidden { code: "csrf_failed", message: format!("missing or wrong {CSRF_HEADER} header") })
    }
}

async fn principal(store: &store::Store, agent: Agent, credential: Credential) -> Result<Principal, ApiError> {
    let role = agent.role;
    let scope = if role.is_admin() {
        ChannelScope::All
    } else {
        ChannelScope::for_role(role, store::agents::channel_ids(store, agent.id).await?)
    };
    Ok(Principal { agent_id: agent.id, name: agent.name, email: agent.email, role, scope, credential })
}
