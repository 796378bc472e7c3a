//! The HTTP edge: actix-web routes, request/response types (with the OpenAPI document), the
//! session and token checks, the static dashboard and the operations endpoints.
//!
//! Architecture invariant: handlers validate input into store/domain types, call the store and
//! turn rows into views; they hold no business rules beyond input validation and access checks.
//! Every route is listed in [`routes`].

pub mod body;
pub mod customer_session;
pub mod error;
pub mod handlers;
pub mod openapi;
pub mod routes;
pub mod session;
pub mod views;
pub mod web_assets;
pub mod ws;

use std::sync::Arc;

use actix_web::web;

use crate::blobs::Blobs;
use crate::config::Settings;
use crate::realtime::Realtime;
use crate::store::Store;
use crate::telemetry::Metrics;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub blobs: Blobs,
    pub metrics: Metrics,
    pub realtime: Realtime,
    /// The one door for changes (`changes`): commit, then publish.
    pub changes: crate::changes::Changes,
    /// The mailbox connectors of this node (reloaded when an email channel changes).
    pub mailboxes: crate::channels::email::mailbox::Mailboxes,
    /// The Mattermost bot connectors of this node (issue #15).
    pub bots: crate::channels::mattermost::connector::Bots,
    /// The Zalo OAs' webhook intake and jobs on this node (issue #16).
    pub zalo: crate::channels::zalo::connector::Zalo,
    /// API tokens' principals by token hash (see `store::cache`; filled by [`session`]).
    pub tokens: crate::store::cache::Cache<String, session::CachedToken>,
    /// Which conversation a custom channel's customer (`user_custom_id`) last wrote to, to pick
    /// the conversation actor without a read (see `handlers::custom_channels::inbound`).
    pub routes: crate::store::cache::Cache<(i64, String), (i64, i64)>,
    /// Failed sign-ins per account and per client address on this node (`auth::throttle`).
    pub login_throttle: Arc<crate::auth::throttle::LoginThrottle>,
    /// Failed portal sign-ins and "forgot password" requests per address and client (issue #18; the agents' limits,
    /// counted apart from theirs).
    pub portal_throttle: Arc<crate::auth::throttle::LoginThrottle>,
    /// Signs and checks the customer links (auto-login, rating, unsubscribe; issue #18).
    pub links: crate::portal::links::Links,
}

pub type State = web::Data<AppState>;

/// Middleware: a NUL character (`%00`) in a path or query is refused with 400 before any handler
/// sees it (PostgreSQL cannot store NUL, and no legitimate value carries one).
pub async fn reject_nul(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    let uri = req.uri().to_string();
    if uri.to_ascii_lowercase().contains("%00") {
        let err = error::ApiError::BadRequest {
            code: "invalid_query",
            message: "NUL characters are not allowed in URLs".into(),
        };
        let resp = actix_web::ResponseError::error_response(&err).map_into_right_body();
        return Ok(req.into_response(resp));
    }
    next.call(req).await.map(actix_web::dev::ServiceResponse::map_into_left_body)
}
