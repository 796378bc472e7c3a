//! Teams (the seeds' "categories" / groups): named sets of agents that conversations are routed to.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::audit::{self, Actor};
use super::models::Team;
use super::schema::{agents, team_members, teams};
use super::{Store, StoreError, StoreResult, now};
use crate::db;

fn conflict(name: &str) -> impl Fn(diesel::result::Error) -> StoreError + '_ {
    move |e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("a team named {name:?} already exists")),
        other => other,
    }
}

pub async fn list(store: &Store) -> StoreResult<Vec<(Team, Vec<i64>)>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let teams: Vec<Team> = db!(tx, teams::table.order(teams::name).select(Team::as_select()).load(tx).await)?;
            let members: Vec<(i64, i64)> = db!(
                tx,
                team_members::table
                    .select((team_members::team_id, team_members::agent_id))
                    .order((team_members::team_id, team_members::agent_id))
                    .load(tx)
                    .await
            )?;
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
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let team: Team = db!(tx, teams::table.find(id).select(Team::as_select()).first(tx).await)?;
            let members: Vec<i64> = db!(
                tx,
                team_members::table
                    .filter(team_members::team_id.eq(id))
                    .select(team_members::agent_id)
                    .order(team_members::agent_id)
                    .load(tx)
                    .await
            )?;
            Ok((team, members))
        })
        .await
}

pub async fn create(store: &Store, name: &str, description: &str, actor: Actor) -> StoreResult<Team> {
    let name = name.to_owned();
    let description = description.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let row = (teams::name.eq(&name), teams::description.eq(&description), teams::created_at.eq(now()));
                let team: Team = db!(
                    tx,
                    diesel::insert_into(teams::table).values(row).returning(Team::as_returning()).get_result(tx).await
                )
                .map_err(conflict(&name))?;
                audit::write(tx, audit::entry(actor, "team.create", "team", Some(team.id), json!({"name": name})))
                    .await?;
                Ok(team)
            })
            .await
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
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let before: Team = db!(tx, teams::table.find(id).select(Team::as_select()).first(tx).await)?;
                let new_name = name.as_deref().unwrap_or(&before.name);
                let new_description = description.as_deref().unwrap_or(&before.description);
                let team: Team = db!(
                    tx,
                    diesel::update(teams::table.find(id))
                        .set((teams::name.eq(new_name), teams::description.eq(new_description)))
                        .returning(Team::as_returning())
                        .get_result(tx)
                        .await
                )
                .map_err(conflict(new_name))?;
                let details = json!({"name": team.name, "description": team.description});
                audit::write(tx, audit::entry(actor, "team.update", "team", Some(id), details)).await?;
                Ok(team)
            })
            .await
        })
        .await
}

pub async fn delete(store: &Store, id: i64, actor: Actor) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let n = db!(tx, diesel::delete(teams::table.find(id)).execute(tx).await)?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                audit::write(tx, audit::entry(actor, "team.delete", "team", Some(id), json!({}))).await?;
                Ok(())
            })
            .await
        })
        .await
}

/// Replace the members of a team with exactly `agent_ids`.
pub async fn set_members(store: &Store, id: i64, agent_ids: &[i64], actor: Actor) -> StoreResult<Vec<i64>> {
    let mut ids = agent_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                db!(tx, teams::table.find(id).select(teams::id).first::<i64>(tx).await)?;
                let known: Vec<i64> =
                    db!(tx, agents::table.filter(agents::id.eq_any(&ids)).select(agents::id).load(tx).await)?;
                if let Some(missing) = ids.iter().find(|a| !known.contains(a)) {
                    return Err(StoreError::BadReference(format!("agent {missing} does not exist")));
                }
                db!(tx, diesel::delete(team_members::table.filter(team_members::team_id.eq(id))).execute(tx).await)?;
                for a in &ids {
                    let row = (team_members::team_id.eq(id), team_members::agent_id.eq(*a));
                    db!(tx, diesel::insert_into(team_members::table).values(row).execute(tx).await)?;
                }
                audit::write(tx, audit::entry(actor, "team.members", "team", Some(id), json!({"agent_ids": ids})))
                    .await?;
                Ok(ids.clone())
            })
            .await
        })
        .await
}
