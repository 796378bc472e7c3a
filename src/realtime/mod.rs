//! The delivery side of real time (RT-1…RT-7, SC-1…SC-4): what carries a committed change to
//! every agent socket that may see it, on every node. It knows nothing of how changes are made
//! (`changes` commits and publishes them on the bus).
//!
//! ```text
//! changes (commit, then publish) ─► bus ─► hub (each node) ─► sessions ─► browsers
//! ```
//!
//! - [`hub`]: per node; deduplicates, repairs from the event log, fans out, keeps markers.
//! - [`session`]: one agent socket; access filtering, resume cursor, markers.
//! - [`identity`]: what a socket does when who its agent is changes (issue #13).
//! - [`cursor`], [`markers`]: pure state, unit-tested.
//!
//! Events are rendered by `view::event`.

pub mod cursor;
pub mod hub;
pub mod identity;
pub mod markers;
pub mod session;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::bus::local::LocalBus;
use crate::bus::redis::RedisBus;
use crate::bus::{Bus, BusEvent};
use crate::shutdown::Shutdown;
use crate::store::Store;

use self::hub::Hub;

/// Events waiting for the hub before the bus starts dropping them (repair catches up).
const HUB_QUEUE: usize = 65_536;

/// Handle on the node's real-time machinery (cheap to clone).
#[derive(Clone)]
pub struct Realtime {
    pub store: Store,
    pub bus: Arc<dyn Bus>,
    pub hub: Hub,
    /// Distinguishes this node's sockets from other nodes' in marker ids.
    pub node_id: Arc<str>,
    /// The node's shutdown owner: agent sockets close when it closes connections.
    pub shutdown: Shutdown,
}

impl Realtime {
    /// Start the hub and the bus (Redis when `redis_url` is given, else in-process); their loops
    /// run under `shutdown`. The hub's presence picture is handed to the store, whose creation
    /// transactions route by it (CC-12).
    pub async fn start(store: Store, redis_url: Option<&str>, shutdown: &Shutdown) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel::<BusEvent>(HUB_QUEUE);
        let bus: Arc<dyn Bus> = match redis_url {
            Some(url) => {
                let deployment = crate::store::events::deployment_id(&store).await?;
                Arc::new(
                    RedisBus::connect(url, deployment, tx, shutdown)
                        .await
                        .map_err(|e| anyhow::anyhow!("Redis at {url}: {e}"))?,
                )
            }
            None => Arc::new(LocalBus::new(tx)),
        };
        let hub = Hub::start(store.clone(), rx, shutdown).await?;
        store.install_presence(Arc::new(hub.clone()));
        let rt = Realtime {
            store,
            bus,
            hub,
            node_id: uuid::Uuid::new_v4().simple().to_string()[..8].into(),
            shutdown: shutdown.clone(),
        };
        tracing::info!(bus = rt.bus.kind(), node = %rt.node_id, "real-time core started");
        Ok(rt)
    }
}
