//! Customers, their identities (an external id on one channel instance; emails and phones that
//! are global) and their companies. Linking and merging live here (CC-5, CC-6, HD-1).
//!
//! Customers follow channel access (HD-3, DESIGN invariant 4). Every function an agent reaches
//! takes the caller's [`ChannelScope`]; a customer is *visible* in a scope when it has an identity
//! on a channel of the scope or a conversation (merged ones included) on one — a customer merged
//! away is visible when its survivor is. Everything else answers exactly like a missing customer:
//! [`StoreError::NotFound`] for the customer a route names, the "does not exist" reference error
//! for one a body names, and it is left out of searches, totals and company lists (done in SQL,
//! with `IN` subqueries on `customer_identities.channel_instance_id` and
//! `conversations.channel_instance_id`, so pages and totals agree). A visible customer's profile
//! shows its global identities (email, phone: they belong to the person, not to a channel) and
//! its external ids on channels of the scope only. An agent lists the companies that have a
//! customer visible to them. Admins have [`ChannelScope::All`]: no filter at all.

use diesel::dsl;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::audit::{self, Actor};
use super::models::{Company, Customer, Identity};
use super::schema::{audit_log, channel_instances, companies, conversations, customer_identities, customers};
use super::{Store, StoreError, StoreResult, Tx, now};
use crate::db;
use crate::domain::ChannelScope;

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// The filter "this `customers` row is visible to an agent limited to the channels `ids`": an
/// identity or a conversation on one of them, its own or its survivor's. For lists (search,
/// companies); [`find_visible_customer`] is the same rule for one customer.
#[diesel::dsl::auto_type(no_type_alias)]
fn customer_in_scope(ids: Vec<i64>) -> _ {
    let by_identity: dsl::EqAny<customer_identities::channel_instance_id, Vec<i64>> =
        customer_identities::channel_instance_id.eq_any(ids.clone());
    let by_conversation: dsl::EqAny<conversations::channel_instance_id, Vec<i64>> =
        conversations::channel_instance_id.eq_any(ids.clone());
    let survivor_by_identity: dsl::EqAny<customer_identities::channel_instance_id, Vec<i64>> =
        customer_identities::channel_instance_id.eq_any(ids.clone());
    let survivor_by_conversation: dsl::EqAny<conversations::channel_instance_id, Vec<i64>> =
        conversations::channel_instance_id.eq_any(ids);
    customers::id
        .eq_any(customer_identities::table.filter(by_identity).select(customer_identities::customer_id))
        .or(customers::id.eq_any(conversations::table.filter(by_conversation).select(conversations::customer_id)))
        .or(customers::merged_into_id.eq_any(
            customer_identities::table.filter(survivor_by_identity).select(customer_identities::customer_id.nullable()),
        ))
        .or(customers::merged_into_id.eq_any(
            conversations::table.filter(survivor_by_conversation).select(conversations::customer_id.nullable()),
        ))
}

/// Load one customer, or `None` when it is absent or not visible in the scope (`scope_ids` as
/// [`ChannelScope::ids`] gives it): the rule of [`customer_in_scope`], asked of this customer (and
/// its survivor) alone, so that one profile never costs a look at every customer of the agent's
/// channels.
pub(crate) async fn find_visible_customer(
    tx: &mut Tx<'_>,
    id: i64,
    scope_ids: &Option<Vec<i64>>,
) -> StoreResult<Option<Customer>> {
    let found: Option<Customer> =
        db!(tx, customers::table.find(id).select(Customer::as_select()).first(tx).await.optional())?;
    match (found, scope_ids) {
        (Some(customer), Some(ids)) => {
            let owners: Vec<i64> = std::iter::once(customer.id).chain(customer.merged_into_id).collect();
            let visible: bool = db!(
                tx,
                diesel::select(
                    diesel::dsl::exists(
                        customer_identities::table
                            .filter(customer_identities::customer_id.eq_any(&owners))
                            .filter(customer_identities::channel_instance_id.eq_any(ids)),
                    )
                    .or(diesel::dsl::exists(
                        conversations::table
                            .filter(conversations::customer_id.eq_any(&owners))
                            .filter(conversations::channel_instance_id.eq_any(ids)),
                    )),
                )
                .get_result(tx)
                .await
            )?;
            Ok(visible.then_some(customer))
        }
        (found, _) => Ok(found),
    }
}

/// The filter "this identity is shown in the scope `ids`": global (no channel) or on one of them.
#[diesel::dsl::auto_type(no_type_alias)]
fn identity_in_scope(ids: Vec<i64>) -> _ {
    customer_identities::channel_instance_id.is_null().or(customer_identities::channel_instance_id.eq_any(ids))
}

pub struct CustomerDetail {
    pub customer: Customer,
    /// In the caller's scope: global identities and those on channels of the scope.
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
    /// CU-1 profile fields (issue #18).
    pub department: Option<String>,
    pub location: Option<String>,
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

/// Customers visible in `scope` whose name or any identity shown in `scope` contains `q`
/// (case-insensitive); merged ones are left out. The total counts the same rows.
pub async fn search(
    store: &Store,
    q: Option<&str>,
    limit: i64,
    offset: i64,
    scope: &ChannelScope,
) -> StoreResult<(Vec<Customer>, i64)> {
    let pattern = q.map(like_pattern);
    let scope_ids = scope.ids();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            // One boxed query for the total, one for the page.
            Ok(db!(tx, {
                let filtered = || {
                    let mut query = customers::table.filter(customers::merged_into_id.is_null()).into_boxed();
                    if let Some(ids) = &scope_ids {
                        query = query.filter(customer_in_scope(ids.clone()));
                    }
                    if let Some(p) = &pattern {
                        let mut matching = customer_identities::table
                            .filter(lower(customer_identities::value).like(p.clone()).escape('\\'))
                            .select(customer_identities::customer_id)
                            .into_boxed();
                        if let Some(ids) = &scope_ids {
                            matching = matching.filter(identity_in_scope(ids.clone()));
                        }
                        query = query.filter(
                            lower(customers::name).like(p.clone()).escape('\\').or(customers::id.eq_any(matching)),
                        );
                    }
                    query
                };
                async {
                    let total: i64 = filtered().count().get_result(tx).await?;
                    let rows = filtered()
                        .select(Customer::as_select())
                        .order(customers::id.desc())
                        .limit(limit)
                        .offset(offset)
                        .load(tx)
                        .await?;
                    Ok::<_, diesel::result::Error>((rows, total))
                }
                .await
            })?)
        })
        .await
}

/// One customer's profile as `scope` sees it; `NotFound` when absent or not visible.
pub async fn get(store: &Store, id: i64, scope: &ChannelScope) -> StoreResult<CustomerDetail> {
    let scope_ids = scope.ids();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let customer = find_visible_customer(tx, id, &scope_ids).await?.ok_or(StoreError::NotFound)?;
            let identities: Vec<Identity> = db!(tx, {
                let mut identities = customer_identities::table
                    .filter(customer_identities::customer_id.eq(id))
                    .order(customer_identities::id)
                    .select(Identity::as_select())
                    .into_boxed();
                if let Some(ids) = &scope_ids {
                    identities = identities.filter(identity_in_scope(ids.clone()));
                }
                identities.load(tx).await
            })?;
            let company = match customer.company_id {
                Some(cid) => {
                    db!(tx, companies::table.find(cid).select(Company::as_select()).first(tx).await.optional())?
                }
                None => None,
            };
            Ok(CustomerDetail { customer, identities, company })
        })
        .await
}

/// Change a customer visible in `scope` (`NotFound` otherwise).
pub async fn update(
    store: &Store,
    id: i64,
    patch: CustomerPatch,
    scope: &ChannelScope,
    actor: Actor,
) -> StoreResult<Customer> {
    let scope_ids = scope.ids();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let before = find_visible_customer(tx, id, &scope_ids).await?.ok_or(StoreError::NotFound)?;
                let company_id = match &patch.company {
                    None => before.company_id,
                    Some(None) => None,
                    Some(Some(name)) => Some(find_or_create_company(tx, name, now()).await?),
                };
                let customer: Customer = db!(
                    tx,
                    diesel::update(customers::table.find(id))
                        .set((
                            customers::name.eq(patch.name.as_ref().unwrap_or(&before.name)),
                            customers::company_id.eq(company_id),
                            customers::owner_agent_id.eq(patch.owner_agent_id.unwrap_or(before.owner_agent_id)),
                            customers::notes.eq(patch.notes.as_ref().unwrap_or(&before.notes)),
                            customers::custom_fields.eq(patch.custom_fields.as_ref().unwrap_or(&before.custom_fields)),
                            customers::department.eq(patch.department.as_ref().unwrap_or(&before.department)),
                            customers::location.eq(patch.location.as_ref().unwrap_or(&before.location)),
                            customers::updated_at.eq(now()),
                        ))
                        .returning(Customer::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let entry = audit::entry(
                    actor,
                    "customer.update",
                    "customer",
                    Some(id),
                    json!({
                        "name": customer.name, "company_id": customer.company_id, "owner_agent_id": customer.owner_agent_id,
                        "department": customer.department, "location": customer.location
                    }),
                );
                db!(tx, diesel::insert_into(audit_log::table).values(&entry).execute(tx).await)?;
                Ok(customer)
            })
            .await
        })
        .await
}

/// An identity to link to a customer ([`add_identity`]).
pub struct NewIdentity<'a> {
    /// `email`, `phone` or `external`.
    pub kind: &'a str,
    /// The channel of an external id; `None` for the global ones (email, phone).
    pub channel_instance_id: Option<i64>,
    pub value: &'a str,
}

/// Link an identity to a customer visible in `scope` (`NotFound` otherwise). An external id
/// names a channel, which must be in `scope` (else it "does not exist"). An identity owned by
/// someone else is a conflict: merge the customers instead (the owner is named only when the
/// caller may see it; that the value is taken shows either way — it cannot be linked twice).
pub async fn add_identity(
    store: &Store,
    id: i64,
    new: NewIdentity<'_>,
    scope: &ChannelScope,
    actor: Actor,
) -> StoreResult<Identity> {
    let NewIdentity { kind, channel_instance_id, value } = new;
    let kind = kind.to_owned();
    let value = value.to_owned();
    let scope_ids = scope.ids();
    let channel_allowed = channel_instance_id.is_none_or(|ch| scope.allows(ch));
    store
        .run(move |store| async move {
            let (kind, value) = (kind.as_str(), value.as_str());
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let customer = find_visible_customer(tx, id, &scope_ids).await?.ok_or(StoreError::NotFound)?;
                if customer.merged_into_id.is_some() {
                    return Err(super::Violation::CustomerMerged { id }.into());
                }
                if let Some(ch) = channel_instance_id {
                    let no_channel = || StoreError::BadReference(format!("channel {ch} does not exist"));
                    if !channel_allowed {
                        return Err(no_channel());
                    }
                    db!(
                        tx,
                        channel_instances::table
                            .find(ch)
                            .select(channel_instances::id)
                            .first::<i64>(tx)
                            .await
                            .optional()
                    )?
                    .ok_or_else(no_channel)?;
                }
                let existing: Option<Identity> = db!(tx, {
                    let mut q = customer_identities::table
                        .filter(customer_identities::kind.eq(kind))
                        .filter(customer_identities::value.eq(value))
                        .select(Identity::as_select())
                        .into_boxed();
                    if let Some(ch) = channel_instance_id {
                        q = q.filter(customer_identities::channel_instance_id.eq(ch));
                    }
                    q.first(tx).await.optional()
                })?;
                if let Some(existing) = existing {
                    if existing.customer_id == id {
                        return Err(StoreError::Conflict(format!("this customer already has {kind} {value:?}")));
                    }
                    let owner_visible = find_visible_customer(tx, existing.customer_id, &scope_ids).await?.is_some();
                    return Err(StoreError::Conflict(if owner_visible {
                        format!("{kind} {value:?} belongs to customer {}", existing.customer_id)
                    } else {
                        format!("{kind} {value:?} belongs to another customer")
                    }));
                }
                let identity: Identity = db!(
                    tx,
                    diesel::insert_into(customer_identities::table)
                        .values((
                            customer_identities::customer_id.eq(id),
                            customer_identities::kind.eq(kind),
                            customer_identities::channel_instance_id.eq(channel_instance_id),
                            customer_identities::value.eq(value),
                            customer_identities::created_at.eq(now()),
                        ))
                        .returning(Identity::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let entry = audit::entry(
                    actor,
                    "customer.identity.add",
                    "customer",
                    Some(id),
                    json!({"kind": kind, "value": value, "channel_id": channel_instance_id}),
                );
                db!(tx, diesel::insert_into(audit_log::table).values(&entry).execute(tx).await)?;
                Ok(identity)
            })
            .await
        })
        .await
}

/// Unlink one identity of a customer visible in `scope`; `NotFound` when the customer is not
/// visible or the identity is not one its profile shows in `scope`.
pub async fn remove_identity(
    store: &Store,
    id: i64,
    identity_id: i64,
    scope: &ChannelScope,
    actor: Actor,
) -> StoreResult<()> {
    let scope_ids = scope.ids();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                find_visible_customer(tx, id, &scope_ids).await?.ok_or(StoreError::NotFound)?;
                let identity: Identity = db!(tx, {
                    let mut q = customer_identities::table
                        .find(identity_id)
                        .filter(customer_identities::customer_id.eq(id))
                        .select(Identity::as_select())
                        .into_boxed();
                    if let Some(ids) = &scope_ids {
                        q = q.filter(identity_in_scope(ids.clone()));
                    }
                    q.first(tx).await
                })?;
                db!(tx, diesel::delete(customer_identities::table.find(identity_id)).execute(tx).await)?;
                let entry = audit::entry(
                    actor,
                    "customer.identity.remove",
                    "customer",
                    Some(id),
                    json!({"kind": identity.kind, "value": identity.value}),
                );
                db!(tx, diesel::insert_into(audit_log::table).values(&entry).execute(tx).await)?;
                Ok(())
            })
            .await
        })
        .await
}

/// Merge customer `id` into `into`: identities and conversations move to the survivor, which
/// keeps its own profile; the merged customer stays as a pointer for old references (and the
/// customers merged into it earlier now point at the survivor too, so a pointer is one hop).
/// Both must be visible in `scope`: `id` is `NotFound` otherwise, `into` "does not exist".
pub async fn merge(store: &Store, id: i64, into: i64, scope: &ChannelScope, actor: Actor) -> StoreResult<Customer> {
    let scope_ids = scope.ids();
    store
        .run(move |store| async move {
            if id == into {
                return Err(super::Violation::CustomerSelfMerge.into());
            }
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let source = find_visible_customer(tx, id, &scope_ids).await?.ok_or(StoreError::NotFound)?;
                let target = find_visible_customer(tx, into, &scope_ids)
                    .await?
                    .ok_or_else(|| StoreError::BadReference(format!("customer {into} does not exist")))?;
                if source.merged_into_id.is_some() || target.merged_into_id.is_some() {
                    return Err(super::Violation::CustomerAlreadyMerged.into());
                }
                db!(
                    tx,
                    diesel::update(customer_identities::table.filter(customer_identities::customer_id.eq(id)))
                        .set(customer_identities::customer_id.eq(into))
                        .execute(tx)
                        .await
                )?;
                let moved = db!(
                    tx,
                    diesel::update(conversations::table.filter(conversations::customer_id.eq(id)))
                        .set(conversations::customer_id.eq(into))
                        .execute(tx)
                        .await
                )?;
                db!(
                    tx,
                    diesel::update(customers::table.filter(customers::merged_into_id.eq(id)))
                        .set(customers::merged_into_id.eq(into))
                        .execute(tx)
                        .await
                )?;
                db!(
                    tx,
                    diesel::update(customers::table.find(id))
                        .set((customers::merged_into_id.eq(into), customers::updated_at.eq(now())))
                        .execute(tx)
                        .await
                )?;
                let survivor: Customer = db!(
                    tx,
                    diesel::update(customers::table.find(into))
                        .set((
                            customers::company_id.eq(target.company_id.or(source.company_id)),
                            customers::owner_agent_id.eq(target.owner_agent_id.or(source.owner_agent_id)),
                            customers::updated_at.eq(now()),
                        ))
                        .returning(Customer::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let entry = audit::entry(
                    actor,
                    "customer.merge",
                    "customer",
                    Some(into),
                    json!({"merged": id, "conversations_moved": moved}),
                );
                db!(tx, diesel::insert_into(audit_log::table).values(&entry).execute(tx).await)?;
                Ok(survivor)
            })
            .await
        })
        .await
}

/// Companies by name; in a limited scope only those with a customer visible in it.
pub async fn list_companies(
    store: &Store,
    q: Option<&str>,
    limit: i64,
    scope: &ChannelScope,
) -> StoreResult<Vec<Company>> {
    let pattern = q.map(like_pattern);
    let scope_ids = scope.ids();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(tx, {
                let mut query = companies::table.select(Company::as_select()).into_boxed();
                if let Some(p) = &pattern {
                    query = query.filter(lower(companies::name).like(p.clone()).escape('\\'));
                }
                if let Some(ids) = &scope_ids {
                    query =
                        query.filter(companies::id.nullable().eq_any(
                            customers::table.filter(customer_in_scope(ids.clone())).select(customers::company_id),
                        ));
                }
                query.order(companies::name).limit(limit).load(tx).await
            })?)
        })
        .await
}

/// Find a company by name or create it; returns its id.
pub(crate) async fn find_or_create_company(tx: &mut Tx<'_>, name: &str, t: chrono::NaiveDateTime) -> StoreResult<i64> {
    let existing: Option<i64> =
        db!(tx, companies::table.filter(companies::name.eq(name)).select(companies::id).first(tx).await.optional())?;
    match existing {
        Some(id) => Ok(id),
        None => Ok(db!(
            tx,
            diesel::insert_into(companies::table)
                .values((companies::name.eq(name), companies::created_at.eq(t)))
                .returning(companies::id)
                .get_result::<i64>(tx)
                .await
        )?),
    }
}
