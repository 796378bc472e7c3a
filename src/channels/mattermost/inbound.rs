//! What a bot does with the posts it reads (MM-5…MM-11): the inbound pipeline of one bot's connector.
//!
//! - [`Pipeline`]: posts are handed to the change layer by a few *lanes* ([`LANES`] tasks, each with a bounded
//!   queue); a Mattermost channel always goes to the same lane, so the posts of a channel (and so of each of its
//!   conversations) are stored in the order they came, while different channels proceed concurrently. A full lane
//!   makes the socket reader wait (back-pressure): at most `LANES × (LANE_QUEUE + 1)` posts are in flight.
//! - [`Cursor`] (pure, unit-tested): the re-sync point. The stored `create_at` a fresh `hello` re-syncs from only
//!   moves past posts that are committed (or deliberately not taken): the oldest post still in a lane, or one whose
//!   commit failed, holds it back. The connector writes it every half second and when a socket ends, not once per
//!   post; a point that lags only means a re-sync reads a few posts again, which are stored once (a post's id is its
//!   message's provider id, unique per channel instance).
//! - The re-sync ([`Pipeline::resync`], MM-11): every channel the bot is a member of
//!   (`GET /users/{bot}/channels`, Mattermost 6.1+) whose `last_post_at` is not older than the re-sync point, read
//!   with `GET /channels/{id}/posts?since=` — so a first DM sent while the socket was down is found too. An older
//!   server (404 or 501 for that call) falls back to the channels the bot already has conversations in, with one
//!   warning.
//! - One post ([`Inbound::post`]): the rules of `mapping` decide whether and where it goes; its files are fetched
//!   into the blob store first and committed with the message in one change (MM-10). In thread mode the bot's own
//!   root post in a channel (an outbound conversation's first post) carries its conversation's id in its props
//!   ([`mapping::CONVERSATION_PROP`]) and links that conversation's thread here, in the channel's lane, before the
//!   channel's next posts — so a quick reply in that thread joins it whether or not the dispatcher has recorded the
//!   root yet (MM-7b).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::ConversationMode;
use super::Settings;
use super::api::{Client, MmError, User};
use super::mapping::{self, Bot, ChannelType, Decision, Post, Skip};
use crate::blobs::Blobs;
use crate::bus::{Bus, BusEvent, TypingEvent};
use crate::changes::Changes;
use crate::store::attachments::NewAttachment;
use crate::store::messages::{CustomerMessage, Profile, Target};
use crate::store::{self, Store, StoreError};

/// How many posts are handed to the change layer at once (one lane each; a channel always uses the same lane).
pub const LANES: usize = 8;
/// Posts waiting in one lane before the socket reader waits.
const LANE_QUEUE: usize = 32;
/// The most files taken from one post (Mattermost allows 10).
const MAX_FILES: usize = 10;
/// How many times one REST call is retried after a 429 before giving up.
const RATE_LIMIT_RETRIES: usize = 5;
/// How often a post whose commit failed for a passing reason (database busy) is tried again before it is left to
/// the next re-sync.
const COMMIT_TRIES: u32 = 3;
/// A re-sync reads from this much before the stored point: events of different channels are not strictly in
/// `create_at` order, and what is read twice is stored once.
const RESYNC_OVERLAP_MS: i64 = 2_000;

/// The re-sync point of one bot: which `create_at` everything before is committed (or deliberately not taken).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Posts in a lane, by `create_at` (a count: posts may share a millisecond).
    pending: BTreeMap<i64, usize>,
    /// The oldest post whose commit failed since the last re-sync began: the next re-sync must read it again.
    failed: Option<i64>,
    /// The newest post finished.
    done: i64,
}

impl Cursor {
    /// A post was handed to a lane.
    pub fn start(&mut self, create_at: i64) {
        *self.pending.entry(create_at).or_default() += 1;
    }

    /// A post left its lane: committed (or not taken) when `stored`, else failed.
    pub fn finish(&mut self, create_at: i64, stored: bool) {
        if let Some(n) = self.pending.get_mut(&create_at) {
            *n -= 1;
            if *n == 0 {
                self.pending.remove(&create_at);
            }
        }
        if stored {
            self.done = self.done.max(create_at);
        } else {
            self.failed = Some(self.failed.map_or(create_at, |f| f.min(create_at)));
        }
    }

    /// A re-sync begins: it reads from the stored point, which is not past any failed post.
    pub fn resync_started(&mut self) {
        self.failed = None;
    }

    /// Where a re-sync may start: the oldest post in a lane or failed, else the newest finished (0: none yet).
    pub fn safe(&self) -> i64 {
        match (self.pending.keys().next().copied(), self.failed) {
            (Some(p), Some(f)) => p.min(f),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => self.done,
        }
    }

    /// Posts in the lanes now.
    pub fn in_flight(&self) -> usize {
        self.pending.values().sum()
    }
}

/// A bot's inbound side, shared by its lanes (built by the connector from what it was started with).
pub(super) struct Inbound {
    pub store: Store,
    pub bus: Arc<dyn Bus>,
    pub changes: Changes,
    pub blobs: Blobs,
    pub api: Client,
    pub channel_id: i64,
    pub settings: Settings,
    pub users: Mutex<HashMap<String, User>>,
    pub channel_types: Mutex<HashMap<String, ChannelType>>,
    pub progress: Progress,
}

/// What the pipeline keeps about its own progress.
#[derive(Default)]
pub(super) struct Progress {
    cursor: Mutex<Cursor>,
    /// The point last written (`store::mattermost::advance` never moves it back).
    written: Mutex<i64>,
    /// The server has no `GET /users/{id}/channels`: warned once.
    old_server_warned: AtomicBool,
}

/// One post for a lane.
struct Job {
    post: Post,
    kind: ChannelType,
    mentions: Option<Vec<String>>,
}

/// The lanes of one bot (see the module docs). Dropping it stops them.
pub(super) struct Pipeline {
    inbound: Arc<Inbound>,
    lanes: Vec<mpsc::Sender<Job>>,
    _tasks: JoinSet<()>,
}

impl Pipeline {
    pub fn new(inbound: Inbound) -> Self {
        let inbound = Arc::new(inbound);
        let mut tasks = JoinSet::new();
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, rx) = mpsc::channel(LANE_QUEUE);
                tasks.spawn(lane(inbound.clone(), rx));
                tx
            })
            .collect();
        Self { inbound, lanes, _tasks: tasks }
    }

    pub fn inbound(&self) -> &Inbound {
        &self.inbound
    }

    /// Hand a post to its channel's lane (waits while that lane is full).
    pub async fn post(&self, post: Post, kind: ChannelType, mentions: Option<Vec<String>>) {
        let mut hasher = std::hash::DefaultHasher::new();
        post.channel_id.hash(&mut hasher);
        let lane = &self.lanes[(hasher.finish() % self.lanes.len() as u64) as usize];
        let create_at = post.create_at;
        self.inbound.lock_cursor().start(create_at);
        if lane.send(Job { post, kind, mentions }).await.is_err() {
            // The lanes are gone (the connector is stopping): the post stays for the next re-sync.
            self.inbound.lock_cursor().finish(create_at, false);
        }
    }

    /// Write the re-sync point if it moved (see [`Cursor`]).
    pub async fn flush(&self) {
        let safe = self.inbound.lock_cursor().safe();
        let mut written = *self.inbound.progress.written.lock().unwrap_or_else(|p| p.into_inner());
        if safe <= written {
            return;
        }
        match store::mattermost::advance(&self.inbound.store, self.inbound.channel_id, safe).await {
            Ok(()) => written = safe,
            Err(e) => {
                tracing::warn!(channel_id = self.inbound.channel_id, error = %e, "cannot record the Mattermost cursor")
            }
        }
        let mut w = self.inbound.progress.written.lock().unwrap_or_else(|p| p.into_inner());
        *w = (*w).max(written);
    }

    /// Read what was posted since the re-sync point in every channel of the bot that has posts since (MM-11).
    pub async fn resync(&self) -> Result<(), MmError> {
        let inbound = &self.inbound;
        self.flush().await;
        let stored = store::mattermost::state(&inbound.store, inbound.channel_id).await.ok().flatten();
        let since = stored.map(|s| s.last_create_at).unwrap_or(0);
        if since == 0 {
            // Nothing stored yet: posts from now on are ours.
            let now = chrono::Utc::now().timestamp_millis();
            let _ = store::mattermost::advance(&inbound.store, inbound.channel_id, now).await;
            let mut w = inbound.progress.written.lock().unwrap_or_else(|p| p.into_inner());
            *w = (*w).max(now);
            return Ok(());
        }
        inbound.lock_cursor().resync_started();
        let from = (since - RESYNC_OVERLAP_MS).max(1);
        for (channel, kind) in inbound.channels_since(from).await? {
            let posts = inbound
                .with_retries(|api| {
                    let channel = channel.clone();
                    async move { api.posts_since(&channel, from).await }
                })
                .await?;
            for post in posts.into_iter().filter(|p| p.create_at >= from) {
                self.post(post, kind, None).await;
            }
        }
        Ok(())
    }
}

/// One lane: its posts, one at a time, in order.
async fn lane(inbound: Arc<Inbound>, mut rx: mpsc::Receiver<Job>) {
    while let Some(job) = rx.recv().await {
        let stored = inbound.post(&job.post, job.kind, job.mentions.as_deref()).await;
        inbound.lock_cursor().finish(job.post.create_at, stored);
    }
}

impl Inbound {
    fn lock_cursor(&self) -> std::sync::MutexGuard<'_, Cursor> {
        self.progress.cursor.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bot(&self) -> Bot<'_> {
        Bot {
            user_id: &self.settings.bot_user_id,
            username: &self.settings.bot_username,
            mention_only: self.settings.mention_only,
            mode: self.settings.mode,
        }
    }

    /// Remember a channel's type (from a `posted` event or a channel list).
    pub fn learn_channel_type(&self, channel_id: &str, kind: ChannelType) {
        self.channel_types.lock().unwrap_or_else(|p| p.into_inner()).insert(channel_id.to_owned(), kind);
    }

    /// The channels a re-sync reads: the bot's channels with posts since `from`; on a server without
    /// `GET /users/{id}/channels`, those the bot has conversations in.
    async fn channels_since(&self, from: i64) -> Result<Vec<(String, ChannelType)>, MmError> {
        let bot = self.settings.bot_user_id.clone();
        let listed = self
            .with_retries(|api| {
                let bot = bot.clone();
                async move { api.user_channels(&bot).await }
            })
            .await;
        match listed {
            Ok(channels) => Ok(channels
                .into_iter()
                .filter(|c| c.last_post_at >= from)
                .map(|c| {
                    let kind = ChannelType::parse(&c.kind);
                    self.learn_channel_type(&c.id, kind);
                    (c.id, kind)
                })
                .collect()),
            Err(MmError::Status { status: 404 | 501, .. }) => {
                if !self.progress.old_server_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        channel_id = self.channel_id,
                        "this Mattermost server cannot list the bot's channels (GET /users/{{id}}/channels needs 6.1+): \
                         a re-sync reads only the channels the bot has conversations in"
                    );
                }
                let known = store::mattermost::known_channels(&self.store, self.channel_id).await.unwrap_or_default();
                let mut out = Vec::with_capacity(known.len());
                for id in known {
                    let kind = self.channel_type(&id).await?;
                    out.push((id, kind));
                }
                Ok(out)
            }
            Err(e) => Err(e),
        }
    }

    /// A REST call, waiting out 429s as `X-Ratelimit-Reset` asks.
    pub async fn with_retries<T, F, Fut>(&self, call: F) -> Result<T, MmError>
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

    async fn channel_type(&self, id: &str) -> Result<ChannelType, MmError> {
        if let Some(t) = self.channel_types.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(*t);
        }
        let channel = self
            .with_retries(|api| {
                let id = id.to_owned();
                async move { api.channel(&id).await }
            })
            .await?;
        let kind = ChannelType::parse(&channel.kind);
        self.learn_channel_type(id, kind);
        Ok(kind)
    }

    async fn user(&self, id: &str) -> User {
        if let Some(u) = self.users.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
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
                self.users.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned(), u.clone());
                u
            }
            Err(e) => {
                tracing::info!(channel_id = self.channel_id, error = %e, "Mattermost user not readable; named by id");
                User { id: id.to_owned(), username: id.to_owned(), ..Default::default() }
            }
        }
    }

    /// Store one post if the rules take it (see `mapping`); idempotent by the post id. False when it should be read
    /// again (its commit failed for a passing reason).
    async fn post(&self, post: &Post, kind: ChannelType, mentions: Option<&[String]>) -> bool {
        match mapping::decide(&self.bot(), post, kind, mentions) {
            Decision::Take(place) => self.take(post, place).await,
            Decision::Skip(Skip::OwnPost) => {
                if let Some(conversation_id) = mapping::started_thread(post, self.settings.mode, kind) {
                    // Idempotent with the dispatcher's own record of it (whichever comes first).
                    if let Err(e) =
                        store::mattermost::thread_started(&self.store, self.channel_id, conversation_id, &post.id).await
                    {
                        tracing::warn!(channel_id = self.channel_id, error = %e, "cannot record a Mattermost thread root");
                    }
                }
                true
            }
            Decision::Skip(_) => true,
        }
    }

    async fn take(&self, post: &Post, place: mapping::Place) -> bool {
        let link = match store::mattermost::link(&self.store, self.channel_id, &place.key).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(channel_id = self.channel_id, error = %e, "cannot read the Mattermost link");
                return false;
            }
        };
        if link.is_none() && !place.may_start {
            return true;
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
        // MM-10: the files first, into the blob store; then the message and its files in one commit. A post stored
        // before (read again by a re-sync) already has its files.
        let attachments = if post.file_ids.is_empty() {
            Vec::new()
        } else {
            match store::mattermost::has_post(&self.store, self.channel_id, &post.id).await {
                Ok(true) => Vec::new(),
                Ok(false) => self.files(post).await,
                Err(e) => {
                    tracing::warn!(channel_id = self.channel_id, error = %e, "cannot read the Mattermost post");
                    return false;
                }
            }
        };
        let msg = CustomerMessage {
            channel_id: self.channel_id,
            target,
            content,
            content_html: None,
            external_message_id: Some(post.id.clone()),
            subject: String::new(),
            attachments,
            quoted_message_id: None,
            outgoing: false,
        };
        let mut tries = 0;
        let out = loop {
            match self.changes.customer_message(msg.clone(), None).await {
                Ok(out) => break out,
                Err(StoreError::Rule(store::Violation::ChannelDisabled { .. })) => return true,
                Err(e @ (StoreError::PoolTimeout(_) | StoreError::Pool(_) | StoreError::Db(_)))
                    if tries + 1 < COMMIT_TRIES =>
                {
                    tries += 1;
                    tracing::info!(channel_id = self.channel_id, post = %post.id, error = %e, "Mattermost post not stored yet; trying again");
                    tokio::time::sleep(Duration::from_millis(200 << tries)).await;
                }
                Err(e @ (StoreError::PoolTimeout(_) | StoreError::Pool(_) | StoreError::Db(_))) => {
                    tracing::warn!(channel_id = self.channel_id, post = %post.id, error = %e, "Mattermost post not stored; the next re-sync reads it again");
                    return false;
                }
                Err(e) => {
                    tracing::warn!(channel_id = self.channel_id, post = %post.id, error = %e, "Mattermost post not stored");
                    return true;
                }
            }
        };
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
        true
    }

    /// MM-10: a post's files, fetched from Mattermost into the blob store, ready to be committed with its message. A
    /// file that cannot be read is skipped (logged); the message is stored all the same.
    async fn files(&self, post: &Post) -> Vec<NewAttachment> {
        let mut out = Vec::new();
        for file_id in post.file_ids.iter().take(MAX_FILES) {
            let fetched = async {
                let info = self
                    .with_retries(|api| {
                        let id = file_id.clone();
                        async move { api.file_info(&id).await }
                    })
                    .await?;
                let bytes = self
                    .with_retries(|api| {
                        let id = file_id.clone();
                        async move { api.file(&id).await }
                    })
                    .await?;
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
            out.push(NewAttachment {
                uploaded_by: None,
                file_name: if name.is_empty() { "file".into() } else { name },
                mime_type: mime,
                size_bytes: stored.size as i64,
                sha256: stored.sha256,
                storage_key: stored.storage_key,
            });
        }
        out
    }

    /// RT-5: a Mattermost user typing where a conversation is shows as the customer typing.
    pub async fn typing(&self, user_id: &str, channel_id: &str, parent_id: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_passes_only_finished_posts() {
        let mut c = Cursor::default();
        assert_eq!(c.safe(), 0, "nothing yet: nothing to write");
        c.start(10);
        c.start(20);
        c.start(20);
        assert_eq!((c.safe(), c.in_flight()), (10, 3));
        // A later channel's post committed first does not move it past the older one still in its lane.
        c.finish(20, true);
        assert_eq!(c.safe(), 10);
        c.finish(10, true);
        assert_eq!(c.safe(), 20, "one post at 20 is still in flight");
        c.finish(20, true);
        assert_eq!((c.safe(), c.in_flight()), (20, 0));
    }

    #[test]
    fn a_failed_post_holds_the_cursor_until_a_resync_reads_it_again() {
        let mut c = Cursor::default();
        c.start(10);
        c.start(30);
        c.finish(10, false);
        c.finish(30, true);
        assert_eq!(c.safe(), 10, "the failed post must be read again");
        c.start(40);
        c.finish(40, true);
        assert_eq!(c.safe(), 10);
        c.resync_started();
        c.start(10);
        assert_eq!(c.safe(), 10);
        c.finish(10, true);
        assert_eq!(c.safe(), 40);
    }
}
