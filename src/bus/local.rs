//! The in-process bus of a single node: events go straight to this node's hub.

use tokio::sync::mpsc;

use super::{Bus, BusEvent};

pub struct LocalBus {
    hub: mpsc::Sender<BusEvent>,
}

impl LocalBus {
    pub fn new(hub: mpsc::Sender<BusEvent>) -> Self {
        Self { hub }
    }
}

impl Bus for LocalBus {
    fn publish(&self, event: BusEvent) {
        if self.hub.try_send(event).is_err() {
            // Full or closed: stored events come back through the hub's repair from the store.
            metrics::counter!("switchboard_bus_dropped_total", "bus" => "local").increment(1);
        }
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}
