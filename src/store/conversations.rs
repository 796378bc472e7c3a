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
use super::customers::like_pattern;
use super::events::{self, EventRow, record_event};
use super::models::{ChannelInstance, Conversation, Customer, Message};
use super::schema::{
    audit_log, channel_instances, conversation_tags, conversations, customer_identities, customers, messages, statuses,
};
use super::{Store, StoreError, StoreResult, Violation, channels, now};
use crate::domain::lifecycle::{self, ChatChange, Event};
use crate::domain::{ChannelScope, Direction, Mode, Source, StatusBase};
use crate::{db_run, db_tx};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// A conversation with the things every view of it shows.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub conversation: Conversation,
    pub tags: Vec<String>,
    pub customer_name: String,
    pub channel_kind: String,
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
    pub tag: Option<String>,
    pub customer_id: Option<i64>,
    pub priority: Option<String>,
    pub q: Option<String>,
    /// Include chats still in progress (CC-10); without it only tickets and ended chats are listed.
    pub show_active_chats: bool,
    /// Only chats still in progress (the live chat panel, CORE-4).
    pub active_chats_only: bool,
    pub include_merged: bool,
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
}

/// Load tags, customer names and channel kinds for a page of conversations.
macro_rules! decorate {
    ($conn:ident, $rows:expr) => {{
        let rows: Vec<Conversation> = $rows;
        let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
        let customer_ids: Vec<i64> = rows.iter().map(|c| c.customer_id).collect();
        let channel_ids: Vec<i64> = rows.iter().map(|c| c.channel_instance_id).collect();
        let tags: Vec<(i64, String)> = conversation_tags::table
            .filter(conversation_tags::conversation_id.eq_any(&ids))
            .select((conversation_tags::conversation_id, conversation_tags::tag))
            .order((conversation_tags::conversation_id, conversation_tags::tag))
            .load($conn)
            .await?;
        let names: Vec<(i64, String)> = customers::table
            .filter(customers::id.eq_any(&customer_ids))
            .select((customers::id, customers::name))
            .load($conn)
            .await?;
        let kinds: Vec<(i64, String)> = channel_instances::table
            .filter(channel_instances::id.eq_any(&channel_ids))
            .select((channel_instances::id, channel_instances::kind))
            .load($conn)
            .await?;
        rows.into_iter()
            .map(|c| ConversationRow {
                tags: tags.iter().filter(|(id, _)| *id == c.id).map(|(_, t)| t.clone()).collect(),
                customer_name: names
                    .iter()
                    .find(|(id, _)| *id == c.customer_id)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default(),
                channel_kind: kinds
                    .iter()
                    .find(|(id, _)| *id == c.channel_instance_id)
                    .map(|(_, k)| k.clone())
                    .unwrap_or_default(),
                conversation: c,
            })
            .collect::<Vec<_>>()
    }};
}

/// Load one conversation inside a transaction, or `NotFound` when absent or out of scope.
macro_rules! load_in_scope {
    ($conn:ident, $id:expr, $scope:expr) => {{
        #[allow(unused_imports)]
        use $crate::store::{StoreError, models::Conversation, schema::conversations};
        let c: Conversation = conversations::table
            .find($id)
            .select(Conversation::as_select())
            .first($conn)
            .await
            .optional()?
            .ok_or(StoreError::NotFound)?;
        if !$scope.allows(c.channel_instance_id) {
            return Err(StoreError::NotFound);
        }
        c
    }};
}
pub(crate) use load_in_scope;

/// The base of status `$key` inside a transaction. A key without a row (there is a foreign key,
/// so never in practice) counts as open, the default of a new conversation.
macro_rules! status_base {
    ($conn:ident, $key:expr) => {{
        use $crate::store::schema::statuses;
        let base: Option<String> =
            statuses::table.filter(statuses::key.eq($key)).select(statuses::base).first($conn).await.optional()?;
        match base {
            Some(b) => $crate::store::stored::<$crate::domain::StatusBase>("status base", &b)?,
            None => $crate::domain::StatusBase::Open,
        }
    }};
}
pub(crate) use status_base;

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

/// Apply a [`ConversationPatch`] to `$before` inside a transaction: validates references,
/// statuses and their conditions, writes the row, the tags and one audit entry. Evaluates to the
/// updated `Conversation`. Shared by `PATCH` and "reply and set status".
macro_rules! apply_patch {
    ($conn:ident, $before:expr, $patch:expr, $actor:expr) => {{
        use chrono::NaiveDateTime;
        #[allow(unused_imports)]
        use serde_json::json;
        #[allow(unused_imports)]
        use $crate::domain::status::FilledIn;
        #[allow(unused_imports)]
        use $crate::domain::{StatusBase, missing_required_fields};
        #[allow(unused_imports)]
        use $crate::store::audit;
        #[allow(unused_imports)]
        use $crate::store::conversations::ConversationPatch;
        #[allow(unused_imports)]
        use $crate::store::models::{Conversation, Status};
        #[allow(unused_imports)]
        use $crate::store::schema::{
            agents, audit_log, channel_access, conversation_tags, conversations, statuses, teams,
        };
        #[allow(unused_imports)]
        use $crate::store::{StoreError, now};
        let before: Conversation = $before;
        let patch: &ConversationPatch = $patch;
        let t = now();
        let mut changed = serde_json::Map::new();

        // Tags: the resulting set.
        let old_tags: Vec<String> = conversation_tags::table
            .filter(conversation_tags::conversation_id.eq(before.id))
            .select(conversation_tags::tag)
            .order(conversation_tags::tag)
            .load($conn)
            .await?;
        let mut new_tags: Vec<String> = patch.tags.clone().unwrap_or_else(|| old_tags.clone());
        new_tags.extend(patch.add_tags.iter().cloned());
        new_tags.retain(|t| !patch.remove_tags.contains(t));
        new_tags.sort();
        new_tags.dedup();

        // Custom fields: merge, null removes.
        let mut fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&before.custom_fields).unwrap_or_default();
        if let Some(update) = &patch.custom_fields {
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
            let (role, active): (String, bool) = agents::table
                .find(agent_id)
                .select((agents::role, agents::active))
                .first($conn)
                .await
                .optional()?
                .ok_or_else(|| StoreError::BadReference(format!("agent {agent_id} does not exist")))?;
            if !active {
                return Err($crate::store::Violation::AgentDeactivated { agent_id }.into());
            }
            let is_admin = role == "super_admin" || role == "admin";
            if !is_admin {
                let has: i64 = channel_access::table
                    .filter(channel_access::agent_id.eq(agent_id))
                    .filter(channel_access::channel_instance_id.eq(before.channel_instance_id))
                    .count()
                    .get_result($conn)
                    .await?;
                if has == 0 {
                    return Err($crate::store::Violation::NoChannelAccess { agent_id }.into());
                }
            }
        }
        let team_id = patch.team_id.unwrap_or(before.team_id);
        if let Some(Some(team)) = patch.team_id {
            teams::table
                .find(team)
                .select(teams::id)
                .first::<i64>($conn)
                .await
                .optional()?
                .ok_or_else(|| StoreError::BadReference(format!("team {team} does not exist")))?;
        }
        let subject = patch.subject.clone().unwrap_or_else(|| before.subject.clone());
        let priority = patch.priority.clone().unwrap_or_else(|| before.priority.clone());

        let status_key = patch.status.clone().unwrap_or_else(|| before.status.clone());
        let status: Status = statuses::table
            .filter(statuses::key.eq(&status_key))
            .select(Status::as_select())
            .first($conn)
            .await
            .optional()?
            .ok_or_else(|| StoreError::BadReference(format!("status {status_key:?} does not exist")))?;
        if patch.status.is_some() && status_key != before.status {
            let filled_fields: Vec<String> = fields
                .iter()
                .filter(|(_, v)| !(v.is_null() || v.as_str() == Some("")))
                .map(|(k, _)| k.clone())
                .collect();
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
                return Err($crate::store::Violation::StatusIncomplete { status: status_key, missing }.into());
            }
        }
        // The lifecycle decides: a merged conversation is refused, closing a live chat ends it (CORE-5).
        let new_base: StatusBase = status.base;
        let before_base = $crate::store::conversations::status_base!($conn, &before.status);
        let event = if patch.status.is_some() {
            $crate::domain::lifecycle::Event::SetStatus(new_base)
        } else {
            $crate::domain::lifecycle::Event::Edit
        };
        let effect = $crate::store::conversations::effect(&before, before_base, event)?;
        let closed_at: Option<NaiveDateTime> =
            if new_base == StatusBase::Closed { before.closed_at.or(Some(t)) } else { None };
        let (ended_at, deadline) = if effect.is_some_and(|e| e.chat == $crate::domain::lifecycle::ChatChange::End) {
            (Some(t), None)
        } else {
            (before.ended_at, before.inactivity_deadline)
        };

        if status_key != before.status {
            changed.insert("status".into(), json!(status_key));
        }
        if assignee_id != before.assignee_id {
            changed.insert("assignee_id".into(), json!(assignee_id));
        }
        if team_id != before.team_id {
            changed.insert("team_id".into(), json!(team_id));
        }
        if priority != before.priority {
            changed.insert("priority".into(), json!(priority));
        }
        if subject != before.subject {
            changed.insert("subject".into(), json!(subject));
        }
        if new_tags != old_tags {
            changed.insert("tags".into(), json!(new_tags));
        }

        let updated: Conversation = diesel::update(conversations::table.find(before.id))
            .set((
                conversations::status.eq(&status_key),
                conversations::assignee_id.eq(assignee_id),
                conversations::team_id.eq(team_id),
                conversations::priority.eq(&priority),
                conversations::subject.eq(&subject),
                conversations::custom_fields.eq(serde_json::Value::Object(fields).to_string()),
                conversations::closed_at.eq(closed_at),
                conversations::ended_at.eq(ended_at),
                conversations::inactivity_deadline.eq(deadline),
                conversations::updated_at.eq(t),
            ))
            .returning(Conversation::as_returning())
            .get_result($conn)
            .await?;
        if new_tags != old_tags {
            diesel::delete(conversation_tags::table.filter(conversation_tags::conversation_id.eq(before.id)))
                .execute($conn)
                .await?;
            for tag in &new_tags {
                diesel::insert_into(conversation_tags::table)
                    .values((conversation_tags::conversation_id.eq(before.id), conversation_tags::tag.eq(tag)))
                    .execute($conn)
                    .await?;
            }
        }
        if !changed.is_empty() {
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(
                    $actor,
                    "conversation.update",
                    "conversation",
                    Some(before.id),
                    serde_json::Value::Object(changed),
                ))
                .execute($conn)
                .await?;
        }
        updated
    }};
}
pub(crate) use apply_patch;

/// Find a company by name or create it; evaluates to its id.
macro_rules! find_or_create_company {
    ($conn:ident, $name:expr, $t:expr) => {{
        let name: &str = $name;
        let existing: Option<i64> = $crate::store::schema::companies::table
            .filter($crate::store::schema::companies::name.eq(name))
            .select($crate::store::schema::companies::id)
            .first($conn)
            .await
            .optional()?;
        match existing {
            Some(id) => id,
            None => {
                diesel::insert_into($crate::store::schema::companies::table)
                    .values((
                        $crate::store::schema::companies::name.eq(name),
                        $crate::store::schema::companies::created_at.eq($t),
                    ))
                    .returning($crate::store::schema::companies::id)
                    .get_result::<i64>($conn)
                    .await?
            }
        }
    }};
}
pub(crate) use find_or_create_company;

/// The customer an integrator's id names on a channel (CC-4), created with it if new and linked
/// by email or phone (CC-6), with what the integrator tells about them filled in (CC-5); evaluates
/// to the customer's id. Takes the id's decision lock first ([`super::locks`]), so two concurrent
/// first messages of one new customer make one customer: the second finds the first's.
macro_rules! resolve_contact {
    ($conn:ident, $channel:expr, $external_id:expr, $name:expr, $email:expr, $phone:expr, $company:expr, $t:expr) => {{
        #[allow(unused_imports)]
        use $crate::domain::linking::{self, Found, Owner};
        #[allow(unused_imports)]
        use $crate::store::locks::{DecisionLock as _, Subject};
        #[allow(unused_imports)]
        use $crate::store::schema::{customer_identities, customers};
        let channel: &$crate::store::models::ChannelInstance = $channel;
        let external_id: &String = $external_id;
        let (name, email, phone, company): (&Option<String>, &Option<String>, &Option<String>, &Option<String>) =
            ($name, $email, $phone, $company);
        let t: chrono::NaiveDateTime = $t;
        $conn.lock(Subject::ExternalId { channel_id: channel.id, external_id }).await?;
        let by_external_id: Option<i64> = customer_identities::table
            .filter(customer_identities::kind.eq("external"))
            .filter(customer_identities::channel_instance_id.eq(channel.id))
            .filter(customer_identities::value.eq(external_id))
            .select(customer_identities::customer_id)
            .first($conn)
            .await
            .optional()?;
        let mut owners: [Option<Owner>; 2] = [None, None];
        for (slot, (kind, value)) in [("email", email), ("phone", phone)].into_iter().enumerate() {
            let Some(value) = value else { continue };
            let owner: Option<i64> = customer_identities::table
                .filter(customer_identities::kind.eq(kind))
                .filter(customer_identities::value.eq(value))
                .select(customer_identities::customer_id)
                .first($conn)
                .await
                .optional()?;
            if let Some(owner) = owner {
                let others: i64 = customer_identities::table
                    .filter(customer_identities::customer_id.eq(owner))
                    .filter(customer_identities::kind.eq("external"))
                    .filter(customer_identities::channel_instance_id.eq(channel.id))
                    .filter(customer_identities::value.ne(external_id))
                    .count()
                    .get_result($conn)
                    .await?;
                owners[slot] = Some(Owner { customer_id: owner, has_other_id_on_channel: others > 0 });
            }
        }
        let link = linking::decide(Found { by_external_id, email_owner: owners[0], phone_owner: owners[1] });
        let customer_id = match link.customer_id {
            Some(id) => id,
            None => {
                let company_id = match company {
                    Some(name) => Some($crate::store::conversations::find_or_create_company!($conn, name, t)),
                    None => None,
                };
                diesel::insert_into(customers::table)
                    .values((
                        customers::name.eq(name.clone().unwrap_or_else(|| external_id.clone())),
                        customers::company_id.eq(company_id),
                        customers::created_at.eq(t),
                        customers::updated_at.eq(t),
                    ))
                    .returning(customers::id)
                    .get_result::<i64>($conn)
                    .await?
            }
        };
        let mut identities = Vec::new();
        if link.add_external_id {
            identities.push(("external", Some(channel.id), external_id.clone()));
        }
        if let (true, Some(e)) = (link.add_email, email) {
            identities.push(("email", None, e.clone()));
        }
        if let (true, Some(p)) = (link.add_phone, phone) {
            identities.push(("phone", None, p.clone()));
        }
        for (kind, ch, value) in identities {
            diesel::insert_into(customer_identities::table)
                .values((
                    customer_identities::customer_id.eq(customer_id),
                    customer_identities::kind.eq(kind),
                    customer_identities::channel_instance_id.eq(ch),
                    customer_identities::value.eq(value),
                    customer_identities::created_at.eq(t),
                ))
                .execute($conn)
                .await?;
        }
        // Fill in what the integrator tells us and we did not know (CC-5).
        if link.customer_id.is_some() {
            if let Some(company) = company {
                let current: Option<i64> =
                    customers::table.find(customer_id).select(customers::company_id).first($conn).await?;
                if current.is_none() {
                    let cid = $crate::store::conversations::find_or_create_company!($conn, company, t);
                    diesel::update(customers::table.find(customer_id))
                        .set(customers::company_id.eq(cid))
                        .execute($conn)
                        .await?;
                }
            }
            if let Some(name) = name {
                diesel::update(customers::table.find(customer_id).filter(customers::name.eq("")))
                    .set(customers::name.eq(name))
                    .execute($conn)
                    .await?;
            }
        }
        customer_id
    }};
}
pub(crate) use resolve_contact;

/// Insert a new conversation with its first message (seq 1), the channel's default properties
/// and, for an inbound one, its assignee by the channel's rule (CC-12, `store::routing`; `$presence`
/// is the node's `Fn(i64) -> Presence`), its event, its outbox row (outbound first message on an enabled channel) and audit
/// entry. Evaluates to `(Conversation, Message, EventRow, tags)`: the tags are the channel's default
/// ones it was given, sorted (a new conversation has no others).
macro_rules! insert_conversation {
    ($conn:ident, $channel:expr, $customer_id:expr, $subject:expr, $direction:expr, $source:expr, $author_agent_id:expr,
     $content:expr, $content_html:expr, $external_id:expr, $t:expr, $actor:expr, $presence:expr) => {{
        #[allow(unused_imports)]
        use $crate::domain::{Direction, Mode, StatusBase};
        #[allow(unused_imports)]
        use $crate::store::events::{self, record_event};
        #[allow(unused_imports)]
        use $crate::store::models::{ChannelInstance, Conversation, Message};
        #[allow(unused_imports)]
        use $crate::store::schema::{audit_log, conversation_tags, conversations, counters, messages, outbox, statuses};
        #[allow(unused_imports)]
        use $crate::store::{audit, channels, outbox as outbox_repo};
        #[allow(unused_imports)]
        use chrono::NaiveDateTime;
        #[allow(unused_imports)]
        use serde_json::json;
        let channel: &ChannelInstance = $channel;
        let customer_id: i64 = $customer_id;
        let direction: Direction = $direction;
        let t: NaiveDateTime = $t;
        let defaults = channels::Defaults::of(channel);
        let number: i64 = diesel::update(counters::table.find("conversation_number"))
            .set(counters::value.eq(counters::value + 1))
            .returning(counters::value)
            .get_result($conn)
            .await?;
        let status: String = match &defaults.status {
            Some(key) => statuses::table
                .filter(statuses::key.eq(key))
                .select(statuses::key)
                .first::<String>($conn)
                .await
                .optional()?
                .unwrap_or_else(|| StatusBase::Open.as_str().to_owned()),
            None => StatusBase::Open.as_str().to_owned(),
        };
        let team_id: Option<i64> = match defaults.team_id.or(channel.default_team_id) {
            Some(team) => $crate::store::schema::teams::table
                .find(team)
                .select($crate::store::schema::teams::id)
                .first::<i64>($conn)
                .await
                .optional()?,
            None => None,
        };
        let is_in = direction == Direction::In;
        let assignee_id: Option<i64> =
            if is_in { $crate::store::routing::route_new(&mut $crate::store::Tx::from(&mut *$conn), channel, customer_id, &$presence).await? } else { None };
        let sync = channel.mode == Mode::Sync;
        let deadline = sync.then(|| t + chrono::Duration::seconds(channel.inactivity_timeout_s));
        let conversation: Conversation = diesel::insert_into(conversations::table)
            .values((
                conversations::number.eq(number),
                conversations::channel_instance_id.eq(channel.id),
                conversations::customer_id.eq(customer_id),
                conversations::mode.eq(&channel.mode),
                conversations::status.eq(&status),
                conversations::team_id.eq(team_id),
                conversations::assignee_id.eq(assignee_id),
                conversations::priority.eq(defaults.priority.as_deref().unwrap_or("normal")),
                conversations::subject.eq($subject),
                conversations::custom_fields.eq("{}"),
                conversations::last_seq.eq(1),
                conversations::inactivity_deadline.eq(deadline),
                conversations::created_at.eq(t),
                conversations::updated_at.eq(t),
                conversations::last_customer_activity_at.eq(is_in.then_some(t)),
                conversations::last_agent_activity_at.eq((!is_in).then_some(t)),
            ))
            .returning(Conversation::as_returning())
            .get_result($conn)
            .await?;
        for tag in &defaults.tags {
            diesel::insert_into(conversation_tags::table)
                .values((conversation_tags::conversation_id.eq(conversation.id), conversation_tags::tag.eq(tag)))
                .execute($conn)
                .await?;
        }
        let message: Message = diesel::insert_into(messages::table)
            .values((
                messages::conversation_id.eq(conversation.id),
                messages::seq.eq(1),
                messages::direction.eq(direction.as_str()),
                messages::source.eq($source.as_str()),
                messages::author_agent_id.eq($author_agent_id),
                messages::author_customer_id.eq(is_in.then_some(customer_id)),
                messages::body_text.eq($content),
                messages::body_html.eq($content_html),
                messages::channel_instance_id.eq(channel.id),
                messages::provider_message_id.eq($external_id),
                messages::created_at.eq(t),
            ))
            .returning(Message::as_returning())
            .get_result($conn)
            .await?;
        if outbox_repo::queues_reply(channel.kind.as_str(), channel.enabled, direction) {
            diesel::insert_into(outbox::table)
                .values(&outbox_repo::new_delivery(channel.id, conversation.id, message.id, t))
                .execute($conn)
                .await?;
        }
        let event = record_event!($conn, conversation.id, channel.id, events::CONVERSATION_CREATED, Some(1), Some(message.id), t);
        diesel::insert_into(audit_log::table)
            .values(&audit::entry($actor, "conversation.create", "conversation", Some(conversation.id), json!({
                "number": number, "channel_id": channel.id, "customer_id": customer_id, "direction": direction.as_str(),
                "assignee_id": assignee_id
            })))
            .execute($conn)
            .await?;
        (conversation, message, event, defaults.tags)
    }};
}
pub(crate) use insert_conversation;

pub async fn get(store: &Store, id: i64, scope: &ChannelScope) -> StoreResult<ConversationRow> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let store = &store;
            let scope: &ChannelScope = &scope;
            let mut conn = store.read().await?;
            db_run!(conn => {
                let c: Conversation = load_in_scope!(conn, id, scope);
                let mut rows = decorate!(conn, vec![c]);
                Ok(rows.remove(0))
            })
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
            let store = &store;
            let filter: &ConversationFilter = &filter;
            let scope: &ChannelScope = &scope;
            let scope_ids = scope.ids();
            let pattern = filter.q.as_deref().map(like_pattern);
            let number_q: Option<i64> = filter.q.as_deref().and_then(|q| q.trim().trim_start_matches('#').parse().ok());
            let mut conn = store.read().await?;
            db_run!(conn => {
                macro_rules! filtered {
                    () => {{
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
                        if let Some(customer) = filter.customer_id {
                            q = q.filter(conversations::customer_id.eq(customer));
                        }
                        if let Some(p) = &filter.priority {
                            q = q.filter(conversations::priority.eq(p.clone()));
                        }
                        if let Some(tag) = &filter.tag {
                            q = q.filter(conversations::id.eq_any(
                                conversation_tags::table
                                    .filter(conversation_tags::tag.eq(tag.clone()))
                                    .select(conversation_tags::conversation_id),
                            ));
                        }
                        if let Some(p) = &pattern {
                            let text = lower(conversations::subject).like(p.clone()).escape('\\')
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
                    }};
                }
                let total: i64 = filtered!().count().get_result(conn).await?;
                let q = filtered!().select(Conversation::as_select());
                let q = match filter.sort {
                    SortOrder::UpdatedDesc => q.order((conversations::updated_at.desc(), conversations::id.desc())),
                    SortOrder::UpdatedAsc => q.order((conversations::updated_at.asc(), conversations::id.asc())),
                    SortOrder::CreatedDesc => q.order((conversations::created_at.desc(), conversations::id.desc())),
                    SortOrder::CreatedAsc => q.order((conversations::created_at.asc(), conversations::id.asc())),
                };
                let rows: Vec<Conversation> = q.limit(filter.limit).offset(filter.offset).load(conn).await?;
                let rows = decorate!(conn, rows);
                Ok((rows, total))
            })
        })
        .await
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
    store.run(move |store| async move {
        let store = &store;
        let scope: &ChannelScope = &scope;
        if !scope.allows(input.channel_id) {
            return Err(StoreError::BadReference(format!(
                "channel {} does not exist",
                input.channel_id
            )));
        }
        let mut conn = store.write().await?;
        db_tx!(conn => {
            let t = now();
            let channel: ChannelInstance = channel_instances::table
                .find(input.channel_id)
                .select(ChannelInstance::as_select())
                .first(conn)
                .await
                .optional()?
                .ok_or_else(|| StoreError::BadReference(format!("channel {} does not exist", input.channel_id)))?;
            channels::ensure_enabled(&channel)?;

            // Idempotency: the same provider message id on this channel changes nothing.
            if let Some(ext) = &input.external_message_id {
                let seen: Option<Message> = messages::table
                    .filter(messages::channel_instance_id.eq(channel.id))
                    .filter(messages::provider_message_id.eq(ext))
                    .select(Message::as_select())
                    .first(conn)
                    .await
                    .optional()?;
                if let Some(message) = seen {
                    let c: Conversation = conversations::table.find(message.conversation_id).select(Conversation::as_select()).first(conn).await?;
                    let mut rows = decorate!(conn, vec![c]);
                    return Ok(CreatedConversation { conversation: rows.remove(0), message, created: false, events: vec![] });
                }
            }

            let customer_id: i64 = match &input.counterpart {
                Counterpart::Customer(id) => {
                    // A customer the caller may not see does not exist for them (store::customers).
                    let c: Customer = super::customers::find_visible_customer!(conn, *id, &scope.ids())
                        .ok_or_else(|| StoreError::BadReference(format!("customer {id} does not exist")))?;
                    c.merged_into_id.unwrap_or(c.id)
                }
                Counterpart::Contact { external_id, name, email, phone, company } => {
                    resolve_contact!(conn, &channel, external_id, name, email, phone, company, t)
                }
            };

            let (conversation, message, event, tags) = insert_conversation!(
                conn,
                &channel,
                customer_id,
                &input.subject,
                input.direction,
                input.source,
                input.author_agent_id,
                &input.content,
                &input.content_html,
                &input.external_message_id,
                t,
                actor,
                |a: i64| store.presence(a)
            );
            // Decorated with what is known: the channel's kind and the tags it was given.
            let customer_name: String = customers::table.find(conversation.customer_id).select(customers::name).first(conn).await?;
            let channel_kind = channel.kind.to_string();
            let row = ConversationRow { conversation, tags, customer_name, channel_kind };
            Ok(CreatedConversation { conversation: row, message, created: true, events: vec![event] })
        })
    })
    .await
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
    store.run(move |store| async move {
        let store = &store;
        let patch: &ConversationPatch = &patch;
        let scope: &ChannelScope = &scope;
        let mut conn = store.write().await?;
        db_tx!(conn => {
            // A merged one is refused by the lifecycle, in `apply_patch!`.
            let before: Conversation = load_in_scope!(conn, id, scope);
            let updated = apply_patch!(conn, before, patch, actor);
            let event = record_event!(conn, updated.id, updated.channel_instance_id, events::CONVERSATION_UPDATED, None, None, updated.updated_at);
            let mut rows = decorate!(conn, vec![updated]);
            Ok(Changed { conversation: rows.remove(0), events: vec![event] })
        })
    })
    .await
}

/// Merge conversation `id` into `into` (CORE-8). The merged conversation is closed and points at
/// the survivor; new messages addressed to it land in the survivor. Both must be in scope.
pub async fn merge(store: &Store, id: i64, into: i64, scope: &ChannelScope, actor: Actor) -> StoreResult<Changed> {
    let scope = scope.clone();
    store.run(move |store| async move {
        let store = &store;
        let scope: &ChannelScope = &scope;
        if id == into {
            return Err(Violation::SelfMerge.into());
        }
        let mut conn = store.write().await?;
        db_tx!(conn => {
            let source: Conversation = load_in_scope!(conn, id, scope);
            let target: Conversation = conversations::table
                .find(into)
                .select(Conversation::as_select())
                .first(conn)
                .await
                .optional()?
                .filter(|c| scope.allows(c.channel_instance_id))
                .ok_or_else(|| StoreError::BadReference(format!("conversation {into} does not exist")))?;
            // The lifecycle: neither may have been merged already.
            let source_base = status_base!(conn, &source.status);
            effect(&source, source_base, Event::MergeInto)?;
            let target_base = status_base!(conn, &target.status);
            effect(&target, target_base, Event::MergedFrom)?;
            let t = now();
            let closed = statuses::table
                .filter(statuses::base.eq("closed"))
                .filter(statuses::builtin.eq(true))
                .select(statuses::key)
                .first::<String>(conn)
                .await?;
            diesel::update(conversations::table.find(id))
                .set((
                    conversations::merged_into_id.eq(into),
                    conversations::status.eq(closed),
                    conversations::closed_at.eq(source.closed_at.or(Some(t))),
                    conversations::ended_at.eq(source.ended_at.or(Some(t))),
                    conversations::inactivity_deadline.eq(None::<NaiveDateTime>),
                    conversations::updated_at.eq(t),
                ))
                .execute(conn)
                .await?;
            let survivor: Conversation = diesel::update(conversations::table.find(into))
                .set(conversations::updated_at.eq(t))
                .returning(Conversation::as_returning())
                .get_result(conn)
                .await?;
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "conversation.merge", "conversation", Some(into), json!({"merged": id})))
                .execute(conn)
                .await?;
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "conversation.merged_into", "conversation", Some(id), json!({"into": into})))
                .execute(conn)
                .await?;
            let merged_event = record_event!(conn, source.id, source.channel_instance_id, events::CONVERSATION_UPDATED, None, None, t);
            let survivor_event = record_event!(conn, survivor.id, survivor.channel_instance_id, events::CONVERSATION_UPDATED, None, None, t);
            let mut rows = decorate!(conn, vec![survivor]);
            Ok(Changed { conversation: rows.remove(0), events: vec![merged_event, survivor_event] })
        })
    })
    .await
}

/// Counts per status for the channels in scope (for the dashboard's sidebar).
pub async fn count_by_status(store: &Store, scope: &ChannelScope) -> StoreResult<BTreeMap<String, i64>> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let store = &store;
            let scope: &ChannelScope = &scope;
            let ids = scope.ids();
            let mut conn = store.read().await?;
            let rows: Vec<(String, i64)> = db_run!(conn => {
                let mut q = conversations::table
                    .filter(conversations::merged_into_id.is_null())
                    .group_by(conversations::status)
                    .select((conversations::status, diesel::dsl::count_star()))
                    .into_boxed();
                if let Some(ids) = ids {
                    q = q.filter(conversations::channel_instance_id.eq_any(ids));
                }
                q.load(conn).await
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
            db_tx!(conn => {
                let t = now();
                let before: Conversation = load_in_scope!(conn, id, scope);
                // The lifecycle: a ticket is refused, an ended chat is a no-op, a live one ends
                // (once: the conditional update below decides races).
                let base = status_base!(conn, &before.status);
                if effect(&before, base, Event::EndChat)?.is_none_or(|e| e.chat != ChatChange::End) {
                    return Ok(None);
                }
                let base = conversations::table
                    .filter(conversations::id.eq(id))
                    .filter(conversations::ended_at.is_null());
                let set = (
                    conversations::ended_at.eq(Some(t)),
                    conversations::inactivity_deadline.eq(None::<NaiveDateTime>),
                    conversations::updated_at.eq(t),
                );
                let ended = if reason == EndReason::Inactivity {
                    diesel::update(base.filter(conversations::inactivity_deadline.le(t))).set(set).execute(conn).await?
                } else {
                    diesel::update(base).set(set).execute(conn).await?
                };
                if ended == 0 {
                    return Ok(None);
                }
                let current: Conversation = conversations::table.find(id).select(Conversation::as_select()).first(conn).await?;
                let updated = match status {
                    Some(key) => {
                        let patch = ConversationPatch { status: Some(key), ..Default::default() };
                        apply_patch!(conn, current, &patch, actor)
                    }
                    None => current,
                };
                diesel::insert_into(audit_log::table)
                    .values(&audit::entry(actor, "conversation.end", "conversation", Some(id), json!({"reason": reason.as_str(), "status": updated.status})))
                    .execute(conn)
                    .await?;
                let event = record_event!(conn, id, updated.channel_instance_id, events::CONVERSATION_ENDED, None, None, t);
                let mut rows = decorate!(conn, vec![updated]);
                Ok(Some(Changed { conversation: rows.remove(0), events: vec![event] }))
            })
        })
        .await
}

/// Chats whose inactivity deadline has passed (for the sweeper), oldest deadline first.
pub async fn overdue_chats(store: &Store, limit: i64) -> StoreResult<Vec<(i64, i64)>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            Ok(db_run!(conn => conversations::table
                .filter(conversations::ended_at.is_null())
                .filter(conversations::inactivity_deadline.le(now()))
                .order(conversations::inactivity_deadline.asc())
                .select((conversations::id, conversations::channel_instance_id))
                .limit(limit)
                .load(conn)
                .await)?)
        })
        .await
}

/// The stored inactivity deadline of a chat still in progress, if any.
pub async fn deadline(store: &Store, id: i64) -> StoreResult<Option<NaiveDateTime>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let d: Option<Option<NaiveDateTime>> = db_run!(conn => conversations::table
                .find(id)
                .filter(conversations::ended_at.is_null())
                .select(conversations::inactivity_deadline)
                .first(conn)
                .await
                .optional())?;
            Ok(d.flatten())
        })
        .await
}

/// Several conversations by id, whatever their scope (callers filter), in id order.
pub async fn get_many(store: &Store, ids: Vec<i64>) -> StoreResult<Vec<ConversationRow>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            db_run!(conn => {
                let rows: Vec<Conversation> = conversations::table
                    .filter(conversations::id.eq_any(&ids))
                    .order(conversations::id)
                    .select(Conversation::as_select())
                    .load(conn)
                    .await?;
                Ok(decorate!(conn, rows))
            })
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
            Ok(db_run!(conn => customer_identities::table
                .left_join(conversations::table.on(
                    conversations::customer_id.eq(customer_identities::customer_id)
                        .and(conversations::channel_instance_id.eq(channel_id)),
                ))
                .filter(customer_identities::kind.eq("external"))
                .filter(customer_identities::channel_instance_id.eq(channel_id))
                .filter(customer_identities::value.eq(&external_id))
                .order(conversations::id.desc())
                .select(conversations::id.nullable())
                .first::<Option<i64>>(conn)
                .await
                .optional())?)
        })
        .await
}

/// The customer known on a channel by the integrator's id (`user_custom_id`).
pub async fn customer_by_external_id(store: &Store, channel_id: i64, external_id: &str) -> StoreResult<Option<i64>> {
    let external_id = external_id.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            Ok(db_run!(conn => customer_identities::table
                .filter(customer_identities::kind.eq("external"))
                .filter(customer_identities::channel_instance_id.eq(channel_id))
                .filter(customer_identities::value.eq(&external_id))
                .select(customer_identities::customer_id)
                .first::<i64>(conn)
                .await
                .optional())?)
        })
        .await
}
