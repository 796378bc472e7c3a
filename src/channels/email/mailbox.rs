//! The mailbox connectors: one task per enabled email channel instance that logs in over IMAP or
//! POP3, imports what is waiting (fetching, preparing and storing batches of mail side by side,
//! see [`drain`]), acknowledges each mail on the server only after it was committed, then waits — in IMAP IDLE when the server offers it (a new mail is a ticket within
//! seconds), else for the poll interval (EM-1, EM-4) — or for an admin's "check now".
//!
//! Failing to connect or log in five times in a row disables the mailbox with the reason shown to
//! admins (EM-5); re-enabling it starts a fresh task.
//!
//! Which connectors run where (issue #14) is the cluster's connector supervisor's job
//! ([`crate::cluster::supervisor`]): [`Mailboxes`] is one, whose connectors are those of the enabled mailboxes whose
//! lease (job `mailbox:{id}`) this node holds, restarted when their settings change. It reconciles on every channel
//! change (announced after every commit by [`Mailboxes::changed`]) and every [`RECONCILE_EVERY`]. So each mailbox is
//! polled by one node at a time, and by another within the lease's time-to-live when that node dies. "Check now"
//! reaches the node that polls the mailbox over the bus ([`Mailboxes::check_now`]).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, Semaphore, mpsc};

use super::importer::{self, Prepared};
use super::net::{AfterImport, Endpoint, MailKey, NetError, Protocol, Session, Waiting};
use super::settings::EmailSettings;
use crate::blobs::Blobs;
use crate::changes::Changes;
use crate::cluster::lease::Job;
use crate::cluster::supervisor::{Connector, Starter, Supervisor};
use crate::domain::ChannelKind;
use crate::outbound::Policy;
use crate::realtime::Realtime;
use crate::store::email::Imported;
use crate::store::{self, models::ChannelInstance};

/// Longest single IDLE before it is renewed (RFC 2177 asks clients to re-issue within 29 minutes).
const MAX_IDLE: Duration = Duration::from_secs(20 * 60);
/// How often a node reconciles its connectors with the database without being told (and renews its leases).
pub const RECONCILE_EVERY: Duration = crate::cluster::supervisor::RECONCILE_EVERY;

/// Handle on every mailbox connector of this node (cheap to clone): a [`Supervisor`] that starts [`run`].
#[derive(Clone)]
pub struct Mailboxes {
    supervisor: Supervisor<Start>,
}

/// What a mailbox connector is started with.
struct Start {
    /// Where imports commit and are published.
    changes: Changes,
    blobs: Blobs,
    /// Which mail server addresses may be reached (`crate::outbound`).
    policy: Policy,
}

impl Starter for Start {
    fn job(&self, channel_id: i64) -> Job {
        Job::Mailbox(channel_id)
    }

    fn runnable(&self, channel: &ChannelInstance) -> bool {
        EmailSettings::of(&channel.settings).is_some()
    }

    /// The settings (the stored JSON, opened): a change restarts the connector.
    fn fingerprint(&self, channel: &ChannelInstance) -> String {
        channel.settings.clone()
    }

    fn start(&self, channel: &ChannelInstance, wake: Arc<Notify>) -> Option<Connector> {
        let Some(settings) = EmailSettings::of(&channel.settings) else {
            tracing::warn!(channel_id = channel.id, "mailbox settings cannot be read; not started");
            return None;
        };
        let endpoint = settings.endpoint(&self.policy);
        Some(Box::pin(run(self.changes.clone(), self.blobs.clone(), channel.id, settings, endpoint, wake)))
    }
}

impl Mailboxes {
    /// Call from inside the runtime connectors should run on.
    pub fn new(rt: Realtime, changes: Changes, blobs: Blobs, policy: Policy) -> Self {
        let start = Start { changes, blobs, policy };
        Self { supervisor: Supervisor::new("mailboxes", &rt, ChannelKind::Email, start) }
    }

    /// Start the connectors this node should run (one reconcile, so a single node polls its mailboxes at once),
    /// then the supervisor that keeps them reconciled. Returns how many connectors run.
    pub async fn start_all(&self) -> store::StoreResult<usize> {
        self.supervisor.start_all().await
    }

    /// A mailbox's row was committed (created, edited, enabled, disabled, deleted): tell every node, and reconcile
    /// this one now, so the answer to the request that made the change already shows its effect here.
    pub async fn changed(&self, channel_id: i64) {
        self.supervisor.starter().changes.channel_changed(channel_id);
        if let Err(e) = self.supervisor.reconcile().await {
            tracing::warn!(channel_id, error = %e, "cannot reconcile mailboxes; the supervisor retries");
        }
    }

    /// Stop the supervisor and every connector and wait until each has ended (the server is
    /// stopping); nothing starts again. Call [`Self::release_leases`] afterwards so the other nodes
    /// take over at once.
    pub async fn stop_all(&self) {
        self.supervisor.stop_all().await;
    }

    /// Hand this node's mailbox leases back (after [`Self::stop_all`], on a clean stop).
    pub async fn release_leases(&self) {
        self.supervisor.release_leases().await;
    }

    /// Check the mailbox now rather than at the next poll: here when this node polls it, else by asking every
    /// node over the bus (the one polling it checks). True when it was checked here.
    pub fn check_now(&self, channel_id: i64) -> bool {
        self.supervisor.check_now(channel_id)
    }

    /// Whether a connector runs for this mailbox on this node.
    pub fn is_running(&self, channel_id: i64) -> bool {
        self.supervisor.is_running(channel_id)
    }

    /// This node's id, as written in the leases it holds.
    pub fn node_id(&self) -> &str {
        self.supervisor.node_id()
    }

    /// The node that holds the mailbox's lease (and so polls it while the mailbox is enabled), if its lease lasts.
    pub async fn polled_by(&self, channel_id: i64) -> store::StoreResult<Option<String>> {
        self.supervisor.holder_of(channel_id).await
    }
}

/// Why a round ended early.
enum Failure {
    /// Could not connect or log in: counts towards EM-5.
    Connect(NetError),
    /// Something after login (the connection dropped, a store error): retried next round.
    Later(String),
}

async fn run(
    rt: Changes,
    blobs: Blobs,
    channel_id: i64,
    settings: EmailSettings,
    endpoint: Endpoint,
    wake: Arc<Notify>,
) {
    let span = tracing::info_span!("mailbox", channel_id, host = %settings.host, protocol = ?settings.protocol);
    let _enter = span.enter();
    loop {
        match round(&rt, &blobs, channel_id, &settings, &endpoint).await {
            Ok(()) => {}
            Err(Failure::Connect(e)) => {
                metrics::counter!("switchboard_mailbox_failures_total").increment(1);
                match store::email::record_failure(&rt.store, channel_id, e.to_string()).await {
                    Ok(n) if n >= store::email::MAX_FAILURES => {
                        tracing::warn!(failures = n, error = %e, "mailbox disabled after repeated connection failures");
                        // Its row changed: cached channel rows on every node are dropped.
                        rt.channel_changed(channel_id);
                        return;
                    }
                    Ok(n) => tracing::warn!(failures = n, error = %e, "mailbox connection failed"),
                    Err(se) => tracing::warn!(error = %se, "cannot record a mailbox failure"),
                }
            }
            Err(Failure::Later(e)) => tracing::warn!(error = %e, "mailbox round ended early"),
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.poll_interval()) => {}
            _ = wake.notified() => {}
        }
    }
}

/// One connection: import what waits, then IDLE for more while the server allows it.
async fn round(
    rt: &Changes,
    blobs: &Blobs,
    channel_id: i64,
    settings: &EmailSettings,
    endpoint: &Endpoint,
) -> Result<(), Failure> {
    let mut session = Session::connect(settings.protocol, endpoint, &settings.credentials(), &settings.folder)
        .await
        .map_err(Failure::Connect)?;
    if let Err(e) = store::email::record_success(&rt.store, channel_id).await {
        tracing::warn!(error = %e, "cannot record a mailbox check");
    }
    loop {
        drain(rt, blobs, channel_id, settings, &mut session).await?;
        if !session.supports_idle() {
            break;
        }
        // An admin's "check now" while idling changes nothing: IDLE already reports new mail.
        match session.idle(MAX_IDLE).await {
            Ok(_) => continue,
            Err(e) => return Err(Failure::Later(format!("IDLE: {e}"))),
        }
    }
    session.close().await.map_err(|e| Failure::Later(format!("closing: {e}")))
}

/// Mails fetched in one round trip: at most this many…
const BATCH_MAILS: usize = 25;
/// …and at most this many bytes by the server's sizes (a batch of one mail is fetched whatever its size).
const BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// The waiting mails in fetch batches, oldest first, each within [`BATCH_MAILS`] and [`BATCH_BYTES`].
fn batches(waiting: Vec<Waiting>) -> Vec<Vec<MailKey>> {
    let mut out: Vec<Vec<MailKey>> = Vec::new();
    let mut bytes = 0u64;
    for w in waiting {
        let size = w.size.unwrap_or(0);
        match out.last_mut() {
            Some(batch) if batch.len() < BATCH_MAILS && bytes.saturating_add(size) <= BATCH_BYTES => {
                bytes = bytes.saturating_add(size);
                batch.push(w.key);
            }
            _ => {
                bytes = size;
                out.push(vec![w.key]);
            }
        }
    }
    out
}

/// Mails prepared at once ([`importer::prepare`] is CPU work: one per core of the machine this was tuned on; more
/// starves the storing stage, which is serial).
const PREPARING: usize = 2;

/// Prepare one mail on a blocking thread, once one of the [`PREPARING`] places is free.
async fn prepare_one(
    places: Arc<Semaphore>,
    blobs: Blobs,
    settings: Arc<EmailSettings>,
    key: MailKey,
    raw: Vec<u8>,
) -> Result<(MailKey, Prepared), Failure> {
    let _place = places.acquire_owned().await.ok();
    match tokio::task::spawn_blocking(move || importer::prepare(&blobs, &settings, &raw)).await {
        Ok(Ok(prepared)) => Ok((key, prepared)),
        Ok(Err(e)) => Err(Failure::Later(format!("storing the files of {key}: {e}"))),
        Err(_) => Err(Failure::Later("preparing mail was cancelled".into())),
    }
}

/// Store a prepared batch in order ([`importer::store_batch`]: one call to the database), then hand each new ticket
/// or message to `announce`. Returns the keys committed, and the error that stopped the batch early, if one
/// did.
async fn store_batch(
    rt: &Changes,
    mailbox: &importer::Mailbox<'_>,
    prepared: Vec<(MailKey, Prepared)>,
    announce: &mpsc::Sender<Imported>,
) -> (Vec<MailKey>, Option<Failure>) {
    let (keys, mails): (Vec<MailKey>, Vec<Prepared>) = prepared.into_iter().unzip();
    let (stored, failed) = importer::store_batch(rt, mailbox, mails).await;
    let failed = failed.map(|e| match keys.get(stored.len()) {
        Some(key) => Failure::Later(format!("importing {key}: {e}")),
        None => Failure::Later(format!("importing: {e}")),
    });
    let mut committed = keys;
    committed.truncate(stored.len());
    for imported in stored {
        metrics::counter!("switchboard_mail_imported_total", "outcome" => outcome_label(&imported)).increment(1);
        if matches!(imported, Imported::Created(_) | Imported::Appended { .. }) {
            // The announcer stops only with this drain; a closed queue means we are winding down.
            let _ = announce.send(imported).await;
        }
    }
    (committed, failed)
}

/// Import every waiting mail, acknowledging each on the server only after it is committed.
///
/// Four stages joined by short queues, so that none waits for the slowest batch of another: the session fetches
/// batches (one round trip each) and, between fetches, acknowledges what has been committed; batches are prepared
/// ([`importer::prepare`]) mail by mail on [`PREPARING`] blocking threads; stored in order, what is ready in one
/// call to the database ([`importer::store_batch`]; a mail may thread into the one before it); and each stored mail is announced ([`importer::announce`]: shown live, auto-assigned) in
/// the same order, off the storing path. At most a few batches are in memory at once. When a stage fails the others wind down; mail
/// committed but not acknowledged is fetched again next round and recognised as stored (Message-ID + mailbox).
async fn drain(
    rt: &Changes,
    blobs: &Blobs,
    channel_id: i64,
    settings: &EmailSettings,
    session: &mut Session,
) -> Result<(), Failure> {
    let after = settings.after_import();
    // POP3 cannot flag a mail: one left on the server is skipped by the keys we remember.
    let remember = settings.protocol == Protocol::Pop3 && after == AfterImport::MarkRead;
    let seen = if remember {
        store::email::seen_keys(&rt.store, channel_id).await.map_err(|e| Failure::Later(e.to_string()))?
    } else {
        Default::default()
    };
    let waiting: Vec<Waiting> = session
        .waiting()
        .await
        .map_err(|e| Failure::Later(format!("listing: {e}")))?
        .into_iter()
        .filter(|w| !seen.contains(&w.key.0))
        .collect();
    if waiting.is_empty() {
        return Ok(());
    }
    let agents = store::email::agent_addresses(&rt.store).await.map_err(|e| Failure::Later(e.to_string()))?;
    let mailbox = importer::Mailbox { channel_id, settings, agents: &agents };

    let (fetched_tx, mut fetched_rx) = mpsc::channel::<Vec<(MailKey, Vec<u8>)>>(1);
    let (ready_tx, mut ready_rx) = mpsc::channel::<Vec<(MailKey, Prepared)>>(2 * BATCH_MAILS);
    let (committed_tx, mut committed_rx) = mpsc::unbounded_channel::<Vec<MailKey>>();
    let (announce_tx, mut announce_rx) = mpsc::channel::<Imported>(BATCH_MAILS * 2);
    let fetcher = async move {
        for keys in batches(waiting) {
            // Everything committed since the last fetch, in one acknowledgement.
            let done = and_the_rest(&mut committed_rx, Vec::new());
            acknowledge(rt, channel_id, session, &done, after, remember).await?;
            let mails = session.fetch_many(&keys).await.map_err(|e| Failure::Later(format!("fetching: {e}")))?;
            if fetched_tx.send(mails).await.is_err() {
                break; // a later stage stopped
            }
        }
        drop(fetched_tx);
        while let Some(first) = committed_rx.recv().await {
            let done = and_the_rest(&mut committed_rx, first);
            acknowledge(rt, channel_id, session, &done, after, remember).await?;
        }
        Ok(())
    };
    let preparer = async move {
        // Mail by mail, handed on in order: a large HTML mail takes as long as dozens of small ones, and the mails
        // queued behind it keep the other place busy meanwhile. A mail whose files cannot be written stops the
        // stage there: it and the ones after it are fetched again next round.
        let places = Arc::new(Semaphore::new(PREPARING));
        let settings = Arc::new(settings.clone());
        let mails = futures_util::stream::poll_fn(|cx| fetched_rx.poll_recv(cx)).flat_map(futures_util::stream::iter);
        let prepared = mails
            .map(|(key, raw)| prepare_one(places.clone(), blobs.clone(), settings.clone(), key, raw))
            .buffered(4 * BATCH_MAILS)
            .ready_chunks(BATCH_MAILS);
        let mut prepared = std::pin::pin!(prepared);
        while let Some(chunk) = prepared.next().await {
            let mut ready = Vec::with_capacity(chunk.len());
            let mut failed = None;
            for mail in chunk {
                match mail {
                    Ok(m) => ready.push(m),
                    Err(f) => {
                        failed = Some(f);
                        break;
                    }
                }
            }
            if !ready.is_empty() && ready_tx.send(ready).await.is_err() {
                return None;
            }
            if failed.is_some() {
                return failed;
            }
        }
        None
    };
    let storer = async move {
        while let Some(ready) = ready_rx.recv().await {
            let (committed, failed) = store_batch(rt, &mailbox, ready, &announce_tx).await;
            if !committed.is_empty() {
                // The fetcher may have stopped: then the mail stays unacknowledged, which is safe.
                let _ = committed_tx.send(committed);
            }
            if failed.is_some() {
                return failed;
            }
        }
        None
    };
    let announcer = async move {
        while let Some(a) = announce_rx.recv().await {
            if let Err(e) = importer::announce(rt, a).await {
                // Stored and committed: agents see it on their next load; only the live update was lost.
                tracing::warn!(error = %e, "a stored mail could not be announced");
            }
        }
    };
    let (fetched, prepare_failed, store_failed, ()) = tokio::join!(fetcher, preparer, storer, announcer);
    match store_failed.or(prepare_failed) {
        Some(failure) => Err(failure),
        None => fetched,
    }
}

/// `first` and every batch of committed keys already queued behind it, to acknowledge in one round trip.
fn and_the_rest(committed: &mut mpsc::UnboundedReceiver<Vec<MailKey>>, mut first: Vec<MailKey>) -> Vec<MailKey> {
    while let Ok(more) = committed.try_recv() {
        first.extend(more);
    }
    first
}

/// Mark committed mail done on the server (and, for POP3 mail left there, remember its key).
async fn acknowledge(
    rt: &Changes,
    channel_id: i64,
    session: &mut Session,
    keys: &[MailKey],
    after: AfterImport,
    remember: bool,
) -> Result<(), Failure> {
    if keys.is_empty() {
        return Ok(());
    }
    session.ack_many(keys, after).await.map_err(|e| Failure::Later(format!("acknowledging: {e}")))?;
    if remember {
        for key in keys {
            store::email::mark_seen(&rt.store, channel_id, key.0.clone())
                .await
                .map_err(|e| Failure::Later(e.to_string()))?;
        }
    }
    Ok(())
}

fn outcome_label(imported: &Imported) -> &'static str {
    match imported {
        Imported::Created(_) => "created",
        Imported::Appended { .. } => "appended",
        Imported::Duplicate { .. } => "duplicate",
        Imported::Logged { outcome, .. } => outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(key: &str, size: Option<u64>) -> Waiting {
        Waiting { key: MailKey(key.into()), size }
    }

    fn keys(batches: &[Vec<MailKey>]) -> Vec<Vec<&str>> {
        batches.iter().map(|b| b.iter().map(|k| k.0.as_str()).collect()).collect()
    }

    #[test]
    fn batches_keep_order_and_count() {
        let waiting: Vec<Waiting> = (1..=BATCH_MAILS * 2 + 1).map(|i| w(&i.to_string(), Some(10))).collect();
        let b = batches(waiting);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![BATCH_MAILS, BATCH_MAILS, 1]);
        let flat: Vec<String> = b.concat().into_iter().map(|k| k.0).collect();
        let expected: Vec<String> = (1..=BATCH_MAILS * 2 + 1).map(|i| i.to_string()).collect();
        assert_eq!(flat, expected, "oldest first, none lost, none twice");
        assert!(batches(vec![]).is_empty());
    }

    #[test]
    fn batches_stay_within_the_byte_budget() {
        let half = BATCH_BYTES / 2;
        let b = batches(vec![
            w("a", Some(half)),
            w("b", Some(half)),
            w("c", Some(1)),
            w("huge", Some(BATCH_BYTES * 3)),
            w("d", None),
            w("e", Some(half)),
        ]);
        assert_eq!(keys(&b), vec![vec!["a", "b"], vec!["c"], vec!["huge"], vec!["d", "e"]]);
    }
}
