//! The webhook's store-then-answer path (ZL-3): Zalo waits 2 seconds for an answer and retries after 30 s, 5 min,
//! 15 min, 30 min and 1 h; so the acknowledgement only verifies, stores the raw event durably and answers — the
//! processing happens after it (`processor`).
//!
//! - **Keys**: the channel's app id and OA secret key, opened once and kept per channel in memory ([`Keys`]),
//!   dropped with the store's generation (every channel change, on any node: `store::cache`) and after a short
//!   time-to-live, so an acknowledgement does no decryption and no channel read.
//! - **Group commit**: requests hand their event to one writer task, which stores whatever is waiting in one
//!   transaction (`store::zalo::insert_events`, insert-or-ignore by the dedupe key) and answers each request after
//!   that commit. Under a burst the batches grow, so the database sees one transaction per batch rather than one
//!   per request (on SQLite the writer lock is taken once per batch).
//! - After a batch commits, the processors of the channels it touched are woken (here, or on the node that runs
//!   them, through the supervisor's "check now").

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::Settings;
use super::protocol::{self, Envelope};
use crate::domain::{ChannelKind, ChannelScope};
use crate::shutdown::Shutdown;
use crate::store::cache::Cache;
use crate::store::zalo::NewZaloEvent;
use crate::store::{self, Store, StoreError};

/// How long opened keys are used without a channel change announced.
const KEYS_TTL: Duration = Duration::from_secs(2);
/// Requests waiting for the writer before new ones are answered 503 (Zalo retries them).
const QUEUE: usize = 8192;
/// The most events stored in one transaction.
const BATCH: usize = 512;

/// What checking a channel's webhook signatures needs. `Debug` shows no key.
pub struct Keys {
    pub app_id: String,
    pub oa_secret_key: String,
    pub enabled: bool,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("app_id", &self.app_id).field("enabled", &self.enabled).finish_non_exhaustive()
    }
}

/// Why an event was not stored.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("no Zalo channel has this id")]
    UnknownChannel,
    /// Bad or missing signature, a disabled channel, a channel with no OA connected: nothing stored.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("not a Zalo event: {0}")]
    BadEvent(String),
    #[error("the server is stopping or overloaded")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Pending {
    event: NewZaloEvent,
    done: oneshot::Sender<Result<bool, String>>,
}

type Wake = Box<dyn Fn(i64) + Send + Sync>;

/// Handle on this node's webhook intake (cheap to clone).
#[derive(Clone)]
pub struct Intake {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    queue: mpsc::Sender<Pending>,
    keys: Cache<i64, Option<Arc<Keys>>>,
    wake: OnceLock<Wake>,
}

impl Intake {
    /// Start the writer task (it ends when the node stops).
    pub fn start(store: Store, shutdown: &Shutdown) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let inner = Arc::new(Inner { store, queue, keys: Cache::new(KEYS_TTL), wake: OnceLock::new() });
        shutdown.spawn(writer(Arc::downgrade(&inner), rx));
        Self { inner }
    }

    /// What wakes a channel's processor after its events were stored (set once, by the server).
    pub fn on_stored(&self, wake: impl Fn(i64) + Send + Sync + 'static) {
        let _ = self.inner.wake.set(Box::new(wake));
    }

    /// The channel's keys; `None` when no Zalo channel has this id.
    pub async fn keys(&self, channel_id: i64) -> Result<Option<Arc<Keys>>, StoreError> {
        let store = &self.inner.store;
        let generation = store.generation();
        if let Some(k) = self.inner.keys.get(&channel_id, generation) {
            return Ok(k);
        }
        let keys = match store::channels::get(store, channel_id, &ChannelScope::All).await {
            Ok(c) if c.kind == ChannelKind::Zalo => Some(Arc::new(match Settings::of(&c.settings) {
                Some(s) => Keys { app_id: s.app_id, oa_secret_key: s.oa_secret_key, enabled: c.enabled },
                // No OA connected: nothing verifies.
                None => Keys { app_id: String::new(), oa_secret_key: String::new(), enabled: false },
            })),
            Ok(_) | Err(StoreError::NotFound) => None,
            Err(e) => return Err(e),
        };
        self.inner.keys.put(channel_id, keys.clone(), generation);
        Ok(keys)
    }

    /// Verify and store one webhook delivery; true when the event is new, false for a retry of a stored one.
    pub async fn receive(&self, channel_id: i64, signature: Option<&str>, body: &[u8]) -> Result<bool, IntakeError> {
        let keys = self.keys(channel_id).await?.ok_or(IntakeError::UnknownChannel)?;
        if !keys.enabled || keys.oa_secret_key.is_empty() {
            return Err(IntakeError::Unauthorized(
                "this Zalo channel is disabled or has no Official Account connected",
            ));
        }
        let signature = signature.ok_or(IntakeError::Unauthorized("the X-ZEvent-Signature header is missing"))?;
        // The signature covers the body's own timestamp: read it first, trust nothing else before the check.
        // Without a JSON body and its timestamp nothing can be verified.
        let Ok(Envelope { event_name, timestamp, dedupe_key, user_id }) = protocol::envelope(body) else {
            return Err(IntakeError::Unauthorized("bad signature"));
        };
        if !protocol::signature_ok(&keys.app_id, body, &timestamp, &keys.oa_secret_key, signature) {
            return Err(IntakeError::Unauthorized("bad signature"));
        }
        let body = String::from_utf8(body.to_vec()).map_err(|_| IntakeError::BadEvent("not UTF-8".into()))?;
        let event = NewZaloEvent { channel_id, dedupe_key, zalo_user_id: user_id, event_name, body };
        let (done, answer) = oneshot::channel();
        self.inner.queue.try_send(Pending { event, done }).map_err(|_| IntakeError::Busy)?;
        match answer.await {
            Ok(Ok(new)) => Ok(new),
            Ok(Err(e)) => Err(IntakeError::Store(StoreError::Pool(e))),
            Err(_) => Err(IntakeError::Busy),
        }
    }
}

/// The writer: take what waits (up to [`BATCH`]), store it in one transaction, answer each, wake processors.
async fn writer(inner: std::sync::Weak<Inner>, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
    loop {
        if rx.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        let Some(inner) = inner.upgrade() else { return };
        let events: Vec<NewZaloEvent> = batch.iter().map(|p| p.event.clone()).collect();
        let result = store::zalo::insert_events(&inner.store, events).await;
        let mut touched: Vec<i64> = Vec::new();
        match result {
            Ok(new) => {
                for (p, is_new) in batch.drain(..).zip(new) {
                    if is_new && !touched.contains(&p.event.channel_id) {
                        touched.push(p.event.channel_id);
                    }
                    let _ = p.done.send(Ok(is_new));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, events = batch.len(), "cannot store Zalo webhook events");
                for p in batch.drain(..) {
                    let _ = p.done.send(Err(e.to_string()));
                }
            }
        }
        if let Some(wake) = inner.wake.get() {
            for channel in touched {
                wake(channel);
            }
        }
        metrics::counter!("switchboard_zalo_webhook_batches_total").increment(1);
    }
}
