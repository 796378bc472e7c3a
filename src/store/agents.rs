//! Agents: the people who answer (and administer). Also their channel access and teams.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::audit::{self, Actor};
use super::models::{Agent, NewAgent};
use super::schema::{agents, api_tokens, channel_access, channel_instances, sessions, team_members};
use super::{Store, StoreError, StoreResult, Tx, now};
use crate::db;
use crate::domain::Role;

pub struct CreateAgent {
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub role: Role,
}

#[derive(Default)]
pub struct AgentPatch {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub password_hash: Option<String>,
    /// With a new password: what else ends in the same transaction (issue #13).
    pub end_sessions: Option<EndSessions>,
}

/// What a password change ends: every session of the agent but `keep` (the caller's own, when
/// they change their own password), and with `revoke_tokens` every API token of the agent.
#[derive(Default)]
pub struct EndSessions {
    /// The token hash of the session to keep.
    pub keep: Option<String>,
    pub revoke_tokens: bool,
}

pub async fn create(store: &Store, input: CreateAgent, actor: Actor) -> StoreResult<Agent> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let new = NewAgent {
                    email: &input.email,
                    name: &input.name,
                    password_hash: input.password_hash.as_deref(),
                    role: input.role,
                    active: true,
                    created_at: t,
                    updated_at: t,
                };
                let agent: Agent = db!(
                    tx,
                    diesel::insert_into(agents::table)
                        .values(&new)
                        .returning(Agent::as_returning())
                        .get_result(tx)
                        .await
                )
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("an agent with email {} already exists", input.email))
                    }
                    other => other,
                })?;
                let details = json!({"email": agent.email, "role": agent.role});
                audit::write(tx, audit::entry(actor, "agent.create", "agent", Some(agent.id), details)).await?;
                Ok(agent)
            })
            .await
        })
        .await
}

pub async fn get(store: &Store, id: i64) -> StoreResult<Agent> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(tx, agents::table.find(id).select(Agent::as_select()).first(tx).await)?)
        })
        .await
}

pub async fn by_email(store: &Store, email: &str) -> StoreResult<Option<Agent>> {
    let email = email.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                agents::table.filter(agents::email.eq(&email)).select(Agent::as_select()).first(tx).await.optional()
            )?)
        })
        .await
}

pub async fn list(store: &Store) -> StoreResult<Vec<Agent>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(tx, agents::table.order(agents::id).select(Agent::as_select()).load(tx).await)?)
        })
        .await
}

/// How many active admins (super admins included) there are, leaving out `except`.
async fn active_admins(tx: &mut Tx<'_>, except: Option<i64>) -> StoreResult<i64> {
    let n: i64 = db!(tx, {
        let mut q = agents::table
            .filter(agents::role.eq_any([Role::SuperAdmin, Role::Admin]))
            .filter(agents::active.eq(true))
            .into_boxed();
        if let Some(id) = except {
            q = q.filter(agents::id.ne(id));
        }
        q.count().get_result(tx).await
    })?;
    Ok(n)
}

/// Whether an active super admin or admin exists (the server prints how to make one otherwise).
pub async fn any_admin(store: &Store) -> StoreResult<bool> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            Ok(active_admins(&mut conn.tx(), None).await? > 0)
        })
        .await
}

pub async fn update(store: &Store, id: i64, patch: AgentPatch, actor: Actor) -> StoreResult<Agent> {
    store
        .run_change(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let before: Agent = db!(tx, agents::table.find(id).select(Agent::as_select()).first(tx).await)?;
                let name = patch.name.clone().unwrap_or(before.name.clone());
                let role = patch.role.unwrap_or(before.role);
                let active = patch.active.unwrap_or(before.active);
                let password_hash = patch.password_hash.clone().or(before.password_hash.clone());
                // Never leave the desk without an active admin.
                let was_admin = before.active && before.role.is_admin();
                let is_admin = active && role.is_admin();
                if was_admin && !is_admin && active_admins(tx, Some(id)).await? == 0 {
                    return Err(super::Violation::LastAdmin.into());
                }
                // Every change of the agent row is one of who they are: open sockets re-check (issue #13).
                let agent: Agent = db!(
                    tx,
                    diesel::update(agents::table.find(id))
                        .set((
                            agents::name.eq(&name),
                            agents::role.eq(role),
                            agents::active.eq(active),
                            agents::password_hash.eq(&password_hash),
                            agents::updated_at.eq(now()),
                            agents::identity_version.eq(agents::identity_version + 1),
                        ))
                        .returning(Agent::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let mut changed = serde_json::Map::new();
                if before.name != agent.name {
                    changed.insert("name".into(), json!(agent.name));
                }
                if before.role != agent.role {
                    changed.insert("role".into(), json!(agent.role));
                }
                if before.active != agent.active {
                    changed.insert("active".into(), json!(agent.active));
                }
                if patch.password_hash.is_some() {
                    changed.insert("password".into(), json!("changed"));
                }
                if !active {
                    // A deactivated agent is signed out everywhere.
                    db!(tx, diesel::delete(sessions::table.filter(sessions::agent_id.eq(id))).execute(tx).await)?;
                }
                if let (Some(end), Some(_)) = (&patch.end_sessions, &patch.password_hash) {
                    // A new password ends every other session, and on request every API token (issue #13).
                    let keep = end.keep.as_deref().unwrap_or("");
                    let ended = db!(
                        tx,
                        diesel::delete(
                            sessions::table.filter(sessions::agent_id.eq(id)).filter(sessions::token_hash.ne(keep))
                        )
                        .execute(tx)
                        .await
                    )?;
                    changed.insert("sessions_ended".into(), json!(ended));
                    if end.revoke_tokens {
                        let revoked = db!(
                            tx,
                            diesel::delete(api_tokens::table.filter(api_tokens::agent_id.eq(id))).execute(tx).await
                        )?;
                        changed.insert("tokens_revoked".into(), json!(revoked));
                    }
                }
                let details = serde_json::Value::Object(changed);
                audit::write(tx, audit::entry(actor, "agent.update", "agent", Some(id), details)).await?;
                Ok(agent)
            })
            .await
        })
        .await
}

/// The identity version (issue #13) of each of these agents that exists, by id. Each node reads
/// it every second for the agents with open sockets there (`realtime::hub`).
pub async fn identity_versions(store: &Store, ids: &[i64]) -> StoreResult<Vec<(i64, i64)>> {
    let ids = ids.to_vec();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                agents::table
                    .filter(agents::id.eq_any(&ids))
                    .select((agents::id, agents::identity_version))
                    .load(tx)
                    .await
            )?)
        })
        .await
}

/// The channel instances this agent was given (admins see all regardless).
pub async fn channel_ids(store: &Store, agent_id: i64) -> StoreResult<Vec<i64>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                channel_access::table
                    .filter(channel_access::agent_id.eq(agent_id))
                    .select(channel_access::channel_instance_id)
                    .order(channel_access::channel_instance_id)
                    .load(tx)
                    .await
            )?)
        })
        .await
}

pub async fn team_ids(store: &Store, agent_id: i64) -> StoreResult<Vec<i64>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                team_members::table
                    .filter(team_members::agent_id.eq(agent_id))
                    .select(team_members::team_id)
                    .order(team_members::team_id)
                    .load(tx)
                    .await
            )?)
        })
        .await
}

/// Replace the agent's channel access with exactly `channel_ids`.
pub async fn set_channels(store: &Store, agent_id: i64, channel_ids: &[i64], actor: Actor) -> StoreResult<Vec<i64>> {
    let mut ids = channel_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    store
        .run_change(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                db!(tx, agents::table.find(agent_id).select(agents::id).first::<i64>(tx).await)?;
                let known: Vec<i64> = db!(
                    tx,
                    channel_instances::table
                        .filter(channel_instances::id.eq_any(&ids))
                        .select(channel_instances::id)
                        .load(tx)
                        .await
                )?;
                if let Some(missing) = ids.iter().find(|id| !known.contains(id)) {
                    return Err(StoreError::BadReference(format!("channel {missing} does not exist")));
                }
                db!(
                    tx,
                    diesel::delete(channel_access::table.filter(channel_access::agent_id.eq(agent_id)))
                        .execute(tx)
                        .await
                )?;
                // Open sockets of the agent follow the new access (issue #13).
                db!(
                    tx,
                    diesel::update(agents::table.find(agent_id))
                        .set(agents::identity_version.eq(agents::identity_version + 1))
                        .execute(tx)
                        .await
                )?;
                for c in &ids {
                    let row = (channel_access::agent_id.eq(agent_id), channel_access::channel_instance_id.eq(*c));
                    db!(tx, diesel::insert_into(channel_access::table).values(row).execute(tx).await)?;
                }
                let details = json!({"channel_ids": ids});
                audit::write(tx, audit::entry(actor, "agent.channels", "agent", Some(agent_id), details)).await?;
                Ok(ids.clone())
            })
            .await
        })
        .await
}
