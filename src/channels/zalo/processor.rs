//! One OA's job (ZL-3…ZL-6), run on one node at a time under the OA's lease (`cluster::supervisor`, job
//! `zalo:{id}`): it turns the stored webhook events into changes, and refreshes the OA's access token before it
//! expires.
//!
//! **Events**: the unprocessed events are read in id order; each Zalo user's events are processed one after the
//! other in that order, different users' concurrently (at most [`PARALLEL`]). Each event's effect goes through the
//! change layer (`Changes::customer_message`, `message_updated`) and is idempotent — a message is keyed by Zalo's
//! `msg_id` on the channel, a receipt only raises a mark, follow / unfollow sets a field — and the event is marked
//! processed after it committed; so an event is acted on once even when the node dies between the two (the next
//! holder of the lease processes it again, to no effect). A failed event is tried again with backoff (its user's
//! later events wait behind it, other users do not), and after [`MAX_ATTEMPTS`] it is given up and recorded with
//! its error. The job wakes when an event was stored — here (the intake's wake) or on another node (the
//! supervisor's "check now" over the bus) — and every [`POLL`] regardless.
//!
//! **What each event does** (ZL-4, `docs/zalo.md`): a user's (or anonymous user's) message joins the chat of that
//! Zalo user by the last-chat rule (ZL-5: Zalo conversations are chats), its media fetched from Zalo's URLs into
//! the attachment store first (through the outgoing policy, size-capped) so the message commits with them;
//! `quote_msg_id` becomes the quoted message; an `oa_send_*` of a message our reply sent (its `msg_id` recorded by
//! the dispatcher) is skipped as an echo, any other is recorded as an outgoing message of the business; receipts
//! raise our messages' delivery marks (`message.updated`); follow / unfollow is written on the customer's profile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDateTime;
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use super::Settings;
use super::api;
use super::protocol::{self, Author, Event, Media, MessageEvent};
use super::tokens::{self, TokenError};
use crate::blobs::Blobs;
use crate::changes::Changes;
use crate::domain::ConnectionState;
use crate::domain::Receipt;
use crate::outbound::http_client::HttpClient;
use crate::store::attachments::NewAttachment;
use crate::store::messages::{CustomerMessage, Profile, Target};
use crate::store::models::ZaloEvent;
use crate::store::{self, Store, StoreError};

/// How often the job looks for events without being woken.
pub const POLL: Duration = Duration::from_millis(1000);
/// Users processed at once.
pub const PARALLEL: usize = 8;
/// Events read per round.
const BATCH: i64 = 500;
/// Tries of one event before it is given up (backoff doubling from 1 s, at most 5 minutes: about half an hour).
pub const MAX_ATTEMPTS: i64 = 12;
/// Tries in which a file that cannot be fetched holds its message back; after them the message is stored
/// without it (and says so).
const MEDIA_ATTEMPTS: i64 = 3;
/// How long an unmatched `oa_send_*` waits for a reply being sent to the same user to record its Zalo id.
const ECHO_WAIT: Duration = Duration::from_secs(60);
/// How often the refresher reads the tokens (one row): it sees an admin's new tokens within this.
const TOKEN_POLL: Duration = Duration::from_secs(2);
/// Processed events are kept this long (Zalo's retries end within about two hours).
const KEEP_EVENTS: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the job needs (cheap to clone).
#[derive(Clone)]
pub struct Ctx {
    pub store: Store,
    pub changes: Changes,
    pub blobs: Blobs,
    pub http: HttpClient,
    /// The largest file fetched from Zalo (the server's upload limit).
    pub max_file: usize,
}

/// The job of one OA: events and tokens, until aborted.
pub async fn run(ctx: Ctx, channel_id: i64, settings: Settings, wake: Arc<Notify>) {
    tokio::join!(events(ctx.clone(), channel_id, wake), refresher(ctx, channel_id, settings));
}

/// Process events as they come (see the module docs).
async fn events(ctx: Ctx, channel_id: i64, wake: Arc<Notify>) {
    let routes: Arc<Mutex<HashMap<String, i64>>> = Arc::new(Mutex::new(HashMap::new()));
    let mut pruned = tokio::time::Instant::now();
    loop {
        let next = match round(&ctx, channel_id, &routes).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(channel_id, error = %e, "cannot process Zalo events");
                Some(POLL)
            }
        };
        if let Some(wait) = next {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait.min(POLL)) => {}
            }
        }
        if pruned.elapsed() > Duration::from_secs(3600) {
            pruned = tokio::time::Instant::now();
            let before = store::now() - chrono::Duration::from_std(KEEP_EVENTS).unwrap_or_default();
            if let Err(e) = store::zalo::prune_events(&ctx.store, channel_id, before).await {
                tracing::warn!(channel_id, error = %e, "cannot prune Zalo events");
            }
        }
        // A hint only (which actor to ask first): bounded, refilled as users write.
        let mut r = routes.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() > 50_000 {
            r.clear();
        }
    }
}

/// One round over the pending events. `None`: go on at once (there may be more); `Some(wait)`: nothing due for
/// that long.
async fn round(
    ctx: &Ctx,
    channel_id: i64,
    routes: &Arc<Mutex<HashMap<String, i64>>>,
) -> Result<Option<Duration>, StoreError> {
    let pending = store::zalo::pending_events(&ctx.store, channel_id, BATCH).await?;
    if pending.is_empty() {
        return Ok(Some(POLL));
    }
    let now = store::now();
    // Each user's events in id order, up to the first that is not due: their order is kept.
    let mut users: Vec<Vec<ZaloEvent>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut blocked: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut soonest: Option<NaiveDateTime> = None;
    for e in pending {
        if blocked.contains(&e.zalo_user_id) {
            continue;
        }
        if let Some(at) = e.next_attempt_at.filter(|at| *at > now) {
            soonest = Some(soonest.map_or(at, |s| s.min(at)));
            blocked.insert(e.zalo_user_id.clone());
            continue;
        }
        let i = *index.entry(e.zalo_user_id.clone()).or_insert_with(|| {
            users.push(Vec::new());
            users.len() - 1
        });
        users[i].push(e);
    }
    if users.is_empty() {
        let wait = soonest.map(|s| (s - now).to_std().unwrap_or_default()).unwrap_or(POLL);
        return Ok(Some(wait.max(Duration::from_millis(20))));
    }
    futures_util::stream::iter(users)
        .for_each_concurrent(PARALLEL, |events| async move { user(ctx, channel_id, routes, events).await })
        .await;
    Ok(None)
}

/// What processing one event came to.
enum Step {
    Done,
    /// Try again at the time given; `counted`: a failed attempt (else only put off, e.g. an echo's wait).
    Later {
        error: String,
        counted: bool,
        wait: Duration,
    },
    /// Give up: marked processed with the error.
    GiveUp(String),
}

/// One user's events, in order, until one must wait.
async fn user(ctx: &Ctx, channel_id: i64, routes: &Arc<Mutex<HashMap<String, i64>>>, events: Vec<ZaloEvent>) {
    let mut done: Vec<i64> = Vec::new();
    for e in events {
        let step = match protocol::parse(&e.body) {
            Ok(event) => one(ctx, channel_id, routes, &e, event).await,
            Err(why) => Step::GiveUp(format!("cannot read the event: {why}")),
        };
        // A failed last attempt (of MAX_ATTEMPTS) is giving up.
        let step = match step {
            Step::Later { error, counted: true, .. } if e.attempts + 1 >= MAX_ATTEMPTS => Step::GiveUp(error),
            step => step,
        };
        match step {
            Step::Done => done.push(e.id),
            Step::GiveUp(error) => {
                tracing::warn!(channel_id, event = e.id, name = %e.event_name, %error, "Zalo event given up");
                flush(ctx, &mut done, None).await;
                flush(ctx, &mut vec![e.id], Some(error)).await;
            }
            Step::Later { error, counted, wait } => {
                if counted {
                    tracing::info!(channel_id, event = e.id, %error, "Zalo event failed; trying again");
                }
                flush(ctx, &mut done, None).await;
                let at = store::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                if let Err(err) = store::zalo::event_retry(&ctx.store, e.id, at, Some(error), counted).await {
                    tracing::warn!(channel_id, error = %err, "cannot record a Zalo event's retry");
                }
                // This user's later events wait behind it.
                return;
            }
        }
    }
    flush(ctx, &mut done, None).await;
}

/// Mark events processed (`error`: given up).
async fn flush(ctx: &Ctx, ids: &mut Vec<i64>, error: Option<String>) {
    if ids.is_empty() {
        return;
    }
    let taken = std::mem::take(ids);
    if let Err(e) = store::zalo::events_done(&ctx.store, taken, error).await {
        // Processed again later, to no effect (every effect is idempotent).
        tracing::warn!(error = %e, "cannot mark Zalo events processed");
    }
}

fn backoff(attempts: i64) -> Duration {
    Duration::from_secs(1u64 << attempts.clamp(0, 8) as u32).min(Duration::from_secs(300))
}

fn retry(e: &ZaloEvent, error: impl std::fmt::Display) -> Step {
    Step::Later { error: error.to_string(), counted: true, wait: backoff(e.attempts) }
}

/// Process one event.
async fn one(
    ctx: &Ctx,
    channel_id: i64,
    routes: &Arc<Mutex<HashMap<String, i64>>>,
    e: &ZaloEvent,
    event: Event,
) -> Step {
    match event {
        Event::Message(m) => message(ctx, channel_id, routes, e, m).await,
        Event::Received { msg_ids, .. } => receipts(ctx, channel_id, e, msg_ids, Receipt::Delivered).await,
        Event::Seen { msg_ids, .. } => receipts(ctx, channel_id, e, msg_ids, Receipt::Read).await,
        Event::Follow { user, by_app, following, source } => {
            let author = Author::User { id: user.clone(), by_app: by_app.clone() };
            let mut fields = Map::new();
            fields.insert(
                "zalo_follow".into(),
                json!({
                    "state": if following { "following" } else { "unfollowed" },
                    "at": e.received_at.and_utc().to_rfc3339(),
                    "source": source,
                }),
            );
            if let Some(b) = by_app {
                fields.insert("zalo_user_id_by_app".into(), Value::String(b));
            }
            let name = protocol::placeholder_name(&author);
            match store::zalo::customer_fields(&ctx.store, channel_id, &user, &name, fields).await {
                Ok(_) => Step::Done,
                Err(err) => retry(e, err),
            }
        }
        Event::Other(name) => {
            tracing::debug!(channel_id, %name, "Zalo event not handled");
            Step::Done
        }
    }
}

async fn receipts(ctx: &Ctx, channel_id: i64, e: &ZaloEvent, msg_ids: Vec<String>, receipt: Receipt) -> Step {
    match store::zalo::receipts(&ctx.store, channel_id, msg_ids, receipt).await {
        Ok(events) => {
            if let Err(err) = ctx.changes.message_updated(&events).await {
                // Committed: the hubs' repair delivers what was not published.
                tracing::warn!(channel_id, error = %err, "cannot publish a Zalo receipt");
            }
            Step::Done
        }
        Err(err) => retry(e, err),
    }
}

async fn message(
    ctx: &Ctx,
    channel_id: i64,
    routes: &Arc<Mutex<HashMap<String, i64>>>,
    e: &ZaloEvent,
    m: MessageEvent,
) -> Step {
    // Stored already (a retried delivery, or processed again after a crash), or one of our replies' parts.
    match store::zalo::is_known(&ctx.store, channel_id, &m.msg_id).await {
        Ok(true) => return Step::Done,
        Ok(false) => {}
        Err(err) => return retry(e, err),
    }
    let (key, outgoing) = match &m.author {
        Author::User { id, .. } => (id.clone(), false),
        Author::Anonymous { key } => (key.clone(), false),
        Author::Oa { to } => (to.clone(), true),
    };
    if outgoing {
        // Possibly the echo of a reply whose Zalo id is not recorded yet: wait for that send to finish.
        let young = (store::now() - e.received_at).to_std().unwrap_or_default() < ECHO_WAIT;
        match store::zalo::sending_to(&ctx.store, channel_id, &key).await {
            Ok(true) if young => {
                return Step::Later {
                    error: "waiting for a reply being sent to this user".into(),
                    counted: false,
                    wait: Duration::from_millis(200),
                };
            }
            Ok(_) => {}
            Err(err) => return retry(e, err),
        }
    }
    let content = protocol::content(&m);
    let mut files = Vec::new();
    let mut missing = 0;
    for media in &content.media {
        match fetch(ctx, media).await {
            Ok(file) => files.push(file),
            Err(err) if e.attempts + 1 < MEDIA_ATTEMPTS => {
                return retry(e, format!("cannot fetch {}: {err}", media.name));
            }
            Err(err) => {
                tracing::warn!(channel_id, event = e.id, error = %err, "a Zalo file could not be fetched; stored without it");
                missing += 1;
            }
        }
    }
    let mut text = content.text;
    if missing > 0 {
        text.push_str(&format!("\n({missing} file(s) could not be fetched from Zalo)"));
    }
    let quoted = match &m.quote_msg_id {
        Some(q) => match store::zalo::message_by_zalo_id(&ctx.store, channel_id, q).await {
            Ok(found) => found,
            Err(err) => return retry(e, err),
        },
        None => None,
    };
    let by_app = match &m.author {
        Author::User { by_app, .. } => by_app.clone(),
        _ => None,
    };
    let msg = CustomerMessage {
        channel_id,
        target: Target::Latest {
            user_custom_id: key.clone(),
            profile: Profile { name: Some(protocol::placeholder_name(&m.author)), ..Default::default() },
        },
        content: text,
        content_html: content.html.map(|h| crate::domain::html::sanitize(&h)),
        external_message_id: Some(m.msg_id.clone()),
        subject: String::new(),
        attachments: files,
        quoted_message_id: quoted,
        outgoing,
    };
    let latest = routes.lock().unwrap_or_else(|p| p.into_inner()).get(&key).copied();
    match ctx.changes.customer_message(msg, latest).await {
        Ok(out) => {
            routes.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), out.conversation.id);
            if out.created
                && let Some(b) = by_app
            {
                let fields = Map::from_iter([("zalo_user_id_by_app".to_owned(), Value::String(b))]);
                let name = protocol::placeholder_name(&m.author);
                if let Err(err) = store::zalo::customer_fields(&ctx.store, channel_id, &key, &name, fields).await {
                    tracing::warn!(channel_id, error = %err, "cannot record the Zalo user_id_by_app");
                }
            }
            Step::Done
        }
        Err(err) => retry(e, err),
    }
}

/// Fetch one file of an event into the attachment store.
async fn fetch(ctx: &Ctx, media: &Media) -> Result<NewAttachment, String> {
    let (bytes, mime) = api::download(&ctx.http, &media.url, ctx.max_file).await.map_err(|e| e.to_string())?;
    let stored = ctx.blobs.put(&bytes).await.map_err(|e| format!("cannot store the file: {e}"))?;
    let name: String = media.name.chars().filter(|c| !c.is_control() && !matches!(c, '/' | '\\')).take(255).collect();
    let guessed = mime_guess::from_path(&name).first().map(|m| m.essence_str().to_owned());
    let mime = match (mime, guessed) {
        (Some(m), _) if m != "application/octet-stream" => m,
        (_, Some(g)) => g,
        (Some(m), None) => m,
        (None, None) if media.inline => "image/jpeg".to_owned(),
        (None, None) => "application/octet-stream".to_owned(),
    };
    Ok(NewAttachment {
        uploaded_by: None,
        file_name: if name.is_empty() { "file".into() } else { name },
        mime_type: mime,
        size_bytes: stored.size as i64,
        sha256: stored.sha256,
        storage_key: stored.storage_key,
    })
}

/// Refresh the access token before it expires (ZL-6), on this node while it holds the OA's lease.
async fn refresher(ctx: Ctx, channel_id: i64, settings: Settings) {
    let mut wait_on_failure = Duration::from_secs(5);
    loop {
        let mut sleep = TOKEN_POLL;
        match tokens::current(&ctx.store, channel_id).await {
            Ok(t) if t.state == ConnectionState::NeedsAttention => {
                // Zalo refused these tokens' refresh: an admin gives new ones (a new generation).
            }
            Ok(t) if tokens::due(&t, store::now()) => {
                match tokens::refresh(&ctx.http, &ctx.store, channel_id, &settings, &t).await {
                    Ok(_) => wait_on_failure = Duration::from_secs(5),
                    Err(TokenError::Refused(_)) => {}
                    Err(e) => {
                        tracing::warn!(channel_id, error = %e, "Zalo token refresh failed; trying again");
                        sleep = wait_on_failure;
                        wait_on_failure = (wait_on_failure * 2).min(Duration::from_secs(300));
                    }
                }
            }
            Ok(t) => {
                if let Some(at) = t.expires_at {
                    let due = at - chrono::Duration::from_std(tokens::REFRESH_BEFORE).unwrap_or_default();
                    sleep =
                        (due - store::now()).to_std().unwrap_or_default().clamp(Duration::from_millis(100), TOKEN_POLL);
                }
            }
            Err(TokenError::NoTokens) => sleep = TOKEN_POLL * 15,
            Err(e) => tracing::warn!(channel_id, error = %e, "cannot read the Zalo tokens"),
        }
        tokio::time::sleep(sleep).await;
    }
}
