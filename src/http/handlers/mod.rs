//! Request handlers, one file per resource group. Shared helpers for paging, nullable fields
//! and validation live here.

pub mod activity;
pub mod agents;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod channels;
pub mod conversations;
pub mod custom_channels;
pub mod customers;
pub mod delivery;
pub mod email_channels;
pub mod mattermost_channels;
pub mod notification_settings;
pub mod notifications;
pub mod onboarding;
pub mod ops;
pub mod portal;
pub mod reads;
pub mod statuses;
pub mod teams;
pub mod templates;
pub mod tokens;
pub mod zalo_channels;

use serde::{Deserialize, Deserializer};

use super::error::ApiError;
use crate::auth::Principal;
use crate::store::audit::Actor;

/// A stored file as a download: shown in the browser only when `inline`, never sniffed, and sandboxed (no script
/// of an uploaded or mailed file runs in the dashboard's origin).
pub fn file_download(bytes: Vec<u8>, mime_type: &str, inline: bool, file_name: String) -> actix_web::HttpResponse {
    use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
    actix_web::HttpResponse::Ok()
        .content_type(mime_type)
        .insert_header(ContentDisposition {
            disposition: if inline { DispositionType::Inline } else { DispositionType::Attachment },
            parameters: vec![DispositionParam::Filename(file_name)],
        })
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", "default-src 'none'; sandbox"))
        .body(bytes)
}

/// A mail's raw source as a download (`message/rfc822`).
pub fn raw_mail(bytes: Vec<u8>, file_name: String) -> actix_web::HttpResponse {
    file_download(bytes, "message/rfc822", false, file_name)
}

/// Distinguish "absent" (`None`) from "explicitly null" (`Some(None)`) in PATCH bodies.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A store error as the answer, a missing row named `what` (404 `not_found`, the same for a row the caller may not see).
pub fn not_found_as(e: crate::store::StoreError, what: &str) -> ApiError {
    match e {
        crate::store::StoreError::NotFound => ApiError::not_found(what),
        other => other.into(),
    }
}

pub fn actor(p: &Principal) -> Actor {
    Actor::Agent(p.agent_id)
}

/// 1-based page and page size, checked.
pub fn paging(page: Option<i64>, per_page: Option<i64>, default: i64) -> Result<(i64, i64, i64), ApiError> {
    let page = page.unwrap_or(1);
    let per_page = per_page.unwrap_or(default);
    if !(1..=1_000_000).contains(&page) {
        return Err(ApiError::field("page", "must be 1 or more"));
    }
    if !(1..=100).contains(&per_page) {
        return Err(ApiError::field("per_page", "must be between 1 and 100"));
    }
    Ok((page, per_page, (page - 1) * per_page))
}

/// A required, trimmed, non-empty name of at most `max` characters.
pub fn name_field(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    crate::domain::text::clean_name(value, max)
        .ok_or_else(|| ApiError::field(field, format!("must be 1–{max} characters, without control characters")))
}

/// Hash a password off the async executor, after checking its length.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    if password.chars().count() < crate::auth::MIN_PASSWORD_LEN {
        return Err(ApiError::field(
            "password",
            format!("must be at least {} characters", crate::auth::MIN_PASSWORD_LEN),
        ));
    }
    if password.len() > 1024 {
        return Err(ApiError::field("password", "must be at most 1024 bytes"));
    }
    actix_web::web::block(move || crate::auth::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_is_checked() {
        assert_eq!(paging(None, None, 25).unwrap(), (1, 25, 0));
        assert_eq!(paging(Some(3), Some(10), 25).unwrap(), (3, 10, 20));
        assert!(paging(Some(0), None, 25).is_err());
        assert!(paging(None, Some(101), 25).is_err());
        assert!(paging(None, Some(0), 25).is_err());
    }
}
