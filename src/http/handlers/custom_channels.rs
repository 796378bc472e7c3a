//! Custom channels, the contract of `docs/custom-channels.md` (CC-1…CC-14): admin CRUD,
//! the one-call `inbound` endpoint for integrators, the delivery log and manual re-send.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{actor, name_field};
use crate::auth::{Principal, random_secret};
use crate::channels::custom::Settings as CustomSettings;
use crate::domain::html::sanitize as sanitize_html;
use crate::domain::text::{normalize_email, normalize_phone, normalize_tag};
use crate::domain::{ChannelKind, ChannelScope, Mode, Priority};
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::session::{Admin, SuperAdmin};
use crate::http::views::DeliveryView;
use crate::store::channels::{Assign, RoutingSettings};
use crate::store::messages::{CustomerMessage, Profile, Target};
use crate::store::models::ChannelInstance;
use crate::store::{self, StoreError};

const MAX_CONTENT: usize = 100_000;

/// How long `inbound` trusts the remembered conversation of a customer (`AppState::routes`).
/// Only which actor serialises the message depends on it; where it lands is decided in the
/// store's transaction.
pub const ROUTE_TTL: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomChannel {
    pub name: String,
    /// Where every agent reply is POSTed (CC-1, CC-7).
    pub webhook_url: String,
    /// `sync` (chats) or `async` (tickets).
    #[serde(rename = "type")]
    pub kind: String,
    /// Default properties and auto-assignment of new conversations (CC-12).
    #[schema(value_type = Option<Object>)]
    #[serde(default, deserialize_with = "routing_object")]
    pub routing: Option<RoutingSettings>,
    /// Seconds without a message after which a chat ends (sync channels; default 600).
    pub inactivity_timeout_s: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomChannel {
    pub name: Option<String>,
    pub webhook_url: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    #[serde(default, deserialize_with = "routing_object")]
    pub routing: Option<RoutingSettings>,
    pub inactivity_timeout_s: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomChannelView {
    pub id: i64,
    pub name: String,
    pub webhook_url: String,
    /// `sync` or `async`.
    #[serde(rename = "type")]
    pub kind: String,
    pub enabled: bool,
    /// The signing secret: only in the answers to create and rotate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[schema(value_type = Object)]
    pub routing: RoutingSettings,
    pub inactivity_timeout_s: i64,
    pub created_at: DateTime<Utc>,
}

/// Who a channel is shown to: admins see the webhook URL whole (and the secret in the answers to create and
/// rotate), agents without user name, password or query string (issue #13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Viewer {
    AdminWithSecret,
    Admin,
    Agent,
}

impl Viewer {
    fn of(p: &Principal) -> Self {
        if p.is_admin() { Viewer::Admin } else { Viewer::Agent }
    }
}

impl CustomChannelView {
    fn new(c: ChannelInstance, viewer: Viewer) -> Self {
        let settings = CustomSettings::of(&c.settings);
        Self {
            id: c.id,
            name: c.name,
            webhook_url: match viewer {
                Viewer::Agent => settings.webhook_url_for_agents(),
                Viewer::Admin | Viewer::AdminWithSecret => settings.webhook_url,
            },
            kind: c.mode.as_str().to_owned(),
            enabled: c.enabled,
            secret: if viewer == Viewer::AdminWithSecret { c.secret } else { None },
            routing: settings.routing,
            inactivity_timeout_s: c.inactivity_timeout_s,
            created_at: c.created_at.and_utc(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InboundRequest {
    /// The integrator's id of the customer (CC-4).
    pub user_custom_id: String,
    pub content: String,
    pub content_html: Option<String>,
    pub subject: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    /// Idempotency key: the same value on this channel never creates a second message.
    pub external_message_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboundAnswer {
    pub conversation_id: i64,
    /// The customer's id, to store against `user_custom_id`.
    pub user_id: i64,
    pub message_id: i64,
    /// True when a new conversation was started (first message, or the last one was closed).
    pub created: bool,
}

/// `routing` must be a JSON object (serde would otherwise read a struct from an array).
fn routing_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<RoutingSettings>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None => Ok(None),
        Some(v @ serde_json::Value::Object(_)) => serde_json::from_value(v).map(Some).map_err(D::Error::custom),
        Some(_) => Err(D::Error::custom("routing must be an object")),
    }
}

fn webhook_url(raw: &str) -> ApiResult<String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| ApiError::field("webhook_url", format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiError::field("webhook_url", "must be an http:// or https:// URL"));
    }
    if crate::outbound::http_client::has_credentials(&url) {
        return Err(ApiError::field(
            "webhook_url",
            "must not contain a user name or password (deliveries are signed; see X-Switchboard-Signature)",
        ));
    }
    if raw.len() > 2000 {
        return Err(ApiError::field("webhook_url", "must be at most 2000 characters"));
    }
    Ok(url.to_string())
}

fn mode(raw: &str) -> ApiResult<Mode> {
    raw.parse::<Mode>().map_err(|e| ApiError::field("type", e))
}

fn timeout(t: Option<i64>) -> ApiResult<Option<i64>> {
    match t {
        Some(t) if !(1..=7 * 24 * 3600).contains(&t) => {
            Err(ApiError::field("inactivity_timeout_s", "must be between 1 and 604800"))
        }
        other => Ok(other),
    }
}

/// Check every reference in routing settings, and normalise its tags.
async fn routing(state: &State, r: RoutingSettings) -> ApiResult<RoutingSettings> {
    let mut r = r;
    if let Some(p) = &r.priority {
        p.parse::<Priority>().map_err(|e| ApiError::field("routing.priority", e))?;
    }
    if r.tags.len() > 20 {
        return Err(ApiError::field("routing.tags", "at most 20"));
    }
    let mut tags = Vec::new();
    for t in &r.tags {
        tags.push(
            normalize_tag(t).ok_or_else(|| ApiError::field("routing.tags", format!("{t:?} is not a valid tag")))?,
        );
    }
    tags.sort();
    tags.dedup();
    r.tags = tags;
    let unknown = |what: String| ApiError::Unprocessable { code: "unknown_reference", message: what };
    if let Some(key) = &r.status {
        store::statuses::get(&state.store, key).await.map_err(|_| unknown(format!("status {key:?} does not exist")))?;
    }
    let mut teams: Vec<i64> = r.team_id.into_iter().collect();
    let mut agents = Vec::new();
    if let Assign::RoundRobin { agent_ids, team_ids } = &r.assign {
        if agent_ids.is_empty() && team_ids.is_empty() {
            return Err(ApiError::field("routing.assign", "round_robin needs agent_ids or team_ids"));
        }
        teams.extend(team_ids);
        agents.extend(agent_ids);
    }
    for team in teams {
        store::teams::get(&state.store, team).await.map_err(|_| unknown(format!("team {team} does not exist")))?;
    }
    for agent in agents {
        store::agents::get(&state.store, agent).await.map_err(|_| unknown(format!("agent {agent} does not exist")))?;
    }
    Ok(r)
}

async fn custom_channel(state: &State, id: i64, scope: &ChannelScope) -> ApiResult<ChannelInstance> {
    only_custom(store::channels::get(&state.store, id, scope).await)
}

/// [`custom_channel`] from the store's channel cache, for the endpoints integrators call per message.
async fn custom_channel_cached(state: &State, id: i64, scope: &ChannelScope) -> ApiResult<ChannelInstance> {
    only_custom(store::channels::get_cached(&state.store, id, scope).await)
}

/// A channel that is not there, out of scope or of another kind is "no such custom channel".
fn only_custom(found: store::StoreResult<ChannelInstance>) -> ApiResult<ChannelInstance> {
    match found {
        Ok(c) if c.kind == ChannelKind::Custom => Ok(c),
        Ok(_) | Err(StoreError::NotFound) => Err(ApiError::not_found("custom channel")),
        Err(other) => Err(other.into()),
    }
}

/// Add a custom channel (super admin, CC-11). The answer carries the signing secret of its reply webhook.
#[utoipa::path(post, operation_id = "custom_channels_create", path = "/api/v1/custom-channels", tag = "custom channels",
    request_body = CreateCustomChannel, responses((status = 201, body = CustomChannelView), (status = 400, body = crate::http::error::ErrorBody)))]
pub async fn create(
    state: State,
    SuperAdmin(p): SuperAdmin,
    body: crate::http::body::Body<CreateCustomChannel>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let name = name_field("name", &body.name, 100)?;
    let settings = CustomSettings {
        webhook_url: webhook_url(&body.webhook_url)?,
        routing: routing(&state, body.routing.unwrap_or_default()).await?,
    };
    let mode = mode(&body.kind)?;
    let channel = store::channels::create(
        &state.store,
        store::channels::CreateChannel {
            kind: ChannelKind::Custom,
            name,
            mode,
            settings: serde_json::to_string(&settings).map_err(ApiError::internal)?,
            secret: Some(random_secret()),
            enabled: true,
            inactivity_timeout_s: timeout(body.inactivity_timeout_s)?.unwrap_or(600),
            default_team_id: settings.routing.team_id,
        },
        actor(&p),
    )
    .await?;
    Ok(HttpResponse::Created().json(CustomChannelView::new(channel, Viewer::AdminWithSecret)))
}

/// Custom channels the caller may work in, with their parameters (CC-3). No secrets.
#[utoipa::path(get, operation_id = "custom_channels_list", path = "/api/v1/custom-channels", tag = "custom channels",
    responses((status = 200, body = [CustomChannelView])))]
pub async fn list(state: State, p: Principal) -> ApiResult<web::Json<Vec<CustomChannelView>>> {
    let rows = store::channels::list(&state.store, &p.scope, Some(ChannelKind::Custom)).await?;
    Ok(web::Json(rows.into_iter().map(|c| CustomChannelView::new(c, Viewer::of(&p))).collect()))
}

#[utoipa::path(get, operation_id = "custom_channels_get", path = "/api/v1/custom-channels/{id}", tag = "custom channels",
    params(("id" = i64, Path)), responses((status = 200, body = CustomChannelView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get(state: State, p: Principal, id: web::Path<i64>) -> ApiResult<web::Json<CustomChannelView>> {
    Ok(web::Json(CustomChannelView::new(custom_channel(&state, *id, &p.scope).await?, Viewer::of(&p))))
}

/// Edit, enable or disable a custom channel (super admin, CC-11, CC-14). A disabled channel accepts nothing and queues nothing.
#[utoipa::path(patch, operation_id = "custom_channels_update", path = "/api/v1/custom-channels/{id}", tag = "custom channels",
    params(("id" = i64, Path)), request_body = UpdateCustomChannel, responses((status = 200, body = CustomChannelView)))]
pub async fn update(
    state: State,
    SuperAdmin(p): SuperAdmin,
    id: web::Path<i64>,
    body: crate::http::body::Body<UpdateCustomChannel>,
) -> ApiResult<web::Json<CustomChannelView>> {
    let body = body.into_inner();
    let current = custom_channel(&state, *id, &ChannelScope::All).await?;
    let mut settings = CustomSettings::of(&current.settings);
    if let Some(url) = &body.webhook_url {
        settings.webhook_url = webhook_url(url)?;
    }
    if let Some(r) = body.routing {
        settings.routing = routing(&state, r).await?;
    }
    let name = match body.name.as_deref() {
        Some(n) => Some(name_field("name", n, 100)?),
        None => None,
    };
    let patch = store::channels::ChannelPatch {
        name,
        mode: match body.kind.as_deref() {
            Some(k) => Some(mode(k)?),
            None => None,
        },
        settings: Some(serde_json::to_string(&settings).map_err(ApiError::internal)?),
        enabled: body.enabled,
        inactivity_timeout_s: timeout(body.inactivity_timeout_s)?,
        default_team_id: Some(settings.routing.team_id),
        secret: None,
    };
    let c = store::channels::update(&state.store, *id, patch, actor(&p)).await?;
    // Every node drops its cached row now (issue #14), not when the cache expires.
    state.changes.channel_changed(c.id);
    Ok(web::Json(CustomChannelView::new(c, Viewer::Admin)))
}

/// Delete a custom channel, its conversations and its queued deliveries (super admin, CC-11, CC-14).
#[utoipa::path(delete, operation_id = "custom_channels_delete", path = "/api/v1/custom-channels/{id}", tag = "custom channels",
    params(("id" = i64, Path)), responses((status = 204)))]
pub async fn delete(state: State, SuperAdmin(p): SuperAdmin, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    custom_channel(&state, *id, &ChannelScope::All).await?;
    store::channels::delete(&state.store, *id, actor(&p)).await?;
    state.changes.channel_changed(*id);
    Ok(HttpResponse::NoContent().finish())
}

/// Replace the signing secret (super admin, CC-11). The old one stops working at once.
#[utoipa::path(post, operation_id = "custom_channels_rotate_secret", path = "/api/v1/custom-channels/{id}/secret", tag = "custom channels",
    params(("id" = i64, Path)), responses((status = 200, body = CustomChannelView)))]
pub async fn rotate_secret(
    state: State,
    SuperAdmin(p): SuperAdmin,
    id: web::Path<i64>,
) -> ApiResult<web::Json<CustomChannelView>> {
    custom_channel(&state, *id, &ChannelScope::All).await?;
    let patch = store::channels::ChannelPatch { secret: Some(random_secret()), ..Default::default() };
    let c = store::channels::update(&state.store, *id, patch, actor(&p)).await?;
    // The old secret stops working on every node at once.
    state.changes.channel_changed(c.id);
    Ok(web::Json(CustomChannelView::new(c, Viewer::AdminWithSecret)))
}

/// The channel's newest reply deliveries (admin): state, attempts, last error.
#[utoipa::path(get, operation_id = "custom_channels_deliveries", path = "/api/v1/custom-channels/{id}/deliveries", tag = "custom channels",
    params(("id" = i64, Path)), responses((status = 200, body = [DeliveryView])))]
pub async fn deliveries(state: State, Admin(_p): Admin, id: web::Path<i64>) -> ApiResult<web::Json<Vec<DeliveryView>>> {
    custom_channel(&state, *id, &ChannelScope::All).await?;
    let rows = store::outbox::log_for_channel(&state.store, *id, 200).await?;
    Ok(web::Json(rows.into_iter().map(DeliveryView::numbered).collect()))
}

/// Send a delivery again (admin): queued now, same delivery id, so the receiver can deduplicate; the message's
/// `delivery` turns `pending` live (`message.updated`). 409 while an attempt is in flight (it would be sent twice);
/// try again when it has finished.
#[utoipa::path(post, operation_id = "custom_channels_resend", path = "/api/v1/custom-channels/{id}/deliveries/{delivery}/resend", tag = "custom channels",
    params(("id" = i64, Path), ("delivery" = i64, Path)), responses((status = 200, body = DeliveryView),
        (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn resend(state: State, Admin(p): Admin, path: web::Path<(i64, i64)>) -> ApiResult<web::Json<DeliveryView>> {
    let (id, delivery) = path.into_inner();
    custom_channel(&state, id, &ChannelScope::All).await?;
    let item = store::outbox::get(&state.store, delivery).await.map_err(|_| ApiError::not_found("delivery"))?;
    if item.channel_instance_id != id {
        return Err(ApiError::not_found("delivery"));
    }
    let (item, events) = store::outbox::resend(&state.store, delivery, actor(&p)).await?.ok_or_else(|| {
        ApiError::Conflict("this delivery is being sent right now; send it again when the attempt has finished".into())
    })?;
    // The message's delivery is pending again: the conversation's sockets see it live (`message.updated`).
    state.changes.message_updated(&events).await?;
    tracing::info!(agent_id = p.agent_id, delivery, "delivery queued again by hand");
    Ok(web::Json(DeliveryView::from(item)))
}

fn content(text: &str) -> ApiResult<String> {
    if text.trim().is_empty() {
        return Err(ApiError::field("content", "must not be empty"));
    }
    if text.chars().count() > MAX_CONTENT {
        return Err(ApiError::field("content", format!("must be at most {MAX_CONTENT} characters")));
    }
    Ok(text.to_owned())
}

fn external_message_id(raw: Option<&str>) -> ApiResult<Option<String>> {
    match raw.map(str::trim) {
        Some("") => Err(ApiError::field("external_message_id", "must not be empty")),
        Some(e) if e.len() > 500 => Err(ApiError::field("external_message_id", "must be at most 500 characters")),
        other => Ok(other.map(str::to_owned)),
    }
}

fn optional<T>(field: &str, raw: Option<&str>, f: impl Fn(&str) -> Option<T>, problem: &str) -> ApiResult<Option<T>> {
    match raw.filter(|v| !v.trim().is_empty()) {
        Some(v) => f(v).map(Some).ok_or_else(|| ApiError::field(field, problem)),
        None => Ok(None),
    }
}

/// A customer's message in one call (CC-8, CC-9): a new conversation for a new customer or when
/// their last one on this channel is closed; otherwise it joins the open or pending one (or the
/// survivor it was merged into).
#[utoipa::path(post, operation_id = "custom_channels_inbound", path = "/api/v1/custom-channels/{id}/inbound", tag = "custom channels",
    params(("id" = i64, Path)), request_body = InboundRequest,
    responses((status = 201, body = InboundAnswer), (status = 200, description = "`external_message_id` already known: nothing stored", body = InboundAnswer),
        (status = 404, body = crate::http::error::ErrorBody), (status = 422, body = crate::http::error::ErrorBody)))]
pub async fn inbound(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    body: crate::http::body::Body<InboundRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let channel = custom_channel_cached(&state, *id, &p.scope).await?;
    if !channel.enabled {
        return Err(disabled(channel.id));
    }
    let ucid = body.user_custom_id.trim().to_owned();
    if ucid.is_empty() || ucid.len() > 255 {
        return Err(ApiError::field("user_custom_id", "must be 1–255 characters"));
    }
    let text = content(&body.content)?;
    let html = body.content_html.as_deref().filter(|h| !h.trim().is_empty()).map(sanitize_html);
    let ext = external_message_id(body.external_message_id.as_deref())?;
    let subject = body.subject.as_deref().map(str::trim).unwrap_or_default().to_owned();
    if subject.chars().count() > 300 {
        return Err(ApiError::field("subject", "must be at most 300 characters"));
    }
    let email = optional("email", body.email.as_deref(), normalize_email, "is not a valid email address")?;
    let phone = optional("phone", body.phone.as_deref(), normalize_phone, "is not a valid phone number")?;
    let name = optional(
        "name",
        body.name.as_deref(),
        |n| crate::domain::text::clean_name(n, 200),
        "must be 1–200 characters",
    )?;
    let company = optional(
        "company",
        body.company.as_deref(),
        |n| crate::domain::text::clean_name(n, 200),
        "must be 1–200 characters",
    )?;

    // The conversation whose actor takes the message: the one this customer's previous message
    // landed in, else their latest by one read (none: a new customer, or none yet on this
    // channel). Only the serialising actor depends on it: the store decides where the message
    // lands, and creates a new customer, in its transaction (CC-9; one conversation under
    // concurrency, issue #13).
    let key = (channel.id, ucid.clone());
    let generation = state.store.generation();
    let latest = match state.routes.get(&key, generation) {
        Some((_, conversation)) => Some(conversation),
        None => store::conversations::route(&state.store, channel.id, &ucid).await?.flatten(),
    };
    let msg = CustomerMessage {
        channel_id: channel.id,
        target: Target::Latest { user_custom_id: ucid, profile: Profile { name, email, phone, company } },
        content: text,
        content_html: html,
        external_message_id: ext,
        subject,
        attachments: Vec::new(),
        quoted_message_id: None,
        outgoing: false,
    };
    let out = match state.changes.customer_message(msg, latest).await {
        Ok(out) => out,
        Err(e) => return Err(refused(&state, channel.id, e).await),
    };
    let (conversation_id, user_id) = (out.conversation.id, out.conversation.customer_id);
    state.routes.put(key, (user_id, conversation_id), generation);
    let body = InboundAnswer { conversation_id, user_id, message_id: out.message.id, created: out.created };
    let mut resp = if out.duplicate { HttpResponse::Ok() } else { HttpResponse::Created() };
    Ok(resp.json(body))
}

fn disabled(channel_id: i64) -> ApiError {
    ApiError::Unprocessable { code: "channel_disabled", message: format!("custom channel {channel_id} is disabled") }
}

/// The answer for a store error of an inbound message. The channel was checked from the cache
/// before; the transaction read it again, so if it was disabled or deleted meanwhile (on another
/// node, say), answer as the check would have.
async fn refused(state: &State, channel_id: i64, e: StoreError) -> ApiError {
    match e {
        StoreError::Rule(store::Violation::ChannelDisabled { channel_id }) => return disabled(channel_id),
        StoreError::BadReference(_) => {}
        other => return other.into(),
    }
    match store::channels::get(&state.store, channel_id, &ChannelScope::All).await {
        Err(StoreError::NotFound) => ApiError::not_found("custom channel"),
        Ok(c) if !c.enabled => disabled(c.id),
        _ => e.into(),
    }
}

/// `POST /conversations/{id}/messages` with `user_id`: a customer's message to a named
/// conversation (CC-8). One merged away lands in its survivor, one closed starts a new one (CC-9).
pub async fn customer_message(
    state: &State,
    p: &Principal,
    conversation_id: i64,
    user_id: i64,
    text: &str,
    html: Option<&str>,
    ext: Option<&str>,
) -> ApiResult<HttpResponse> {
    let conv = store::conversations::get(&state.store, conversation_id, &p.scope).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found("conversation"),
        other => other.into(),
    })?;
    let channel =
        custom_channel_cached(state, conv.conversation.channel_instance_id, &p.scope).await.map_err(|_| {
            ApiError::Unprocessable {
                code: "not_supported",
                message: "customer messages through the API are for custom-channel conversations".into(),
            }
        })?;
    if !channel.enabled {
        return Err(disabled(channel.id));
    }
    let msg = CustomerMessage {
        channel_id: channel.id,
        target: Target::Conversation { id: conversation_id, customer_id: user_id },
        content: content(text)?,
        content_html: html.filter(|h| !h.trim().is_empty()).map(sanitize_html),
        external_message_id: external_message_id(ext)?,
        subject: String::new(),
        attachments: Vec::new(),
        quoted_message_id: None,
        outgoing: false,
    };
    let out = state.changes.customer_message(msg, None).await?;
    let body = json!({
        "message_id": out.message.id,
        "conversation_id": out.conversation.id,
        "seq": out.message.seq,
        "created": out.created,
    });
    Ok(if out.duplicate { HttpResponse::Ok().json(body) } else { HttpResponse::Created().json(body) })
}
