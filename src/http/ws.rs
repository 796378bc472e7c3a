//! `GET /api/v1/ws`: upgrade to the agent socket (protocol in `docs/realtime.md`). Authenticated
//! like every API call (session cookie or Bearer token); `?cursor=` resumes from a cursor.
//!
//! A socket signed in with the session cookie must come from the dashboard itself: its `Origin`
//! must be `public_url`'s origin or the origin the request was addressed to (its `Host`), else
//! 403 before the upgrade (issue #13: a foreign page could otherwise open a socket with the
//! agent's cookie and read their conversations). Browsers always send `Origin` on a socket, so
//! a cookie socket without one (or with `Origin: null`) is refused too; programs use a Bearer
//! token, which a foreign page cannot attach, and need no `Origin`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::State;
use super::error::{ApiError, ApiResult};
use crate::auth::{Credential, Principal};
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
    if matches!(p.credential, Credential::Session { .. }) && !same_origin(&req, &state.settings.public_url) {
        return Err(ApiError::Forbidden {
            code: "origin_not_allowed",
            message: "a socket signed in with the session cookie must come from the dashboard's own origin".into(),
        });
    }
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

/// Whether the request's `Origin` is `public_url`'s origin or the one named by its `Host`.
fn same_origin(req: &HttpRequest, public_url: &str) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // `null` and other opaque origins do not parse as URLs with a host: never allowed.
    let Ok(origin) = url::Url::parse(origin) else {
        return false;
    };
    let origin = origin.origin();
    if !origin.is_tuple() {
        return false;
    }
    if url::Url::parse(public_url).is_ok_and(|public| public.origin() == origin) {
        return true;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let scheme = match &origin {
        url::Origin::Tuple(scheme, ..) => scheme.as_str(),
        url::Origin::Opaque(_) => return false,
    };
    host.and_then(|h| url::Url::parse(&format!("{scheme}://{h}")).ok()).is_some_and(|own| own.origin() == origin)
}
