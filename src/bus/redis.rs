//! Redis bus for several nodes (SC-3). Every node publishes to one pub/sub channel and
//! subscribes to it, so its own events come back the same way as everyone else's. Markers
//! (presence, viewing, replying) are also kept as Redis keys with a TTL, so the current picture
//! lives in Redis: a node that starts, restarts or reconnects loads it before following the
//! channel, and a dead node's markers expire by themselves.
//!
//! Names, all under `switchboard:{deployment}:` (the deployment id the nodes read from their
//! shared database, in hex — two deployments on one Redis server never see each other):
//!
//! - `…:events` — the pub/sub channel; messages are [`BusEvent`] JSON.
//! - `…:marker:{socket}:presence`, `…:marker:{socket}:viewing:{conversation}`,
//!   `…:marker:{socket}:replying:{conversation}` — the marker's latest [`BusEvent::Marker`] JSON,
//!   `SET … PX ttl` when set, `DEL` when cleared.
//!
//! Publishing never blocks the caller: events go through a bounded queue drained by one task,
//! which sends what has accumulated as one pipeline over an auto-reconnecting connection. The
//! subscriber reconnects with backoff and reloads the markers each time. Anything lost in between
//! is repaired by the hubs (stored events from the event log; markers by their periodic refresh).
//! Both tasks run until the node stops ([`Shutdown`]); events still queued then are dropped like
//! any other lost publish.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{Bus, BusEvent, MarkerKind, MarkerUpdate};
use crate::shutdown::Shutdown;

const QUEUE: usize = 65_536;
/// Most events sent in one pipeline.
const BATCH: usize = 512;
/// Keys asked for per `SCAN` step when loading markers.
const SCAN_COUNT: usize = 500;

/// The Redis names of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    pub fn new(deployment: i64) -> Self {
        Self { prefix: format!("switchboard:{deployment:016x}:") }
    }

    /// The pub/sub channel.
    pub fn channel(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// The key holding one socket's marker.
    pub fn marker_key(&self, m: &MarkerUpdate) -> String {
        let p = &self.prefix;
        let s = &m.socket;
        match &m.kind {
            MarkerKind::Presence { .. } => format!("{p}marker:{s}:presence"),
            MarkerKind::Viewing { conversation_id, .. } => format!("{p}marker:{s}:viewing:{conversation_id}"),
            MarkerKind::Replying { conversation_id, .. } => format!("{p}marker:{s}:replying:{conversation_id}"),
        }
    }

    /// The `SCAN` pattern matching every marker key.
    pub fn marker_pattern(&self) -> String {
        format!("{}marker:*", self.prefix)
    }
}

pub struct RedisBus {
    outgoing: mpsc::Sender<BusEvent>,
}

impl RedisBus {
    /// Connect, subscribe and read the current markers (failing fast if Redis does not answer),
    /// then publish and follow the channel in the background, feeding `hub`: first the markers
    /// that were live in Redis, then everything published from the moment of subscribing — until
    /// `shutdown` stops the node.
    pub async fn connect(
        url: &str,
        deployment: i64,
        hub: mpsc::Sender<BusEvent>,
        shutdown: &Shutdown,
    ) -> anyhow::Result<Self> {
        let client = ::redis::Client::open(url)?;
        let names = Arc::new(Names::new(deployment));
        let config = ConnectionManagerConfig::new().set_number_of_retries(2).set_max_delay(Duration::from_secs(2));
        let mut conn = client.get_connection_manager_with_config(config).await?;
        let first = subscribe(&client, &names, &mut conn).await?;
        let (outgoing, queue) = mpsc::channel::<BusEvent>(QUEUE);
        shutdown.spawn(publisher(conn.clone(), names.clone(), queue));
        shutdown.spawn(subscriber(client, conn, names, hub, first));
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

/// Send queued events, a pipeline at a time: each marker's key change, then the message.
async fn publisher(mut conn: ConnectionManager, names: Arc<Names>, mut queue: mpsc::Receiver<BusEvent>) {
    let channel = names.channel();
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = ::redis::pipe();
        let mut count = 0u64;
        for event in batch.drain(..) {
            let Ok(text) = serde_json::to_string(&event) else {
                continue;
            };
            if let BusEvent::Marker(m) = &event {
                let key = names.marker_key(m);
                if m.on {
                    pipe.cmd("SET").arg(key).arg(&text).arg("PX").arg(m.ttl_ms.max(1)).ignore();
                } else {
                    pipe.cmd("DEL").arg(key).ignore();
                }
            }
            pipe.cmd("PUBLISH").arg(&channel).arg(text).ignore();
            count += 1;
        }
        if count == 0 {
            continue;
        }
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            metrics::counter!("switchboard_bus_dropped_total", "bus" => "redis").increment(count);
            tracing::warn!(error = %e, events = count, "redis publish failed");
        }
    }
}

/// A subscription to the channel, and the markers live in Redis once it was in place (anything
/// that changes them afterwards arrives on the subscription, after them).
async fn subscribe(
    client: &::redis::Client,
    names: &Names,
    conn: &mut ConnectionManager,
) -> anyhow::Result<(PubSub, Vec<MarkerUpdate>)> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(names.channel()).await?;
    let markers = load_markers(conn, names).await?;
    Ok((pubsub, markers))
}

/// Every marker key of the deployment, with what is left of its TTL.
async fn load_markers(conn: &mut ConnectionManager, names: &Names) -> anyhow::Result<Vec<MarkerUpdate>> {
    let pattern = names.marker_pattern();
    let mut markers = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            let mut pipe = ::redis::pipe();
            for key in &keys {
                pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
            }
            let replies: Vec<::redis::Value> = pipe.query_async(conn).await?;
            for pair in replies.chunks(2) {
                let [value, ttl] = pair else { continue };
                // Gone in between (nil, -2) or without an expiry (-1, never written so): skip.
                let (Ok(Some(text)), Ok(ttl_ms)) =
                    (::redis::from_redis_value_ref::<Option<String>>(value), ::redis::from_redis_value_ref::<i64>(ttl))
                else {
                    continue;
                };
                if ttl_ms <= 0 {
                    continue;
                }
                match serde_json::from_str::<BusEvent>(&text) {
                    Ok(BusEvent::Marker(mut m)) if m.on => {
                        m.ttl_ms = ttl_ms as u64;
                        markers.push(m);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "undecodable marker in redis"),
                }
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    Ok(markers)
}

/// Follow the channel, resubscribing (and reloading the markers) with backoff when it drops.
async fn subscriber(
    client: ::redis::Client,
    mut conn: ConnectionManager,
    names: Arc<Names>,
    hub: mpsc::Sender<BusEvent>,
    first: (PubSub, Vec<MarkerUpdate>),
) {
    let mut next = Some(first);
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = match next.take() {
            Some(ready) => Ok(ready),
            None => subscribe(&client, &names, &mut conn).await,
        };
        match attempt {
            Ok((mut pubsub, markers)) => {
                backoff = Duration::from_millis(100);
                tracing::debug!(markers = markers.len(), "redis subscription ready");
                for m in markers {
                    if hub.send(BusEvent::Marker(m)).await.is_err() {
                        return; // the hub is gone: the node is stopping
                    }
                }
                let mut stream = pubsub.on_message();
                while let Some(msg) = stream.next().await {
                    let Ok(payload) = msg.get_payload::<String>() else {
                        continue;
                    };
                    match serde_json::from_str::<BusEvent>(&payload) {
                        Ok(event) => {
                            if hub.send(event).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "undecodable bus message"),
                    }
                }
                tracing::warn!("redis subscription ended; reconnecting");
            }
            Err(e) => tracing::warn!(error = %e, "redis unreachable; retrying"),
        }
        if hub.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(kind: MarkerKind) -> MarkerUpdate {
        MarkerUpdate { socket: "ab12cd34-77".into(), agent_id: 3, name: "Ann".into(), kind, on: true, ttl_ms: 8_000 }
    }

    #[test]
    fn names_are_per_deployment_and_per_socket_marker() {
        let n = Names::new(0x1f);
        assert_eq!(n.channel(), "switchboard:000000000000001f:events");
        assert_ne!(n.channel(), Names::new(0x20).channel());
        assert_eq!(
            n.marker_key(&marker(MarkerKind::Presence { status: "away".into() })),
            "switchboard:000000000000001f:marker:ab12cd34-77:presence"
        );
        assert_eq!(
            n.marker_key(&marker(MarkerKind::Viewing { conversation_id: 9, channel_id: 2 })),
            "switchboard:000000000000001f:marker:ab12cd34-77:viewing:9"
        );
        assert_eq!(
            n.marker_key(&marker(MarkerKind::Replying { conversation_id: 9, channel_id: 2 })),
            "switchboard:000000000000001f:marker:ab12cd34-77:replying:9"
        );
        assert_eq!(n.marker_pattern(), "switchboard:000000000000001f:marker:*");
    }
}
