//! The outbox dispatcher: delivers queued replies with retries and backoff (DESIGN invariant 1,
//! CC-7, EO-3). Every node runs one; a delivery is claimed in the store before it is sent, so
//! two nodes never send the same one at once, and only the oldest pending delivery of a
//! conversation is ever due, so a conversation's replies arrive in order.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::custom;
use crate::realtime::Realtime;
use crate::store::models::OutboxItem;
use crate::store::{self, Store};

const POLL: Duration = Duration::from_millis(200);
/// How long a claim lasts: longer than the slowest attempt (10 s timeout) with room to spare.
const CLAIM: Duration = Duration::from_secs(60);
const PARALLEL: usize = 16;
const BATCH: i64 = 500;

/// Start delivering. `public_url` builds attachment links; `scale` shrinks the retry schedule.
pub fn start(rt: Realtime, public_url: String, scale: f64) {
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
            let due = match store::outbox::due(&rt.store, &["custom"], &["message.created"], BATCH).await {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: cannot read due deliveries");
                    continue;
                }
            };
            for item in due {
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
                let (store, http, public_url) = (rt.store.clone(), http.clone(), public_url.clone());
                tokio::spawn(async move {
                    attempt(&store, &http, &item, &public_url, scale).await;
                    drop(permit);
                });
            }
        }
    });
}

async fn attempt(store: &Store, http: &reqwest::Client, item: &OutboxItem, public_url: &str, scale: f64) {
    let span = tracing::info_span!("delivery", id = item.id, delivery = %item.delivery_id, attempt = item.attempts + 1);
    let _enter = span.enter();
    let outcome = match item.message_id {
        Some(message_id) => match store::outbox::context(store, message_id).await {
            Ok(Some(ctx)) => {
                custom::deliver(http, &ctx, &item.delivery_id, public_url).await.map_err(|e| e.to_string())
            }
            Ok(None) => Err("the message no longer exists".to_owned()),
            Err(e) => {
                tracing::warn!(error = %e, "outbox: cannot load the message");
                return; // the claim lapses and the delivery is tried again
            }
        },
        None => Err("nothing to deliver".to_owned()),
    };
    let next = match &outcome {
        Ok(()) => {
            metrics::counter!("switchboard_deliveries_total", "result" => "delivered").increment(1);
            None
        }
        Err(reason) => {
            metrics::counter!("switchboard_deliveries_total", "result" => "retry").increment(1);
            let age = (store::now() - item.created_at).to_std().unwrap_or_default();
            let retry = custom::protocol::next_retry((item.attempts + 1) as u32, age, scale);
            tracing::info!(%reason, retry_in = ?retry, "delivery failed");
            Some(retry.map(|w| store::now() + chrono::Duration::from_std(w).unwrap_or_default()))
        }
    };
    if let Err(e) = store::outbox::finish(store, item.id, outcome.err(), next).await {
        tracing::warn!(error = %e, "outbox: cannot record the outcome");
    }
}
