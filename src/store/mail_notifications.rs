//! Email notifications (issue #18, NT-1…NT-13): the instance-wide settings row, the change feed's
//! `mail_notifications` consumer's effect ([`produce`]) and the welcome mail (NT-13, [`welcome`]).
//!
//! [`produce`] runs in the transaction that takes the feed rows (`store::feed`), so each committed
//! change is mailed about once, cluster-wide, across restarts and SIGKILL. It reads what the change
//! recorded (its event, message and [`Detail`]) and the facts around it — the category's agents
//! (team members) who may see the conversation's channel, the admins, the submitter's address, the
//! subscribers — asks `domain::mail_notifications::decide` who gets which mail, and writes one
//! outbox row per mail ([`NOTIFICATION_EMAIL`]); the dispatcher's `Notify` route sends it
//! (`channels::email::notification_mail`). Live chats are not tickets: they are never mailed about.
//! Junk and auto-submitted mail never make a ticket or a message (EM-12), so they never get here.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::audit::{self, Actor as AuditActor};
use super::models::{CONVERSATION_CREATED, CONVERSATION_UPDATED, Conversation, MESSAGE_CREATED, Message, NewDelivery};
use super::models::{Detail, FeedRow};
use super::schema::{
    agents, channel_instances, conversation_subscribers, conversations, customer_identities, customer_welcomes,
    customers, events, mail_sources, messages, notification_settings, outbox, team_members, teams,
};
use super::{Store, StoreError, StoreResult, Tx, now};
use crate::db;
use crate::domain::mail_notifications::{
    Actor, Facts, MailChange, NotificationSettings, Recipient, TemplateKind, decide,
};
use crate::domain::{ChannelKind, Direction, Mode, Role, Source};

/// Outbox kind of every notification mail (its payload: [`Payload`]).
pub const NOTIFICATION_EMAIL: &str = "email.notification";

#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = notification_settings)]
struct SettingsRow {
    enabled: bool,
    ticket_closed: bool,
    ticket_confirmation: bool,
    new_ticket_admins: bool,
    new_ticket_category: bool,
    customer_update_category: bool,
    kb_article_category: bool,
    ticket_taken_category: bool,
    include_attachments: bool,
    auto_login_links: bool,
    cc_subscribers: bool,
    customer_updates_technicians_only: bool,
    welcome_email: bool,
}

impl From<SettingsRow> for NotificationSettings {
    fn from(r: SettingsRow) -> Self {
        NotificationSettings {
            enabled: r.enabled,
            ticket_closed: r.ticket_closed,
            ticket_confirmation: r.ticket_confirmation,
            new_ticket_admins: r.new_ticket_admins,
            new_ticket_category: r.new_ticket_category,
            customer_update_category: r.customer_update_category,
            kb_article_category: r.kb_article_category,
            ticket_taken_category: r.ticket_taken_category,
            include_attachments: r.include_attachments,
            auto_login_links: r.auto_login_links,
            cc_subscribers: r.cc_subscribers,
            customer_updates_technicians_only: r.customer_updates_technicians_only,
            welcome_email: r.welcome_email,
        }
    }
}

impl From<NotificationSettings> for SettingsRow {
    fn from(s: NotificationSettings) -> Self {
        SettingsRow {
            enabled: s.enabled,
            ticket_closed: s.ticket_closed,
            ticket_confirmation: s.ticket_confirmation,
            new_ticket_admins: s.new_ticket_admins,
            new_ticket_category: s.new_ticket_category,
            customer_update_category: s.customer_update_category,
            kb_article_category: s.kb_article_category,
            ticket_taken_category: s.ticket_taken_category,
            include_attachments: s.include_attachments,
            auto_login_links: s.auto_login_links,
            cc_subscribers: s.cc_subscribers,
            customer_updates_technicians_only: s.customer_updates_technicians_only,
            welcome_email: s.welcome_email,
        }
    }
}

/// The settings inside a transaction (the row is written by the migration; a missing one reads as the defaults).
pub(crate) async fn settings_in(tx: &mut Tx<'_>) -> StoreResult<NotificationSettings> {
    let row: Option<SettingsRow> =
        db!(tx, notification_settings::table.find(1_i64).select(SettingsRow::as_select()).first(tx).await.optional())?;
    Ok(row.map(NotificationSettings::from).unwrap_or_default())
}

/// The instance's notification settings.
pub async fn settings(store: &Store) -> StoreResult<NotificationSettings> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            settings_in(&mut conn.tx()).await
        })
        .await
}

/// Change the settings: `changes` maps a setting's API name to its new value (fields left out keep theirs). One
/// transaction with its audit entry `notification_settings.update`, naming the fields changed and their earlier
/// values. Returns the settings now. `changes` come typed from the API; a name that is no setting or a value that
/// is not a boolean would be a bug, [`StoreError::BadData`], and changes nothing.
pub async fn update_settings(
    store: &Store,
    changes: serde_json::Map<String, serde_json::Value>,
    actor: AuditActor,
) -> StoreResult<NotificationSettings> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let before = settings_in(tx).await?;
                let s = before
                    .with_changes(&changes)
                    .map_err(|e| StoreError::BadData { what: "notification settings change", value: e.to_string() })?;
                let t = now();
                let row = SettingsRow::from(s);
                db!(
                    tx,
                    diesel::insert_into(notification_settings::table)
                        .values((
                            notification_settings::id.eq(1_i64),
                            &row,
                            notification_settings::updated_at.eq(Some(t)),
                        ))
                        .on_conflict(notification_settings::id)
                        .do_update()
                        .set((&row, notification_settings::updated_at.eq(Some(t))))
                        .execute(tx)
                        .await
                )?;
                let mut changed = serde_json::Map::new();
                let mut earlier = serde_json::Map::new();
                for (name, old, new) in s.changed_since(&before) {
                    changed.insert(name.clone(), new.into());
                    earlier.insert(name, old.into());
                }
                let details = serde_json::json!({"changed": changed, "before": earlier});
                audit::write(
                    tx,
                    audit::entry(actor, "notification_settings.update", "notification_settings", None, details),
                )
                .await?;
                Ok(s)
            })
            .await
        })
        .await
}

/// What a notification's outbox row carries (JSON): the template, the conversation, the recipient, the change's
/// event, the message it is about (its files may be attached, NT-9) and the "what happened" text (TP-2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub template: TemplateKind,
    pub conversation_id: Option<i64>,
    pub recipient: Recipient,
    pub event_id: Option<i64>,
    pub message_id: Option<i64>,
    pub what_happened: String,
}

impl Payload {
    pub fn to_json(&self) -> String {
        let to = match &self.recipient {
            Recipient::Agent(id) => serde_json::json!({"agent": id}),
            Recipient::Customer(id) => serde_json::json!({"customer": id}),
            Recipient::Address(a) => serde_json::json!({"address": a}),
            Recipient::Addresses(v) => serde_json::json!({"addresses": v}),
        };
        serde_json::json!({
            "template": self.template.as_str(), "conversation_id": self.conversation_id, "to": to,
            "event_id": self.event_id, "message_id": self.message_id, "what_happened": self.what_happened,
        })
        .to_string()
    }

    /// The payload of an outbox row (`None`: not one of ours, or damaged).
    pub fn parse(text: &str) -> Option<Payload> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let to = &v["to"];
        let recipient = if let Some(id) = to["agent"].as_i64() {
            Recipient::Agent(id)
        } else if let Some(id) = to["customer"].as_i64() {
            Recipient::Customer(id)
        } else if let Some(a) = to["address"].as_str() {
            Recipient::Address(a.to_owned())
        } else {
            Recipient::Addresses(
                to["addresses"].as_array()?.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
            )
        };
        Some(Payload {
            template: v["template"].as_str()?.parse().ok()?,
            conversation_id: v["conversation_id"].as_i64(),
            recipient,
            event_id: v["event_id"].as_i64(),
            message_id: v["message_id"].as_i64(),
            what_happened: v["what_happened"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

fn delivery(channel_id: i64, conversation_id: Option<i64>, payload: &Payload, t: NaiveDateTime) -> NewDelivery {
    NewDelivery {
        delivery_id: uuid::Uuid::new_v4().to_string(),
        channel_instance_id: channel_id,
        conversation_id,
        // Not the message's own delivery: its `delivery` state stays the reply's.
        message_id: None,
        kind: NOTIFICATION_EMAIL,
        payload: payload.to_json(),
        state: "pending",
        attempts: 0,
        next_attempt_at: t,
        created_at: t,
    }
}

/// NT-13, inside the transaction that created customer `customer_id` with an email identity (EM-8): queue the
/// welcome mail once (sent from the first enabled mailbox; `channel_id` is the channel the customer came by).
/// Returns whether one was queued (settings off, or welcomed before: not).
pub(crate) async fn welcome_in(tx: &mut Tx<'_>, customer_id: i64, channel_id: i64) -> StoreResult<bool> {
    let s = settings_in(tx).await?;
    if !(s.enabled && s.welcome_email && has_mailbox(tx).await?) {
        return Ok(false);
    }
    let t = now();
    let fresh = db!(
        tx,
        diesel::insert_into(customer_welcomes::table)
            .values((customer_welcomes::customer_id.eq(customer_id), customer_welcomes::created_at.eq(t)))
            .on_conflict_do_nothing()
            .execute(tx)
            .await
    )?;
    if fresh == 0 {
        return Ok(false);
    }
    let payload = Payload {
        template: TemplateKind::Welcome,
        conversation_id: None,
        recipient: Recipient::Customer(customer_id),
        event_id: None,
        message_id: None,
        what_happened: "Welcome".into(),
    };
    db!(tx, diesel::insert_into(outbox::table).values(&delivery(channel_id, None, &payload, t)).execute(tx).await)?;
    Ok(true)
}

/// NT-13 for callers outside the store (the customer portal's sign-up): welcome customer `customer_id` once, in a
/// transaction of its own, from channel `channel_id`. Returns whether a mail was queued.
pub async fn welcome(store: &Store, customer_id: i64, channel_id: i64) -> StoreResult<bool> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| welcome_in(tx, customer_id, channel_id).await).await
        })
        .await
}

/// Whether a mailbox exists to send notifications from (enabled or not: one disabled for a while sends what waits
/// once it is enabled again). Without any, nothing is queued — an install with no email at all has nobody to mail.
async fn has_mailbox(tx: &mut Tx<'_>) -> StoreResult<bool> {
    let n: i64 = db!(
        tx,
        channel_instances::table.filter(channel_instances::kind.eq(ChannelKind::Email)).count().get_result(tx).await
    )?;
    Ok(n > 0)
}

async fn members(tx: &mut Tx<'_>, team: Option<i64>) -> StoreResult<Vec<i64>> {
    let Some(team) = team else { return Ok(Vec::new()) };
    Ok(db!(
        tx,
        team_members::table
            .filter(team_members::team_id.eq(team))
            .select(team_members::agent_id)
            .order(team_members::agent_id)
            .load(tx)
            .await
    )?)
}

async fn agent_email(tx: &mut Tx<'_>, id: i64) -> StoreResult<Option<(String, String)>> {
    Ok(db!(tx, agents::table.find(id).select((agents::email, agents::name)).first(tx).await.optional())?)
}

async fn customer_email(tx: &mut Tx<'_>, customer_id: i64) -> StoreResult<Option<String>> {
    Ok(db!(
        tx,
        customer_identities::table
            .filter(customer_identities::customer_id.eq(customer_id))
            .filter(customer_identities::kind.eq("email"))
            .select(customer_identities::value)
            .order(customer_identities::id)
            .first(tx)
            .await
            .optional()
    )?)
}

/// The effect of one feed row of the `mail_notifications` consumer (see the module docs). Returns how many mails
/// it queued.
pub(crate) async fn produce(tx: &mut Tx<'_>, row: &FeedRow) -> StoreResult<usize> {
    let c: Option<Conversation> = db!(
        tx,
        conversations::table.find(row.conversation_id).select(Conversation::as_select()).first(tx).await.optional()
    )?;
    // Live chats are not tickets (CORE-5): no notification mail.
    let Some(c) = c.filter(|c| c.mode == Mode::Async) else { return Ok(0) };
    let settings = settings_in(tx).await?;
    if !settings.enabled || !has_mailbox(tx).await? {
        return Ok(0);
    }
    let detail = Detail::of(row);
    let message_id: Option<i64> =
        db!(tx, events::table.find(row.event_id).select(events::message_id).first(tx).await.optional())?.flatten();
    let message: Option<Message> = match message_id {
        Some(id) => db!(tx, messages::table.find(id).select(Message::as_select()).first(tx).await.optional())?,
        None => None,
    };
    let kind: ChannelKind =
        db!(tx, channel_instances::table.find(c.channel_instance_id).select(channel_instances::kind).first(tx).await)?;
    let by_mail = |m: &Message| kind == ChannelKind::Email && m.source == Source::Channel;
    let updated = MailChange::Updated {
        moved: detail.moved_to_team.is_some(),
        taken_by: detail.assigned_to,
        closed: detail.closed,
    };
    let agent_or = |fallback: Actor| match (detail.actor, detail.customer) {
        (Some(a), _) => Actor::Agent(a),
        (None, Some(cu)) => Actor::Customer(cu),
        _ => fallback,
    };
    // The changes this row stands for, each with who made it.
    let mut changes: Vec<(MailChange, Actor)> = Vec::new();
    match row.kind.as_str() {
        CONVERSATION_CREATED => {
            let (by_email, actor) = match &message {
                Some(m) if m.direction == Direction::In => {
                    (by_mail(m), Actor::Customer(m.author_customer_id.unwrap_or(c.customer_id)))
                }
                _ => (false, agent_or(Actor::System)),
            };
            changes.push((MailChange::Created { by_email }, actor));
        }
        CONVERSATION_UPDATED => changes.push((updated, agent_or(Actor::System))),
        MESSAGE_CREATED => {
            if let Some(m) = &message {
                match (m.direction, m.author_agent_id) {
                    (Direction::In, _) => changes.push((
                        MailChange::CustomerMessage { by_email: by_mail(m) },
                        Actor::Customer(m.author_customer_id.unwrap_or(c.customer_id)),
                    )),
                    (Direction::Out, Some(a)) if kind == ChannelKind::Email => {
                        changes.push((MailChange::AgentReply, Actor::Agent(a)))
                    }
                    _ => {}
                }
            }
            // A reply that also changed the ticket ("send and close").
            if detail.assigned_to.is_some() || detail.closed || detail.moved_to_team.is_some() {
                changes.push((updated, agent_or(Actor::System)));
            }
        }
        _ => {}
    }
    if changes.is_empty() {
        return Ok(0);
    }

    // The facts.
    let submitter_address = customer_email(tx, c.customer_id).await?.map(|a| a.to_lowercase());
    let admins: Vec<i64> = db!(
        tx,
        agents::table
            .filter(agents::active.eq(true))
            .filter(agents::role.eq_any([Role::Admin, Role::SuperAdmin]))
            .select(agents::id)
            .order(agents::id)
            .load(tx)
            .await
    )?;
    let mut category_agents = Vec::new();
    for a in members(tx, c.team_id).await? {
        if super::notifications::may_see(tx, a, c.channel_instance_id).await? {
            category_agents.push(a);
        }
    }
    let old_category_agents = match detail.moved_from_team {
        Some(team) => members(tx, team).await?,
        None => Vec::new(),
    };
    let assignee = match c.assignee_id {
        Some(a) if super::notifications::may_see(tx, a, c.channel_instance_id).await? => Some(a),
        _ => None,
    };
    let subscribers: Vec<String> = db!(
        tx,
        conversation_subscribers::table
            .filter(conversation_subscribers::conversation_id.eq(c.id))
            .select(conversation_subscribers::email)
            .order(conversation_subscribers::created_at)
            .load(tx)
            .await
    )?;
    let customer_name: String =
        db!(tx, customers::table.find(c.customer_id).select(customers::name).first(tx).await.optional())?
            .unwrap_or_default();
    let team_name: Option<String> = match c.team_id {
        Some(t) => db!(tx, teams::table.find(t).select(teams::name).first(tx).await.optional())?,
        None => None,
    };

    let t = now();
    let mut queued = 0;
    for (change, actor) in changes {
        let actor_address = match actor {
            Actor::Agent(a) => agent_email(tx, a).await?.map(|(e, _)| e.to_lowercase()),
            Actor::Customer(cu) => {
                // The mail's own sender when it came by mail (a subscriber writes as themself).
                let from: Option<String> = match &message {
                    Some(m) => db!(
                        tx,
                        mail_sources::table.find(m.id).select(mail_sources::from_address).first(tx).await.optional()
                    )?,
                    None => None,
                };
                match from.filter(|f| !f.is_empty()) {
                    Some(f) => Some(f.to_lowercase()),
                    None => customer_email(tx, cu).await?.map(|a| a.to_lowercase()),
                }
            }
            Actor::System => None,
        };
        let facts = Facts {
            submitter: submitter_address.as_ref().map(|_| c.customer_id),
            submitter_address: submitter_address.clone(),
            admins: admins.clone(),
            category_agents: category_agents.clone(),
            old_category_agents: old_category_agents.clone(),
            assignee,
            subscribers: subscribers.clone(),
            actor_address,
        };
        let decided = decide(&change, actor, &settings, &facts);
        if decided.is_empty() {
            continue;
        }
        let actor_name = match actor {
            Actor::Agent(a) => agent_email(tx, a).await?.map(|(_, n)| n).unwrap_or_default(),
            Actor::Customer(_) => customer_name.clone(),
            Actor::System => String::new(),
        };
        let text = message.as_ref().map(|m| m.body_text.trim().to_owned()).unwrap_or_default();
        let taker_name = match detail.assigned_to {
            Some(a) => agent_email(tx, a).await?.map(|(_, n)| n).unwrap_or_default(),
            None => String::new(),
        };
        for (recipient, template) in decided {
            let what_happened = match template {
                TemplateKind::TicketConfirmation => "Ticket received".to_owned(),
                TemplateKind::TicketClosed => "Ticket closed".to_owned(),
                TemplateKind::NewTicketAdmin => format!("New ticket from {customer_name}: {}", c.subject),
                TemplateKind::NewTicketCategory => match (&change, &team_name) {
                    (MailChange::Updated { .. }, Some(team)) => format!("Ticket moved to category {team}"),
                    _ => format!("New ticket from {customer_name}: {}", c.subject),
                },
                TemplateKind::TicketTaken if actor == Actor::Agent(detail.assigned_to.unwrap_or_default()) => {
                    format!("{taker_name} took the ticket")
                }
                TemplateKind::TicketTaken => format!("{actor_name} assigned the ticket to {taker_name}"),
                TemplateKind::CustomerUpdate | TemplateKind::TicketUpdated => format!("Ticket updated - {text}"),
                TemplateKind::KbArticleChanged | TemplateKind::Welcome | TemplateKind::PasswordReset => String::new(),
            };
            let payload = Payload {
                template,
                conversation_id: Some(c.id),
                recipient,
                event_id: Some(row.event_id),
                message_id,
                what_happened,
            };
            db!(
                tx,
                diesel::insert_into(outbox::table)
                    .values(&delivery(c.channel_instance_id, Some(c.id), &payload, t))
                    .execute(tx)
                    .await
            )?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// What a notification mail about one ticket is written from (`channels::email::notification_mail`).
#[derive(Debug, Clone)]
pub struct TicketFacts {
    pub conversation: Conversation,
    pub customer_name: String,
    pub customer_email: Option<String>,
    /// The category's name.
    pub category: Option<String>,
    /// Message-IDs of the ticket's mail so far, oldest first (for `In-Reply-To` / `References`).
    pub thread: Vec<String>,
}

/// The facts of ticket `conversation_id` (`None`: it no longer exists).
pub async fn ticket_facts(store: &Store, conversation_id: i64) -> StoreResult<Option<TicketFacts>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let c: Option<Conversation> = db!(
                tx,
                conversations::table.find(conversation_id).select(Conversation::as_select()).first(tx).await.optional()
            )?;
            let Some(conversation) = c else { return Ok(None) };
            let customer_name: String = db!(
                tx,
                customers::table.find(conversation.customer_id).select(customers::name).first(tx).await.optional()
            )?
            .unwrap_or_default();
            let customer_email = customer_email(tx, conversation.customer_id).await?;
            let category: Option<String> = match conversation.team_id {
                Some(t) => db!(tx, teams::table.find(t).select(teams::name).first(tx).await.optional())?,
                None => None,
            };
            let thread: Vec<Option<String>> = db!(
                tx,
                messages::table
                    .filter(messages::conversation_id.eq(conversation.id))
                    .filter(messages::direction.ne(Direction::Note))
                    .filter(messages::provider_message_id.is_not_null())
                    .order(messages::seq.asc())
                    .select(messages::provider_message_id)
                    .load(tx)
                    .await
            )?;
            Ok(Some(TicketFacts {
                conversation,
                customer_name,
                customer_email,
                category,
                thread: thread.into_iter().flatten().collect(),
            }))
        })
        .await
}

/// A recipient's (name, address): an active agent's, or a customer's email identity (`None`: nobody to mail).
pub async fn address_of(store: &Store, recipient: &Recipient) -> StoreResult<Option<(Option<String>, String)>> {
    let recipient = recipient.clone();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(match recipient {
                Recipient::Agent(id) => {
                    let a: Option<(String, String, bool)> = db!(
                        tx,
                        agents::table
                            .find(id)
                            .select((agents::name, agents::email, agents::active))
                            .first(tx)
                            .await
                            .optional()
                    )?;
                    a.filter(|(_, _, active)| *active).map(|(n, e, _)| (Some(n), e))
                }
                Recipient::Customer(id) => {
                    let name: Option<String> =
                        db!(tx, customers::table.find(id).select(customers::name).first(tx).await.optional())?;
                    customer_email(tx, id).await?.map(|e| (name.filter(|n| *n != e), e))
                }
                Recipient::Address(a) => Some((None, a)),
                Recipient::Addresses(v) => v.into_iter().next().map(|a| (None, a)),
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_read_back() {
        for recipient in [
            Recipient::Agent(3),
            Recipient::Customer(4),
            Recipient::Address("a@b.test".into()),
            Recipient::Addresses(vec!["a@b.test".into(), "c@d.test".into()]),
        ] {
            let p = Payload {
                template: TemplateKind::TicketUpdated,
                conversation_id: Some(9),
                recipient,
                event_id: Some(12),
                message_id: None,
                what_happened: "Ticket updated - hi".into(),
            };
            assert_eq!(Payload::parse(&p.to_json()), Some(p));
        }
        assert_eq!(Payload::parse("{}"), None);
    }
}
