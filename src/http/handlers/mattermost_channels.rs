//! Mattermost bots (issue #15, MM-1…MM-7, CC-11): connect, read, edit, enable/disable and delete at
//! `/api/v1/mattermost-channels`. Connecting checks the token with `GET /api/v4/users/me` and refuses a wrong token
//! or a user (non-bot) account with a message naming the cause; nothing is stored then. The token is sealed at
//! rest (`store::sealing`, the channel's `secret`) and never returned or logged. Only a super admin connects,
//! edits or deletes (CC-11); `state` says how the bot's connection is (connected / reconnecting /
//! needs_attention with the reason).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{actor, name_field};
use crate::auth::Principal;
use crate::channels::mattermost::api::{Client, MmError};
use crate::channels::mattermost::{ConnectionState, ConversationMode, Settings};
use crate::domain::{ChannelKind, ChannelScope, Mode};
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::session::SuperAdmin;
use crate::outbound::http_client::HttpClient;
use crate::store::models::ChannelInstance;
use crate::store::{self, StoreError};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMattermostChannel {
    pub name: String,
    /// The Mattermost server, e.g. `https://chat.example.com` (MM-2; the bot stays bound to it, MM-3).
    pub server_url: String,
    /// The bot account's access token (MM-2). Never returned.
    pub bot_token: String,
    /// MM-6: from channels, only posts that mention the bot (default true). DMs are always taken.
    pub mention_only: Option<bool>,
    /// MM-7: `group` (one conversation per Mattermost channel, the default) or `thread` (one per root post).
    #[schema(value_type = Option<String>)]
    pub mode: Option<ConversationMode>,
    /// MM-4: the help desk team (category) of the bot's new conversations.
    pub default_team_id: Option<i64>,
    /// The Mattermost team whose channels outbound conversations may pick (MM-12).
    pub mattermost_team_id: Option<String>,
    /// Seconds without a message after which a chat ends (default 600; MM-9).
    pub inactivity_timeout_s: Option<i64>,
    pub enabled: Option<bool>,
}

/// Every field optional. The server URL cannot change (MM-3); a new token must belong to the same bot.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMattermostChannel {
    pub name: Option<String>,
    pub bot_token: Option<String>,
    pub mention_only: Option<bool>,
    #[schema(value_type = Option<String>)]
    pub mode: Option<ConversationMode>,
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<i64>)]
    pub default_team_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>)]
    pub mattermost_team_id: Option<Option<String>>,
    pub inactivity_timeout_s: Option<i64>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MattermostChannelView {
    pub id: i64,
    pub name: String,
    pub server_url: String,
    pub mention_only: bool,
    /// `group` or `thread`.
    pub mode: String,
    pub default_team_id: Option<i64>,
    pub mattermost_team_id: Option<String>,
    pub bot_user_id: String,
    pub bot_username: String,
    pub enabled: bool,
    /// `connected`, `reconnecting` or `needs_attention` (MM-11).
    pub state: String,
    /// Why it is reconnecting or needs attention.
    pub state_reason: Option<String>,
    pub state_since: Option<DateTime<Utc>>,
    /// A connector for it runs on the node that answered this request.
    pub running: bool,
    /// The node that keeps its socket (its id, as in its logs) while that node's lease lasts; null when none does.
    pub connected_by: Option<String>,
    pub inactivity_timeout_s: i64,
    pub created_at: DateTime<Utc>,
}

async fn view(state: &State, c: ChannelInstance) -> ApiResult<MattermostChannelView> {
    let s = Settings::of(&c.settings).unwrap_or_default();
    let bot = store::mattermost::state(&state.store, c.id).await?;
    let (conn, reason, since) = match bot {
        Some(b) => (b.state, b.reason, Some(b.updated_at.and_utc())),
        None => (ConnectionState::Reconnecting, Some("not connected yet".to_owned()), None),
    };
    Ok(MattermostChannelView {
        id: c.id,
        name: c.name,
        server_url: s.server_url,
        mention_only: s.mention_only,
        mode: match s.mode {
            ConversationMode::Group => "group".into(),
            ConversationMode::Thread => "thread".into(),
        },
        default_team_id: c.default_team_id,
        mattermost_team_id: s.mattermost_team_id,
        bot_user_id: s.bot_user_id,
        bot_username: s.bot_username,
        enabled: c.enabled,
        state: conn.as_str().into(),
        state_reason: reason,
        state_since: since,
        running: state.bots.is_running(c.id),
        connected_by: {
            let name = crate::cluster::lease::Job::Mattermost(c.id).lease_name();
            let now = store::now();
            store::leases::of(&state.store, &[name]).await?.into_iter().find(|l| l.expires_at > now).map(|l| l.holder)
        },
        inactivity_timeout_s: c.inactivity_timeout_s,
        created_at: c.created_at.and_utc(),
    })
}

/// `http(s)://host[:port][/path]`, no credentials, query or fragment; stored without a trailing slash.
fn server_url(raw: &str) -> ApiResult<String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| ApiError::field("server_url", format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiError::field("server_url", "must be an http:// or https:// URL"));
    }
    if crate::outbound::http_client::has_credentials(&url) || url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::field("server_url", "must not carry a user name, password, query or fragment"));
    }
    if raw.len() > 2000 {
        return Err(ApiError::field("server_url", "must be at most 2000 characters"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn token(raw: &str) -> ApiResult<String> {
    let t = raw.trim();
    if t.is_empty() || t.len() > 500 || !t.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::field("bot_token", "must be the bot's access token (1–500 visible characters)"));
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

fn mm_team(raw: Option<String>) -> ApiResult<Option<String>> {
    match raw.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
        Some(t) if t.len() > 64 || !t.chars().all(|c| c.is_ascii_alphanumeric()) => {
            Err(ApiError::field("mattermost_team_id", "must be a Mattermost team id"))
        }
        other => Ok(other),
    }
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

/// Ask Mattermost who the token belongs to (MM-2): a bot, or a clear refusal.
async fn verify(state: &State, server_url: &str, token: &str) -> ApiResult<crate::channels::mattermost::api::User> {
    let http = HttpClient::new(crate::outbound::Policy::new(state.settings.allowed_internal.clone()));
    let me = Client::new(http, server_url, token).me().await.map_err(|e| {
        let (code, message) = match &e {
            MmError::Unauthorized => (
                "mattermost_token_rejected",
                "Mattermost refused the bot token (401 Unauthorized): check that it was copied whole, belongs to \
                 this server and was not revoked"
                    .to_owned(),
            ),
            MmError::Refused(why) => ("mattermost_unreachable", format!("the server URL cannot be used: {why}")),
            other => ("mattermost_unreachable", format!("cannot check the token with GET /api/v4/users/me: {other}")),
        };
        ApiError::Unprocessable { code, message }
    })?;
    if !me.is_bot {
        return Err(ApiError::Unprocessable {
            code: "mattermost_not_a_bot",
            message: format!(
                "the token belongs to @{}, a user account, not a bot: create a bot account (Integrations → Bot \
                 Accounts) and use its token",
                me.username
            ),
        });
    }
    Ok(me)
}

async fn bot(state: &State, id: i64, scope: &ChannelScope) -> ApiResult<ChannelInstance> {
    match store::channels::get(&state.store, id, scope).await {
        Ok(c) if c.kind == ChannelKind::Mattermost => Ok(c),
        Ok(_) | Err(StoreError::NotFound) => Err(ApiError::not_found("Mattermost channel")),
        Err(other) => Err(other.into()),
    }
}

/// Connect a Mattermost bot (super admin, CC-11). The token is checked first; its connector starts at once.
#[utoipa::path(post, operation_id = "mattermost_channels_create", path = "/api/v1/mattermost-channels", tag = "mattermost channels",
    request_body = CreateMattermostChannel, responses((status = 201, body = MattermostChannelView), (status = 400, body = crate::http::error::ErrorBody)))]
pub async fn create(
    state: State,
    SuperAdmin(p): SuperAdmin,
    body: crate::http::body::Body<CreateMattermostChannel>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let name = name_field("name", &b.name, 100)?;
    let url = server_url(&b.server_url)?;
    let secret = token(&b.bot_token)?;
    let inactivity = timeout(b.inactivity_timeout_s)?.unwrap_or(600);
    let default_team = team(&state, b.default_team_id).await?;
    let mattermost_team_id = mm_team(b.mattermost_team_id)?;
    let me = verify(&state, &url, &secret).await?;
    let settings = Settings {
        server_url: url,
        mention_only: b.mention_only.unwrap_or(true),
        mode: b.mode.unwrap_or_default(),
        bot_user_id: me.id,
        bot_username: me.username,
        mattermost_team_id,
        routing: store::channels::RoutingSettings { team_id: default_team, ..Default::default() },
    };
    let channel = store::channels::create(
        &state.store,
        store::channels::CreateChannel {
            kind: ChannelKind::Mattermost,
            name,
            mode: Mode::Sync,
            settings: serde_json::to_string(&settings).map_err(ApiError::internal)?,
            secret: Some(secret),
            enabled: b.enabled.unwrap_or(true),
            inactivity_timeout_s: inactivity,
            default_team_id: default_team,
        },
        actor(&p),
    )
    .await?;
    state.changes.channel_changed(channel.id);
    Ok(HttpResponse::Created().json(view(&state, channel).await?))
}

/// The Mattermost bots the caller may work in. No tokens.
#[utoipa::path(get, operation_id = "mattermost_channels_list", path = "/api/v1/mattermost-channels", tag = "mattermost channels",
    responses((status = 200, body = [MattermostChannelView])))]
pub async fn list(state: State, p: Principal) -> ApiResult<web::Json<Vec<MattermostChannelView>>> {
    let rows = store::channels::list(&state.store, &p.scope, Some(ChannelKind::Mattermost)).await?;
    let mut out = Vec::with_capacity(rows.len());
    for c in rows {
        out.push(view(&state, c).await?);
    }
    Ok(web::Json(out))
}

#[utoipa::path(get, operation_id = "mattermost_channels_get", path = "/api/v1/mattermost-channels/{id}", tag = "mattermost channels",
    params(("id" = i64, Path)), responses((status = 200, body = MattermostChannelView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get(state: State, p: Principal, id: web::Path<i64>) -> ApiResult<web::Json<MattermostChannelView>> {
    Ok(web::Json(view(&state, bot(&state, *id, &p.scope).await?).await?))
}

/// Edit, enable or disable a bot (super admin, CC-11). A new token is checked like at connect and must belong to
/// the same bot (MM-3).
#[utoipa::path(patch, operation_id = "mattermost_channels_update", path = "/api/v1/mattermost-channels/{id}", tag = "mattermost channels",
    params(("id" = i64, Path)), request_body = UpdateMattermostChannel, responses((status = 200, body = MattermostChannelView)))]
pub async fn update(
    state: State,
    SuperAdmin(p): SuperAdmin,
    id: web::Path<i64>,
    body: crate::http::body::Body<UpdateMattermostChannel>,
) -> ApiResult<web::Json<MattermostChannelView>> {
    let b = body.into_inner();
    let current = bot(&state, *id, &ChannelScope::All).await?;
    let mut settings = Settings::of(&current.settings).unwrap_or_default();
    let name = match b.name.as_deref() {
        Some(n) => Some(name_field("name", n, 100)?),
        None => None,
    };
    let secret = match b.bot_token.as_deref() {
        Some(raw) => {
            let t = token(raw)?;
            let me = verify(&state, &settings.server_url, &t).await?;
            if !settings.bot_user_id.is_empty() && me.id != settings.bot_user_id {
                return Err(ApiError::Unprocessable {
                    code: "mattermost_other_bot",
                    message: format!(
                        "the token belongs to @{}, not to this channel's bot @{} (MM-3: a channel stays bound to its bot)",
                        me.username, settings.bot_username
                    ),
                });
            }
            settings.bot_username = me.username;
            Some(t)
        }
        None => None,
    };
    if let Some(m) = b.mention_only {
        settings.mention_only = m;
    }
    if let Some(m) = b.mode {
        settings.mode = m;
    }
    if let Some(t) = b.mattermost_team_id {
        settings.mattermost_team_id = mm_team(t)?;
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
        secret,
    };
    let c = store::channels::update(&state.store, *id, patch, actor(&p)).await?;
    state.changes.channel_changed(c.id);
    Ok(web::Json(view(&state, c).await?))
}

/// Remove a bot, its conversations and its queued replies (super admin, CC-11). Its connector stops.
#[utoipa::path(delete, operation_id = "mattermost_channels_delete", path = "/api/v1/mattermost-channels/{id}", tag = "mattermost channels",
    params(("id" = i64, Path)), responses((status = 204)))]
pub async fn delete(state: State, SuperAdmin(p): SuperAdmin, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    bot(&state, *id, &ChannelScope::All).await?;
    store::channels::delete(&state.store, *id, actor(&p)).await?;
    state.changes.channel_changed(*id);
    Ok(HttpResponse::NoContent().finish())
}

/// Who an outbound conversation may go to (MM-12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecipientKind {
    /// A Mattermost user: the bot writes to them in a direct message.
    Member,
    /// A Mattermost channel the bot is in: the bot posts there.
    Channel,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recipient {
    pub kind: RecipientKind,
    /// The Mattermost user or channel id.
    pub id: String,
    /// How to show it: "First Last (@username)" or the channel's display name.
    pub label: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RecipientQuery {
    /// What was typed: the start of a username, or part of a channel name (empty: the first few).
    #[serde(default)]
    pub q: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientRef {
    pub kind: RecipientKind,
    pub id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutboundRequest {
    pub to: RecipientRef,
    pub content: String,
    pub subject: Option<String>,
}

fn api_error(e: MmError) -> ApiError {
    match e {
        MmError::Status { status: 400 | 404, .. } => ApiError::Unprocessable {
            code: "unknown_reference",
            message: "Mattermost does not know that member or channel".into(),
        },
        other => ApiError::Unprocessable { code: "mattermost_unreachable", message: other.to_string() },
    }
}

fn client(state: &State, c: &ChannelInstance) -> ApiResult<(Settings, Client)> {
    let settings = Settings::of(&c.settings).ok_or_else(|| ApiError::Unprocessable {
        code: "rule_violation",
        message: "this Mattermost channel has no bot connected".into(),
    })?;
    let token = c.secret.clone().ok_or_else(|| ApiError::Unprocessable {
        code: "rule_violation",
        message: "this Mattermost channel has no bot token".into(),
    })?;
    let http = HttpClient::new(crate::outbound::Policy::new(state.settings.allowed_internal.clone()));
    let api = Client::new(http, &settings.server_url, &token);
    Ok((settings, api))
}

/// MM-12: members and channels a new conversation from this bot may go to, each marked `member` or `channel`
/// (channels only when the bot has a `mattermost_team_id`).
#[utoipa::path(get, operation_id = "mattermost_channels_recipients", path = "/api/v1/mattermost-channels/{id}/recipients", tag = "mattermost channels",
    params(("id" = i64, Path), RecipientQuery), responses((status = 200, body = [Recipient])))]
pub async fn recipients(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    q: web::Query<RecipientQuery>,
) -> ApiResult<web::Json<Vec<Recipient>>> {
    let c = bot(&state, *id, &p.scope).await?;
    let (settings, api) = client(&state, &c)?;
    let typed: String = q.q.trim().chars().take(64).collect();
    let team = settings.mattermost_team_id.as_deref();
    let mut out: Vec<Recipient> = api
        .autocomplete_users(&typed, team, 25)
        .await
        .map_err(api_error)?
        .into_iter()
        .filter(|u| !u.is_bot && u.id != settings.bot_user_id)
        .map(|u| Recipient {
            kind: RecipientKind::Member,
            label: format!("{} (@{})", u.display_name(), u.username),
            id: u.id,
        })
        .collect();
    out.sort_by(|a, b| a.label.cmp(&b.label));
    if let Some(team) = team {
        let mut channels: Vec<Recipient> = api
            .autocomplete_channels(team, &typed)
            .await
            .map_err(api_error)?
            .into_iter()
            .map(|ch| Recipient {
                kind: RecipientKind::Channel,
                label: if ch.display_name.is_empty() { ch.name } else { ch.display_name },
                id: ch.id,
            })
            .collect();
        channels.sort_by(|a, b| a.label.cmp(&b.label));
        out.extend(channels);
    }
    Ok(web::Json(out))
}

/// MM-12: a new conversation sent from the bot — a direct message to a member (`POST /channels/direct`) or a post
/// in a channel. The first message is the agent's, delivered through the outbox like every reply; the customer's
/// answers (in the DM, or in the channel in group-chat mode) join the conversation.
#[utoipa::path(post, operation_id = "mattermost_channels_outbound", path = "/api/v1/mattermost-channels/{id}/conversations", tag = "mattermost channels",
    params(("id" = i64, Path)), request_body = OutboundRequest, responses((status = 201, body = crate::view::ConversationView)))]
pub async fn outbound(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    body: crate::http::body::Body<OutboundRequest>,
) -> ApiResult<HttpResponse> {
    use crate::store::conversations::{Counterpart, NewConversation};
    let b = body.into_inner();
    let c = bot(&state, *id, &p.scope).await?;
    let (settings, api) = client(&state, &c)?;
    let content = b.content.trim().to_owned();
    if content.is_empty() || content.chars().count() > 16_000 {
        return Err(ApiError::field("content", "must be 1–16000 characters"));
    }
    let subject: String = b.subject.as_deref().unwrap_or_default().trim().chars().take(300).collect();
    let target: String = b.to.id.trim().to_owned();
    if target.is_empty() || target.len() > 64 || !target.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err(ApiError::field("to.id", "must be a Mattermost id"));
    }
    let (place, mm_channel, counterpart) = match b.to.kind {
        RecipientKind::Member => {
            let user = api.user(&target).await.map_err(api_error)?;
            let dm = api.direct_channel(&settings.bot_user_id, &user.id).await.map_err(api_error)?;
            let counterpart = Counterpart::Contact {
                external_id: user.id.clone(),
                name: crate::domain::text::clean_name(&user.display_name(), 200),
                email: crate::domain::text::normalize_email(&user.email),
                phone: None,
                company: None,
            };
            (format!("dm:{}", dm.id), dm.id, counterpart)
        }
        RecipientKind::Channel => {
            let ch = api.channel(&target).await.map_err(api_error)?;
            let name = if ch.display_name.is_empty() { ch.name.clone() } else { ch.display_name.clone() };
            let counterpart = Counterpart::Contact {
                external_id: format!("channel:{}", ch.id),
                name: crate::domain::text::clean_name(&format!("~{name}"), 200),
                email: None,
                phone: None,
                company: None,
            };
            (format!("ch:{}", ch.id), ch.id, counterpart)
        }
    };
    let source = match p.credential {
        crate::auth::Credential::ApiToken { .. } => crate::domain::Source::Api,
        crate::auth::Credential::Session { .. } => crate::domain::Source::Agent,
    };
    // MM-7b: in thread mode the first post to a channel becomes the thread's root; its place is known once posted.
    let place = match (b.to.kind, settings.mode) {
        (RecipientKind::Channel, ConversationMode::Thread) => None,
        _ => Some(place),
    };
    // The link is written in the conversation's transaction: the dispatcher never claims the first message before
    // it knows where to post it.
    let committed = store::mattermost::create_outbound(
        &state.store,
        NewConversation {
            channel_id: c.id,
            counterpart,
            subject,
            content,
            content_html: None,
            external_message_id: None,
            direction: crate::domain::Direction::Out,
            source,
            author_agent_id: Some(p.agent_id),
        },
        &p.scope,
        actor(&p),
        store::mattermost::OutboundPlace { place, mm_channel_id: mm_channel },
    )
    .await?;
    let created = state.changes.created(&committed).await?;
    Ok(HttpResponse::Created().json(created.conversation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_plain_http_urls() {
        assert_eq!(server_url("https://chat.example.com/").unwrap(), "https://chat.example.com");
        assert_eq!(server_url(" http://127.0.0.1:8065/mm/ ").unwrap(), "http://127.0.0.1:8065/mm");
        for bad in ["chat.example.com", "ftp://x", "https://u:p@x", "https://x/?a=1", "https://x/#f"] {
            assert!(server_url(bad).is_err(), "{bad}");
        }
        assert!(token("  abc123  ").is_ok());
        assert!(token("").is_err());
        assert!(token("a b").is_err());
    }
}
