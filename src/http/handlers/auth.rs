//! Login, logout, "who am I", and the first-run setup.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{HttpResponse, web};
use chrono::Duration;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{hash_password, name_field};
use crate::auth::{Credential, Principal, SESSION_COOKIE, random_secret, secret_hash, verify_password};
use crate::domain::Role;
use crate::domain::text::normalize_email;
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::views::{AgentView, MeView, SetupView};
use crate::store::{self, audit::Actor};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// A stand-in hash so a login for an unknown email costs as much as a wrong password.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| crate::auth::hash_password(&random_secret()).unwrap_or_default()).clone()
}

async fn me_view(state: &State, p: &Principal) -> ApiResult<MeView> {
    let agent = store::agents::get(&state.store, p.agent_id).await?;
    let channels = store::agents::channel_ids(&state.store, p.agent_id).await?;
    let teams = store::agents::team_ids(&state.store, p.agent_id).await?;
    let csrf_token = match &p.credential {
        Credential::Session { csrf_token, .. } => Some(csrf_token.clone()),
        Credential::ApiToken { .. } => None,
    };
    Ok(MeView { agent: AgentView::new(agent, channels, teams), csrf_token, all_channels: p.is_admin() })
}

/// Sign in with email and password; sets the HttpOnly session cookie.
#[utoipa::path(post, operation_id = "auth_login", path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, security(),
    responses((status = 200, body = MeView), (status = 401, body = crate::http::error::ErrorBody)))]
pub async fn login(
    state: State,
    req: actix_web::HttpRequest,
    body: crate::http::body::Body<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let email = normalize_email(&body.email).unwrap_or_default();
    // Throttled before any database read or argon2 work (issue #13); the TCP peer is the address.
    let address = req.peer_addr().map(|a| a.ip());
    let attempt = state.login_throttle.begin(Some(email.as_str()).filter(|e| !e.is_empty()), address).map_err(|t| {
        ApiError::TooManyRequests {
            message: format!("too many failed sign-ins; try again in {} seconds", t.retry_after_secs()),
            retry_after_secs: t.retry_after_secs(),
        }
    })?;
    let agent = if email.is_empty() { None } else { store::agents::by_email(&state.store, &email).await? };
    let hash = agent.as_ref().filter(|a| a.active).and_then(|a| a.password_hash.clone()).unwrap_or_else(dummy_hash);
    let password = body.password;
    let ok = web::block(move || verify_password(&password, &hash)).await.map_err(ApiError::internal)?;
    let agent = match agent {
        Some(a) if ok && a.active => {
            state.login_throttle.succeeded(attempt);
            a
        }
        _ => {
            state.login_throttle.failed(attempt);
            return Err(ApiError::Unauthorized {
                code: "invalid_credentials",
                message: "wrong email or password".into(),
            });
        }
    };
    let token = random_secret();
    let csrf = random_secret();
    let ttl = Duration::hours(state.settings.session_ttl_hours as i64);
    store::auth::create_session(&state.store, agent.id, &secret_hash(&token), &csrf, store::now() + ttl).await?;
    let p = Principal {
        agent_id: agent.id,
        name: agent.name.clone(),
        email: agent.email.clone(),
        role: agent.role,
        scope: crate::domain::ChannelScope::All,
        credential: Credential::Session { token_hash: secret_hash(&token), csrf_token: csrf },
    };
    let view = me_view(&state, &p).await?;
    tracing::info!(agent_id = agent.id, "signed in");
    let cookie = Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings.secure_cookies)
        .max_age(CookieDuration::hours(state.settings.session_ttl_hours as i64))
        .finish();
    Ok(HttpResponse::Ok().cookie(cookie).json(view))
}

/// Sign out: ends this session (and closes the sockets opened with it) and clears the cookie.
#[utoipa::path(post, operation_id = "auth_logout", path = "/api/v1/auth/logout", tag = "auth", responses((status = 204)))]
pub async fn logout(state: State, p: Principal) -> ApiResult<HttpResponse> {
    if let Credential::Session { token_hash, .. } = &p.credential {
        store::auth::delete_session(&state.store, token_hash).await?;
        // Sockets opened with this session close, on every node (issue #13).
        state.changes.access_changed(p.agent_id);
    }
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").http_only(true).same_site(SameSite::Strict).finish();
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

/// The signed-in agent, their access, and the CSRF token for this session.
#[utoipa::path(get, operation_id = "auth_me", path = "/api/v1/me", tag = "auth", responses((status = 200, body = MeView), (status = 401, body = crate::http::error::ErrorBody)))]
pub async fn me(state: State, p: Principal) -> ApiResult<web::Json<MeView>> {
    Ok(web::Json(me_view(&state, &p).await?))
}

/// Whether the first admin still has to be created.
#[utoipa::path(get, operation_id = "auth_setup_status", path = "/api/v1/setup", tag = "auth", security(), responses((status = 200, body = SetupView)))]
pub async fn setup_status(state: State) -> ApiResult<web::Json<SetupView>> {
    Ok(web::Json(SetupView {
        needs_admin: !store::agents::any_admin(&state.store).await?,
        command: crate::FIRST_ADMIN_COMMAND.to_owned(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    pub email: String,
    pub password: String,
    pub name: Option<String>,
}

/// Create the first super admin from the dashboard's first-run page. Refused once any admin exists.
#[utoipa::path(post, operation_id = "auth_setup", path = "/api/v1/setup", tag = "auth", security(), request_body = SetupRequest,
    responses((status = 201, body = AgentView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn setup(state: State, body: crate::http::body::Body<SetupRequest>) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    if store::agents::any_admin(&state.store).await? {
        return Err(ApiError::Conflict("setup is done: an admin already exists".into()));
    }
    let email = normalize_email(&body.email).ok_or_else(|| ApiError::field("email", "is not a valid email address"))?;
    let name = match body.name.as_deref() {
        Some(n) => name_field("name", n, 100)?,
        None => email.split('@').next().unwrap_or("Admin").to_owned(),
    };
    let hash = hash_password(body.password).await?;
    let agent = store::agents::create(
        &state.store,
        store::agents::CreateAgent { email, name, password_hash: Some(hash), role: Role::SuperAdmin },
        Actor::System,
    )
    .await?;
    Ok(HttpResponse::Created().json(AgentView::new(agent, vec![], vec![])))
}
