//! Named counters (conversation numbers, round-robin turns).

/// Add one to the counter `$name` (created at 0) inside a transaction; evaluates to the new value.
macro_rules! next_in {
    ($conn:ident, $name:expr) => {{
        let name: &str = $name;
        diesel::insert_into($crate::store::schema::counters::table)
            .values(($crate::store::schema::counters::name.eq(name), $crate::store::schema::counters::value.eq(0i64)))
            .on_conflict_do_nothing()
            .execute($conn)
            .await?;
        let value: i64 = diesel::update($crate::store::schema::counters::table.find(name))
            .set($crate::store::schema::counters::value.eq($crate::store::schema::counters::value + 1))
            .returning($crate::store::schema::counters::value)
            .get_result($conn)
            .await?;
        value
    }};
}
pub(crate) use next_in;
