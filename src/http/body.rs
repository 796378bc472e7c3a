//! [`Body`]: the JSON request body extractor every handler uses instead of `web::Json`.
//!
//! On top of actix's JSON limits and content-type check (mapped to our errors by the
//! `JsonConfig` in `routes`), it refuses what serde would otherwise accept silently: a JSON
//! array where an object is expected (serde reads structs from sequences positionally), and NUL
//! characters in any string (PostgreSQL cannot store them, SQLite would truncate on the way out).
//! [`OptionalBody`] is the same for endpoints whose body may be absent — unlike `Option<Json<T>>`,
//! a body that is present but wrong is an error, not "no body".

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;

pub struct Body<T>(pub T);

impl<T> Body<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Body<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The first problem in a JSON document: an array at the top, or a NUL in any string.
fn check(value: &Value, top: bool) -> Result<(), ApiError> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k.contains('\0') {
                    return Err(ApiError::validation("text must not contain NUL characters"));
                }
                check(v, false)?;
            }
            Ok(())
        }
        _ if top => Err(ApiError::validation("the body must be a JSON object")),
        Value::Array(items) => items.iter().try_for_each(|v| check(v, false)),
        Value::String(s) if s.contains('\0') => Err(ApiError::validation("text must not contain NUL characters")),
        _ => Ok(()),
    }
}

fn decode<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    check(&value, true)?;
    serde_json::from_value(value).map_err(|e| ApiError::validation(e.to_string()))
}

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let value = json.await?.into_inner();
            Ok(Body(decode(value)?))
        })
    }
}

pub struct OptionalBody<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalBody<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let empty = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0")
            || (req.headers().get(actix_web::http::header::CONTENT_LENGTH).is_none()
                && req.headers().get(actix_web::http::header::TRANSFER_ENCODING).is_none());
        if empty {
            return Box::pin(async { Ok(OptionalBody(None)) });
        }
        let body = Body::<T>::from_request(req, payload);
        Box::pin(async move { Ok(OptionalBody(Some(body.await?.into_inner()))) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Team {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn arrays_and_nul_are_refused() {
        assert!(decode::<Team>(serde_json::json!({"name": "ok"})).is_ok());
        assert!(decode::<Team>(serde_json::json!(["T"])).is_err(), "serde alone would accept this");
        assert!(decode::<Team>(serde_json::json!({"name": "a\u{0}b"})).is_err());
        assert!(decode::<Team>(serde_json::json!({"name": "x", "tags": ["a\u{0}"]})).is_err());
    }
}
