//! Mail import (EM-1…EM-13): a mail imported as a new ticket or as a message of an existing one in
//! one transaction (attachments, subscribers, subject commands, the raw source). Mails come in
//! batches ([`import_until_ticket`]), read for threading and stored in order in one call to the
//! database, up to a mail that threads into an existing ticket: that one is committed by the
//! ticket's actor ([`import_to_ticket`], called through `changes::Changes::import_mail`), ordered
//! with every other change to that conversation, and the batch goes on after it.
//!
//! Decisions are made before: the connector parses the mail, applies the junk rules and the
//! threading rules (`channels::email`, through [`ThreadedMail::route`]), and hands over an
//! [`IncomingMail`] that says what to do. What a mail does to the ticket it threads into is the
//! conversation lifecycle's call (`domain::lifecycle`, the rule of every channel): a customer's
//! mail reopens a pending ticket and starts a new one when the ticket is closed (CORE-7).
//! This module only makes it so, atomically and idempotently: the same Message-ID on the same
//! mailbox, or already in the target ticket, is never stored twice (a crash between commit and
//! the server-side delete re-imports it as a no-op).

use super::mail_log::write_log;
use super::thread_index::read_thread_index;
use super::{Imported, IncomingMail, LoggedMail, MailTarget, Sender, ThreadIndex};

use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::channels::email::TicketLookup;
use crate::db;
use crate::domain::lifecycle::{self, ChatChange, Effect, Event, Outcome, StatusChange};
use crate::domain::{Direction, Source, StatusBase};
use crate::store;
use crate::store::audit::Actor;
use crate::store::conversations::{
    ConversationRow, CreatedConversation, Inserted, NewConversationRow, lifecycle_state,
};
use crate::store::events;
use crate::store::models::{Attachment, ChannelInstance, Conversation, Message};
use crate::store::schema::{
    attachments, channel_instances, conversation_subscribers, conversations, customer_identities, customers,
    mail_sources, mailbox_state, messages, outbox, teams,
};
use crate::store::{Store, StoreError, StoreResult, Tx, now};

/// Who is online now (auto-assignment of a new ticket, CC-12).
pub(crate) type Presence<'a> = &'a (dyn Fn(i64) -> crate::domain::routing::Presence + Sync);

/// Point stored files at their message (inside the import transaction).
async fn link_files(tx: &mut Tx<'_>, files: &[Attachment], message_id: i64) -> StoreResult<()> {
    let ids: Vec<i64> = files.iter().map(|a| a.id).collect();
    if !ids.is_empty() {
        db!(
            tx,
            diesel::update(attachments::table.filter(attachments::id.eq_any(&ids)))
                .set(attachments::message_id.eq(Some(message_id)))
                .execute(tx)
                .await
        )?;
    }
    Ok(())
}

/// The customer a mail is from: found by address (a merged one's survivor), created when unknown and allowed (EM-8).
/// Returns the id and, when known here (most mail), the name, so a new ticket needs no read-back; `None` when the
/// sender is refused.
async fn customer_of(
    tx: &mut Tx<'_>,
    channel_id: i64,
    email: &str,
    name: Option<&str>,
    create: bool,
    t: NaiveDateTime,
) -> StoreResult<Option<(i64, Option<String>)>> {
    let known: Option<(i64, Option<i64>, String)> = db!(
        tx,
        customer_identities::table
            .inner_join(customers::table)
            .filter(customer_identities::kind.eq("email"))
            .filter(customer_identities::value.eq(email))
            .select((customers::id, customers::merged_into_id, customers::name))
            .first(tx)
            .await
            .optional()
    )?;
    Ok(match known {
        // A merged customer's tickets go to the survivor, whose name is read with the ticket.
        Some((_, Some(survivor), _)) => Some((survivor, None)),
        Some((id, None, name)) => Some((id, Some(name))),
        None if create => {
            let display = name.filter(|n| !n.trim().is_empty()).unwrap_or(email).to_owned();
            let id: i64 = db!(
                tx,
                diesel::insert_into(customers::table)
                    .values((customers::name.eq(&display), customers::created_at.eq(t), customers::updated_at.eq(t)))
                    .returning(customers::id)
                    .get_result(tx)
                    .await
            )?;
            db!(
                tx,
                diesel::insert_into(customer_identities::table)
                    .values((
                        customer_identities::customer_id.eq(id),
                        customer_identities::kind.eq("email"),
                        customer_identities::channel_instance_id.eq(None::<i64>),
                        customer_identities::value.eq(email),
                        customer_identities::created_at.eq(t),
                    ))
                    .execute(tx)
                    .await
            )?;
            // NT-13: a new customer with an email identity is welcomed once (when the settings say so).
            store::mail_notifications::welcome_in(tx, id, channel_id).await?;
            Some((id, Some(display)))
        }
        None => None,
    })
}

/// The mail's files, stored unlinked (so the HTML can point at them before the message exists).
async fn insert_files(tx: &mut Tx<'_>, mail: &IncomingMail, t: NaiveDateTime) -> StoreResult<Vec<Attachment>> {
    let mut files: Vec<Attachment> = Vec::with_capacity(mail.files.len());
    for f in &mail.files {
        files.push(db!(
            tx,
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
                .get_result(tx)
                .await
        )?);
    }
    Ok(files)
}

/// The ticket threading named (its merge survivor, EM-6; one merged since is followed here) and what the mail does
/// to it — the lifecycle's call, as on every channel: `None` when the mail starts a new ticket instead (a customer's
/// mail to a closed ticket, CORE-7).
async fn joined(
    tx: &mut Tx<'_>,
    conversation_id: i64,
    event: Event,
) -> StoreResult<Option<(Conversation, StatusBase, Effect)>> {
    let mut conv: Option<Conversation> = db!(
        tx,
        conversations::table.find(conversation_id).select(Conversation::as_select()).first(tx).await.optional()
    )?;
    let mut hops = 0;
    loop {
        let Some(c) = &conv else {
            return Err(StoreError::BadReference(format!("conversation {conversation_id} does not exist")));
        };
        let Some(into) = c.merged_into_id else { break };
        hops += 1;
        if hops > 32 {
            return Err(store::Violation::MergeChainTooLong.into());
        }
        conv = Some(db!(tx, conversations::table.find(into).select(Conversation::as_select()).first(tx).await)?);
    }
    let conv = conv.expect("checked in the loop");
    let base = store::conversations::status_base(tx, &conv.status).await?;
    Ok(match lifecycle::decide(lifecycle_state(&conv, base)?, event) {
        Outcome::Apply(effect) => Some((conv, base, effect)),
        Outcome::StartNew => None,
        // Not for a conversation that is not merged.
        Outcome::Unchanged | Outcome::FollowMerge => {
            Some((conv, base, Effect { status: StatusChange::Keep, chat: ChatChange::None }))
        }
        Outcome::Refuse(why) => return Err(store::Violation::refused(conv.id, conv.merged_into_id, why).into()),
    })
}

/// A mail as stored: its text, HTML with `cid:` links filled in, Message-ID and files.
struct Body<'m> {
    mail: &'m IncomingMail,
    html: Option<String>,
    ext: Option<String>,
    files: Vec<Attachment>,
    t: NaiveDateTime,
}

/// A new ticket from a mail (EM-1), in `team_id` when it exists (EM-7, EM-9), with these subscribers (EM-10).
struct NewTicket<'a> {
    channel: &'a ChannelInstance,
    customer_id: i64,
    customer_name: Option<String>,
    team_id: Option<i64>,
    subscribers: &'a [String],
}

async fn create(tx: &mut Tx<'_>, new: NewTicket<'_>, body: Body<'_>, presence: Presence<'_>) -> StoreResult<Imported> {
    let Body { mail, html, ext, files, t } = body;
    let channel = new.channel;
    let inserted = store::conversations::insert(
        tx,
        &NewConversationRow {
            channel,
            customer_id: new.customer_id,
            subject: &mail.subject,
            direction: Direction::In,
            source: Source::Channel,
            author_agent_id: None,
            content: &mail.text,
            content_html: &html,
            external_id: &ext,
            t,
            actor: Actor::System,
            presence,
        },
    )
    .await?;
    let Inserted { mut conversation, message, event, tags } = inserted;
    if let Some(team) = new.team_id {
        let exists: Option<i64> = db!(tx, teams::table.find(team).select(teams::id).first(tx).await.optional())?;
        if exists.is_some() {
            db!(
                tx,
                diesel::update(conversations::table.find(conversation.id))
                    .set(conversations::team_id.eq(exists))
                    .execute(tx)
                    .await
            )?;
            conversation.team_id = exists;
        }
    }
    for email in new.subscribers {
        db!(
            tx,
            diesel::insert_into(conversation_subscribers::table)
                .values((
                    conversation_subscribers::conversation_id.eq(conversation.id),
                    conversation_subscribers::email.eq(email),
                    conversation_subscribers::created_at.eq(t),
                ))
                .on_conflict_do_nothing()
                .execute(tx)
                .await
        )?;
    }
    link_files(tx, &files, message.id).await?;
    // As inserted: nothing else changed the row since (read back only for a merged customer's survivor).
    let row = match new.customer_name {
        Some(customer_name) => ConversationRow { conversation, tags, customer_name, channel_kind: channel.kind },
        None => store::conversations::decorate_one(tx, conversation.id).await?,
    };
    Ok(Imported::Created(CreatedConversation { conversation: row, message, created: true, events: vec![event] }))
}

/// A mail joining an existing ticket: who wrote it, and what the lifecycle decided.
struct Joining<'a> {
    channel: &'a ChannelInstance,
    conv: Conversation,
    base: StatusBase,
    effect: Effect,
    customer_id: Option<i64>,
    agent_id: Option<i64>,
}

async fn append(tx: &mut Tx<'_>, join: Joining<'_>, body: Body<'_>) -> StoreResult<Imported> {
    let Joining { channel, conv, base, effect, customer_id, agent_id } = join;
    let Body { mail, html, ext, files, t } = body;
    let from_customer = agent_id.is_none();
    let direction = match (from_customer, mail.note) {
        (_, true) => Direction::Note,
        (true, false) => Direction::In,
        (false, false) => Direction::Out,
    };
    // The lifecycle's effect (a customer's mail reopens a pending ticket), then
    // `#close#` (EM-13) as a status change. Built-in statuses are keyed by their base.
    let effect = if mail.close {
        store::conversations::effect(&conv, base, Event::SetStatus(StatusBase::Closed))?.unwrap_or(effect)
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
    let customer_at = if direction == Direction::In { Some(t) } else { conv.last_customer_activity_at };
    let agent_at = if direction == Direction::Out { Some(t) } else { conv.last_agent_activity_at };
    let waiting_since = crate::domain::lifecycle::waiting_since(conv.waiting_since, direction, t);
    let first_response_at =
        if direction == Direction::Out { conv.first_response_at.or(Some(t)) } else { conv.first_response_at };
    let updated: Conversation = db!(
        tx,
        diesel::update(conversations::table.find(conv.id))
            .set((
                conversations::last_seq.eq(conversations::last_seq + 1),
                conversations::updated_at.eq(t),
                conversations::status.eq(&status),
                conversations::closed_at.eq(closed_at),
                conversations::last_customer_activity_at.eq(customer_at),
                conversations::last_agent_activity_at.eq(agent_at),
                conversations::waiting_since.eq(waiting_since),
                conversations::first_response_at.eq(first_response_at),
            ))
            .returning(Conversation::as_returning())
            .get_result(tx)
            .await
    )?;
    let seq = updated.last_seq;
    if status != conv.status {
        let reason = if mail.close { "mail_command" } else { "customer_message" };
        store::activity::status_changed_by_message(tx, conv.id, &conv.status, &status, reason).await?;
    }
    let source = if from_customer { Source::Channel } else { Source::Agent };
    let message: Message = db!(
        tx,
        diesel::insert_into(messages::table)
            .values((
                messages::conversation_id.eq(conv.id),
                messages::seq.eq(seq),
                messages::direction.eq(direction.as_str()),
                messages::source.eq(source.as_str()),
                messages::author_agent_id.eq(agent_id),
                messages::author_customer_id.eq(customer_id),
                messages::body_text.eq(&mail.text),
                messages::body_html.eq(&html),
                messages::channel_instance_id.eq(channel.id),
                messages::provider_message_id.eq(&ext),
                messages::created_at.eq(t),
            ))
            .returning(Message::as_returning())
            .get_result(tx)
            .await
    )?;
    if direction == Direction::Out {
        let delivery = store::outbox::new_delivery(conv.channel_instance_id, conv.id, message.id, t);
        db!(tx, diesel::insert_into(outbox::table).values(&delivery).execute(tx).await)?;
    }
    link_files(tx, &files, message.id).await?;
    let event = |kind, seq, message_id| events::NewEvent {
        conversation_id: conv.id,
        channel_instance_id: conv.channel_instance_id,
        kind,
        seq,
        message_id,
        created_at: t,
    };
    let mut recorded = vec![events::record(tx, event(events::MESSAGE_CREATED, Some(seq), Some(message.id))).await?];
    if status != conv.status || closing {
        // Who closed it (`#close#`, EM-13) and whether it did: the mail consumer's NT-2.
        let detail =
            store::feed::Detail { customer: customer_id, ..store::feed::Detail::change(agent_id, &conv, &updated) };
        recorded.push(events::record_with(tx, event(events::CONVERSATION_UPDATED, None, None), &detail).await?);
    }
    if mail.unsubscribe {
        db!(
            tx,
            diesel::delete(
                conversation_subscribers::table
                    .filter(conversation_subscribers::conversation_id.eq(conv.id))
                    .filter(conversation_subscribers::email.eq(mail.from_address.to_lowercase())),
            )
            .execute(tx)
            .await
        )?;
    }
    // As linked above, without reading them back.
    let files: Vec<Attachment> = files.into_iter().map(|a| Attachment { message_id: Some(message.id), ..a }).collect();
    let row = store::conversations::decorate_one(tx, conv.id).await?;
    Ok(Imported::Appended { message, attachments: files, conversation: row, events: recorded })
}

/// The writes of one mail into its mailbox (`channel`, its row), as the body of its own transaction (a savepoint
/// inside a batch's): `Ok(None)` when the sender is refused (EM-8) and nothing was written.
pub(crate) async fn import_mail(
    tx: &mut Tx<'_>,
    channel: &ChannelInstance,
    mail: &IncomingMail,
    presence: Presence<'_>,
) -> StoreResult<Option<Imported>> {
    let t = now();

    // Idempotency: this mailbox saw it, or the ticket it threads into already has it.
    let target_id = match &mail.target {
        MailTarget::Reply { conversation_id } => Some(*conversation_id),
        MailTarget::New { .. } => None,
    };
    let seen: Option<i64> = db!(
        tx,
        messages::table
            .filter(messages::provider_message_id.eq(&mail.message_id))
            .filter(messages::channel_instance_id.eq(channel.id).or(messages::conversation_id.nullable().eq(target_id)))
            .select(messages::conversation_id)
            .first(tx)
            .await
            .optional()
    )?;
    if let Some(conversation_id) = seen {
        return Ok(Some(Imported::Duplicate { conversation_id }));
    }

    let (customer, agent_id): (Option<(i64, Option<String>)>, Option<i64>) = match &mail.sender {
        Sender::Agent { id } => (None, Some(*id)),
        Sender::Customer { email, name, create } => {
            (customer_of(tx, channel.id, email, name.as_deref(), *create, t).await?, None)
        }
    };
    let files = insert_files(tx, mail, t).await?;
    let html = mail.html.as_deref().map(|h| {
        crate::channels::email::parse::fill_attachment_links(h, |cid| {
            files.iter().find(|a| a.content_id.as_deref() == Some(cid)).map(|a| format!("/api/v1/attachments/{}", a.id))
        })
    });
    let body = Body { mail, html, ext: Some(mail.message_id.clone()), files, t };

    let event = if mail.note {
        Event::Note
    } else if agent_id.is_none() {
        Event::CustomerMessage
    } else {
        Event::AgentReply
    };
    let joined = match &mail.target {
        MailTarget::New { .. } => None,
        MailTarget::Reply { conversation_id } => joined(tx, *conversation_id, event).await?,
    };
    let (customer_id, customer_name) = customer.unzip();
    let imported = match joined {
        Some((conv, base, effect)) => {
            let join = Joining { channel, conv, base, effect, customer_id, agent_id };
            append(tx, join, body).await?
        }
        None => {
            // A follow-up of a closed ticket gets the mailbox's defaults and no subscribers (EM-10).
            let (team_id, subscribers): (Option<i64>, &[String]) = match &mail.target {
                MailTarget::New { team_id, subscribers } => (*team_id, subscribers),
                MailTarget::Reply { .. } => (None, &[]),
            };
            let Some(customer_id) = customer_id else {
                if agent_id.is_some() {
                    return Err(store::Violation::AgentMailStartsTicket.into());
                }
                return Ok(None);
            };
            let new = NewTicket { channel, customer_id, customer_name: customer_name.flatten(), team_id, subscribers };
            create(tx, new, body, presence).await?
        }
    };
    let message_id = match &imported {
        Imported::Created(c) => c.message.id,
        Imported::Appended { message, .. } => message.id,
        Imported::Duplicate { .. } | Imported::Logged { .. } => unreachable!("a mail written is a ticket or a message"),
    };
    keep_source(tx, channel.id, message_id, mail, t).await?;
    Ok(Some(imported))
}

/// The mail's raw source (audit), and one more mail counted for its mailbox.
async fn keep_source(
    tx: &mut Tx<'_>,
    channel_id: i64,
    message_id: i64,
    mail: &IncomingMail,
    t: NaiveDateTime,
) -> StoreResult<()> {
    let (storage_key, content) = mail.source.columns();
    let recipients = serde_json::to_string(&mail.recipients).unwrap_or_else(|_| "[]".into());
    db!(
        tx,
        diesel::insert_into(mail_sources::table)
            .values((
                mail_sources::message_id.eq(message_id),
                mail_sources::storage_key.eq(storage_key),
                mail_sources::content.eq(content),
                mail_sources::size_bytes.eq(mail.source.size_bytes()),
                mail_sources::from_address.eq(&mail.from_address),
                mail_sources::recipients.eq(&recipients),
                mail_sources::created_at.eq(t),
            ))
            .execute(tx)
            .await
    )?;
    db!(
        tx,
        diesel::insert_into(mailbox_state::table)
            .values((mailbox_state::channel_instance_id.eq(channel_id), mailbox_state::imported_total.eq(1)))
            .on_conflict(mailbox_state::channel_instance_id)
            .do_update()
            .set(mailbox_state::imported_total.eq(mailbox_state::imported_total + 1))
            .execute(tx)
            .await
    )?;
    Ok(())
}

/// [`import_mail`] in its own transaction (a savepoint inside a batch's).
async fn import_mail_apart(
    tx: &mut Tx<'_>,
    channel: &ChannelInstance,
    mail: &IncomingMail,
    presence: Presence<'_>,
) -> StoreResult<Option<Imported>> {
    use diesel_async::AsyncConnection as _;
    db!(
        tx,
        tx.transaction::<_, StoreError, _>(async |tx| import_mail(&mut Tx::from(tx), channel, mail, presence).await)
            .await
    )
}

/// A mail [`import_mail`] wrote nothing for, or that failed: logged as `rejected` when the sender is refused
/// (EM-8), a duplicate when another node (or mailbox) stored the same mail a moment ago.
async fn settle(
    tx: &mut Tx<'_>,
    written: StoreResult<Option<Imported>>,
    mail: &IncomingMail,
    subject: String,
) -> StoreResult<Imported> {
    match written {
        Ok(Some(imported)) => Ok(imported),
        Ok(None) => {
            let logged = LoggedMail {
                channel_id: mail.channel_id,
                message_id: mail.message_id.clone(),
                from_address: mail.from_address.clone(),
                subject,
                outcome: "rejected",
                reason: REJECTED_UNKNOWN_SENDER.to_owned(),
                source: mail.source.clone(),
            };
            write_log(tx, &logged).await?;
            Ok(Imported::Logged { outcome: logged.outcome, reason: logged.reason })
        }
        Err(StoreError::Conflict(_)) => {
            let index = read_thread_index(tx, None, vec![mail.message_id.clone()]).await?;
            match index.ticket_by_message_id(&mail.message_id) {
                Some(conversation_id) => Ok(Imported::Duplicate { conversation_id }),
                None => Err(StoreError::Conflict("the mail was stored concurrently".into())),
            }
        }
        Err(e) => Err(e),
    }
}

/// The mailbox's row.
async fn mailbox(tx: &mut Tx<'_>, channel_id: i64) -> StoreResult<ChannelInstance> {
    let row: Option<ChannelInstance> = db!(
        tx,
        channel_instances::table.find(channel_id).select(ChannelInstance::as_select()).first(tx).await.optional()
    )?;
    row.ok_or_else(|| StoreError::BadReference(format!("mailbox {channel_id} does not exist")))
}

/// What became of one mail of a batch.
// As large as `Imported`, which every caller moves anyway (once per mail).
#[allow(clippy::large_enum_variant)]
enum One {
    Done(Imported),
    /// It threads into an existing ticket: left to that ticket's actor ([`ToTicket`]), nothing written.
    ToTicket(Box<IncomingMail>, String),
}

/// One mail of a batch, with the mailbox row read for the batch so far (all its mail comes from one mailbox).
async fn import_one(
    tx: &mut Tx<'_>,
    m: BatchMail,
    channel: &mut Option<ChannelInstance>,
    presence: Presence<'_>,
) -> StoreResult<One> {
    let threaded = match m {
        BatchMail::Log(logged) => {
            write_log(tx, &logged).await?;
            return Ok(One::Done(Imported::Logged { outcome: logged.outcome, reason: logged.reason }));
        }
        BatchMail::Thread(threaded) => threaded,
    };
    let index = read_thread_index(tx, threaded.number, threaded.ids).await?;
    let (mail, subject) = match (threaded.route)(&index) {
        Route::Duplicate { conversation_id } => return Ok(One::Done(Imported::Duplicate { conversation_id })),
        Route::Store { mail, subject } => (mail, subject),
    };
    if let MailTarget::Reply { .. } = mail.target {
        return Ok(One::ToTicket(mail, subject));
    }
    let mailbox = match channel {
        Some(c) if c.id == mail.channel_id => c,
        _ => channel.insert(mailbox(tx, mail.channel_id).await?),
    };
    let written = import_mail_apart(tx, mailbox, &mail, presence).await;
    settle(tx, written, &mail, subject).await.map(One::Done)
}

/// The loop of [`import_until_ticket`] on one connection.
async fn import_each(tx: &mut Tx<'_>, mails: Vec<BatchMail>, presence: Presence<'_>) -> BatchStep {
    let mut stored = Vec::new();
    let mut channel: Option<ChannelInstance> = None;
    let mut mails = mails.into_iter();
    while let Some(m) = mails.next() {
        match import_one(tx, m, &mut channel, presence).await {
            Ok(One::Done(imported)) => stored.push(imported),
            Ok(One::ToTicket(mail, subject)) => {
                let to_ticket = ToTicket { mail: *mail, subject, rest: mails.collect() };
                return BatchStep { stored, failed: None, to_ticket: Some(to_ticket) };
            }
            Err(e) => return BatchStep { stored, failed: Some(e), to_ticket: None },
        }
    }
    BatchStep { stored, failed: None, to_ticket: None }
}

/// One mail of a batch handed to [`import_until_ticket`].
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

/// A mail that threads into an existing ticket, and the mails after it: [`import_until_ticket`] stops there, the
/// mail is committed by that ticket's actor ([`import_to_ticket`], like every change to an existing conversation),
/// then the rest of the batch goes on.
pub struct ToTicket {
    pub mail: IncomingMail,
    /// The subject it is logged under if its sender is refused (see [`Route::Store`]).
    pub subject: String,
    pub rest: Vec<BatchMail>,
}

/// What [`import_until_ticket`] did: the mails stored, in order, then either the error that stopped it or the mail
/// for an existing ticket it stopped at (nothing of it or after it written).
pub struct BatchStep {
    pub stored: Vec<Imported>,
    pub failed: Option<StoreError>,
    pub to_ticket: Option<ToTicket>,
}

/// Why a refused sender's mail is logged (EM-8).
const REJECTED_UNKNOWN_SENDER: &str = "unknown sender, and this mailbox does not accept mail from unregistered users";

/// Store a batch of mails in order, each once ([`IncomingMail`] idempotency), in one call to the database, up to
/// the first mail that threads into an existing ticket ([`BatchStep::to_ticket`]; the change layer hands it to the
/// ticket's actor and calls this again with the rest). New tickets, logged and duplicate mail stay here.
///
/// On SQLite the batch is one transaction, each mail a savepoint in it: the single writer commits once for a
/// few dozen mails rather than once per mail (the commit and the per-mail round trips were most of an import's
/// database time). On PostgreSQL each mail is its own transaction, so that row locks (the ticket counter)
/// are held for one mail only while other nodes import the same mailbox.
/// A mail that fails is rolled back alone; the ones before it stay stored.
pub async fn import_until_ticket(store: &Store, mails: Vec<BatchMail>) -> BatchStep {
    let done = store
        .run(move |store| async move {
            let presence = &|a: i64| store.presence(a);
            let mut conn = store.write().await?;
            if conn.tx().is_postgres() {
                Ok(import_each(&mut conn.tx(), mails, presence).await)
            } else {
                conn.transaction(async |tx| Ok(import_each(tx, mails, presence).await)).await
            }
        })
        .await;
    done.unwrap_or_else(|e| BatchStep { stored: Vec::new(), failed: Some(e), to_ticket: None })
}

/// Store one mail that threads into an existing ticket, in its own transaction: called by the ticket's actor
/// (`changes`), so it is ordered with every other change to that conversation. Idempotent like a batch's mail; the
/// lifecycle may still start a new ticket (a customer's mail to a closed one, CORE-7), and a refused sender's mail
/// is logged as `rejected` under `subject`.
pub async fn import_to_ticket(store: &Store, mail: Arc<IncomingMail>, subject: String) -> StoreResult<Imported> {
    store
        .run(move |store| async move {
            let presence = &|a: i64| store.presence(a);
            let mut conn = store.write().await?;
            let mailbox = mailbox(&mut conn.tx(), mail.channel_id).await?;
            let written = conn.transaction(async |tx| import_mail(tx, &mailbox, &mail, presence).await).await;
            settle(&mut conn.tx(), written, &mail, subject).await
        })
        .await
}
