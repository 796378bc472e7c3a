//! Onboarding (issue #17 item 9): agent invitations — an admin invites by email, the invited person sets their own
//! password through a single-use, expiring link (no admin-typed passwords) — and the first-run checklist an admin
//! sees until it is done and dismissed.
//!
//! The link's token is 256 random bits, shown once in the answer to the invitation and stored only as its SHA-256;
//! an altered token matches nothing. The two `/invitations/{token}` routes are public: the token is the credential.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{actor, hash_password, name_field};
use crate::auth::{random_secret, secret_hash};
use crate::domain::Role;
use crate::domain::text::normalize_email;
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::session::Admin;
use crate::http::views::AgentView;
use crate::store::{self, invitations::Refusal};

/// How long an invitation link works.
pub const INVITATION_TTL_HOURS: i64 = 7 * 24;
/// The link's token starts with this (so it is recognisable in logs and chat).
const TOKEN_PREFIX: &str = "sbi_";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub email: String,
    /// Default: the part of the email before `@`.
    pub name: Option<String>,
    /// `super_admin`, `admin` or `agent` (default).
    pub role: Option<String>,
    /// Channel instances the agent may work in.
    #[serde(default)]
    pub channel_ids: Vec<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationCreated {
    pub agent: AgentView,
    /// The set-your-password link, shown only in this answer: hand it to the invited person.
    pub url: String,
    pub expires_at: DateTime<Utc>,
    /// Whether the link is also mailed to the invited person: true when a mailbox is enabled (the mail leaves
    /// through the first enabled mailbox's SMTP settings, queued durably); false: hand the link over yourself.
    pub mailed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    pub email: String,
    pub name: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    /// The new password: at least 8 characters, like every password.
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationAccepted {
    /// Sign in with this email and the new password.
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OnboardingStep {
    /// `connect_channel`, `invite_teammate` or `answer_message`.
    pub key: String,
    pub done: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OnboardingView {
    /// In order: connect a channel, invite a teammate, answer a (test) message.
    pub steps: Vec<OnboardingStep>,
    /// Every step is done.
    pub complete: bool,
    /// An admin dismissed the checklist (it is then not shown).
    pub dismissed: bool,
}

fn refused(why: Refusal) -> ApiError {
    match why {
        Refusal::Unknown => ApiError::NotFound("invitation not found: the link is wrong or was replaced".into()),
        Refusal::Expired => ApiError::Unprocessable {
            code: "invitation_expired",
            message: "this invitation has expired; ask an admin for a new one".into(),
        },
        Refusal::Used => ApiError::Unprocessable {
            code: "invitation_used",
            message: "this invitation was already used; sign in with your password".into(),
        },
        Refusal::Inactive => ApiError::Unprocessable {
            code: "invitation_revoked",
            message: "this account was deactivated; ask an admin".into(),
        },
    }
}

/// Invite a teammate by email (admin). Creates the agent without a password (or invites again an agent who has
/// none yet; older links stop working) and answers the single-use set-your-password link, valid 7 days. Only a
/// super admin invites a super admin. 409 when the email belongs to an agent who has a password.
#[utoipa::path(post, operation_id = "agents_invite", path = "/api/v1/agents/invitations", tag = "agents", request_body = InviteRequest,
    responses((status = 201, body = InvitationCreated), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn invite(
    state: State,
    Admin(p): Admin,
    body: crate::http::body::Body<InviteRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let email = normalize_email(&body.email).ok_or_else(|| ApiError::field("email", "is not a valid email address"))?;
    let name = match body.name.as_deref().filter(|n| !n.trim().is_empty()) {
        Some(n) => name_field("name", n, 100)?,
        None => email.split('@').next().unwrap_or("Agent").to_owned(),
    };
    let role: Role = body.role.as_deref().unwrap_or("agent").parse().map_err(|e| ApiError::field("role", e))?;
    if !p.role.may_grant(role) {
        return Err(ApiError::forbidden(format!("only a super admin may invite a {role}")));
    }
    for ch in &body.channel_ids {
        store::channels::get(&state.store, *ch, &crate::domain::ChannelScope::All).await.map_err(|_| {
            ApiError::Unprocessable { code: "unknown_reference", message: format!("channel {ch} does not exist") }
        })?;
    }
    let token = format!("{TOKEN_PREFIX}{}", random_secret());
    let url = store::invitations::link(&state.settings.public_url, &token);
    let expires_at = store::now() + chrono::Duration::hours(INVITATION_TTL_HOURS);
    let input = store::invitations::Invite { email, name, role, token_hash: secret_hash(&token), token, expires_at };
    let store::invitations::Invited { agent, invitation, mailed } =
        store::invitations::invite(&state.store, input, actor(&p)).await?;
    if !body.channel_ids.is_empty() {
        store::agents::set_channels(&state.store, agent.id, &body.channel_ids, actor(&p)).await?;
        state.changes.access_changed(agent.id);
    }
    let channels = store::agents::channel_ids(&state.store, agent.id).await?;
    let teams = store::agents::team_ids(&state.store, agent.id).await?;
    tracing::info!(agent_id = p.agent_id, invited = agent.id, "agent invited");
    Ok(HttpResponse::Created().json(InvitationCreated {
        agent: AgentView::new(agent, channels, teams),
        url,
        expires_at: invitation.expires_at.and_utc(),
        mailed,
    }))
}

/// Who an invitation is for (public: the token is the credential). 404 for a token that matches nothing (altered,
/// replaced); 422 `invitation_expired`, `invitation_used` or `invitation_revoked`.
#[utoipa::path(get, operation_id = "invitations_get", path = "/api/v1/invitations/{token}", tag = "agents", security(),
    params(("token" = String, Path)), responses((status = 200, body = InvitationView), (status = 404, body = crate::http::error::ErrorBody),
        (status = 422, body = crate::http::error::ErrorBody)))]
pub async fn get(state: State, token: web::Path<String>) -> ApiResult<web::Json<InvitationView>> {
    let (invitation, agent) = store::invitations::find(&state.store, secret_hash(&token)).await?.map_err(refused)?;
    Ok(web::Json(InvitationView { email: agent.email, name: agent.name, expires_at: invitation.expires_at.and_utc() }))
}

/// Set your password with an invitation (public: the token is the credential); the link then stops working and
/// the agent signs in with their email and this password. 400 for a password the policy refuses.
#[utoipa::path(post, operation_id = "invitations_accept", path = "/api/v1/invitations/{token}", tag = "agents", security(),
    params(("token" = String, Path)), request_body = AcceptInvitation,
    responses((status = 200, body = InvitationAccepted), (status = 404, body = crate::http::error::ErrorBody),
        (status = 422, body = crate::http::error::ErrorBody)))]
pub async fn accept(
    state: State,
    token: web::Path<String>,
    body: crate::http::body::Body<AcceptInvitation>,
) -> ApiResult<web::Json<InvitationAccepted>> {
    let token_hash = secret_hash(&token);
    // Refuse a dead link before spending argon2 work on it.
    store::invitations::find(&state.store, token_hash.clone()).await?.map_err(refused)?;
    let hash = hash_password(body.into_inner().password).await?;
    let agent = store::invitations::accept(&state.store, token_hash, hash).await?.map_err(refused)?;
    state.changes.access_changed(agent.id);
    tracing::info!(agent_id = agent.id, "invitation accepted");
    Ok(web::Json(InvitationAccepted { email: agent.email }))
}

/// The first-run checklist (admin): connect a channel, invite a teammate, answer a message — each computed from
/// what the install holds.
#[utoipa::path(get, operation_id = "onboarding_get", path = "/api/v1/onboarding", tag = "agents",
    responses((status = 200, body = OnboardingView)))]
pub async fn checklist(state: State, Admin(_p): Admin) -> ApiResult<web::Json<OnboardingView>> {
    let progress = store::invitations::progress(&state.store).await?;
    let steps = vec![
        OnboardingStep { key: "connect_channel".into(), done: progress.channel },
        OnboardingStep { key: "invite_teammate".into(), done: progress.teammate },
        OnboardingStep { key: "answer_message".into(), done: progress.answered },
    ];
    let complete = steps.iter().all(|s| s.done);
    Ok(web::Json(OnboardingView { steps, complete, dismissed: progress.dismissed }))
}

/// Hide the first-run checklist for every admin (admin).
#[utoipa::path(post, operation_id = "onboarding_dismiss", path = "/api/v1/onboarding/dismiss", tag = "agents",
    responses((status = 204)))]
pub async fn dismiss(state: State, Admin(p): Admin) -> ApiResult<HttpResponse> {
    store::invitations::dismiss(&state.store, actor(&p)).await?;
    Ok(HttpResponse::NoContent().finish())
}
