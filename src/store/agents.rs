//! Agents: the people who answer (and administer). Also their channel access and teams.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::audit::{self, Actor};
use super::models::{Agent, NewAgent};
use super::schema::{agents, api_tokens, audit_log, channel_access, channel_instances, sessions, team_members};
use super::{Store, StoreError, StoreResult, now};
use crate::domain::Role;
use crate::{db_run, db_tx};

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
    store.run(move |store| async move {
        let store = &store;
        let mut conn = store.write().await?;
        db_tx!(conn => {
            let t = now();
            let agent: Agent = diesel::insert_into(agents::table)
                .values(&NewAgent {
                    email: &input.email,
                    name: &input.name,
                    password_hash: input.password_hash.as_deref(),
                    role: input.role,
                    active: true,
                    created_at: t,
                    updated_at: t,
                })
                .returning(Agent::as_returning())
                .get_result(conn)
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("an agent with email {} already exists", input.email)),
                    other => other,
                })?;
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "agent.create", "agent", Some(agent.id), json!({"email": agent.email, "role": agent.role})))
                .execute(conn)
                .await?;
            Ok(agent)
        })
    })
    .await
}

pub async fn get(store: &Store, id: i64) -> StoreResult<Agent> {
    store
        .run(move |store| async move {
            let store = &store;
            let mut conn = store.read().await?;
            Ok(db_run!(conn => agents::table.find(id).select(Agent::as_select()).first(conn).await)?)
        })
        .await
}

pub async fn by_email(store: &Store, email: &str) -> StoreResult<Option<Agent>> {
    let email = email.to_owned();
    store
        .run(move |store| async move {
            let store = &store;
            let email: &str = &email;
            let mut conn = store.read().await?;
            Ok(db_run!(conn => agents::table
            .filter(agents::email.eq(email))
            .select(Agent::as_select())
            .first(conn)
            .await
            .optional())?)
        })
        .await
}

pub async fn list(store: &Store) -> StoreResult<Vec<Agent>> {
    store
        .run(move |store| async move {
            let store = &store;
            let mut conn = store.read().await?;
            Ok(db_run!(conn => agents::table.order(agents::id).select(Agent::as_select()).load(conn).await)?)
        })
        .await
}

/// Whether an active super admin or admin exists (the server prints how to make one otherwise).
pub async fn any_admin(store: &Store) -> StoreResult<bool> {
    store
        .run(move |store| async move {
            let store = &store;
            let mut conn = store.read().await?;
            let n: i64 = db_run!(conn => agents::table
            .filter(agents::role.eq_any([Role::SuperAdmin, Role::Admin]))
            .filter(agents::active.eq(true))
            .count()
            .get_result(conn)
            .await)?;
            Ok(n > 0)
        })
        .await
}

pub async fn update(store: &Store, id: i64, patch: AgentPatch, actor: Actor) -> StoreResult<Agent> {
    store.run_change(move |store| async move {
        let store = &store;
        let mut conn = store.write().await?;
        db_tx!(conn => {
            let before: Agent = agents::table.find(id).select(Agent::as_select()).first(conn).await?;
            let name = patch.name.clone().unwrap_or(before.name.clone());
            let role = patch.role.unwrap_or(before.role);
            let active = patch.active.unwrap_or(before.active);
            let password_hash = patch.password_hash.clone().or(before.password_hash.clone());
            // Never leave the desk without an active admin.
            let was_admin = before.active && before.role.is_admin();
            let is_admin = active && role.is_admin();
            if was_admin && !is_admin {
                let others: i64 = agents::table
                    .filter(agents::id.ne(id))
                    .filter(agents::role.eq_any([Role::SuperAdmin, Role::Admin]))
                    .filter(agents::active.eq(true))
                    .count()
                    .get_result(conn)
                    .await?;
                if others == 0 {
                    return Err(super::Violation::LastAdmin.into());
                }
            }
            // Every change of the agent row is one of who they are: open sockets re-check (issue #13).
            let agent: Agent = diesel::update(agents::table.find(id))
                .set((
                    agents::name.eq(&name),
                    agents::role.eq(role),
                    agents::active.eq(active),
                    agents::password_hash.eq(&password_hash),
                    agents::updated_at.eq(now()),
                    agents::identity_version.eq(agents::identity_version + 1),
                ))
                .returning(Agent::as_returning())
                .get_result(conn)
                .await?;
            let mut changed = serde_json::Map::new();
            if before.name != agent.name { changed.insert("name".into(), json!(agent.name)); }
            if before.role != agent.role { changed.insert("role".into(), json!(agent.role)); }
            if before.active != agent.active { changed.insert("active".into(), json!(agent.active)); }
            if patch.password_hash.is_some() { changed.insert("password".into(), json!("changed")); }
            if !active {
                // A deactivated agent is signed out everywhere.
                diesel::delete(sessions::table.filter(sessions::agent_id.eq(id))).execute(conn).await?;
            }
            if let (Some(end), Some(_)) = (&patch.end_sessions, &patch.password_hash) {
                // A new password ends every other session, and on request every API token (issue #13).
                let keep = end.keep.as_deref().unwrap_or("");
                let ended = diesel::delete(sessions::table.filter(sessions::agent_id.eq(id)).filter(sessions::token_hash.ne(keep)))
                    .execute(conn)
                    .await?;
                changed.insert("sessions_ended".into(), json!(ended));
                if end.revoke_tokens {
                    let revoked = diesel::delete(api_tokens::table.filter(api_tokens::agent_id.eq(id))).execute(conn).await?;
                    changed.insert("tokens_revoked".into(), json!(revoked));
                }
            }
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "agent.update", "agent", Some(id), serde_json::Value::Object(changed)))
                .execute(conn)
                .await?;
            Ok(agent)
        })
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
            Ok(db_run!(conn => agents::table
            .filter(agents::id.eq_any(&ids))
            .select((agents::id, agents::identity_version))
            .load(conn)
            .await)?)
        })
        .await
}

/// The channel instances this agent was given (admins see all regardless).
pub async fn channel_ids(store: &Store, agent_id: i64) -> StoreResult<Vec<i64>> {
    store
        .run(move |store| async move {
            let store = &store;
            let mut conn = store.read().await?;
            Ok(db_run!(conn => channel_access::table
            .filter(channel_access::agent_id.eq(agent_id))
            .select(channel_access::channel_instance_id)
            .order(channel_access::channel_instance_id)
            .load(conn)
            .await)?)
        })
        .await
}

pub async fn team_ids(store: &Store, agent_id: i64) -> StoreResult<Vec<i64>> {
    store
        .run(move |store| async move {
            let store = &store;
            let mut conn = store.read().await?;
            Ok(db_run!(conn => team_members::table
            .filter(team_members::agent_id.eq(agent_id))
            .select(team_members::team_id)
            .order(team_members::team_id)
            .load(conn)
            .await)?)
        })
        .await
}

/// Replace the agent's channel access with exactly `channel_ids`.
pub async fn set_channels(store: &Store, agent_id: i64, channel_ids: &[i64], actor: Actor) -> StoreResult<Vec<i64>> {
    let channel_ids = channel_ids.to_vec();
    store.run_change(move |store| async move {
        let store = &store;
        let channel_ids: &[i64] = &channel_ids;
        let mut ids = channel_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut conn = store.write().await?;
        db_tx!(conn => {
            agents::table.find(agent_id).select(agents::id).first::<i64>(conn).await?;
            let known: Vec<i64> = channel_instances::table
                .filter(channel_instances::id.eq_any(&ids))
                .select(channel_instances::id)
                .load(conn)
                .await?;
            if let Some(missing) = ids.iter().find(|id| !known.contains(id)) {
                return Err(StoreError::BadReference(format!("channel {missing} does not exist")));
            }
            diesel::delete(channel_access::table.filter(channel_access::agent_id.eq(agent_id))).execute(conn).await?;
            // Open sockets of the agent follow the new access (issue #13).
            diesel::update(agents::table.find(agent_id))
                .set(agents::identity_version.eq(agents::identity_version + 1))
                .execute(conn)
                .await?;
            for c in &ids {
                diesel::insert_into(channel_access::table)
                    .values((channel_access::agent_id.eq(agent_id), channel_access::channel_instance_id.eq(*c)))
                    .execute(conn)
                    .await?;
            }
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "agent.channels", "agent", Some(agent_id), json!({"channel_ids": ids})))
                .execute(conn)
                .await?;
            Ok(ids)
        })
    })
    .await
}
