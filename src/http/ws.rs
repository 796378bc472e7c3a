//! `GET /api/v1/ws`: upgrade to the agent socket (protocol in `docs/realtime.md`). Authenticated
//! like every API call (session cookie or Bearer token); `?cursor=` resumes from a cursor.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::State;
use super::error::{ApiError, ApiResult};
use crate::auth::Principal;
use crate::realtime::cursor::Cursor;

#[derive(Debug, Deserialize)]
pub struct WsQuery {
    pub cursor: Option<String>,
}

pub async fn connect(
    state: State,
    p: Principal,
    req: HttpRequest,
    body: web::Payload,
    q: web::Query<WsQuery>,
) -> ApiResult<HttpResponse> {
    let resume = match q.cursor.as_deref() {
        Some(c) => Some(Cursor::decode(c).map_err(|_| ApiError::field("cursor", "malformed cursor"))?),
        None => None,
    };
    let (response, session, stream) = actix_ws::handle(&req, body).map_err(|e| ApiError::BadRequest {
        code: "not_a_websocket",
        message: format!("this endpoint speaks WebSocket: {e}"),
    })?;
    let rt = state.realtime.clone();
    // actix-ws sessions live on this worker's thread.
    actix_web::rt::spawn(crate::realtime::session::run(rt, p, session, stream, resume));
    Ok(response)
}
