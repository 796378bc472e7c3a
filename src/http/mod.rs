//! The HTTP edge: actix-web routes, request/response types (with the OpenAPI document), the
//! session and token checks, the static dashboard and the operations endpoints.
//!
//! Architecture invariant: handlers validate input into store/domain types, call the store and
//! turn rows into views; they hold no business rules beyond input validation and access checks.
//! Every route is listed in [`routes`].

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
}

pub type State = web::Data<AppState>;
