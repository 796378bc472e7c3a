//! Named counters (conversation numbers, round-robin turns).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::counters;
use super::{StoreResult, Tx};
use crate::db;

/// Add one to the counter `name` (created at 0) inside a transaction; returns the new value.
pub(crate) async fn next(tx: &mut Tx<'_>, name: &str) -> StoreResult<i64> {
    db!(
        tx,
        diesel::insert_into(counters::table)
            .values((counters::name.eq(name), counters::value.eq(0i64)))
            .on_conflict_do_nothing()
            .execute(tx)
            .await
    )?;
    let value = db!(
        tx,
        diesel::update(counters::table.find(name))
            .set(counters::value.eq(counters::value + 1))
            .returning(counters::value)
            .get_result(tx)
            .await
    )?;
    Ok(value)
}
