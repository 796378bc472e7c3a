//! The Mattermost REST client (`{server_url}/api/v4`, `Authorization: Bearer {bot token}`): the calls of
//! `mattermost.md` the connector and the admin endpoints use, over the one outgoing HTTP client
//! (`crate::outbound::http_client`: internal targets refused unless allowed, no redirects).
//!
//! Errors are typed: 401 is [`MmError::Unauthorized`] (the channel needs attention), 429 is
//! [`MmError::RateLimited`] with the wait `X-Ratelimit-Reset` asks for. Nothing the server sent is put into an
//! error but its error `id` (a code such as `api.context.permissions.app_error`) and the status.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::mapping::Post;
use crate::outbound::http_client::{HttpClient, refusal};

/// The largest answer read (a page of posts is far smaller).
const ANSWER_CAP: usize = 8 * 1024 * 1024;
/// One call may take this long.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum MmError {
    #[error("Mattermost refused the bot token (401 Unauthorized): it is wrong, revoked, or its bot was disabled")]
    Unauthorized,
    #[error("Mattermost is rate limiting the bot (429); retry in {0:?}")]
    RateLimited(Duration),
    #[error("Mattermost answered {status}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status { status: u16, code: Option<String> },
    /// Refused by the outgoing-connection policy.
    #[error("{0}")]
    Refused(String),
    #[error("cannot reach the Mattermost server: {0}")]
    Network(String),
    #[error("the Mattermost server's answer cannot be read: {0}")]
    Decode(String),
}

/// A Mattermost user (the fields used).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub nickname: String,
    #[serde(default)]
    pub email: String,
}

impl User {
    /// How the help desk names them: "First Last", else the nickname, else the username.
    pub fn display_name(&self) -> String {
        let full = format!("{} {}", self.first_name.trim(), self.last_name.trim()).trim().to_owned();
        if !full.is_empty() {
            full
        } else if !self.nickname.trim().is_empty() {
            self.nickname.trim().to_owned()
        } else {
            self.username.clone()
        }
    }
}

/// A Mattermost channel (the fields used).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub id: String,
    /// `O`, `P`, `D` or `G`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub team_id: String,
    /// When the newest post in it was made (ms); what a re-sync skips quiet channels by.
    #[serde(default)]
    pub last_post_at: i64,
}

/// `GET /channels/{id}/posts` answers a post list.
#[derive(Debug, Default, Deserialize)]
struct PostList {
    #[serde(default)]
    order: Vec<String>,
    #[serde(default)]
    posts: HashMap<String, Post>,
}

/// A client for one bot on one server. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: HttpClient,
    base: String,
    token: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Client {
    /// `server_url` as stored (`https://chat.example.com`, no trailing slash).
    pub fn new(http: HttpClient, server_url: &str, token: &str) -> Self {
        Self { http, base: server_url.trim_end_matches('/').to_owned(), token: token.to_owned() }
    }

    pub fn server_url(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    async fn call<T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<Value>) -> Result<T, MmError> {
        let body = body.map(|b| ("application/json".to_owned(), b.to_string().into_bytes()));
        let bytes = self.send(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| undecodable(&e))
    }

    /// One request; the answer's bytes when it is a 2xx.
    async fn send(&self, method: Method, path: &str, body: Option<(String, Vec<u8>)>) -> Result<Vec<u8>, MmError> {
        let url = format!("{}/api/v4{path}", self.base);
        let mut req = self
            .http
            .request(method, &url)
            .map_err(|e| MmError::Refused(e.to_string()))?
            .timeout(TIMEOUT)
            .bearer_auth(&self.token);
        if let Some((content_type, bytes)) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, content_type).body(bytes);
        }
        let mut response = req.send().await.map_err(|e| match refusal(&e) {
            Some(refused) => MmError::Refused(refused.to_string()),
            None if e.is_timeout() => MmError::Network("timed out".into()),
            None if e.is_connect() => MmError::Network("connection failed".into()),
            None => MmError::Network("the request failed".into()),
        })?;
        let status = response.status().as_u16();
        if status == 429 {
            return Err(MmError::RateLimited(reset_wait(response.headers())));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| MmError::Network("the answer broke off".into()))? {
            if bytes.len() + chunk.len() > ANSWER_CAP {
                return Err(MmError::Decode("the answer is too large".into()));
            }
            bytes.extend_from_slice(&chunk);
        }
        if status == 401 {
            return Err(MmError::Unauthorized);
        }
        if !(200..300).contains(&status) {
            return Err(MmError::Status { status, code: error_code(&bytes) });
        }
        Ok(bytes)
    }

    /// `GET /users/me`: who the token belongs to.
    pub async fn me(&self) -> Result<User, MmError> {
        self.call(Method::GET, "/users/me", None).await
    }

    /// `GET /users/{id}`.
    pub async fn user(&self, id: &str) -> Result<User, MmError> {
        self.call(Method::GET, &format!("/users/{}", segment(id)), None).await
    }

    /// `GET /channels/{id}`.
    pub async fn channel(&self, id: &str) -> Result<Channel, MmError> {
        self.call(Method::GET, &format!("/channels/{}", segment(id)), None).await
    }

    /// `GET /users/{id}/channels?include_deleted=false` (Mattermost 6.1+): every channel of every team the user is a
    /// member of, DMs and group messages included. An older server answers 404 (or 501).
    pub async fn user_channels(&self, user_id: &str) -> Result<Vec<Channel>, MmError> {
        self.call(Method::GET, &format!("/users/{}/channels?include_deleted=false", segment(user_id)), None).await
    }

    /// `GET /channels/{id}/posts?since={ms}`: the posts of a channel created (or changed) since `since`, oldest first.
    pub async fn posts_since(&self, channel_id: &str, since: i64) -> Result<Vec<Post>, MmError> {
        let list: PostList =
            self.call(Method::GET, &format!("/channels/{}/posts?since={since}", segment(channel_id)), None).await?;
        let mut posts: Vec<Post> = list.order.iter().filter_map(|id| list.posts.get(id).cloned()).collect();
        for (id, p) in &list.posts {
            if !list.order.contains(id) {
                posts.push(p.clone());
            }
        }
        posts.sort_by(|a, b| a.create_at.cmp(&b.create_at).then_with(|| a.id.cmp(&b.id)));
        Ok(posts)
    }
}

/// A file's metadata (`GET /files/{id}/info`, and what `POST /files` answers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub mime_type: String,
}

#[derive(Debug, Default, Deserialize)]
struct Uploaded {
    #[serde(default)]
    file_infos: Vec<FileInfo>,
}

impl Client {
    /// `GET /files/{id}/info`.
    pub async fn file_info(&self, id: &str) -> Result<FileInfo, MmError> {
        self.call(Method::GET, &format!("/files/{}/info", segment(id)), None).await
    }

    /// `GET /files/{id}`: the file's bytes (up to the answer cap).
    pub async fn file(&self, id: &str) -> Result<Vec<u8>, MmError> {
        self.send(Method::GET, &format!("/files/{}", segment(id)), None).await
    }

    /// `POST /files` (multipart: `channel_id`, one `files` part): the uploaded file's id, to attach to a post.
    pub async fn upload(&self, channel_id: &str, name: &str, mime_type: &str, bytes: &[u8]) -> Result<String, MmError> {
        let boundary = format!("switchboard{}", uuid::Uuid::new_v4().simple());
        let safe_name: String = name.chars().filter(|c| !matches!(c, '"' | '\r' | '\n' | '\\')).collect();
        let mut body = Vec::with_capacity(bytes.len() + 512);
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"channel_id\"\r\n\r\n{channel_id}\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{safe_name}\"\r\nContent-Type: {mime_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let answer = self.send(Method::POST, "/files", Some((content_type, body))).await?;
        let uploaded: Uploaded = serde_json::from_slice(&answer).map_err(|e| undecodable(&e))?;
        uploaded.file_infos.into_iter().next().map(|f| f.id).ok_or_else(|| MmError::Decode("no file_infos".into()))
    }

    /// `POST /posts`: a post as the bot, top-level (`root_id` empty) or in a thread, with files already uploaded.
    pub async fn create_post(
        &self,
        channel_id: &str,
        message: &str,
        root_id: &str,
        file_ids: &[String],
        props: Value,
    ) -> Result<Post, MmError> {
        let body = json!({"channel_id": channel_id, "message": message, "root_id": root_id, "file_ids": file_ids, "props": props});
        self.call(Method::POST, "/posts", Some(body)).await
    }
}

#[derive(Debug, Default, Deserialize)]
struct UserAutocomplete {
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    out_of_channel: Vec<User>,
}

impl Client {
    /// `GET /users/autocomplete?name=…[&team_id=…]&limit=…` (MM-12): users whose name starts with `name`.
    pub async fn autocomplete_users(
        &self,
        name: &str,
        team_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<User>, MmError> {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        url.append_pair("name", name);
        if let Some(t) = team_id {
            url.append_pair("team_id", t);
        }
        url.append_pair("limit", &limit.to_string());
        let found: UserAutocomplete =
            self.call(Method::GET, &format!("/users/autocomplete?{}", url.finish()), None).await?;
        let mut users = found.users;
        users.extend(found.out_of_channel);
        Ok(users)
    }

    /// `GET /teams/{team_id}/channels/autocomplete?name=…` (MM-12).
    pub async fn autocomplete_channels(&self, team_id: &str, name: &str) -> Result<Vec<Channel>, MmError> {
        let q: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("name", name).finish();
        self.call(Method::GET, &format!("/teams/{}/channels/autocomplete?{q}", segment(team_id)), None).await
    }

    /// `POST /channels/direct` with `[bot, other]`: the DM channel between the bot and a user (MM-12).
    pub async fn direct_channel(&self, bot_user_id: &str, other_user_id: &str) -> Result<Channel, MmError> {
        self.call(Method::POST, "/channels/direct", Some(json!([bot_user_id, other_user_id]))).await
    }
}

/// Ids are `[a-z0-9]{26}`; anything else is dropped rather than put into a path.
fn segment(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

/// How long `X-Ratelimit-Reset` (seconds until the limit resets) asks to wait: 1–60 s, 1 s when absent.
pub fn reset_wait(headers: &reqwest::header::HeaderMap) -> Duration {
    let secs = headers
        .get("X-Ratelimit-Reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(secs.clamp(1, 60))
}

/// An answer that is not the JSON expected, described by where it went wrong only: serde's own text quotes the
/// values it could not use, and what a server that is not Mattermost sent must not reach an error (#13 item 5).
fn undecodable(e: &serde_json::Error) -> MmError {
    let what = match e.classify() {
        serde_json::error::Category::Data => "not shaped like Mattermost's answer",
        serde_json::error::Category::Eof => "cut short",
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => "not JSON",
    };
    MmError::Decode(format!("{what} (line {}, column {})", e.line(), e.column()))
}

/// The `id` of a Mattermost error body (`{"id":"api.…","message":…,"status_code":…}`), if it looks like one.
fn error_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let id = v.get("id")?.as_str()?;
    let ok = !id.is_empty() && id.len() <= 100 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
    ok.then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_error_codes() {
        let u = |f: &str, l: &str, n: &str| User {
            username: "alice".into(),
            first_name: f.into(),
            last_name: l.into(),
            nickname: n.into(),
            ..Default::default()
        };
        assert_eq!(u("Alice", "Liddell", "").display_name(), "Alice Liddell");
        assert_eq!(u("", "", "Al").display_name(), "Al");
        assert_eq!(u("", "", "").display_name(), "alice");
        assert_eq!(
            error_code(br#"{"id":"api.context.404.app_error","message":"x"}"#).as_deref(),
            Some("api.context.404.app_error")
        );
        assert_eq!(error_code(br#"{"id":"<script>"}"#), None);
        assert_eq!(error_code(b"limit exceeded"), None);
        assert_eq!(segment("abc/../def?x"), "abcdefx");
    }

    #[test]
    fn an_undecodable_answer_is_described_without_what_it_held() {
        for body in [
            br#"{"id": "u1", "is_bot": "internal-secret-7f3a"}"#.as_slice(),
            br#"{"id": ["internal-secret-7f3a"]}"#,
            b"internal-secret-7f3a",
            br#"{"id": "internal-secret-7f3a"#,
        ] {
            let e = undecodable(&serde_json::from_slice::<User>(body).unwrap_err()).to_string();
            assert!(!e.contains("internal-secret"), "{e}");
            assert!(e.starts_with("the Mattermost server's answer cannot be read: "), "{e}");
        }
    }

    #[test]
    fn rate_limit_reset_is_bounded() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(reset_wait(&h), Duration::from_secs(1));
        h.insert("X-Ratelimit-Reset", "3".parse().unwrap());
        assert_eq!(reset_wait(&h), Duration::from_secs(3));
        h.insert("X-Ratelimit-Reset", "99999".parse().unwrap());
        assert_eq!(reset_wait(&h), Duration::from_secs(60));
    }
}
