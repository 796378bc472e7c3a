//! Conversations: creation (with their first message), listing with filters, property changes,
//! merging. Each change is one transaction that also writes its audit entry.
//!
//! Every function takes the caller's [`ChannelScope`]; a conversation outside it is reported as
//! [`StoreError::NotFound`] so its existence does not leak (DESIGN invariant 4).

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::audit::{self, Actor};
use super::customers::{find_or_create_company, like_pattern};
use super::events::{self, EventRow, NewEvent};
use super::locks::{self, Subject};
use super::models::{ChannelInstance, Conversation, Customer, Message, Status};
use super::schema::{
    agents, attachments, audit_log, channel_access, channel_instances, conversation_tags, conversations, counters,
    customer_identities, customers, messages, outbox, statuses, teams,
};
use super::{Store, StoreError, StoreResult, Tx, Violation, channels, now};
use crate::db;
use crate::domain::lifecycle::{self, ChatChange, Event};
use crate::domain::linking::{self, Found, Owner};
use crate::domain::routing::Presence;
use crate::domain::status::FilledIn;
use crate::domain::{ChannelKind, ChannelScope, Direction, Mode, Role, Source, StatusBase, missing_required_fields};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// A conversation with the things every view of it shows.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub conversation: Conversation,
    pub tags: Vec<String>,
    pub customer_name: String,
    pub channel_kind: ChannelKind,
}

/// Who the first message of a new conversation is from.
pub enum Counterpart {
    /// A contact named by the integrator's id on the channel (CC-4…CC-6).
    Contact {
        external_id: String,
        name: Option<String>,
        email: Option<String>,
        phone: Option<String>,
        company: Option<String>,
    },
    /// An existing customer an agent writes to (CORE-11).
    Customer(i64),
}

pub struct NewConversation {
    pub channel_id: i64,
    pub counterpart: Counterpart,
    pub subject: String,
    pub content: String,
    pub content_html: Option<String>,
    /// Idempotency key: a second call with the same key on the same channel changes nothing.
    pub external_message_id: Option<String>,
    pub direction: Direction,
    pub source: Source,
    pub author_agent_id: Option<i64>,
}

pub struct CreatedConversation {
    pub conversation: ConversationRow,
    pub message: Message,
    /// False when `external_message_id` had been seen: nothing was written.
    pub created: bool,
    /// The events this change recorded (none when nothing was written).
    pub events: Vec<EventRow>,
}

/// A conversation after a change, with the events the change recorded.
pub struct Changed {
    pub conversation: ConversationRow,
    pub events: Vec<EventRow>,
}

/// Property changes; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct ConversationPatch {
    pub status: Option<String>,
    pub assignee_id: Option<Option<i64>>,
    pub team_id: Option<Option<i64>>,
    pub priority: Option<String>,
    pub subject: Option<String>,
    /// Replace the whole tag set.
    pub tags: Option<Vec<String>>,
    pub add_tags: Vec<String>,
    pub remove_tags: Vec<String>,
    /// Merged into the existing fields; a `null` value removes that field.
    pub custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ConversationPatch {
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.assignee_id.is_none()
            && self.team_id.is_none()
            && self.priority.is_none()
            && self.subject.is_none()
            && self.tags.is_none()
            && self.add_tags.is_empty()
            && self.remove_tags.is_empty()
            && self.custom_fields.is_none()
    }
}

/// The `csat` filter of a list: a rating, or not rated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsatFilter {
    Rated(crate::domain::Rating),
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    Nobody,
    Agent(i64),
}

#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub statuses: Vec<String>,
    pub mode: Option<Mode>,
    pub channel_id: Option<i64>,
    pub assignee: Option<AssigneeFilter>,
    pub team_id: Option<i64>,
    /// Only conversations in the categories (teams) this agent is a member of (HD-13, "my categories").
    pub teams_of: Option<i64>,
    pub tag: Option<String>,
    pub customer_id: Option<i64>,
    pub priority: Option<String>,
    pub q: Option<String>,
    /// Include chats still in progress (CC-10); without it only tickets and ended chats are listed.
    pub show_active_chats: bool,
    /// Only chats still in progress (the live chat panel, CORE-4).
    pub active_chats_only: bool,
    pub include_merged: bool,
    /// Only conversations whose customer waits for an answer (`waiting_since` set, issue #17).
    pub waiting: bool,
    /// Only conversations with this customer rating (HD-12, issue #18).
    pub csat: Option<CsatFilter>,
    pub sort: SortOrder,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortOrder {
    #[default]
    UpdatedDesc,
    UpdatedAsc,
    CreatedDesc,
    CreatedAsc,
    /// The customer waiting longest first (`waiting_since` ascending), then those nobody waits on.
    WaitingLongest,
}

/// Load tags, customer names and channel kinds for a page of conversations.
pub(crate) async fn decorate(tx: &mut Tx<'_>, rows: Vec<Conversation>) -> StoreResult<Vec<ConversationRow>> {
    let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
    let customer_ids: Vec<i64> = rows.iter().map(|c| c.customer_id).collect();
    let channel_ids: Vec<i64> = rows.iter().map(|c| c.channel_instance_id).collect();
    let tags: Vec<(i64, String)> = db!(
        tx,
        conversation_tags::table
            .filter(conversation_tags::conversation_id.eq_any(&ids))
            .select((conversation_tags::conversation_id, conversation_tags::tag))
            .order((conversation_tags::conversation_id, conversation_tags::tag))
            .load(tx)
            .await
    )?;
    let names: Vec<(i64, String)> = db!(
        tx,
        customers::table
            .filter(customers::id.eq_any(&customer_ids))
            .select((customers::id, customers::name))
            .load(tx)
            .await
    )?;
    let kinds: Vec<(i64, ChannelKind)> = db!(
        tx,
        channel_instances::table
            .filter(channel_instances::id.eq_any(&channel_ids))
            .select((channel_instances::id, channel_instances::kind))
            .load(tx)
            .await
    )?;
    rows.into_iter()
        .map(|c| {
            // A conversation's channel exists (a foreign key); a missing one is a damaged row.
            let channel_kind = kinds.iter().find(|(id, _)| *id == c.channel_instance_id).map(|(_, k)| *k).ok_or(
                StoreError::BadData { what: "conversation channel", value: c.channel_instance_id.to_string() },
            )?;
            Ok(ConversationRow {
                tags: tags.iter().filter(|(id, _)| *id == c.id).map(|(_, t)| t.clone()).collect(),
                customer_name: names
                    .iter()
                    .find(|(id, _)| *id == c.customer_id)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default(),
                channel_kind,
                conversation: c,
            })
        })
        .collect()
}

/// [`decorate`] for one conversation.
async fn decorate_row(tx: &mut Tx<'_>, c: Conversation) -> StoreResult<ConversationRow> {
    let mut rows = decorate(tx, vec![c]).await?;
    Ok(rows.remove(0))
}

/// Load one conversation, or `NotFound` when absent or out of scope.
pub(crate) async fn load_in_scope(tx: &mut Tx<'_>, id: i64, scope: &ChannelScope) -> StoreResult<Conversation> {
    let c: Conversation =
        db!(tx, conversations::table.find(id).select(Conversation::as_select()).first(tx).await.optional())?
            .ok_or(StoreError::NotFound)?;
    if !scope.allows(c.channel_instance_id) {
        return Err(StoreError::NotFound);
    }
    Ok(c)
}

/// The base of status `key`. A key without a row (there is a foreign key, so never in practice)
/// counts as open, the default of a new conversation.
pub(crate) async fn status_base(tx: &mut Tx<'_>, key: &str) -> StoreResult<StatusBase> {
    let base: Option<StatusBase> =
        db!(tx, statuses::table.filter(statuses::key.eq(key)).select(statuses::base).first(tx).await.optional())?;
    Ok(base.unwrap_or(StatusBase::Open))
}

/// The lifecycle state of conversation `c`, whose status has base `base` ([`crate::domain::lifecycle`]).
pub(crate) fn lifecycle_state(c: &Conversation, base: StatusBase) -> StoreResult<lifecycle::State> {
    let mode = c.mode;
    let phase = lifecycle::Phase::of(mode == Mode::Sync, c.ended_at.is_some());
    Ok(lifecycle::State { base, phase, merged: c.merged_into_id.is_some() })
}

/// What `event` does to `c` (status base `base`), by the lifecycle: its effect, `None` for a no-op;
/// a refusal is the store's error. For every event but a customer's message, which alone may
/// start a conversation or follow a merge (its callers match [`lifecycle::decide`] themselves).
pub(crate) fn effect(
    c: &Conversation,
    base: StatusBase,
    event: lifecycle::Event,
) -> StoreResult<Option<lifecycle::Effect>> {
    match lifecycle::decide(lifecycle_state(c, base)?, event) {
        lifecycle::Outcome::Apply(effect) => Ok(Some(effect)),
        lifecycle::Outcome::Refuse(why) => Err(Violation::refused(c.id, c.merged_into_id, why).into()),
        // Never for these events: the transition table in `domain::lifecycle` shows it.
        lifecycle::Outcome::Unchanged | lifecycle::Outcome::StartNew | lifecycle::Outcome::FollowMerge => Ok(None),
    }
}

/// Apply a [`ConversationPatch`] to `before` inside a transaction: validates references,
/// statuses and their conditions, writes the row, the tags and one audit entry. Returns the
/// updated `Conversation`. Shared by `PATCH` and "reply and set status".
pub(crate) async fn apply_patch(
    tx: &mut Tx<'_>,
    before: Conversation,
    patch: &ConversationPatch,
    actor: Actor,
) -> StoreResult<Conversation> {
    let t = now();
    let mut changed = serde_json::Map::new();

    // Tags: the resulting set.
    let old_tags: Vec<String> = db!(
        tx,
        conversation_tags::table
            .filter(conversation_tags::conversation_id.eq(before.id))
            .select(conversation_tags::tag)
            .order(conversation_tags::tag)
            .load(tx)
            .await
    )?;
    let mut new_tags: Vec<String> = patch.tags.clone().unwrap_or_else(|| old_tags.clone());
    new_tags.extend(patch.add_tags.iter().cloned());
    new_tags.retain(|t| !patch.remove_tags.contains(t));
    new_tags.sort();
    new_tags.dedup();

    // Custom fields: merge, null removes.
    let mut fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&before.custom_fields).unwrap_or_default();
    // What the changed fields were before (the activity trail shows "from → to", `store::activity`).
    let mut was = serde_json::Map::new();
    if let Some(update) = &patch.custom_fields {
        let old: serde_json::Map<String, serde_json::Value> =
            update.keys().map(|k| (k.clone(), fields.get(k).cloned().unwrap_or(serde_json::Value::Null))).collect();
        was.insert("custom_fields".into(), serde_json::Value::Object(old));
        for (k, v) in update {
            if v.is_null() {
                fields.remove(k);
            } else {
                fields.insert(k.clone(), v.clone());
            }
        }
        changed.insert("custom_fields".into(), serde_json::Value::Object(update.clone()));
    }

    let assignee_id = patch.assignee_id.unwrap_or(before.assignee_id);
    if let Some(Some(agent_id)) = patch.assignee_id {
        let (role, active): (Role, bool) =
            db!(tx, agents::table.find(agent_id).select((agents::role, agents::active)).first(tx).await.optional())?
                .ok_or_else(|| StoreError::BadReference(format!("agent {agent_id} does not exist")))?;
        if !active {
            return Err(Violation::AgentDeactivated { agent_id }.into());
        }
        if !role.is_admin() {
            let has: i64 = db!(
                tx,
                channel_access::table
                    .filter(channel_access::agent_id.eq(agent_id))
                    .filter(channel_access::channel_instance_id.eq(before.channel_instance_id))
                    .count()
                    .get_result(tx)
                    .await
            )?;
            if has == 0 {
                return Err(Violation::NoChannelAccess { agent_id }.into());
            }
        }
    }
    let team_id = patch.team_id.unwrap_or(before.team_id);
    if let Some(Some(team)) = patch.team_id {
        db!(tx, teams::table.find(team).select(teams::id).first::<i64>(tx).await.optional())?
            .ok_or_else(|| StoreError::BadReference(format!("team {team} does not exist")))?;
    }
    let subject = patch.subject.clone().unwrap_or_else(|| before.subject.clone());
    let priority = patch.priority.clone().unwrap_or_else(|| before.priority.clone());

    let status_key = patch.status.clone().unwrap_or_else(|| before.status.clone());
    let status: Status = db!(
        tx,
        statuses::table.filter(statuses::key.eq(&status_key)).select(Status::as_select()).first(tx).await.optional()
    )?
    .ok_or_else(|| StoreError::BadReference(format!("status {status_key:?} does not exist")))?;
    if patch.status.is_some() && status_key != before.status {
        let filled_fields: Vec<String> =
            fields.iter().filter(|(_, v)| !(v.is_null() || v.as_str() == Some(""))).map(|(k, _)| k.clone()).collect();
        let missing = missing_required_fields(
            &status.required_fields(),
            &FilledIn {
                assignee: assignee_id.is_some(),
                team: team_id.is_some(),
                subject: !subject.trim().is_empty(),
                tags: !new_tags.is_empty(),
                custom_fields: &filled_fields,
            },
        );
        if !missing.is_empty() {
            return Err(Violation::StatusIncomplete { status: status_key, missing }.into());
        }
    }
    // The lifecycle decides: a merged conversation is refused, closing a live chat ends it (CORE-5).
    let new_base: StatusBase = status.base;
    let before_base = status_base(tx, &before.status).await?;
    let event = if patch.status.is_some() { Event::SetStatus(new_base) } else { Event::Edit };
    let effect = effect(&before, before_base, event)?;
    let closed_at: Option<NaiveDateTime> =
        if new_base == StatusBase::Closed { before.closed_at.or(Some(t)) } else { None };
    let (ended_at, deadline) = if effect.is_some_and(|e| e.chat == ChatChange::End) {
        (Some(t), None)
    } else {
        (before.ended_at, before.inactivity_deadline)
    };

    if status_key != before.status {
        changed.insert("status".into(), json!(status_key));
        was.insert("status".into(), json!(before.status));
    }
    if assignee_id != before.assignee_id {
        changed.insert("assignee_id".into(), json!(assignee_id));
        was.insert("assignee_id".into(), json!(before.assignee_id));
    }
    if team_id != before.team_id {
        changed.insert("team_id".into(), json!(team_id));
        was.insert("team_id".into(), json!(before.team_id));
    }
    if priority != before.priority {
        changed.insert("priority".into(), json!(priority));
        was.insert("priority".into(), json!(before.priority));
    }
    if subject != before.subject {
        changed.insert("subject".into(), json!(subject));
        was.insert("subject".into(), json!(before.subject));
    }
    if new_tags != old_tags {
        changed.insert("tags".into(), json!(new_tags));
        was.insert("tags".into(), json!(old_tags));
    }
    if !changed.is_empty() {
        changed.insert("before".into(), serde_json::Value::Object(was));
    }

    let custom_fields = serde_json::Value::Object(fields).to_string();
    let updated: Conversation = db!(
        tx,
        diesel::update(conversations::table.find(before.id))
            .set((
                conversations::status.eq(&status_key),
                conversations::assignee_id.eq(assignee_id),
                conversations::team_id.eq(team_id),
                conversations::priority.eq(&priority),
                conversations::subject.eq(&subject),
                conversations::custom_fields.eq(&custom_fields),
                conversations::closed_at.eq(closed_at),
                conversations::ended_at.eq(ended_at),
                conversations::inactivity_deadline.eq(deadline),
                conversations::updated_at.eq(t),
            ))
            .returning(Conversation::as_returning())
            .get_result(tx)
            .await
    )?;
    if new_tags != old_tags {
        db!(
            tx,
            diesel::delete(conversation_tags::table.filter(conversation_tags::conversation_id.eq(before.id)))
                .execute(tx)
                .await
        )?;
        for tag in &new_tags {
            db!(
                tx,
                diesel::insert_into(conversation_tags::table)
                    .values((conversation_tags::conversation_id.eq(before.id), conversation_tags::tag.eq(tag)))
                    .execute(tx)
                    .await
            )?;
        }
    }
    if !changed.is_empty() {
        let entry = audit::entry(
            actor,
            "conversation.update",
            "conversation",
            Some(before.id),
            serde_json::Value::Object(changed),
        );
        db!(tx, diesel::insert_into(audit_log::table).values(&entry).execute(tx).await)?;
    }
    Ok(updated)
}

/// Who a message from an integrator's contact is from: their id on the channel and what the
/// integrator tells about them (CC-4…CC-6).
pub(crate) struct Contact<'a> {
    pub channel: &'a ChannelInstance,
    pub external_id: &'a str,
    pub name: &'a Option<String>,
    pub email: &'a Option<String>,
    pub phone: &'a Option<String>,
    pub company: &'a Option<String>,
}

/// The customer an integrator's id names on a channel (CC-4), created with it if new and linked
/// by email or phone (CC-6), with what the integrator tells about them filled in (CC-5); returns
/// the customer's id. Takes the id's decision lock first ([`super::locks`]), so two concurrent
/// first messages of one new customer make one customer: the second finds the first's.
pub(crate) async fn resolve_contact(tx: &mut Tx<'_>, contact: &Contact<'_>, t: NaiveDateTime) -> StoreResult<i64> {
    let Contact { channel, external_id, name, email, phone, company } = *contact;
    locks::take(tx, Subject::ExternalId { channel_id: channel.id, external_id }).await?;
    let by_external_id: Option<i64> = db!(
        tx,
        customer_identities::table
            .filter(customer_identities::kind.eq("external"))
            .filter(customer_identities::channel_instance_id.eq(channel.id))
            .filter(customer_identities::value.eq(external_id))
            .select(customer_identities::customer_id)
            .first(tx)
            .await
            .optional()
    )?;
    let mut owners: [Option<Owner>; 2] = [None, None];
    for (slot, (kind, value)) in [("email", email), ("phone", phone)].into_iter().enumerate() {
        let Some(value) = value else { continue };
        let owner: Option<i64> = db!(
            tx,
            customer_identities::table
                .filter(customer_identities::kind.eq(kind))
                .filter(customer_identities::value.eq(value))
                .select(customer_identities::customer_id)
                .first(tx)
                .await
                .optional()
        )?;
        if let Some(owner) = owner {
            let others: i64 = db!(
                tx,
                customer_identities::table
                    .filter(customer_identities::customer_id.eq(owner))
                    .filter(customer_identities::kind.eq("external"))
                    .filter(customer_identities::channel_instance_id.eq(channel.id))
                    .filter(customer_identities::value.ne(external_id))
                    .count()
                    .get_result(tx)
                    .await
            )?;
            owners[slot] = Some(Owner { customer_id: owner, has_other_id_on_channel: others > 0 });
        }
    }
    let link = linking::decide(Found { by_external_id, email_owner: owners[0], phone_owner: owners[1] });
    let customer_id = match link.customer_id {
        Some(id) => id,
        None => {
            let company_id = match company {
                Some(name) => Some(find_or_create_company(tx, name, t).await?),
                None => None,
            };
            let name = name.clone().unwrap_or_else(|| external_id.to_owned());
            db!(
                tx,
                diesel::insert_into(customers::table)
                    .values((
                        customers::name.eq(&name),
                        customers::company_id.eq(company_id),
                        customers::created_at.eq(t),
                        customers::updated_at.eq(t),
                    ))
                    .returning(customers::id)
                    .get_result::<i64>(tx)
                    .await
            )?
        }
    };
    let mut identities = Vec::new();
    if link.add_external_id {
        identities.push(("external", Some(channel.id), external_id.to_owned()));
    }
    if let (true, Some(e)) = (link.add_email, email) {
        identities.push(("email", None, e.clone()));
    }
    if let (true, Some(p)) = (link.add_phone, phone) {
        identities.push(("phone", None, p.clone()));
    }
    for (kind, ch, value) in identities {
        db!(
            tx,
            diesel::insert_into(customer_identities::table)
                .values((
                    customer_identities::customer_id.eq(customer_id),
                    customer_identities::kind.eq(kind),
                    customer_identities::channel_instance_id.eq(ch),
                    customer_identities::value.eq(&value),
                    customer_identities::created_at.eq(t),
                ))
                .execute(tx)
                .await
        )?;
    }
    // Fill in what the integrator tells us and we did not know (CC-5).
    if link.customer_id.is_some() {
        if let Some(company) = company {
            let current: Option<i64> =
                db!(tx, customers::table.find(customer_id).select(customers::company_id).first(tx).await)?;
            if current.is_none() {
                let cid = find_or_create_company(tx, company, t).await?;
                db!(
                    tx,
                    diesel::update(customers::table.find(customer_id))
                        .set(customers::company_id.eq(cid))
                        .execute(tx)
                        .await
                )?;
            }
        }
        if let Some(name) = name {
            db!(
                tx,
                diesel::update(customers::table.find(customer_id).filter(customers::name.eq("")))
                    .set(customers::name.eq(name))
                    .execute(tx)
                    .await
            )?;
        }
    }
    Ok(customer_id)
}

/// What [`insert`] writes: a new conversation of `channel` for `customer_id` and its first message.
pub(crate) struct NewConversationRow<'a> {
    pub channel: &'a ChannelInstance,
    pub customer_id: i64,
    pub subject: &'a str,
    pub direction: Direction,
    pub source: Source,
    pub author_agent_id: Option<i64>,
    pub content: &'a str,
    pub content_html: &'a Option<String>,
    /// The first message's provider id (the idempotency key on the channel).
    pub external_id: &'a Option<String>,
    pub t: NaiveDateTime,
    pub actor: Actor,
    /// The node's presence picture, for auto-assignment (CC-12, `store::routing`).
    pub presence: &'a (dyn Fn(i64) -> Presence + Sync),
}

/// A conversation [`insert`] wrote: `tags` are the channel's default ones it was given, sorted (a
/// new conversation has no others).
pub(crate) struct Inserted {
    pub conversation: Conversation,
    pub message: Message,
    pub event: EventRow,
    pub tags: Vec<String>,
}

/// Insert a new conversation with its first message (seq 1), the channel's default properties
/// and, for an inbound one, its assignee by the channel's rule (CC-12, `store::routing`), its
/// event, its outbox row (outbound first message on an enabled channel) and audit entry.
pub(crate) async fn insert(tx: &mut Tx<'_>, new: &NewConversationRow<'_>) -> StoreResult<Inserted> {
    let NewConversationRow { channel, customer_id, direction, t, .. } = *new;
    let defaults = channels::Defaults::of(channel);
    let number: i64 = db!(
        tx,
        diesel::update(counters::table.find("conversation_number"))
            .set(counters::value.eq(counters::value + 1))
            .returning(counters::value)
            .get_result(tx)
            .await
    )?;
    let status: String = match &defaults.status {
        Some(key) => db!(
            tx,
            statuses::table.filter(statuses::key.eq(key)).select(statuses::key).first::<String>(tx).await.optional()
        )?
        .unwrap_or_else(|| StatusBase::Open.as_str().to_owned()),
        None => StatusBase::Open.as_str().to_owned(),
    };
    let team_id: Option<i64> = match defaults.team_id.or(channel.default_team_id) {
        Some(team) => db!(tx, teams::table.find(team).select(teams::id).first::<i64>(tx).await.optional())?,
        None => None,
    };
    let is_in = direction == Direction::In;
    let assignee_id: Option<i64> =
        if is_in { super::routing::route_new(tx, channel, customer_id, new.presence).await? } else { None };
    let sync = channel.mode == Mode::Sync;
    let deadline = sync.then(|| t + chrono::Duration::seconds(channel.inactivity_timeout_s));
    let priority = defaults.priority.as_deref().unwrap_or("normal");
    let conversation: Conversation = db!(
        tx,
        diesel::insert_into(conversations::table)
            .values((
                conversations::number.eq(number),
                conversations::channel_instance_id.eq(channel.id),
                conversations::customer_id.eq(customer_id),
                conversations::mode.eq(&channel.mode),
                conversations::status.eq(&status),
                conversations::team_id.eq(team_id),
                conversations::assignee_id.eq(assignee_id),
                conversations::priority.eq(priority),
                conversations::subject.eq(new.subject),
                conversations::custom_fields.eq("{}"),
                conversations::last_seq.eq(1),
                conversations::inactivity_deadline.eq(deadline),
                conversations::created_at.eq(t),
                conversations::updated_at.eq(t),
                conversations::last_customer_activity_at.eq(is_in.then_some(t)),
                conversations::last_agent_activity_at.eq((!is_in).then_some(t)),
                conversations::waiting_since.eq(is_in.then_some(t)),
            ))
            .returning(Conversation::as_returning())
            .get_result(tx)
            .await
    )?;
    for tag in &defaults.tags {
        db!(
            tx,
            diesel::insert_into(conversation_tags::table)
                .values((conversation_tags::conversation_id.eq(conversation.id), conversation_tags::tag.eq(tag)))
                .execute(tx)
                .await
        )?;
    }
    let message: Message = db!(
        tx,
        diesel::insert_into(messages::table)
            .values((
                messages::conversation_id.eq(conversation.id),
                messages::seq.eq(1),
                messages::direction.eq(direction.as_str()),
                messages::source.eq(new.source.as_str()),
                messages::author_agent_id.eq(new.author_agent_id),
                messages::author_customer_id.eq(is_in.then_some(customer_id)),
                messages::body_text.eq(new.content),
                messages::body_html.eq(new.content_html),
                messages::channel_instance_id.eq(channel.id),
                messages::provider_message_id.eq(new.external_id),
                messages::created_at.eq(t),
            ))
            .returning(Message::as_returning())
            .get_result(tx)
            .await
    )?;
    // A message the channel itself reports as sent (source `channel`, e.g. Zalo's `oa_send_*`) is delivered already.
    if new.source != Source::Channel && super::outbox::queues_reply(channel.kind, channel.enabled, direction) {
        let delivery = super::outbox::new_delivery(channel.id, conversation.id, message.id, t);
        db!(tx, diesel::insert_into(outbox::table).values(&delivery).execute(tx).await)?;
    }
    let event = events::record_with(
        tx,
        NewEvent {
            conversation_id: conversation.id,
            channel_instance_id: channel.id,
            kind: events::CONVERSATION_CREATED,
            seq: Some(1),
            message_id: Some(message.id),
            created_at: t,
        },
        &super::feed::Detail::assignment(new.actor.agent_id(), None, assignee_id),
    )
    .await?;
    let entry = audit::entry(
        new.actor,
        "conversation.create",
        "conversation",
        Some(conversation.id),
        json!({
            "number": number, "channel_id": channel.id, "customer_id": customer_id, "direction": direction.as_str(),
            "assignee_id": assignee_id
        }),
    );
    db!(tx, diesel::insert_into(audit_log::table).values(&entry).execute(tx).await)?;
    Ok(Inserted { conversation, message, event, tags: defaults.tags })
}

/// The decorated row of a conversation a transaction just wrote, read back when the caller lacks
/// what [`ConversationRow`] shows. For one conversation; [`decorate`] is the same for a page.
pub(crate) async fn decorate_one(tx: &mut Tx<'_>, id: i64) -> StoreResult<ConversationRow> {
    let c: Conversation = db!(tx, conversations::table.find(id).select(Conversation::as_select()).first(tx).await)?;
    let tags = tags_of(tx, c.id).await?;
    let customer_name: String = db!(tx, customers::table.find(c.customer_id).select(customers::name).first(tx).await)?;
    let channel_kind: ChannelKind =
        db!(tx, channel_instances::table.find(c.channel_instance_id).select(channel_instances::kind).first(tx).await)?;
    Ok(ConversationRow { conversation: c, tags, customer_name, channel_kind })
}

/// The tags of conversation `id`, sorted.
pub(crate) async fn tags_of(tx: &mut Tx<'_>, id: i64) -> StoreResult<Vec<String>> {
    Ok(db!(
        tx,
        conversation_tags::table
            .filter(conversation_tags::conversation_id.eq(id))
            .select(conversation_tags::tag)
            .order(conversation_tags::tag)
            .load(tx)
            .await
    )?)
}

/// The event of a change to conversation `c` at `t`, with no message.
fn updated_event(c: &Conversation, kind: &'static str, t: NaiveDateTime) -> NewEvent {
    NewEvent {
        conversation_id: c.id,
        channel_instance_id: c.channel_instance_id,
        kind,
        seq: None,
        message_id: None,
        created_at: t,
    }
}

pub async fn get(store: &Store, id: i64, scope: &ChannelScope) -> StoreResult<ConversationRow> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let c = load_in_scope(tx, id, &scope).await?;
            decorate_row(tx, c).await
        })
        .await
}

pub async fn list(
    store: &Store,
    filter: &ConversationFilter,
    scope: &ChannelScope,
) -> StoreResult<(Vec<ConversationRow>, i64)> {
    let filter = filter.clone();
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let (total, rows) = select(tx, &filter, &scope.ids(), true).await?;
            Ok((decorate(tx, rows).await?, total))
        })
        .await
}

/// A page of the list (issue #17 item 7): [`list`], and each conversation's last message preview.
pub struct ListPage {
    pub rows: Vec<ConversationRow>,
    pub total: i64,
    /// Conversation id → its newest customer message or reply, cut (see [`previews`]).
    pub previews: BTreeMap<i64, Preview>,
}

/// [`list`] with the last message preview of each conversation on the page, read in the same connection.
pub async fn list_page(store: &Store, filter: &ConversationFilter, scope: &ChannelScope) -> StoreResult<ListPage> {
    let filter = filter.clone();
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let (total, rows) = select(tx, &filter, &scope.ids(), true).await?;
            let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
            let previews = previews(tx, &ids).await?;
            Ok(ListPage { rows: decorate(tx, rows).await?, total, previews })
        })
        .await
}

/// How many conversations each filter selects in the scope (the counts of the dashboard's views, issue #17 item 7):
/// the same query as [`list`]'s total, so a count and its list always agree, on one connection.
pub async fn count_each(
    store: &Store,
    filters: Vec<ConversationFilter>,
    scope: &ChannelScope,
) -> StoreResult<Vec<i64>> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let ids = scope.ids();
            let mut out = Vec::with_capacity(filters.len());
            for f in &filters {
                out.push(select(tx, f, &ids, false).await?.0);
            }
            Ok(out)
        })
        .await
}

/// Longest preview, in characters, before it is cut with an ellipsis.
const PREVIEW_CHARS: usize = 140;

diesel::define_sql_function!(fn substr(x: diesel::sql_types::Text, start: diesel::sql_types::Integer, len: diesel::sql_types::Integer) -> diesel::sql_types::Text);

/// A list row's last message (issue #17 item 7; the chat list's and the ticket list's rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The plain text, white space collapsed, cut at [`PREVIEW_CHARS`]; `📎 Attachment` for files without text.
    pub text: String,
    /// Who wrote it: the customer (`In`) or the business (`Out`); never `Note`.
    pub direction: Direction,
    /// The agent who wrote a reply, when one did.
    pub agent_id: Option<i64>,
}

/// The last message preview of each conversation: the plain text of its newest customer message or reply, with
/// runs of white space made one space and cut at [`PREVIEW_CHARS`]; a message with no text but files says so.
/// Internal notes are never the preview (decided for issue #17: a list row speaks of the exchange with the
/// customer; notes stay in the timeline).
async fn previews(tx: &mut Tx<'_>, ids: &[i64]) -> StoreResult<BTreeMap<i64, Preview>> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let newest: Vec<(i64, Option<i64>)> = db!(
        tx,
        messages::table
            .filter(messages::conversation_id.eq_any(ids))
            .filter(messages::direction.ne(Direction::Note.as_str()))
            .group_by(messages::conversation_id)
            .select((messages::conversation_id, diesel::dsl::max(messages::seq)))
            .load(tx)
            .await
    )?;
    let newest: BTreeMap<i64, i64> = newest.into_iter().filter_map(|(c, s)| Some((c, s?))).collect();
    let seqs: Vec<i64> = newest.values().copied().collect();
    // Text is read cut (a mail body can be long); a few more characters than shown, for the white space.
    type Row = (i64, i64, i64, String, Direction, Option<i64>);
    let texts: Vec<Row> = db!(
        tx,
        messages::table
            .filter(messages::conversation_id.eq_any(ids))
            .filter(messages::seq.eq_any(&seqs))
            .select((
                messages::id,
                messages::conversation_id,
                messages::seq,
                substr(messages::body_text, 1, 400),
                messages::direction,
                messages::author_agent_id,
            ))
            .load(tx)
            .await
    )?;
    let texts: Vec<Row> = texts.into_iter().filter(|(_, c, s, ..)| newest.get(c) == Some(s)).collect();
    let bare: Vec<i64> = texts.iter().filter(|(.., t, _, _)| t.trim().is_empty()).map(|(id, ..)| *id).collect();
    let with_files: Vec<Option<i64>> = if bare.is_empty() {
        Vec::new()
    } else {
        db!(
            tx,
            attachments::table
                .filter(attachments::message_id.eq_any(&bare))
                .select(attachments::message_id)
                .distinct()
                .load(tx)
                .await
        )?
    };
    Ok(texts
        .into_iter()
        .filter_map(|(id, c, _, t, direction, agent_id)| {
            let text = preview_text(&t);
            let text = if !text.is_empty() {
                text
            } else if with_files.contains(&Some(id)) {
                "📎 Attachment".to_owned()
            } else {
                return None;
            };
            Some((c, Preview { text, direction, agent_id }))
        })
        .collect())
}

/// White space made single spaces, cut at [`PREVIEW_CHARS`] characters with an ellipsis.
fn preview_text(raw: &str) -> String {
    let mut out = String::new();
    for (i, word) in raw.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.chars().count() > PREVIEW_CHARS {
        let cut: String = out.chars().take(PREVIEW_CHARS).collect();
        format!("{}…", cut.trim_end())
    } else {
        out
    }
}

/// The conversations `filter` selects in the scope (`None`: every channel): their number, and the page of them
/// in the filter's order when `rows` is asked for.
async fn select(
    tx: &mut Tx<'_>,
    filter: &ConversationFilter,
    scope_ids: &Option<Vec<i64>>,
    rows: bool,
) -> StoreResult<(i64, Vec<Conversation>)> {
    let pattern = filter.q.as_deref().map(like_pattern);
    let number_q: Option<i64> = filter.q.as_deref().and_then(|q| q.trim().trim_start_matches('#').parse().ok());
    // The conversations the filter and scope select, unsorted and unpaged: one boxed
    // query for the total, one for the page.
    Ok(db!(tx, {
        let filtered = || {
            let mut q = conversations::table.into_boxed();
            if let Some(ids) = &scope_ids {
                q = q.filter(conversations::channel_instance_id.eq_any(ids.clone()));
            }
            if !filter.include_merged {
                q = q.filter(conversations::merged_into_id.is_null());
            }
            if !filter.statuses.is_empty() {
                q = q.filter(conversations::status.eq_any(filter.statuses.clone()));
            }
            if let Some(mode) = filter.mode {
                q = q.filter(conversations::mode.eq(mode.as_str()));
            }
            if filter.waiting {
                q = q.filter(conversations::waiting_since.is_not_null());
            }
            match filter.csat {
                Some(CsatFilter::Rated(r)) => q = q.filter(conversations::csat.eq(r)),
                Some(CsatFilter::None) => q = q.filter(conversations::csat.is_null()),
                None => {}
            }
            if filter.active_chats_only {
                q = q.filter(conversations::mode.eq("sync")).filter(conversations::ended_at.is_null());
            } else if !filter.show_active_chats {
                q = q.filter(conversations::mode.eq("async").or(conversations::ended_at.is_not_null()));
            }
            if let Some(ch) = filter.channel_id {
                q = q.filter(conversations::channel_instance_id.eq(ch));
            }
            match filter.assignee {
                Some(AssigneeFilter::Nobody) => q = q.filter(conversations::assignee_id.is_null()),
                Some(AssigneeFilter::Agent(a)) => q = q.filter(conversations::assignee_id.eq(a)),
                None => {}
            }
            if let Some(team) = filter.team_id {
                q = q.filter(conversations::team_id.eq(team));
            }
            if let Some(agent) = filter.teams_of {
                q = q.filter(
                    conversations::team_id.eq_any(
                        super::schema::team_members::table
                            .filter(super::schema::team_members::agent_id.eq(agent))
                            .select(super::schema::team_members::team_id.nullable()),
                    ),
                );
            }
            if let Some(customer) = filter.customer_id {
                q = q.filter(conversations::customer_id.eq(customer));
            }
            if let Some(p) = &filter.priority {
                q = q.filter(conversations::priority.eq(p.clone()));
            }
            if let Some(tag) = &filter.tag {
                q = q.filter(
                    conversations::id.eq_any(
                        conversation_tags::table
                            .filter(conversation_tags::tag.eq(tag.clone()))
                            .select(conversation_tags::conversation_id),
                    ),
                );
            }
            if let Some(p) = &pattern {
                let text = lower(conversations::subject)
                    .like(p.clone())
                    .escape('\\')
                    .or(conversations::id.eq_any(
                        messages::table
                            .filter(lower(messages::body_text).like(p.clone()).escape('\\'))
                            .select(messages::conversation_id),
                    ))
                    .or(conversations::customer_id.eq_any(
                        customers::table
                            .filter(lower(customers::name).like(p.clone()).escape('\\'))
                            .select(customers::id),
                    ));
                q = match number_q {
                    Some(n) => q.filter(text.or(conversations::number.eq(n))),
                    None => q.filter(text),
                };
            }
            q
        };
        async {
            let total: i64 = filtered().count().get_result(tx).await?;
            if !rows {
                return Ok::<_, diesel::result::Error>((total, Vec::new()));
            }
            let q = filtered().select(Conversation::as_select());
            let q = match filter.sort {
                SortOrder::UpdatedDesc => q.order((conversations::updated_at.desc(), conversations::id.desc())),
                SortOrder::UpdatedAsc => q.order((conversations::updated_at.asc(), conversations::id.asc())),
                SortOrder::CreatedDesc => q.order((conversations::created_at.desc(), conversations::id.desc())),
                SortOrder::CreatedAsc => q.order((conversations::created_at.asc(), conversations::id.asc())),
                // Longest waiting first; those nobody waits on after them (false sorts before true).
                SortOrder::WaitingLongest => q.order((
                    conversations::waiting_since.is_null(),
                    conversations::waiting_since.asc(),
                    conversations::updated_at.desc(),
                    conversations::id.desc(),
                )),
            };
            let rows: Vec<Conversation> = q.limit(filter.limit).offset(filter.offset).load(tx).await?;
            Ok((total, rows))
        }
        .await
    })?)
}

/// Create a conversation with its first message in one transaction: resolve (or create) the
/// customer, number the conversation, apply the channel's defaults, store the message with seq 1
/// and, for an outbound first message, queue its delivery.
pub async fn create(
    store: &Store,
    input: NewConversation,
    scope: &ChannelScope,
    actor: Actor,
) -> StoreResult<CreatedConversation> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let presence = |a: i64| store.presence(a);
            let mut conn = store.write().await?;
            conn.transaction(async |tx| create_in(tx, &input, &scope, actor, &presence).await).await
        })
        .await
}

/// [`create`] in the caller's transaction (a connector that writes its own rows with the conversation, e.g. the
/// Mattermost link of an outbound conversation, `store::mattermost::create_outbound`).
pub(super) async fn create_in(
    tx: &mut Tx<'_>,
    input: &NewConversation,
    scope: &ChannelScope,
    actor: Actor,
    presence: &(dyn Fn(i64) -> Presence + Sync),
) -> StoreResult<CreatedConversation> {
    if !scope.allows(input.channel_id) {
        return Err(StoreError::BadReference(format!("channel {} does not exist", input.channel_id)));
    }
    let t = now();
    let channel: ChannelInstance = db!(
        tx,
        channel_instances::table.find(input.channel_id).select(ChannelInstance::as_select()).first(tx).await.optional()
    )?
    .ok_or_else(|| StoreError::BadReference(format!("channel {} does not exist", input.channel_id)))?;
    channels::ensure_enabled(&channel)?;

    // Idempotency: the same provider message id on this channel changes nothing.
    if let Some(ext) = &input.external_message_id {
        let seen: Option<Message> = db!(
            tx,
            messages::table
                .filter(messages::channel_instance_id.eq(channel.id))
                .filter(messages::provider_message_id.eq(ext))
                .select(Message::as_select())
                .first(tx)
                .await
                .optional()
        )?;
        if let Some(message) = seen {
            let c: Conversation = db!(
                tx,
                conversations::table.find(message.conversation_id).select(Conversation::as_select()).first(tx).await
            )?;
            let conversation = decorate_row(tx, c).await?;
            return Ok(CreatedConversation { conversation, message, created: false, events: vec![] });
        }
    }

    let customer_id: i64 = match &input.counterpart {
        Counterpart::Customer(id) => {
            // A customer the caller may not see does not exist for them (store::customers).
            let c: Customer = super::customers::find_visible_customer(tx, *id, &scope.ids())
                .await?
                .ok_or_else(|| StoreError::BadReference(format!("customer {id} does not exist")))?;
            c.merged_into_id.unwrap_or(c.id)
        }
        Counterpart::Contact { external_id, name, email, phone, company } => {
            let contact = Contact { channel: &channel, external_id, name, email, phone, company };
            resolve_contact(tx, &contact, t).await?
        }
    };

    let Inserted { conversation, message, event, tags } = insert(
        tx,
        &NewConversationRow {
            channel: &channel,
            customer_id,
            subject: &input.subject,
            direction: input.direction,
            source: input.source,
            author_agent_id: input.author_agent_id,
            content: &input.content,
            content_html: &input.content_html,
            external_id: &input.external_message_id,
            t,
            actor,
            presence,
        },
    )
    .await?;
    // Decorated with what is known: the channel's kind and the tags it was given.
    let customer_name: String =
        db!(tx, customers::table.find(conversation.customer_id).select(customers::name).first(tx).await)?;
    let channel_kind = channel.kind;
    let row = ConversationRow { conversation, tags, customer_name, channel_kind };
    Ok(CreatedConversation { conversation: row, message, created: true, events: vec![event] })
}

pub async fn update(
    store: &Store,
    id: i64,
    patch: &ConversationPatch,
    scope: &ChannelScope,
    actor: Actor,
) -> StoreResult<Changed> {
    let patch = patch.clone();
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                // A merged one is refused by the lifecycle, in `apply_patch`.
                let before = load_in_scope(tx, id, &scope).await?;
                let was = before.clone();
                let updated = apply_patch(tx, before, &patch, actor).await?;
                let detail = super::feed::Detail::change(actor.agent_id(), &was, &updated);
                let event = events::record_with(
                    tx,
                    updated_event(&updated, events::CONVERSATION_UPDATED, updated.updated_at),
                    &detail,
                )
                .await?;
                let conversation = decorate_row(tx, updated).await?;
                Ok(Changed { conversation, events: vec![event] })
            })
            .await
        })
        .await
}

/// Merge conversation `id` into `into` (CORE-8). The merged conversation is closed and points at
/// the survivor; new messages addressed to it land in the survivor. Both must be in scope.
pub async fn merge(store: &Store, id: i64, into: i64, scope: &ChannelScope, actor: Actor) -> StoreResult<Changed> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            if id == into {
                return Err(Violation::SelfMerge.into());
            }
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let source = load_in_scope(tx, id, &scope).await?;
                let target: Conversation = db!(
                    tx,
                    conversations::table.find(into).select(Conversation::as_select()).first(tx).await.optional()
                )?
                .filter(|c| scope.allows(c.channel_instance_id))
                .ok_or_else(|| StoreError::BadReference(format!("conversation {into} does not exist")))?;
                // The lifecycle: neither may have been merged already.
                let source_base = status_base(tx, &source.status).await?;
                effect(&source, source_base, Event::MergeInto)?;
                let target_base = status_base(tx, &target.status).await?;
                effect(&target, target_base, Event::MergedFrom)?;
                let t = now();
                let closed = db!(
                    tx,
                    statuses::table
                        .filter(statuses::base.eq(StatusBase::Closed))
                        .filter(statuses::builtin.eq(true))
                        .select(statuses::key)
                        .first::<String>(tx)
                        .await
                )?;
                db!(
                    tx,
                    diesel::update(conversations::table.find(id))
                        .set((
                            conversations::merged_into_id.eq(into),
                            conversations::status.eq(&closed),
                            conversations::closed_at.eq(source.closed_at.or(Some(t))),
                            conversations::ended_at.eq(source.ended_at.or(Some(t))),
                            conversations::inactivity_deadline.eq(None::<NaiveDateTime>),
                            conversations::updated_at.eq(t),
                        ))
                        .execute(tx)
                        .await
                )?;
                let survivor: Conversation = db!(
                    tx,
                    diesel::update(conversations::table.find(into))
                        .set(conversations::updated_at.eq(t))
                        .returning(Conversation::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let entries = [
                    audit::entry(actor, "conversation.merge", "conversation", Some(into), json!({"merged": id})),
                    audit::entry(actor, "conversation.merged_into", "conversation", Some(id), json!({"into": into})),
                ];
                for entry in &entries {
                    db!(tx, diesel::insert_into(audit_log::table).values(entry).execute(tx).await)?;
                }
                let merged_event = events::record(tx, updated_event(&source, events::CONVERSATION_UPDATED, t)).await?;
                let survivor_event =
                    events::record(tx, updated_event(&survivor, events::CONVERSATION_UPDATED, t)).await?;
                let conversation = decorate_row(tx, survivor).await?;
                Ok(Changed { conversation, events: vec![merged_event, survivor_event] })
            })
            .await
        })
        .await
}

/// Counts per status for the channels in scope (for the dashboard's sidebar).
pub async fn count_by_status(store: &Store, scope: &ChannelScope) -> StoreResult<BTreeMap<String, i64>> {
    let ids = scope.ids();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let rows: Vec<(String, i64)> = db!(tx, {
                let mut q = conversations::table
                    .filter(conversations::merged_into_id.is_null())
                    .group_by(conversations::status)
                    .select((conversations::status, diesel::dsl::count_star()))
                    .into_boxed();
                if let Some(ids) = &ids {
                    q = q.filter(conversations::channel_instance_id.eq_any(ids));
                }
                q.load(tx).await
            })?;
            Ok(rows.into_iter().collect())
        })
        .await
}

/// Why a chat ended (CORE-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// An agent pressed "end chat".
    Agent,
    /// Neither side wrote for the channel's inactivity timeout.
    Inactivity,
    /// An automation rule ran "end chat and set status".
    Rule,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Agent => "agent",
            EndReason::Inactivity => "inactivity",
            EndReason::Rule => "rule",
        }
    }
}

/// End a chat in progress, optionally setting a status — exactly once (DESIGN invariant 3).
///
/// The end is one conditional `UPDATE … WHERE ended_at IS NULL` (and, for `Inactivity`, `AND
/// inactivity_deadline <= now`), so however many timers and sweepers on however many nodes race
/// for it, one wins, and a message that moved the deadline just before makes it a no-op.
/// Returns `None` when there was nothing to end.
pub async fn end_chat(
    store: &Store,
    id: i64,
    scope: &ChannelScope,
    status: Option<String>,
    reason: EndReason,
    actor: Actor,
) -> StoreResult<Option<Changed>> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let before = load_in_scope(tx, id, &scope).await?;
                // The lifecycle: a ticket is refused, an ended chat is a no-op, a live one ends
                // (once: the conditional update below decides races).
                let base = status_base(tx, &before.status).await?;
                if effect(&before, base, Event::EndChat)?.is_none_or(|e| e.chat != ChatChange::End) {
                    return Ok(None);
                }
                let ended = db!(tx, {
                    let live =
                        conversations::table.filter(conversations::id.eq(id)).filter(conversations::ended_at.is_null());
                    let set = (
                        conversations::ended_at.eq(Some(t)),
                        conversations::inactivity_deadline.eq(None::<NaiveDateTime>),
                        conversations::updated_at.eq(t),
                    );
                    if reason == EndReason::Inactivity {
                        diesel::update(live.filter(conversations::inactivity_deadline.le(t))).set(set).execute(tx).await
                    } else {
                        diesel::update(live).set(set).execute(tx).await
                    }
                })?;
                if ended == 0 {
                    return Ok(None);
                }
                let current: Conversation =
                    db!(tx, conversations::table.find(id).select(Conversation::as_select()).first(tx).await)?;
                let updated = match &status {
                    Some(key) => {
                        let patch = ConversationPatch { status: Some(key.clone()), ..Default::default() };
                        apply_patch(tx, current, &patch, actor).await?
                    }
                    None => current,
                };
                let entry = audit::entry(
                    actor,
                    "conversation.end",
                    "conversation",
                    Some(id),
                    json!({"reason": reason.as_str(), "status": updated.status}),
                );
                db!(tx, diesel::insert_into(audit_log::table).values(&entry).execute(tx).await)?;
                let event = events::record(tx, updated_event(&updated, events::CONVERSATION_ENDED, t)).await?;
                let conversation = decorate_row(tx, updated).await?;
                Ok(Some(Changed { conversation, events: vec![event] }))
            })
            .await
        })
        .await
}

/// Chats whose inactivity deadline has passed (for the sweeper), oldest deadline first.
pub async fn overdue_chats(store: &Store, limit: i64) -> StoreResult<Vec<(i64, i64)>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                conversations::table
                    .filter(conversations::ended_at.is_null())
                    .filter(conversations::inactivity_deadline.le(now()))
                    .order(conversations::inactivity_deadline.asc())
                    .select((conversations::id, conversations::channel_instance_id))
                    .limit(limit)
                    .load(tx)
                    .await
            )?)
        })
        .await
}

/// The stored inactivity deadline of a chat still in progress, if any.
pub async fn deadline(store: &Store, id: i64) -> StoreResult<Option<NaiveDateTime>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let d: Option<Option<NaiveDateTime>> = db!(
                tx,
                conversations::table
                    .find(id)
                    .filter(conversations::ended_at.is_null())
                    .select(conversations::inactivity_deadline)
                    .first(tx)
                    .await
                    .optional()
            )?;
            Ok(d.flatten())
        })
        .await
}

/// Several conversations by id, whatever their scope (callers filter), in id order.
pub async fn get_many(store: &Store, ids: Vec<i64>) -> StoreResult<Vec<ConversationRow>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let rows: Vec<Conversation> = db!(
                tx,
                conversations::table
                    .filter(conversations::id.eq_any(&ids))
                    .order(conversations::id)
                    .select(Conversation::as_select())
                    .load(tx)
                    .await
            )?;
            decorate(tx, rows).await
        })
        .await
}

/// Where a custom channel's inbound message for `user_custom_id` goes first: `None` when no
/// customer is known by that id on the channel; else their newest conversation there, if any
/// (merged ones included: the store follows them). One read.
pub async fn route(store: &Store, channel_id: i64, user_custom_id: &str) -> StoreResult<Option<Option<i64>>> {
    let external_id = user_custom_id.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                customer_identities::table
                    .left_join(
                        conversations::table.on(conversations::customer_id
                            .eq(customer_identities::customer_id)
                            .and(conversations::channel_instance_id.eq(channel_id))),
                    )
                    .filter(customer_identities::kind.eq("external"))
                    .filter(customer_identities::channel_instance_id.eq(channel_id))
                    .filter(customer_identities::value.eq(&external_id))
                    .order(conversations::id.desc())
                    .select(conversations::id.nullable())
                    .first::<Option<i64>>(tx)
                    .await
                    .optional()
            )?)
        })
        .await
}

/// The customer known on a channel by the integrator's id (`user_custom_id`).
pub async fn customer_by_external_id(store: &Store, channel_id: i64, external_id: &str) -> StoreResult<Option<i64>> {
    let external_id = external_id.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                customer_identities::table
                    .filter(customer_identities::kind.eq("external"))
                    .filter(customer_identities::channel_instance_id.eq(channel_id))
                    .filter(customer_identities::value.eq(&external_id))
                    .select(customer_identities::customer_id)
                    .first::<i64>(tx)
                    .await
                    .optional()
            )?)
        })
        .await
}
