//! A conversation's activity trail (issue #17 item 4): what was changed on it, by whom and when —
//! status, priority, team, assignee, tags, subject, custom fields, merges (both sides) and the end of
//! a chat with its reason. Read from the audit entries the change transactions already write
//! (`conversation.update`, `.merge`, `.merged_into`, `.end`; the `events` rows say only *that* a
//! conversation changed, the audit entry says *what*). Reading only.
//!
//! [`entries_of`] is the one rule from an audit entry to trail entries, pure and unit-tested. An
//! update entry written since this trail exists carries the changed fields' earlier values under
//! `before`; an older one has no "from".

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::Value;

use super::audit::Actor;
use super::conversations::load_in_scope;
use super::models::AuditEntry;
use super::schema::{agents, audit_log, conversations};
use super::{Store, StoreResult};
use crate::db;
use crate::domain::ChannelScope;

/// Most entries one trail returns (the oldest are left out past it).
pub const MAX_ENTRIES: i64 = 1000;

/// The audit actions a trail is made of.
const ACTIONS: [&str; 4] =
    ["conversation.update", "conversation.merge", "conversation.merged_into", "conversation.end"];

/// What one trail entry says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    Status,
    Priority,
    Team,
    Assignee,
    Tags,
    Subject,
    /// One custom field (named by `field`).
    CustomField,
    /// Another conversation was merged into this one.
    MergedFrom,
    /// This conversation was merged into another.
    MergedInto,
    /// The chat ended (`reason`: agent, inactivity, rule).
    ChatEnded,
}

/// One entry before names and links are filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub kind: ActivityKind,
    pub field: Option<String>,
    pub from: Option<Value>,
    pub to: Option<Value>,
    pub reason: Option<String>,
    /// The other conversation of a merge.
    pub other: Option<i64>,
}

impl Draft {
    fn new(kind: ActivityKind) -> Self {
        Draft { kind, field: None, from: None, to: None, reason: None, other: None }
    }
}

/// The trail entries one audit entry of a conversation makes, in a fixed order.
pub fn entries_of(action: &str, details: &Value) -> Vec<Draft> {
    let text = |k: &str| details.get(k).and_then(Value::as_str).map(str::to_owned);
    match action {
        "conversation.update" => {
            let before = details.get("before");
            let was = |k: &str| before.and_then(|b| b.get(k)).cloned();
            let mut out = Vec::new();
            for (key, kind) in [
                ("status", ActivityKind::Status),
                ("priority", ActivityKind::Priority),
                ("team_id", ActivityKind::Team),
                ("assignee_id", ActivityKind::Assignee),
                ("tags", ActivityKind::Tags),
                ("subject", ActivityKind::Subject),
            ] {
                if let Some(to) = details.get(key) {
                    out.push(Draft {
                        from: was(key),
                        to: Some(to.clone()),
                        reason: text("reason"),
                        ..Draft::new(kind)
                    });
                }
            }
            if let Some(Value::Object(fields)) = details.get("custom_fields") {
                let old = was("custom_fields");
                for (k, v) in fields {
                    let from = old.as_ref().and_then(|o| o.get(k)).cloned();
                    if from.as_ref() == Some(v) {
                        continue; // sent again unchanged
                    }
                    out.push(Draft {
                        field: Some(k.clone()),
                        from,
                        to: Some(v.clone()),
                        ..Draft::new(ActivityKind::CustomField)
                    });
                }
            }
            out
        }
        "conversation.merge" => {
            vec![Draft { other: details.get("merged").and_then(Value::as_i64), ..Draft::new(ActivityKind::MergedFrom) }]
        }
        "conversation.merged_into" => {
            vec![Draft { other: details.get("into").and_then(Value::as_i64), ..Draft::new(ActivityKind::MergedInto) }]
        }
        "conversation.end" => vec![Draft { reason: text("reason"), ..Draft::new(ActivityKind::ChatEnded) }],
        _ => Vec::new(),
    }
}

/// Record, in the transaction of the message that caused it, a status the server changed by itself (a customer's
/// message reopening a pending conversation, a mailed `#close#`): a `system` line of the trail with its `reason`.
pub(crate) async fn status_changed_by_message(
    tx: &mut super::Tx<'_>,
    conversation_id: i64,
    from: &str,
    to: &str,
    reason: &str,
) -> StoreResult<()> {
    let details = serde_json::json!({"status": to, "reason": reason, "before": {"status": from}});
    super::audit::write(
        tx,
        super::audit::entry(Actor::System, "conversation.update", "conversation", Some(conversation_id), details),
    )
    .await
}

/// One entry of a trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The audit entry it comes from (one audit entry may make several trail entries).
    pub audit_id: i64,
    pub at: NaiveDateTime,
    pub actor: Actor,
    /// The acting agent's name (`None` for the system, or an agent since removed).
    pub actor_name: Option<String>,
    pub draft: Draft,
    /// The other conversation of a merge as (id, number), when the caller may see it.
    pub other: Option<(i64, i64)>,
}

/// The trail of conversation `id`, oldest first. `NotFound` when it is out of `scope`; the other side of a
/// merge is named only when it is in `scope` too.
pub async fn list(store: &Store, id: i64, scope: &ChannelScope) -> StoreResult<Vec<Entry>> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            load_in_scope(tx, id, &scope).await?;
            let mut rows: Vec<AuditEntry> = db!(
                tx,
                audit_log::table
                    .filter(audit_log::entity_type.eq("conversation"))
                    .filter(audit_log::entity_id.eq(id))
                    .filter(audit_log::action.eq_any(ACTIONS))
                    .order(audit_log::id.desc())
                    .limit(MAX_ENTRIES)
                    .select(AuditEntry::as_select())
                    .load(tx)
                    .await
            )?;
            rows.reverse();
            let drafts: Vec<(AuditEntry, Vec<Draft>)> = rows
                .into_iter()
                .map(|r| {
                    let details: Value = serde_json::from_str(&r.details).unwrap_or(Value::Null);
                    let drafts = entries_of(&r.action, &details);
                    (r, drafts)
                })
                .collect();
            let agent_ids: HashSet<i64> = drafts.iter().filter_map(|(r, _)| r.actor_id).collect();
            let names: HashMap<i64, String> = db!(
                tx,
                agents::table
                    .filter(agents::id.eq_any(agent_ids.into_iter().collect::<Vec<_>>()))
                    .select((agents::id, agents::name))
                    .load::<(i64, String)>(tx)
                    .await
            )?
            .into_iter()
            .collect();
            let others: Vec<i64> = drafts.iter().flat_map(|(_, d)| d.iter().filter_map(|d| d.other)).collect();
            let linked: HashMap<i64, i64> = db!(
                tx,
                conversations::table
                    .filter(conversations::id.eq_any(others))
                    .select((conversations::id, conversations::number, conversations::channel_instance_id))
                    .load::<(i64, i64, i64)>(tx)
                    .await
            )?
            .into_iter()
            .filter(|(_, _, channel)| scope.allows(*channel))
            .map(|(id, number, _)| (id, number))
            .collect();
            let mut out = Vec::new();
            for (row, ds) in drafts {
                let actor = match (row.actor_kind.as_str(), row.actor_id) {
                    ("agent", Some(agent)) => Actor::Agent(agent),
                    ("customer", Some(customer)) => Actor::Customer(customer),
                    _ => Actor::System,
                };
                for draft in ds {
                    let other = draft.other.and_then(|o| linked.get(&o).map(|n| (o, *n)));
                    out.push(Entry {
                        audit_id: row.id,
                        at: row.created_at,
                        actor,
                        actor_name: actor.agent_id().and_then(|a| names.get(&a).cloned()),
                        draft,
                        other,
                    });
                }
            }
            Ok(out)
        })
        .await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_update_makes_one_entry_per_field_with_its_earlier_value() {
        let d = json!({"status": "pending", "priority": "high", "tags": ["a", "b"], "team_id": null,
            "custom_fields": {"plan": "gold", "same": 1},
            "before": {"status": "open", "priority": "normal", "tags": ["a"], "team_id": 4,
                "custom_fields": {"plan": null, "same": 1}}});
        let e = entries_of("conversation.update", &d);
        let kinds: Vec<_> = e.iter().map(|d| d.kind).collect();
        assert_eq!(
            kinds,
            [
                ActivityKind::Status,
                ActivityKind::Priority,
                ActivityKind::Team,
                ActivityKind::Tags,
                ActivityKind::CustomField
            ]
        );
        assert_eq!((e[0].from.clone(), e[0].to.clone()), (Some(json!("open")), Some(json!("pending"))));
        assert_eq!((e[2].from.clone(), e[2].to.clone()), (Some(json!(4)), Some(Value::Null)));
        assert_eq!(e[4].field.as_deref(), Some("plan"));
        assert_eq!((e[4].from.clone(), e[4].to.clone()), (Some(Value::Null), Some(json!("gold"))));
    }

    #[test]
    fn an_older_update_has_no_from() {
        let e = entries_of("conversation.update", &json!({"assignee_id": 3}));
        assert_eq!(e, vec![Draft { to: Some(json!(3)), ..Draft::new(ActivityKind::Assignee) }]);
    }

    #[test]
    fn merges_and_ends() {
        assert_eq!(entries_of("conversation.merge", &json!({"merged": 7}))[0].other, Some(7));
        let into = &entries_of("conversation.merged_into", &json!({"into": 9}))[0];
        assert_eq!((into.kind, into.other), (ActivityKind::MergedInto, Some(9)));
        let end = &entries_of("conversation.end", &json!({"reason": "inactivity", "status": "open"}))[0];
        assert_eq!((end.kind, end.reason.as_deref()), (ActivityKind::ChatEnded, Some("inactivity")));
        assert!(entries_of("conversation.create", &json!({})).is_empty());
    }
}
