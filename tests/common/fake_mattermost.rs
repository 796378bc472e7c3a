//! A fake Mattermost server (7.1+) for the Mattermost channel's tests (issue #15): real HTTP and a real WebSocket on
//! a loopback port, implementing every call and event `docs/mattermost.md` lists (Mattermost's API v4) with the same paths,
//! shapes and status codes — the error body `{"id","message","request_id","status_code","is_oauth"}`, 401 for a
//! bad token, 429 `limit exceeded` with the `X-Ratelimit-*` headers — plus what the connector re-syncs with:
//! `GET /users/{id}/channels` (the bot's channels with their `last_post_at`; answered 404 as by a server older than
//! 6.1 after [`FakeMattermost::old_server`]) and `GET /channels/{id}/posts?since=`, which follows Mattermost's API
//! (`PostList`: `order` newest first and `posts` by id).
//!
//! The WebSocket: the authentication challenge (`{"seq":1,"action":"authentication_challenge",…}` answered
//! `{"status":"OK","seq_reply":1}`), `hello` with a `connection_id`, events with `seq` counting per connection from
//! 0, `posted` with its JSON-in-JSON `post` and `mentions`, `typing`. A dropped socket keeps its connection's queue
//! when replay is allowed, so a resume (`?connection_id=…&sequence_number=…`) replays what was missed after a
//! `hello` with the same id; when replay is refused the connection is forgotten and a resume gets a fresh `hello`
//! (a new id), as a real server that lost the queue does.
//!
//! The test drives it: make users and channels, post as a user ([`FakeMattermost::post_as`]), read what the bot
//! posted ([`FakeMattermost::bot_posts`]), drop the sockets, refuse replay, rate-limit the next calls.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// What a live socket is told to do.
enum Cmd {
    Text(String),
    Close,
}

/// One WebSocket connection as the server keeps it (also while its socket is down, when replay is allowed).
struct Conn {
    next_seq: i64,
    /// Every event sent on it, by seq (what a resume replays).
    sent: Vec<(i64, String)>,
    live: Option<mpsc::UnboundedSender<Cmd>>,
}

#[derive(Default)]
struct Inner {
    /// token → user id
    tokens: HashMap<String, String>,
    users: HashMap<String, Value>,
    channels: HashMap<String, Value>,
    posts: Vec<Value>,
    files: HashMap<String, (Value, Vec<u8>)>,
    conns: HashMap<String, Conn>,
    bot_id: String,
    /// Whether a dropped connection keeps its queue for a resume.
    replay: bool,
    /// Answer this many REST calls 429 first.
    rate_limit_next: usize,
    rate_limited: usize,
    hellos: usize,
    /// `GET /channels/{id}/posts` calls answered (re-syncs).
    post_reads: usize,
    /// `GET /users/{id}/channels` calls answered.
    channel_lists: usize,
    /// Behave like a server older than 6.1: `GET /users/{id}/channels` is not a route (404).
    old_server: bool,
    /// The WebSocket is unavailable (upgrades answered 503), as while Mattermost restarts.
    down: bool,
    /// Posts made through `POST /posts` are stored and broadcast, but not answered until released (a slow answer).
    hold_answers: bool,
    released: Arc<tokio::sync::Notify>,
    last_create_at: i64,
}

pub struct FakeMattermost {
    /// `http://127.0.0.1:{port}` — the server URL an admin gives.
    pub url: String,
    pub bot_id: String,
    pub bot_token: String,
    state: Arc<Mutex<Inner>>,
    handle: ServerHandle,
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..26].to_owned()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Mattermost's error body.
fn error(status: u16, id: &str, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(json!({
        "id": id, "message": message, "request_id": new_id(), "status_code": status, "is_oauth": false,
    }))
}

type Shared = web::Data<Arc<Mutex<Inner>>>;

impl FakeMattermost {
    pub async fn start() -> Self {
        let bot_id = new_id();
        let bot_token = format!("bot{}", new_id());
        let mut inner = Inner { bot_id: bot_id.clone(), replay: true, ..Default::default() };
        inner.users.insert(
            bot_id.clone(),
            json!({"id": bot_id, "username": "helpbot", "is_bot": true, "first_name": "Help", "last_name": "Bot",
                   "nickname": "", "email": "", "roles": "system_user", "create_at": now_ms(), "update_at": now_ms(), "delete_at": 0}),
        );
        inner.tokens.insert(bot_token.clone(), bot_id.clone());
        let state = Arc::new(Mutex::new(inner));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .route("/api/v4/users/me", web::get().to(me))
                .route("/api/v4/users/autocomplete", web::get().to(users_autocomplete))
                .route("/api/v4/users/ids", web::post().to(users_by_ids))
                .route("/api/v4/users/{id}/channels", web::get().to(user_channels))
                .route("/api/v4/users/{id}", web::get().to(user))
                .route("/api/v4/channels/direct", web::post().to(direct))
                .route("/api/v4/channels/{id}", web::get().to(channel))
                .route("/api/v4/channels/{id}/posts", web::get().to(channel_posts))
                .route("/api/v4/teams/{team}/channels/autocomplete", web::get().to(channels_autocomplete))
                .route("/api/v4/posts", web::post().to(create_post))
                .route("/api/v4/files", web::post().to(upload))
                .route("/api/v4/files/{id}", web::get().to(file))
                .route("/api/v4/files/{id}/info", web::get().to(file_info))
                .route("/api/v4/websocket", web::get().to(websocket))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url: format!("http://127.0.0.1:{port}"), bot_id, bot_token, state, handle }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap()
    }

    /// A user account (not a bot); returns its id.
    pub fn user(&self, username: &str, first: &str, last: &str, email: &str) -> String {
        let id = new_id();
        self.lock().users.insert(
            id.clone(),
            json!({"id": id, "username": username, "is_bot": false, "first_name": first, "last_name": last,
                   "nickname": "", "email": email, "roles": "system_user", "create_at": now_ms(), "update_at": now_ms(), "delete_at": 0}),
        );
        id
    }

    /// A personal access token of a user account (for the "not a bot" refusal).
    pub fn user_token(&self, user_id: &str) -> String {
        let token = format!("usr{}", new_id());
        self.lock().tokens.insert(token.clone(), user_id.to_owned());
        token
    }

    /// A public (`O`) or private (`P`) channel the bot is a member of; returns its id.
    pub fn channel(&self, name: &str, kind: &str) -> String {
        let id = new_id();
        self.lock().channels.insert(
            id.clone(),
            json!({"id": id, "type": kind, "name": name, "display_name": name, "team_id": "team1",
                   "create_at": now_ms(), "update_at": now_ms(), "delete_at": 0, "header": "", "purpose": "",
                   "last_post_at": 0}),
        );
        id
    }

    /// The direct-message channel between the bot and `user_id`.
    pub fn dm(&self, user_id: &str) -> String {
        let mut g = self.lock();
        let bot = g.bot_id.clone();
        direct_channel(&mut g, &bot, user_id)
    }

    /// `user_id` posts `message` in `channel_id` (in the thread of `root_id` when not empty); the bot's sockets get
    /// a `posted` event. Returns the post's id.
    pub fn post_as(&self, user_id: &str, channel_id: &str, message: &str, root_id: &str) -> String {
        let mut g = self.lock();
        let post = new_post(&mut g, user_id, channel_id, message, root_id, vec![], json!({}));
        let id = post["id"].as_str().unwrap().to_owned();
        broadcast_posted(&mut g, &post);
        id
    }

    /// `user_id` posts `message` with one file (uploaded first, as clients do); returns the post's id.
    pub fn post_file_as(&self, user_id: &str, channel_id: &str, message: &str, name: &str, bytes: &[u8]) -> String {
        let mut g = self.lock();
        let file_id = new_id();
        let info = json!({"id": file_id, "user_id": user_id, "channel_id": channel_id, "create_at": now_ms(), "name": name,
            "extension": name.rsplit('.').next().unwrap_or_default(), "size": bytes.len(), "mime_type": "text/plain"});
        g.files.insert(file_id.clone(), (info, bytes.to_vec()));
        let post = new_post(&mut g, user_id, channel_id, message, "", vec![file_id], json!({}));
        let id = post["id"].as_str().unwrap().to_owned();
        broadcast_posted(&mut g, &post);
        id
    }

    /// A file's name and bytes, as uploaded.
    pub fn file(&self, id: &str) -> Option<(String, Vec<u8>)> {
        self.lock()
            .files
            .get(id)
            .map(|(info, bytes)| (info["name"].as_str().unwrap_or_default().to_owned(), bytes.clone()))
    }

    /// Report `user_id` typing in `channel_id` (thread `parent_id`).
    pub fn typing(&self, user_id: &str, channel_id: &str, parent_id: &str) {
        let mut g = self.lock();
        let event = json!({"event": "typing", "data": {"parent_id": parent_id, "user_id": user_id},
            "broadcast": {"omit_users": {user_id: true}, "user_id": "", "channel_id": channel_id, "team_id": ""}});
        broadcast(&mut g, event);
    }

    /// What the bot posted, oldest first.
    pub fn bot_posts(&self) -> Vec<Value> {
        let g = self.lock();
        g.posts.iter().filter(|p| p["user_id"] == json!(g.bot_id)).cloned().collect()
    }

    /// Wait until the bot has posted `n` posts (panics after `within`).
    pub async fn wait_bot_posts(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let posts = self.bot_posts();
            if posts.len() >= n {
                return posts;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the bot posted {} of {n} within {within:?}: {posts:?}",
                posts.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Close every live socket from the server side. With `replay`, each connection keeps its queue (a resume
    /// replays what it missed); without, the connections are forgotten (a resume gets a fresh `hello`).
    pub fn drop_sockets(&self, replay: bool) {
        let mut g = self.lock();
        g.replay = replay;
        for conn in g.conns.values_mut() {
            if let Some(tx) = conn.live.take() {
                let _ = tx.send(Cmd::Close);
            }
        }
        if !replay {
            g.conns.clear();
        }
    }

    /// Make the WebSocket unavailable (`true`: upgrades are answered 503 and live sockets closed, keeping their queues
    /// only when replay is allowed) or available again (`false`): the connector cannot reconnect in between.
    pub fn set_down(&self, down: bool) {
        let mut g = self.lock();
        g.down = down;
        if down {
            let replay = g.replay;
            for conn in g.conns.values_mut() {
                if let Some(tx) = conn.live.take() {
                    let _ = tx.send(Cmd::Close);
                }
            }
            if !replay {
                g.conns.clear();
            }
        }
    }

    /// Revoke a token: REST calls and socket upgrades with it get 401 from now on.
    pub fn revoke(&self, token: &str) {
        self.lock().tokens.remove(token);
    }

    /// Allow resumes again after [`Self::drop_sockets`]`(false)`.
    pub fn allow_replay(&self) {
        self.lock().replay = true;
    }

    /// Sockets open now.
    pub fn live_sockets(&self) -> usize {
        self.lock().conns.values().filter(|c| c.live.is_some()).count()
    }

    /// `hello`s sent so far (one per socket opened and authenticated).
    pub fn hellos(&self) -> usize {
        self.lock().hellos
    }

    /// `GET /channels/{id}/posts` calls answered so far (how often the connector re-synced a channel).
    pub fn post_reads(&self) -> usize {
        self.lock().post_reads
    }

    /// `GET /users/{id}/channels` calls answered so far.
    pub fn channel_lists(&self) -> usize {
        self.lock().channel_lists
    }

    /// Behave like a Mattermost server older than 6.1, which has no `GET /users/{id}/channels` (404).
    /// Hold (`true`) or release the answers of `POST /posts`: while held, a post is stored and its `posted` event
    /// sent, but the client waits for the answer — as when Mattermost answers slowly.
    pub fn hold_post_answers(&self, hold: bool) {
        let released = {
            let mut g = self.lock();
            g.hold_answers = hold;
            g.released.clone()
        };
        if !hold {
            released.notify_waiters();
        }
    }

    pub fn old_server(&self, old: bool) {
        self.lock().old_server = old;
    }

    /// Answer the next `n` REST calls 429.
    pub fn rate_limit(&self, n: usize) {
        self.lock().rate_limit_next = n;
    }

    /// REST calls answered 429 so far.
    pub fn rate_limited(&self) -> usize {
        self.lock().rate_limited
    }

    /// Wait until a socket is open and authenticated (panics after `within`).
    pub async fn wait_socket(&self, hellos_at_least: usize, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !(self.live_sockets() > 0 && self.hellos() >= hellos_at_least) {
            assert!(tokio::time::Instant::now() < deadline, "no bot socket within {within:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

fn direct_channel(g: &mut Inner, a: &str, b: &str) -> String {
    let (x, y) = if a < b { (a, b) } else { (b, a) };
    let name = format!("{x}__{y}");
    if let Some(c) = g.channels.values().find(|c| c["name"] == json!(name)) {
        return c["id"].as_str().unwrap().to_owned();
    }
    let id = new_id();
    g.channels.insert(
        id.clone(),
        json!({"id": id, "type": "D", "name": name, "display_name": "", "team_id": "",
               "create_at": now_ms(), "update_at": now_ms(), "delete_at": 0, "header": "", "purpose": "",
               "last_post_at": 0}),
    );
    id
}

fn new_post(
    g: &mut Inner,
    user_id: &str,
    channel_id: &str,
    message: &str,
    root_id: &str,
    file_ids: Vec<String>,
    props: Value,
) -> Value {
    let t = now_ms().max(g.last_create_at + 1);
    g.last_create_at = t;
    let post = json!({"id": new_id(), "create_at": t, "update_at": t, "edit_at": 0, "delete_at": 0, "user_id": user_id,
        "channel_id": channel_id, "root_id": root_id, "original_id": "", "message": message, "type": "", "props": props,
        "hashtags": "", "pending_post_id": "", "reply_count": 0, "file_ids": file_ids, "metadata": {}});
    g.posts.push(post.clone());
    if let Some(c) = g.channels.get_mut(channel_id) {
        c["last_post_at"] = json!(t);
    }
    post
}

/// Send `event` (without `seq`) on every connection of the bot, numbering it per connection.
fn broadcast(g: &mut Inner, event: Value) {
    for conn in g.conns.values_mut() {
        let mut e = event.clone();
        e["seq"] = json!(conn.next_seq);
        let text = e.to_string();
        conn.sent.push((conn.next_seq, text.clone()));
        conn.next_seq += 1;
        if let Some(tx) = &conn.live {
            let _ = tx.send(Cmd::Text(text));
        }
    }
}

fn broadcast_posted(g: &mut Inner, post: &Value) {
    let channel_id = post["channel_id"].as_str().unwrap_or_default();
    let channel = g.channels.get(channel_id).cloned().unwrap_or(Value::Null);
    let sender = g.users.get(post["user_id"].as_str().unwrap_or_default()).cloned().unwrap_or(Value::Null);
    let message = post["message"].as_str().unwrap_or_default().to_lowercase();
    let mut mentions: Vec<String> = g
        .users
        .values()
        .filter(|u| {
            let name = format!("@{}", u["username"].as_str().unwrap_or_default());
            message.split(|c: char| c.is_whitespace() || c == ',' || c == ':').any(|w| w == name)
        })
        .filter_map(|u| u["id"].as_str().map(str::to_owned))
        .collect();
    // In a DM the other member is always notified.
    if channel["type"] == "D" && post["user_id"] != json!(g.bot_id) && !mentions.contains(&g.bot_id) {
        mentions.push(g.bot_id.clone());
    }
    let mut data = json!({
        "channel_display_name": channel["display_name"], "channel_name": channel["name"], "channel_type": channel["type"],
        "post": post.to_string(), "sender_name": format!("@{}", sender["username"].as_str().unwrap_or_default()),
        "team_id": channel["team_id"], "set_online": true,
    });
    if !mentions.is_empty() {
        data["mentions"] = json!(serde_json::to_string(&mentions).unwrap());
    }
    if post["file_ids"].as_array().is_some_and(|f| !f.is_empty()) {
        data["otherFile"] = json!("true");
    }
    let event = json!({"event": "posted", "data": data,
        "broadcast": {"omit_users": null, "user_id": "", "channel_id": channel_id, "team_id": ""}});
    broadcast(g, event);
}

/// The user a request's Bearer token belongs to, or the 401 / 429 answer.
fn authorize(req: &HttpRequest, state: &Shared) -> Result<String, Box<HttpResponse>> {
    let mut g = state.lock().unwrap();
    if g.rate_limit_next > 0 {
        g.rate_limit_next -= 1;
        g.rate_limited += 1;
        return Err(Box::new(
            HttpResponse::TooManyRequests()
                .insert_header(("X-Ratelimit-Limit", "10"))
                .insert_header(("X-Ratelimit-Remaining", "0"))
                .insert_header(("X-Ratelimit-Reset", "1"))
                .content_type("text/plain; charset=utf-8")
                .body("limit exceeded\n"),
        ));
    }
    let token = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .unwrap_or_default();
    g.tokens.get(token).cloned().ok_or_else(|| {
        Box::new(error(401, "api.context.session_expired.app_error", "Invalid or expired session, please login again."))
    })
}

macro_rules! authorized {
    ($req:expr, $state:expr) => {
        match authorize(&$req, &$state) {
            Ok(me) => me,
            Err(answer) => return *answer,
        }
    };
}

async fn me(req: HttpRequest, state: Shared) -> HttpResponse {
    let me = authorized!(req, state);
    let g = state.lock().unwrap();
    HttpResponse::Ok().json(&g.users[&me])
}

async fn user(req: HttpRequest, state: Shared, id: web::Path<String>) -> HttpResponse {
    authorized!(req, state);
    let g = state.lock().unwrap();
    match g.users.get(id.as_str()) {
        Some(u) => HttpResponse::Ok().json(u),
        None => error(404, "app.user.missing_account.const", "Unable to find the user."),
    }
}

async fn users_by_ids(req: HttpRequest, state: Shared, body: web::Json<Vec<String>>) -> HttpResponse {
    authorized!(req, state);
    let g = state.lock().unwrap();
    let found: Vec<&Value> = body.iter().filter_map(|id| g.users.get(id)).collect();
    HttpResponse::Ok().json(found)
}

/// `GET /users/{id}/channels[?include_deleted=…]` (Mattermost 6.1+): the channels of every team the user is a
/// member of, with `last_post_at`. Here the bot is a member of every channel but the DMs of others; a user of the
/// open, private and group channels and their own DMs. `me` is the caller.
async fn user_channels(
    req: HttpRequest,
    state: Shared,
    id: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let me = authorized!(req, state);
    let mut g = state.lock().unwrap();
    if g.old_server {
        return error(404, "api.context.404.app_error", "Sorry, we could not find the page.");
    }
    g.channel_lists += 1;
    let user = if id.as_str() == "me" { me } else { id.into_inner() };
    if !g.users.contains_key(&user) {
        return error(404, "app.user.missing_account.const", "Unable to find the user.");
    }
    let deleted = q.get("include_deleted").is_some_and(|v| v == "true");
    let found: Vec<&Value> = g
        .channels
        .values()
        .filter(|c| c["type"] != "D" || c["name"].as_str().is_some_and(|n| n.split("__").any(|m| m == user)))
        .filter(|c| deleted || c["delete_at"].as_i64().unwrap_or(0) == 0)
        .collect();
    HttpResponse::Ok().json(found)
}

async fn users_autocomplete(req: HttpRequest, state: Shared, q: web::Query<HashMap<String, String>>) -> HttpResponse {
    authorized!(req, state);
    let name = q.get("name").map(|n| n.to_lowercase()).unwrap_or_default();
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(25);
    let g = state.lock().unwrap();
    let users: Vec<&Value> =
        g.users.values().filter(|u| u["username"].as_str().is_some_and(|n| n.starts_with(&name))).take(limit).collect();
    HttpResponse::Ok().json(json!({"users": users, "out_of_channel": []}))
}

async fn channel(req: HttpRequest, state: Shared, id: web::Path<String>) -> HttpResponse {
    authorized!(req, state);
    let g = state.lock().unwrap();
    match g.channels.get(id.as_str()) {
        Some(c) => HttpResponse::Ok().json(c),
        None => error(404, "app.channel.get.existing.app_error", "Unable to find the existing channel."),
    }
}

async fn channels_autocomplete(
    req: HttpRequest,
    state: Shared,
    team: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    authorized!(req, state);
    let name = q.get("name").map(|n| n.to_lowercase()).unwrap_or_default();
    let g = state.lock().unwrap();
    let found: Vec<&Value> = g
        .channels
        .values()
        .filter(|c| c["team_id"] == json!(team.as_str()) && c["type"] != "D" && c["type"] != "G")
        .filter(|c| c["name"].as_str().is_some_and(|n| n.contains(&name)))
        .collect();
    HttpResponse::Ok().json(found)
}

async fn direct(req: HttpRequest, state: Shared, body: web::Json<Vec<String>>) -> HttpResponse {
    authorized!(req, state);
    let mut g = state.lock().unwrap();
    if body.len() != 2 || body.iter().any(|id| !g.users.contains_key(id)) {
        return error(400, "api.context.invalid_body_param.app_error", "Invalid or missing user ids in request body.");
    }
    let id = direct_channel(&mut g, &body[0], &body[1]);
    HttpResponse::Created().json(&g.channels[&id])
}

/// `GET /channels/{id}/posts?since=` — follows Mattermost's API: a `PostList` of the posts created or changed
/// since `since` (ms), `order` newest first.
async fn channel_posts(
    req: HttpRequest,
    state: Shared,
    id: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    authorized!(req, state);
    let since: i64 = q.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut g = state.lock().unwrap();
    g.post_reads += 1;
    if !g.channels.contains_key(id.as_str()) {
        return error(404, "app.channel.get.existing.app_error", "Unable to find the existing channel.");
    }
    let mut posts: Vec<&Value> = g
        .posts
        .iter()
        .filter(|p| p["channel_id"] == json!(id.as_str()) && p["update_at"].as_i64().unwrap_or(0) >= since)
        .collect();
    posts.sort_by_key(|p| std::cmp::Reverse(p["create_at"].as_i64().unwrap_or(0)));
    let order: Vec<&Value> = posts.iter().map(|p| &p["id"]).collect();
    let by_id: serde_json::Map<String, Value> =
        posts.iter().map(|p| (p["id"].as_str().unwrap().to_owned(), (*p).clone())).collect();
    HttpResponse::Ok().json(json!({"order": order, "posts": by_id, "next_post_id": "", "prev_post_id": ""}))
}

async fn create_post(req: HttpRequest, state: Shared, body: web::Json<Value>) -> HttpResponse {
    let me = authorized!(req, state);
    // The lock is taken in a block of its own so no guard lives across the hold below.
    let (post, released) = {
        let mut g = state.lock().unwrap();
        let channel_id = body["channel_id"].as_str().unwrap_or_default().to_owned();
        if channel_id.is_empty() {
            return error(
                400,
                "api.context.invalid_body_param.app_error",
                "Invalid or missing channel_id in request body.",
            );
        }
        if !g.channels.contains_key(&channel_id) {
            return error(403, "api.context.permissions.app_error", "You do not have the appropriate permissions.");
        }
        let root_id = body["root_id"].as_str().unwrap_or_default().to_owned();
        if !root_id.is_empty() && !g.posts.iter().any(|p| p["id"] == json!(root_id)) {
            return error(400, "api.post.create_post.root_id.app_error", "Invalid RootId parameter.");
        }
        let file_ids: Vec<String> = body["file_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let message = body["message"].as_str().unwrap_or_default().to_owned();
        // Mattermost keeps the props a client gives (the JSON-in-JSON `post` of `posted` carries them).
        let props = if body["props"].is_object() { body["props"].clone() } else { json!({}) };
        let post = new_post(&mut g, &me, &channel_id, &message, &root_id, file_ids, props);
        broadcast_posted(&mut g, &post);
        (post, g.released.clone())
    };
    loop {
        let next = released.notified();
        if !state.lock().unwrap().hold_answers {
            break;
        }
        next.await;
    }
    HttpResponse::Created().json(post)
}

/// `POST /files` (multipart: `channel_id`, `files` repeatable) → 201 `{"file_infos":[…],"client_ids":[]}`.
async fn upload(req: HttpRequest, state: Shared, body: web::Bytes) -> HttpResponse {
    let me = authorized!(req, state);
    let content_type = req.headers().get("Content-Type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let Some(boundary) = content_type.split("boundary=").nth(1).map(|b| b.trim_matches('"').to_owned()) else {
        return error(400, "api.context.invalid_body_param.app_error", "Invalid multipart form.");
    };
    let parts = multipart(&body, &boundary);
    let channel_id = parts
        .iter()
        .find(|p| p.name == "channel_id")
        .map(|p| String::from_utf8_lossy(&p.data).trim().to_owned())
        .unwrap_or_default();
    let mut g = state.lock().unwrap();
    if !g.channels.contains_key(&channel_id) {
        return error(
            400,
            "api.file.upload_file.incorrect_channelId.app_error",
            "Unable to upload the file. Incorrect channel ID.",
        );
    }
    let mut infos = Vec::new();
    for part in parts.iter().filter(|p| p.name == "files") {
        if part.data.len() > 50 * 1024 * 1024 {
            return error(
                413,
                "api.file.upload_file.too_large_detailed.app_error",
                "Unable to upload file. File is too large.",
            );
        }
        let id = new_id();
        let name = part.filename.clone().unwrap_or_else(|| "file".into());
        let info = json!({"id": id, "user_id": me, "channel_id": channel_id, "create_at": now_ms(), "name": name,
            "extension": name.rsplit('.').next().unwrap_or_default(), "size": part.data.len(),
            "mime_type": part.content_type.clone().unwrap_or_else(|| "application/octet-stream".into())});
        g.files.insert(id, (info.clone(), part.data.clone()));
        infos.push(info);
    }
    HttpResponse::Created().json(json!({"file_infos": infos, "client_ids": []}))
}

async fn file(req: HttpRequest, state: Shared, id: web::Path<String>) -> HttpResponse {
    authorized!(req, state);
    let g = state.lock().unwrap();
    match g.files.get(id.as_str()) {
        Some((info, bytes)) => HttpResponse::Ok()
            .content_type(info["mime_type"].as_str().unwrap_or("application/octet-stream"))
            .body(bytes.clone()),
        None => error(404, "app.file_info.get.app_error", "Unable to get the file info."),
    }
}

async fn file_info(req: HttpRequest, state: Shared, id: web::Path<String>) -> HttpResponse {
    authorized!(req, state);
    let g = state.lock().unwrap();
    match g.files.get(id.as_str()) {
        Some((info, _)) => HttpResponse::Ok().json(info),
        None => error(404, "app.file_info.get.app_error", "Unable to get the file info."),
    }
}

struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

/// A small multipart/form-data reader (enough for the connector's uploads).
fn multipart(body: &[u8], boundary: &str) -> Vec<Part> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, delimiter.as_bytes()) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let rest_trim = rest.strip_prefix(b"\r\n").unwrap_or(rest);
        let Some(head_end) = find(rest_trim, b"\r\n\r\n") else { break };
        let head = String::from_utf8_lossy(&rest_trim[..head_end]).to_string();
        let data_start = &rest_trim[head_end + 4..];
        let end = find(data_start, format!("\r\n{delimiter}").as_bytes()).unwrap_or(data_start.len());
        let disposition =
            head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition:")).unwrap_or_default();
        let attr = |key: &str| {
            disposition
                .split(';')
                .map(str::trim)
                .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
        };
        let content_type = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Type:").or_else(|| l.strip_prefix("content-type:")))
            .map(|v| v.trim().to_owned());
        parts.push(Part {
            name: attr("name").unwrap_or_default(),
            filename: attr("filename"),
            content_type,
            data: data_start[..end].to_vec(),
        });
        rest = &data_start[end..];
    }
    parts
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `GET /api/v4/websocket[?connection_id=…&sequence_number=…]`.
async fn websocket(
    req: HttpRequest,
    body: web::Payload,
    state: Shared,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, actix_web::Error> {
    if state.lock().unwrap().down {
        return Ok(error(503, "api.web_socket.connect.unavailable", "The server is restarting."));
    }
    // A Bearer header on the upgrade must be valid (official clients send one); without one the challenge decides.
    if req.headers().contains_key("Authorization") {
        let token = req
            .headers()
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        if !state.lock().unwrap().tokens.contains_key(&token) {
            return Ok(error(401, "api.web_socket.connect.upgrade.app_error", "Invalid or expired session."));
        }
    }
    let (response, mut session, mut stream) = actix_ws::handle(&req, body)?;
    let resume_id = q.get("connection_id").cloned();
    let resume_seq: Option<i64> = q.get("sequence_number").and_then(|s| s.parse().ok());
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        // 1. The authentication challenge.
        let challenge = loop {
            match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
                Ok(Some(Ok(actix_ws::Message::Text(t)))) => {
                    break serde_json::from_str::<Value>(&t).unwrap_or(Value::Null);
                }
                Ok(Some(Ok(actix_ws::Message::Ping(p)))) => {
                    let _ = session.pong(&p).await;
                }
                Ok(Some(Ok(_))) => {}
                _ => return,
            }
        };
        let token = challenge["data"]["token"].as_str().unwrap_or_default().to_owned();
        let seq = challenge["seq"].as_i64().unwrap_or(1);
        let user = state.lock().unwrap().tokens.get(&token).cloned();
        if challenge["action"] != "authentication_challenge" || user.is_none() {
            let fail = json!({"status": "FAIL", "seq_reply": seq,
                "error": {"id": "api.web_socket_router.not_authenticated.app_error", "message": "Not authenticated."}});
            let _ = session.text(fail.to_string()).await;
            let _ = session.close(None).await;
            return;
        }
        let _ = session.text(json!({"status": "OK", "seq_reply": seq}).to_string()).await;
        // 2. hello: a resume (same id, then the missed events) or a fresh connection.
        let (tx, mut rx) = mpsc::unbounded_channel::<Cmd>();
        let (connection_id, backlog) = {
            let mut g = state.lock().unwrap();
            g.hellos += 1;
            let bot = g.bot_id.clone();
            let hello = |id: &str, seq: i64| {
                json!({"event": "hello", "data": {"server_version": "7.1.0", "connection_id": id},
                    "broadcast": {"omit_users": null, "user_id": bot, "channel_id": "", "team_id": ""}, "seq": seq})
                .to_string()
            };
            let replay = g.replay;
            let resumable = match (&resume_id, resume_seq) {
                (Some(id), Some(next)) if replay => g.conns.get(id).is_some_and(|c| {
                    c.live.is_none() && next <= c.next_seq && c.sent.first().is_none_or(|(s, _)| *s <= next)
                }),
                _ => false,
            };
            if resumable {
                let id = resume_id.clone().unwrap();
                let next = resume_seq.unwrap();
                let conn = g.conns.get_mut(&id).unwrap();
                let mut backlog = vec![hello(&id, conn.next_seq)];
                backlog.extend(conn.sent.iter().filter(|(s, _)| *s >= next).map(|(_, t)| t.clone()));
                conn.live = Some(tx);
                (id, backlog)
            } else {
                let id = new_id();
                let text = hello(&id, 0);
                g.conns.insert(id.clone(), Conn { next_seq: 1, sent: vec![(0, text.clone())], live: Some(tx) });
                (id, vec![text])
            }
        };
        for text in backlog {
            if session.text(text).await.is_err() {
                return;
            }
        }
        // 3. Events until either side closes.
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Text(t)) => if session.text(t).await.is_err() { break },
                    Some(Cmd::Close) | None => {
                        let _ = session.clone().close(None).await;
                        return;
                    }
                },
                msg = stream.next() => match msg {
                    Some(Ok(actix_ws::Message::Text(t))) => {
                        let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                        if let Some(seq) = v["seq"].as_i64() {
                            let _ = session.text(json!({"status": "OK", "seq_reply": seq}).to_string()).await;
                        }
                    }
                    Some(Ok(actix_ws::Message::Ping(p))) => { let _ = session.pong(&p).await; }
                    Some(Ok(actix_ws::Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        // The client went away: keep the queue for a resume only when replay is allowed.
        let mut g = state.lock().unwrap();
        if g.replay {
            if let Some(c) = g.conns.get_mut(&connection_id) {
                c.live = None;
            }
        } else {
            g.conns.remove(&connection_id);
        }
    });
    Ok(response)
}
