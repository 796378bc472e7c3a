//! One mail in: raw bytes → parsed → junk rules (EM-12) → threading (EM-6) → settings (EM-7…EM-11)
//! and subject commands (EM-13) → stored as a ticket or a message (EM-1, EM-2) → published live.
//! Everything that is not a ticket is logged for admins, never dropped.
//!
//! Three steps: [`prepare`] (parse, sanitise, junk rules, attachments and large sources to disk — CPU and
//! files, no database; blocking), [`store_prepared`] (threading and storing — in mail order) and [`announce`] (published
//! live, auto-assigned). The mailbox connector (`mailbox::drain`) runs them as stages side by side and
//! acknowledges a mail on the server only when `store_prepared` returned `Ok`: the mail is committed (or logged).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::commands::{Command, extract_commands, forwarded_original_sender, route_category};
use super::junk::{Us, Verdict, classify};
use super::parse::{ParsedMail, parse_guarded};
use super::settings::EmailSettings;
use super::threading::{Decision, Via, decide};
use crate::blobs::Blobs;
use crate::realtime::Realtime;
use crate::store::conversations::{ConversationRow, CreatedConversation};
use crate::store::email::{Imported, IncomingMail, LoggedMail, MailTarget, RawSource, Sender, StoredFile};
use crate::store::events::EventRow;
use crate::store::models::{Attachment, Message};
use crate::store::{self, StoreError};

/// What became of a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new ticket.
    Created { conversation_id: i64 },
    /// A message of an existing ticket.
    Appended { conversation_id: i64, via: Via },
    /// Stored before (a re-import after a crash, or a copy in a second mailbox).
    Duplicate { conversation_id: i64 },
    /// Not a ticket: logged as `junk`, `rejected` or `unparseable` with this reason.
    Logged { outcome: &'static str, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("storing the mail failed: {0}")]
    Store(#[from] StoreError),
    #[error("writing the mail to disk failed: {0}")]
    Blob(#[from] std::io::Error),
}

/// The mailbox a mail arrived in, and who the agents are (read once per batch of mail).
pub struct Mailbox<'a> {
    pub channel_id: i64,
    pub settings: &'a EmailSettings,
    /// Active agents by lower-case address (`store::email::agent_addresses`).
    pub agents: &'a HashMap<String, i64>,
}

/// A mail read and judged, its attachments (and a large source) on disk: everything of an import that needs no database.
/// [`prepare`] makes it (on a blocking thread); [`store_prepared`] stores it.
pub struct Prepared {
    bytes: usize,
    source: RawSource,
    read: Read,
}

enum Read {
    /// Not a ticket: logged as `unparseable`, `junk` or `rejected`.
    Logged { outcome: &'static str, reason: String, message_id: String, from: String, subject: String },
    /// A mail for a ticket, with its attachments stored.
    Mail { mail: Box<ParsedMail>, message_id: String, from_address: String, files: Vec<StoredFile> },
}

/// Parse the mail, apply the junk rules (EM-12) and keep its source and attachments (the source in its row when
/// small, see [`RawSource`]). Blocking (hashing, file writes, parsing and sanitising HTML): call it from a blocking
/// thread.
pub fn prepare(blobs: &Blobs, settings: &EmailSettings, raw: &[u8]) -> std::io::Result<Prepared> {
    let source = RawSource::keep_blocking(blobs, raw)?;
    let read = read(blobs, settings, raw)?;
    Ok(Prepared { bytes: raw.len(), source, read })
}

fn read(blobs: &Blobs, settings: &EmailSettings, raw: &[u8]) -> std::io::Result<Read> {
    let mail = match parse_guarded(raw) {
        Ok(m) => m,
        Err(e) => {
            let (message_id, reason) = (synthetic_id(raw), e.to_string());
            return Ok(Read::Logged {
                outcome: "unparseable",
                reason,
                message_id,
                from: "".into(),
                subject: "".into(),
            });
        }
    };
    let message_id = mail.message_id.clone().unwrap_or_else(|| synthetic_id(raw));
    let from_address = mail.from.as_ref().map(|f| f.address.clone()).unwrap_or_default();
    let ours = settings.our_addresses();
    let domain = settings.message_id_domain();
    let logged = |outcome, reason| Read::Logged {
        outcome,
        reason,
        message_id: message_id.clone(),
        from: from_address.clone(),
        subject: mail.subject.clone(),
    };
    if let Verdict::NotACustomer(reason) = classify(&mail, &Us { addresses: &ours, message_id_domain: &domain }) {
        return Ok(logged("junk", reason.to_string()));
    }
    if from_address.is_empty() || !from_address.contains('@') {
        return Ok(logged("rejected", "no sender address".into()));
    }
    let mut files = Vec::with_capacity(mail.attachments.len());
    for a in &mail.attachments {
        files.push(stored(blobs.put_blocking(&a.bytes)?, &a.file_name, &a.mime_type, a.content_id.clone()));
    }
    Ok(Read::Mail { mail: Box::new(mail), message_id, from_address, files })
}

/// What follows a stored mail once it is committed: the new ticket or message shown live, and a new ticket
/// auto-assigned (CC-12) — see [`announce`].
pub enum Announcement {
    Created(CreatedConversation),
    Appended { message: Message, attachments: Vec<Attachment>, conversation: ConversationRow, events: Vec<EventRow> },
}

/// Publish a stored mail to the agents' sockets and, for a new ticket, run the channel's auto-assignment. The mail
/// is committed whatever this returns; the connector runs it off the import's path, in mail order.
pub async fn announce(rt: &Realtime, a: Announcement) -> Result<(), StoreError> {
    match a {
        Announcement::Created(created) => {
            rt.created(&created).await?;
        }
        Announcement::Appended { message, attachments, conversation, events } => {
            crate::realtime::ops::appended(rt, message, attachments, conversation, &events).await?;
        }
    }
    Ok(())
}

/// Store a prepared mail: threading (EM-6), settings (EM-7…EM-11), commands (EM-13), then the ticket or message
/// (or the log entry). Returns what became of it and, when something was stored, what to [`announce`].
pub async fn store_prepared(
    rt: &Realtime,
    mailbox: &Mailbox<'_>,
    prepared: Prepared,
) -> Result<(Outcome, Option<Announcement>), ImportError> {
    let span = tracing::info_span!("mail", channel_id = mailbox.channel_id, bytes = prepared.bytes);
    let _enter = span.enter();
    let Prepared { source, read, .. } = prepared;
    let (mut mail, message_id, from_address, files) = match read {
        Read::Logged { outcome, reason, message_id, from, subject } => {
            tracing::info!(outcome, %reason, "mail logged, not a ticket");
            return Ok((log(rt, mailbox, &message_id, &from, &subject, outcome, reason, source).await?, None));
        }
        Read::Mail { mail, message_id, from_address, files } => (*mail, message_id, from_address, files),
    };
    let ours = mailbox.settings.our_addresses();

    let agents = mailbox.agents;
    let commands = extract_commands(&mail.subject);
    let forwarded = if mailbox.settings.extract_forwarded_sender {
        forwarded_original_sender(&mail, |a| agents.contains_key(&a.to_lowercase()))
    } else {
        None
    };

    // Where it goes (EM-6). A forward by an agent is always a new ticket of the original sender (EM-11).
    let decision = match &forwarded {
        Some(_) => Decision::NewTicket(super::NewReason::NoMatch),
        None => {
            let mut ids: Vec<String> = mail.in_reply_to.iter().chain(&mail.references).cloned().collect();
            ids.push(message_id.clone());
            let number = super::threading::subject_ticket_number(&mail.subject);
            let index = store::email::thread_index(&rt.store, number, ids).await?;
            decide(
                &mail.subject,
                Some(from_address.as_str()),
                &mail.in_reply_to,
                &mail.references,
                Some(&message_id),
                &index,
            )
        }
    };
    if let Decision::Reply { ticket, via: Via::SameMessageId, .. } = decision {
        return Ok((Outcome::Duplicate { conversation_id: ticket }, None));
    }

    let (sender, target) = match decision {
        Decision::Reply { ticket, .. } => {
            let sender = match agents.get(&from_address) {
                Some(id) => Sender::Agent { id: *id },
                None => Sender::Customer {
                    email: from_address.clone(),
                    name: mail.from.as_ref().and_then(|f| f.name.clone()),
                    create: true,
                },
            };
            (sender, MailTarget::Reply { conversation_id: ticket })
        }
        Decision::NewTicket(_) => {
            let customer = forwarded.clone().unwrap_or_else(|| mail.from.clone().expect("checked above"));
            let team_id = route_category(&mail, &ours);
            let subscribers = if mailbox.settings.subscribe_recipients {
                subscribers(&mail, &ours, &customer.address)
            } else {
                vec![]
            };
            (
                Sender::Customer {
                    email: customer.address.clone(),
                    name: customer.name.clone(),
                    create: mailbox.settings.accept_unknown_senders,
                },
                MailTarget::New { team_id, subscribers },
            )
        }
    };

    let via = match decision {
        Decision::Reply { via, .. } => Some(via),
        Decision::NewTicket(_) => None,
    };
    let subject = if commands.commands.is_empty() { mail.subject.clone() } else { commands.subject.clone() };
    let incoming = IncomingMail {
        channel_id: mailbox.channel_id,
        message_id: message_id.clone(),
        sender,
        subject: clip(&subject, 300),
        // The bodies are not needed after this (a large HTML mail's are megabytes): moved, not copied.
        text: std::mem::take(&mut mail.text),
        html: mail.html.take(),
        files,
        source: source.clone(),
        from_address: from_address.clone(),
        recipients: mail.to.iter().chain(&mail.cc).map(|m| m.address.clone()).collect(),
        target,
        note: commands.commands.contains(&Command::Tech),
        close: commands.commands.contains(&Command::Close),
        unsubscribe: commands.commands.contains(&Command::Unsubscribe),
    };
    let imported = match store::email::import(&rt.store, incoming).await {
        Ok(i) => i,
        // Another node (or mailbox) stored the same mail a moment ago.
        Err(StoreError::Conflict(_)) => {
            let index = store::email::thread_index(&rt.store, None, vec![message_id.clone()]).await?;
            use super::TicketLookup;
            return match index.ticket_by_message_id(&message_id) {
                Some(conversation_id) => Ok((Outcome::Duplicate { conversation_id }, None)),
                None => Err(StoreError::Conflict("the mail was stored concurrently".into()).into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    match imported {
        Imported::Created(created) => {
            let id = created.conversation.conversation.id;
            tracing::info!(conversation_id = id, "new ticket from mail");
            Ok((Outcome::Created { conversation_id: id }, Some(Announcement::Created(created))))
        }
        Imported::Appended { message, attachments, conversation, events } => {
            let id = conversation.conversation.id;
            let outcome = Outcome::Appended { conversation_id: id, via: via.unwrap_or(Via::References) };
            Ok((outcome, Some(Announcement::Appended { message, attachments, conversation, events })))
        }
        Imported::Duplicate { conversation_id } => Ok((Outcome::Duplicate { conversation_id }, None)),
        Imported::Rejected => {
            let reason = "unknown sender, and this mailbox does not accept mail from unregistered users".to_owned();
            Ok((log(rt, mailbox, &message_id, &from_address, &mail.subject, "rejected", reason, source).await?, None))
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn log(
    rt: &Realtime,
    mailbox: &Mailbox<'_>,
    message_id: &str,
    from: &str,
    subject: &str,
    outcome: &'static str,
    reason: String,
    source: RawSource,
) -> Result<Outcome, ImportError> {
    store::email::log_mail(
        &rt.store,
        LoggedMail {
            channel_id: mailbox.channel_id,
            message_id: message_id.to_owned(),
            from_address: from.to_owned(),
            subject: clip(subject, 300),
            outcome,
            reason: reason.clone(),
            source,
        },
    )
    .await?;
    Ok(Outcome::Logged { outcome, reason })
}

/// TO and CC addresses other than ours and the customer's, each once (EM-10).
fn subscribers(mail: &ParsedMail, ours: &[String], customer: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in mail.to.iter().chain(&mail.cc) {
        let a = m.address.to_lowercase();
        let plus_ours = ours.iter().any(|o| super::commands::plus_category(&a, o).is_some());
        if a.contains('@') && !ours.contains(&a) && !plus_ours && a != customer && !out.contains(&a) {
            out.push(a);
        }
    }
    out.truncate(50);
    out
}

fn stored(b: crate::blobs::StoredBlob, name: &str, mime: &str, content_id: Option<String>) -> StoredFile {
    StoredFile {
        file_name: name.to_owned(),
        mime_type: mime.to_owned(),
        size_bytes: b.size as i64,
        sha256: b.sha256,
        storage_key: b.storage_key,
        content_id,
    }
}

/// A stable id for a mail without `Message-ID`, so a re-import is still recognised.
fn synthetic_id(raw: &[u8]) -> String {
    format!("{}@no-message-id.invalid", &hex::encode(Sha256::digest(raw))[..40])
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_ids_are_stable_and_distinct() {
        assert_eq!(synthetic_id(b"a"), synthetic_id(b"a"));
        assert_ne!(synthetic_id(b"a"), synthetic_id(b"b"));
        assert!(synthetic_id(b"a").ends_with("@no-message-id.invalid"));
    }

    #[test]
    fn subscribers_leave_out_us_and_the_customer() {
        let raw = b"From: Jane <jane@example.org>\r\nTo: support@example.com, Bob <bob@example.org>\r\n\
Cc: support+7-billing@example.com, jane@example.org, BOB@example.org, carol@example.net\r\n\
Subject: hi\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n";
        let mail = crate::channels::email::parse::parse(raw).unwrap();
        let ours = vec!["support@example.com".to_owned()];
        assert_eq!(subscribers(&mail, &ours, "jane@example.org"), vec!["bob@example.org", "carol@example.net"]);
    }
}
