//! Custom channels (CC-1…CC-14): an integrator's own messaging surface connected over HTTP.
//! Inbound calls arrive through the REST API (`http::handlers::custom_channels`); this module
//! owns the channel's settings and sends agent replies to the channel's webhook, signed, from the
//! outbox ([`deliver`]) through the outgoing-connection policy (`crate::outbound`: internal targets refused unless
//! allowed, no redirects — a 3xx is a failed attempt —, the answer's body read up to a small cap and dropped).
//! The wire contract lives in [`protocol`].

pub mod protocol;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::Source;
use crate::outbound::http_client::{HttpClient, drain_capped, refusal};
use crate::store::outbox::DeliveryContext;

/// A custom channel's settings (the channel instance's `settings` JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub webhook_url: String,
    /// Default properties and auto-assignment of new conversations (CC-12).
    #[serde(default)]
    pub routing: crate::store::channels::RoutingSettings,
}

impl Settings {
    /// A custom channel's settings text (what cannot be read reads as the defaults; the channel
    /// endpoints validate on the way in). `channels::settings::read` dispatches here by kind.
    pub fn of(settings_json: &str) -> Self {
        serde_json::from_str(settings_json).unwrap_or_default()
    }

    /// The webhook URL as agents see it: without user name, password, query string or fragment, where an
    /// integrator may have put a token (admins see it whole).
    pub fn webhook_url_for_agents(&self) -> String {
        match url::Url::parse(&self.webhook_url) {
            Ok(mut url) => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.set_query(None);
                url.set_fragment(None);
                url.to_string()
            }
            Err(_) => String::new(),
        }
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
    #[error("the receiver answered {0} (a redirect; redirects are not followed)")]
    Redirect(u16),
    /// Refused by the outgoing-connection policy (an internal target, credentials in the URL).
    #[error("{0}")]
    Refused(String),
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
            sent_via_rule: u8::from(m.source == Source::Rule),
            b_from_api: u8::from(m.source == Source::Api),
            created_at: m.created_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        },
    }
}

/// POST one delivery to the channel's webhook. Success is a 2xx within [`protocol::TIMEOUT`].
pub async fn deliver(
    http: &HttpClient,
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
        .map_err(|e| DeliveryError::Refused(e.to_string()))?
        .timeout(protocol::TIMEOUT)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(protocol::HEADER_EVENT, protocol::EVENT)
        .header(protocol::HEADER_DELIVERY, delivery_id)
        .header(protocol::HEADER_TIMESTAMP, timestamp.to_string())
        .header(protocol::HEADER_SIGNATURE, protocol::signature(secret, timestamp, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| match refusal(&e) {
            Some(refused) => DeliveryError::Refused(refused.to_string()),
            None => DeliveryError::Network(without_url(&e)),
        })?;
    let status = response.status();
    // Read a little (so a short answer leaves the connection reusable), never the whole of a long one.
    drain_capped(response, Duration::from_secs(2)).await;
    if status.is_success() {
        Ok(())
    } else if status.is_redirection() {
        Err(DeliveryError::Redirect(status.as_u16()))
    } else {
        Err(DeliveryError::Status(status.as_u16()))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_see_the_webhook_url_without_credentials_or_query() {
        let s = |url: &str| Settings { webhook_url: url.into(), ..Default::default() }.webhook_url_for_agents();
        assert_eq!(
            s("https://user:pw@hooks.example.com:8443/in/x?token=abc#frag"),
            "https://hooks.example.com:8443/in/x"
        );
        assert_eq!(s("https://hooks.example.com/in"), "https://hooks.example.com/in");
        assert_eq!(s("not a url"), "");
    }
}
