//! The one place errors become HTTP answers.
//!
//! Every failure reaches the client as `{"error": "<stable_snake_case_code>", "message": "<human
//! text>"}`. Client mistakes are 4xx with a code a program can branch on; anything unexpected is
//! a 500 `internal` whose details go to the log, never to the client.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`, `unauthorized`.
    #[schema(example = "validation_failed")]
    pub error: String,
    /// What went wrong, for people.
    #[schema(example = "name: must not be empty")]
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input: bad JSON, a wrong type, a missing or invalid field.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// No valid credentials.
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// Valid credentials, not allowed (role, CSRF).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    /// The change collides with existing data (a duplicate name, a status in use).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but a rule or a reference says no.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many attempts (failed sign-ins); answered with `Retry-After`.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    /// The database is overloaded or down; retry later.
    #[error("service temporarily unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn validation(message: impl Into<String>) -> Self {
        Self::BadRequest { code: "validation_failed", message: message.into() }
    }

    /// `field: problem`.
    pub fn field(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::validation(format!("{field}: {problem}"))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden { code: "forbidden", message: message.into() }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized { code: "unauthorized", message: message.into() }
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::Unprocessable { code, .. } => code,
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound("not found".into()),
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::BadReference(m) => Self::Unprocessable { code: "unknown_reference", message: m },
            // Every rule the store enforces is one code for clients; the text says which.
            StoreError::Rule(v) => Self::Unprocessable { code: "rule_violation", message: v.to_string() },
            StoreError::PoolTimeout(_) => Self::Unavailable(err.to_string()),
            other => Self::Internal(other.into()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            Self::Internal(source) => {
                tracing::error!(error = ?source, "internal error");
                "internal error; see the server log".to_owned()
            }
            Self::Unavailable(detail) => {
                tracing::warn!(%detail, "service unavailable");
                self.to_string()
            }
            other => other.to_string(),
        };
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unauthorized { .. }) {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Self::TooManyRequests { retry_after_secs, .. } = self {
            resp.insert_header((actix_web::http::header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        resp.json(ErrorBody { error: self.code().to_owned(), message })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Violation;
    use actix_web::body::MessageBody;

    fn body(err: ApiError) -> (u16, serde_json::Value) {
        let resp = err.error_response();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().try_into_bytes().unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn errors_have_a_stable_shape() {
        assert_eq!(
            body(ApiError::field("name", "must not be empty")),
            (400, serde_json::json!({"error": "validation_failed", "message": "name: must not be empty"}))
        );
        assert_eq!(body(StoreError::NotFound.into()).0, 404);
        assert_eq!(body(StoreError::Conflict("x".into()).into()).1["error"], "conflict");
        assert_eq!(
            body(StoreError::BadReference("team 9 does not exist".into()).into()).1["error"],
            "unknown_reference"
        );
        assert_eq!(
            body(StoreError::from(Violation::NoChannelAccess { agent_id: 7 }).into()),
            (
                422,
                serde_json::json!({"error": "rule_violation", "message": "agent 7 has no access to this conversation's channel"})
            )
        );
        assert_eq!(
            body(StoreError::from(Violation::ChannelDisabled { channel_id: 3 }).into()).1["error"],
            "rule_violation"
        );
        let throttled = ApiError::TooManyRequests { message: "wait".into(), retry_after_secs: 42 };
        assert_eq!(throttled.error_response().headers().get("retry-after").unwrap(), "42");
        assert_eq!(body(throttled).1["error"], "too_many_requests");
    }

    /// The database's own words (table, column and constraint names, values, connection
    /// details) never reach a client, whatever the error (#14 item 6).
    #[test]
    fn database_errors_do_not_leak_details() {
        use diesel::result::{DatabaseErrorKind, Error as DieselError};
        let db = |kind, text: &str| StoreError::from(DieselError::DatabaseError(kind, Box::new(text.to_owned())));
        let cases = [
            (db(DatabaseErrorKind::UniqueViolation, "UNIQUE constraint failed: agents.email"), 409, "conflict"),
            (
                db(DatabaseErrorKind::ForeignKeyViolation, "insert on table \"messages\" violates fk_messages_secret"),
                422,
                "unknown_reference",
            ),
            (
                db(DatabaseErrorKind::Unknown, "relation \"agents\" does not exist at postgres://u:pw@db"),
                500,
                "internal",
            ),
            (StoreError::Db(DieselError::QueryBuilderError("SELECT secret FROM agents".into())), 500, "internal"),
            (StoreError::Pool("connection to postgres://u:pw@db refused".into()), 500, "internal"),
            (StoreError::BadData { what: "mode", value: "chatty".into() }, 500, "internal"),
            // A damaged enumerated value, as diesel reports it when a row is read (#14 item 6).
            (
                StoreError::from(DieselError::DeserializationError(Box::new(crate::domain::kinds::BadStoredValue {
                    what: "Mode",
                    value: "chatty".into(),
                }))),
                500,
                "internal",
            ),
            (StoreError::from(DieselError::DeserializationError("bad UNIQUE agents row".into())), 500, "internal"),
        ];
        for (err, status, code) in cases {
            let (got_status, json) = body(err.into());
            assert_eq!((got_status, json["error"].as_str().unwrap()), (status, code));
            let message = json["message"].as_str().unwrap();
            for secret in ["agents", "messages", "fk_", "postgres", "pw@", "SELECT", "chatty", "UNIQUE"] {
                assert!(!message.contains(secret), "{message:?} leaks {secret:?}");
            }
        }
    }

    #[test]
    fn internal_errors_do_not_leak_details() {
        let (status, json) = body(ApiError::internal(anyhow::anyhow!("password=hunter2 in connection string")));
        assert_eq!(status, 500);
        assert_eq!(json["error"], "internal");
        assert!(!json["message"].as_str().unwrap().contains("hunter2"));
    }
}
