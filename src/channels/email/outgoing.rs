//! Agent replies as mail (EO-1…EO-3): the outbox dispatcher hands over a queued message; this
//! builds the threaded mail — our own `Message-ID` (fixed before the first attempt, so every
//! retry sends the same one), `In-Reply-To`/`References` chaining the ticket's mail, `{#number}`
//! in the subject, From/Reply-To from the mailbox's settings, subscribers in Cc (NT-11: only in CC mode or with
//! notifications off; else each subscriber gets a copy of their own) — keeps its raw
//! source for audit, and sends it over SMTP. The dispatcher retries transient failures with
//! backoff; a permanent one (5xx, no address) is recorded as failed for an admin to see.

use super::net::{self, Address, OutgoingAttachment, OutgoingMail};
use super::settings::EmailSettings;
use super::threading;
use crate::blobs::Blobs;
use crate::domain::{Direction, Mode};
use crate::outbound::Policy;
use crate::store::email::{OutgoingContext, RawSource};
use crate::store::{self, Store};

#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct SendFailure {
    /// Trying again later can succeed.
    pub transient: bool,
    pub reason: String,
}

impl SendFailure {
    pub(crate) fn permanent(reason: impl Into<String>) -> Self {
        Self { transient: false, reason: reason.into() }
    }
    pub(crate) fn transient(reason: impl Into<String>) -> Self {
        Self { transient: true, reason: reason.into() }
    }
}

/// Send the mail of stored message `message_id`.
pub async fn deliver(store: &Store, blobs: &Blobs, policy: &Policy, message_id: i64) -> Result<(), SendFailure> {
    let mut ctx = store::email::outgoing_context(store, message_id)
        .await
        .map_err(|e| SendFailure::transient(format!("cannot load the message: {e}")))?;
    // NT-11: unless the settings say "one mail with the subscribers in Cc" (or notifications are off), the reply
    // goes to the customer alone and each subscriber gets a copy of their own (`ticket_updated`, queued by the
    // mail notification consumer).
    let notify = store::mail_notifications::settings(store)
        .await
        .map_err(|e| SendFailure::transient(format!("cannot read the notification settings: {e}")))?;
    if !notify.reply_carries_subscribers_in_cc() {
        ctx.subscribers.clear();
    }
    if ctx.message.direction != Direction::Out {
        return Err(SendFailure::permanent("only replies to the customer are sent"));
    }
    let settings = EmailSettings::of(&ctx.channel.settings)
        .ok_or_else(|| SendFailure::permanent("the mailbox's settings cannot be read"))?;
    let candidate = threading::new_message_id(&settings.message_id_domain(), ctx.conversation.number as u64);
    let id = store::email::assign_message_id(store, message_id, candidate)
        .await
        .map_err(|e| SendFailure::transient(format!("cannot fix the Message-ID: {e}")))?;
    let mut files = Vec::with_capacity(ctx.attachments.len());
    for a in &ctx.attachments {
        let data =
            blobs.get(&a.storage_key).await.map_err(|e| SendFailure::transient(format!("attachment {}: {e}", a.id)))?;
        files.push(OutgoingAttachment {
            filename: a.file_name.clone(),
            content_type: a.mime_type.clone(),
            data,
            content_id: a.content_id.clone(),
        });
    }
    let mail = compose(&ctx, &settings, id, files)?;
    let built = net::build(&mail).map_err(|e| SendFailure { transient: e.is_transient(), reason: e.to_string() })?;
    net::send_raw(&settings.smtp.transport(policy), &built.envelope_from, &built.envelope_to, &built.raw)
        .await
        .map_err(|e| SendFailure { transient: e.is_transient(), reason: e.to_string() })?;
    // The audit copy; failing to keep it does not unsend the mail.
    match RawSource::keep(blobs, built.raw).await {
        Ok(source) => {
            if let Err(e) =
                store::email::record_source(store, message_id, source, built.envelope_from, built.envelope_to).await
            {
                tracing::warn!(error = %e, "cannot record the sent mail's source");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot keep the sent mail's source"),
    }
    Ok(())
}

/// The mail for a reply (pure: everything comes from `ctx` and `settings`).
pub fn compose(
    ctx: &OutgoingContext,
    settings: &EmailSettings,
    message_id: String,
    attachments: Vec<OutgoingAttachment>,
) -> Result<OutgoingMail, SendFailure> {
    let customer = ctx
        .customer_email
        .clone()
        .ok_or_else(|| SendFailure::permanent("the customer has no email address to answer"))?;
    let number = ctx.conversation.number as u64;
    let parent = ctx.last_inbound.clone().or_else(|| ctx.thread.last().cloned());
    let earlier: Vec<String> = ctx.thread.iter().filter(|id| Some(*id) != parent.as_ref()).cloned().collect();
    let chain = threading::chain(parent.as_deref(), &earlier);
    let smtp = &settings.smtp;
    let name = match (&ctx.author_name, smtp.use_from_name_for_all) {
        (Some(author), false) => Some(author.clone()),
        _ => smtp.from_name.clone(),
    };
    let ours = settings.our_addresses();
    let cc = ctx
        .subscribers
        .iter()
        .filter(|s| !s.eq_ignore_ascii_case(&customer) && !ours.contains(&s.to_lowercase()))
        .map(|s| Address::new(s.clone()))
        .collect();
    let to_name = (!ctx.customer_name.is_empty() && ctx.customer_name != customer).then(|| ctx.customer_name.clone());
    Ok(OutgoingMail {
        from: Address { email: smtp.from_address.clone(), name },
        to: vec![Address { email: customer, name: to_name }],
        cc,
        reply_to: smtp.reply_to.clone().map(Address::new),
        subject: threading::reply_subject(&ctx.conversation.subject, number),
        message_id,
        in_reply_to: chain.in_reply_to,
        references: chain.references,
        text: ctx.message.body_text.clone(),
        html: ctx.message.body_html.clone(),
        attachments,
        auto_generated: false,
    })
}

/// A notification's data could not be read: tried again later.
pub(crate) fn load_failure(e: store::StoreError) -> SendFailure {
    SendFailure::transient(format!("cannot load the notification's data: {e}"))
}

/// The settings system mail (notifications, invitations, password links) is sent with: `preferred`'s (a ticket's
/// own mailbox) when it is an enabled mailbox, else the first enabled mailbox's. With none, the delivery waits
/// (transient) until a mailbox exists, so nothing is lost.
pub(crate) async fn system_sender(store: &Store, preferred: Option<i64>) -> Result<EmailSettings, SendFailure> {
    let mailboxes =
        store::channels::list(store, &crate::domain::ChannelScope::All, Some(crate::domain::ChannelKind::Email))
            .await
            .map_err(load_failure)?;
    let enabled = || mailboxes.iter().filter(|c| c.enabled);
    enabled()
        .filter(|c| Some(c.id) == preferred)
        .chain(enabled())
        .find_map(|c| EmailSettings::of(&c.settings))
        .ok_or_else(|| SendFailure::transient("no enabled mailbox to send notifications from"))
}

/// A mail whose sealed payload cannot be read (altered, or sealed with another key) fails for good; a database
/// that cannot be reached fails for now.
fn unreadable(what: &'static str) -> impl Fn(store::StoreError) -> SendFailure {
    move |e| match e {
        store::StoreError::BadData { .. } | store::StoreError::Secret(_) => {
            SendFailure::permanent(format!("unreadable {what}: {e}"))
        }
        e => load_failure(e),
    }
}

/// Send a system mail to one person from the first enabled mailbox: `Auto-Submitted: auto-generated`, no thread
/// (`number` only names the ticket in the Message-ID; 0 for none).
async fn send_system(
    store: &Store,
    policy: &Policy,
    to: Address,
    subject: String,
    (text, html): (String, Option<String>),
    number: u64,
) -> Result<(), SendFailure> {
    let settings = system_sender(store, None).await?;
    let mail = OutgoingMail {
        from: Address { email: settings.smtp.from_address.clone(), name: settings.smtp.from_name.clone() },
        to: vec![to],
        cc: vec![],
        reply_to: None,
        subject,
        message_id: threading::new_message_id(&settings.message_id_domain(), number),
        in_reply_to: None,
        references: vec![],
        text,
        html,
        attachments: vec![],
        auto_generated: true,
    };
    net::send(&settings.smtp.transport(policy), &mail)
        .await
        .map_err(|e| SendFailure { transient: e.is_transient(), reason: e.to_string() })
}

/// The mail inviting a teammate (#17 item 9): the single-use set-your-password link, opened from its sealed
/// outbox payload (`store::invitations::for_mail`). An invitation replaced, used or expired since is not sent (a
/// permanent failure the delivery log shows, so a stale link never reaches anyone).
pub async fn invitation(store: &Store, policy: &Policy, payload: &str, public_url: &str) -> Result<(), SendFailure> {
    let mail = store::invitations::for_mail(store, payload.to_owned()).await.map_err(unreadable("invitation mail"))?;
    let Some(mail) = mail else {
        return Err(SendFailure::permanent("the invitation was replaced, used or has expired: not sent"));
    };
    let link = store::invitations::link(public_url, &mail.token);
    let who = mail.invited_by.as_deref().unwrap_or("An administrator");
    let text = format!(
        "Hello {},\n\n{who} invited you to answer customers with them in Switchboard.\n\nSet your password here \
         (the link works once, until {} UTC):\n\n{link}\n\nThen sign in with {} and that password.\n",
        mail.agent.name,
        mail.expires_at.format("%Y-%m-%d %H:%M"),
        mail.agent.email
    );
    let to = Address { email: mail.agent.email.clone(), name: Some(mail.agent.name.clone()) };
    send_system(store, policy, to, format!("{who} invited you to the help desk"), (text, None), 0).await
}

/// The mail telling a customer's owner, who is offline, that a new conversation was assigned to
/// them (CC-12, seed 004), or an agent who was away that a note mentions them (#17). Sent through the first enabled mailbox's SMTP settings; with none, the
/// delivery waits (transient) until a mailbox exists, so nothing is lost.
pub async fn notify_owner(store: &Store, policy: &Policy, payload: &str, public_url: &str) -> Result<(), SendFailure> {
    #[derive(serde::Deserialize)]
    struct Payload {
        agent_id: i64,
        conversation_id: i64,
        /// Absent: the owner-offline mail.
        #[serde(default)]
        about: Option<About>,
        #[serde(default)]
        actor: String,
        #[serde(default)]
        excerpt: String,
    }
    /// What else an agent is mailed about.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum About {
        /// An internal note mentions the agent, who was not online (#17, `store::notifications::MENTION_EMAIL`).
        Mentioned,
    }
    let p: Payload =
        serde_json::from_str(payload).map_err(|e| SendFailure::permanent(format!("unreadable notification: {e}")))?;
    let agent = store::agents::get(store, p.agent_id).await.map_err(load_failure)?;
    let row = store::conversations::get(store, p.conversation_id, &crate::domain::ChannelScope::All)
        .await
        .map_err(load_failure)?;
    let c = &row.conversation;
    let subject = if c.subject.is_empty() { format!("(no subject) {{#{}}}", c.number) } else { c.subject.clone() };
    let link = format!(
        "{}/{}/{}",
        public_url.trim_end_matches('/'),
        if c.mode == Mode::Sync { "chats" } else { "tickets" },
        c.id
    );
    let (subject, text) = match p.about {
        Some(About::Mentioned) => (
            format!("{} mentioned you in #{}: {}", p.actor, c.number, subject),
            format!(
                "Hello {},\n\n{} mentioned you in an internal note on #{} ({}) while you were away:\n\n{}\n\n{link}\n",
                agent.name, p.actor, c.number, row.customer_name, p.excerpt
            ),
        ),
        None => (
            format!("New conversation from {}: {}", row.customer_name, subject),
            format!(
                "Hello {},\n\n{} wrote in while you were away, and the conversation was assigned to you as the \
                 customer's owner.\n\n{link}\n",
                agent.name, row.customer_name
            ),
        ),
    };
    let to = Address { email: agent.email.clone(), name: Some(agent.name.clone()) };
    send_system(store, policy, to, subject, (text, None), c.number as u64).await
}

/// The portal's "set your password" mail to a customer (CU-1, EM-8; issue #18, `store::portal::PASSWORD_EMAIL`):
/// the single-use link `{public_url}/portal/reset/{token}`, valid one hour, its token opened from the sealed payload.
/// A reset replaced, used or expired since is not mailed. Sent with the first enabled mailbox's SMTP settings, like
/// every system mail.
pub async fn customer_password(
    store: &Store,
    policy: &Policy,
    payload: &str,
    public_url: &str,
) -> Result<(), SendFailure> {
    let mail = store::portal::for_mail(store, payload.to_owned()).await.map_err(unreadable("password mail"))?;
    let Some(p) = mail else {
        return Err(SendFailure::permanent("the password link was replaced, used or has expired: not sent"));
    };
    let url = store::portal::reset_link(public_url, &p.token);
    // The editable `password_reset` template (TP-1); an emptied template sends nothing, as for every notification.
    let to = crate::domain::templates::Recipient {
        kind: crate::domain::templates::RecipientKind::Customer,
        id: None,
        name: p.name.trim().to_owned(),
        email: p.email.clone(),
    };
    let what = "Someone (we hope you) asked to set the password of your support portal account. The link works \
                once, within the next hour.";
    let kind = crate::domain::templates::TemplateKind::PasswordReset;
    let rendered =
        store::templates::compose_account(store, kind, &to, &p.email, &url, what).await.map_err(load_failure)?;
    let Some(rendered) = rendered else { return Ok(()) };
    let to = Address { email: p.email.clone(), name: None };
    send_system(store, policy, to, rendered.subject, (rendered.text, Some(rendered.html)), 0).await
}
