//! Dashboard sessions and API tokens, stored by the SHA-256 of their secret (never the secret).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::audit::{self, Actor};
use super::models::{Agent, ApiToken, Session};
use super::schema::{agents, api_tokens, sessions};
use super::{Store, StoreResult, Tx, now};
use crate::db;

/// Record a new session. Expired sessions of anyone are swept on the way.
pub async fn create_session(
    store: &Store,
    agent_id: i64,
    token_hash: &str,
    csrf_token: &str,
    expires_at: NaiveDateTime,
) -> StoreResult<()> {
    let token_hash = token_hash.to_owned();
    let csrf_token = csrf_token.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                db!(tx, diesel::delete(sessions::table.filter(sessions::expires_at.lt(t))).execute(tx).await)?;
                let row = (
                    sessions::token_hash.eq(&token_hash),
                    sessions::csrf_token.eq(&csrf_token),
                    sessions::agent_id.eq(agent_id),
                    sessions::created_at.eq(t),
                    sessions::expires_at.eq(expires_at),
                );
                db!(tx, diesel::insert_into(sessions::table).values(row).execute(tx).await)?;
                Ok(())
            })
            .await
        })
        .await
}

/// The unexpired session with this token hash, and its (active) agent.
pub async fn session(store: &Store, token_hash: &str) -> StoreResult<Option<(Session, Agent)>> {
    let token_hash = token_hash.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                sessions::table
                    .inner_join(agents::table)
                    .filter(sessions::token_hash.eq(&token_hash))
                    .filter(sessions::expires_at.gt(now()))
                    .filter(agents::active.eq(true))
                    .select((Session::as_select(), Agent::as_select()))
                    .first(tx)
                    .await
                    .optional()
            )?)
        })
        .await
}

/// Bump the agent's identity version: their open sockets re-check who they are (issue #13).
async fn identity_changed(tx: &mut Tx<'_>, agent_id: i64) -> StoreResult<()> {
    db!(
        tx,
        diesel::update(agents::table.find(agent_id))
            .set(agents::identity_version.eq(agents::identity_version + 1))
            .execute(tx)
            .await
    )?;
    Ok(())
}

/// End a session (sign-out). Its agent's open sockets re-check their credentials (issue #13).
pub async fn delete_session(store: &Store, token_hash: &str) -> StoreResult<()> {
    let token_hash = token_hash.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let agent: Option<i64> = db!(
                    tx,
                    diesel::delete(sessions::table.filter(sessions::token_hash.eq(&token_hash)))
                        .returning(sessions::agent_id)
                        .get_result(tx)
                        .await
                        .optional()
                )?;
                if let Some(agent_id) = agent {
                    identity_changed(tx, agent_id).await?;
                }
                Ok(())
            })
            .await
        })
        .await
}

pub async fn create_token(
    store: &Store,
    agent_id: i64,
    name: &str,
    token_hash: &str,
    prefix: &str,
    actor: Actor,
) -> StoreResult<ApiToken> {
    let name = name.to_owned();
    let token_hash = token_hash.to_owned();
    let prefix = prefix.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                db!(tx, agents::table.find(agent_id).select(agents::id).first::<i64>(tx).await)?;
                let row = (
                    api_tokens::agent_id.eq(agent_id),
                    api_tokens::name.eq(&name),
                    api_tokens::token_hash.eq(&token_hash),
                    api_tokens::prefix.eq(&prefix),
                    api_tokens::created_at.eq(now()),
                );
                let token: ApiToken = db!(
                    tx,
                    diesel::insert_into(api_tokens::table)
                        .values(row)
                        .returning(ApiToken::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let details = json!({"agent_id": agent_id, "name": name});
                audit::write(tx, audit::entry(actor, "token.create", "api_token", Some(token.id), details)).await?;
                Ok(token)
            })
            .await
        })
        .await
}

/// The token with this hash and its (active) agent.
pub async fn token(store: &Store, token_hash: &str) -> StoreResult<Option<(ApiToken, Agent)>> {
    let token_hash = token_hash.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                api_tokens::table
                    .inner_join(agents::table)
                    .filter(api_tokens::token_hash.eq(&token_hash))
                    .filter(agents::active.eq(true))
                    .select((ApiToken::as_select(), Agent::as_select()))
                    .first(tx)
                    .await
                    .optional()
            )?)
        })
        .await
}

/// The token with this id and its (active) agent: what a socket opened with it re-checks.
pub async fn token_by_id(store: &Store, id: i64) -> StoreResult<Option<(ApiToken, Agent)>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                api_tokens::table
                    .inner_join(agents::table)
                    .filter(api_tokens::id.eq(id))
                    .filter(agents::active.eq(true))
                    .select((ApiToken::as_select(), Agent::as_select()))
                    .first(tx)
                    .await
                    .optional()
            )?)
        })
        .await
}

/// Note that a token was used. Called at most once a minute per token, so a busy integration
/// does not turn every read into a write.
pub async fn touch_token(store: &Store, id: i64) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            db!(
                tx,
                diesel::update(api_tokens::table.find(id)).set(api_tokens::last_used_at.eq(now())).execute(tx).await
            )?;
            Ok(())
        })
        .await
}

pub async fn list_tokens(store: &Store, agent_id: Option<i64>) -> StoreResult<Vec<ApiToken>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(tx, {
                let mut q = api_tokens::table.select(ApiToken::as_select()).into_boxed();
                if let Some(a) = agent_id {
                    q = q.filter(api_tokens::agent_id.eq(a));
                }
                q.order(api_tokens::id).load(tx).await
            })?)
        })
        .await
}

pub async fn get_token(store: &Store, id: i64) -> StoreResult<ApiToken> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(tx, api_tokens::table.find(id).select(ApiToken::as_select()).first(tx).await)?)
        })
        .await
}

pub async fn delete_token(store: &Store, id: i64, actor: Actor) -> StoreResult<()> {
    store
        .run_change(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let agent_id: i64 = db!(
                    tx,
                    diesel::delete(api_tokens::table.find(id))
                        .returning(api_tokens::agent_id)
                        .get_result(tx)
                        .await
                        .optional()
                )?
                .ok_or(super::StoreError::NotFound)?;
                identity_changed(tx, agent_id).await?;
                audit::write(tx, audit::entry(actor, "token.delete", "api_token", Some(id), json!({}))).await?;
                Ok(())
            })
            .await
        })
        .await
}
