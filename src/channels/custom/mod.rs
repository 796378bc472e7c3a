//! Custom channels (CC-1…CC-14): an integrator's own messaging surface connected over HTTP.
//! Inbound calls arrive through the REST API (`http::handlers::custom_channels`); this module
//! owns the channel's settings and sends agent replies to the channel's webhook, signed, from the
//! outbox ([`deliver`]). The wire contract lives in [`protocol`].

pub mod protocol;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::outbox::DeliveryContext;

/// A custom channel's settings (the channel instance's `settings` JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub webhook_url: String,
    /// Default properties and auto-assignment of new conversations (CC-12).
    #[serde(default)]
    pub routing: crate::channels::routing::RoutingSettings,
}

impl Settings {
    pub fn of(settings_json: &str) -> Self {
        serde_json::from_str(settings_json).unwrap_or_default()
    }
}

/// Why a delivery did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the channel has no webhook URL")]
    NoWebhook,
    #[error("the channel has no signing secret")]
    NoSecret,
    #[error("the receiver answered {0}")]
    Status(u16),
    #[error("{0}")]
    Network(String),
}

/// The webhook body of a delivery.
pub fn webhook(ctx: &DeliveryContext, public_url: &str) -> protocol::Webhook {
    let m = &ctx.message;
    protocol::Webhook {
        event: protocol::EVENT,
        channel: ctx.channel.id,
        conversation_id: ctx.conversation.id,
        number: ctx.conversation.number.to_string(),
        user_id: ctx.conversation.customer_id,
        user_custom_id: ctx.external_id.clone().unwrap_or_default(),
        message: protocol::Message {
            message_id: m.id,
            content: m.body_text.clone(),
            content_html: m.body_html.clone().unwrap_or_default(),
            staff_id: m.author_agent_id.unwrap_or(0),
            staff_name: ctx.author_name.clone(),
            attachments: ctx
                .attachments
                .iter()
                .map(|a| protocol::Attachment {
                    file_name: a.file_name.clone(),
                    file_size: a.size_bytes,
                    mime_type: a.mime_type.clone(),
                    url: format!("{public_url}/api/v1/attachments/{}", a.id),
                })
                .collect(),
            quoted_message_id: m.quoted_message_id,
            sent_via_rule: u8::from(m.source == "rule"),
            b_from_api: u8::from(m.source == "api"),
            created_at: m.created_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        },
    }
}

/// POST one delivery to the channel's webhook. Success is a 2xx within [`protocol::TIMEOUT`].
pub async fn deliver(
    http: &reqwest::Client,
    ctx: &DeliveryContext,
    delivery_id: &str,
    public_url: &str,
) -> Result<(), DeliveryError> {
    let settings = Settings::of(&ctx.channel.settings);
    if settings.webhook_url.is_empty() {
        return Err(DeliveryError::NoWebhook);
    }
    let secret = ctx.channel.secret.as_deref().ok_or(DeliveryError::NoSecret)?;
    let body = serde_json::to_vec(&webhook(ctx, public_url)).map_err(|e| DeliveryError::Network(e.to_string()))?;
    let timestamp = chrono::Utc::now().timestamp();
    let response = http
        .post(&settings.webhook_url)
        .timeout(protocol::TIMEOUT)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(protocol::HEADER_EVENT, protocol::EVENT)
        .header(protocol::HEADER_DELIVERY, delivery_id)
        .header(protocol::HEADER_TIMESTAMP, timestamp.to_string())
        .header(protocol::HEADER_SIGNATURE, protocol::signature(secret, timestamp, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| DeliveryError::Network(without_url(&e)))?;
    let status = response.status();
    // Drain (bounded) so the connection can be reused.
    let _ = tokio::time::timeout(Duration::from_secs(2), response.bytes()).await;
    if status.is_success() { Ok(()) } else { Err(DeliveryError::Status(status.as_u16())) }
}

/// reqwest errors name the URL, which may carry credentials; keep the kind only.
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        e.without_url_ref().to_string()
    }
}

trait WithoutUrlRef {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrlRef for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let text = self.to_string();
        match self.url() {
            Some(u) => text.replace(u.as_str(), "<webhook>"),
            None => text,
        }
    }
}
