//! The instance's email notification settings (issue #18, NT-1…NT-13): read and change them, admins only.
//! The rules they drive live in `domain::mail_notifications`; the stored row in `store::mail_notifications`.

use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::actor;
use crate::domain::mail_notifications::NotificationSettings;
use crate::http::State;
use crate::http::error::ApiResult;
use crate::http::session::Admin;
use crate::store;

/// Every email notification setting (defaults on a new install: all on but `cc_subscribers` and
/// `customer_updates_technicians_only`).
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationSettingsView {
    /// NT-1: email notifications on or off (agent replies to customers are sent either way).
    pub enabled: bool,
    /// NT-2: "ticket closed" to the submitter.
    pub ticket_closed: bool,
    /// NT-3: a confirmation to the submitter, only for tickets submitted by email.
    pub ticket_confirmation: bool,
    /// NT-4: every new ticket to all admins.
    pub new_ticket_admins: bool,
    /// NT-5: new tickets, and tickets moved into a category, to its agents (not those who saw it in the old one).
    pub new_ticket_category: bool,
    /// NT-6: a customer's update to all agents of the ticket's category, assigned or not.
    pub customer_update_category: bool,
    /// NT-7: a changed knowledge-base article to the agents of its category (sent once the KB exists).
    pub kb_article_category: bool,
    /// NT-8: another agent took a ticket — to the category's other agents.
    pub ticket_taken_category: bool,
    /// NT-9: the ticket's files in notifications; off also stops serving mail's inline images to customers.
    pub include_attachments: bool,
    /// NT-10: auto-login links in mail to customers (never agents), valid 3 days.
    pub auto_login_links: bool,
    /// NT-11: one mail with all subscribers in Cc instead of one each (drops auto-login and rating links).
    pub cc_subscribers: bool,
    /// NT-12: a customer's email update goes to technicians only, never to the other subscribers.
    pub customer_updates_technicians_only: bool,
    /// NT-13: a welcome mail for new customer accounts.
    pub welcome_email: bool,
}

impl From<NotificationSettings> for NotificationSettingsView {
    fn from(s: NotificationSettings) -> Self {
        NotificationSettingsView {
            enabled: s.enabled,
            ticket_closed: s.ticket_closed,
            ticket_confirmation: s.ticket_confirmation,
            new_ticket_admins: s.new_ticket_admins,
            new_ticket_category: s.new_ticket_category,
            customer_update_category: s.customer_update_category,
            kb_article_category: s.kb_article_category,
            ticket_taken_category: s.ticket_taken_category,
            include_attachments: s.include_attachments,
            auto_login_links: s.auto_login_links,
            cc_subscribers: s.cc_subscribers,
            customer_updates_technicians_only: s.customer_updates_technicians_only,
            welcome_email: s.welcome_email,
        }
    }
}

/// The settings to change; fields left out keep their value. Unknown fields are refused (400) and nothing changes.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNotificationSettingsRequest {
    pub enabled: Option<bool>,
    pub ticket_closed: Option<bool>,
    pub ticket_confirmation: Option<bool>,
    pub new_ticket_admins: Option<bool>,
    pub new_ticket_category: Option<bool>,
    pub customer_update_category: Option<bool>,
    pub kb_article_category: Option<bool>,
    pub ticket_taken_category: Option<bool>,
    pub include_attachments: Option<bool>,
    pub auto_login_links: Option<bool>,
    pub cc_subscribers: Option<bool>,
    pub customer_updates_technicians_only: Option<bool>,
    pub welcome_email: Option<bool>,
}

#[utoipa::path(get, operation_id = "notification_settings_get", path = "/api/v1/settings/notifications",
    tag = "settings", responses((status = 200, body = NotificationSettingsView)))]
pub async fn get(state: State, Admin(_p): Admin) -> ApiResult<web::Json<NotificationSettingsView>> {
    Ok(web::Json(store::mail_notifications::settings(&state.store).await?.into()))
}

#[utoipa::path(patch, operation_id = "notification_settings_update", path = "/api/v1/settings/notifications",
    tag = "settings", request_body = UpdateNotificationSettingsRequest,
    responses((status = 200, body = NotificationSettingsView)))]
pub async fn update(
    state: State,
    Admin(p): Admin,
    body: crate::http::body::Body<UpdateNotificationSettingsRequest>,
) -> ApiResult<web::Json<NotificationSettingsView>> {
    // Typed on the way in (unknown names and non-booleans are refused with 400 by the body extractor); the fields
    // given become the change, by their API names.
    let serde_json::Value::Object(mut changes) =
        serde_json::to_value(body.into_inner()).map_err(crate::http::error::ApiError::internal)?
    else {
        unreachable!("a struct of options serialises to an object")
    };
    changes.retain(|_, v| !v.is_null());
    let s = store::mail_notifications::update_settings(&state.store, changes, actor(&p)).await?;
    Ok(web::Json(s.into()))
}
