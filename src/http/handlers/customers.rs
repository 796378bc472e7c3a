//! Customers: search, profile, identities (link / unlink), merge, and companies (HD-1, CC-5, CC-6).
//!
//! Customers follow channel access (HD-3, DESIGN invariant 4; the rule is `store::customers`'):
//! an agent reaches only customers with an identity or a conversation on a channel they were
//! given. Any other customer answers exactly like a missing one — 404 `not_found` when the path
//! names it, 422 `unknown_reference` when a body does (the merge target, a conversation's
//! `customer_id`) — and is left out of searches, totals and company lists. A profile shows the
//! customer's emails and phones (global: they belong to the person) and only the external ids
//! of channels the caller may see. Admins see every customer.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{actor, name_field, nullable, paging};
use crate::auth::Principal;
use crate::domain::text::{normalize_email, normalize_phone};
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::views::{CompanyView, CustomerPage, CustomerSummary, CustomerView, IdentityView};
use crate::store;

#[derive(Debug, Deserialize, IntoParams)]
pub struct CustomerQuery {
    /// Matches name, email, phone or external id (case-insensitive, substring).
    pub q: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomerRequest {
    pub name: Option<String>,
    /// Company name (created if new), or null to remove.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub company: Option<Option<String>>,
    /// The agent who owns this customer (routing to the owner, CC-12), or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable)]
    pub owner_agent_id: Option<Option<i64>>,
    pub notes: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Map<String, Value>>,
    /// CU-1 profile field (`#Department#` in templates); empty to clear. At most 200 characters.
    pub department: Option<String>,
    /// CU-1 profile field (`#Location#` in templates); empty to clear. At most 200 characters.
    pub location: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddIdentityRequest {
    /// `email`, `phone` or `external`.
    pub kind: String,
    pub value: String,
    /// Required for `external`: the channel instance the id belongs to.
    pub channel_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeCustomerRequest {
    /// The customer that survives.
    pub into: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CompanyQuery {
    pub q: Option<String>,
}

#[utoipa::path(get, operation_id = "customers_search", path = "/api/v1/customers", tag = "customers", params(CustomerQuery), responses((status = 200, body = CustomerPage)))]
pub async fn search(state: State, p: Principal, q: web::Query<CustomerQuery>) -> ApiResult<web::Json<CustomerPage>> {
    let (page, per_page, offset) = paging(q.page, q.per_page, 25)?;
    let text = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if text.is_some_and(|t| t.chars().count() > 200) {
        return Err(ApiError::field("q", "must be at most 200 characters"));
    }
    let (rows, total) = store::customers::search(&state.store, text, per_page, offset, &p.scope).await?;
    Ok(web::Json(CustomerPage { items: rows.into_iter().map(CustomerSummary::from).collect(), total, page, per_page }))
}

#[utoipa::path(get, operation_id = "customers_get", path = "/api/v1/customers/{id}", tag = "customers", params(("id" = i64, Path)),
    responses((status = 200, body = CustomerView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get(state: State, p: Principal, id: web::Path<i64>) -> ApiResult<web::Json<CustomerView>> {
    Ok(web::Json(store::customers::get(&state.store, *id, &p.scope).await?.into()))
}

#[utoipa::path(patch, operation_id = "customers_update", path = "/api/v1/customers/{id}", tag = "customers", params(("id" = i64, Path)), request_body = UpdateCustomerRequest,
    responses((status = 200, body = CustomerView), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn update(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    body: crate::http::body::Body<UpdateCustomerRequest>,
) -> ApiResult<web::Json<CustomerView>> {
    let body = body.into_inner();
    let name = match body.name.as_deref() {
        Some(n) => Some(name_field("name", n, 200)?),
        None => None,
    };
    let company = match body.company {
        Some(Some(c)) => Some(Some(name_field("company", &c, 200)?)),
        other => other,
    };
    if let Some(n) = &body.notes
        && n.chars().count() > 10_000
    {
        return Err(ApiError::field("notes", "must be at most 10000 characters"));
    }
    if let Some(Some(owner)) = body.owner_agent_id {
        store::agents::get(&state.store, owner).await.map_err(|e| match e {
            store::StoreError::NotFound => {
                ApiError::Unprocessable { code: "unknown_reference", message: format!("agent {owner} does not exist") }
            }
            other => other.into(),
        })?;
    }
    if let Some(fields) = &body.custom_fields {
        if fields.len() > 100 {
            return Err(ApiError::field("custom_fields", "at most 100 fields"));
        }
        if let Some(bad) = fields.keys().find(|k| !crate::domain::text::is_valid_key(k)) {
            return Err(ApiError::field("custom_fields", format!("{bad:?} is not a valid field name (a-z, 0-9, _)")));
        }
        if serde_json::to_string(fields).map(|s| s.len()).unwrap_or(0) > 64 * 1024 {
            return Err(ApiError::field("custom_fields", "too large"));
        }
    }
    let custom_fields = match body.custom_fields {
        Some(f) => Some(serde_json::to_string(&f).map_err(ApiError::internal)?),
        None => None,
    };
    let profile_field = |field: &'static str, v: Option<String>| -> ApiResult<Option<String>> {
        match v {
            Some(v) if v.chars().count() > 200 || v.chars().any(char::is_control) => {
                Err(ApiError::field(field, "must be at most 200 characters, on one line"))
            }
            other => Ok(other.map(|v| v.trim().to_owned())),
        }
    };
    let patch = store::customers::CustomerPatch {
        name,
        company,
        owner_agent_id: body.owner_agent_id,
        notes: body.notes,
        custom_fields,
        department: profile_field("department", body.department)?,
        location: profile_field("location", body.location)?,
    };
    store::customers::update(&state.store, *id, patch, &p.scope, actor(&p)).await?;
    Ok(web::Json(store::customers::get(&state.store, *id, &p.scope).await?.into()))
}

/// Link an email, phone or external id to this customer. One that belongs to someone else is a 409: merge instead.
#[utoipa::path(post, operation_id = "customers_add_identity", path = "/api/v1/customers/{id}/identities", tag = "customers", params(("id" = i64, Path)), request_body = AddIdentityRequest,
    responses((status = 201, body = IdentityView), (status = 404, body = crate::http::error::ErrorBody), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn add_identity(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    body: crate::http::body::Body<AddIdentityRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let (kind, value, channel) = match body.kind.as_str() {
        "email" => (
            "email",
            normalize_email(&body.value).ok_or_else(|| ApiError::field("value", "is not a valid email address"))?,
            None,
        ),
        "phone" => (
            "phone",
            normalize_phone(&body.value).ok_or_else(|| ApiError::field("value", "is not a valid phone number"))?,
            None,
        ),
        "external" => {
            // A channel out of the caller's scope "does not exist" (checked by the store).
            let channel =
                body.channel_id.ok_or_else(|| ApiError::field("channel_id", "is required for an external id"))?;
            let v = body.value.trim();
            if v.is_empty() || v.len() > 255 {
                return Err(ApiError::field("value", "must be 1–255 characters"));
            }
            ("external", v.to_owned(), Some(channel))
        }
        _ => {
            return Err(ApiError::field("kind", "must be one of: email, phone, external"));
        }
    };
    if kind != "external" && body.channel_id.is_some() {
        return Err(ApiError::field("channel_id", "only external ids belong to a channel"));
    }
    let new = store::customers::NewIdentity { kind, channel_instance_id: channel, value: &value };
    let identity = store::customers::add_identity(&state.store, *id, new, &p.scope, actor(&p)).await?;
    Ok(HttpResponse::Created().json(IdentityView::from(identity)))
}

#[utoipa::path(delete, operation_id = "customers_remove_identity", path = "/api/v1/customers/{id}/identities/{identity_id}", tag = "customers",
    params(("id" = i64, Path), ("identity_id" = i64, Path)), responses((status = 204), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn remove_identity(state: State, p: Principal, path: web::Path<(i64, i64)>) -> ApiResult<HttpResponse> {
    let (id, identity_id) = path.into_inner();
    store::customers::remove_identity(&state.store, id, identity_id, &p.scope, actor(&p)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Merge this customer into another: identities and conversations move to the survivor. Both
/// must be customers the caller may see.
#[utoipa::path(post, operation_id = "customers_merge", path = "/api/v1/customers/{id}/merge", tag = "customers", params(("id" = i64, Path)), request_body = MergeCustomerRequest,
    responses((status = 200, body = CustomerView), (status = 404, body = crate::http::error::ErrorBody), (status = 422, body = crate::http::error::ErrorBody)))]
pub async fn merge(
    state: State,
    p: Principal,
    id: web::Path<i64>,
    body: crate::http::body::Body<MergeCustomerRequest>,
) -> ApiResult<web::Json<CustomerView>> {
    let survivor = store::customers::merge(&state.store, *id, body.into, &p.scope, actor(&p)).await?;
    Ok(web::Json(store::customers::get(&state.store, survivor.id, &p.scope).await?.into()))
}

/// The customer's conversations across all channels the caller may see (HD-1).
#[utoipa::path(get, operation_id = "customers_conversations", path = "/api/v1/customers/{id}/conversations", tag = "customers", params(("id" = i64, Path)),
    responses((status = 200, body = crate::http::views::ConversationPage), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn conversations(
    state: State,
    p: Principal,
    id: web::Path<i64>,
) -> ApiResult<web::Json<crate::http::views::ConversationPage>> {
    store::customers::get(&state.store, *id, &p.scope).await?;
    let filter = store::conversations::ConversationFilter {
        customer_id: Some(*id),
        show_active_chats: true,
        include_merged: false,
        limit: 100,
        ..Default::default()
    };
    let (rows, total) = store::conversations::list(&state.store, &filter, &p.scope).await?;
    Ok(web::Json(crate::http::views::ConversationPage {
        items: rows.into_iter().map(Into::into).collect(),
        total,
        page: 1,
        per_page: 100,
    }))
}

/// Companies by name; an agent sees those with a customer they may see.
#[utoipa::path(get, operation_id = "customers_companies", path = "/api/v1/companies", tag = "customers", params(CompanyQuery), responses((status = 200, body = [CompanyView])))]
pub async fn companies(
    state: State,
    p: Principal,
    q: web::Query<CompanyQuery>,
) -> ApiResult<web::Json<Vec<CompanyView>>> {
    let text = q.q.as_deref().filter(|s| !s.trim().is_empty());
    let rows = store::customers::list_companies(&state.store, text, 100, &p.scope).await?;
    Ok(web::Json(rows.into_iter().map(CompanyView::from).collect()))
}
