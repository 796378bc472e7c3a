//! Teams (the seeds' "categories" / groups): named sets of agents that conversations are routed to.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::audit::{self, Actor};
use super::models::Team;
use super::schema::{agents, audit_log, team_members, teams};
use super::{Store, StoreError, StoreResult, now};
use crate::{db_run, db_tx};

fn conflict(name: &str) -> impl Fn(diesel::result::Error) -> StoreError + '_ {
    move |e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("a team named {name:?} already exists")),
        other => other,
    }
}

pub async fn list(store: &Store) -> StoreResult<Vec<(Team, Vec<i64>)>> {
    store
        .run(move |store| async move {
            let store = &store;
            let mut conn = store.read().await?;
            let (teams, members): (Vec<Team>, Vec<(i64, i64)>) = db_run!(conn => {
                let t = teams::table.order(teams::name).select(Team::as_select()).load(conn).await?;
                let m = team_members::table
                    .select((team_members::team_id, team_members::agent_id))
                    .order((team_members::team_id, team_members::agent_id))
                    .load(conn)
                    .await?;
                Ok::<_, diesel::result::Error>((t, m))
            })?;
            Ok(teams
                .into_iter()
                .map(|t| {
                    let ids = members.iter().filter(|(tid, _)| *tid == t.id).map(|(_, a)| *a).collect();
                    (t, ids)
                })
                .collect())
        })
        .await
}

pub async fn get(store: &Store, id: i64) -> StoreResult<(Team, Vec<i64>)> {
    store
        .run(move |store| async move {
            let store = &store;
            let mut conn = store.read().await?;
            Ok(db_run!(conn => {
                let t = teams::table.find(id).select(Team::as_select()).first(conn).await?;
                let m = team_members::table
                    .filter(team_members::team_id.eq(id))
                    .select(team_members::agent_id)
                    .order(team_members::agent_id)
                    .load(conn)
                    .await?;
                Ok::<_, diesel::result::Error>((t, m))
            })?)
        })
        .await
}

pub async fn create(store: &Store, name: &str, description: &str, actor: Actor) -> StoreResult<Team> {
    let name = name.to_owned();
    let description = description.to_owned();
    store
        .run(move |store| async move {
            let store = &store;
            let name: &str = &name;
            let description: &str = &description;
            let mut conn = store.write().await?;
            db_tx!(conn => {
                let team: Team = diesel::insert_into(teams::table)
                    .values((teams::name.eq(name), teams::description.eq(description), teams::created_at.eq(now())))
                    .returning(Team::as_returning())
                    .get_result(conn)
                    .await
                    .map_err(conflict(name))?;
                diesel::insert_into(audit_log::table)
                    .values(&audit::entry(actor, "team.create", "team", Some(team.id), json!({"name": name})))
                    .execute(conn)
                    .await?;
                Ok(team)
            })
        })
        .await
}

pub async fn update(
    store: &Store,
    id: i64,
    name: Option<&str>,
    description: Option<&str>,
    actor: Actor,
) -> StoreResult<Team> {
    let name = name.map(str::to_owned);
    let description = description.map(str::to_owned);
    store.run(move |store| async move {
        let store = &store;
        let name: Option<&str> = name.as_deref();
        let description: Option<&str> = description.as_deref();
        let mut conn = store.write().await?;
        db_tx!(conn => {
            let before: Team = teams::table.find(id).select(Team::as_select()).first(conn).await?;
            let new_name = name.unwrap_or(&before.name);
            let team: Team = diesel::update(teams::table.find(id))
                .set((teams::name.eq(new_name), teams::description.eq(description.unwrap_or(&before.description))))
                .returning(Team::as_returning())
                .get_result(conn)
                .await
                .map_err(conflict(new_name))?;
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "team.update", "team", Some(id), json!({"name": team.name, "description": team.description})))
                .execute(conn)
                .await?;
            Ok(team)
        })
    })
    .await
}

pub async fn delete(store: &Store, id: i64, actor: Actor) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let store = &store;
            let mut conn = store.write().await?;
            db_tx!(conn => {
                let n = diesel::delete(teams::table.find(id)).execute(conn).await?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                diesel::insert_into(audit_log::table)
                    .values(&audit::entry(actor, "team.delete", "team", Some(id), json!({})))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
}

/// Replace the members of a team with exactly `agent_ids`.
pub async fn set_members(store: &Store, id: i64, agent_ids: &[i64], actor: Actor) -> StoreResult<Vec<i64>> {
    let agent_ids = agent_ids.to_vec();
    store.run(move |store| async move {
        let store = &store;
        let agent_ids: &[i64] = &agent_ids;
        let mut ids = agent_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut conn = store.write().await?;
        db_tx!(conn => {
            teams::table.find(id).select(teams::id).first::<i64>(conn).await?;
            let known: Vec<i64> = agents::table.filter(agents::id.eq_any(&ids)).select(agents::id).load(conn).await?;
            if let Some(missing) = ids.iter().find(|a| !known.contains(a)) {
                return Err(StoreError::BadReference(format!("agent {missing} does not exist")));
            }
            diesel::delete(team_members::table.filter(team_members::team_id.eq(id))).execute(conn).await?;
            for a in &ids {
                diesel::insert_into(team_members::table)
                    .values((team_members::team_id.eq(id), team_members::agent_id.eq(*a)))
                    .execute(conn)
                    .await?;
            }
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "team.members", "team", Some(id), json!({"agent_ids": ids})))
                .execute(conn)
                .await?;
            Ok(ids)
        })
    })
    .await
}
