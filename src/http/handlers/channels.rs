//! Channel instances of every kind (CORE-1, CORE-2, CC-14). Kind-specific settings are checked
//! by each channel's own endpoints as they arrive; here they are a JSON object. Mailboxes are the
//! exception: their settings are given and changed only through `/api/v1/email-channels`, which
//! validates them (an email channel made here has none, and no connector until completed there);
//! changes made here (enable, disable, delete) reach the mailbox's connector. Only the kinds with a
//! working connector may be created ([`ChannelKind::OFFERED`]; #14 item 12).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{actor, name_field, nullable};
use crate::auth::{Principal, random_secret};
use crate::domain::{ChannelKind, ChannelScope, Mode};
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::session::{Admin, SuperAdmin};
use crate::http::views::{ChannelView, DeliveryView};
use crate::store;

/// Longest inactivity timeout a chat channel may have: one week.
const MAX_TIMEOUT_S: i64 = 7 * 24 * 3600;
const MAX_SETTINGS_BYTES: usize = 64 * 1024;
/// Why mailbox settings are refused here.
const MAILBOX_SETTINGS: &str =
    "mailboxes are added and their settings changed with /api/v1/email-channels, which checks them";

/// Why Zalo settings are refused here.
const ZALO_SETTINGS: &str =
    "Zalo Official Accounts are connected and changed with /api/v1/zalo-channels, which keeps their keys and tokens";

/// The channel kinds that may be created, as the OpenAPI document lists them: [`ChannelKind::OFFERED`]
/// (a unit test keeps the two equal).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum OfferedChannelKind {
    Email,
    Mattermost,
    Zalo,
    Custom,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannelRequest {
    /// `email`, `mattermost`, `zalo` or `custom`. A `mattermost` channel made here has no bot (connect bots with
    /// `POST /api/v1/mattermost-channels`); a `zalo` one has no Official Account (connect those with
    /// `POST /api/v1/zalo-channels`). An `email` channel made here has no mailbox (no settings may be
    /// given): add mailboxes with `POST /api/v1/email-channels`, or complete this one with its `PATCH`.
    #[schema(value_type = OfferedChannelKind)]
    pub kind: String,
    pub name: String,
    /// Required for `custom`; email is always `async`.
    pub mode: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
    pub enabled: Option<bool>,
    /// Seconds without a message after which a chat ends (default 600).
    pub inactivity_timeout_s: Option<i64>,
    pub default_team_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannelRequest {
    pub name: Option<String>,
    pub mode: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
    pub enabled: Option<bool>,
    pub inactivity_timeout_s: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable)]
    pub default_team_id: Option<Option<i64>>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ChannelQuery {
    /// Only channels of this kind.
    pub kind: Option<String>,
}

fn check_timeout(t: Option<i64>) -> ApiResult<Option<i64>> {
    match t {
        Some(t) if !(1..=MAX_TIMEOUT_S).contains(&t) => {
            Err(ApiError::field("inactivity_timeout_s", format!("must be between 1 and {MAX_TIMEOUT_S}")))
        }
        other => Ok(other),
    }
}

fn settings_text(s: &Map<String, Value>) -> ApiResult<String> {
    let text = serde_json::to_string(s).map_err(ApiError::internal)?;
    if text.len() > MAX_SETTINGS_BYTES {
        return Err(ApiError::field("settings", format!("must be at most {MAX_SETTINGS_BYTES} bytes of JSON")));
    }
    Ok(text)
}

fn resolve_mode(kind: ChannelKind, requested: Option<&str>) -> ApiResult<Mode> {
    let requested = match requested {
        Some(m) => Some(m.parse::<Mode>().map_err(|e| ApiError::field("mode", e))?),
        None => None,
    };
    match (kind.fixed_mode(), requested) {
        (Some(fixed), Some(m)) if fixed != m => {
            Err(ApiError::field("mode", format!("{kind} channels are always {fixed}")))
        }
        (Some(fixed), _) => Ok(fixed),
        (None, Some(m)) => Ok(m),
        (None, None) => Err(ApiError::field("mode", "is required for custom channels: sync or async")),
    }
}

/// GET masks secrets as `********`; a client that sends a form back unchanged must not wipe them:
/// a masked value keeps what was stored (at any depth).
fn keep_masked(mut new: Map<String, Value>, old: &Map<String, Value>) -> Map<String, Value> {
    for (key, value) in new.iter_mut() {
        match value {
            Value::String(s) if s == crate::http::views::MASK => {
                if let Some(previous) = old.get(key) {
                    *value = previous.clone();
                }
            }
            Value::Object(inner) => {
                if let Some(Value::Object(previous)) = old.get(key) {
                    *value = Value::Object(keep_masked(std::mem::take(inner), previous));
                }
            }
            _ => {}
        }
    }
    new
}

/// Channel instances the caller may work in (all of them for admins).
#[utoipa::path(get, operation_id = "channels_list", path = "/api/v1/channels", tag = "channels", params(ChannelQuery), responses((status = 200, body = [ChannelView])))]
pub async fn list(state: State, p: Principal, q: web::Query<ChannelQuery>) -> ApiResult<web::Json<Vec<ChannelView>>> {
    let kind = match &q.kind {
        Some(kind) => Some(kind.parse::<ChannelKind>().map_err(|e| ApiError::field("kind", e))?),
        None => None,
    };
    let rows = store::channels::list(&state.store, &p.scope, kind).await?;
    Ok(web::Json(rows.into_iter().map(|c| ChannelView::new(c, p.is_admin())).collect()))
}

#[utoipa::path(get, operation_id = "channels_get", path = "/api/v1/channels/{id}", tag = "channels", params(("id" = i64, Path)),
    responses((status = 200, body = ChannelView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get(state: State, p: Principal, id: web::Path<i64>) -> ApiResult<web::Json<ChannelView>> {
    let c = store::channels::get(&state.store, *id, &p.scope).await?;
    Ok(web::Json(ChannelView::new(c, p.is_admin())))
}

/// Add a channel instance (super admin, CC-11). It is at once available to agent access, filters and rules (CC-2).
#[utoipa::path(post, operation_id = "channels_create", path = "/api/v1/channels", tag = "channels", request_body = CreateChannelRequest,
    responses((status = 201, body = ChannelView), (status = 400, body = crate::http::error::ErrorBody)))]
pub async fn create(
    state: State,
    SuperAdmin(p): SuperAdmin,
    body: crate::http::body::Body<CreateChannelRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let kind = ChannelKind::parse_offered(&body.kind).map_err(|e| ApiError::field("kind", e))?;
    if kind == ChannelKind::Email && body.settings.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::field("settings", MAILBOX_SETTINGS));
    }
    if kind == ChannelKind::Mattermost && body.settings.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::field(
            "settings",
            "Mattermost bots are connected with /api/v1/mattermost-channels, which checks the bot token",
        ));
    }
    if kind == ChannelKind::Zalo && body.settings.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::field("settings", ZALO_SETTINGS));
    }
    let name = name_field("name", &body.name, 100)?;
    let mode = resolve_mode(kind, body.mode.as_deref())?;
    let settings = settings_text(&body.settings.unwrap_or_default())?;
    let timeout = check_timeout(body.inactivity_timeout_s)?.unwrap_or(600);
    let channel = store::channels::create(
        &state.store,
        store::channels::CreateChannel {
            kind,
            name,
            mode,
            settings,
            secret: (kind == ChannelKind::Custom).then(random_secret),
            enabled: body.enabled.unwrap_or(true),
            inactivity_timeout_s: timeout,
            default_team_id: body.default_team_id,
        },
        actor(&p),
    )
    .await?;
    Ok(HttpResponse::Created().json(ChannelView::new(channel, true)))
}

/// Change a channel instance (super admin, CC-11); `enabled: true` also clears a server-set disabled reason.
#[utoipa::path(patch, operation_id = "channels_update", path = "/api/v1/channels/{id}", tag = "channels", params(("id" = i64, Path)), request_body = UpdateChannelRequest,
    responses((status = 200, body = ChannelView)))]
pub async fn update(
    state: State,
    SuperAdmin(p): SuperAdmin,
    id: web::Path<i64>,
    body: crate::http::body::Body<UpdateChannelRequest>,
) -> ApiResult<web::Json<ChannelView>> {
    let body = body.into_inner();
    let current = store::channels::get(&state.store, *id, &ChannelScope::All).await?;
    let kind = current.kind;
    let mode = match body.mode.as_deref() {
        Some(m) => Some(resolve_mode(kind, Some(m))?),
        None => None,
    };
    let name = match body.name.as_deref() {
        Some(n) => Some(name_field("name", n, 100)?),
        None => None,
    };
    let settings = match &body.settings {
        Some(_) if kind == ChannelKind::Email => return Err(ApiError::field("settings", MAILBOX_SETTINGS)),
        Some(_) if kind == ChannelKind::Zalo => return Err(ApiError::field("settings", ZALO_SETTINGS)),
        Some(s) => {
            let old: Map<String, Value> = serde_json::from_str(&current.settings).unwrap_or_default();
            Some(settings_text(&keep_masked(s.clone(), &old))?)
        }
        None => None,
    };
    let patch = store::channels::ChannelPatch {
        name,
        mode,
        settings,
        enabled: body.enabled,
        inactivity_timeout_s: check_timeout(body.inactivity_timeout_s)?,
        default_team_id: body.default_team_id,
        secret: None,
    };
    let c = store::channels::update(&state.store, *id, patch, actor(&p)).await?;
    if kind == ChannelKind::Email {
        // Enabled or disabled here: every node starts or stops its connector as the mailbox API would.
        state.mailboxes.changed(c.id).await;
    } else {
        state.changes.channel_changed(c.id);
    }
    Ok(web::Json(ChannelView::new(c, true)))
}

/// Delete a channel instance and its conversations (super admin, CC-11).
#[utoipa::path(delete, operation_id = "channels_delete", path = "/api/v1/channels/{id}", tag = "channels", params(("id" = i64, Path)), responses((status = 204)))]
pub async fn delete(state: State, SuperAdmin(p): SuperAdmin, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    store::channels::delete(&state.store, *id, actor(&p)).await?;
    // Every node forgets it; a mailbox's connector stops with it.
    state.mailboxes.changed(*id).await;
    Ok(HttpResponse::NoContent().finish())
}

/// The channel's newest outbound deliveries (admin): state, attempts, last error.
#[utoipa::path(get, operation_id = "channels_deliveries", path = "/api/v1/channels/{id}/deliveries", tag = "channels", params(("id" = i64, Path)),
    responses((status = 200, body = [DeliveryView])))]
pub async fn deliveries(state: State, Admin(_p): Admin, id: web::Path<i64>) -> ApiResult<web::Json<Vec<DeliveryView>>> {
    store::channels::get(&state.store, *id, &ChannelScope::All).await?;
    let rows = store::outbox::log_for_channel(&state.store, *id, 200).await?;
    Ok(web::Json(rows.into_iter().map(DeliveryView::numbered).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_secrets_are_kept_on_update() {
        let old: Map<String, Value> =
            serde_json::from_str(r#"{"password":"hunter2","host":"a","smtp":{"password":"p2","port":25}}"#).unwrap();
        let new: Map<String, Value> =
            serde_json::from_str(r#"{"password":"********","host":"b","smtp":{"password":"********","port":587}}"#)
                .unwrap();
        let merged = Value::Object(keep_masked(new, &old));
        assert_eq!(merged["password"], "hunter2");
        assert_eq!(merged["host"], "b");
        assert_eq!(merged["smtp"]["password"], "p2");
        assert_eq!(merged["smtp"]["port"], 587);
        let changed: Map<String, Value> = serde_json::from_str(r#"{"password":"new-one"}"#).unwrap();
        assert_eq!(keep_masked(changed, &old)["password"], "new-one");
    }

    #[test]
    fn the_openapi_kinds_are_the_offered_kinds() {
        let doc: Value = serde_json::from_str(&crate::http::openapi::document_json()).unwrap();
        let listed = &doc["components"]["schemas"]["OfferedChannelKind"]["enum"];
        let offered: Vec<&str> = ChannelKind::OFFERED.iter().map(|k| k.as_str()).collect();
        assert_eq!(listed, &serde_json::json!(offered), "{listed}");
    }
}
