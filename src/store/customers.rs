//! Customers, their identities (an external id on one channel instance; emails and phones that
//! are global) and their companies. Linking and merging live here (CC-5, CC-6, HD-1).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::audit::{self, Actor};
use super::models::{Company, Customer, Identity};
use super::schema::{audit_log, channel_instances, companies, conversations, customer_identities, customers};
use super::{Store, StoreError, StoreResult, now};
use crate::{db_run, db_tx};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

pub struct CustomerDetail {
    pub customer: Customer,
    pub identities: Vec<Identity>,
    pub company: Option<Company>,
}

#[derive(Default)]
pub struct CustomerPatch {
    pub name: Option<String>,
    /// `Some(None)` removes the company; `Some(Some(name))` links (creating it if new).
    pub company: Option<Option<String>>,
    pub owner_agent_id: Option<Option<i64>>,
    pub notes: Option<String>,
    pub custom_fields: Option<String>,
}

/// Escape `%`, `_` and `\` for a LIKE pattern (used with `ESCAPE '\'`).
pub(crate) fn like_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Customers whose name or any identity contains `q` (case-insensitive); merged ones are left out.
pub async fn search(store: &Store, q: Option<&str>, limit: i64, offset: i64) -> StoreResult<(Vec<Customer>, i64)> {
    let q = q.map(str::to_owned);
    store
        .run(move |store| async move {
            let store = &store;
            let q: Option<&str> = q.as_deref();
            let pattern = q.map(like_pattern);
            let mut conn = store.read().await?;
            Ok(db_run!(conn => {
                macro_rules! filtered {
                    () => {{
                        let mut query = customers::table.filter(customers::merged_into_id.is_null()).into_boxed();
                        if let Some(p) = &pattern {
                            query = query.filter(
                                lower(customers::name).like(p.clone()).escape('\\').or(customers::id.eq_any(
                                    customer_identities::table
                                        .filter(lower(customer_identities::value).like(p.clone()).escape('\\'))
                                        .select(customer_identities::customer_id),
                                )),
                            );
                        }
                        query
                    }};
                }
                let total: i64 = filtered!().count().get_result(conn).await?;
                let rows = filtered!()
                    .select(Customer::as_select())
                    .order(customers::id.desc())
                    .limit(limit)
                    .offset(offset)
                    .load(conn)
                    .await?;
                Ok::<_, diesel::result::Error>((rows, total))
            })?)
        })
        .await
}

pub async fn get(store: &Store, id: i64) -> StoreResult<CustomerDetail> {
    store
        .run(move |store| async move {
            let store = &store;
            let mut conn = store.read().await?;
            Ok(db_run!(conn => {
                let customer: Customer = customers::table.find(id).select(Customer::as_select()).first(conn).await?;
                let identities = customer_identities::table
                    .filter(customer_identities::customer_id.eq(id))
                    .order(customer_identities::id)
                    .select(Identity::as_select())
                    .load(conn)
                    .await?;
                let company = match customer.company_id {
                    Some(cid) => companies::table.find(cid).select(Company::as_select()).first(conn).await.optional()?,
                    None => None,
                };
                Ok::<_, diesel::result::Error>(CustomerDetail { customer, identities, company })
            })?)
        })
        .await
}

pub async fn update(store: &Store, id: i64, patch: CustomerPatch, actor: Actor) -> StoreResult<Customer> {
    store.run(move |store| async move {
        let store = &store;
        let mut conn = store.write().await?;
        db_tx!(conn => {
            let before: Customer = customers::table.find(id).select(Customer::as_select()).first(conn).await?;
            let company_id = match &patch.company {
                None => before.company_id,
                Some(None) => None,
                Some(Some(name)) => {
                    let existing: Option<i64> = companies::table
                        .filter(companies::name.eq(name))
                        .select(companies::id)
                        .first(conn)
                        .await
                        .optional()?;
                    match existing {
                        Some(cid) => Some(cid),
                        None => Some(
                            diesel::insert_into(companies::table)
                                .values((companies::name.eq(name), companies::created_at.eq(now())))
                                .returning(companies::id)
                                .get_result::<i64>(conn)
                                .await?,
                        ),
                    }
                }
            };
            let customer: Customer = diesel::update(customers::table.find(id))
                .set((
                    customers::name.eq(patch.name.as_ref().unwrap_or(&before.name)),
                    customers::company_id.eq(company_id),
                    customers::owner_agent_id.eq(patch.owner_agent_id.unwrap_or(before.owner_agent_id)),
                    customers::notes.eq(patch.notes.as_ref().unwrap_or(&before.notes)),
                    customers::custom_fields.eq(patch.custom_fields.as_ref().unwrap_or(&before.custom_fields)),
                    customers::updated_at.eq(now()),
                ))
                .returning(Customer::as_returning())
                .get_result(conn)
                .await?;
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "customer.update", "customer", Some(id), json!({
                    "name": customer.name, "company_id": customer.company_id, "owner_agent_id": customer.owner_agent_id
                })))
                .execute(conn)
                .await?;
            Ok(customer)
        })
    })
    .await
}

/// Link an identity to a customer. An identity owned by someone else is a conflict: merge the
/// customers instead.
pub async fn add_identity(
    store: &Store,
    id: i64,
    kind: &str,
    channel_instance_id: Option<i64>,
    value: &str,
    actor: Actor,
) -> StoreResult<Identity> {
    let kind = kind.to_owned();
    let value = value.to_owned();
    store.run(move |store| async move {
        let store = &store;
        let kind: &str = &kind;
        let value: &str = &value;
        let mut conn = store.write().await?;
        db_tx!(conn => {
            let customer: Customer = customers::table.find(id).select(Customer::as_select()).first(conn).await?;
            if customer.merged_into_id.is_some() {
                return Err(StoreError::Rule(format!("customer {id} was merged into another customer")));
            }
            if let Some(ch) = channel_instance_id {
                channel_instances::table.find(ch).select(channel_instances::id).first::<i64>(conn).await
                    .optional()?
                    .ok_or_else(|| StoreError::BadReference(format!("channel {ch} does not exist")))?;
            }
            let mut q = customer_identities::table
                .filter(customer_identities::kind.eq(kind))
                .filter(customer_identities::value.eq(value))
                .select(Identity::as_select())
                .into_boxed();
            if let Some(ch) = channel_instance_id {
                q = q.filter(customer_identities::channel_instance_id.eq(ch));
            }
            if let Some(existing) = q.first(conn).await.optional()? {
                return Err(if existing.customer_id == id {
                    StoreError::Conflict(format!("this customer already has {kind} {value:?}"))
                } else {
                    StoreError::Conflict(format!("{kind} {value:?} belongs to customer {}", existing.customer_id))
                });
            }
            let identity: Identity = diesel::insert_into(customer_identities::table)
                .values((
                    customer_identities::customer_id.eq(id),
                    customer_identities::kind.eq(kind),
                    customer_identities::channel_instance_id.eq(channel_instance_id),
                    customer_identities::value.eq(value),
                    customer_identities::created_at.eq(now()),
                ))
                .returning(Identity::as_returning())
                .get_result(conn)
                .await?;
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "customer.identity.add", "customer", Some(id), json!({"kind": kind, "value": value, "channel_id": channel_instance_id})))
                .execute(conn)
                .await?;
            Ok(identity)
        })
    })
    .await
}

pub async fn remove_identity(store: &Store, id: i64, identity_id: i64, actor: Actor) -> StoreResult<()> {
    store.run(move |store| async move {
        let store = &store;
        let mut conn = store.write().await?;
        db_tx!(conn => {
            let identity: Identity = customer_identities::table
                .find(identity_id)
                .filter(customer_identities::customer_id.eq(id))
                .select(Identity::as_select())
                .first(conn)
                .await?;
            diesel::delete(customer_identities::table.find(identity_id)).execute(conn).await?;
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "customer.identity.remove", "customer", Some(id), json!({"kind": identity.kind, "value": identity.value})))
                .execute(conn)
                .await?;
            Ok(())
        })
    })
    .await
}

/// Merge customer `id` into `into`: identities and conversations move to the survivor, which
/// keeps its own profile; the merged customer stays as a pointer for old references.
pub async fn merge(store: &Store, id: i64, into: i64, actor: Actor) -> StoreResult<Customer> {
    store.run(move |store| async move {
        let store = &store;
        if id == into {
            return Err(StoreError::Rule(
                "a customer cannot be merged into itself".into(),
            ));
        }
        let mut conn = store.write().await?;
        db_tx!(conn => {
            let source: Customer = customers::table.find(id).select(Customer::as_select()).first(conn).await?;
            let target: Customer = customers::table.find(into).select(Customer::as_select()).first(conn).await
                .optional()?
                .ok_or_else(|| StoreError::BadReference(format!("customer {into} does not exist")))?;
            if source.merged_into_id.is_some() || target.merged_into_id.is_some() {
                return Err(StoreError::Rule("one of these customers was already merged".into()));
            }
            diesel::update(customer_identities::table.filter(customer_identities::customer_id.eq(id)))
                .set(customer_identities::customer_id.eq(into))
                .execute(conn)
                .await?;
            let moved = diesel::update(conversations::table.filter(conversations::customer_id.eq(id)))
                .set(conversations::customer_id.eq(into))
                .execute(conn)
                .await?;
            diesel::update(customers::table.find(id))
                .set((customers::merged_into_id.eq(into), customers::updated_at.eq(now())))
                .execute(conn)
                .await?;
            let survivor: Customer = diesel::update(customers::table.find(into))
                .set((
                    customers::company_id.eq(target.company_id.or(source.company_id)),
                    customers::owner_agent_id.eq(target.owner_agent_id.or(source.owner_agent_id)),
                    customers::updated_at.eq(now()),
                ))
                .returning(Customer::as_returning())
                .get_result(conn)
                .await?;
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "customer.merge", "customer", Some(into), json!({"merged": id, "conversations_moved": moved})))
                .execute(conn)
                .await?;
            Ok(survivor)
        })
    })
    .await
}

pub async fn list_companies(store: &Store, q: Option<&str>, limit: i64) -> StoreResult<Vec<Company>> {
    let q = q.map(str::to_owned);
    store
        .run(move |store| async move {
            let store = &store;
            let q: Option<&str> = q.as_deref();
            let pattern = q.map(like_pattern);
            let mut conn = store.read().await?;
            Ok(db_run!(conn => {
                let mut query = companies::table.select(Company::as_select()).into_boxed();
                if let Some(p) = pattern {
                    query = query.filter(lower(companies::name).like(p).escape('\\'));
                }
                query.order(companies::name).limit(limit).load(conn).await
            })?)
        })
        .await
}
