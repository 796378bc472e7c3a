//! The consumers of the durable change feed (`store::feed`: rows written in each change's
//! transaction, taken and deleted in the consumer's). One task per consumer on every node;
//! nodes share the rows without repeating one (PostgreSQL `SKIP LOCKED`), and a node that dies
//! mid-batch leaves its rows to the others (its transaction never committed).

use std::time::Duration;

use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::store::feed::{self, Consumer};

/// How often an idle consumer looks for new rows.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// Rows per transaction.
const BATCH: i64 = 100;

/// Start one task per consumer.
pub fn start(store: Store, shutdown: &Shutdown) {
    for consumer in Consumer::ALL {
        let store = store.clone();
        shutdown.spawn(async move {
            loop {
                match feed::take(&store, consumer, BATCH).await {
                    Ok(n) if n as i64 == BATCH => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(consumer = consumer.as_str(), error = %e, "change feed consumer failed"),
                }
                tokio::time::sleep(IDLE_POLL).await;
            }
        });
    }
}
