//! Named counters (conversation numbers, round-robin turns) and values drawn once per database
//! (the deployment id, the secret key id).

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

/// The value of counter `name`, set to `value` by the first caller (later callers get that one).
pub(crate) async fn get_or_init(tx: &mut Tx<'_>, name: &str, value: i64) -> StoreResult<i64> {
    db!(
        tx,
        diesel::insert_into(counters::table)
            .values((counters::name.eq(name), counters::value.eq(value)))
            .on_conflict_do_nothing()
            .execute(tx)
            .await
    )?;
    Ok(db!(tx, counters::table.find(name).select(counters::value).first::<i64>(tx).await)?)
}
