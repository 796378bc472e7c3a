//! Mailboxes (EM-1…EM-11, EO-2): admin CRUD at `/api/v1/email-channels`, "check now", the
//! connection health an admin needs after EM-5 disabled one, and the log of mail that made no
//! ticket (EM-8, EM-12). Passwords are write-only: answers say whether one is set.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{actor, name_field};
use crate::auth::Principal;
use crate::channels::email::net::{Protocol, TlsMode};
use crate::channels::email::settings::{AfterImportSetting, DEFAULT_POLL_S, EmailSettings, SmtpConfig};
use crate::domain::{ChannelKind, ChannelScope, Mode};
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::session::{Admin, SuperAdmin};
use crate::store::models::ChannelInstance;
use crate::store::{self, StoreError};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEmailChannel {
    pub name: String,
    /// `imap` or `pop3`.
    #[schema(value_type = String)]
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    /// `implicit`, `starttls` or `none`.
    #[schema(value_type = String)]
    pub tls: TlsMode,
    /// Accept a self-signed certificate (never by default).
    #[serde(default)]
    pub tls_insecure: bool,
    pub username: String,
    pub password: String,
    pub folder: Option<String>,
    /// Seconds between checks when the server has no IMAP IDLE (5–300; EM-4 suggests 60–300).
    pub poll_interval_s: Option<u64>,
    /// `delete` or `mark_read` (default: IMAP marks read, POP3 deletes).
    #[schema(value_type = Option<String>)]
    pub after_import: Option<AfterImportSetting>,
    /// The address this mailbox receives at (default: the SMTP From address).
    pub address: Option<String>,
    /// EM-8 (default true).
    pub accept_unknown_senders: Option<bool>,
    /// EM-10 (default true).
    pub subscribe_recipients: Option<bool>,
    /// EM-11 (default true).
    pub extract_forwarded_sender: Option<bool>,
    /// EM-9: the team (category) of new tickets.
    pub default_team_id: Option<i64>,
    pub enabled: Option<bool>,
    pub smtp: SmtpConfig,
}

/// Every field optional; `smtp` fields too (a missing password keeps the stored one).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEmailChannel {
    pub name: Option<String>,
    #[schema(value_type = Option<String>)]
    pub protocol: Option<Protocol>,
    pub host: Option<String>,
    pub port: Option<u16>,
    #[schema(value_type = Option<String>)]
    pub tls: Option<TlsMode>,
    pub tls_insecure: Option<bool>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub folder: Option<String>,
    pub poll_interval_s: Option<u64>,
    #[schema(value_type = Option<String>)]
    pub after_import: Option<AfterImportSetting>,
    pub address: Option<String>,
    pub accept_unknown_senders: Option<bool>,
    pub subscribe_recipients: Option<bool>,
    pub extract_forwarded_sender: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub default_team_id: Option<Option<i64>>,
    /// `true` re-enables a mailbox EM-5 disabled, and forgets its failures.
    pub enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub smtp: Option<serde_json::Map<String, serde_json::Value>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SmtpView {
    pub host: String,
    pub port: u16,
    pub tls: String,
    pub tls_insecure: bool,
    pub username: Option<String>,
    pub password_set: bool,
    pub from_address: String,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub use_from_name_for_all: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxHealth {
    /// A connector for it runs on the node that answered this request.
    pub running: bool,
    /// The node that polls it (its id, as in its logs) while that node's lease lasts; null when none does (issue #14).
    pub polled_by: Option<String>,
    pub consecutive_failures: i64,
    pub last_error: Option<String>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// Mails stored as tickets or messages.
    pub imported_total: i64,
    /// Mails in the mailbox's log (junk, rejected, unparseable: `GET …/log`).
    pub logged_total: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmailChannelView {
    pub id: i64,
    pub name: String,
    pub protocol: String,
    pub host: String,
    pub port: u16,
    pub tls: String,
    pub tls_insecure: bool,
    pub username: String,
    pub password_set: bool,
    pub folder: String,
    pub poll_interval_s: u64,
    pub after_import: String,
    pub address: Option<String>,
    pub accept_unknown_senders: bool,
    pub subscribe_recipients: bool,
    pub extract_forwarded_sender: bool,
    pub default_team_id: Option<i64>,
    pub enabled: bool,
    /// Why it is disabled (EM-5: the last connection error).
    pub disabled_reason: Option<String>,
    pub smtp: SmtpView,
    pub health: MailboxHealth,
    pub created_at: DateTime<Utc>,
}

fn code<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

async fn view(state: &State, c: ChannelInstance) -> ApiResult<EmailChannelView> {
    let s = EmailSettings::of(&c.settings).unwrap_or_else(EmailSettings::unset);
    let (h, logged_total) = store::email::mailbox_state(&state.store, c.id).await?;
    let after = match s.after_import() {
        crate::channels::email::net::AfterImport::Delete => "delete",
        crate::channels::email::net::AfterImport::MarkRead => "mark_read",
    };
    Ok(EmailChannelView {
        id: c.id,
        name: c.name,
        protocol: code(&s.protocol),
        host: s.host.clone(),
        port: s.port,
        tls: code(&s.tls),
        tls_insecure: s.tls_insecure,
        username: s.username.clone(),
        password_set: !s.password.is_empty(),
        folder: s.folder.clone(),
        poll_interval_s: s.poll_interval_s,
        after_import: after.into(),
        address: s.address.clone(),
        accept_unknown_senders: s.accept_unknown_senders,
        subscribe_recipients: s.subscribe_recipients,
        extract_forwarded_sender: s.extract_forwarded_sender,
        default_team_id: c.default_team_id,
        enabled: c.enabled,
        disabled_reason: c.disabled_reason,
        smtp: SmtpView {
            host: s.smtp.host.clone(),
            port: s.smtp.port,
            tls: code(&s.smtp.tls),
            tls_insecure: s.smtp.tls_insecure,
            username: s.smtp.username.clone(),
            password_set: s.smtp.password.as_deref().is_some_and(|p| !p.is_empty()),
            from_address: s.smtp.from_address.clone(),
            from_name: s.smtp.from_name.clone(),
            reply_to: s.smtp.reply_to.clone(),
            use_from_name_for_all: s.smtp.use_from_name_for_all,
        },
        health: MailboxHealth {
            running: state.mailboxes.is_running(c.id),
            polled_by: state.mailboxes.polled_by(c.id).await?,
            consecutive_failures: h.consecutive_failures,
            last_error: h.last_error,
            last_checked_at: h.last_checked_at.map(|t| t.and_utc()),
            last_success_at: h.last_success_at.map(|t| t.and_utc()),
            imported_total: h.imported_total,
            logged_total,
        },
        created_at: c.created_at.and_utc(),
    })
}

fn validate(s: &EmailSettings) -> ApiResult<()> {
    match s.problems().into_iter().next() {
        Some((field, problem)) => Err(ApiError::field(field, problem)),
        None => Ok(()),
    }
}

async fn team(state: &State, id: Option<i64>) -> ApiResult<Option<i64>> {
    if let Some(t) = id {
        store::teams::get(&state.store, t).await.map_err(|e| match e {
            StoreError::NotFound => ApiError::field("default_team_id", format!("team {t} does not exist")),
            other => other.into(),
        })?;
    }
    Ok(id)
}

async fn mailbox(state: &State, id: i64, scope: &ChannelScope) -> ApiResult<ChannelInstance> {
    let c = store::channels::get(&state.store, id, scope).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found("email channel"),
        other => other.into(),
    })?;
    if c.kind != ChannelKind::Email {
        return Err(ApiError::not_found("email channel"));
    }
    Ok(c)
}

/// Connect a mailbox (super admin, CC-11). Its connector starts at once when it is enabled.
#[utoipa::path(post, operation_id = "email_channels_create", path = "/api/v1/email-channels", tag = "email channels",
    request_body = CreateEmailChannel, responses((status = 201, body = EmailChannelView), (status = 400, body = crate::http::error::ErrorBody)))]
pub async fn create(
    state: State,
    SuperAdmin(p): SuperAdmin,
    body: crate::http::body::Body<CreateEmailChannel>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let name = name_field("name", &b.name, 100)?;
    let settings = EmailSettings {
        protocol: b.protocol,
        host: b.host.trim().to_owned(),
        port: b.port,
        tls: b.tls,
        tls_insecure: b.tls_insecure,
        username: b.username,
        password: b.password,
        folder: b.folder.unwrap_or_else(|| "INBOX".into()),
        poll_interval_s: b.poll_interval_s.unwrap_or(DEFAULT_POLL_S),
        after_import: b.after_import,
        address: b.address.map(|a| a.trim().to_lowercase()).filter(|a| !a.is_empty()),
        accept_unknown_senders: b.accept_unknown_senders.unwrap_or(true),
        subscribe_recipients: b.subscribe_recipients.unwrap_or(true),
        extract_forwarded_sender: b.extract_forwarded_sender.unwrap_or(true),
        smtp: b.smtp.normalized(),
    };
    validate(&settings)?;
    let default_team_id = team(&state, b.default_team_id).await?;
    let channel = store::channels::create(
        &state.store,
        store::channels::CreateChannel {
            kind: ChannelKind::Email,
            name,
            mode: Mode::Async,
            settings: serde_json::to_string(&settings).map_err(ApiError::internal)?,
            secret: None,
            enabled: b.enabled.unwrap_or(true),
            inactivity_timeout_s: 600,
            default_team_id,
        },
        actor(&p),
    )
    .await?;
    state.mailboxes.changed(channel.id).await;
    Ok(HttpResponse::Created().json(view(&state, channel).await?))
}

/// Mailboxes the caller may work in.
#[utoipa::path(get, operation_id = "email_channels_list", path = "/api/v1/email-channels", tag = "email channels",
    responses((status = 200, body = [EmailChannelView])))]
pub async fn list(state: State, p: Principal) -> ApiResult<web::Json<Vec<EmailChannelView>>> {
    let rows = store::channels::list(&state.store, &p.scope, Some(ChannelKind::Email)).await?;
    let mut out = Vec::with_capacity(rows.len());
    for c in rows {
        out.push(view(&state, c).await?);
    }
    Ok(web::Json(out))
}

#[utoipa::path(get, operation_id = "email_channels_get", path = "/api/v1/email-channels/{id}", tag = "email channels",
    params(("id" = i64, Path)), responses((status = 200, body = EmailChannelView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get(state: State, p: Principal, id: web::Path<i64>) -> ApiResult<web::Json<EmailChannelView>> {
    let c = mailbox(&state, *id, &p.scope).await?;
    Ok(web::Json(view(&state, c).await?))
}

/// Change a mailbox (super admin, CC-11); `"enabled": true` re-enables one EM-5 disabled. The connector restarts
/// with the new settings.
#[utoipa::path(patch, operation_id = "email_channels_update", path = "/api/v1/email-channels/{id}", tag = "email channels",
    params(("id" = i64, Path)), request_body = UpdateEmailChannel, responses((status = 200, body = EmailChannelView)))]
pub async fn update(
    state: State,
    SuperAdmin(p): SuperAdmin,
    id: web::Path<i64>,
    body: crate::http::body::Body<UpdateEmailChannel>,
) -> ApiResult<web::Json<EmailChannelView>> {
    let b = body.into_inner();
    let current = mailbox(&state, *id, &ChannelScope::All).await?;
    // A mailbox made through the generic channel API has no readable settings yet: start empty.
    let mut s = EmailSettings::of(&current.settings).unwrap_or_else(EmailSettings::unset);
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = b.$field.clone() { s.$field = v; } )* };
    }
    set!(protocol, host, port, tls, tls_insecure, username, password, folder, poll_interval_s);
    set!(accept_unknown_senders, subscribe_recipients, extract_forwarded_sender);
    if b.after_import.is_some() {
        s.after_import = b.after_import;
    }
    if let Some(a) = &b.address {
        s.address = Some(a.trim().to_lowercase()).filter(|a| !a.is_empty());
    }
    if let Some(patch) = &b.smtp {
        let mut merged = serde_json::to_value(&s.smtp).map_err(ApiError::internal)?;
        for (k, v) in patch {
            merged[k] = v.clone();
        }
        s.smtp = serde_json::from_value::<SmtpConfig>(merged)
            .map_err(|e| ApiError::field("smtp", e.to_string()))?
            .normalized();
    }
    validate(&s)?;
    let default_team_id = match b.default_team_id {
        Some(t) => Some(team(&state, t).await?),
        None => None,
    };
    let name = match b.name.as_deref() {
        Some(n) => Some(name_field("name", n, 100)?),
        None => None,
    };
    let patch = store::channels::ChannelPatch {
        name,
        settings: Some(serde_json::to_string(&s).map_err(ApiError::internal)?),
        enabled: b.enabled,
        default_team_id,
        ..Default::default()
    };
    let c = store::channels::update(&state.store, *id, patch, actor(&p)).await?;
    if b.enabled == Some(true) {
        store::email::reset_failures(&state.store, c.id).await?;
    }
    state.mailboxes.changed(c.id).await;
    Ok(web::Json(view(&state, c).await?))
}

/// Delete a mailbox with its tickets (super admin, CC-11). Mail on the server is left alone.
#[utoipa::path(delete, operation_id = "email_channels_delete", path = "/api/v1/email-channels/{id}", tag = "email channels",
    params(("id" = i64, Path)), responses((status = 204)))]
pub async fn delete(state: State, SuperAdmin(p): SuperAdmin, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    mailbox(&state, *id, &ChannelScope::All).await?;
    store::channels::delete(&state.store, *id, actor(&p)).await?;
    state.mailboxes.changed(*id).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Check the mailbox now instead of at the next poll (admin). 409 when it is disabled.
#[utoipa::path(post, operation_id = "email_channels_check", path = "/api/v1/email-channels/{id}/check", tag = "email channels",
    params(("id" = i64, Path)), responses((status = 202), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn check(state: State, Admin(_p): Admin, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    let c = mailbox(&state, *id, &ChannelScope::All).await?;
    if !c.enabled {
        return Err(ApiError::Conflict(format!(
            "mailbox {} is disabled{}",
            c.id,
            c.disabled_reason.map(|r| format!(": {r}")).unwrap_or_default()
        )));
    }
    // Here, or on the node that polls it (a mailbox just enabled is checked as soon as its connector starts).
    state.mailboxes.check_now(c.id);
    Ok(HttpResponse::Accepted().json(json!({"checking": true})))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailLogView {
    pub id: i64,
    pub message_id: String,
    pub from_address: String,
    pub subject: String,
    /// `junk`, `rejected` or `unparseable`.
    pub outcome: String,
    pub reason: String,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
}

/// Mail this mailbox received that made no ticket, newest first (admin): bounces, autoreplies,
/// loops, rejected senders (EM-8, EM-12). Nothing is silently lost.
#[utoipa::path(get, operation_id = "email_channels_log", path = "/api/v1/email-channels/{id}/log", tag = "email channels",
    params(("id" = i64, Path)), responses((status = 200, body = [MailLogView])))]
pub async fn log(state: State, Admin(_p): Admin, id: web::Path<i64>) -> ApiResult<web::Json<Vec<MailLogView>>> {
    mailbox(&state, *id, &ChannelScope::All).await?;
    let rows = store::email::mail_log(&state.store, *id, 500).await?;
    Ok(web::Json(
        rows.into_iter()
            .map(|r| MailLogView {
                id: r.id,
                message_id: r.message_id_header,
                from_address: r.from_address,
                subject: r.subject,
                outcome: r.outcome,
                reason: r.reason,
                size_bytes: r.size_bytes,
                created_at: r.created_at.and_utc(),
            })
            .collect(),
    ))
}

/// The raw source of a mail in the mailbox's log (admin), as a `message/rfc822` download: what was filtered can
/// always be read and, if it was wrongly filtered, imported by hand.
#[utoipa::path(get, operation_id = "email_channels_log_source", path = "/api/v1/email-channels/{id}/log/{log_id}/source",
    tag = "email channels", params(("id" = i64, Path), ("log_id" = i64, Path)),
    responses((status = 200, content_type = "message/rfc822", body = Vec<u8>), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn log_source(state: State, Admin(_p): Admin, path: web::Path<(i64, i64)>) -> ApiResult<HttpResponse> {
    let (id, log_id) = path.into_inner();
    mailbox(&state, id, &ChannelScope::All).await?;
    let source = store::email::logged_source(&state.store, id, log_id)
        .await?
        .ok_or_else(|| ApiError::not_found("logged mail"))?;
    let bytes = source.bytes(&state.blobs).await.map_err(ApiError::internal)?;
    Ok(super::raw_mail(bytes, format!("logged-{log_id}.eml")))
}
