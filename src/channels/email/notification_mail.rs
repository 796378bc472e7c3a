//! Notification mail (issue #18, NT-1…NT-13): what the dispatcher's `Notify` route sends for an outbox row of
//! kind `email.notification` (`store::mail_notifications::NOTIFICATION_EMAIL`, queued by the change feed's mail
//! consumer or by the NT-13 welcome hook).
//!
//! Composition is ONE function, [`compose`] (subject, text, optional HTML; `None` = not sent — an empty template,
//! TP-1): a plain English composer until the stored templates replace it. [`deliver`] does the rest, the same for
//! every template: the recipient's address, the mailbox to send from (the ticket's own mailbox when it is an
//! enabled email channel, else the first enabled one; none yet: the delivery waits), `Auto-Submitted:
//! auto-generated`, threading headers so a reply to a notification threads into the ticket (EM-6: `{#number}` in
//! the subject, our Message-ID — the same on every retry —, `In-Reply-To`/`References` to the ticket's mail),
//! Reply-To the mailbox's, and the message's files when NT-9 allows. Links use `SWITCHBOARD_PUBLIC_URL`
//! ([`Store::public_url`]): agents get the dashboard's ticket link, customers the portal's ([`customer_link`]).

use super::net::{self, Address, OutgoingAttachment, OutgoingMail};
use super::outgoing::SendFailure;
use super::settings::EmailSettings;
use super::threading;
use crate::blobs::Blobs;
use crate::domain::mail_notifications::{Recipient, TemplateKind};
use crate::domain::{ChannelKind, ChannelScope};
use crate::outbound::Policy;
use crate::store::mail_notifications::{Payload, TicketFacts};
use crate::store::models::OutboxItem;
use crate::store::{self, Store};

/// A composed notification: subject, plain text, optional HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// The dashboard's link to a ticket.
pub fn agent_link(public_url: &str, conversation_id: i64) -> String {
    format!("{}/tickets/{conversation_id}", public_url.trim_end_matches('/'))
}

/// The customer portal's link to a ticket (the portal serves `/portal/tickets/{id}`; NT-10's auto-login links are
/// built by the portal and replace this one when the settings allow them, `NotificationSettings::auto_login_for`).
pub fn customer_link(public_url: &str, conversation_id: i64) -> String {
    format!("{}/portal/tickets/{conversation_id}", public_url.trim_end_matches('/'))
}

fn label(kind: TemplateKind, facts: &TicketFacts) -> String {
    match kind {
        TemplateKind::TicketConfirmation => "Ticket received".into(),
        TemplateKind::TicketClosed => "Ticket closed".into(),
        TemplateKind::TicketUpdated => "Ticket updated".into(),
        TemplateKind::NewTicketAdmin => "New ticket".into(),
        TemplateKind::NewTicketCategory => match &facts.category {
            Some(c) => format!("New ticket in {c}"),
            None => "New ticket".into(),
        },
        TemplateKind::CustomerUpdate => "Customer update".into(),
        TemplateKind::TicketTaken => "Ticket taken".into(),
        TemplateKind::KbArticleChanged => "Knowledge base article changed".into(),
        TemplateKind::Welcome => "Welcome".into(),
    }
}

/// Compose notification `kind` about ticket `conversation_id` (ignored for `welcome`) for `recipient`;
/// `what_happened` is TP-2's `#What_Happened#`. `Ok(None)`: nothing to send (the ticket is gone, an empty
/// template). A failure to read the store is transient.
pub async fn compose(
    store: &Store,
    kind: TemplateKind,
    conversation_id: i64,
    recipient: &Recipient,
    what_happened: &str,
) -> Result<Option<Composed>, SendFailure> {
    let load = |e: store::StoreError| SendFailure::transient(format!("cannot load the notification's data: {e}"));
    let public = store.public_url();
    if kind == TemplateKind::Welcome {
        let to = store::mail_notifications::address_of(store, recipient).await.map_err(load)?;
        let Some((name, email)) = to else { return Ok(None) };
        let hello = name.unwrap_or_else(|| email.clone());
        return Ok(Some(Composed {
            subject: "Welcome to our help desk".into(),
            text: format!(
                "Hello {hello},\n\nan account was created for you ({email}) when you wrote to us. You can follow \
                 your tickets at:\n\n{public}/portal\n"
            ),
            html: None,
        }));
    }
    let Some(facts) = store::mail_notifications::ticket_facts(store, conversation_id).await.map_err(load)? else {
        return Ok(None);
    };
    let c = &facts.conversation;
    let link = match recipient {
        Recipient::Agent(_) => agent_link(public, c.id),
        _ => customer_link(public, c.id),
    };
    let subject = if c.subject.trim().is_empty() { "(no subject)".to_owned() } else { c.subject.clone() };
    let mut text = format!("{what_happened}\n\nTicket #{}: {subject}\n", c.number);
    if let Some(category) = &facts.category {
        text.push_str(&format!("Category: {category}\n"));
    }
    if !facts.customer_name.is_empty() {
        text.push_str(&format!("From: {}\n", facts.customer_name));
    }
    text.push_str(&format!("\n{link}\n"));
    Ok(Some(Composed {
        subject: threading::outgoing_subject(&format!("{}: {subject}", label(kind, &facts)), c.number as u64),
        text,
        html: None,
    }))
}

/// The mailbox to send a notification from: `preferred` (the ticket's channel) when it is an enabled mailbox, else
/// the first enabled one.
async fn mailbox(store: &Store, preferred: i64) -> Result<EmailSettings, SendFailure> {
    let load = |e: store::StoreError| SendFailure::transient(format!("cannot load the mailboxes: {e}"));
    let mailboxes = store::channels::list(store, &ChannelScope::All, Some(ChannelKind::Email)).await.map_err(load)?;
    let enabled = || mailboxes.iter().filter(|c| c.enabled);
    enabled()
        .filter(|c| c.id == preferred)
        .chain(enabled())
        .find_map(|c| EmailSettings::of(&c.settings))
        .ok_or_else(|| SendFailure::transient("no enabled mailbox to send notifications from"))
}

/// Send the notification of outbox row `item` (the dispatcher's `Notify` route).
pub async fn deliver(store: &Store, blobs: &Blobs, policy: &Policy, item: &OutboxItem) -> Result<(), SendFailure> {
    let load = |e: store::StoreError| SendFailure::transient(format!("cannot load the notification's data: {e}"));
    let p = Payload::parse(&item.payload).ok_or_else(|| SendFailure::permanent("unreadable notification"))?;
    let settings = store::mail_notifications::settings(store).await.map_err(load)?;
    if !settings.enabled {
        // NT-1 switched off after this was queued: not sent.
        return Ok(());
    }
    let conversation_id = p.conversation_id.unwrap_or_default();
    let Some(composed) = compose(store, p.template, conversation_id, &p.recipient, &p.what_happened).await? else {
        return Ok(());
    };
    let Some((name, email)) = store::mail_notifications::address_of(store, &p.recipient).await.map_err(load)? else {
        return Err(SendFailure::permanent("the recipient has no email address"));
    };
    let mailbox = mailbox(store, item.channel_instance_id).await?;
    let facts = match p.conversation_id {
        Some(id) => store::mail_notifications::ticket_facts(store, id).await.map_err(load)?,
        None => None,
    };
    let number = facts.as_ref().map_or(0, |f| f.conversation.number as u64);
    let (in_reply_to, references) = match facts.as_ref().and_then(|f| f.thread.split_last()) {
        Some((last, earlier)) => {
            let chain = threading::chain(Some(last), earlier);
            (chain.in_reply_to, chain.references)
        }
        None => (None, Vec::new()),
    };
    let cc = match &p.recipient {
        Recipient::Addresses(all) => all.iter().skip(1).map(|a| Address::new(a.clone())).collect(),
        _ => Vec::new(),
    };
    // NT-9: the files of the message the notification is about, unless attachments are switched off.
    let mut attachments = Vec::new();
    if let (true, Some(message_id)) = (settings.include_attachments, p.message_id) {
        let files = store::attachments::for_messages(store, &[message_id]).await.map_err(load)?;
        for a in files {
            let data = blobs
                .get(&a.storage_key)
                .await
                .map_err(|e| SendFailure::transient(format!("attachment {}: {e}", a.id)))?;
            attachments.push(OutgoingAttachment {
                filename: a.file_name,
                content_type: a.mime_type,
                data,
                content_id: a.content_id,
            });
        }
    }
    let id = format!(
        "{}{number}.n{}@{}",
        threading::MESSAGE_ID_PREFIX,
        item.delivery_id.replace('-', ""),
        mailbox.message_id_domain().trim().to_lowercase()
    );
    let smtp = &mailbox.smtp;
    let mail = OutgoingMail {
        from: Address { email: smtp.from_address.clone(), name: smtp.from_name.clone() },
        to: vec![Address { email, name }],
        cc,
        reply_to: smtp.reply_to.clone().map(Address::new),
        subject: composed.subject,
        message_id: id,
        in_reply_to,
        references,
        text: composed.text,
        html: composed.html,
        attachments,
        auto_generated: true,
    };
    net::send(&smtp.transport(policy), &mail)
        .await
        .map_err(|e| SendFailure { transient: e.is_transient(), reason: e.to_string() })
}
