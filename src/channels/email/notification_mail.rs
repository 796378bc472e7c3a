//! Notification mail (issue #18, NT-1…NT-13): what the dispatcher's `Notify` route sends for an outbox row of
//! kind `email.notification` (`store::mail_notifications::NOTIFICATION_EMAIL`, queued by the change feed's mail
//! consumer or by the NT-13 welcome hook).
//!
//! Composition is ONE function, [`compose`] (subject, text, HTML; `None` = not sent — an empty template, TP-1):
//! the stored template of the notification rendered against the ticket (`store::templates::compose`), with links
//! signed by the portal. [`deliver`] does the rest, the same for
//! every template: the recipient's address, the mailbox to send from (the ticket's own mailbox when it is an
//! enabled email channel, else the first enabled one; none yet: the delivery waits), `Auto-Submitted:
//! auto-generated`, threading headers so a reply to a notification threads into the ticket (EM-6: `{#number}` in
//! the subject, our Message-ID — the same on every retry —, `In-Reply-To`/`References` to the ticket's mail),
//! Reply-To the mailbox's, and the message's files when NT-9 allows. Links use `SWITCHBOARD_PUBLIC_URL`
//! ([`Store::public_url`]): agents get the dashboard's ticket link, customers the portal's ([`customer_link`]).

use super::net::{self, Address, OutgoingAttachment, OutgoingMail};
use super::outgoing::{SendFailure, load_failure, system_sender};
use super::threading;
use crate::blobs::Blobs;
use crate::domain::mail_notifications::{NotificationSettings, Recipient, TemplateKind};
use crate::domain::templates::{self, RecipientKind};
use crate::outbound::Policy;
use crate::portal::links::{Links, MailLinks};
use crate::store::mail_notifications::Payload;
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

/// How the mail addresses its recipient, for the templates (`#FirstName#`, `#URL#`, …): the person behind
/// `recipient` with the address the mail goes to. One CC mail to several (NT-11) addresses no one in particular.
fn person(recipient: &Recipient, name: Option<String>, email: String) -> templates::Recipient {
    let (kind, id) = match recipient {
        Recipient::Agent(id) => (RecipientKind::Agent, Some(*id)),
        Recipient::Customer(id) => (RecipientKind::Customer, Some(*id)),
        Recipient::Address(_) | Recipient::Addresses(_) => (RecipientKind::Address, None),
    };
    templates::Recipient { kind, id, name: name.unwrap_or_default(), email }
}

/// Compose notification `kind` about ticket `conversation_id` (ignored for `welcome`) for `recipient`, from its
/// stored template (TP-1…TP-3, `store::templates`); `what_happened` is TP-2's `#What_Happened#`. Links are signed
/// by the portal's [`Links`] within what `settings` allow (NT-10, NT-11: `portal::links::MailLinks`). `Ok(None)`:
/// nothing to send (the template is empty, the ticket or the recipient's address is gone). A failure to read the
/// store is transient.
pub async fn compose(
    store: &Store,
    links: &Links,
    settings: &NotificationSettings,
    kind: TemplateKind,
    conversation_id: i64,
    recipient: &Recipient,
    what_happened: &str,
) -> Result<Option<Composed>, SendFailure> {
    let load = load_failure;
    let Some((name, email)) = store::mail_notifications::address_of(store, recipient).await.map_err(load)? else {
        return Ok(None);
    };
    let to = person(recipient, name, email);
    let rendered = if kind == TemplateKind::Welcome {
        let url = format!("{}/portal", store.public_url().trim_end_matches('/'));
        let user_name = to.email.clone();
        store::templates::compose_account(store, kind, &to, &user_name, &url, what_happened).await
    } else {
        let mail_links = MailLinks {
            links,
            auto_login: settings.auto_login_for(recipient),
            cc_mode: matches!(recipient, Recipient::Addresses(_)),
        };
        let template = store::templates::get(store, kind).await.map_err(load)?;
        if template.body.trim().is_empty() {
            return Ok(None); // TP-1: an empty template is not sent
        }
        let mut ctx = match store::templates::context(store, conversation_id, &to, what_happened, &mail_links).await {
            Err(store::StoreError::NotFound) => return Ok(None),
            other => other.map_err(load)?,
        };
        if !settings.include_attachments {
            // NT-9 off: no file reaches a notification, not even as a name or a link.
            ctx.attachments.clear();
            ctx.recent_attachments.clear();
        }
        Ok(store::templates::render_template(&template, &ctx))
    };
    Ok(rendered.map_err(load)?.map(|r| Composed { subject: r.subject, text: r.text, html: Some(r.html) }))
}

/// Send the notification of outbox row `item` (the dispatcher's `Notify` route).
pub async fn deliver(
    store: &Store,
    blobs: &Blobs,
    policy: &Policy,
    links: &Links,
    item: &OutboxItem,
) -> Result<(), SendFailure> {
    let load = load_failure;
    let p = Payload::parse(&item.payload).ok_or_else(|| SendFailure::permanent("unreadable notification"))?;
    let settings = store::mail_notifications::settings(store).await.map_err(load)?;
    if !settings.enabled {
        // NT-1 switched off after this was queued: not sent.
        return Ok(());
    }
    let conversation_id = p.conversation_id.unwrap_or_default();
    let composed =
        compose(store, links, &settings, p.template, conversation_id, &p.recipient, &p.what_happened).await?;
    let Some(composed) = composed else {
        return Ok(());
    };
    let Some((name, email)) = store::mail_notifications::address_of(store, &p.recipient).await.map_err(load)? else {
        return Err(SendFailure::permanent("the recipient has no email address"));
    };
    let mailbox = system_sender(store, Some(item.channel_instance_id)).await?;
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
        // EM-6: the ticket's `{#number}` ends every notification's subject, whatever the template says, so a
        // reply threads into the ticket even from a client that drops In-Reply-To.
        subject: if number > 0 { threading::outgoing_subject(&composed.subject, number) } else { composed.subject },
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
