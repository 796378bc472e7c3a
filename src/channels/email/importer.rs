//! One mail in: raw bytes → parsed → junk rules (EM-12) → threading (EM-6) → settings (EM-7…EM-11)
//! and subject commands (EM-13) → stored as a ticket or a message (EM-1, EM-2) → published live.
//! Everything that is not a ticket is logged for admins, never dropped.
//!
//! Three steps: [`prepare`] (parse, sanitise, junk rules, attachments and large sources to disk — CPU and
//! files, no database; blocking), [`store_batch`] (threading and storing a batch of mails in mail order through
//! `Changes::import_mail`: new tickets in one call to the database, a mail to an existing ticket by that ticket's
//! conversation actor) and [`announce`] (published live, auto-assigned). The mailbox connector
//! (`mailbox::drain`) runs them as stages side by side and acknowledges a mail on the server only when
//! `store_batch` returned it as stored: the mail is committed (or logged).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::commands::{Command, extract_commands, forwarded_original_sender, route_category};
use super::junk::{Us, Verdict, classify};
use super::parse::{ParsedMail, parse_guarded};
use super::settings::EmailSettings;
use super::threading::{Decision, Via, decide};
use crate::blobs::Blobs;
use crate::changes::Changes;
use crate::store::StoreError;
use crate::store::email::{
    BatchImport, BatchMail, Imported, IncomingMail, LoggedMail, MailTarget, RawSource, Route, Sender, StoredFile,
    ThreadIndex, ThreadedMail,
};

/// The mailbox a mail arrived in, and who the agents are (read once per batch of mail).
pub struct Mailbox<'a> {
    pub channel_id: i64,
    pub settings: &'a EmailSettings,
    /// Active agents by lower-case address (`store::email::agent_addresses`).
    pub agents: &'a HashMap<String, i64>,
}

/// A mail read and judged, its attachments (and a large source) on disk: everything of an import that needs no database.
/// [`prepare`] makes it (on a blocking thread); [`store_batch`] stores it.
pub struct Prepared {
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
    Ok(Prepared { source, read })
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

/// Publish a stored mail to the agents' sockets and, for a new ticket, run the channel's auto-assignment (CC-12);
/// a duplicate or a logged mail shows nothing. The mail is committed whatever this returns; the connector runs it
/// off the import's path, in mail order.
pub async fn announce(rt: &Changes, imported: Imported) -> Result<(), StoreError> {
    match imported {
        Imported::Created(created) => {
            rt.created(&created).await?;
        }
        Imported::Appended { message, attachments, conversation, events } => {
            rt.appended(message, attachments, conversation, &events).await?;
        }
        Imported::Duplicate { .. } | Imported::Logged { .. } => {}
    }
    Ok(())
}

/// Store prepared mails, in order (a mail may thread into the one before it), through the change layer
/// ([`Changes::import_mail`]: new tickets in one call to the database, a mail for an existing ticket through its actor): threading (EM-6), settings (EM-7…EM-11), commands (EM-13), then the ticket or
/// message (or the log entry). Returns what became of each mail stored, in order (what to [`announce`]), and the
/// error that stopped the batch early, if one did: the mail after the last one returned was not stored, nor the ones
/// after it.
pub async fn store_batch(
    rt: &Changes,
    mailbox: &Mailbox<'_>,
    prepared: Vec<Prepared>,
) -> (Vec<Imported>, Option<StoreError>) {
    let span = tracing::info_span!("mails", channel_id = mailbox.channel_id, count = prepared.len());
    let _enter = span.enter();
    let batch: Vec<BatchMail> = prepared.into_iter().map(|p| batch_mail(mailbox, p)).collect();
    let BatchImport { stored, failed } = rt.import_mail(batch).await;
    for imported in &stored {
        match imported {
            Imported::Created(c) => {
                tracing::info!(conversation_id = c.conversation.conversation.id, "new ticket from mail")
            }
            Imported::Appended { conversation, .. } => {
                tracing::info!(conversation_id = conversation.conversation.id, "mail added to a ticket")
            }
            Imported::Duplicate { conversation_id } => tracing::info!(conversation_id, "mail stored before"),
            Imported::Logged { outcome, reason } => tracing::info!(outcome, %reason, "mail logged, not a ticket"),
        }
    }
    (stored, failed)
}

/// A prepared mail as the store takes it: logged, or routed by [`route`] once the tickets it names are read.
/// Everything that needs the mailbox's settings or its agents is decided here.
fn batch_mail(mailbox: &Mailbox<'_>, prepared: Prepared) -> BatchMail {
    let Prepared { source, read } = prepared;
    let (mail, message_id, from_address, files) = match read {
        Read::Logged { outcome, reason, message_id, from, subject } => {
            return BatchMail::Log(LoggedMail {
                channel_id: mailbox.channel_id,
                message_id,
                from_address: from,
                subject: clip(&subject, 300),
                outcome,
                reason,
                source,
            });
        }
        Read::Mail { mail, message_id, from_address, files } => (*mail, message_id, from_address, files),
    };
    let settings = mailbox.settings;
    let ours = settings.our_addresses();
    let agents = mailbox.agents;
    let commands = extract_commands(&mail.subject);
    // A forward by an agent is always a new ticket of the original sender (EM-11).
    let forwarded = if settings.extract_forwarded_sender {
        forwarded_original_sender(&mail, |a| agents.contains_key(&a.to_lowercase()))
    } else {
        None
    };
    // The sender of a reply, and the sender and place of a new ticket.
    let replier = match agents.get(&from_address) {
        Some(id) => Sender::Agent { id: *id },
        None => Sender::Customer {
            email: from_address.clone(),
            name: mail.from.as_ref().and_then(|f| f.name.clone()),
            create: true,
        },
    };
    let customer = forwarded.clone().unwrap_or_else(|| mail.from.clone().expect("a mail is read only with a sender"));
    let new_ticket = (
        Sender::Customer {
            email: customer.address.clone(),
            name: customer.name.clone(),
            create: settings.accept_unknown_senders,
        },
        MailTarget::New {
            team_id: route_category(&mail, &ours),
            subscribers: if settings.subscribe_recipients {
                subscribers(&mail, &ours, &customer.address)
            } else {
                vec![]
            },
        },
    );
    let (number, ids) = match forwarded {
        Some(_) => (None, Vec::new()),
        None => {
            let mut ids: Vec<String> = mail.in_reply_to.iter().chain(&mail.references).cloned().collect();
            ids.push(message_id.clone());
            (super::threading::subject_ticket_number(&mail.subject), ids)
        }
    };
    let channel_id = mailbox.channel_id;
    let is_forward = forwarded.is_some();
    let route = move |index: &ThreadIndex| -> Route {
        // Where it goes (EM-6).
        let decision = if is_forward {
            Decision::NewTicket(super::NewReason::NoMatch)
        } else {
            decide(
                &mail.subject,
                Some(from_address.as_str()),
                &mail.in_reply_to,
                &mail.references,
                Some(&message_id),
                index,
            )
        };
        let (sender, target) = match decision {
            Decision::Reply { ticket, via: Via::SameMessageId, .. } => {
                return Route::Duplicate { conversation_id: ticket };
            }
            Decision::Reply { ticket, via, .. } => {
                tracing::debug!(ticket, ?via, "mail threads into a ticket");
                (replier, MailTarget::Reply { conversation_id: ticket })
            }
            Decision::NewTicket(_) => new_ticket,
        };
        let mut mail = mail;
        let subject = if commands.commands.is_empty() { mail.subject.clone() } else { commands.subject.clone() };
        Route::Store {
            mail: Box::new(IncomingMail {
                channel_id,
                message_id,
                sender,
                subject: clip(&subject, 300),
                // The bodies are not needed after this (a large HTML mail's are megabytes): moved, not copied.
                text: std::mem::take(&mut mail.text),
                html: mail.html.take(),
                files,
                source,
                from_address,
                recipients: mail.to.iter().chain(&mail.cc).map(|m| m.address.clone()).collect(),
                target,
                note: commands.commands.contains(&Command::Tech),
                close: commands.commands.contains(&Command::Close),
                unsubscribe: commands.commands.contains(&Command::Unsubscribe),
            }),
            subject: clip(&mail.subject, 300),
        }
    };
    BatchMail::Thread(ThreadedMail { number, ids, route: Box::new(route) })
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
