//! What the email channel keeps (EM-1…EM-13, EO-1): a mail imported as a new ticket or as a
//! message of an existing one in one transaction (attachments, subscribers, subject commands,
//! the raw source) — mails come in batches ([`import_batch`]), read for threading and stored in
//! order in one call to the database — the lookups threading needs, the log of mail that made no ticket, and each
//! mailbox's connection health (EM-5) and the remote keys it already imported.
//!
//! Decisions are made before: the connector parses the mail, applies the junk rules and the
//! threading rules (`channels::email`, through [`ThreadedMail::route`]), and hands over an
//! [`IncomingMail`] that says what to do. What a mail does to the ticket it threads into is the
//! conversation lifecycle's call (`domain::lifecycle`, the rule of every channel): a customer's
//! mail reopens a pending ticket and starts a new one when the ticket is closed (CORE-7).
//! This module only makes it so, atomically and idempotently: the same Message-ID on the same
//! mailbox, or already in the target ticket, is never stored twice (a crash between commit and
//! the server-side delete re-imports it as a no-op).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::audit::Actor;
use super::conversations::{ConversationRow, CreatedConversation, insert_conversation, lifecycle_state, status_base};
use super::events::{self, EventRow, record_event};
use super::messages::decorate_one;
use super::models::{Attachment, ChannelInstance, Conversation, Message};
use super::schema::{
    agents, attachments, channel_access, channel_instances, conversation_subscribers, conversation_tags, conversations,
    customer_identities, customers, mail_log, mail_sources, mailbox_seen, mailbox_state, messages, outbox, teams,
};
use super::{Store, StoreError, StoreResult, now};
use crate::blobs::Blobs;
use crate::channels::email::{TicketLookup, TicketRef};
use crate::db_tx;
use crate::domain::lifecycle::{self, ChatChange, Effect, Event, Outcome, StatusChange};
use crate::domain::{Direction, Source, StatusBase};
use crate::{db_run, store};

/// After this many connection failures in a row a mailbox is disabled (EM-5).
pub const MAX_FAILURES: i64 = 5;

/// Point stored files at their message (inside the import transaction).
macro_rules! link_files {
    ($conn:ident, $files:expr, $message_id:expr) => {{
        let ids: Vec<i64> = $files.iter().map(|a| a.id).collect();
        if !ids.is_empty() {
            diesel::update(attachments::table.filter(attachments::id.eq_any(ids)))
                .set(attachments::message_id.eq(Some($message_id)))
                .execute($conn)
                .await?;
        }
        Ok::<(), StoreError>(())
    }};
}

/// A file already written to the blob store.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub file_name: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub storage_key: String,
    pub content_id: Option<String>,
}

/// A stored source's `storage_key`, `content` and `size_bytes` columns.
type SourceColumns = (Option<String>, Option<Vec<u8>>, i64);

/// Where a mail's raw source is kept for audit: in its database row when small, in the blob store when large.
///
/// Why both: nearly all mail is a few KiB, and a file of its own cost an import more than parsing and storing
/// the mail together (a new inode, a temporary name and a rename); a 20 MiB mail with attachments would bloat the
/// database and every backup of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawSource {
    Inline(Vec<u8>),
    File { storage_key: String, size_bytes: i64 },
}

impl RawSource {
    /// Sources up to this size are kept in the row.
    pub const INLINE_MAX: usize = 64 * 1024;

    /// Keep `raw`: in the row when small, else as a file in `blobs`. Blocking (hashing, file writes).
    pub fn keep_blocking(blobs: &Blobs, raw: &[u8]) -> std::io::Result<Self> {
        if raw.len() <= Self::INLINE_MAX {
            return Ok(Self::Inline(raw.to_vec()));
        }
        let b = blobs.put_blocking(raw)?;
        Ok(Self::File { storage_key: b.storage_key, size_bytes: b.size as i64 })
    }

    /// [`RawSource::keep_blocking`] from async code (on a blocking thread).
    pub async fn keep(blobs: &Blobs, raw: Vec<u8>) -> std::io::Result<Self> {
        let blobs = blobs.clone();
        match tokio::task::spawn_blocking(move || Self::keep_blocking(&blobs, &raw)).await {
            Ok(kept) => kept,
            Err(e) => Err(std::io::Error::other(format!("keeping a mail's source was cancelled: {e}"))),
        }
    }

    pub fn size_bytes(&self) -> i64 {
        match self {
            Self::Inline(bytes) => bytes.len() as i64,
            Self::File { size_bytes, .. } => *size_bytes,
        }
    }

    /// The bytes, read from the blob store when they are a file.
    pub async fn bytes(self, blobs: &Blobs) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Inline(bytes) => Ok(bytes),
            Self::File { storage_key, .. } => blobs.get(&storage_key).await,
        }
    }

    /// The `storage_key` and `content` columns (exactly one is set; the tables check it too).
    fn columns(&self) -> (Option<&str>, Option<&[u8]>) {
        match self {
            Self::Inline(bytes) => (None, Some(bytes)),
            Self::File { storage_key, .. } => (Some(storage_key), None),
        }
    }

    /// Back from the `(storage_key, content, size_bytes)` columns.
    fn from_columns((storage_key, content, size_bytes): SourceColumns) -> Option<Self> {
        match (storage_key, content) {
            (_, Some(bytes)) => Some(Self::Inline(bytes)),
            (Some(storage_key), None) => Some(Self::File { storage_key, size_bytes }),
            (None, None) => None,
        }
    }
}

/// Who wrote the mail.
#[derive(Debug, Clone)]
pub enum Sender {
    /// A customer (or a subscriber) by address; created when unknown and `create` is set (EM-8).
    Customer { email: String, name: Option<String>, create: bool },
    /// A registered agent answering by mail: a reply to the customer, or a note with `#tech#`.
    Agent { id: i64 },
}

#[derive(Debug, Clone)]
pub enum MailTarget {
    /// A new ticket, in `team_id` when given (EM-7, EM-9), with these addresses subscribed (EM-10).
    New { team_id: Option<i64>, subscribers: Vec<String> },
    /// A message of this ticket (already the survivor of any merge).
    Reply { conversation_id: i64 },
}

#[derive(Debug, Clone)]
pub struct IncomingMail {
    /// The mailbox (channel instance) it arrived in.
    pub channel_id: i64,
    /// The mail's Message-ID without angle brackets (synthesised from the content when absent).
    pub message_id: String,
    pub sender: Sender,
    pub subject: String,
    pub text: String,
    /// Sanitised HTML; `cid:` links are still `channels::email::parse` placeholders.
    pub html: Option<String>,
    pub files: Vec<StoredFile>,
    /// The raw source.
    pub source: RawSource,
    pub from_address: String,
    pub recipients: Vec<String>,
    pub target: MailTarget,
    /// `#tech#`: technicians only (a note).
    pub note: bool,
    /// `#close#`.
    pub close: bool,
    /// `#unsubscribe#` / `#unsub#`: the sender leaves the ticket's subscribers.
    pub unsubscribe: bool,
}

pub enum Imported {
    Created(CreatedConversation),
    Appended {
        message: Message,
        attachments: Vec<Attachment>,
        conversation: ConversationRow,
        events: Vec<EventRow>,
    },
    /// Stored before (same Message-ID on this mailbox or in the target ticket): nothing written.
    Duplicate {
        conversation_id: i64,
    },
    /// Not a ticket: logged for admins as `junk`, `unparseable` or `rejected` (an unknown sender while "accept mail
    /// from unregistered users" is off, EM-8), with this reason.
    Logged {
        outcome: &'static str,
        reason: String,
    },
}

/// The writes of one mail ([`IncomingMail`] `$mail`, a reference, into the mailbox `$channel`, its row), as the body of its own transaction (a savepoint
/// inside a batch's): `Ok(None)` when the sender is refused (EM-8) and nothing was written.
macro_rules! import_mail {
    ($conn:ident, $channel:expr, $mail:expr, $presence:expr) => {{
        let mail: &IncomingMail = $mail;
        let channel: &ChannelInstance = $channel;
        let t = now();

        // Idempotency: this mailbox saw it, or the ticket it threads into already has it.
        let target_id = match &mail.target {
            MailTarget::Reply { conversation_id } => Some(*conversation_id),
            MailTarget::New { .. } => None,
        };
        let seen: Option<i64> = messages::table
            .filter(messages::provider_message_id.eq(&mail.message_id))
            .filter(messages::channel_instance_id.eq(channel.id).or(messages::conversation_id.nullable().eq(target_id)))
            .select(messages::conversation_id)
            .first($conn)
            .await
            .optional()?;
        if let Some(conversation_id) = seen {
            return Ok(Some(Imported::Duplicate { conversation_id }));
        }

        // The customer's name when known here (most mail), so a new ticket needs no read-back.
        let mut customer_name: Option<String> = None;
        let (customer_id, agent_id): (Option<i64>, Option<i64>) = match &mail.sender {
            Sender::Agent { id } => (None, Some(*id)),
            Sender::Customer { email, name, create } => {
                let known: Option<(i64, Option<i64>, String)> = customer_identities::table
                    .inner_join(customers::table)
                    .filter(customer_identities::kind.eq("email"))
                    .filter(customer_identities::value.eq(email))
                    .select((customers::id, customers::merged_into_id, customers::name))
                    .first($conn)
                    .await
                    .optional()?;
                let id = match known {
                    // A merged customer's tickets go to the survivor, whose name is read with the ticket.
                    Some((_, Some(survivor), _)) => Some(survivor),
                    Some((id, None, name)) => {
                        customer_name = Some(name);
                        Some(id)
                    }
                    None if *create => {
                        let display = name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| email.clone());
                        let id: i64 = diesel::insert_into(customers::table)
                            .values((
                                customers::name.eq(&display),
                                customers::created_at.eq(t),
                                customers::updated_at.eq(t),
                            ))
                            .returning(customers::id)
                            .get_result($conn)
                            .await?;
                        diesel::insert_into(customer_identities::table)
                            .values((
                                customer_identities::customer_id.eq(id),
                                customer_identities::kind.eq("email"),
                                customer_identities::channel_instance_id.eq(None::<i64>),
                                customer_identities::value.eq(email),
                                customer_identities::created_at.eq(t),
                            ))
                            .execute($conn)
                            .await?;
                        customer_name = Some(display);
                        Some(id)
                    }
                    None => None,
                };
                (id, None)
            }
        };

        // The files first (unlinked), so the HTML can point at them.
        let mut files: Vec<Attachment> = Vec::with_capacity(mail.files.len());
        for f in &mail.files {
            files.push(
                diesel::insert_into(attachments::table)
                    .values((
                        attachments::file_name.eq(&f.file_name),
                        attachments::mime_type.eq(&f.mime_type),
                        attachments::size_bytes.eq(f.size_bytes),
                        attachments::sha256.eq(&f.sha256),
                        attachments::storage_key.eq(&f.storage_key),
                        attachments::content_id.eq(&f.content_id),
                        attachments::created_at.eq(t),
                    ))
                    .returning(Attachment::as_returning())
                    .get_result($conn)
                    .await?,
            );
        }
        let html = mail.html.as_deref().map(|h| {
            crate::channels::email::parse::fill_attachment_links(h, |cid| {
                files
                    .iter()
                    .find(|a| a.content_id.as_deref() == Some(cid))
                    .map(|a| format!("/api/v1/attachments/{}", a.id))
            })
        });
        let ext = Some(mail.message_id.clone());

        // Threading named a ticket (its merge survivor, EM-6; one merged since is followed here).
        // Whether the mail joins it is the lifecycle's call, as on every channel: a customer's mail
        // to a closed ticket starts a new one (CORE-7), to a pending one reopens it.
        let from_customer = agent_id.is_none();
        let event = if mail.note {
            Event::Note
        } else if from_customer {
            Event::CustomerMessage
        } else {
            Event::AgentReply
        };
        let joined: Option<(Conversation, StatusBase, Effect)> = match &mail.target {
            MailTarget::New { .. } => None,
            MailTarget::Reply { conversation_id } => {
                let mut conv: Conversation = conversations::table
                    .find(*conversation_id)
                    .select(Conversation::as_select())
                    .first($conn)
                    .await
                    .optional()?
                    .ok_or_else(|| {
                        StoreError::BadReference(format!("conversation {conversation_id} does not exist"))
                    })?;
                let mut hops = 0;
                while let Some(into) = conv.merged_into_id {
                    hops += 1;
                    if hops > 32 {
                        return Err(store::Violation::MergeChainTooLong.into());
                    }
                    conv = conversations::table.find(into).select(Conversation::as_select()).first($conn).await?;
                }
                let base = status_base!($conn, &conv.status);
                match lifecycle::decide(lifecycle_state(&conv, base)?, event) {
                    Outcome::Apply(effect) => Some((conv, base, effect)),
                    Outcome::StartNew => None,
                    // Not for a conversation that is not merged.
                    Outcome::Unchanged | Outcome::FollowMerge => {
                        Some((conv, base, Effect { status: StatusChange::Keep, chat: ChatChange::None }))
                    }
                    Outcome::Refuse(why) => {
                        return Err(store::Violation::refused(conv.id, conv.merged_into_id, why).into());
                    }
                }
            }
        };
        let (message_id, imported) = match joined {
            None => {
                // A follow-up of a closed ticket gets the mailbox's defaults and no subscribers (EM-10).
                let no_subscribers: Vec<String> = Vec::new();
                let (team_id, subscribers) = match &mail.target {
                    MailTarget::New { team_id, subscribers } => (*team_id, subscribers),
                    MailTarget::Reply { .. } => (None, &no_subscribers),
                };
                let Some(customer_id) = customer_id else {
                    if agent_id.is_some() {
                        return Err(store::Violation::AgentMailStartsTicket.into());
                    }
                    return Ok(None);
                };
                let (mut conversation, message, event, tags) = insert_conversation!(
                    $conn,
                    channel,
                    customer_id,
                    &mail.subject,
                    Direction::In,
                    Source::Channel,
                    None::<i64>,
                    &mail.text,
                    &html,
                    &ext,
                    t,
                    Actor::System,
                    $presence
                );
                if let Some(team) = team_id {
                    let exists: Option<i64> =
                        teams::table.find(team).select(teams::id).first($conn).await.optional()?;
                    if exists.is_some() {
                        diesel::update(conversations::table.find(conversation.id))
                            .set(conversations::team_id.eq(exists))
                            .execute($conn)
                            .await?;
                        conversation.team_id = exists;
                    }
                }
                for email in subscribers {
                    diesel::insert_into(conversation_subscribers::table)
                        .values((
                            conversation_subscribers::conversation_id.eq(conversation.id),
                            conversation_subscribers::email.eq(email),
                            conversation_subscribers::created_at.eq(t),
                        ))
                        .on_conflict_do_nothing()
                        .execute($conn)
                        .await?;
                }
                link_files!($conn, &files, message.id)?;
                // As inserted: nothing else changed the row since (read back only for a merged customer's survivor).
                let row = match customer_name {
                    Some(customer_name) => {
                        ConversationRow { conversation, tags, customer_name, channel_kind: channel.kind.to_string() }
                    }
                    None => decorate_one!($conn, conversation.id),
                };
                let message_id = message.id;
                (
                    message_id,
                    Imported::Created(CreatedConversation {
                        conversation: row,
                        message,
                        created: true,
                        events: vec![event],
                    }),
                )
            }
            Some((conv, base, effect)) => {
                let direction = match (from_customer, mail.note) {
                    (_, true) => Direction::Note,
                    (true, false) => Direction::In,
                    (false, false) => Direction::Out,
                };
                // The lifecycle's effect (a customer's mail reopens a pending ticket), then
                // `#close#` (EM-13) as a status change. Built-in statuses are keyed by their base.
                let effect = if mail.close {
                    super::conversations::effect(&conv, base, Event::SetStatus(StatusBase::Closed))?.unwrap_or(effect)
                } else {
                    effect
                };
                let status = match effect.status {
                    StatusChange::Keep => conv.status.clone(),
                    StatusChange::Set(base) => base.as_str().to_owned(),
                };
                let closing = mail.close && base != StatusBase::Closed;
                let closed_at = if mail.close {
                    conv.closed_at.or(Some(t))
                } else if status != conv.status {
                    None
                } else {
                    conv.closed_at
                };
                let updated: Conversation = diesel::update(conversations::table.find(conv.id))
                    .set((
                        conversations::last_seq.eq(conversations::last_seq + 1),
                        conversations::updated_at.eq(t),
                        conversations::status.eq(&status),
                        conversations::closed_at.eq(closed_at),
                        conversations::last_customer_activity_at.eq(if direction == Direction::In {
                            Some(t)
                        } else {
                            conv.last_customer_activity_at
                        }),
                        conversations::last_agent_activity_at.eq(if direction == Direction::Out {
                            Some(t)
                        } else {
                            conv.last_agent_activity_at
                        }),
                        conversations::first_response_at.eq(if direction == Direction::Out {
                            conv.first_response_at.or(Some(t))
                        } else {
                            conv.first_response_at
                        }),
                    ))
                    .returning(Conversation::as_returning())
                    .get_result($conn)
                    .await?;
                let seq = updated.last_seq;
                let message: Message = diesel::insert_into(messages::table)
                    .values((
                        messages::conversation_id.eq(conv.id),
                        messages::seq.eq(seq),
                        messages::direction.eq(direction.as_str()),
                        messages::source.eq(if from_customer {
                            Source::Channel.as_str()
                        } else {
                            Source::Agent.as_str()
                        }),
                        messages::author_agent_id.eq(agent_id),
                        messages::author_customer_id.eq(customer_id),
                        messages::body_text.eq(&mail.text),
                        messages::body_html.eq(&html),
                        messages::channel_instance_id.eq(channel.id),
                        messages::provider_message_id.eq(&ext),
                        messages::created_at.eq(t),
                    ))
                    .returning(Message::as_returning())
                    .get_result($conn)
                    .await?;
                if direction == Direction::Out {
                    diesel::insert_into(outbox::table)
                        .values(&store::outbox::new_delivery(conv.channel_instance_id, conv.id, message.id, t))
                        .execute($conn)
                        .await?;
                }
                link_files!($conn, &files, message.id)?;
                let mut recorded = vec![record_event!(
                    $conn,
                    conv.id,
                    conv.channel_instance_id,
                    events::MESSAGE_CREATED,
                    Some(seq),
                    Some(message.id),
                    t
                )];
                if status != conv.status || closing {
                    recorded.push(record_event!(
                        $conn,
                        conv.id,
                        conv.channel_instance_id,
                        events::CONVERSATION_UPDATED,
                        None::<i64>,
                        None::<i64>,
                        t
                    ));
                }
                if mail.unsubscribe {
                    diesel::delete(
                        conversation_subscribers::table
                            .filter(conversation_subscribers::conversation_id.eq(conv.id))
                            .filter(conversation_subscribers::email.eq(mail.from_address.to_lowercase())),
                    )
                    .execute($conn)
                    .await?;
                }
                // As linked above, without reading them back.
                let files: Vec<Attachment> =
                    files.iter().cloned().map(|a| Attachment { message_id: Some(message.id), ..a }).collect();
                let row = decorate_one!($conn, conv.id);
                (message.id, Imported::Appended { message, attachments: files, conversation: row, events: recorded })
            }
        };
        let (storage_key, content) = mail.source.columns();
        diesel::insert_into(mail_sources::table)
            .values((
                mail_sources::message_id.eq(message_id),
                mail_sources::storage_key.eq(storage_key),
                mail_sources::content.eq(content),
                mail_sources::size_bytes.eq(mail.source.size_bytes()),
                mail_sources::from_address.eq(&mail.from_address),
                mail_sources::recipients.eq(serde_json::to_string(&mail.recipients).unwrap_or_else(|_| "[]".into())),
                mail_sources::created_at.eq(t),
            ))
            .execute($conn)
            .await?;
        diesel::insert_into(mailbox_state::table)
            .values((mailbox_state::channel_instance_id.eq(channel.id), mailbox_state::imported_total.eq(1)))
            .on_conflict(mailbox_state::channel_instance_id)
            .do_update()
            .set(mailbox_state::imported_total.eq(mailbox_state::imported_total + 1))
            .execute($conn)
            .await?;
        Ok(Some(imported))
    }};
}

/// What threading needs about the tickets a mail may name, read in one go so the pure rules
/// (`channels::email::threading`) can run over it.
#[derive(Debug, Default, Clone)]
pub struct ThreadIndex {
    by_number: HashMap<u64, TicketRef>,
    by_message_id: HashMap<String, i64>,
    merged_into: HashMap<i64, i64>,
}

impl TicketLookup for ThreadIndex {
    fn ticket_by_number(&self, number: u64) -> Option<TicketRef> {
        self.by_number.get(&number).cloned()
    }
    fn ticket_by_message_id(&self, message_id: &str) -> Option<i64> {
        self.by_message_id.get(message_id).copied()
    }
    fn survivor(&self, ticket: i64) -> i64 {
        let mut current = ticket;
        for _ in 0..32 {
            match self.merged_into.get(&current) {
                Some(next) => current = *next,
                None => break,
            }
        }
        current
    }
}

/// Read what [`ThreadIndex`] needs for a mail naming ticket `$number` (`Option<u64>`) in its subject and these
/// Message-IDs (`Vec<String>`) in its headers. Only email tickets count. Evaluates to `StoreResult<ThreadIndex>`.
macro_rules! read_thread_index {
    ($conn:ident, $number:expr, $ids:expr) => {{
        let (number, ids): (Option<u64>, Vec<String>) = ($number, $ids);
        async {
            let mut index = ThreadIndex::default();
            let mut tickets: Vec<i64> = Vec::new();
            if let Some(n) = number.and_then(|n| i64::try_from(n).ok()) {
                let found: Option<(i64, i64, i64)> = conversations::table
                    .inner_join(channel_instances::table)
                    .filter(conversations::number.eq(n))
                    .filter(channel_instances::kind.eq("email"))
                    .select((conversations::id, conversations::customer_id, conversations::channel_instance_id))
                    .first($conn)
                    .await
                    .optional()?;
                if let Some((id, customer_id, channel_id)) = found {
                    let customer_email: String = customer_identities::table
                        .filter(customer_identities::customer_id.eq(customer_id))
                        .filter(customer_identities::kind.eq("email"))
                        .select(customer_identities::value)
                        .order(customer_identities::id)
                        .first($conn)
                        .await
                        .optional()?
                        .unwrap_or_default();
                    let subscriber_emails: Vec<String> = conversation_subscribers::table
                        .filter(conversation_subscribers::conversation_id.eq(id))
                        .select(conversation_subscribers::email)
                        .load($conn)
                        .await?;
                    // Agents who may work on this mailbox: admins, and those given access to it.
                    let with_access: Vec<i64> = channel_access::table
                        .filter(channel_access::channel_instance_id.eq(channel_id))
                        .select(channel_access::agent_id)
                        .load($conn)
                        .await?;
                    let agent_emails: Vec<String> = agents::table
                        .filter(agents::active.eq(true))
                        .filter(agents::role.ne("agent").or(agents::id.eq_any(with_access)))
                        .select(agents::email)
                        .load($conn)
                        .await?;
                    index.by_number.insert(n as u64, TicketRef { id, customer_email, subscriber_emails, agent_emails });
                    tickets.push(id);
                }
            }
            if !ids.is_empty() {
                let found: Vec<(String, i64)> = messages::table
                    .inner_join(channel_instances::table.on(channel_instances::id.eq(messages::channel_instance_id)))
                    .filter(messages::provider_message_id.eq_any(&ids))
                    .filter(channel_instances::kind.eq("email"))
                    .select((messages::provider_message_id.assume_not_null(), messages::conversation_id))
                    .load($conn)
                    .await?;
                for (mid, conversation) in found {
                    tickets.push(conversation);
                    index.by_message_id.entry(mid).or_insert(conversation);
                }
            }
            // Merge chains, hop by hop (bounded).
            let mut frontier: HashSet<i64> = tickets.into_iter().collect();
            for _ in 0..8 {
                if frontier.is_empty() {
                    break;
                }
                let rows: Vec<(i64, Option<i64>)> = conversations::table
                    .filter(conversations::id.eq_any(frontier.iter().copied().collect::<Vec<_>>()))
                    .select((conversations::id, conversations::merged_into_id))
                    .load($conn)
                    .await?;
                frontier.clear();
                for (id, into) in rows {
                    if let Some(into) = into
                        && index.merged_into.insert(id, into).is_none()
                    {
                        frontier.insert(into);
                    }
                }
            }
            Ok::<_, StoreError>(index)
        }
        .await
    }};
}

/// Active agents by lower-case address (EM-11 forwards, agent replies by mail).
pub async fn agent_addresses(store: &Store) -> StoreResult<HashMap<String, i64>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let rows: Vec<(String, i64)> = db_run!(conn => agents::table
                .filter(agents::active.eq(true))
                .select((agents::email, agents::id))
                .load(conn)
                .await)?;
            Ok(rows.into_iter().map(|(e, id)| (e.to_lowercase(), id)).collect())
        })
        .await
}

/// A mail that made no ticket, for admins (EM-8, EM-12).
#[derive(Debug, Clone)]
pub struct LoggedMail {
    pub channel_id: i64,
    pub message_id: String,
    pub from_address: String,
    pub subject: String,
    /// `junk`, `rejected` or `unparseable`.
    pub outcome: &'static str,
    pub reason: String,
    pub source: RawSource,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mail_log)]
pub struct MailLogRow {
    pub id: i64,
    pub channel_instance_id: i64,
    pub message_id_header: String,
    pub from_address: String,
    pub subject: String,
    pub outcome: String,
    pub reason: String,
    pub size_bytes: i64,
    pub created_at: NaiveDateTime,
}

/// Log a [`LoggedMail`] (`$m`, a reference) once: the same Message-ID on the same mailbox is logged once.
macro_rules! write_log {
    ($conn:ident, $m:expr) => {{
        let m: &LoggedMail = $m;
        let (storage_key, content) = m.source.columns();
        diesel::insert_into(mail_log::table)
            .values((
                mail_log::channel_instance_id.eq(m.channel_id),
                mail_log::message_id_header.eq(&m.message_id),
                mail_log::from_address.eq(&m.from_address),
                mail_log::subject.eq(&m.subject),
                mail_log::outcome.eq(m.outcome),
                mail_log::reason.eq(&m.reason),
                mail_log::storage_key.eq(storage_key),
                mail_log::content.eq(content),
                mail_log::size_bytes.eq(m.source.size_bytes()),
                mail_log::created_at.eq(now()),
            ))
            .on_conflict_do_nothing()
            .execute($conn)
            .await
    }};
}

/// The loop of [`import_batch`] on one connection (`$mails`: `Vec<BatchMail>`); evaluates to a [`BatchImport`].
macro_rules! import_each {
    ($conn:ident, $mails:expr, $presence:expr) => {{
        use diesel_async::AsyncConnection as _;
        let mut stored = Vec::new();
        let mut failed = None;
        let mut channel: Option<ChannelInstance> = None;
        for m in $mails {
            let one: StoreResult<Imported> = async {
                match m {
                    BatchMail::Log(logged) => {
                        write_log!($conn, &logged)?;
                        Ok(Imported::Logged { outcome: logged.outcome, reason: logged.reason })
                    }
                    BatchMail::Thread(threaded) => {
                        let index = read_thread_index!($conn, threaded.number, threaded.ids)?;
                        let (mail, subject) = match (threaded.route)(&index) {
                            Route::Duplicate { conversation_id } => return Ok(Imported::Duplicate { conversation_id }),
                            Route::Store { mail, subject } => (mail, subject),
                        };
                        // The mailbox's row, read once per batch (all its mail comes from one mailbox).
                        if channel.as_ref().is_none_or(|c: &ChannelInstance| c.id != mail.channel_id) {
                            channel = Some(
                                channel_instances::table
                                    .find(mail.channel_id)
                                    .select(ChannelInstance::as_select())
                                    .first($conn)
                                    .await
                                    .optional()?
                                    .ok_or_else(|| {
                                        StoreError::BadReference(format!("mailbox {} does not exist", mail.channel_id))
                                    })?,
                            );
                        }
                        let mailbox = channel.as_ref().expect("read just above");
                        let written = $conn
                            .transaction::<_, StoreError, _>(async |$conn| {
                                import_mail!($conn, mailbox, &mail, $presence)
                            })
                            .await;
                        match written {
                            Ok(Some(imported)) => Ok(imported),
                            Ok(None) => {
                                let logged = LoggedMail {
                                    channel_id: mail.channel_id,
                                    message_id: mail.message_id,
                                    from_address: mail.from_address,
                                    subject,
                                    outcome: "rejected",
                                    reason: REJECTED_UNKNOWN_SENDER.to_owned(),
                                    source: mail.source,
                                };
                                write_log!($conn, &logged)?;
                                Ok(Imported::Logged { outcome: logged.outcome, reason: logged.reason })
                            }
                            // Another node (or mailbox) stored the same mail a moment ago.
                            Err(StoreError::Conflict(_)) => {
                                let index = read_thread_index!($conn, None, vec![mail.message_id.clone()])?;
                                match index.ticket_by_message_id(&mail.message_id) {
                                    Some(conversation_id) => Ok(Imported::Duplicate { conversation_id }),
                                    None => Err(StoreError::Conflict("the mail was stored concurrently".into())),
                                }
                            }
                            Err(e) => Err(e),
                        }
                    }
                }
            }
            .await;
            match one {
                Ok(imported) => stored.push(imported),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        BatchImport { stored, failed }
    }};
}

/// One mail of a batch handed to [`import_batch`].
pub enum BatchMail {
    /// Not a ticket (junk, unparseable): logged for admins.
    Log(LoggedMail),
    /// A mail for a ticket: where it goes is decided when its turn comes.
    Thread(ThreadedMail),
}

/// A mail for a ticket: the ticket number and Message-IDs it names, and `route`, which decides from what they
/// point at (read in the batch, so a mail can thread into one stored just before it) whether and where to store it.
pub struct ThreadedMail {
    pub number: Option<u64>,
    pub ids: Vec<String>,
    pub route: Box<dyn FnOnce(&ThreadIndex) -> Route + Send>,
}

/// What [`ThreadedMail::route`] decided.
pub enum Route {
    /// Stored before (the same Message-ID in the ticket it threads into): nothing to write.
    Duplicate { conversation_id: i64 },
    /// Store it. When its sender is refused (EM-8) it is logged as `rejected`, under `subject` (as it came,
    /// commands and all, clipped as the log keeps it).
    Store { mail: Box<IncomingMail>, subject: String },
}

/// The mails of a batch that were stored (committed), in order, and the error that stopped it early, if one did:
/// the mail it names and the ones after it were not stored.
pub struct BatchImport {
    pub stored: Vec<Imported>,
    pub failed: Option<StoreError>,
}

/// Why a refused sender's mail is logged (EM-8).
const REJECTED_UNKNOWN_SENDER: &str = "unknown sender, and this mailbox does not accept mail from unregistered users";

/// Store a batch of mails in order, each once ([`IncomingMail`] idempotency), in one call to the database.
///
/// On SQLite the batch is one transaction, each mail a savepoint in it: the single writer commits once for a
/// few dozen mails rather than once per mail (the commit and the per-mail round trips were most of an import's
/// database time). On PostgreSQL each mail is its own transaction, so that row locks (the ticket counter, a
/// ticket a reply updates) are held for one mail only while other nodes import the same mailbox.
/// A mail that fails is rolled back alone; the ones before it stay stored.
pub async fn import_batch(store: &Store, mails: Vec<BatchMail>) -> BatchImport {
    let done = store
        .run(move |store| async move {
            let presence = &|a: i64| store.presence(a);
            let mut conn = store.write().await?;
            Ok(match &mut conn {
                super::DbConn::Postgres(pooled) => {
                    let conn: &mut diesel_async::AsyncPgConnection = &mut *pooled;
                    import_each!(conn, mails, presence)
                }
                super::DbConn::Sqlite(pooled, _) => {
                    use diesel_async::AsyncConnection as _;
                    let conn: &mut super::SqliteConn = &mut *pooled;
                    conn.transaction::<_, StoreError, _>(async move |conn| Ok(import_each!(conn, mails, presence)))
                        .await?
                }
            })
        })
        .await;
    done.unwrap_or_else(|e| BatchImport { stored: Vec::new(), failed: Some(e) })
}

pub async fn mail_log(store: &Store, channel_id: i64, limit: i64) -> StoreResult<Vec<MailLogRow>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            Ok(db_run!(conn => mail_log::table
                .filter(mail_log::channel_instance_id.eq(channel_id))
                .order(mail_log::id.desc())
                .limit(limit)
                .select(MailLogRow::as_select())
                .load(conn)
                .await)?)
        })
        .await
}

/// A mailbox's connection health.
#[derive(Debug, Clone, Default, Queryable, Selectable)]
#[diesel(table_name = mailbox_state)]
pub struct MailboxState {
    pub channel_instance_id: i64,
    pub consecutive_failures: i64,
    pub last_error: Option<String>,
    pub last_checked_at: Option<NaiveDateTime>,
    pub last_success_at: Option<NaiveDateTime>,
    pub imported_total: i64,
}

/// A mailbox's health and how many of its mails are in its log (made no ticket), in one store call.
pub async fn mailbox_state(store: &Store, channel_id: i64) -> StoreResult<(MailboxState, i64)> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let row: Option<MailboxState> = db_run!(conn => mailbox_state::table
                .find(channel_id)
                .select(MailboxState::as_select())
                .first(conn)
                .await
                .optional())?;
            let logged: i64 = db_run!(conn => mail_log::table
                .filter(mail_log::channel_instance_id.eq(channel_id))
                .count()
                .get_result(conn)
                .await)?;
            Ok((row.unwrap_or(MailboxState { channel_instance_id: channel_id, ..Default::default() }), logged))
        })
        .await
}

/// A check that reached the server and logged in.
pub async fn record_success(store: &Store, channel_id: i64) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let t = now();
            db_run!(conn => diesel::insert_into(mailbox_state::table)
                .values((
                    mailbox_state::channel_instance_id.eq(channel_id),
                    mailbox_state::last_checked_at.eq(Some(t)),
                    mailbox_state::last_success_at.eq(Some(t)),
                ))
                .on_conflict(mailbox_state::channel_instance_id)
                .do_update()
                .set((
                    mailbox_state::consecutive_failures.eq(0),
                    mailbox_state::last_error.eq(None::<String>),
                    mailbox_state::last_checked_at.eq(Some(t)),
                    mailbox_state::last_success_at.eq(Some(t)),
                ))
                .execute(conn)
                .await)?;
            Ok(())
        })
        .await
}

/// A check that failed to connect or log in. Returns the failures in a row; at [`MAX_FAILURES`]
/// the mailbox is disabled with the error as its reason (EM-5).
pub async fn record_failure(store: &Store, channel_id: i64, error: String) -> StoreResult<i64> {
    // A change to the channel row (EM-5 disables it): cached channel rows are dropped (`store::cache`).
    store
        .run_change(move |store| async move {
            let mut conn = store.write().await?;
            db_tx!(conn => {
                let t = now();
                let failures: i64 = diesel::insert_into(mailbox_state::table)
                    .values((
                        mailbox_state::channel_instance_id.eq(channel_id),
                        mailbox_state::consecutive_failures.eq(1),
                        mailbox_state::last_error.eq(Some(&error)),
                        mailbox_state::last_checked_at.eq(Some(t)),
                    ))
                    .on_conflict(mailbox_state::channel_instance_id)
                    .do_update()
                    .set((
                        mailbox_state::consecutive_failures.eq(mailbox_state::consecutive_failures + 1),
                        mailbox_state::last_error.eq(Some(&error)),
                        mailbox_state::last_checked_at.eq(Some(t)),
                    ))
                    .returning(mailbox_state::consecutive_failures)
                    .get_result(conn)
                    .await?;
                if failures >= MAX_FAILURES {
                    let reason = format!("{failures} connection failures in a row; last: {error}");
                    diesel::update(channel_instances::table.find(channel_id).filter(channel_instances::enabled.eq(true)))
                        .set((
                            channel_instances::enabled.eq(false),
                            channel_instances::disabled_reason.eq(Some(reason)),
                            channel_instances::updated_at.eq(t),
                        ))
                        .execute(conn)
                        .await?;
                }
                Ok(failures)
            })
        })
        .await
}

/// Forget the failures (an admin re-enabled the mailbox).
pub async fn reset_failures(store: &Store, channel_id: i64) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            db_run!(conn => diesel::update(mailbox_state::table.find(channel_id))
                .set((mailbox_state::consecutive_failures.eq(0), mailbox_state::last_error.eq(None::<String>)))
                .execute(conn)
                .await)?;
            Ok(())
        })
        .await
}

/// Remote keys this mailbox imported and left on the server (POP3 without delete).
pub async fn seen_keys(store: &Store, channel_id: i64) -> StoreResult<HashSet<String>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let keys: Vec<String> = db_run!(conn => mailbox_seen::table
                .filter(mailbox_seen::channel_instance_id.eq(channel_id))
                .select(mailbox_seen::mail_key)
                .load(conn)
                .await)?;
            Ok(keys.into_iter().collect())
        })
        .await
}

pub async fn mark_seen(store: &Store, channel_id: i64, key: String) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            db_run!(conn => diesel::insert_into(mailbox_seen::table)
                .values((
                    mailbox_seen::channel_instance_id.eq(channel_id),
                    mailbox_seen::mail_key.eq(&key),
                    mailbox_seen::created_at.eq(now()),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await)?;
            Ok(())
        })
        .await
}

/// Everything an outgoing mail for `message_id` needs (EO-1).
#[derive(Debug, Clone)]
pub struct OutgoingContext {
    pub channel: ChannelInstance,
    pub conversation: Conversation,
    pub message: Message,
    pub attachments: Vec<Attachment>,
    pub customer_email: Option<String>,
    pub customer_name: String,
    pub subscribers: Vec<String>,
    pub author_name: Option<String>,
    /// Message-IDs of the thread so far, oldest first (this message excluded).
    pub thread: Vec<String>,
    /// The Message-ID of the newest message from the customer before this one, if any.
    pub last_inbound: Option<String>,
}

pub async fn outgoing_context(store: &Store, message_id: i64) -> StoreResult<OutgoingContext> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            db_run!(conn => {
                let message: Message = messages::table.find(message_id).select(Message::as_select()).first(conn).await?;
                let conversation: Conversation =
                    conversations::table.find(message.conversation_id).select(Conversation::as_select()).first(conn).await?;
                let channel: ChannelInstance = channel_instances::table
                    .find(conversation.channel_instance_id)
                    .select(ChannelInstance::as_select())
                    .first(conn)
                    .await?;
                let attachments: Vec<Attachment> = attachments::table
                    .filter(attachments::message_id.eq(message.id))
                    .select(Attachment::as_select())
                    .load(conn)
                    .await?;
                let customer_email: Option<String> = customer_identities::table
                    .filter(customer_identities::customer_id.eq(conversation.customer_id))
                    .filter(customer_identities::kind.eq("email"))
                    .select(customer_identities::value)
                    .order(customer_identities::id)
                    .first(conn)
                    .await
                    .optional()?;
                let customer_name: String =
                    customers::table.find(conversation.customer_id).select(customers::name).first(conn).await?;
                let subscribers: Vec<String> = conversation_subscribers::table
                    .filter(conversation_subscribers::conversation_id.eq(conversation.id))
                    .select(conversation_subscribers::email)
                    .order(conversation_subscribers::email)
                    .load(conn)
                    .await?;
                let author_name: Option<String> = match message.author_agent_id {
                    Some(id) => agents::table.find(id).select(agents::name).first(conn).await.optional()?,
                    None => None,
                };
                let earlier: Vec<(Option<String>, String)> = messages::table
                    .filter(messages::conversation_id.eq(conversation.id))
                    .filter(messages::seq.lt(message.seq))
                    .filter(messages::direction.ne("note"))
                    .filter(messages::provider_message_id.is_not_null())
                    .order(messages::seq.asc())
                    .select((messages::provider_message_id, messages::direction))
                    .load(conn)
                    .await?;
                let last_inbound = earlier.iter().rev().find(|(_, d)| d == "in").and_then(|(id, _)| id.clone());
                let thread = earlier.into_iter().filter_map(|(id, _)| id).collect();
                Ok::<_, StoreError>(OutgoingContext {
                    channel, conversation, message, attachments, customer_email, customer_name, subscribers, author_name, thread, last_inbound,
                })
            })
        })
        .await
}

/// Give an outgoing message its Message-ID before the first attempt, so every retry sends the
/// same one. Returns the id it has (the one set earlier, if any).
pub async fn assign_message_id(store: &Store, message_id: i64, candidate: String) -> StoreResult<String> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            db_tx!(conn => {
                let current: Option<String> = messages::table.find(message_id).select(messages::provider_message_id).first(conn).await?;
                if let Some(id) = current {
                    return Ok(id);
                }
                diesel::update(messages::table.find(message_id))
                    .set(messages::provider_message_id.eq(Some(&candidate)))
                    .execute(conn)
                    .await?;
                Ok(candidate)
            })
        })
        .await
}

/// Keep the raw source of a sent mail (audit).
pub async fn record_source(
    store: &Store,
    message_id: i64,
    source: RawSource,
    from: String,
    to: Vec<String>,
) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let (storage_key, content) = source.columns();
            db_run!(conn => diesel::insert_into(mail_sources::table)
                .values((
                    mail_sources::message_id.eq(message_id),
                    mail_sources::storage_key.eq(storage_key),
                    mail_sources::content.eq(content),
                    mail_sources::size_bytes.eq(source.size_bytes()),
                    mail_sources::from_address.eq(&from),
                    mail_sources::recipients.eq(serde_json::to_string(&to).unwrap_or_else(|_| "[]".into())),
                    mail_sources::created_at.eq(now()),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await)?;
            Ok(())
        })
        .await
}

/// The stored raw source of a message of this conversation, if it came or went by mail.
pub async fn source_of(store: &Store, conversation_id: i64, message_id: i64) -> StoreResult<Option<RawSource>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let of_conversation =
                messages::table.filter(messages::conversation_id.eq(conversation_id)).select(messages::id);
            let row: Option<SourceColumns> = db_run!(conn => mail_sources::table
                .find(message_id)
                .filter(mail_sources::message_id.eq_any(of_conversation))
                .select((mail_sources::storage_key, mail_sources::content, mail_sources::size_bytes))
                .first(conn)
                .await
                .optional())?;
            Ok(row.and_then(RawSource::from_columns))
        })
        .await
}

/// The raw source of a mail in a mailbox's log.
pub async fn logged_source(store: &Store, channel_id: i64, log_id: i64) -> StoreResult<Option<RawSource>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let row: Option<SourceColumns> = db_run!(conn => mail_log::table
                .find(log_id)
                .filter(mail_log::channel_instance_id.eq(channel_id))
                .select((mail_log::storage_key, mail_log::content, mail_log::size_bytes))
                .first(conn)
                .await
                .optional())?;
            Ok(row.and_then(RawSource::from_columns))
        })
        .await
}

/// A ticket's subscribers (EM-10).
pub async fn subscribers(store: &Store, conversation_id: i64) -> StoreResult<Vec<String>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            Ok(db_run!(conn => conversation_subscribers::table
                .filter(conversation_subscribers::conversation_id.eq(conversation_id))
                .select(conversation_subscribers::email)
                .order(conversation_subscribers::email)
                .load(conn)
                .await)?)
        })
        .await
}
