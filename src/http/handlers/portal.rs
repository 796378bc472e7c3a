//! The customer portal's API (`/portal/api/...`, OpenAPI tag `portal`; issue #18, CU-1…CU-3, HD-12) and the pages
//! of the signed links mail carries (`/portal/auto-login/{token}`, `/portal/rate/{token}`,
//! `/portal/unsubscribe/{token}`; NT-10).
//!
//! Every portal route acts as the signed-in customer ([`CustomerPrincipal`]): a ticket that is not theirs is 404,
//! like a missing one; messages are the public ones only (never internal notes). New tickets are opened on the web
//! channel through `Changes` (agents see them live); replies go through `Changes::customer_message`, the same
//! last-chat rule as every channel (a reply to a closed ticket starts a new one, CORE-7). No outbox row is written
//! for replies on the web channel (`ChannelKind::Web` has no sender): the customer reads them here, and learns of
//! them from the notification mail.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::attachments::UploadQuery;
use super::hash_password;
use crate::auth::{random_secret, secret_hash, verify_password};
use crate::domain::links::{Link, LinkError};
use crate::domain::text::normalize_email;
use crate::domain::{Rating, StatusBase};
use crate::http::State;
use crate::http::customer_session::{CUSTOMER_COOKIE, CustomerPrincipal};
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::store::messages::{CustomerMessage, Target};
use crate::store::portal::{NewTicket, Ticket};
use crate::store::{self, StoreError};

const MAX_CONTENT: usize = 100_000;
const MAX_SUBJECT: usize = 300;
const MAX_ATTACHMENTS: usize = 20;
const MAX_TICKETS: i64 = 500;

// ----- views -----

/// The signed-in customer as they see themselves (CU-1).
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalCustomer {
    pub id: i64,
    pub name: String,
    pub company: Option<String>,
    pub department: String,
    pub location: String,
    /// Their email addresses (any of them signs in).
    pub emails: Vec<String>,
}

/// Who is signed in, and the CSRF token to send as `X-CSRF-Token` on state-changing portal requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalMe {
    pub customer: PortalCustomer,
    pub csrf_token: String,
}

/// One of the customer's tickets.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalTicket {
    pub id: i64,
    /// Shown as `#1234`.
    pub number: i64,
    pub subject: String,
    /// The status key (built-in or custom).
    pub status: String,
    /// `open`, `pending` or `closed`: what the status means.
    pub state: String,
    /// How it came in: `web`, `email`, `custom`, `mattermost`, `zalo`.
    pub via: String,
    /// The customer's rating (HD-12): `good`, `average`, `bad`, or null.
    pub csat: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// A file of a message (or an upload not yet sent).
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalAttachment {
    pub id: i64,
    pub file_name: String,
    pub mime_type: String,
    pub size_bytes: i64,
    /// Where the customer downloads it (`/portal/api/attachments/{id}`).
    pub url: String,
}

/// A public message of a ticket: the customer's own, or an agent's reply (never an internal note).
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalMessage {
    pub id: i64,
    pub seq: i64,
    /// `customer` (the customer wrote it) or `agent` (the help desk answered).
    pub from: String,
    /// The agent's name for replies; the customer's for theirs.
    pub author: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub attachments: Vec<PortalAttachment>,
}

/// What a reply or a new ticket made.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalPosted {
    /// The ticket it is in: the one replied to, or a new one when that was closed (CORE-7).
    pub ticket: PortalTicket,
    pub message: PortalMessage,
}

/// The answer of "forgot password": the same whether or not the address is known.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalForgotAnswer {
    pub message: String,
}

// ----- requests -----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalLoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalForgotRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalResetRequest {
    /// The token of the mailed link `{public_url}/portal/reset/{token}`.
    pub token: String,
    /// At least 8 characters.
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalNewTicketRequest {
    pub subject: String,
    pub content: String,
    /// Ids from `POST /portal/api/attachments`.
    #[serde(default)]
    pub attachment_ids: Vec<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalReplyRequest {
    pub content: String,
    /// Ids from `POST /portal/api/attachments`.
    #[serde(default)]
    pub attachment_ids: Vec<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalRateRequest {
    /// `good`, `average` or `bad`.
    pub rating: String,
}

// ----- helpers -----

fn ts(t: chrono::NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

fn ticket_view(t: Ticket) -> PortalTicket {
    let c = t.row.conversation;
    PortalTicket {
        id: c.id,
        number: c.number,
        subject: c.subject,
        status: c.status,
        state: t.base.as_str().to_owned(),
        via: t.row.channel_kind.as_str().to_owned(),
        csat: c.csat.map(|r| r.as_str().to_owned()),
        created_at: ts(c.created_at),
        updated_at: ts(c.updated_at),
        closed_at: c.closed_at.map(ts),
    }
}

fn attachment_view(a: store::models::Attachment) -> PortalAttachment {
    PortalAttachment {
        url: format!("/portal/api/attachments/{}", a.id),
        id: a.id,
        file_name: a.file_name,
        mime_type: a.mime_type,
        size_bytes: a.size_bytes,
    }
}

fn message_view(
    m: store::models::Message,
    files: Vec<store::models::Attachment>,
    agent: Option<String>,
    me: &str,
) -> PortalMessage {
    let customer = m.direction == crate::domain::Direction::In;
    PortalMessage {
        id: m.id,
        seq: m.seq,
        from: if customer { "customer" } else { "agent" }.to_owned(),
        author: if customer { me.to_owned() } else { agent.unwrap_or_else(|| "Support".to_owned()) },
        text: m.body_text,
        created_at: ts(m.created_at),
        attachments: files.into_iter().map(attachment_view).collect(),
    }
}

fn not_found(e: StoreError) -> ApiError {
    super::not_found_as(e, "ticket")
}

fn text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    if value.trim().is_empty() {
        return Err(ApiError::field(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ApiError::field(field, format!("must be at most {max} characters")));
    }
    Ok(value.to_owned())
}

fn attachment_ids(ids: &[i64]) -> ApiResult<Vec<i64>> {
    if ids.len() > MAX_ATTACHMENTS {
        return Err(ApiError::field("attachment_ids", format!("at most {MAX_ATTACHMENTS}")));
    }
    let mut out = ids.to_vec();
    out.sort_unstable();
    out.dedup();
    if out.len() != ids.len() {
        return Err(ApiError::field("attachment_ids", "names a file twice"));
    }
    Ok(ids.to_vec())
}

/// Start a portal session for `customer_id`: its cookie (HttpOnly, SameSite=Strict) and the signed-in view.
async fn sign_in(state: &State, customer_id: i64) -> ApiResult<(Cookie<'static>, PortalMe)> {
    let token = random_secret();
    let csrf = random_secret();
    let hours = state.settings.session_ttl_hours as i64;
    store::portal::create_session(
        &state.store,
        customer_id,
        secret_hash(&token),
        csrf.clone(),
        store::now() + Duration::hours(hours),
    )
    .await?;
    let me = me_view(state, customer_id, csrf).await?;
    let cookie = Cookie::build(CUSTOMER_COOKIE, token)
        .path("/portal")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings.secure_cookies)
        .max_age(CookieDuration::hours(hours))
        .finish();
    Ok((cookie, me))
}

async fn me_view(state: &State, customer_id: i64, csrf_token: String) -> ApiResult<PortalMe> {
    let p = store::portal::profile(&state.store, customer_id).await?;
    let c = p.customer;
    Ok(PortalMe {
        customer: PortalCustomer {
            id: c.id,
            name: c.name,
            company: p.company,
            department: c.department,
            location: c.location,
            emails: p.emails,
        },
        csrf_token,
    })
}

fn removal_cookie() -> Cookie<'static> {
    let mut gone =
        Cookie::build(CUSTOMER_COOKIE, "").path("/portal").http_only(true).same_site(SameSite::Strict).finish();
    gone.make_removal();
    gone
}

/// A stand-in hash so signing in with an unknown address costs as much as a wrong password.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| crate::auth::hash_password(&random_secret()).unwrap_or_default()).clone()
}

// ----- account -----

/// Sign in to the portal with email and password; sets the HttpOnly `sb_customer` cookie (CU-1, CU-3).
#[utoipa::path(post, operation_id = "portal_login", path = "/portal/api/login", tag = "portal", request_body = PortalLoginRequest, security(),
    responses((status = 200, body = PortalMe), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    state: State,
    req: HttpRequest,
    body: crate::http::body::Body<PortalLoginRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let email = normalize_email(&body.email).unwrap_or_default();
    let address = req.peer_addr().map(|a| a.ip());
    let attempt =
        state.portal_throttle.begin(Some(email.as_str()).filter(|e| !e.is_empty()), address).map_err(|t| {
            ApiError::TooManyRequests {
                message: format!("too many failed sign-ins; try again in {} seconds", t.retry_after_secs()),
                retry_after_secs: t.retry_after_secs(),
            }
        })?;
    let found = if email.is_empty() { None } else { store::portal::login_lookup(&state.store, email).await? };
    let hash = found.as_ref().and_then(|(_, h)| h.clone()).unwrap_or_else(dummy_hash);
    let password = body.password;
    let ok = web::block(move || verify_password(&password, &hash)).await.map_err(ApiError::internal)?;
    let customer = match found {
        Some((c, Some(_))) if ok => {
            state.portal_throttle.succeeded(attempt);
            c
        }
        _ => {
            state.portal_throttle.failed(attempt);
            return Err(ApiError::Unauthorized {
                code: "invalid_credentials",
                message: "wrong email or password".into(),
            });
        }
    };
    let (cookie, me) = sign_in(&state, customer.id).await?;
    Ok(HttpResponse::Ok().cookie(cookie).json(me))
}

/// Sign out of the portal: ends this session and clears the cookie.
#[utoipa::path(post, operation_id = "portal_logout", path = "/portal/api/logout", tag = "portal", security(("customer_session" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn logout(state: State, c: CustomerPrincipal) -> ApiResult<HttpResponse> {
    store::portal::delete_session(&state.store, c.token_hash).await?;
    Ok(HttpResponse::NoContent().cookie(removal_cookie()).finish())
}

/// The signed-in customer and the session's CSRF token.
#[utoipa::path(get, operation_id = "portal_me", path = "/portal/api/me", tag = "portal", security(("customer_session" = [])),
    responses((status = 200, body = PortalMe), (status = 401, body = ErrorBody)))]
pub async fn me(state: State, c: CustomerPrincipal) -> ApiResult<web::Json<PortalMe>> {
    Ok(web::Json(me_view(&state, c.customer_id, c.csrf_token).await?))
}

/// "Forgot password" (CU-1, EM-8): when a customer has this address, a single-use link to set a password
/// (`{public_url}/portal/reset/{token}`, 1 hour) is mailed to it through the outbox (`email.customer_password`).
/// The answer is the same for unknown addresses, so accounts cannot be discovered.
#[utoipa::path(post, operation_id = "portal_forgot_password", path = "/portal/api/password/forgot", tag = "portal", request_body = PortalForgotRequest, security(),
    responses((status = 202, body = PortalForgotAnswer), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn forgot(
    state: State,
    req: HttpRequest,
    body: crate::http::body::Body<PortalForgotRequest>,
) -> ApiResult<HttpResponse> {
    let email = normalize_email(&body.email).ok_or_else(|| ApiError::field("email", "is not a valid email address"))?;
    // Counted like a failed sign-in: a flood of reset mails to one address (or from one client) is throttled.
    let address = req.peer_addr().map(|a| a.ip());
    let attempt =
        state.portal_throttle.begin(Some(email.as_str()), address).map_err(|t| ApiError::TooManyRequests {
            message: format!("too many requests; try again in {} seconds", t.retry_after_secs()),
            retry_after_secs: t.retry_after_secs(),
        })?;
    state.portal_throttle.failed(attempt);
    let channel = store::portal::web_channel(&state.store).await?;
    let token = random_secret();
    let hash = secret_hash(&token);
    store::portal::request_reset(&state.store, email, token, hash, channel.id).await?;
    Ok(HttpResponse::Accepted().json(PortalForgotAnswer {
        message: "If an account uses this address, a link to set a password is on its way.".into(),
    }))
}

/// Set a password with the mailed token (single use, 1 hour) and sign in.
#[utoipa::path(post, operation_id = "portal_reset_password", path = "/portal/api/password/reset", tag = "portal", request_body = PortalResetRequest, security(),
    responses((status = 200, body = PortalMe), (status = 400, body = ErrorBody)))]
pub async fn reset(state: State, body: crate::http::body::Body<PortalResetRequest>) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    if body.token.is_empty() || body.token.len() > 200 {
        return Err(ApiError::BadRequest { code: "invalid_token", message: "this link is not valid".into() });
    }
    let hash = hash_password(body.password).await?;
    use store::portal::ResetRefusal as R;
    let customer = match store::portal::reset_password(&state.store, secret_hash(&body.token), hash).await? {
        Ok(c) => c,
        Err(R::Unknown) => {
            return Err(ApiError::BadRequest { code: "invalid_token", message: "this link is not valid".into() });
        }
        Err(R::Expired) => {
            return Err(ApiError::BadRequest {
                code: "token_expired",
                message: "this link has expired; ask for a new one".into(),
            });
        }
        Err(R::Used) => {
            return Err(ApiError::BadRequest {
                code: "token_used",
                message: "this link was already used; ask for a new one".into(),
            });
        }
    };
    let (cookie, me) = sign_in(&state, customer.id).await?;
    Ok(HttpResponse::Ok().cookie(cookie).json(me))
}

// ----- tickets -----

/// The customer's own tickets, newest first.
#[utoipa::path(get, operation_id = "portal_tickets", path = "/portal/api/tickets", tag = "portal", security(("customer_session" = [])),
    responses((status = 200, body = [PortalTicket]), (status = 401, body = ErrorBody)))]
pub async fn tickets(state: State, c: CustomerPrincipal) -> ApiResult<web::Json<Vec<PortalTicket>>> {
    let rows = store::portal::tickets(&state.store, c.customer_id, MAX_TICKETS).await?;
    Ok(web::Json(rows.into_iter().map(ticket_view).collect()))
}

/// One of the customer's tickets.
#[utoipa::path(get, operation_id = "portal_ticket", path = "/portal/api/tickets/{id}", tag = "portal", security(("customer_session" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = PortalTicket), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn ticket(state: State, c: CustomerPrincipal, id: web::Path<i64>) -> ApiResult<web::Json<PortalTicket>> {
    let t = store::portal::ticket(&state.store, c.customer_id, *id).await.map_err(not_found)?;
    Ok(web::Json(ticket_view(t)))
}

/// The public messages of one of the customer's tickets, oldest first (never internal notes).
#[utoipa::path(get, operation_id = "portal_messages", path = "/portal/api/tickets/{id}/messages", tag = "portal", security(("customer_session" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = [PortalMessage]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn messages(
    state: State,
    c: CustomerPrincipal,
    id: web::Path<i64>,
) -> ApiResult<web::Json<Vec<PortalMessage>>> {
    let rows = store::portal::public_messages(&state.store, c.customer_id, *id).await.map_err(not_found)?;
    Ok(web::Json(rows.into_iter().map(|(m, files, agent)| message_view(m, files, agent, &c.name)).collect()))
}

/// Open a ticket (CU-2): on the web channel, routed and assigned like every new conversation; agents see it live.
#[utoipa::path(post, operation_id = "portal_open_ticket", path = "/portal/api/tickets", tag = "portal", security(("customer_session" = [])), request_body = PortalNewTicketRequest,
    responses((status = 201, body = PortalPosted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn open(
    state: State,
    c: CustomerPrincipal,
    body: crate::http::body::Body<PortalNewTicketRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let subject = text("subject", &body.subject, MAX_SUBJECT)?;
    let content = text("content", &body.content, MAX_CONTENT)?;
    let attachment_ids = attachment_ids(&body.attachment_ids)?;
    let created = state
        .changes
        .portal_ticket(NewTicket {
            customer_id: c.customer_id,
            subject: subject.trim().to_owned(),
            content,
            attachment_ids,
        })
        .await?;
    let id = created.conversation.id;
    let t = store::portal::ticket(&state.store, c.customer_id, id).await?;
    let message = store::portal::public_messages(&state.store, c.customer_id, id)
        .await?
        .into_iter()
        .next()
        .map(|(m, files, agent)| message_view(m, files, agent, &c.name))
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the new ticket has no message")))?;
    Ok(HttpResponse::Created().json(PortalPosted { ticket: ticket_view(t), message }))
}

/// Reply to one of the customer's tickets, with files uploaded first. A reply to a closed ticket starts a new one
/// (CORE-7); the answer names the ticket it is in.
#[utoipa::path(post, operation_id = "portal_reply", path = "/portal/api/tickets/{id}/messages", tag = "portal", security(("customer_session" = [])), params(("id" = i64, Path)), request_body = PortalReplyRequest,
    responses((status = 201, body = PortalPosted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reply(
    state: State,
    c: CustomerPrincipal,
    id: web::Path<i64>,
    body: crate::http::body::Body<PortalReplyRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let t = store::portal::ticket(&state.store, c.customer_id, *id).await.map_err(not_found)?;
    let content = text("content", &body.content, MAX_CONTENT)?;
    let ids = attachment_ids(&body.attachment_ids)?;
    let files = store::portal::pending_uploads(&state.store, c.customer_id, ids.clone()).await?;
    let conv = &t.row.conversation;
    let msg = CustomerMessage {
        attachments: files,
        // Used when the ticket was closed and the reply starts a new one (CORE-7).
        subject: conv.subject.clone(),
        ..CustomerMessage::text(
            conv.channel_instance_id,
            Target::Conversation { id: conv.id, customer_id: c.customer_id },
            content,
            None,
        )
    };
    let out = state.changes.customer_message(msg, Some(conv.id)).await?;
    if !ids.is_empty() {
        store::portal::drop_uploads(&state.store, c.customer_id, ids).await?;
    }
    let landed = out.conversation.id;
    let t = store::portal::ticket(&state.store, c.customer_id, landed).await?;
    let message = store::portal::public_messages(&state.store, c.customer_id, landed)
        .await?
        .into_iter()
        .find(|(m, _, _)| m.id == out.message.id)
        .map(|(m, files, agent)| message_view(m, files, agent, &c.name))
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the reply is not in its ticket")))?;
    Ok(HttpResponse::Created().json(PortalPosted { ticket: ticket_view(t), message }))
}

/// Close one of the customer's tickets (CU-2). Closing a closed ticket changes nothing.
#[utoipa::path(post, operation_id = "portal_close", path = "/portal/api/tickets/{id}/close", tag = "portal", security(("customer_session" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = PortalTicket), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn close(state: State, c: CustomerPrincipal, id: web::Path<i64>) -> ApiResult<web::Json<PortalTicket>> {
    let t = store::portal::ticket(&state.store, c.customer_id, *id).await.map_err(not_found)?;
    if t.base != StatusBase::Closed {
        let patch = store::conversations::ConversationPatch {
            status: Some(StatusBase::Closed.as_str().to_owned()),
            ..Default::default()
        };
        state
            .changes
            .update(*id, patch, &crate::domain::ChannelScope::All, store::audit::Actor::Customer(c.customer_id))
            .await?;
    }
    let t = store::portal::ticket(&state.store, c.customer_id, *id).await.map_err(not_found)?;
    Ok(web::Json(ticket_view(t)))
}

/// Rate one of the customer's tickets (HD-12): Good / Average / Bad. One rating per ticket: rating again replaces
/// it (for 7 days after the first; later 422), never counts twice.
#[utoipa::path(post, operation_id = "portal_rate", path = "/portal/api/tickets/{id}/rating", tag = "portal", security(("customer_session" = [])), params(("id" = i64, Path)), request_body = PortalRateRequest,
    responses((status = 200, body = PortalTicket), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rate(
    state: State,
    c: CustomerPrincipal,
    id: web::Path<i64>,
    body: crate::http::body::Body<PortalRateRequest>,
) -> ApiResult<web::Json<PortalTicket>> {
    let rating: Rating = body.rating.parse().map_err(|_| ApiError::field("rating", "must be good, average or bad"))?;
    store::portal::ticket(&state.store, c.customer_id, *id).await.map_err(not_found)?;
    state.changes.rate(*id, c.customer_id, rating).await.map_err(not_found)?;
    let t = store::portal::ticket(&state.store, c.customer_id, *id).await.map_err(not_found)?;
    Ok(web::Json(ticket_view(t)))
}

/// Upload a file to send with a reply or a new ticket: the raw bytes as the body, its type in `Content-Type`, its
/// name in `?file_name=` (like `POST /api/v1/attachments`). Only this customer can name it.
#[utoipa::path(post, operation_id = "portal_upload", path = "/portal/api/attachments", tag = "portal", security(("customer_session" = [])), params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = PortalAttachment), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn upload(
    state: State,
    c: CustomerPrincipal,
    req: HttpRequest,
    q: web::Query<UploadQuery>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let file = super::attachments::receive(&state, &req, &q, payload).await?;
    let a = store::attachments::insert_from_customer(
        &state.store,
        c.customer_id,
        store::attachments::NewAttachment {
            uploaded_by: None,
            file_name: file.file_name,
            mime_type: file.mime_type,
            size_bytes: file.size_bytes,
            sha256: file.sha256,
            storage_key: file.storage_key,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(attachment_view(a)))
}

/// Download a file of one of the customer's public messages (or their own upload).
#[utoipa::path(get, operation_id = "portal_download", path = "/portal/api/attachments/{id}", tag = "portal", security(("customer_session" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "the file", content_type = "*/*", body = Vec<u8>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn download(state: State, c: CustomerPrincipal, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    let a = store::portal::attachment(&state.store, c.customer_id, *id)
        .await
        .map_err(|e| super::not_found_as(e, "attachment"))?;
    let bytes = state.blobs.get(&a.storage_key).await.map_err(ApiError::internal)?;
    let inline = super::attachments::opens_inline(&a.mime_type);
    Ok(super::file_download(bytes, &a.mime_type, inline, a.file_name))
}

/// Anything else under `/portal/api`.
pub async fn api_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such portal endpoint".into()))
}

// ----- signed links (pages) -----

/// A small page for people who followed a link from a mail.
fn page(status: actix_web::http::StatusCode, title: &str, text: &str) -> HttpResponse {
    let esc = crate::domain::html::escape;
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{t}</title></head><body><main><h1>{t}</h1><p>{x}</p>\
         <p><a href=\"/portal\">Go to your tickets</a></p></main></body></html>",
        t = esc(title),
        x = esc(text)
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(body)
}

fn refused(e: LinkError) -> HttpResponse {
    use actix_web::http::StatusCode;
    match e {
        LinkError::Expired => page(
            StatusCode::GONE,
            "This link has expired",
            "Links in our mail work for a limited time. Sign in to the portal to see your tickets.",
        ),
        LinkError::Invalid => page(
            StatusCode::BAD_REQUEST,
            "This link is not valid",
            "The link may be incomplete or altered. Copy the whole link from the mail, or sign in to the portal.",
        ),
    }
}

/// An auto-login link (NT-10): signs in the customer it names (never an agent: it names a customer id) and opens
/// the ticket in the portal. Expired → 410 page; altered or for no customer → 400 page.
#[utoipa::path(get, operation_id = "portal_auto_login", path = "/portal/auto-login/{token}", tag = "portal", params(("token" = String, Path)), security(),
    responses((status = 303, description = "signed in; to the ticket in the portal"), (status = 400, description = "the link is not valid (an HTML page), or the path is malformed (JSON)", content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 410, description = "the link expired", content_type = "text/html", body = String)))]
pub async fn auto_login(state: State, token: web::Path<String>) -> ApiResult<HttpResponse> {
    let v = match state.links.verify(&token) {
        Ok(v) => v,
        Err(e) => return Ok(refused(e)),
    };
    let Link::AutoLogin { customer_id, conversation_id } = v.link else {
        return Ok(refused(LinkError::Invalid));
    };
    if !store::portal::active_customer(&state.store, customer_id).await? {
        return Ok(refused(LinkError::Invalid));
    }
    let (cookie, _) = sign_in(&state, customer_id).await?;
    let to = match store::portal::ticket(&state.store, customer_id, conversation_id).await {
        Ok(_) => format!("/portal/tickets/{conversation_id}"),
        Err(StoreError::NotFound) => "/portal".to_owned(),
        Err(e) => return Err(e.into()),
    };
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .finish())
}

/// A rating link (HD-12): records the rating and thanks. Changing it later replaces it (7 days).
#[utoipa::path(get, operation_id = "portal_rate_link", path = "/portal/rate/{token}", tag = "portal", params(("token" = String, Path)), security(),
    responses((status = 200, description = "recorded; a thank-you page", content_type = "text/html", body = String),
        (status = 400, description = "the link is not valid (an HTML page), or the path is malformed (JSON)", content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 409, description = "the rating can no longer be changed", content_type = "text/html", body = String),
        (status = 410, description = "the link expired", content_type = "text/html", body = String)))]
pub async fn rate_link(state: State, token: web::Path<String>) -> ApiResult<HttpResponse> {
    use actix_web::http::StatusCode;
    let v = match state.links.verify(&token) {
        Ok(v) => v,
        Err(e) => return Ok(refused(e)),
    };
    let Link::Rate { conversation_id, customer_id, rating } = v.link else {
        return Ok(refused(LinkError::Invalid));
    };
    if store::portal::ticket(&state.store, customer_id, conversation_id).await.is_err() {
        return Ok(refused(LinkError::Invalid));
    }
    match state.changes.rate(conversation_id, customer_id, rating).await {
        Ok(_) => {}
        Err(StoreError::Rule(store::Violation::RatingLocked)) => {
            return Ok(page(
                StatusCode::CONFLICT,
                "Your rating is already recorded",
                "A rating can be changed for 7 days after it was given.",
            ));
        }
        Err(StoreError::NotFound) => return Ok(refused(LinkError::Invalid)),
        Err(e) => return Err(e.into()),
    }
    let said = match rating {
        Rating::Good => "Good",
        Rating::Average => "Average",
        Rating::Bad => "Bad",
    };
    Ok(page(
        StatusCode::OK,
        "Thank you for your feedback",
        &format!("We recorded your rating: {said}. You can change it with another link from the same mail."),
    ))
}

/// An unsubscribe link: removes the address from the ticket's subscribers and confirms.
#[utoipa::path(get, operation_id = "portal_unsubscribe_link", path = "/portal/unsubscribe/{token}", tag = "portal", params(("token" = String, Path)), security(),
    responses((status = 200, description = "unsubscribed (or already not subscribed)", content_type = "text/html", body = String),
        (status = 400, description = "the link is not valid (an HTML page), or the path is malformed (JSON)", content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 410, description = "the link expired", content_type = "text/html", body = String)))]
pub async fn unsubscribe_link(state: State, token: web::Path<String>) -> ApiResult<HttpResponse> {
    use actix_web::http::StatusCode;
    let v = match state.links.verify(&token) {
        Ok(v) => v,
        Err(e) => return Ok(refused(e)),
    };
    let Link::Unsubscribe { conversation_id, email } = v.link else {
        return Ok(refused(LinkError::Invalid));
    };
    match store::portal::unsubscribe(&state.store, conversation_id, email.clone()).await {
        Ok(_) => Ok(page(
            StatusCode::OK,
            "You are unsubscribed",
            &format!("{email} will no longer receive updates about this ticket."),
        )),
        Err(StoreError::NotFound) => Ok(refused(LinkError::Invalid)),
        Err(e) => Err(e.into()),
    }
}
