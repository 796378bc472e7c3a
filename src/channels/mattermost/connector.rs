//! The Mattermost connectors (MM-5, MM-11): one task per enabled bot, on one node at a time.
//!
//! [`Bots`] is each node's connector supervisor for them (`cluster::supervisor`, like the mailboxes'): it
//! *reconciles* its connectors from the database — those of the enabled bots whose lease (`cluster::lease`, job
//! `mattermost:{id}`) it holds, restarted when their settings or token change — when a channel change arrives on
//! the bus (`BusEvent::Channel`, which the admin endpoints announce through `Changes::channel_changed`) and every
//! [`RECONCILE_EVERY`] regardless. A clean stop ([`Bots::stop_all`], then [`Bots::release_leases`]) hands the leases
//! back; after a crash another node takes over within the lease's time-to-live and re-syncs from the stored cursor.
//!
//! One bot's loop ([`run`]): open the WebSocket (resuming with `connection_id` + the next `sequence_number` after
//! a drop), and read events. A `hello` with the connection id we asked to resume means the server replays what we
//! missed; a fresh one (a new id: first connect, or the server could not replay) — or a gap in `seq` — starts a
//! re-sync over REST from the stored re-sync point (`super::inbound`: every channel of the bot with posts since).
//! Posts go to the inbound pipeline (`super::inbound::Pipeline`: in order per channel, channels concurrently). Each
//! post is stored once whichever way it arrives: its id is the message's provider id, unique per channel instance.
//! Backoff between attempts doubles from
//! [`BACKOFF_START`] to [`BACKOFF_MAX`]; a 401 (token revoked) marks the bot as needing attention and retries
//! slowly; a 429 waits as long as `X-Ratelimit-Reset` says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::api::{Client, MmError, User};
use super::inbound::{Inbound, Pipeline, Progress};
use super::mapping::{self, ChannelType};
use super::socket::{Frame, Session, SocketError};
use super::{ConnectionState, Settings};
use crate::blobs::Blobs;
use crate::bus::Bus;
use crate::changes::Changes;
use crate::cluster::lease::Job;
use crate::cluster::supervisor::{self, Starter, Supervisor};
use crate::domain::{ChannelKind, ChannelScope};
use crate::outbound::Policy;
use crate::outbound::http_client::HttpClient;
use crate::realtime::Realtime;
use crate::store::models::ChannelInstance;
use crate::store::{self, Store, StoreError};

/// How often a node reconciles its connectors with the database without being told (and renews its leases).
pub const RECONCILE_EVERY: Duration = crate::cluster::supervisor::RECONCILE_EVERY;
/// The first wait before reconnecting.
pub const BACKOFF_START: Duration = Duration::from_millis(200);
/// The longest wait between attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often a bot whose token Mattermost refuses tries again (an admin may have fixed it on the Mattermost side).
const ATTENTION_RETRY: Duration = Duration::from_secs(60);
/// The most files taken from one post (Mattermost allows 10).
const MAX_FILES: usize = 10;
/// How often the inbound pipeline's re-sync point is written while a socket is open.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// Handle on every bot connector of this node (cheap to clone): a [`Supervisor`] that starts [`run`].
#[derive(Clone)]
pub struct Bots {
    supervisor: Supervisor<Start>,
}

/// What a bot's connector is started with.
struct Start {
    store: Store,
    bus: Arc<dyn Bus>,
    changes: Changes,
    blobs: Blobs,
    http: HttpClient,
}

impl Starter for Start {
    fn job(&self, channel_id: i64) -> Job {
        Job::Mattermost(channel_id)
    }

    fn runnable(&self, c: &ChannelInstance) -> bool {
        c.secret.is_some() && Settings::of(&c.settings).is_some()
    }

    /// Settings and token: a change restarts the connector.
    fn fingerprint(&self, c: &ChannelInstance) -> String {
        format!("{}\u{0}{}", c.settings, c.secret.as_deref().unwrap_or_default())
    }

    fn start(&self, channel: &ChannelInstance, _wake: Arc<tokio::sync::Notify>) -> Option<supervisor::Connector> {
        let (Some(settings), Some(token)) = (Settings::of(&channel.settings), channel.secret.clone()) else {
            return None;
        };
        let connector = Connector {
            store: self.store.clone(),
            bus: self.bus.clone(),
            changes: self.changes.clone(),
            blobs: self.blobs.clone(),
            api: Client::new(self.http.clone(), &settings.server_url, &token),
            channel_id: channel.id,
            settings,
            users: HashMap::new(),
            channel_types: HashMap::new(),
        };
        Some(Box::pin(run(connector)))
    }
}

impl Bots {
    /// Call from inside the runtime connectors should run on.
    pub fn new(rt: &Realtime, changes: Changes, blobs: Blobs, policy: Policy) -> Self {
        let start =
            Start { store: rt.store.clone(), bus: rt.bus.clone(), changes, blobs, http: HttpClient::new(policy) };
        Self { supervisor: Supervisor::new("Mattermost bots", rt, ChannelKind::Mattermost, start) }
    }

    /// Start the connectors this node should run, then the supervisor. Returns how many run.
    pub async fn start_all(&self) -> store::StoreResult<usize> {
        self.supervisor.start_all().await
    }

    /// Stop the supervisor and every connector and wait until each has ended; nothing starts again.
    pub async fn stop_all(&self) {
        self.supervisor.stop_all().await;
    }

    /// Hand this node's bot leases back (after [`Self::stop_all`], on a clean stop).
    pub async fn release_leases(&self) {
        self.supervisor.release_leases().await;
    }

    /// Whether this node runs the bot's connector.
    pub fn is_running(&self, channel_id: i64) -> bool {
        self.supervisor.is_running(channel_id)
    }
}

/// One bot's connection and what it remembers between events.
struct Connector {
    store: Store,
    bus: Arc<dyn Bus>,
    changes: Changes,
    blobs: Blobs,
    api: Client,
    channel_id: i64,
    settings: Settings,
    users: HashMap<String, User>,
    channel_types: HashMap<String, ChannelType>,
}

/// How a session ended.
enum Ended {
    Unauthorized(String),
    Dropped(String),
}

/// Doubling waits with a little jitter.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self { next: BACKOFF_START }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_START;
    }

    fn step(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        let jitter = rand::random::<u64>() % (wait.as_millis() as u64 / 4 + 1);
        wait + Duration::from_millis(jitter)
    }
}

/// The bot's loop (see the module docs). Ends only when aborted (its lanes with it).
async fn run(c: Connector) {
    let pipeline = Pipeline::new(Inbound {
        store: c.store,
        bus: c.bus,
        changes: c.changes,
        blobs: c.blobs,
        api: c.api,
        channel_id: c.channel_id,
        settings: c.settings,
        users: Mutex::new(c.users),
        channel_types: Mutex::new(c.channel_types),
        progress: Progress::default(),
    });
    let bot = pipeline.inbound();
    let mut resume: Option<(String, i64)> = None;
    let mut backoff = Backoff::new();
    set_state(bot, ConnectionState::Reconnecting, Some("connecting".into())).await;
    loop {
        let opened = Session::open(
            bot.api.http().policy(),
            bot.api.server_url(),
            bot.api.token(),
            resume.as_ref().map(|(id, next)| (id.as_str(), *next)),
        )
        .await;
        let ended = match opened {
            Err(SocketError::Unauthorized) => Ended::Unauthorized(SocketError::Unauthorized.to_string()),
            Err(e) => Ended::Dropped(e.to_string()),
            Ok(mut session) => {
                let ended = read_session(&pipeline, &mut session, &mut resume, &mut backoff).await;
                session.close().await;
                ended
            }
        };
        pipeline.flush().await;
        match ended {
            Ended::Unauthorized(reason) => {
                tracing::warn!(channel_id = bot.channel_id, %reason, "Mattermost bot needs attention");
                set_state(bot, ConnectionState::NeedsAttention, Some(reason)).await;
                resume = None;
                tokio::time::sleep(ATTENTION_RETRY).await;
            }
            Ended::Dropped(reason) => {
                tracing::info!(channel_id = bot.channel_id, %reason, "Mattermost socket lost; reconnecting");
                set_state(bot, ConnectionState::Reconnecting, Some(reason)).await;
                tokio::time::sleep(backoff.step()).await;
            }
        }
    }
}

async fn set_state(bot: &Inbound, state: ConnectionState, reason: Option<String>) {
    if let Err(e) = store::mattermost::set_state(&bot.store, bot.channel_id, state, reason).await {
        tracing::warn!(channel_id = bot.channel_id, error = %e, "cannot record the Mattermost bot's state");
    }
}

/// Read one socket until it ends, handing posts to the pipeline and writing its re-sync point every
/// [`FLUSH_EVERY`].
async fn read_session(
    pipeline: &Pipeline,
    session: &mut Session,
    resume: &mut Option<(String, i64)>,
    backoff: &mut Backoff,
) -> Ended {
    let bot = pipeline.inbound();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let frame = tokio::select! {
            frame = session.next() => match frame {
                Ok(f) => f,
                Err(e) => return Ended::Dropped(e.to_string()),
            },
            _ = flush.tick() => {
                pipeline.flush().await;
                continue;
            }
        };
        match frame {
            Frame::Reply { seq_reply: 1, ok: false } => {
                return Ended::Unauthorized("Mattermost refused the bot token on the WebSocket".into());
            }
            Frame::Reply { .. } => {}
            Frame::Hello { connection_id, seq } => {
                let resumed = resume.as_ref().is_some_and(|(id, _)| *id == connection_id);
                if !resumed {
                    *resume = Some((connection_id, seq.unwrap_or(0) + 1));
                }
                set_state(bot, ConnectionState::Connected, None).await;
                backoff.reset();
                if !resumed && let Err(e) = pipeline.resync().await {
                    if matches!(e, MmError::Unauthorized) {
                        return Ended::Unauthorized(e.to_string());
                    }
                    tracing::warn!(channel_id = bot.channel_id, error = %e, "Mattermost re-sync incomplete");
                }
            }
            other => {
                let mut gap = false;
                if let (Some(seq), Some((_, next))) = (other.seq(), resume.as_mut()) {
                    gap = seq > *next;
                    *next = (*next).max(seq + 1);
                }
                match other {
                    Frame::Posted { post, channel_type, mentions, .. } => {
                        let kind = ChannelType::parse(&channel_type);
                        bot.learn_channel_type(&post.channel_id, kind);
                        pipeline.post(*post, kind, mentions).await;
                    }
                    Frame::Typing { user_id, channel_id, parent_id, .. } => {
                        bot.typing(&user_id, &channel_id, &parent_id).await
                    }
                    _ => {}
                }
                if gap && let Err(e) = pipeline.resync().await {
                    tracing::warn!(channel_id = bot.channel_id, error = %e, "Mattermost re-sync after a gap incomplete");
                }
            }
        }
    }
}

/// Why a reply was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the bot has no token")]
    NoToken,
    #[error("the bot's settings cannot be read")]
    NoSettings,
    #[error("the conversation has no Mattermost channel to answer in")]
    NoPlace,
    #[error(transparent)]
    Api(#[from] MmError),
    #[error("an attachment cannot be read: {0}")]
    File(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Post one agent reply (the dispatcher, MM-7, MM-8): top-level in group-chat mode, under the thread's root in
/// thread mode, with the quoted customer post first.
pub async fn deliver(
    http: &HttpClient,
    store: &Store,
    blobs: &Blobs,
    ctx: &store::outbox::DeliveryContext,
) -> Result<(), DeliveryError> {
    let settings = Settings::of(&ctx.channel.settings).ok_or(DeliveryError::NoSettings)?;
    let token = ctx.channel.secret.as_deref().ok_or(DeliveryError::NoToken)?;
    let target = store::mattermost::reply_target(store, ctx.conversation.id).await?.ok_or(DeliveryError::NoPlace)?;
    let (mm_channel, root) = (target.mm_channel_id.as_str(), target.root_id.as_str());
    let quoted = match ctx.message.quoted_message_id {
        Some(id) => store::messages::get(store, id, &ChannelScope::All).await.ok().map(|m| m.body_text),
        None => None,
    };
    let text = mapping::reply_text(&ctx.message.body_text, quoted.as_deref());
    let api = Client::new(http.clone(), &settings.server_url, token);
    // MM-10: files are uploaded first, then attached to the post.
    let mut file_ids = Vec::new();
    for a in ctx.attachments.iter().take(MAX_FILES) {
        let bytes = blobs.get(&a.storage_key).await.map_err(|e| DeliveryError::File(e.to_string()))?;
        let mime: String = a.mime_type.chars().filter(|c| !c.is_control()).collect();
        file_ids.push(api.upload(mm_channel, &a.file_name, &mime, &bytes).await?);
    }
    // MM-7b: the first post of an outbound conversation in thread mode is its thread's root. It names its
    // conversation, so the inbound lane links the thread too if its event comes before the record below.
    let starts_thread = target.place == store::mattermost::unstarted_thread(ctx.conversation.id);
    let props = mapping::reply_props(starts_thread.then_some(ctx.conversation.id));
    let post = api.create_post(mm_channel, &text, root, &file_ids, props).await?;
    if starts_thread
        && let Err(e) = store::mattermost::thread_started(store, ctx.channel.id, ctx.conversation.id, &post.id).await
    {
        // Posted all the same: posting again would be a duplicate. Later replies go top-level.
        tracing::warn!(conversation_id = ctx.conversation.id, error = %e, "cannot record the Mattermost thread root");
    }
    Ok(())
}
