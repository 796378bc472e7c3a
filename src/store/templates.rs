//! Notification templates (TP-1…TP-3, issue #18 item 4): the template stored per kind (a row only once an
//! admin edited it; "reset" deletes the row, so the shipped default applies again; an EMPTY body means that
//! notification is not sent), each change with its audit entry; the [`MaskContext`] of a real ticket for one
//! recipient ([`context`]); and [`compose`], the one function the notification sender calls.
//!
//! Rendering itself is pure (`domain::templates::render`); this module only reads what the masks show.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use super::audit::{self, Actor};
use super::conversations::load_in_scope;
use super::models::{Attachment, Conversation, Message};
use super::schema::{
    agents, attachments, channel_instances, companies, conversation_subscribers, customer_identities, customers,
    messages, notification_templates, statuses, teams,
};
use super::{Store, StoreResult, Tx, now};
use crate::db;
use crate::domain::templates::{
    AttachmentLink, CustomField, FieldVisibility, LinkMaker, MAX_RECENT, MaskContext, MessageEntry, Person, Recipient,
    RecipientKind, Rendered, Submitter, Subscriber, TemplateKind, defaults, render,
};
use crate::domain::{ChannelKind, ChannelScope, Direction, Mode};

/// The template of one kind as it applies now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub kind: TemplateKind,
    pub subject: String,
    /// Empty: this notification is not sent (TP-1).
    pub body: String,
    /// No edited row: the shipped default.
    pub is_default: bool,
    pub updated_at: Option<NaiveDateTime>,
}

impl Template {
    fn default_of(kind: TemplateKind) -> Self {
        let (subject, body) = defaults(kind);
        Template { kind, subject: subject.into(), body: body.into(), is_default: true, updated_at: None }
    }
}

type Row = (TemplateKind, String, String, NaiveDateTime);

fn from_row((kind, subject, body, updated_at): Row) -> Template {
    Template { kind, subject, body, is_default: false, updated_at: Some(updated_at) }
}

async fn edited(tx: &mut Tx<'_>, kind: TemplateKind) -> StoreResult<Option<Template>> {
    let row: Option<Row> = db!(
        tx,
        notification_templates::table
            .find(kind)
            .select((
                notification_templates::kind,
                notification_templates::subject,
                notification_templates::body,
                notification_templates::updated_at,
            ))
            .first(tx)
            .await
            .optional()
    )?;
    Ok(row.map(from_row))
}

/// The template of `kind` inside a transaction: the edited one, else the default.
pub async fn get_tx(tx: &mut Tx<'_>, kind: TemplateKind) -> StoreResult<Template> {
    Ok(edited(tx, kind).await?.unwrap_or_else(|| Template::default_of(kind)))
}

/// The template of `kind`: the edited one, else the default.
pub async fn get(store: &Store, kind: TemplateKind) -> StoreResult<Template> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            get_tx(&mut conn.tx(), kind).await
        })
        .await
}

/// Every kind's template, in [`TemplateKind::ALL`] order.
pub async fn list(store: &Store) -> StoreResult<Vec<Template>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let rows: Vec<Row> = db!(
                tx,
                notification_templates::table
                    .select((
                        notification_templates::kind,
                        notification_templates::subject,
                        notification_templates::body,
                        notification_templates::updated_at,
                    ))
                    .load(tx)
                    .await
            )?;
            let mut edited: BTreeMap<&str, Template> = rows.into_iter().map(|r| (r.0.as_str(), from_row(r))).collect();
            Ok(TemplateKind::ALL
                .iter()
                .map(|k| edited.remove(k.as_str()).unwrap_or_else(|| Template::default_of(*k)))
                .collect())
        })
        .await
}

/// Stores the template of `kind` (an empty body: not sent), with its audit entry.
pub async fn save(store: &Store, kind: TemplateKind, subject: &str, body: &str, actor: Actor) -> StoreResult<Template> {
    let subject = subject.to_owned();
    let body = body.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let before = edited(tx, kind).await?;
                let row = (
                    notification_templates::subject.eq(&subject),
                    notification_templates::body.eq(&body),
                    notification_templates::updated_by.eq(actor.agent_id()),
                    notification_templates::updated_at.eq(t),
                );
                if before.is_some() {
                    db!(tx, diesel::update(notification_templates::table.find(kind)).set(row).execute(tx).await)?;
                } else {
                    let (subject, body, by, at) = row;
                    db!(
                        tx,
                        diesel::insert_into(notification_templates::table)
                            .values((notification_templates::kind.eq(kind), subject, body, by, at))
                            .execute(tx)
                            .await
                    )?;
                }
                let details = json!({
                    "kind": kind,
                    "subject": subject,
                    "body_chars": body.chars().count(),
                    "sent": !body.trim().is_empty(),
                    "was_default": before.is_none(),
                });
                audit::write(
                    tx,
                    audit::entry(actor, "notification_template.update", "notification_template", None, details),
                )
                .await?;
                Ok(Template { kind, subject, body, is_default: false, updated_at: Some(t) })
            })
            .await
        })
        .await
}

/// Back to the shipped default (the edited row is deleted), with its audit entry.
pub async fn reset(store: &Store, kind: TemplateKind, actor: Actor) -> StoreResult<Template> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let gone = db!(tx, diesel::delete(notification_templates::table.find(kind)).execute(tx).await)?;
                if gone > 0 {
                    audit::write(
                        tx,
                        audit::entry(
                            actor,
                            "notification_template.reset",
                            "notification_template",
                            None,
                            json!({"kind": kind}),
                        ),
                    )
                    .await?;
                }
                Ok(Template::default_of(kind))
            })
            .await
        })
        .await
}

/// What a ticket's masks show, before the recipient's links: read in one go.
#[derive(Debug, Clone)]
pub struct TicketFacts {
    conversation: Conversation,
    channel_kind: ChannelKind,
    status_name: String,
    category: String,
    submitter: Submitter,
    technician: Option<Person>,
    /// Public messages (no notes), newest first, at most [`MAX_RECENT`], with their files.
    recent: Vec<(MessageEntry, Vec<Attachment>)>,
    first_message: String,
    /// Every file of the public messages, oldest first.
    attachments: Vec<Attachment>,
    subscribers: Vec<Subscriber>,
}

fn date(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Reads the facts of conversation `id` in `scope` (out of scope: `NotFound`).
pub async fn facts_tx(tx: &mut Tx<'_>, id: i64, scope: &ChannelScope) -> StoreResult<TicketFacts> {
    let c = load_in_scope(tx, id, scope).await?;
    let channel_kind: ChannelKind =
        db!(tx, channel_instances::table.find(c.channel_instance_id).select(channel_instances::kind).first(tx).await)?;
    let status_name: Option<String> =
        db!(tx, statuses::table.filter(statuses::key.eq(&c.status)).select(statuses::name).first(tx).await.optional())?;
    let category: Option<String> = match c.team_id {
        Some(team) => db!(tx, teams::table.find(team).select(teams::name).first(tx).await.optional())?,
        None => None,
    };
    let (name, company_id, fields): (String, Option<i64>, String) = db!(
        tx,
        customers::table
            .find(c.customer_id)
            .select((customers::name, customers::company_id, customers::custom_fields))
            .first(tx)
            .await
    )?;
    let company: Option<String> = match company_id {
        Some(company) => db!(tx, companies::table.find(company).select(companies::name).first(tx).await.optional())?,
        None => None,
    };
    let identities: Vec<(String, String)> = db!(
        tx,
        customer_identities::table
            .filter(customer_identities::customer_id.eq(c.customer_id))
            .order(customer_identities::id)
            .select((customer_identities::kind, customer_identities::value))
            .load(tx)
            .await
    )?;
    let email = identities.iter().find(|(k, _)| k == "email").map(|(_, v)| v.clone()).unwrap_or_default();
    let user_name = if email.is_empty() {
        <[_]>::first(&identities).map(|(_, v)| v.clone()).unwrap_or_else(|| name.clone())
    } else {
        email.clone()
    };
    let profile: serde_json::Map<String, Value> = serde_json::from_str(&fields).unwrap_or_default();
    let field = |key: &str| profile.get(key).map(text_of).unwrap_or_default();
    let mut parts = name.split_whitespace();
    let first_name = parts.next().unwrap_or_default().to_owned();
    let last_name = parts.collect::<Vec<_>>().join(" ");
    let submitter = Submitter {
        full_name: name.clone(),
        user_name,
        first_name,
        last_name,
        email,
        company: company.unwrap_or_default(),
        department: field("department"),
        location: field("location"),
    };
    let technician = match c.assignee_id {
        Some(agent) => db!(
            tx,
            agents::table
                .find(agent)
                .select((agents::name, agents::email))
                .first::<(String, String)>(tx)
                .await
                .optional()
        )?
        .map(|(name, email)| Person { name, email }),
        None => None,
    };
    let recent: Vec<Message> = db!(
        tx,
        messages::table
            .filter(messages::conversation_id.eq(c.id))
            .filter(messages::direction.ne(Direction::Note))
            .order(messages::seq.desc())
            .limit(MAX_RECENT as i64)
            .select(Message::as_select())
            .load(tx)
            .await
    )?;
    let first: Option<String> = db!(
        tx,
        messages::table
            .filter(messages::conversation_id.eq(c.id))
            .filter(messages::direction.ne(Direction::Note))
            .order(messages::seq.asc())
            .select(messages::body_text)
            .first(tx)
            .await
            .optional()
    )?;
    let public_ids: Vec<i64> = db!(
        tx,
        messages::table
            .filter(messages::conversation_id.eq(c.id))
            .filter(messages::direction.ne(Direction::Note))
            .select(messages::id)
            .load(tx)
            .await
    )?;
    let files: Vec<Attachment> = db!(
        tx,
        attachments::table
            .filter(attachments::message_id.eq_any(&public_ids))
            .order(attachments::id)
            .select(Attachment::as_select())
            .load(tx)
            .await
    )?;
    let agent_ids: Vec<i64> = recent.iter().filter_map(|m| m.author_agent_id).collect();
    let agent_names: Vec<(i64, String)> =
        db!(tx, agents::table.filter(agents::id.eq_any(&agent_ids)).select((agents::id, agents::name)).load(tx).await)?;
    let recent = recent
        .into_iter()
        .map(|m| {
            let author = match (m.author_agent_id, m.direction) {
                (Some(a), _) => agent_names.iter().find(|(id, _)| *id == a).map(|(_, n)| n.clone()),
                (None, Direction::In) => Some(name.clone()),
                _ => None,
            };
            let mine = files.iter().filter(|f| f.message_id == Some(m.id)).cloned().collect();
            let entry = MessageEntry {
                author: author.unwrap_or_else(|| "Help desk".into()),
                date: date(m.created_at),
                text: m.body_text,
            };
            (entry, mine)
        })
        .collect();
    let emails: Vec<String> = db!(
        tx,
        conversation_subscribers::table
            .filter(conversation_subscribers::conversation_id.eq(c.id))
            .order(conversation_subscribers::created_at)
            .select(conversation_subscribers::email)
            .load(tx)
            .await
    )?;
    let agent_emails: Vec<(String, String)> = db!(
        tx,
        agents::table.filter(agents::email.eq_any(&emails)).select((agents::email, agents::name)).load(tx).await
    )?;
    let subscribers = emails
        .into_iter()
        .map(|email| match agent_emails.iter().find(|(e, _)| e.eq_ignore_ascii_case(&email)) {
            Some((_, name)) => Subscriber { name: name.clone(), email, is_technician: true },
            None => Subscriber { name: email.clone(), email, is_technician: false },
        })
        .collect();
    Ok(TicketFacts {
        channel_kind,
        status_name: status_name.unwrap_or_else(|| c.status.clone()),
        category: category.unwrap_or_default(),
        submitter,
        technician,
        recent,
        first_message: first.unwrap_or_default(),
        attachments: files,
        subscribers,
        conversation: c,
    })
}

/// `#Via#`: the channel kind; a custom channel's chats say `chat`.
fn via(kind: ChannelKind, mode: Mode) -> String {
    match (kind, mode) {
        (ChannelKind::Custom, Mode::Sync) => "chat".into(),
        (ChannelKind::Custom, Mode::Async) => "api".into(),
        (kind, _) => kind.as_str().into(),
    }
}

/// The [`MaskContext`] of `facts` for `recipient`, with the links `links` makes.
pub fn build(facts: &TicketFacts, recipient: &Recipient, what_happened: &str, links: &dyn LinkMaker) -> MaskContext {
    let c = &facts.conversation;
    let file = |a: &Attachment| AttachmentLink {
        name: a.file_name.clone(),
        url: links.attachment_url(c.id, a.id, recipient).unwrap_or_default(),
    };
    let fields: serde_json::Map<String, Value> = serde_json::from_str(&c.custom_fields).unwrap_or_default();
    let is_submitter = recipient.kind == RecipientKind::Customer && recipient.id == Some(c.customer_id);
    MaskContext {
        what_happened: what_happened.to_owned(),
        conversation_id: c.id,
        ticket_number: c.number,
        subject: c.subject.clone(),
        category: facts.category.clone(),
        priority: c.priority.clone(),
        status: facts.status_name.clone(),
        body: facts.first_message.clone(),
        url: links.ticket_url(c.id, recipient),
        date: date(c.created_at),
        due_date: None,
        time_spent: None,
        via: via(facts.channel_kind, c.mode),
        submitter: facts.submitter.clone(),
        originator: <[_]>::first(&facts.recent).map(|(m, _)| m.author.clone()).unwrap_or_default(),
        technician: facts.technician.clone(),
        recipients: vec![if recipient.name.is_empty() { recipient.email.clone() } else { recipient.name.clone() }],
        messages: facts.recent.iter().map(|(m, _)| m.clone()).collect(),
        custom_fields: fields
            .iter()
            .map(|(key, value)| CustomField {
                id: key.clone(),
                name: key.clone(),
                visibility: FieldVisibility::Public,
                value: text_of(value),
            })
            .collect(),
        attachments: facts.attachments.iter().map(file).collect(),
        recent_attachments: <[_]>::first(&facts.recent)
            .map(|(_, files)| files.iter().map(file).collect())
            .unwrap_or_default(),
        suggested_kb: Vec::new(),
        subscribers: facts.subscribers.clone(),
        rating: if is_submitter { links.rating_urls(c.id, c.customer_id) } else { None },
        unsubscribe: match recipient.kind {
            RecipientKind::Agent => None,
            RecipientKind::Customer | RecipientKind::Address => links.unsubscribe_url(c.id, &recipient.email),
        },
    }
}

/// The context of conversation `conversation_id` for `recipient` inside a transaction (any channel).
pub async fn context_tx(
    tx: &mut Tx<'_>,
    conversation_id: i64,
    recipient: &Recipient,
    what_happened: &str,
    links: &dyn LinkMaker,
) -> StoreResult<MaskContext> {
    let facts = facts_tx(tx, conversation_id, &ChannelScope::All).await?;
    Ok(build(&facts, recipient, what_happened, links))
}

/// The facts of conversation `id` in `scope`.
pub async fn facts(store: &Store, id: i64, scope: &ChannelScope) -> StoreResult<TicketFacts> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            facts_tx(&mut conn.tx(), id, &scope).await
        })
        .await
}

/// The context of conversation `conversation_id` for `recipient` (any channel: the sender decided who gets it).
pub async fn context(
    store: &Store,
    conversation_id: i64,
    recipient: &Recipient,
    what_happened: &str,
    links: &dyn LinkMaker,
) -> StoreResult<MaskContext> {
    let facts = facts(store, conversation_id, &ChannelScope::All).await?;
    Ok(build(&facts, recipient, what_happened, links))
}

/// Renders `template` with `ctx`; `None` when its body is empty (TP-1: not sent).
pub fn render_template(template: &Template, ctx: &MaskContext) -> Option<Rendered> {
    if template.body.trim().is_empty() {
        return None;
    }
    Some(render(template.kind, &template.subject, &template.body, ctx))
}

/// The notification `kind` about conversation `conversation_id` for `recipient`, rendered from the stored
/// template; `None` when the template's body is empty (TP-1: that notification is not sent).
pub async fn compose(
    store: &Store,
    kind: TemplateKind,
    conversation_id: i64,
    recipient: &Recipient,
    what_happened: &str,
    links: &dyn LinkMaker,
) -> StoreResult<Option<Rendered>> {
    let template = get(store, kind).await?;
    if template.body.trim().is_empty() {
        return Ok(None);
    }
    let ctx = context(store, conversation_id, recipient, what_happened, links).await?;
    Ok(render_template(&template, &ctx))
}

/// [`compose`] inside a transaction (e.g. a change-feed consumer's).
pub async fn compose_tx(
    tx: &mut Tx<'_>,
    kind: TemplateKind,
    conversation_id: i64,
    recipient: &Recipient,
    what_happened: &str,
    links: &dyn LinkMaker,
) -> StoreResult<Option<Rendered>> {
    let template = get_tx(tx, kind).await?;
    if template.body.trim().is_empty() {
        return Ok(None);
    }
    let ctx = context_tx(tx, conversation_id, recipient, what_happened, links).await?;
    Ok(render_template(&template, &ctx))
}

/// Mail about an account rather than a ticket (`welcome`, `password_reset`): `#username` / `#UserName#` is
/// `user_name`, `#URL` is `url`, `#From#` the recipient's name, `#What_Happened#` `what_happened`.
/// `None` when the template's body is empty.
pub async fn compose_account(
    store: &Store,
    kind: TemplateKind,
    recipient: &Recipient,
    user_name: &str,
    url: &str,
    what_happened: &str,
) -> StoreResult<Option<Rendered>> {
    let template = get(store, kind).await?;
    let ctx = MaskContext {
        what_happened: what_happened.to_owned(),
        url: url.to_owned(),
        submitter: Submitter {
            full_name: recipient.name.clone(),
            user_name: user_name.to_owned(),
            email: recipient.email.clone(),
            ..Submitter::default()
        },
        recipients: vec![recipient.name.clone()],
        ..MaskContext::default()
    };
    Ok(render_template(&template, &ctx))
}

impl TicketFacts {
    /// The ticket's submitter as a recipient.
    pub fn submitter_recipient(&self) -> Recipient {
        Recipient {
            kind: RecipientKind::Customer,
            id: Some(self.conversation.customer_id),
            name: self.submitter.full_name.clone(),
            email: self.submitter.email.clone(),
        }
    }

    pub fn conversation_id(&self) -> i64 {
        self.conversation.id
    }
}

/// The newest conversation in `scope`, for previews.
pub async fn newest_conversation(store: &Store, scope: &ChannelScope) -> StoreResult<Option<i64>> {
    let ids = scope.ids();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(tx, {
                let mut q = super::schema::conversations::table
                    .filter(super::schema::conversations::merged_into_id.is_null())
                    .select(super::schema::conversations::id)
                    .order(super::schema::conversations::id.desc())
                    .into_boxed();
                if let Some(ids) = &ids {
                    q = q.filter(super::schema::conversations::channel_instance_id.eq_any(ids));
                }
                q.first(tx).await.optional()
            })?)
        })
        .await
}
