//! Attachments: upload the bytes first (`POST /api/v1/attachments`), then name the id in a reply.
//! Downloading checks the same channel access as the message it belongs to.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Principal;
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::views::AttachmentView;
use crate::store;

#[derive(Debug, Deserialize, IntoParams)]
pub struct UploadQuery {
    /// The file's name as the customer will see it.
    pub file_name: String,
}

fn clean_file_name(raw: &str) -> ApiResult<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if base.is_empty()
        || base == "."
        || base == ".."
        || base.chars().count() > 255
        || base.chars().any(char::is_control)
    {
        return Err(ApiError::field("file_name", "must be a plain file name of 1–255 characters"));
    }
    Ok(base.to_owned())
}

/// Upload a file: the raw bytes as the body, its type in `Content-Type`, its name in `?file_name=`.
#[utoipa::path(post, operation_id = "attachments_upload", path = "/api/v1/attachments", tag = "attachments", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = AttachmentView), (status = 413, body = crate::http::error::ErrorBody)))]
pub async fn upload(
    state: State,
    p: Principal,
    req: HttpRequest,
    q: web::Query<UploadQuery>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let file = receive(&state, &req, &q, payload).await?;
    let a = store::attachments::insert(
        &state.store,
        store::attachments::NewAttachment {
            uploaded_by: Some(p.agent_id),
            file_name: file.file_name,
            mime_type: file.mime_type,
            size_bytes: file.size_bytes,
            sha256: file.sha256,
            storage_key: file.storage_key,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(AttachmentView::from(a)))
}

/// An uploaded file in the blob store, not yet recorded.
pub(crate) struct Received {
    pub file_name: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub storage_key: String,
}

/// Read an upload (raw bytes as the body, type in `Content-Type`, name in `?file_name=`) into the blob store,
/// within `max_upload_bytes`: what the agent API and the customer portal (issue #18) both take.
pub(crate) async fn receive(
    state: &State,
    req: &HttpRequest,
    q: &UploadQuery,
    mut payload: web::Payload,
) -> ApiResult<Received> {
    use futures_util::StreamExt;
    let file_name = clean_file_name(&q.file_name)?;
    let limit = state.settings.max_upload_bytes;
    let too_large = || ApiError::PayloadTooLarge(format!("files may be at most {limit} bytes"));
    let declared =
        req.headers().get(actix_web::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest { code: "invalid_body", message: e.to_string() })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Err(ApiError::validation("the file is empty"));
    }
    let mime = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime_guess::mime::Mime>().ok())
        .filter(|m| m.essence_str() != "application/x-www-form-urlencoded")
        .map(|m| m.essence_str().to_owned())
        .unwrap_or_else(|| mime_guess::from_path(&file_name).first_or_octet_stream().essence_str().to_owned());
    let stored = state.blobs.put(&body).await.map_err(ApiError::internal)?;
    Ok(Received {
        file_name,
        mime_type: mime,
        size_bytes: stored.size as i64,
        sha256: stored.sha256,
        storage_key: stored.storage_key,
    })
}

/// Whether a file of this type opens in the browser (images, audio, video, PDFs; never SVG) rather than downloads.
pub(crate) fn opens_inline(mime_type: &str) -> bool {
    ["image/", "audio/", "video/", "application/pdf"].iter().any(|p| mime_type.starts_with(p))
        && mime_type != "image/svg+xml"
}

/// Download a file. Images, audio, video and PDFs open inline; everything else downloads.
#[utoipa::path(get, operation_id = "attachments_download", path = "/api/v1/attachments/{id}", tag = "attachments", params(("id" = i64, Path)),
    responses((status = 200, description = "the file, with the type it was uploaded with", content_type = "*/*", body = Vec<u8>), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn download(state: State, p: Principal, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    let (a, channel) = store::attachments::get(&state.store, *id).await.map_err(|e| match e {
        store::StoreError::NotFound => ApiError::not_found("attachment"),
        other => other.into(),
    })?;
    let visible = match channel {
        Some(ch) => p.scope.allows(ch),
        None => a.uploaded_by == Some(p.agent_id),
    };
    if !visible {
        return Err(ApiError::not_found("attachment"));
    }
    let bytes = state.blobs.get(&a.storage_key).await.map_err(ApiError::internal)?;
    let inline = opens_inline(&a.mime_type);
    Ok(super::file_download(bytes, &a.mime_type, inline, a.file_name))
}
