//! Redis pub/sub bus for several nodes (SC-3). Every node publishes to one channel and
//! subscribes to it, so its own events come back the same way as everyone else's.
//!
//! Publishing goes through a bounded queue drained by one task with a multiplexed connection;
//! the subscriber reconnects with backoff. Anything lost in between is repaired by the hubs
//! (stored events from the event log; markers by their periodic refresh).

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{Bus, BusEvent};

/// The pub/sub channel every node uses.
pub const CHANNEL: &str = "switchboard:events";
const QUEUE: usize = 65_536;

pub struct RedisBus {
    outgoing: mpsc::Sender<BusEvent>,
}

impl RedisBus {
    /// Connect (failing fast if Redis does not answer), then publish and subscribe in the background.
    pub async fn connect(url: &str, hub: mpsc::Sender<BusEvent>) -> anyhow::Result<Self> {
        let client = ::redis::Client::open(url)?;
        let mut publisher = client.get_multiplexed_async_connection().await?;
        let (outgoing, mut queue) = mpsc::channel::<BusEvent>(QUEUE);
        tokio::spawn(async move {
            while let Some(event) = queue.recv().await {
                let Ok(text) = serde_json::to_string(&event) else {
                    continue;
                };
                let sent: Result<i64, _> = ::redis::cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(text)
                    .query_async(&mut publisher)
                    .await;
                if let Err(e) = sent {
                    metrics::counter!("switchboard_bus_dropped_total", "bus" => "redis").increment(1);
                    tracing::warn!(error = %e, "redis publish failed");
                }
            }
        });
        let sub_client = client.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match sub_client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if let Err(e) = pubsub.subscribe(CHANNEL).await {
                            tracing::warn!(error = %e, "redis subscribe failed");
                        } else {
                            backoff = Duration::from_millis(100);
                            let mut stream = pubsub.on_message();
                            while let Some(msg) = stream.next().await {
                                let Ok(payload) = msg.get_payload::<String>() else {
                                    continue;
                                };
                                match serde_json::from_str::<BusEvent>(&payload) {
                                    Ok(event) => {
                                        if hub.send(event).await.is_err() {
                                            return; // the hub is gone: the node is stopping
                                        }
                                    }
                                    Err(e) => tracing::warn!(error = %e, "undecodable bus message"),
                                }
                            }
                            tracing::warn!("redis subscription ended; reconnecting");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "redis unreachable; retrying"),
                }
                if hub.is_closed() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
        Ok(Self { outgoing })
    }
}

impl Bus for RedisBus {
    fn publish(&self, event: BusEvent) {
        if self.outgoing.try_send(event).is_err() {
            metrics::counter!("switchboard_bus_dropped_total", "bus" => "redis").increment(1);
        }
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
