//! The outbox dispatcher: delivers queued replies with retries and backoff (DESIGN invariant 1,
//! CC-7, EO-3). Every node runs one; a delivery is claimed in the store before it is sent, so
//! two nodes never send the same one at once, and only the oldest pending delivery of a
//! conversation is ever due, so a conversation's replies arrive in order.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::custom;
use crate::blobs::Blobs;
use crate::realtime::Realtime;
use crate::store::models::OutboxItem;
use crate::store::{self, Store};

const POLL: Duration = Duration::from_millis(200);
/// How long a claim lasts: longer than the slowest attempt (10 s timeout) with room to spare.
const CLAIM: Duration = Duration::from_secs(60);
const PARALLEL: usize = 16;
const BATCH: i64 = 500;

/// Start delivering. `public_url` builds attachment links; `scale` shrinks the retry schedule.
pub fn start(rt: Realtime, blobs: Blobs, public_url: String, scale: f64) {
    let http = reqwest::Client::builder()
        .user_agent(concat!("Switchboard/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    let slots = Arc::new(Semaphore::new(PARALLEL));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut due = Vec::new();
            for route in [Route::Webhook, Route::Mail, Route::Notify] {
                match store::outbox::due(&rt.store, route.channel_kinds(), route.delivery_kinds(), BATCH).await {
                    Ok(items) => due.extend(items.into_iter().map(|i| (route, i))),
                    Err(e) => tracing::warn!(error = %e, "outbox: cannot read due deliveries"),
                }
            }
            for (route, item) in due {
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
                let (store, http, public_url, blobs) =
                    (rt.store.clone(), http.clone(), public_url.clone(), blobs.clone());
                tokio::spawn(async move {
                    let out = Out { store: &store, http: &http, blobs: &blobs, public_url: &public_url };
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
    /// Mail to an agent (the offline owner of a new conversation's customer, CC-12), whatever the channel.
    Notify,
}

impl Route {
    fn channel_kinds(self) -> &'static [&'static str] {
        match self {
            Route::Webhook => &["custom"],
            Route::Mail => &["email"],
            Route::Notify => &["custom", "email", "mattermost", "zalo"],
        }
    }

    fn delivery_kinds(self) -> &'static [&'static str] {
        match self {
            Route::Webhook | Route::Mail => &["message.created"],
            Route::Notify => &[super::routing::OWNER_OFFLINE_EMAIL],
        }
    }
}

/// What an attempt needs.
struct Out<'a> {
    store: &'a Store,
    http: &'a reqwest::Client,
    blobs: &'a Blobs,
    public_url: &'a str,
}

/// A failed attempt: retried with backoff unless it is permanent.
struct Failed {
    reason: String,
    permanent: bool,
}

async fn attempt(out: &Out<'_>, route: Route, item: &OutboxItem, scale: f64) {
    let span = tracing::info_span!("delivery", id = item.id, delivery = %item.delivery_id, attempt = item.attempts + 1, ?route);
    let _enter = span.enter();
    let outcome = match route {
        Route::Webhook => webhook(out, item).await,
        Route::Mail => match item.message_id {
            Some(message_id) => super::email::outgoing::deliver(out.store, out.blobs, message_id)
                .await
                .map_err(|f| Failed { permanent: !f.transient, reason: f.reason }),
            None => Err(Failed { reason: "nothing to deliver".into(), permanent: true }),
        },
        Route::Notify => super::email::outgoing::notify_owner(out.store, &item.payload, out.public_url)
            .await
            .map_err(|f| Failed { permanent: !f.transient, reason: f.reason }),
    };
    let outcome = match outcome {
        Ok(()) => Ok(()),
        Err(Failed { reason, permanent: _ }) if reason.is_empty() => return, // the claim lapses; tried again
        Err(f) => Err(f),
    };
    let next = match &outcome {
        Ok(()) => {
            metrics::counter!("switchboard_deliveries_total", "result" => "delivered").increment(1);
            None
        }
        Err(Failed { reason, permanent: true }) => {
            metrics::counter!("switchboard_deliveries_total", "result" => "failed").increment(1);
            tracing::warn!(%reason, "delivery failed for good");
            Some(None)
        }
        Err(Failed { reason, permanent: false }) => {
            metrics::counter!("switchboard_deliveries_total", "result" => "retry").increment(1);
            let age = (store::now() - item.created_at).to_std().unwrap_or_default();
            let retry = custom::protocol::next_retry((item.attempts + 1) as u32, age, scale);
            tracing::info!(%reason, retry_in = ?retry, "delivery failed");
            Some(retry.map(|w| store::now() + chrono::Duration::from_std(w).unwrap_or_default()))
        }
    };
    if let Err(e) = store::outbox::finish(out.store, item.id, outcome.err().map(|f| f.reason), next).await {
        tracing::warn!(error = %e, "outbox: cannot record the outcome");
    }
}

/// The signed reply webhook of a custom channel. An empty reason means "could not even load it":
/// the claim lapses and the delivery is tried again.
async fn webhook(out: &Out<'_>, item: &OutboxItem) -> Result<(), Failed> {
    let (store, http, public_url) = (out.store, out.http, out.public_url);
    let outcome = match item.message_id {
        Some(message_id) => match store::outbox::context(store, message_id).await {
            Ok(Some(ctx)) => {
                custom::deliver(http, &ctx, &item.delivery_id, public_url).await.map_err(|e| e.to_string())
            }
            Ok(None) => Err("the message no longer exists".to_owned()),
            Err(e) => {
                tracing::warn!(error = %e, "outbox: cannot load the message");
                Err(String::new())
            }
        },
        None => Err("nothing to deliver".to_owned()),
    };
    outcome.map_err(|reason| Failed { reason, permanent: false })
}
