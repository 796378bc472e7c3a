//! Named counters (conversation numbers, round-robin turns).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::counters;
use super::{Store, StoreResult};
use crate::db_run;

/// Add one to the counter `name` (created at 0) and return the new value.
pub async fn next(store: &Store, name: &str) -> StoreResult<i64> {
    let name = name.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            Ok(db_run!(conn => {
                diesel::insert_into(counters::table)
                    .values((counters::name.eq(&name), counters::value.eq(0i64)))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                diesel::update(counters::table.find(&name))
                    .set(counters::value.eq(counters::value + 1))
                    .returning(counters::value)
                    .get_result::<i64>(conn)
                    .await
            })?)
        })
        .await
}
