//! Leases (issue #14): the rows of `leases`, each naming a job that must run on one node of the deployment at a
//! time (`mailbox:{id}`) and the node that holds it until `expires_at`. Storage only: when a node takes, renews or
//! lets go of a lease is decided in `cluster::lease`.
//!
//! Taking and renewing are one conditional statement each, so two nodes racing for a lease never both get it:
//! `UPDATE … WHERE name = ? AND (holder = me OR expires_at <= now)`, and when no row exists,
//! `INSERT … ON CONFLICT DO NOTHING`. Both backends run them as written (PostgreSQL re-checks the `WHERE` of an
//! `UPDATE` that waited for a concurrent one; SQLite runs writes one at a time).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::leases;
use super::{Store, StoreResult};
use crate::db;

/// One lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = leases)]
pub struct Lease {
    pub name: String,
    /// The node that holds it (`Realtime::node_id`).
    pub holder: String,
    pub expires_at: NaiveDateTime,
}

/// The stored leases among `names` (a name without a row has never been taken, or was released).
pub async fn of(store: &Store, names: &[String]) -> StoreResult<Vec<Lease>> {
    let names = names.to_vec();
    store
        .run(move |store| async move {
            if names.is_empty() {
                return Ok(Vec::new());
            }
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(tx, leases::table.filter(leases::name.eq_any(&names)).select(Lease::as_select()).load(tx).await)?)
        })
        .await
}

/// How [`take`] may take a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Only when it is free, expired (`expires_at <= now`) or already `holder`'s.
    IfFree { now: NaiveDateTime },
    /// Whoever holds it (a single node: nobody else can be running the job).
    Always,
}

/// Take or renew `name` for `holder` until `expires_at`. True when `holder` now holds it.
pub async fn take(store: &Store, name: &str, holder: &str, expires_at: NaiveDateTime, how: Take) -> StoreResult<bool> {
    let (name, holder) = (name.to_owned(), holder.to_owned());
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            let set = (leases::holder.eq(&holder), leases::expires_at.eq(expires_at));
            let row = leases::table.filter(leases::name.eq(&name));
            let updated = match how {
                Take::IfFree { now } => {
                    let free = row.filter(leases::holder.eq(&holder).or(leases::expires_at.le(now)));
                    db!(tx, diesel::update(free).set(set).execute(tx).await)?
                }
                Take::Always => db!(tx, diesel::update(row).set(set).execute(tx).await)?,
            };
            if updated > 0 {
                return Ok(true);
            }
            let values = (leases::name.eq(&name), leases::holder.eq(&holder), leases::expires_at.eq(expires_at));
            let inserted =
                db!(tx, diesel::insert_into(leases::table).values(values).on_conflict_do_nothing().execute(tx).await)?;
            Ok(inserted > 0)
        })
        .await
}

/// Let go of those of `names` that `holder` holds (a clean stop, a job no longer wanted). Returns how many.
pub async fn release(store: &Store, names: &[String], holder: &str) -> StoreResult<usize> {
    let (names, holder) = (names.to_vec(), holder.to_owned());
    store
        .run(move |store| async move {
            if names.is_empty() {
                return Ok(0);
            }
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            let held = leases::table.filter(leases::name.eq_any(&names)).filter(leases::holder.eq(&holder));
            Ok(db!(tx, diesel::delete(held).execute(tx).await)?)
        })
        .await
}
