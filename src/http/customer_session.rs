//! Finding the customer of a portal request (issue #18, CU-3): the `sb_customer` cookie of a portal session
//! (`store::portal`), and for state-changing requests its own CSRF token in `X-CSRF-Token`.
//!
//! A different principal from an agent: only this cookie is read — an agent's session cookie or API token is never
//! accepted here (a request carrying `Authorization` is refused outright), and `http::session` never reads this
//! cookie, so no agent route or the agent socket accepts a customer.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::error::ApiError;
use crate::auth::secret_hash;
use crate::store;

/// The name of the portal's session cookie (never the dashboard's `sb_session`).
pub const CUSTOMER_COOKIE: &str = "sb_customer";

/// A signed-in customer.
#[derive(Debug, Clone)]
pub struct CustomerPrincipal {
    pub customer_id: i64,
    pub name: String,
    /// The SHA-256 of the session's token (sign-out ends it).
    pub token_hash: String,
    pub csrf_token: String,
}

impl FromRequest for CustomerPrincipal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

async fn authenticate(req: &HttpRequest) -> Result<CustomerPrincipal, ApiError> {
    let state = super::session::state(req)?;
    if req.headers().contains_key(actix_web::http::header::AUTHORIZATION) {
        return Err(ApiError::unauthorized("the portal takes a customer's sign-in, not an API token"));
    }
    let cookie = req.cookie(CUSTOMER_COOKIE).ok_or_else(|| ApiError::unauthorized("sign in to the portal"))?;
    let token_hash = secret_hash(cookie.value());
    let (session, customer) = store::portal::session(&state.store, token_hash.clone())
        .await?
        .ok_or_else(|| ApiError::unauthorized("session expired; sign in again"))?;
    super::session::check_csrf(req, &session.csrf_token)?;
    Ok(CustomerPrincipal { customer_id: customer.id, name: customer.name, token_hash, csrf_token: session.csrf_token })
}
