//! Zalo Official Accounts (issue #16, ZL-1…ZL-3, CC-11): connect, read, edit, enable/disable and delete at
//! `/api/v1/zalo-channels`; the webhook Zalo posts events to (`POST /api/v1/zalo-channels/{id}/webhook`, signed,
//! no agent credentials); and the domain-verification file Zalo's console asks to find at the root of the public
//! URL (`GET /zalo_verifier{CODE}.html`).
//!
//! The app secret, the OA secret key and the tokens are sealed at rest and never returned or logged. Only a super
//! admin connects, edits or deletes (CC-11). `state` says whether the OA's tokens work (connected /
//! needs_attention, with the reason). The contract: `docs/zalo.md`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{actor, name_field};
use crate::auth::Principal;
use crate::channels::zalo::intake::IntakeError;
use crate::channels::zalo::protocol::{RETRY_HEADER, SIGNATURE_HEADER};
use crate::channels::zalo::{DEFAULT_API_BASE, DEFAULT_OAUTH_BASE, Settings, Verification};
use crate::domain::{ChannelKind, ChannelScope, ConnectionState, Mode};
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::session::SuperAdmin;
use crate::store::models::ChannelInstance;
use crate::store::zalo::NewTokens;
use crate::store::{self, StoreError};

/// Zalo's domain-verification file, as its console offers it (ZL-2).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainVerification {
    /// `zalo_verifier{CODE}.html` (letters, digits, `_` and `-` in the code).
    pub file_name: String,
    /// The file's content; empty or absent: a page with Zalo's `zalo-platform-site-verification` meta tag for the
    /// code (UNCONFIRMED that Zalo needs more than the tag).
    pub content: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateZaloChannel {
    pub name: String,
    /// The Zalo app's Application ID (ZL-1).
    pub app_id: String,
    /// The app's secret key (used to refresh tokens). Never returned.
    pub app_secret: String,
    /// The Official Account's secret key (Zalo signs webhooks with it). Never returned.
    pub oa_secret_key: String,
    /// The OA access token from Zalo's API Explorer. Never returned.
    pub access_token: String,
    /// The OA refresh token from Zalo's API Explorer (single use: the server keeps the newest). Never returned.
    pub refresh_token: String,
    /// Seconds the access token has left, when known (unknown: it is refreshed at once).
    pub access_token_expires_in: Option<i64>,
    /// Default `https://openapi.zalo.me`.
    pub api_base_url: Option<String>,
    /// Default `https://oauth.zaloapp.com`.
    pub oauth_base_url: Option<String>,
    pub domain_verification: Option<DomainVerification>,
    /// The help desk team (category) of the OA's new conversations.
    pub default_team_id: Option<i64>,
    /// Seconds without a message after which a chat ends (default 600; ZL-5).
    pub inactivity_timeout_s: Option<i64>,
    pub enabled: Option<bool>,
}

/// Every field optional; a secret or token absent (or empty) keeps the stored one. New tokens come in pairs.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateZaloChannel {
    pub name: Option<String>,
    pub app_id: Option<String>,
    pub app_secret: Option<String>,
    pub oa_secret_key: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub access_token_expires_in: Option<i64>,
    pub api_base_url: Option<String>,
    pub oauth_base_url: Option<String>,
    /// `null` removes the file.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<DomainVerification>)]
    pub domain_verification: Option<Option<DomainVerification>>,
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<i64>)]
    pub default_team_id: Option<Option<i64>>,
    pub inactivity_timeout_s: Option<i64>,
    pub enabled: Option<bool>,
}

/// Where Zalo's domain verification finds its file.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationView {
    pub file_name: String,
    /// `{SWITCHBOARD_PUBLIC_URL}/{file_name}`.
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ZaloChannelView {
    pub id: i64,
    pub name: String,
    pub app_id: String,
    pub api_base_url: String,
    pub oauth_base_url: String,
    /// What to paste into Zalo's console as the webhook URL (ZL-2):
    /// `{SWITCHBOARD_PUBLIC_URL}/api/v1/zalo-channels/{id}/webhook`.
    pub webhook_url: String,
    pub domain_verification: Option<VerificationView>,
    pub default_team_id: Option<i64>,
    pub enabled: bool,
    /// `connected` or `needs_attention` (Zalo refused the refresh token: give new tokens).
    pub state: String,
    pub state_reason: Option<String>,
    pub state_since: Option<DateTime<Utc>>,
    /// When the stored access token expires (null: not known yet; it is refreshed an hour before).
    pub access_token_expires_at: Option<DateTime<Utc>>,
    /// Webhook events stored and not yet processed.
    pub events_pending: i64,
    /// The OA's job (events, tokens) runs on the node that answered this request.
    pub running: bool,
    /// The node that runs it while its lease lasts; null when none does.
    pub processed_by: Option<String>,
    pub inactivity_timeout_s: i64,
    pub created_at: DateTime<Utc>,
}

async fn view(state: &State, c: ChannelInstance) -> ApiResult<ZaloChannelView> {
    let s = Settings::of(&c.settings).unwrap_or_default();
    let tokens = store::zalo::tokens(&state.store, c.id).await?;
    let public = state.settings.public_url.trim_end_matches('/').to_owned();
    let (conn, reason, since, expires) = match tokens {
        Some(t) => (t.state, t.reason, Some(t.state_since.and_utc()), t.expires_at.map(|e| e.and_utc())),
        None => (ConnectionState::NeedsAttention, Some("no Official Account connected".to_owned()), None, None),
    };
    Ok(ZaloChannelView {
        id: c.id,
        name: c.name,
        app_id: s.app_id,
        api_base_url: s.api_base_url,
        oauth_base_url: s.oauth_base_url,
        webhook_url: format!("{public}/api/v1/zalo-channels/{}/webhook", c.id),
        domain_verification: s
            .verification
            .map(|v| VerificationView { url: format!("{public}/{}", v.file_name), file_name: v.file_name }),
        default_team_id: c.default_team_id,
        enabled: c.enabled,
        state: conn.as_str().into(),
        state_reason: reason,
        state_since: since,
        access_token_expires_at: expires,
        events_pending: state.zalo.pending(c.id).await?,
        running: state.zalo.is_running(c.id),
        processed_by: state.zalo.holder_of(c.id).await?,
        inactivity_timeout_s: c.inactivity_timeout_s,
        created_at: c.created_at.and_utc(),
    })
}

/// `http(s)://host[:port][/path]`, no credentials, query or fragment; stored without a trailing slash.
fn base_url(field: &str, raw: &str) -> ApiResult<String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| ApiError::field(field, format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiError::field(field, "must be an http:// or https:// URL"));
    }
    if crate::outbound::http_client::has_credentials(&url) || url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::field(field, "must not carry a user name, password, query or fragment"));
    }
    if raw.len() > 2000 {
        return Err(ApiError::field(field, "must be at most 2000 characters"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Refuse a base URL the outgoing-connection policy would refuse (an internal address not allowed by
/// `SWITCHBOARD_ALLOWED_INTERNAL_HOSTS`): nothing could ever be sent there. A name that does not resolve now is taken
/// (it may later); it is judged again at every connection.
async fn reachable(state: &State, field: &str, url: &str) -> ApiResult<()> {
    let Ok(parsed) = url::Url::parse(url) else { return Ok(()) };
    let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else { return Ok(()) };
    let policy = crate::outbound::Policy::new(state.settings.allowed_internal.clone());
    match policy.resolve(host, port).await {
        Err(e @ crate::outbound::OutboundError::Refused { .. }) => {
            Err(ApiError::Unprocessable { code: "zalo_url_refused", message: format!("{field}: {e}") })
        }
        _ => Ok(()),
    }
}

/// A key or token: 1–4000 visible ASCII characters.
fn secret(field: &str, raw: &str) -> ApiResult<String> {
    let t = raw.trim();
    if t.is_empty() || t.len() > 4000 || !t.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::field(field, "must be 1–4000 visible characters (copy it whole from Zalo's console)"));
    }
    Ok(t.to_owned())
}

fn app_id(raw: &str) -> ApiResult<String> {
    let t = raw.trim();
    if t.is_empty() || t.len() > 64 || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(ApiError::field("app_id", "must be the Zalo app's Application ID"));
    }
    Ok(t.to_owned())
}

fn timeout(t: Option<i64>) -> ApiResult<Option<i64>> {
    match t {
        Some(t) if !(1..=7 * 24 * 3600).contains(&t) => {
            Err(ApiError::field("inactivity_timeout_s", "must be between 1 and 604800"))
        }
        other => Ok(other),
    }
}

fn expiry(seconds: Option<i64>) -> ApiResult<Option<chrono::NaiveDateTime>> {
    match seconds {
        Some(s) if !(0..=400 * 24 * 3600).contains(&s) => {
            Err(ApiError::field("access_token_expires_in", "must be between 0 and 34560000 seconds"))
        }
        Some(s) => Ok(Some(store::now() + chrono::Duration::seconds(s))),
        None => Ok(None),
    }
}

/// The verification file's name: `zalo_verifier{CODE}.html`.
pub fn is_verifier_name(name: &str) -> bool {
    name.strip_prefix("zalo_verifier").and_then(|r| r.strip_suffix(".html")).is_some_and(|code| {
        !code.is_empty() && code.len() <= 100 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

fn verification(v: DomainVerification) -> ApiResult<Verification> {
    let file_name = v.file_name.trim().to_owned();
    if !is_verifier_name(&file_name) {
        return Err(ApiError::field("domain_verification.file_name", "must be zalo_verifier{CODE}.html"));
    }
    let content = match v.content.filter(|c| !c.trim().is_empty()) {
        Some(c) if c.len() > 64 * 1024 => {
            return Err(ApiError::field("domain_verification.content", "must be at most 65536 bytes"));
        }
        Some(c) => c,
        None => {
            let code = &file_name["zalo_verifier".len()..file_name.len() - ".html".len()];
            format!(
                "<html>\n<head>\n<meta property=\"zalo-platform-site-verification\" content=\"{code}\" />\n</head>\n\
                 <body>\nThere Is No Limit To What You Can Accomplish Using Zalo!\n</body>\n</html>\n"
            )
        }
    };
    Ok(Verification { file_name, content })
}

async fn team(state: &State, id: Option<i64>) -> ApiResult<Option<i64>> {
    if let Some(t) = id {
        store::teams::get(&state.store, t).await.map_err(|e| match e {
            StoreError::NotFound => {
                ApiError::Unprocessable { code: "unknown_reference", message: format!("team {t} does not exist") }
            }
            other => other.into(),
        })?;
    }
    Ok(id)
}

async fn oa(state: &State, id: i64, scope: &ChannelScope) -> ApiResult<ChannelInstance> {
    match store::channels::get(&state.store, id, scope).await {
        Ok(c) if c.kind == ChannelKind::Zalo => Ok(c),
        Ok(_) | Err(StoreError::NotFound) => Err(ApiError::not_found("Zalo channel")),
        Err(other) => Err(other.into()),
    }
}

/// Connect a Zalo Official Account (super admin, CC-11; ZL-1, ZL-2). The answer carries the `webhook_url` to paste
/// into Zalo's console. Its job (events, token refresh) starts at once.
#[utoipa::path(post, operation_id = "zalo_channels_create", path = "/api/v1/zalo-channels", tag = "zalo channels",
    request_body = CreateZaloChannel, responses((status = 201, body = ZaloChannelView), (status = 400, body = crate::http::error::ErrorBody)))]
pub async fn create(
    state: State,
    SuperAdmin(p): SuperAdmin,
    body: crate::http::body::Body<CreateZaloChannel>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let name = name_field("name", &b.name, 100)?;
    let settings = Settings {
        app_id: app_id(&b.app_id)?,
        app_secret: secret("app_secret", &b.app_secret)?,
        oa_secret_key: secret("oa_secret_key", &b.oa_secret_key)?,
        api_base_url: base_url("api_base_url", b.api_base_url.as_deref().unwrap_or(DEFAULT_API_BASE))?,
        oauth_base_url: base_url("oauth_base_url", b.oauth_base_url.as_deref().unwrap_or(DEFAULT_OAUTH_BASE))?,
        verification: b.domain_verification.map(verification).transpose()?,
        routing: store::channels::RoutingSettings {
            team_id: team(&state, b.default_team_id).await?,
            ..Default::default()
        },
    };
    let tokens = NewTokens {
        access_token: secret("access_token", &b.access_token)?,
        refresh_token: secret("refresh_token", &b.refresh_token)?,
        expires_at: expiry(b.access_token_expires_in)?,
    };
    let inactivity = timeout(b.inactivity_timeout_s)?.unwrap_or(600);
    reachable(&state, "api_base_url", &settings.api_base_url).await?;
    reachable(&state, "oauth_base_url", &settings.oauth_base_url).await?;
    let channel = store::zalo::connect(
        &state.store,
        store::channels::CreateChannel {
            kind: ChannelKind::Zalo,
            name,
            mode: Mode::Sync,
            default_team_id: settings.routing.team_id,
            settings: serde_json::to_string(&settings).map_err(ApiError::internal)?,
            secret: None,
            enabled: b.enabled.unwrap_or(true),
            inactivity_timeout_s: inactivity,
        },
        tokens,
        actor(&p),
    )
    .await?;
    state.changes.channel_changed(channel.id);
    state.zalo.changed().await;
    Ok(HttpResponse::Created().json(view(&state, channel).await?))
}

/// The Zalo OAs the caller may work in. No secret, no token.
#[utoipa::path(get, operation_id = "zalo_channels_list", path = "/api/v1/zalo-channels", tag = "zalo channels",
    responses((status = 200, body = [ZaloChannelView])))]
pub async fn list(state: State, p: Principal) -> ApiResult<web::Json<Vec<ZaloChannelView>>> {
    let rows = store::channels::list(&state.store, &p.scope, Some(ChannelKind::Zalo)).await?;
    let mut out = Vec::with_capacity(rows.len());
    for c in rows {
        out.push(view(&state, c).await?);
    }
    Ok(web::Json(out))
}

#[utoipa::path(get, operation_id = "zalo_channels_get", path = "/api/v1/zalo-channels/{id}", tag = "zalo channels",
    params(("id" = i64, Path)), responses((status = 200, body = ZaloChannelView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get(state: State, p: Principal, id: web::Path<i64>) -> ApiResult<web::Json<ZaloChannelView>> {
    Ok(web::Json(view(&state, oa(&state, *id, &p.scope).await?).await?))
}

/// Edit, enable or disable an OA (super admin, CC-11). New tokens (both, from Zalo's API Explorer) replace the
/// stored ones and clear `needs_attention`.
#[utoipa::path(patch, operation_id = "zalo_channels_update", path = "/api/v1/zalo-channels/{id}", tag = "zalo channels",
    params(("id" = i64, Path)), request_body = UpdateZaloChannel, responses((status = 200, body = ZaloChannelView)))]
pub async fn update(
    state: State,
    SuperAdmin(p): SuperAdmin,
    id: web::Path<i64>,
    body: crate::http::body::Body<UpdateZaloChannel>,
) -> ApiResult<web::Json<ZaloChannelView>> {
    let b = body.into_inner();
    let current = oa(&state, *id, &ChannelScope::All).await?;
    let mut settings = Settings::of(&current.settings).unwrap_or_else(|| Settings {
        api_base_url: DEFAULT_API_BASE.into(),
        oauth_base_url: DEFAULT_OAUTH_BASE.into(),
        ..Default::default()
    });
    let given = |v: &Option<String>| v.as_deref().filter(|s| !s.trim().is_empty()).map(str::to_owned);
    let name = match b.name.as_deref() {
        Some(n) => Some(name_field("name", n, 100)?),
        None => None,
    };
    if let Some(a) = given(&b.app_id) {
        settings.app_id = app_id(&a)?;
    }
    if let Some(s) = given(&b.app_secret) {
        settings.app_secret = secret("app_secret", &s)?;
    }
    if let Some(s) = given(&b.oa_secret_key) {
        settings.oa_secret_key = secret("oa_secret_key", &s)?;
    }
    if let Some(u) = given(&b.api_base_url) {
        settings.api_base_url = base_url("api_base_url", &u)?;
        reachable(&state, "api_base_url", &settings.api_base_url).await?;
    }
    if let Some(u) = given(&b.oauth_base_url) {
        settings.oauth_base_url = base_url("oauth_base_url", &u)?;
        reachable(&state, "oauth_base_url", &settings.oauth_base_url).await?;
    }
    if let Some(v) = b.domain_verification {
        settings.verification = v.map(verification).transpose()?;
    }
    let tokens = match (given(&b.access_token), given(&b.refresh_token)) {
        (Some(a), Some(r)) => Some(NewTokens {
            access_token: secret("access_token", &a)?,
            refresh_token: secret("refresh_token", &r)?,
            expires_at: expiry(b.access_token_expires_in)?,
        }),
        (None, None) => None,
        _ => {
            return Err(ApiError::field(
                "refresh_token",
                "give the access token and the refresh token together (Zalo issues them as a pair)",
            ));
        }
    };
    if settings.app_id.is_empty() || settings.oa_secret_key.is_empty() || settings.app_secret.is_empty() {
        return Err(ApiError::field("app_id", "app_id, app_secret and oa_secret_key are needed to connect the OA"));
    }
    let default_team_id = match b.default_team_id {
        Some(t) => Some(team(&state, t).await?),
        None => None,
    };
    if let Some(t) = default_team_id {
        settings.routing.team_id = t;
    }
    let patch = store::channels::ChannelPatch {
        name,
        mode: None,
        settings: Some(serde_json::to_string(&settings).map_err(ApiError::internal)?),
        enabled: b.enabled,
        inactivity_timeout_s: timeout(b.inactivity_timeout_s)?,
        default_team_id,
        secret: None,
    };
    if let Some(t) = tokens {
        store::zalo::set_tokens(&state.store, *id, t).await?;
    }
    let c = store::channels::update(&state.store, *id, patch, actor(&p)).await?;
    state.changes.channel_changed(c.id);
    state.zalo.changed().await;
    Ok(web::Json(view(&state, c).await?))
}

/// Remove an OA, its conversations and its queued replies (super admin, CC-11). Its job stops.
#[utoipa::path(delete, operation_id = "zalo_channels_delete", path = "/api/v1/zalo-channels/{id}", tag = "zalo channels",
    params(("id" = i64, Path)), responses((status = 204)))]
pub async fn delete(state: State, SuperAdmin(p): SuperAdmin, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    oa(&state, *id, &ChannelScope::All).await?;
    store::channels::delete(&state.store, *id, actor(&p)).await?;
    state.changes.channel_changed(*id);
    state.zalo.changed().await;
    Ok(HttpResponse::NoContent().finish())
}

/// What the webhook answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// Stored (durably, before this answer).
    pub received: bool,
    /// The event had been stored before (a retry, header `num_retry`): nothing new.
    pub duplicate: bool,
}

/// Zalo's webhook (ZL-3): the body is an event signed in `X-ZEvent-Signature` (`mac=` + hex
/// `sha256(app_id + body + timestamp + oa_secret_key)`; `mac=` optional). A good signature: the event is stored and
/// answered 200 at once (processed after, in order per Zalo user); a retried event (same `msg_id`, header
/// `num_retry`) is answered 200 and stored once. A missing or bad signature, or a disabled channel or one without
/// an OA connected: 401, nothing stored. An id that is no Zalo channel: 404. No agent credentials.
#[utoipa::path(post, operation_id = "zalo_channels_webhook", path = "/api/v1/zalo-channels/{id}/webhook", tag = "zalo channels",
    params(("id" = i64, Path), ("X-ZEvent-Signature" = String, Header, description = "mac={hex}")),
    request_body(content = Object, description = "Zalo's event, as Zalo sends it"),
    security(),
    responses((status = 200, body = WebhookAnswer), (status = 401, body = crate::http::error::ErrorBody),
        (status = 503, body = crate::http::error::ErrorBody)))]
pub async fn webhook(state: State, id: web::Path<i64>, req: HttpRequest, body: web::Bytes) -> ApiResult<HttpResponse> {
    let signature = req.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let retry = req.headers().get(RETRY_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("0");
    match state.zalo.intake.receive(*id, signature, &body).await {
        Ok(new) => {
            if !new {
                tracing::debug!(channel_id = *id, num_retry = retry, "Zalo event received again");
            }
            Ok(HttpResponse::Ok().json(WebhookAnswer { received: true, duplicate: !new }))
        }
        Err(IntakeError::UnknownChannel) => Err(ApiError::not_found("Zalo channel")),
        Err(IntakeError::Unauthorized(why)) => {
            Err(ApiError::Unauthorized { code: "invalid_signature", message: why.to_owned() })
        }
        Err(IntakeError::BadEvent(why)) => Err(ApiError::validation(why)),
        Err(IntakeError::Busy) => Err(ApiError::Unavailable("busy".into())),
        Err(IntakeError::Store(e)) => Err(e.into()),
    }
}

/// Zalo's domain-verification file (ZL-2), at the root of the public URL: the content an admin stored with a Zalo
/// channel under this name; 404 when no channel has it.
pub async fn verifier(state: State, name: web::Path<String>) -> ApiResult<HttpResponse> {
    let name = name.into_inner();
    if !is_verifier_name(&name) {
        return Err(ApiError::not_found("file"));
    }
    for c in store::channels::list(&state.store, &ChannelScope::All, Some(ChannelKind::Zalo)).await? {
        if let Some(v) = Settings::of(&c.settings).and_then(|s| s.verification).filter(|v| v.file_name == name) {
            return Ok(HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .insert_header(("X-Content-Type-Options", "nosniff"))
                .insert_header(("Content-Security-Policy", "default-src 'none'; sandbox"))
                .body(v.content));
        }
    }
    Err(ApiError::not_found("file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_names_and_verification_files() {
        assert_eq!(base_url("u", "https://openapi.zalo.me/").unwrap(), "https://openapi.zalo.me");
        assert_eq!(base_url("u", " http://127.0.0.1:9/zalo/ ").unwrap(), "http://127.0.0.1:9/zalo");
        for bad in ["openapi.zalo.me", "ftp://x", "https://u:p@x", "https://x/?a=1"] {
            assert!(base_url("u", bad).is_err(), "{bad}");
        }
        assert!(app_id("360846524940903967").is_ok());
        assert!(app_id("1 2").is_err());
        assert!(secret("t", "").is_err());
        assert!(secret("t", "a b").is_err());
        assert!(is_verifier_name("zalo_verifierABC-12_x.html"));
        for bad in
            ["zalo_verifier.html", "zalo_verifierA.htm", "x.html", "zalo_verifier../a.html", "zalo_verifierA B.html"]
        {
            assert!(!is_verifier_name(bad), "{bad}");
        }
        let v = verification(DomainVerification { file_name: "zalo_verifierABC.html".into(), content: None }).unwrap();
        assert!(v.content.contains(r#"<meta property="zalo-platform-site-verification" content="ABC" />"#));
        let given =
            verification(DomainVerification { file_name: "zalo_verifierABC.html".into(), content: Some("x".into()) });
        assert_eq!(given.unwrap().content, "x");
    }
}
