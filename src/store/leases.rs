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
use crate::db_run;

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
            Ok(db_run!(conn => leases::table
                .filter(leases::name.eq_any(&names))
                .select(Lease::as_select())
                .load(conn)
                .await)?)
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
            let updated = db_run!(conn => {
                let set = (leases::holder.eq(&holder), leases::expires_at.eq(expires_at));
                let row = leases::table.filter(leases::name.eq(&name));
                match how {
                    Take::IfFree { now } => {
                        diesel::update(row.filter(leases::holder.eq(&holder).or(leases::expires_at.le(now))))
                            .set(set)
                            .execute(conn)
                            .await
                    }
                    Take::Always => diesel::update(row).set(set).execute(conn).await,
                }
            })?;
            if updated > 0 {
                return Ok(true);
            }
            let inserted = db_run!(conn => diesel::insert_into(leases::table)
                .values((leases::name.eq(&name), leases::holder.eq(&holder), leases::expires_at.eq(expires_at)))
                .on_conflict_do_nothing()
                .execute(conn)
                .await)?;
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
            Ok(db_run!(conn => diesel::delete(
                leases::table.filter(leases::name.eq_any(&names)).filter(leases::holder.eq(&holder))
            )
            .execute(conn)
            .await)?)
        })
        .await
}
