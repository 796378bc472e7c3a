//! The Zalo client: the OA API (`{api_base}/v3.0/oa/message/cs` to send, `/v2.0/oa/upload/image|file` to upload;
//! header `access_token`), the OAuth refresh (`{oauth_base}/v4/oa/access_token`, header `secret_key`), and
//! fetching the media of an event from Zalo's URLs — every request through the one outgoing HTTP client
//! (`crate::outbound::http_client`: internal targets refused unless allowed, no redirects, time limits).
//!
//! Errors are typed: a non-zero `error` in a 200 body is [`ZaloError::Api`] with Zalo's code (the caller decides
//! whether it is a token error, `protocol::TOKEN_ERRORS`). Of what Zalo sent only the code and its short
//! message (control characters removed, at most 200 characters) go into an error.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::protocol::{self, ApiAnswer, Refreshed};
use crate::outbound::http_client::{HttpClient, refusal};

/// One call may take this long (Zalo answers in well under a second).
const TIMEOUT: Duration = Duration::from_secs(15);
/// A media download may take this long.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest API answer read.
const ANSWER_CAP: usize = 1024 * 1024;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZaloError {
    /// Refused by the outgoing-connection policy.
    #[error("{0}")]
    Refused(String),
    #[error("cannot reach Zalo: {0}")]
    Network(String),
    #[error("Zalo answered HTTP {0}")]
    Status(u16),
    #[error("Zalo's answer cannot be read: {0}")]
    Decode(String),
    /// A non-zero `error` in the answer's body.
    #[error("Zalo error {code}: {message}")]
    Api { code: i64, message: String },
    #[error("the file is larger than {0} bytes")]
    TooLarge(usize),
}

impl ZaloError {
    /// Worth trying again later (the network, a 5xx), as opposed to a refusal that will not change.
    pub fn is_transient(&self) -> bool {
        matches!(self, ZaloError::Network(_)) || matches!(self, ZaloError::Status(s) if *s >= 500 || *s == 429)
    }

    /// Zalo does not take the access token (invalid or expired): refresh and retry once.
    pub fn is_token_error(&self) -> bool {
        matches!(self, ZaloError::Api { code, .. } if protocol::TOKEN_ERRORS.contains(code))
    }
}

fn short(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

fn network(e: reqwest::Error) -> ZaloError {
    match refusal(&e) {
        Some(refused) => ZaloError::Refused(refused.to_string()),
        None if e.is_timeout() => ZaloError::Network("timed out".into()),
        None if e.is_connect() => ZaloError::Network("connection failed".into()),
        None => ZaloError::Network("the request failed".into()),
    }
}

/// Read an answer's body up to `cap` bytes.
async fn body(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, ZaloError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| ZaloError::Network("the answer broke off".into()))? {
        if bytes.len() + chunk.len() > cap {
            return Err(ZaloError::TooLarge(cap));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// A client of one OA's API. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: HttpClient,
    api_base: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("api_base", &self.api_base).finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(http: HttpClient, api_base: &str) -> Self {
        Self { http, api_base: api_base.trim_end_matches('/').to_owned() }
    }

    /// One call with the `access_token` header; the answer's `data` when `error` is 0.
    async fn call(&self, path: &str, token: &str, content_type: &str, payload: Vec<u8>) -> Result<Value, ZaloError> {
        let url = format!("{}{path}", self.api_base);
        let response = self
            .http
            .request(Method::POST, &url)
            .map_err(|e| ZaloError::Refused(e.to_string()))?
            .timeout(TIMEOUT)
            .header("access_token", token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(payload)
            .send()
            .await
            .map_err(network)?;
        let status = response.status().as_u16();
        let bytes = body(response, ANSWER_CAP).await?;
        // Zalo usually answers 200 with the error in the body (UNCONFIRMED for every error): read the body first.
        if let Ok(answer) = serde_json::from_slice::<ApiAnswer>(&bytes)
            && (answer.error != 0 || (200..300).contains(&status))
        {
            if answer.error != 0 {
                return Err(ZaloError::Api { code: answer.error, message: short(&answer.message) });
            }
            return Ok(answer.data);
        }
        if !(200..300).contains(&status) {
            return Err(ZaloError::Status(status));
        }
        Err(ZaloError::Decode("not an OA API answer".into()))
    }

    /// `POST /v3.0/oa/message/cs` (ZL-6): the sent message's `message_id`.
    pub async fn send(&self, token: &str, message: &Value) -> Result<String, ZaloError> {
        let data =
            self.call("/v3.0/oa/message/cs", token, "application/json", message.to_string().into_bytes()).await?;
        match &data["message_id"] {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(ZaloError::Decode("no data.message_id".into())),
        }
    }

    /// `POST /v2.0/oa/upload/image` (multipart `file`): the image's `attachment_id` (UNCONFIRMED path, docs/zalo.md).
    pub async fn upload_image(&self, token: &str, name: &str, mime: &str, bytes: &[u8]) -> Result<String, ZaloError> {
        self.upload("/v2.0/oa/upload/image", "attachment_id", token, name, mime, bytes).await
    }

    /// `POST /v2.0/oa/upload/file` (multipart `file`): the file's `token` (UNCONFIRMED path, docs/zalo.md).
    pub async fn upload_file(&self, token: &str, name: &str, mime: &str, bytes: &[u8]) -> Result<String, ZaloError> {
        self.upload("/v2.0/oa/upload/file", "token", token, name, mime, bytes).await
    }

    async fn upload(
        &self,
        path: &str,
        field: &str,
        token: &str,
        name: &str,
        mime: &str,
        bytes: &[u8],
    ) -> Result<String, ZaloError> {
        let boundary = format!("switchboard{}", uuid::Uuid::new_v4().simple());
        let safe_name: String = name.chars().filter(|c| !matches!(c, '"' | '\r' | '\n' | '\\')).collect();
        let mime: String = mime.chars().filter(|c| !c.is_control()).collect();
        let mut payload = Vec::with_capacity(bytes.len() + 256);
        payload.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{safe_name}\"\r\nContent-Type: {mime}\r\n\r\n"
            )
            .as_bytes(),
        );
        payload.extend_from_slice(bytes);
        payload.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let data = self.call(path, token, &content_type, payload).await?;
        match &data[field] {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(ZaloError::Decode(format!("no data.{field}"))),
        }
    }
}

/// `POST {oauth_base}/v4/oa/access_token` with the refresh token (single use): new tokens, or Zalo's refusal.
pub async fn refresh(
    http: &HttpClient,
    oauth_base: &str,
    app_id: &str,
    app_secret: &str,
    refresh_token: &str,
) -> Result<Refreshed, ZaloError> {
    let url = format!("{}/v4/oa/access_token", oauth_base.trim_end_matches('/'));
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("refresh_token", refresh_token)
        .append_pair("app_id", app_id)
        .append_pair("grant_type", "refresh_token")
        .finish();
    let response = http
        .request(Method::POST, &url)
        .map_err(|e| ZaloError::Refused(e.to_string()))?
        .timeout(TIMEOUT)
        .header("secret_key", app_secret)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .map_err(network)?;
    let status = response.status().as_u16();
    let bytes = body(response, ANSWER_CAP).await?;
    match protocol::refreshed(&bytes) {
        Some(answer) => Ok(answer),
        None if !(200..300).contains(&status) => Err(ZaloError::Status(status)),
        None => Err(ZaloError::Decode("not a token answer".into())),
    }
}

/// A file from one of Zalo's media URLs (an image, a file a customer sent), at most `cap` bytes, with the
/// `Content-Type` Zalo gave.
pub async fn download(http: &HttpClient, url: &str, cap: usize) -> Result<(Vec<u8>, Option<String>), ZaloError> {
    let response = http
        .request(Method::GET, url)
        .map_err(|e| ZaloError::Refused(e.to_string()))?
        .timeout(DOWNLOAD_TIMEOUT)
        .send()
        .await
        .map_err(network)?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(ZaloError::Status(status));
    }
    if response.content_length().is_some_and(|n| n as usize > cap) {
        return Err(ZaloError::TooLarge(cap));
    }
    let mime = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() < 100 && !v.chars().any(|c| c.is_control()));
    Ok((body(response, cap).await?, mime))
}
