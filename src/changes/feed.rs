//! The consumers of the durable change feed (`store::feed`: rows written in each change's
//! transaction, taken and deleted in the consumer's). One task per consumer on every node;
//! nodes share the rows without repeating one (PostgreSQL `SKIP LOCKED`), and a node that dies
//! mid-batch leaves its rows to the others (its transaction never committed).
//!
//! After a batch commits, the notifications it wrote (issue #17) are announced on the bus, so the
//! agent's sockets on every node get a `notification` frame; the bus may drop one, and the
//! dashboard reads the inbox again when its socket (re)connects.

use std::sync::Arc;
use std::time::Duration;

use crate::bus::{Bus, BusEvent, NotificationEvent};
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::store::feed::{self, Consumer};
use crate::view::notification::NotificationView;

/// How often an idle consumer looks for new rows.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// Rows per transaction.
const BATCH: i64 = 100;

/// Start one task per consumer.
pub fn start(store: Store, bus: Arc<dyn Bus>, shutdown: &Shutdown) {
    for consumer in Consumer::ALL {
        let store = store.clone();
        let bus = bus.clone();
        shutdown.spawn(async move {
            loop {
                match feed::take(&store, consumer, BATCH).await {
                    Ok(taken) => {
                        for n in &taken.notifications {
                            let body = serde_json::to_string(&NotificationView::from(n)).unwrap_or_default();
                            bus.publish(BusEvent::Notification(NotificationEvent {
                                agent_id: n.row.agent_id,
                                channel_id: n.channel_id,
                                unread_count: n.unread_count,
                                body,
                            }));
                        }
                        if taken.rows as i64 == BATCH {
                            continue;
                        }
                    }
                    Err(e) => tracing::warn!(consumer = consumer.as_str(), error = %e, "change feed consumer failed"),
                }
                tokio::time::sleep(IDLE_POLL).await;
            }
        });
    }
}
