//! The mailbox connectors: one task per enabled email channel instance that logs in over IMAP or
//! POP3, imports what is waiting, acknowledges each mail on the server only after it was
//! committed, then waits — in IMAP IDLE when the server offers it (a new mail is a ticket within
//! seconds), else for the poll interval (EM-1, EM-4) — or for an admin's "check now".
//!
//! Failing to connect or log in five times in a row disables the mailbox with the reason shown to
//! admins (EM-5); re-enabling it starts a fresh task. Every node runs the connectors of every
//! mailbox: an import is idempotent by Message-ID, so two nodes reading the same mail store it once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::importer::{self, Outcome};
use super::net::{AfterImport, NetError, Protocol, Session};
use super::settings::EmailSettings;
use crate::blobs::Blobs;
use crate::domain::ChannelScope;
use crate::realtime::Realtime;
use crate::store::{self, models::ChannelInstance};

/// Longest single IDLE before it is renewed (RFC 2177 asks clients to re-issue within 29 minutes).
const MAX_IDLE: Duration = Duration::from_secs(20 * 60);

/// Handle on every mailbox connector of this node (cheap to clone).
#[derive(Clone)]
pub struct Mailboxes {
    inner: Arc<Inner>,
}

struct Inner {
    rt: Realtime,
    blobs: Blobs,
    running: Mutex<HashMap<i64, Running>>,
}

struct Running {
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Mailboxes {
    pub fn new(rt: Realtime, blobs: Blobs) -> Self {
        Self { inner: Arc::new(Inner { rt, blobs, running: Mutex::new(HashMap::new()) }) }
    }

    /// Start the connector of every enabled mailbox.
    pub async fn start_all(&self) -> store::StoreResult<usize> {
        let channels = store::channels::list(&self.inner.rt.store, &ChannelScope::All, Some("email")).await?;
        let mut started = 0;
        for c in &channels {
            if self.reload(c) {
                started += 1;
            }
        }
        Ok(started)
    }

    /// (Re)start a mailbox's connector with its current settings; stop it when it is disabled.
    /// Returns whether a connector now runs.
    pub fn reload(&self, channel: &ChannelInstance) -> bool {
        self.stop(channel.id);
        if !channel.enabled || channel.kind != "email" {
            return false;
        }
        let Some(settings) = EmailSettings::of(&channel.settings) else {
            tracing::warn!(channel_id = channel.id, "mailbox settings cannot be read; not started");
            return false;
        };
        let wake = Arc::new(Notify::new());
        let task =
            tokio::spawn(run(self.inner.rt.clone(), self.inner.blobs.clone(), channel.id, settings, wake.clone()));
        self.lock().insert(channel.id, Running { wake, task });
        true
    }

    pub fn stop(&self, channel_id: i64) {
        if let Some(r) = self.lock().remove(&channel_id) {
            r.task.abort();
        }
    }

    /// Stop every connector (the server is stopping).
    pub fn stop_all(&self) {
        for (_, r) in self.lock().drain() {
            r.task.abort();
        }
    }

    /// Check the mailbox now rather than at the next poll. False when no connector runs for it.
    pub fn check_now(&self, channel_id: i64) -> bool {
        match self.lock().get(&channel_id) {
            Some(r) if !r.task.is_finished() => {
                r.wake.notify_one();
                true
            }
            _ => false,
        }
    }

    /// Whether a connector runs for this mailbox.
    pub fn is_running(&self, channel_id: i64) -> bool {
        self.lock().get(&channel_id).is_some_and(|r| !r.task.is_finished())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Running>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for r in self.running.get_mut().unwrap_or_else(|p| p.into_inner()).values() {
            r.task.abort();
        }
    }
}

/// Why a round ended early.
enum Failure {
    /// Could not connect or log in: counts towards EM-5.
    Connect(NetError),
    /// Something after login (the connection dropped, a store error): retried next round.
    Later(String),
}

async fn run(rt: Realtime, blobs: Blobs, channel_id: i64, settings: EmailSettings, wake: Arc<Notify>) {
    let span = tracing::info_span!("mailbox", channel_id, host = %settings.host, protocol = ?settings.protocol);
    let _enter = span.enter();
    loop {
        match round(&rt, &blobs, channel_id, &settings).await {
            Ok(()) => {}
            Err(Failure::Connect(e)) => {
                metrics::counter!("switchboard_mailbox_failures_total").increment(1);
                match store::email::record_failure(&rt.store, channel_id, e.to_string()).await {
                    Ok(n) if n >= store::email::MAX_FAILURES => {
                        tracing::warn!(failures = n, error = %e, "mailbox disabled after repeated connection failures");
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
async fn round(rt: &Realtime, blobs: &Blobs, channel_id: i64, settings: &EmailSettings) -> Result<(), Failure> {
    let mut session =
        Session::connect(settings.protocol, &settings.endpoint(), &settings.credentials(), &settings.folder)
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

/// Import every waiting mail, acknowledging each after it is committed.
async fn drain(
    rt: &Realtime,
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
    let keys = session.pending().await.map_err(|e| Failure::Later(format!("listing: {e}")))?;
    if keys.iter().all(|k| seen.contains(&k.0)) {
        return Ok(());
    }
    let agents = store::email::agent_addresses(&rt.store).await.map_err(|e| Failure::Later(e.to_string()))?;
    let mailbox = importer::Mailbox { channel_id, settings, agents: &agents };
    for key in keys.into_iter().filter(|k| !seen.contains(&k.0)) {
        let raw = session.fetch(&key).await.map_err(|e| Failure::Later(format!("fetching {}: {e}", key.0)))?;
        let outcome = importer::import(rt, blobs, &mailbox, &raw).await.map_err(|e| Failure::Later(e.to_string()))?;
        metrics::counter!("switchboard_mail_imported_total", "outcome" => outcome_label(&outcome)).increment(1);
        session.ack(&key, after).await.map_err(|e| Failure::Later(format!("acknowledging {}: {e}", key.0)))?;
        if remember {
            store::email::mark_seen(&rt.store, channel_id, key.0.clone())
                .await
                .map_err(|e| Failure::Later(e.to_string()))?;
        }
    }
    Ok(())
}

fn outcome_label(o: &Outcome) -> &'static str {
    match o {
        Outcome::Created { .. } => "created",
        Outcome::Appended { .. } => "appended",
        Outcome::Duplicate { .. } => "duplicate",
        Outcome::Logged { outcome, .. } => outcome,
    }
}
