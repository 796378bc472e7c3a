//! The dispatcher's Zalo route (ZL-6): one agent reply, as Zalo messages in order — its text, then each file (an
//! image is uploaded and sent as a media template; any other file is uploaded and sent by its token). Each part
//! Zalo takes is recorded at once with the `message_id` Zalo gave (`store::zalo::record_sent`), so a retry sends
//! only what is left, never a part twice, and the part's `oa_send_*` echo is recognised.
//!
//! A non-zero `error` in Zalo's answer: a token error (`protocol::TOKEN_ERRORS`) refreshes the tokens
//! (`tokens::refresh`, one node at a time) and tries once more; any other is recorded on the message as failed
//! (the agent sees it in `MessageView.delivery.error`). The network and Zalo's 5xx are retried by the dispatcher.

use super::Settings;
use super::api::{Client, ZaloError};
use super::protocol;
use super::tokens::{self, TokenError};
use crate::blobs::Blobs;
use crate::outbound::http_client::HttpClient;
use crate::store::outbox::DeliveryContext;
use crate::store::zalo::Tokens;
use crate::store::{self, Store};

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Try again later (with the dispatcher's backoff).
    Retry(String),
    /// Recorded as failed, with why.
    Failed(String),
    /// The store was unavailable: record nothing, the claim lapses.
    Lapse,
}

/// One part of a reply.
enum Part<'a> {
    Text(&'a str),
    Image(&'a store::models::Attachment),
    File(&'a store::models::Attachment),
}

fn failed(e: &ZaloError) -> Outcome {
    match e {
        e if e.is_transient() => Outcome::Retry(e.to_string()),
        ZaloError::Refused(why) => Outcome::Failed(format!("the API URL cannot be used: {why}")),
        other => Outcome::Failed(other.to_string()),
    }
}

fn token_outcome(e: TokenError) -> Outcome {
    match e {
        TokenError::Store(_) => Outcome::Lapse,
        TokenError::Unavailable(why) => Outcome::Retry(why),
        other => Outcome::Failed(other.to_string()),
    }
}

/// Send one reply (see the module docs).
pub async fn deliver(http: &HttpClient, store: &Store, blobs: &Blobs, ctx: &DeliveryContext) -> Outcome {
    let channel_id = ctx.channel.id;
    let Some(settings) = Settings::of(&ctx.channel.settings) else {
        return Outcome::Failed("this Zalo channel has no Official Account connected".into());
    };
    let Some(customer) = ctx.external_id.as_deref() else {
        return Outcome::Failed("the customer has no Zalo id on this channel".into());
    };
    let mut parts = Vec::new();
    if !ctx.message.body_text.trim().is_empty() {
        parts.push(Part::Text(&ctx.message.body_text));
    }
    for a in &ctx.attachments {
        if matches!(a.mime_type.as_str(), "image/jpeg" | "image/png" | "image/gif") {
            parts.push(Part::Image(a));
        } else {
            parts.push(Part::File(a));
        }
    }
    let done = match store::zalo::sent_parts(store, ctx.message.id).await {
        Ok(n) => n as usize,
        Err(_) => return Outcome::Lapse,
    };
    let mut tokens = match tokens::current(store, channel_id).await {
        Ok(t) => t,
        Err(e) => return token_outcome(e),
    };
    let client = Client::new(http.clone(), &settings.api_base_url);
    for (i, part) in parts.iter().enumerate().skip(done) {
        let body = match part {
            Part::Text(text) => Ok(protocol::text_message(customer, text)),
            Part::Image(a) | Part::File(a) => {
                let bytes = match blobs.get(&a.storage_key).await {
                    Ok(b) => b,
                    Err(e) => return Outcome::Failed(format!("the attachment {} cannot be read: {e}", a.file_name)),
                };
                let image = matches!(part, Part::Image(_));
                let uploaded = with_token(http, store, channel_id, &settings, &mut tokens, |token| {
                    let (client, bytes) = (client.clone(), bytes.clone());
                    let (name, mime) = (a.file_name.clone(), a.mime_type.clone());
                    async move {
                        if image {
                            client.upload_image(&token, &name, &mime, &bytes).await
                        } else {
                            client.upload_file(&token, &name, &mime, &bytes).await
                        }
                    }
                })
                .await;
                uploaded.map(|id| {
                    if image { protocol::image_message(customer, &id) } else { protocol::file_message(customer, &id) }
                })
            }
        };
        let body = match body {
            Ok(b) => b,
            Err(outcome) => return outcome,
        };
        let sent = with_token(http, store, channel_id, &settings, &mut tokens, |token| {
            let (client, body) = (client.clone(), body.clone());
            async move { client.send(&token, &body).await }
        })
        .await;
        let zalo_msg_id = match sent {
            Ok(id) => id,
            Err(outcome) => return outcome,
        };
        // Recorded before the next part: a retry after a crash here sends only what is left.
        let mut wait = std::time::Duration::from_millis(50);
        loop {
            match store::zalo::record_sent(store, channel_id, ctx.message.id, i as i64, &zalo_msg_id).await {
                Ok(()) => break,
                Err(e) if wait < std::time::Duration::from_secs(5) => {
                    tracing::warn!(channel_id, error = %e, "cannot record a sent Zalo message; trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => return Outcome::Failed(format!("sent, but its Zalo id could not be recorded: {e}")),
            }
        }
    }
    Outcome::Sent
}

/// A call with the current access token; a token error refreshes the tokens and calls once more.
async fn with_token<T, F, Fut>(
    http: &HttpClient,
    store: &Store,
    channel_id: i64,
    settings: &Settings,
    tokens: &mut Tokens,
    call: F,
) -> Result<T, Outcome>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, ZaloError>>,
{
    match call(tokens.access_token.clone()).await {
        Ok(v) => Ok(v),
        Err(e) if e.is_token_error() => {
            tracing::info!(error = %e, "Zalo refused the access token; refreshing it");
            *tokens = match tokens::refresh(http, store, channel_id, settings, tokens).await {
                Ok(t) => t,
                Err(e) => return Err(token_outcome(e)),
            };
            call(tokens.access_token.clone()).await.map_err(|e| failed(&e))
        }
        Err(e) => Err(failed(&e)),
    }
}
