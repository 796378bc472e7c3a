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

use super::{Imported, IncomingMail, LoggedMail, MailTarget, Sender, ThreadIndex};
use std::collections::HashSet;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::channels::email::{TicketLookup, TicketRef};
use crate::domain::lifecycle::{self, ChatChange, Effect, Event, Outcome, StatusChange};
use crate::domain::{Direction, Source, StatusBase};
use crate::store;
use crate::store::audit::Actor;
use crate::store::conversations::{
    ConversationRow, CreatedConversation, insert_conversation, lifecycle_state, status_base,
};
use crate::store::events::{self, record_event};
use crate::store::messages::decorate_one;
use crate::store::models::{Attachment, ChannelInstance, Conversation, Message};
use crate::store::schema::{
    agents, attachments, channel_access, channel_instances, conversation_subscribers, conversation_tags, conversations,
    customer_identities, customers, mail_log, mail_sources, mailbox_state, messages, outbox, teams,
};
use crate::store::{Store, StoreError, StoreResult, now};

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
                        ConversationRow { conversation, tags, customer_name, channel_kind: channel.kind.clone() }
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
                    crate::store::conversations::effect(&conv, base, Event::SetStatus(StatusBase::Closed))?
                        .unwrap_or(effect)
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
                crate::store::DbConn::Postgres(pooled) => {
                    let conn: &mut diesel_async::AsyncPgConnection = &mut *pooled;
                    import_each!(conn, mails, presence)
                }
                crate::store::DbConn::Sqlite(pooled, _) => {
                    use diesel_async::AsyncConnection as _;
                    let conn: &mut crate::store::SqliteConn = &mut *pooled;
                    conn.transaction::<_, StoreError, _>(async move |conn| Ok(import_each!(conn, mails, presence)))
                        .await?
                }
            })
        })
        .await;
    done.unwrap_or_else(|e| BatchImport { stored: Vec::new(), failed: Some(e) })
}
