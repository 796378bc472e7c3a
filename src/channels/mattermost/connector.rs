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
//! re-sync: the posts of every Mattermost channel the bot has conversations in, since the newest `create_at`
//! stored (`store::mattermost`), read over REST. Each post is stored once whichever way it arrives: its id is the
//! message's provider id, unique per channel instance. Backoff between attempts doubles from
//! [`BACKOFF_START`] to [`BACKOFF_MAX`]; a 401 (token revoked) marks the bot as needing attention and retries
//! slowly; a 429 waits as long as `X-Ratelimit-Reset` says.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::api::{Client, MmError, User};
use super::mapping::{self, Bot, ChannelType, Decision, Post};
use super::socket::{Frame, Session, SocketError};
use super::{ConnectionState, ConversationMode, Settings};
use crate::blobs::Blobs;
use crate::bus::{Bus, BusEvent, TypingEvent};
use crate::changes::Changes;
use crate::cluster::lease::Job;
use crate::cluster::supervisor::{self, Starter, Supervisor};
use crate::domain::{ChannelKind, ChannelScope};
use crate::outbound::Policy;
use crate::outbound::http_client::HttpClient;
use crate::realtime::Realtime;
use crate::store::messages::{CustomerMessage, Profile, Target};
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
/// How many times one REST call is retried after a 429 before the re-sync gives up for this connection.
const RATE_LIMIT_RETRIES: usize = 5;

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

/// The bot's loop (see the module docs). Ends only when aborted.
async fn run(mut c: Connector) {
    let mut resume: Option<(String, i64)> = None;
    let mut backoff = Backoff::new();
    c.set_state(ConnectionState::Reconnecting, Some("connecting".into())).await;
    loop {
        let opened = Session::open(
            c.api.http().policy(),
            c.api.server_url(),
            c.api.token(),
            resume.as_ref().map(|(id, next)| (id.as_str(), *next)),
        )
        .await;
        let ended = match opened {
            Err(SocketError::Unauthorized) => Ended::Unauthorized(SocketError::Unauthorized.to_string()),
            Err(e) => Ended::Dropped(e.to_string()),
            Ok(mut session) => {
                let ended = c.session(&mut session, &mut resume, &mut backoff).await;
                session.close().await;
                ended
            }
        };
        match ended {
            Ended::Unauthorized(reason) => {
                tracing::warn!(channel_id = c.channel_id, %reason, "Mattermost bot needs attention");
                c.set_state(ConnectionState::NeedsAttention, Some(reason)).await;
                resume = None;
                tokio::time::sleep(ATTENTION_RETRY).await;
            }
            Ended::Dropped(reason) => {
                tracing::info!(channel_id = c.channel_id, %reason, "Mattermost socket lost; reconnecting");
                c.set_state(ConnectionState::Reconnecting, Some(reason)).await;
                tokio::time::sleep(backoff.step()).await;
            }
        }
    }
}

impl Connector {
    fn bot(&self) -> Bot<'_> {
        Bot {
            user_id: &self.settings.bot_user_id,
            username: &self.settings.bot_username,
            mention_only: self.settings.mention_only,
            mode: self.settings.mode,
        }
    }

    async fn set_state(&self, state: ConnectionState, reason: Option<String>) {
        if let Err(e) = store::mattermost::set_state(&self.store, self.channel_id, state, reason).await {
            tracing::warn!(channel_id = self.channel_id, error = %e, "cannot record the Mattermost bot's state");
        }
    }

    /// Read one socket until it ends.
    async fn session(
        &mut self,
        session: &mut Session,
        resume: &mut Option<(String, i64)>,
        backoff: &mut Backoff,
    ) -> Ended {
        loop {
            let frame = match session.next().await {
                Ok(f) => f,
                Err(e) => return Ended::Dropped(e.to_string()),
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
                    self.set_state(ConnectionState::Connected, None).await;
                    backoff.reset();
                    if !resumed && let Err(e) = self.resync().await {
                        if matches!(e, MmError::Unauthorized) {
                            return Ended::Unauthorized(e.to_string());
                        }
                        tracing::warn!(channel_id = self.channel_id, error = %e, "Mattermost re-sync incomplete");
                    }
                }
                other => {
                    let mut gap = false;
                    if let (Some(seq), Some((_, next))) = (other.seq(), resume.as_mut()) {
                        gap = seq > *next;
                        *next = (*next).max(seq + 1);
                    }
                    self.event(other).await;
                    if gap && let Err(e) = self.resync().await {
                        tracing::warn!(channel_id = self.channel_id, error = %e, "Mattermost re-sync after a gap incomplete");
                    }
                }
            }
        }
    }

    async fn event(&mut self, frame: Frame) {
        match frame {
            Frame::Posted { post, channel_type, mentions, .. } => {
                let kind = ChannelType::parse(&channel_type);
                self.channel_types.insert(post.channel_id.clone(), kind);
                self.post(*post, kind, mentions.as_deref()).await;
            }
            Frame::Typing { user_id, channel_id, parent_id, .. } => {
                self.typing(&user_id, &channel_id, &parent_id).await
            }
            _ => {}
        }
    }

    /// Read what was posted since the newest stored post in every channel the bot has conversations in.
    async fn resync(&mut self) -> Result<(), MmError> {
        let state = store::mattermost::state(&self.store, self.channel_id).await.ok().flatten();
        let since = state.map(|s| s.last_create_at).unwrap_or(0);
        if since == 0 {
            // Nothing stored yet: posts from now on are ours.
            let _ =
                store::mattermost::advance(&self.store, self.channel_id, chrono::Utc::now().timestamp_millis()).await;
            return Ok(());
        }
        let channels = store::mattermost::known_channels(&self.store, self.channel_id).await.unwrap_or_default();
        for channel in channels {
            let posts = self
                .with_retries(|api| {
                    let channel = channel.clone();
                    async move { api.posts_since(&channel, since).await }
                })
                .await?;
            let kind = self.channel_type(&channel).await?;
            for post in posts {
                if post.create_at >= since {
                    self.post(post, kind, None).await;
                }
            }
        }
        Ok(())
    }

    /// A REST call, waiting out 429s as `X-Ratelimit-Reset` asks.
    async fn with_retries<T, F, Fut>(&self, call: F) -> Result<T, MmError>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, MmError>>,
    {
        let mut tries = 0;
        loop {
            match call(self.api.clone()).await {
                Err(MmError::RateLimited(wait)) if tries < RATE_LIMIT_RETRIES => {
                    tries += 1;
                    tracing::info!(channel_id = self.channel_id, ?wait, "Mattermost rate limit; waiting");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn channel_type(&mut self, id: &str) -> Result<ChannelType, MmError> {
        if let Some(t) = self.channel_types.get(id) {
            return Ok(*t);
        }
        let channel = self
            .with_retries(|api| {
                let id = id.to_owned();
                async move { api.channel(&id).await }
            })
            .await?;
        let kind = ChannelType::parse(&channel.kind);
        self.channel_types.insert(id.to_owned(), kind);
        Ok(kind)
    }

    async fn user(&mut self, id: &str) -> User {
        if let Some(u) = self.users.get(id) {
            return u.clone();
        }
        let found = self
            .with_retries(|api| {
                let id = id.to_owned();
                async move { api.user(&id).await }
            })
            .await;
        match found {
            Ok(u) => {
                self.users.insert(id.to_owned(), u.clone());
                u
            }
            Err(e) => {
                tracing::info!(channel_id = self.channel_id, error = %e, "Mattermost user not readable; named by id");
                User { id: id.to_owned(), username: id.to_owned(), ..Default::default() }
            }
        }
    }

    /// Store one post if the rules take it (see `mapping`); idempotent by the post id.
    async fn post(&mut self, post: Post, kind: ChannelType, mentions: Option<&[String]>) {
        let decision = mapping::decide(&self.bot(), &post, kind, mentions);
        if let Decision::Take(place) = decision {
            self.take(&post, place).await;
        }
        if let Err(e) = store::mattermost::advance(&self.store, self.channel_id, post.create_at).await {
            tracing::warn!(channel_id = self.channel_id, error = %e, "cannot record the Mattermost cursor");
        }
    }

    async fn take(&mut self, post: &Post, place: mapping::Place) {
        let link = match store::mattermost::link(&self.store, self.channel_id, &place.key).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(channel_id = self.channel_id, error = %e, "cannot read the Mattermost link");
                return;
            }
        };
        if link.is_none() && !place.may_start {
            return;
        }
        let user = self.user(&post.user_id).await;
        let content = if post.message.trim().is_empty() && !post.file_ids.is_empty() {
            "(files)".to_owned()
        } else if post.message.trim().is_empty() {
            "(no text)".to_owned()
        } else if place.key.starts_with("dm:") {
            post.message.clone()
        } else {
            mapping::shared_text(&user.username, &post.message)
        };
        let target = match &link {
            Some(l) => Target::Conversation { id: l.conversation_id, customer_id: l.customer_id },
            None => Target::Fresh {
                user_custom_id: post.user_id.clone(),
                profile: Profile {
                    name: crate::domain::text::clean_name(&user.display_name(), 200),
                    email: crate::domain::text::normalize_email(&user.email),
                    phone: None,
                    company: None,
                },
            },
        };
        let msg = CustomerMessage {
            channel_id: self.channel_id,
            target,
            content,
            content_html: None,
            external_message_id: Some(post.id.clone()),
            subject: String::new(),
            attachments: Vec::new(),
            quoted_message_id: None,
            outgoing: false,
        };
        match self.changes.customer_message(msg, None).await {
            Ok(out) => {
                if !out.duplicate {
                    self.files(post, out.message.id).await;
                }
                if link.as_ref().map(|l| l.conversation_id) != Some(out.conversation.id)
                    && let Err(e) = store::mattermost::put_link(
                        &self.store,
                        self.channel_id,
                        &place.key,
                        out.conversation.id,
                        &place.mm_channel_id,
                        &place.root_id,
                    )
                    .await
                {
                    tracing::warn!(channel_id = self.channel_id, error = %e, "cannot record the Mattermost link");
                }
            }
            Err(StoreError::Rule(store::Violation::ChannelDisabled { .. })) => {}
            Err(e) => {
                tracing::warn!(channel_id = self.channel_id, post = %post.id, error = %e, "Mattermost post not stored")
            }
        }
    }

    /// MM-10: the files of a stored post, fetched from Mattermost and attached to its message. A file that cannot be
    /// read is skipped (logged); the message stays.
    async fn files(&self, post: &Post, message_id: i64) {
        for file_id in post.file_ids.iter().take(MAX_FILES) {
            let fetched = async {
                let info = self.api.file_info(file_id).await?;
                let bytes = self.api.file(file_id).await?;
                Ok::<_, MmError>((info, bytes))
            }
            .await;
            let (info, bytes) = match fetched {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(channel_id = self.channel_id, file = %file_id, error = %e, "Mattermost file not fetched");
                    continue;
                }
            };
            let stored = match self.blobs.put(&bytes).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(channel_id = self.channel_id, error = %e, "cannot store a Mattermost file");
                    continue;
                }
            };
            let name: String = info.name.chars().filter(|c| !c.is_control()).take(255).collect();
            let mime = if info.mime_type.is_empty() { "application/octet-stream".to_owned() } else { info.mime_type };
            let file = store::attachments::NewAttachment {
                uploaded_by: None,
                file_name: if name.is_empty() { "file".into() } else { name },
                mime_type: mime,
                size_bytes: stored.size as i64,
                sha256: stored.sha256,
                storage_key: stored.storage_key,
            };
            if let Err(e) = store::mattermost::attach(&self.store, message_id, file).await {
                tracing::warn!(channel_id = self.channel_id, error = %e, "cannot attach a Mattermost file");
            }
        }
    }

    /// RT-5: a Mattermost user typing where a conversation is shows as the customer typing.
    async fn typing(&mut self, user_id: &str, channel_id: &str, parent_id: &str) {
        if user_id == self.settings.bot_user_id {
            return;
        }
        let keys = [
            format!("dm:{channel_id}"),
            match self.settings.mode {
                ConversationMode::Group => format!("ch:{channel_id}"),
                ConversationMode::Thread => format!("root:{parent_id}"),
            },
        ];
        for key in keys {
            if let Ok(Some(link)) = store::mattermost::link(&self.store, self.channel_id, &key).await {
                let name = self.user(user_id).await.display_name();
                self.bus.publish(BusEvent::Typing(TypingEvent {
                    conversation_id: link.conversation_id,
                    channel_id: self.channel_id,
                    agent_id: None,
                    name,
                    state: "start".into(),
                }));
                return;
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
    let (mm_channel, root) =
        store::mattermost::reply_target(store, ctx.conversation.id).await?.ok_or(DeliveryError::NoPlace)?;
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
        file_ids.push(api.upload(&mm_channel, &a.file_name, &mime, &bytes).await?);
    }
    api.create_post_with_files(&mm_channel, &text, &root, &file_ids).await?;
    Ok(())
}
