//! Operations endpoints: liveness, readiness, Prometheus metrics. Health is unauthenticated by
//! design (it reveals nothing but health). `/metrics` reveals traffic and may be closed: with
//! `metrics_token` it needs `Authorization: Bearer <token>`; with `metrics_bind` it is served
//! only on that listener ([`MetricsListener`]) and is 404 on the main one.

use actix_web::HttpResponse;
use serde_json::json;

use crate::http::State;

/// The process is up and answering.
#[utoipa::path(get, operation_id = "ops_healthz", path = "/healthz", tag = "operations", security(), responses((status = 200, description = "up")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers and every migration is applied.
#[utoipa::path(get, operation_id = "ops_readyz", path = "/readyz", tag = "operations", security(),
    responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
pub async fn readyz(state: State) -> HttpResponse {
    match state.store.is_ready().await {
        Ok(true) => HttpResponse::Ok().json(json!({"status": "ready", "database": state.store.backend_name()})),
        Ok(false) => HttpResponse::ServiceUnavailable().json(json!({"status": "migrations pending"})),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(json!({"status": "database unreachable"}))
        }
    }
}

/// Marks the app of the `metrics_bind` listener (see `server::start`).
pub struct MetricsListener;

/// Prometheus text format.
#[utoipa::path(get, operation_id = "ops_metrics", path = "/metrics", tag = "operations", security(), responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(state: State, req: actix_web::HttpRequest) -> Result<HttpResponse, crate::http::error::ApiError> {
    use crate::http::error::ApiError;
    if state.settings.metrics_bind.is_some() && req.app_data::<MetricsListener>().is_none() {
        return Err(ApiError::NotFound("no such endpoint".into()));
    }
    if let Some(token) = &state.settings.metrics_token {
        let sent = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::auth::secrets_equal(sent.trim(), token.expose()) {
            return Err(ApiError::unauthorized("/metrics needs `Authorization: Bearer <metrics token>`"));
        }
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render()))
}

/// Unknown API paths answer in the API's error shape.
pub async fn api_not_found() -> Result<HttpResponse, crate::http::error::ApiError> {
    Err(crate::http::error::ApiError::NotFound("no such endpoint".into()))
}
