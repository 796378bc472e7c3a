//! A fake Zalo for the Zalo channel's tests (issue #16), faithful to `../shared/channels/zalo.md` and
//! `docs/zalo.md`: real HTTP on a loopback port, serving
//!
//! - the OA API: `POST /v3.0/oa/message/cs` (header `access_token`; records each message with the `message_id` it
//!   answers, `{"error":0,"message":"Success","data":{"message_id":…,"user_id":…}}`), `POST /v2.0/oa/upload/image`
//!   (→ `data.attachment_id`) and `POST /v2.0/oa/upload/file` (→ `data.token`), both multipart with a `file` part. A
//!   token it did not issue, or one that expired, is answered `{"error":-216,…}` with HTTP 200, as Zalo does; the
//!   test can make it answer any error code next ([`FakeZalo::fail_next_sends`]);
//! - OAuth: `POST /v4/oa/access_token` (form `refresh_token`, `app_id`, `grant_type=refresh_token`; header
//!   `secret_key`) with **single-use** refresh tokens — a used or unknown one is answered with an error body — and
//!   `expires_in` as a string of seconds;
//! - media: `GET /media/{name}`, the files events point at ([`FakeZalo::media`]).
//!
//! And Zalo's side of the webhook ([`FakeZalo::deliver`]): events signed as Zalo signs them
//! (`X-ZEvent-Signature: mac=` + hex `sha256(app_id + body + timestamp + oa_secret_key)`), or wrongly on demand, and
//! delivered again on Zalo's retry schedule (30 s, 5 min, 15 min, 30 min, 1 h; compressed by a factor) with the
//! `num_retry` header until answered 200.
//!
//! Its core uses only the crate's own dependencies, so `examples/fake_zalo.rs` can run it as a process.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Zalo's retry schedule after a failed webhook delivery.
pub const RETRY_SCHEDULE: [Duration; 5] = [
    Duration::from_secs(30),
    Duration::from_secs(300),
    Duration::from_secs(900),
    Duration::from_secs(1800),
    Duration::from_secs(3600),
];

/// One message the OA sent through the fake.
#[derive(Debug, Clone)]
pub struct Sent {
    pub message_id: String,
    /// The access token it was sent with.
    pub token: String,
    /// The request body: `{"recipient":{…},"message":{…}}`.
    pub body: Value,
}

impl Sent {
    pub fn text(&self) -> Option<&str> {
        self.body["message"]["text"].as_str()
    }

    pub fn user(&self) -> Option<&str> {
        self.body["recipient"]["user_id"].as_str()
    }
}

#[derive(Default)]
struct Inner {
    app_id: String,
    app_secret: String,
    oa_secret_key: String,
    oa_id: String,
    /// access token → when it expires (ms since the epoch).
    access: HashMap<String, i64>,
    /// Refresh tokens that may still be used once.
    refresh: HashSet<String>,
    /// Refresh tokens already spent (a second use is refused).
    spent: HashSet<String>,
    /// `expires_in` of the next issued access tokens (seconds).
    expires_in: i64,
    refreshes: usize,
    refused_refreshes: usize,
    sent: Vec<Sent>,
    /// Error codes the next sends answer, in order.
    fail_next: Vec<(i64, String)>,
    /// attachment id or file token → (name, bytes).
    uploads: HashMap<String, (String, Vec<u8>)>,
    media: HashMap<String, (String, Vec<u8>)>,
    media_reads: usize,
    next_id: u64,
}

type Shared = web::Data<Arc<Mutex<Inner>>>;

/// A fake Zalo (see the module docs).
pub struct FakeZalo {
    /// `http://127.0.0.1:{port}`: both base URLs (API and OAuth) of a channel under test.
    pub url: String,
    pub app_id: String,
    pub app_secret: String,
    pub oa_secret_key: String,
    /// The OA's id (`recipient.id` of users' events).
    pub oa_id: String,
    state: Arc<Mutex<Inner>>,
    handle: ServerHandle,
    client: reqwest::Client,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn zalo_error(code: i64, message: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({"error": code, "message": message}))
}

impl FakeZalo {
    pub async fn start() -> Self {
        let inner = Inner {
            app_id: format!("36{}", rand::random::<u64>() % 10_000_000_000_000_000),
            app_secret: format!("appsecret{}", uuid::Uuid::new_v4().simple()),
            oa_secret_key: format!("oakey{}", uuid::Uuid::new_v4().simple()),
            oa_id: format!("38{}", rand::random::<u64>() % 10_000_000_000_000_000),
            expires_in: 90_000,
            ..Default::default()
        };
        let (app_id, app_secret, oa_secret_key, oa_id) =
            (inner.app_id.clone(), inner.app_secret.clone(), inner.oa_secret_key.clone(), inner.oa_id.clone());
        let state = Arc::new(Mutex::new(inner));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .route("/v3.0/oa/message/cs", web::post().to(send))
                .route("/v2.0/oa/upload/image", web::post().to(upload_image))
                .route("/v2.0/oa/upload/file", web::post().to(upload_file))
                .route("/v4/oa/access_token", web::post().to(oauth))
                .route("/media/{name}", web::get().to(media))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}"),
            app_id,
            app_secret,
            oa_secret_key,
            oa_id,
            state,
            handle,
            client: reqwest::Client::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap()
    }

    /// A fresh pair of tokens, as Zalo's API Explorer gives them: (access token, refresh token).
    pub fn issue_tokens(&self) -> (String, String) {
        issue(&mut self.lock())
    }

    /// `expires_in` (seconds) of the access tokens issued from now on.
    pub fn set_expires_in(&self, seconds: i64) {
        self.lock().expires_in = seconds;
    }

    /// Every access token issued so far expires now (sends with them answer -216).
    pub fn expire_access_tokens(&self) {
        let past = now_ms() - 1;
        for at in self.lock().access.values_mut() {
            *at = past;
        }
    }

    /// The next sends answer these error codes (HTTP 200, `{"error": code, "message": …}`), in order.
    pub fn fail_next_sends(&self, errors: &[(i64, &str)]) {
        self.lock().fail_next.extend(errors.iter().map(|(c, m)| (*c, (*m).to_owned())));
    }

    /// Refreshes answered with new tokens, and refused.
    pub fn refreshes(&self) -> (usize, usize) {
        let g = self.lock();
        (g.refreshes, g.refused_refreshes)
    }

    /// Whether a refresh token has been used.
    pub fn is_spent(&self, refresh_token: &str) -> bool {
        self.lock().spent.contains(refresh_token)
    }

    /// The newest access token that works.
    pub fn live_access_tokens(&self) -> Vec<String> {
        let now = now_ms();
        self.lock().access.iter().filter(|(_, at)| **at > now).map(|(t, _)| t.clone()).collect()
    }

    /// What the OA sent, oldest first.
    pub fn sent(&self) -> Vec<Sent> {
        self.lock().sent.clone()
    }

    /// Wait until the OA sent at least `n` messages.
    pub async fn wait_sent(&self, n: usize, within: Duration) -> Vec<Sent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let sent = self.sent();
            if sent.len() >= n {
                return sent;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} of {n} messages sent to Zalo: {sent:#?}", sent.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What was uploaded under an attachment id or file token: (name, bytes).
    pub fn upload(&self, id: &str) -> Option<(String, Vec<u8>)> {
        self.lock().uploads.get(id).cloned()
    }

    /// Serve a file at `{url}/media/{name}`; returns its URL.
    pub fn media(&self, name: &str, mime: &str, bytes: &[u8]) -> String {
        self.lock().media.insert(name.to_owned(), (mime.to_owned(), bytes.to_vec()));
        format!("{}/media/{name}", self.url)
    }

    pub fn media_reads(&self) -> usize {
        self.lock().media_reads
    }

    /// Zalo's signature of `body` (with the `mac=` prefix).
    pub fn sign(&self, body: &str) -> String {
        let ts = serde_json::from_str::<Value>(body).ok().and_then(|v| v["timestamp"].as_str().map(str::to_owned));
        format!("mac={}", signature(&self.app_id, body, &ts.unwrap_or_default(), &self.oa_secret_key))
    }

    /// An event as Zalo sends it: the envelope with `app_id`, `event_name`, `timestamp`, and `fields` merged in.
    pub fn event(&self, event_name: &str, fields: Value) -> String {
        let mut v = json!({"app_id": self.app_id, "event_name": event_name, "timestamp": now_ms().to_string()});
        if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), fields) {
            obj.extend(extra);
        }
        v.to_string()
    }

    /// A user's message event (`user_send_{kind}`) from `user` with `message` (`msg_id`, `text`, `attachments`…).
    pub fn user_event(&self, kind: &str, user: &str, message: Value) -> String {
        self.event(
            &format!("user_send_{kind}"),
            json!({"sender": {"id": user}, "recipient": {"id": self.oa_id}, "user_id_by_app": format!("app{user}"),
                   "message": message}),
        )
    }

    /// A user's text message.
    pub fn text(&self, user: &str, msg_id: &str, text: &str) -> String {
        self.user_event("text", user, json!({"msg_id": msg_id, "text": text}))
    }

    /// POST a signed event to `webhook` once (`num_retry` given): the answer's status and body.
    pub async fn post(&self, webhook: &str, body: &str, num_retry: Option<u32>) -> (u16, Value) {
        let sig = self.sign(body);
        self.post_raw(webhook, body, Some(&sig), num_retry).await
    }

    /// POST `body` with exactly this signature header (or none).
    pub async fn post_raw(
        &self,
        webhook: &str,
        body: &str,
        signature: Option<&str>,
        num_retry: Option<u32>,
    ) -> (u16, Value) {
        let mut req = self.client.post(webhook).header("Content-Type", "application/json").body(body.to_owned());
        if let Some(s) = signature {
            req = req.header("X-ZEvent-Signature", s);
        }
        if let Some(n) = num_retry {
            req = req.header("num_retry", n.to_string());
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// Deliver an event as Zalo does: signed, and when not answered 200 within 2 s, again after each step of
    /// [`RETRY_SCHEDULE`] divided by `compress` (header `num_retry` 1, 2, …). Returns the statuses of the attempts.
    pub async fn deliver(&self, webhook: &str, body: &str, compress: u32) -> Vec<u16> {
        let mut statuses = Vec::new();
        for attempt in 0..=RETRY_SCHEDULE.len() {
            if attempt > 0 {
                tokio::time::sleep(RETRY_SCHEDULE[attempt - 1] / compress.max(1)).await;
            }
            let sig = self.sign(body);
            let call = self.post_raw(webhook, body, Some(&sig), (attempt > 0).then_some(attempt as u32));
            let status = match tokio::time::timeout(Duration::from_secs(2), call).await {
                Ok((s, _)) => s,
                Err(_) => 0,
            };
            statuses.push(status);
            if status == 200 {
                break;
            }
        }
        statuses
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Lowercase hex `sha256(app_id + body + timestamp + key)`.
pub fn signature(app_id: &str, body: &str, timestamp: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(app_id.as_bytes());
    h.update(body.as_bytes());
    h.update(timestamp.as_bytes());
    h.update(key.as_bytes());
    hex::encode(h.finalize())
}

fn next_id(g: &mut Inner) -> String {
    g.next_id += 1;
    format!("{:x}{:016x}", g.next_id, rand::random::<u64>())
}

fn issue(g: &mut Inner) -> (String, String) {
    let access = format!("at_{}", next_id(g));
    let refresh = format!("rt_{}", next_id(g));
    let expires = now_ms() + g.expires_in * 1000;
    g.access.insert(access.clone(), expires);
    g.refresh.insert(refresh.clone());
    (access, refresh)
}

/// The access token of a request, if Zalo would take it.
fn authorized(req: &HttpRequest, g: &Inner) -> Result<String, Box<HttpResponse>> {
    let token = req.headers().get("access_token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    match g.access.get(&token) {
        Some(at) if *at > now_ms() => Ok(token),
        Some(_) => Err(Box::new(zalo_error(-216, "Access token is invalid or expired"))),
        None => Err(Box::new(zalo_error(-216, "Access token is invalid"))),
    }
}

async fn send(req: HttpRequest, state: Shared, body: web::Bytes) -> HttpResponse {
    let mut g = state.lock().unwrap();
    let token = match authorized(&req, &g) {
        Ok(t) => t,
        Err(resp) => return *resp,
    };
    if !g.fail_next.is_empty() {
        let (code, message) = g.fail_next.remove(0);
        return zalo_error(code, &message);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return zalo_error(-201, "Parameters are invalid");
    };
    let recipient = &body["recipient"];
    if recipient["user_id"].as_str().is_none() && recipient["anonymous_id"].as_str().is_none() {
        return zalo_error(-201, "recipient is missing");
    }
    let attachment = &body["message"]["attachment"];
    // A media template or a file must name something uploaded here.
    let named =
        attachment["payload"]["elements"][0]["attachment_id"].as_str().or(attachment["payload"]["token"].as_str());
    if !attachment.is_null() && named.is_none_or(|id| !g.uploads.contains_key(id)) {
        return zalo_error(-201, "attachment is unknown");
    }
    if attachment.is_null() && body["message"]["text"].as_str().is_none_or(str::is_empty) {
        return zalo_error(-201, "message is empty");
    }
    let message_id = next_id(&mut g);
    let user_id = recipient["user_id"].as_str().or(recipient["anonymous_id"].as_str()).unwrap_or_default().to_owned();
    g.sent.push(Sent { message_id: message_id.clone(), token, body });
    HttpResponse::Ok()
        .json(json!({"error": 0, "message": "Success", "data": {"message_id": message_id, "user_id": user_id}}))
}

/// The `file` part of a multipart body: (file name, bytes).
fn file_part(req: &HttpRequest, body: &[u8]) -> Option<(String, Vec<u8>)> {
    let ct = req.headers().get("Content-Type")?.to_str().ok()?;
    let boundary = ct.split("boundary=").nth(1)?.trim_matches('"');
    let delimiter = format!("--{boundary}");
    let text = body;
    let start = find(text, delimiter.as_bytes())? + delimiter.len();
    let rest = &text[start..];
    let header_end = find(rest, b"\r\n\r\n")?;
    let headers = String::from_utf8_lossy(&rest[..header_end]).to_string();
    if !headers.contains("name=\"file\"") {
        return None;
    }
    let name = headers.split("filename=\"").nth(1)?.split('"').next()?.to_owned();
    let content = &rest[header_end + 4..];
    let end = find(content, format!("\r\n{delimiter}").as_bytes())?;
    Some((name, content[..end].to_vec()))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn upload_image(req: HttpRequest, state: Shared, body: web::Bytes) -> HttpResponse {
    upload(req, state, body, "attachment_id").await
}

async fn upload_file(req: HttpRequest, state: Shared, body: web::Bytes) -> HttpResponse {
    upload(req, state, body, "token").await
}

async fn upload(req: HttpRequest, state: Shared, body: web::Bytes, field: &str) -> HttpResponse {
    let mut g = state.lock().unwrap();
    if let Err(resp) = authorized(&req, &g) {
        return *resp;
    }
    let Some((name, bytes)) = file_part(&req, &body) else {
        return zalo_error(-201, "no file");
    };
    let id = next_id(&mut g);
    g.uploads.insert(id.clone(), (name, bytes));
    HttpResponse::Ok().json(json!({"error": 0, "message": "Success", "data": {field: id}}))
}

async fn oauth(req: HttpRequest, state: Shared, body: web::Bytes) -> HttpResponse {
    let mut g = state.lock().unwrap();
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let secret = req.headers().get("secret_key").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let refused = |g: &mut Inner, code: i64, name: &str, description: &str| {
        g.refused_refreshes += 1;
        HttpResponse::Ok().json(json!({"error": code, "error_name": name, "error_description": description}))
    };
    if secret != g.app_secret || form.get("app_id") != Some(&g.app_id) {
        return refused(&mut g, -14002, "Invalid app", "app_id or secret_key is wrong");
    }
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return refused(&mut g, -14001, "Invalid grant type", "grant_type must be refresh_token");
    }
    let token = form.get("refresh_token").cloned().unwrap_or_default();
    if !g.refresh.remove(&token) {
        let why = if g.spent.contains(&token) { "Refresh token was used" } else { "Refresh token is invalid" };
        return refused(&mut g, -14014, "Invalid refresh token", why);
    }
    g.spent.insert(token);
    g.refreshes += 1;
    let (access, refresh) = issue(&mut g);
    HttpResponse::Ok()
        .json(json!({"access_token": access, "refresh_token": refresh, "expires_in": g.expires_in.to_string()}))
}

async fn media(state: Shared, name: web::Path<String>) -> HttpResponse {
    let mut g = state.lock().unwrap();
    g.media_reads += 1;
    match g.media.get(name.as_str()) {
        Some((mime, bytes)) => HttpResponse::Ok().content_type(mime.clone()).body(bytes.clone()),
        None => HttpResponse::NotFound().finish(),
    }
}
