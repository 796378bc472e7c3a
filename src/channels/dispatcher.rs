//! The outbox dispatcher: delivers queued replies with retries and backoff (DESIGN invariant 1,
//! CC-7, EO-3). Every node runs one; a delivery is claimed in the store before it is sent, so
//! two nodes never send the same one at once, and only the oldest pending delivery of a
//! conversation is ever due, so a conversation's replies arrive in order.
//!
//! The loop and every attempt run under the node's [`Shutdown`]: when the node stops, nothing
//! more is claimed, and an attempt cut short records nothing — its claim lapses and the delivery
//! is tried again (by this node after a restart, or by another one), with the same delivery id.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::custom;
use crate::blobs::Blobs;
use crate::changes::Changes;
use crate::domain::ChannelKind;
use crate::outbound::Policy;
use crate::outbound::http_client::HttpClient;
use crate::portal::links::Links;
use crate::shutdown::Shutdown;
use crate::store::models::OutboxItem;
use crate::store::{self, Store};

const POLL: Duration = Duration::from_millis(200);
/// How long a claim lasts: longer than the slowest attempt (10 s timeout) with room to spare.
const CLAIM: Duration = Duration::from_secs(60);
const PARALLEL: usize = 16;
const BATCH: i64 = 500;

/// Start delivering. `links` signs the customer links notification mail carries (issue #18); `public_url` builds attachment links; `scale` shrinks the retry schedule; `policy` says which
/// internal targets webhooks and SMTP may reach. Runs until `shutdown` stops the node.
pub fn start(
    rt: Changes,
    blobs: Blobs,
    links: Links,
    public_url: String,
    scale: f64,
    policy: Policy,
    shutdown: &Shutdown,
) {
    let http = HttpClient::new(policy.clone());
    let slots = Arc::new(Semaphore::new(PARALLEL));
    let attempts = shutdown.clone();
    shutdown.spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut due = Vec::new();
            for route in [Route::Webhook, Route::Mail, Route::Mattermost, Route::Zalo, Route::Notify] {
                match store::outbox::due(&rt.store, route.channel_kinds(), route.delivery_kinds(), BATCH).await {
                    Ok(items) => due.extend(items.into_iter().map(|i| (route, i))),
                    Err(e) => tracing::warn!(error = %e, "outbox: cannot read due deliveries"),
                }
            }
            for (route, item) in due {
                if attempts.is_stopping() {
                    return;
                }
                let until = store::now() + chrono::Duration::from_std(CLAIM).unwrap_or_default();
                match store::outbox::claim(&rt.store, item.id, until).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox: cannot claim");
                        continue;
                    }
                }
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (changes, http, public_url, blobs, policy, links) =
                    (rt.clone(), http.clone(), public_url.clone(), blobs.clone(), policy.clone(), links.clone());
                attempts.spawn(async move {
                    let out = Out {
                        store: &changes.store,
                        changes: &changes,
                        http: &http,
                        policy: &policy,
                        blobs: &blobs,
                        public_url: &public_url,
                        links: &links,
                    };
                    attempt(&out, route, &item, scale).await;
                    drop(permit);
                });
            }
        }
    });
}

/// Which connector delivers an item.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// Custom channels: the signed reply webhook (CC-7).
    Webhook,
    /// Mailboxes: SMTP (EO-1).
    Mail,
    /// Mattermost bots: `POST /posts` as the bot (MM-7, MM-8).
    Mattermost,
    /// Zalo Official Accounts: the OA send API (ZL-6).
    Zalo,
    /// System mail, whatever the channel: to an agent (the offline owner of a new conversation's customer, CC-12;
    /// an agent mentioned in a note while away, #17; an invitation, #17), the notification mail of #18 (NT-1…NT-13),
    /// or to a customer (the portal's "set your password" link, `email.customer_password`, issue #18).
    Notify,
}

impl Route {
    fn channel_kinds(self) -> &'static [ChannelKind] {
        match self {
            Route::Webhook => &[ChannelKind::Custom],
            Route::Mail => &[ChannelKind::Email],
            Route::Mattermost => &[ChannelKind::Mattermost],
            Route::Zalo => &[ChannelKind::Zalo],
            Route::Notify => ChannelKind::ALL,
        }
    }

    fn delivery_kinds(self) -> &'static [&'static str] {
        match self {
            Route::Webhook | Route::Mail | Route::Mattermost | Route::Zalo => &["message.created"],
            Route::Notify => &[
                crate::store::feed::OWNER_OFFLINE_EMAIL,
                crate::store::notifications::MENTION_EMAIL,
                crate::store::invitations::INVITATION_EMAIL,
                crate::store::mail_notifications::NOTIFICATION_EMAIL,
                crate::store::portal::PASSWORD_EMAIL,
            ],
        }
    }
}

/// What an attempt needs.
struct Out<'a> {
    store: &'a Store,
    /// Publishes what an attempt's outcome changed (`message.updated`).
    changes: &'a Changes,
    http: &'a HttpClient,
    policy: &'a Policy,
    blobs: &'a Blobs,
    public_url: &'a str,
    /// Signs the customer links (auto-login, rating, unsubscribe) notification mail carries (issue #18).
    #[allow(dead_code)]
    links: &'a Links,
}

/// Why an attempt did not deliver.
enum Failed {
    /// Tried again with backoff (the receiver is down, a 4xx from SMTP, …).
    Retry(String),
    /// Recorded as failed for an admin to see (a 5xx rejection, no address to send to).
    GiveUp(String),
    /// Not even loaded (the store was unavailable): nothing is recorded, the claim lapses and the
    /// delivery is tried again.
    Lapse,
}

impl From<super::email::outgoing::SendFailure> for Failed {
    fn from(f: super::email::outgoing::SendFailure) -> Self {
        if f.transient { Failed::Retry(f.reason) } else { Failed::GiveUp(f.reason) }
    }
}

async fn attempt(out: &Out<'_>, route: Route, item: &OutboxItem, scale: f64) {
    let span = tracing::info_span!("delivery", id = item.id, delivery = %item.delivery_id, attempt = item.attempts + 1, ?route);
    let _enter = span.enter();
    let outcome = match route {
        Route::Webhook => webhook(out, item).await,
        Route::Mail => match item.message_id {
            Some(message_id) => super::email::outgoing::deliver(out.store, out.blobs, out.policy, message_id)
                .await
                .map_err(Failed::from),
            None => Err(Failed::GiveUp("nothing to deliver".into())),
        },
        Route::Mattermost => mattermost(out, item).await,
        Route::Zalo => zalo(out, item).await,
        Route::Notify if item.kind == crate::store::invitations::INVITATION_EMAIL => {
            super::email::outgoing::invitation(out.store, out.policy, &item.payload, out.public_url)
                .await
                .map_err(Failed::from)
        }
        // Issue #18's notification mail (NT-1…NT-13), composed by `notification_mail::compose`.
        Route::Notify if item.kind == crate::store::mail_notifications::NOTIFICATION_EMAIL => {
            super::email::notification_mail::deliver(out.store, out.blobs, out.policy, out.links, item)
                .await
                .map_err(Failed::from)
        }
        Route::Notify if item.kind == crate::store::portal::PASSWORD_EMAIL => {
            super::email::outgoing::customer_password(out.store, out.policy, &item.payload, out.public_url)
                .await
                .map_err(Failed::from)
        }
        Route::Notify => super::email::outgoing::notify_owner(out.store, out.policy, &item.payload, out.public_url)
            .await
            .map_err(Failed::from),
    };
    let (error, next) = match outcome {
        Ok(()) => {
            metrics::counter!("switchboard_deliveries_total", "result" => "delivered").increment(1);
            (None, None)
        }
        Err(Failed::Lapse) => return,
        Err(Failed::GiveUp(reason)) => {
            metrics::counter!("switchboard_deliveries_total", "result" => "failed").increment(1);
            tracing::warn!(%reason, "delivery failed for good");
            (Some(reason), Some(None))
        }
        Err(Failed::Retry(reason)) => {
            metrics::counter!("switchboard_deliveries_total", "result" => "retry").increment(1);
            let age = (store::now() - item.created_at).to_std().unwrap_or_default();
            let retry = custom::protocol::next_retry((item.attempts + 1) as u32, age, scale);
            tracing::info!(%reason, retry_in = ?retry, "delivery failed");
            (Some(reason), Some(retry.map(|w| store::now() + chrono::Duration::from_std(w).unwrap_or_default())))
        }
    };
    match store::outbox::finish(out.store, item.id, error, next).await {
        Ok(events) => {
            if let Err(e) = out.changes.message_updated(&events).await {
                tracing::warn!(error = %e, "outbox: cannot publish the delivery state");
            }
        }
        Err(e) => tracing::warn!(error = %e, "outbox: cannot record the outcome"),
    }
}

/// The signed reply webhook of a custom channel.
async fn webhook(out: &Out<'_>, item: &OutboxItem) -> Result<(), Failed> {
    let Some(message_id) = item.message_id else { return Err(Failed::Retry("nothing to deliver".into())) };
    match store::outbox::context(out.store, message_id).await {
        Ok(Some(ctx)) => custom::deliver(out.http, &ctx, &item.delivery_id, out.public_url)
            .await
            .map_err(|e| Failed::Retry(e.to_string())),
        Ok(None) => Err(Failed::Retry("the message no longer exists".into())),
        Err(e) => {
            tracing::warn!(error = %e, "outbox: cannot load the message");
            Err(Failed::Lapse)
        }
    }
}

/// An agent reply posted by a Mattermost bot. A 4xx other than 429 (the channel or thread is gone, the bot was
/// removed from it) is recorded as failed; the rest is retried.
async fn mattermost(out: &Out<'_>, item: &OutboxItem) -> Result<(), Failed> {
    use super::mattermost::api::MmError;
    use super::mattermost::connector::{DeliveryError, deliver};
    let Some(message_id) = item.message_id else { return Err(Failed::GiveUp("nothing to deliver".into())) };
    let ctx = match store::outbox::context(out.store, message_id).await {
        Ok(Some(ctx)) => ctx,
        Ok(None) => return Err(Failed::GiveUp("the message no longer exists".into())),
        Err(e) => {
            tracing::warn!(error = %e, "outbox: cannot load the message");
            return Err(Failed::Lapse);
        }
    };
    match deliver(out.http, out.store, out.blobs, &ctx).await {
        Ok(()) => Ok(()),
        Err(DeliveryError::Api(MmError::Status { status, code })) if (400..500).contains(&status) => {
            Err(Failed::GiveUp(MmError::Status { status, code }.to_string()))
        }
        // No link for the conversation (an outbound one's is committed with it; an inbound one's may have moved on
        // to a newer conversation, or not be recorded yet): tried again later.
        Err(e @ DeliveryError::NoPlace) => Err(Failed::Retry(e.to_string())),
        Err(e @ (DeliveryError::NoSettings | DeliveryError::NoToken)) => Err(Failed::GiveUp(e.to_string())),
        Err(e) => Err(Failed::Retry(e.to_string())),
    }
}

/// An agent reply sent through a Zalo OA (ZL-6): text, images and files; a token Zalo refuses is refreshed and the
/// send tried once more. Zalo's other errors are recorded on the message as failed (shown to the agent); the
/// network and Zalo's 5xx are retried.
async fn zalo(out: &Out<'_>, item: &OutboxItem) -> Result<(), Failed> {
    use super::zalo::deliver::{Outcome, deliver};
    let Some(message_id) = item.message_id else { return Err(Failed::GiveUp("nothing to deliver".into())) };
    let ctx = match store::outbox::context(out.store, message_id).await {
        Ok(Some(ctx)) => ctx,
        Ok(None) => return Err(Failed::GiveUp("the message no longer exists".into())),
        Err(e) => {
            tracing::warn!(error = %e, "outbox: cannot load the message");
            return Err(Failed::Lapse);
        }
    };
    match deliver(out.http, out.store, out.blobs, &ctx).await {
        Outcome::Sent => Ok(()),
        Outcome::Retry(why) => Err(Failed::Retry(why)),
        Outcome::Failed(why) => Err(Failed::GiveUp(why)),
        Outcome::Lapse => Err(Failed::Lapse),
    }
}
