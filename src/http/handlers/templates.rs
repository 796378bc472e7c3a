//! Notification templates (TP-1…TP-3, issue #18 item 4): list, edit, reset and preview, admins only.
//!
//! The preview renders what was sent in the request (nothing is stored) against a REAL ticket the caller can
//! see (404 otherwise); without a `conversation_id` against the newest one, or a made-up ticket on an install
//! that has none.

use actix_web::web;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{actor, not_found_as};
use crate::domain::templates::{
    MaskContext, PlainLinks, Recipient, RecipientKind, TemplateKind, allowed_masks, render, unknown_masks,
};
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::session::Admin;
use crate::store;
use crate::store::templates::Template;
use crate::view::ts_opt;

/// The longest subject, in characters.
pub const MAX_SUBJECT: usize = 255;
/// The longest body, in characters.
pub const MAX_BODY: usize = 100_000;

/// One notification's template as it applies now.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    /// `ticket_confirmation`, `ticket_closed`, `ticket_updated`, `new_ticket_admin`, `new_ticket_category`,
    /// `customer_update`, `ticket_taken`, `kb_article_changed`, `welcome` or `password_reset`.
    pub kind: String,
    pub title: String,
    pub subject: String,
    /// Limited HTML with masks. Empty: this notification is not sent (TP-1).
    pub body: String,
    /// Whether the body is non-empty, so the notification is sent.
    pub sent: bool,
    /// Never edited, or reset: the default that ships.
    pub is_default: bool,
    /// Whether it goes to customers (else to agents).
    pub to_customers: bool,
    /// Masks in the subject or body this kind does not know (left as written when rendered).
    pub unknown_masks: Vec<String>,
    /// The masks this kind renders; `{N}`, `{id}` and `{prompt}` are placeholders.
    pub allowed_masks: Vec<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<Template> for TemplateView {
    fn from(t: Template) -> Self {
        let mut unknown = unknown_masks(t.kind, &t.subject);
        for m in unknown_masks(t.kind, &t.body) {
            if !unknown.contains(&m) {
                unknown.push(m);
            }
        }
        TemplateView {
            kind: t.kind.as_str().into(),
            title: t.kind.title().into(),
            sent: !t.body.trim().is_empty(),
            subject: t.subject,
            body: t.body,
            is_default: t.is_default,
            to_customers: t.kind.to_customers(),
            unknown_masks: unknown,
            allowed_masks: allowed_masks(t.kind).into_iter().map(str::to_owned).collect(),
            updated_at: ts_opt(t.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveTemplateRequest {
    /// One line of plain text with masks, at most 255 characters; required unless the body is empty.
    pub subject: String,
    /// Limited HTML with masks, at most 100,000 characters. Empty: the notification is not sent.
    pub body: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub subject: String,
    pub body: String,
    /// The ticket to render against; absent: the newest one the caller can see.
    pub conversation_id: Option<i64>,
}

/// A rendered preview.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewView {
    pub subject: String,
    /// Sanitised HTML, as the mail's HTML part.
    pub html: String,
    /// The mail's text part.
    pub text: String,
    /// False when the body is empty: this notification would not be sent.
    pub sent: bool,
    pub unknown_masks: Vec<String>,
    /// The ticket rendered against; `null`: a made-up example (no tickets yet).
    pub conversation_id: Option<i64>,
}

fn kind_of(kind: &str) -> ApiResult<TemplateKind> {
    kind.parse().map_err(|_| ApiError::not_found("notification template"))
}

fn check(subject: &str, body: &str) -> ApiResult<()> {
    if subject.chars().count() > MAX_SUBJECT {
        return Err(ApiError::field("subject", format!("at most {MAX_SUBJECT} characters")));
    }
    if subject.chars().any(char::is_control) {
        return Err(ApiError::field("subject", "one line, no control characters"));
    }
    if body.chars().count() > MAX_BODY {
        return Err(ApiError::field("body", format!("at most {MAX_BODY} characters")));
    }
    if !body.trim().is_empty() && subject.trim().is_empty() {
        return Err(ApiError::field("subject", "required unless the body is empty (not sent)"));
    }
    Ok(())
}

/// Every notification's template.
#[utoipa::path(get, operation_id = "notification_templates_list", path = "/api/v1/notification-templates", tag = "notification templates",
    responses((status = 200, body = [TemplateView])))]
pub async fn list(state: State, Admin(_p): Admin) -> ApiResult<web::Json<Vec<TemplateView>>> {
    let rows = store::templates::list(&state.store).await?;
    Ok(web::Json(rows.into_iter().map(TemplateView::from).collect()))
}

#[utoipa::path(get, operation_id = "notification_templates_get", path = "/api/v1/notification-templates/{kind}", tag = "notification templates",
    params(("kind" = String, Path)), responses((status = 200, body = TemplateView)))]
pub async fn get(state: State, Admin(_p): Admin, kind: web::Path<String>) -> ApiResult<web::Json<TemplateView>> {
    let kind = kind_of(&kind)?;
    Ok(web::Json(store::templates::get(&state.store, kind).await?.into()))
}

/// Store a template. An empty body means the notification is not sent (TP-1).
#[utoipa::path(put, operation_id = "notification_templates_save", path = "/api/v1/notification-templates/{kind}", tag = "notification templates",
    params(("kind" = String, Path)), request_body = SaveTemplateRequest, responses((status = 200, body = TemplateView)))]
pub async fn save(
    state: State,
    Admin(p): Admin,
    kind: web::Path<String>,
    body: crate::http::body::Body<SaveTemplateRequest>,
) -> ApiResult<web::Json<TemplateView>> {
    let kind = kind_of(&kind)?;
    check(&body.subject, &body.body)?;
    let t = store::templates::save(&state.store, kind, body.subject.trim(), &body.body, actor(&p)).await?;
    Ok(web::Json(t.into()))
}

/// Back to the default that ships.
#[utoipa::path(delete, operation_id = "notification_templates_reset", path = "/api/v1/notification-templates/{kind}", tag = "notification templates",
    params(("kind" = String, Path)), responses((status = 200, body = TemplateView)))]
pub async fn reset(state: State, Admin(p): Admin, kind: web::Path<String>) -> ApiResult<web::Json<TemplateView>> {
    let kind = kind_of(&kind)?;
    Ok(web::Json(store::templates::reset(&state.store, kind, actor(&p)).await?.into()))
}

/// Render a subject and body (nothing stored) against a real ticket.
#[utoipa::path(post, operation_id = "notification_templates_preview", path = "/api/v1/notification-templates/{kind}/preview", tag = "notification templates",
    params(("kind" = String, Path)), request_body = PreviewRequest, responses((status = 200, body = PreviewView)))]
pub async fn preview(
    state: State,
    Admin(p): Admin,
    kind: web::Path<String>,
    body: crate::http::body::Body<PreviewRequest>,
) -> ApiResult<web::Json<PreviewView>> {
    let kind = kind_of(&kind)?;
    check(&body.subject, &body.body)?;
    let links = PlainLinks { public_url: state.settings.public_url.clone() };
    let id = match body.conversation_id {
        Some(id) => Some(id),
        None => store::templates::newest_conversation(&state.store, &p.scope).await?,
    };
    let me =
        Recipient { kind: RecipientKind::Agent, id: Some(p.agent_id), name: p.name.clone(), email: p.email.clone() };
    let what_happened = format!("{} (preview)", kind.title());
    let ctx = match id {
        Some(id) => {
            let facts = store::templates::facts(&state.store, id, &p.scope)
                .await
                .map_err(|e| not_found_as(e, "conversation"))?;
            let recipient = if kind.to_customers() { facts.submitter_recipient() } else { me };
            store::templates::build(&facts, &recipient, &what_happened, &links)
        }
        None => MaskContext {
            what_happened,
            ..MaskContext::example(&format!("{}/tickets/1", state.settings.public_url.trim_end_matches('/')))
        },
    };
    let rendered = render(kind, &body.subject, &body.body, &ctx);
    let mut unknown = unknown_masks(kind, &body.subject);
    for m in unknown_masks(kind, &body.body) {
        if !unknown.contains(&m) {
            unknown.push(m);
        }
    }
    Ok(web::Json(PreviewView {
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        sent: !body.body.trim().is_empty(),
        unknown_masks: unknown,
        conversation_id: id,
    }))
}
