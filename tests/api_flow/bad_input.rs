//! DESIGN invariant 5: every endpoint validates. A client error is a 4xx with exactly
//! `{"error": "<code>", "message": "<text>"}`, never a 500, and it writes nothing.
//!
//! Every request here goes through [`send`], which fails on any 5xx; each test also checks the
//! server's own request metrics for 5xx answers at the end. After each refused request the
//! data the admin can see (teams, channels, statuses, agents, tokens, conversations, messages,
//! customers, deliveries, the audit log) is compared with what it was before.

use crate::common;

use std::collections::BTreeSet;

use common::{Api, PASSWORD, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An id no row has.
const MISSING: i64 = 999_999;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// What a request carries.
#[derive(Clone, Debug)]
enum Body {
    None,
    /// Serialised as JSON with `Content-Type: application/json`.
    Json(Value),
    /// Bytes as they are, with this content type (or none).
    Raw(Option<&'static str>, Vec<u8>),
}

#[derive(Clone, Debug)]
struct Req {
    method: Method,
    path: String,
    body: Body,
    /// Extra headers (e.g. a broken Authorization).
    headers: Vec<(&'static str, Vec<u8>)>,
}

impl std::fmt::Display for Req {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path: String = self.path.chars().take(120).collect();
        write!(f, "{} {path}", self.method)?;
        match &self.body {
            Body::None => Ok(()),
            Body::Json(v) => {
                let text: String = v.to_string().chars().take(160).collect();
                write!(f, " {text}")
            }
            Body::Raw(ct, bytes) => {
                let ct = ct.unwrap_or("no content type");
                if bytes.len() > 80 {
                    write!(f, " [{ct}] <{} bytes>", bytes.len())
                } else {
                    write!(f, " [{ct}] {:?}", String::from_utf8_lossy(bytes))
                }
            }
        }
    }
}

fn req(method: Method, path: impl Into<String>, body: Body) -> Req {
    Req { method, path: path.into(), body, headers: vec![] }
}

fn get(path: impl Into<String>) -> Req {
    req(Method::GET, path, Body::None)
}
fn delete(path: impl Into<String>) -> Req {
    req(Method::DELETE, path, Body::None)
}
fn post(path: impl Into<String>, body: Value) -> Req {
    req(Method::POST, path, Body::Json(body))
}
fn patch(path: impl Into<String>, body: Value) -> Req {
    req(Method::PATCH, path, Body::Json(body))
}
fn put(path: impl Into<String>, body: Value) -> Req {
    req(Method::PUT, path, Body::Json(body))
}
fn raw(method: Method, path: impl Into<String>, ct: Option<&'static str>, bytes: &[u8]) -> Req {
    req(method, path, Body::Raw(ct, bytes.to_vec()))
}

/// Send a request as `api`; the server must never answer 5xx.
async fn send(api: &Api, r: &Req) -> (StatusCode, Value) {
    let mut rb = api.request(r.method.clone(), &r.path);
    for (name, value) in &r.headers {
        rb = rb.header(*name, reqwest::header::HeaderValue::from_bytes(value).expect("a sendable header"));
    }
    rb = match &r.body {
        Body::None => rb,
        Body::Json(v) => rb.json(v),
        Body::Raw(Some(ct), bytes) => rb.header("Content-Type", *ct).body(bytes.clone()),
        Body::Raw(None, bytes) => rb.body(bytes.clone()),
    };
    let resp = rb.send().await.unwrap_or_else(|e| panic!("{r}: {e}"));
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    assert!(status.as_u16() < 500, "{r} answered {status} {body} (a server error)");
    (status, body)
}

/// Assert an error answer of exactly `{"error": code, "message": non-empty}`.
fn expect_error(got: &(StatusCode, Value), status: u16, code: &str, what: &str) {
    assert_eq!(got.0.as_u16(), status, "{what}: expected {status} {code}, got {} {}", got.0, got.1);
    let obj = got.1.as_object().unwrap_or_else(|| panic!("{what}: the error body is not JSON: {}", got.1));
    assert_eq!(obj.len(), 2, "{what}: the error body has exactly error and message: {}", got.1);
    assert_eq!(got.1["error"], code, "{what}: {}", got.1);
    assert!(got.1["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: a message for people: {}", got.1);
}

/// Compare two snapshots key by key, naming what changed.
fn assert_unchanged(before: &Value, after: &Value, what: &str) {
    let (b, a) = (before.as_object().unwrap(), after.as_object().unwrap());
    let changed: BTreeSet<&String> = b.keys().chain(a.keys()).filter(|k| b.get(*k) != a.get(*k)).collect();
    assert!(
        changed.is_empty(),
        "{what} wrote something: {changed:?} changed\nbefore: {}\nafter:  {}",
        serde_json::to_string(&changed.iter().map(|k| b.get(k.as_str())).collect::<Vec<_>>()).unwrap(),
        serde_json::to_string(&changed.iter().map(|k| a.get(k.as_str())).collect::<Vec<_>>()).unwrap()
    );
}

/// The server's own request counters must hold no 5xx answer (every server in this process
/// shares them, so this covers every test of the file that ran so far).
async fn assert_no_server_errors(srv: &TestServer) {
    let text = reqwest::get(format!("{}/metrics", srv.base)).await.unwrap().text().await.unwrap();
    assert!(text.contains("switchboard_http_requests_total{"), "the request counters are there to check");
    let bad: Vec<&str> =
        text.lines().filter(|l| l.starts_with("switchboard_http_requests_total") && l.contains("status=\"5")).collect();
    assert!(bad.is_empty(), "5xx answers were counted: {bad:#?}");
}

/// The `/api/v1` routes of `src/http/routes.rs` (read by the test kit): (METHOD, pattern).
fn api_routes() -> Vec<(String, String)> {
    common::cases::api_routes().into_iter().map(|r| (r.method, r.pattern)).collect()
}

fn long(n: usize) -> String {
    "x".repeat(n)
}

// ---------------------------------------------------------------------------------------------
// The desk every test starts from
// ---------------------------------------------------------------------------------------------

struct Desk {
    srv: TestServer,
    admin: Api,
    /// An agent with access to `shop`.
    bob: Api,
    team: i64,
    inbox: i64,
    shop: i64,
    /// A disabled custom channel.
    old: i64,
    conv: i64,
    conv2: i64,
    /// A chat in progress, on a sync channel.
    chat: i64,
    /// A conversation on the email inbox.
    mail: i64,
    customer: i64,
    customer2: i64,
    message: i64,
}

impl Desk {
    async fn new() -> Self {
        Self::with(TestServer::start().await).await
    }

    async fn with(srv: TestServer) -> Self {
        let admin = srv.agent("admin@example.com", "super_admin").await;
        let bob = srv.agent("bob@example.com", "agent").await;
        let team = admin.ok_post("/api/v1/teams", json!({"name": "Support"}), 201).await["id"].as_i64().unwrap();
        let inbox = admin.channel("email", "Inbox", None).await;
        let shop = admin.channel("custom", "Shop", Some("async")).await;
        let old = admin.channel("custom", "Old", Some("async")).await;
        let (s, _) = admin.patch(&format!("/api/v1/channels/{old}"), json!({"enabled": false})).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) =
            admin.put(&format!("/api/v1/agents/{}/channels", bob.agent_id), json!({"channel_ids": [shop]})).await;
        assert_eq!(s, StatusCode::OK);
        admin
            .ok_post(
                "/api/v1/statuses",
                json!({"key": "waiting_vendor", "name": "Waiting on vendor", "base": "pending",
                    "required_fields": ["team", "custom:vendor"]}),
                201,
            )
            .await;
        let first = admin
            .ok_post(
                "/api/v1/conversations",
                json!({"channel": shop, "user_custom_id": "u-1", "name": "Kim",
                    "email": "kim@example.com", "content": "My order is late", "subject": "Late"}),
                201,
            )
            .await;
        let second = admin
            .ok_post(
                "/api/v1/conversations",
                json!({"channel": shop, "user_custom_id": "u-2", "content": "Hello"}),
                201,
            )
            .await;
        let conv = first["conversation_id"].as_i64().unwrap();
        let chat_channel = admin.channel("custom", "Chat", Some("sync")).await;
        let chat = admin.inbound(chat_channel, "c-1", "Anyone there?").await;
        let mail = admin.inbound(inbox, "m-1", "By mail").await;
        let message = admin
            .ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "On its way"}), 201)
            .await["message_id"]
            .as_i64()
            .unwrap();
        Self {
            admin,
            bob,
            team,
            inbox,
            shop,
            old,
            conv,
            conv2: second["conversation_id"].as_i64().unwrap(),
            chat,
            mail,
            customer: first["user_id"].as_i64().unwrap(),
            customer2: second["user_id"].as_i64().unwrap(),
            message,
            srv,
        }
    }

    /// Everything a request could have written, as the admin sees it.
    async fn snapshot(&self) -> Value {
        let a = &self.admin;
        let mut out = serde_json::Map::new();
        let paths = [
            "/api/v1/teams".to_owned(),
            format!("/api/v1/teams/{}", self.team),
            "/api/v1/channels".to_owned(),
            "/api/v1/statuses".to_owned(),
            "/api/v1/agents".to_owned(),
            "/api/v1/conversations?include_merged=true&show_active_chats=true&per_page=100".to_owned(),
            format!("/api/v1/conversations/{}", self.conv),
            format!("/api/v1/conversations/{}", self.conv2),
            format!("/api/v1/conversations/{}/messages?limit=200", self.conv),
            format!("/api/v1/conversations/{}/messages?limit=200", self.conv2),
            format!("/api/v1/conversations/{}", self.chat),
            format!("/api/v1/conversations/{}/messages?limit=200", self.mail),
            "/api/v1/customers?per_page=100".to_owned(),
            format!("/api/v1/customers/{}", self.customer),
            format!("/api/v1/customers/{}", self.customer2),
            "/api/v1/companies".to_owned(),
            "/api/v1/audit?limit=200".to_owned(),
            "/api/v1/settings/notifications".to_owned(),
        ];
        let mut got = futures_util::future::join_all(paths.iter().map(|p| a.ok_get(p))).await;
        for (path, list) in paths.iter().zip(got.iter_mut()) {
            if path.contains("/messages") {
                // The background dispatcher updates a reply's delivery state as it tries (#16).
                for m in list.as_array_mut().unwrap() {
                    m.as_object_mut().unwrap().remove("delivery");
                }
            }
        }
        out.extend(paths.into_iter().zip(got));
        let mut tokens = a.ok_get("/api/v1/tokens").await;
        for t in tokens.as_array_mut().unwrap() {
            // A token's own use updates this.
            t.as_object_mut().unwrap().remove("last_used_at");
        }
        out.insert("tokens".into(), tokens);
        let mut deliveries = a.ok_get(&format!("/api/v1/channels/{}/deliveries", self.shop)).await;
        for item in deliveries.as_array_mut().unwrap() {
            // The background dispatcher updates these as it retries; the rows are what counts.
            for volatile in ["state", "attempts", "last_error", "next_attempt_at", "delivered_at"] {
                item.as_object_mut().unwrap().remove(volatile);
            }
        }
        out.insert("deliveries".into(), deliveries);
        Value::Object(out)
    }

    /// Send `r` as the admin, expect the error, and check that nothing changed.
    async fn refused(&self, r: &Req, status: u16, code: &str) {
        let before = self.snapshot().await;
        let got = send(&self.admin, r).await;
        expect_error(&got, status, code, &r.to_string());
        assert_unchanged(&before, &self.snapshot().await, &r.to_string());
    }

    /// Every case of a table, as the admin, against one snapshot (cheaper than one per case,
    /// and still names the request that wrote something: the check runs after each).
    async fn refuse_all(&self, cases: &[(Req, u16, &str)]) {
        let before = self.snapshot().await;
        for (r, status, code) in cases {
            let got = send(&self.admin, r).await;
            expect_error(&got, *status, code, &r.to_string());
            assert_unchanged(&before, &self.snapshot().await, &r.to_string());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed bodies, on every JSON route
// ---------------------------------------------------------------------------------------------

/// A JSON route with a body that would be accepted, bodies of the wrong types, and (when the
/// route has required fields) a body that lacks one.
struct JsonRoute {
    method: Method,
    pattern: &'static str,
    path: String,
    valid: Value,
    wrong_types: Vec<Value>,
    missing_field: Option<Value>,
    /// The request struct uses `deny_unknown_fields`.
    strict: bool,
}

fn json_routes(d: &Desk) -> Vec<JsonRoute> {
    let (c, c2, cu, cu2, t, shop) = (d.conv, d.conv2, d.customer, d.customer2, d.team, d.shop);
    let (bob, inbox) = (d.bob.agent_id, d.inbox);
    let r = |method: Method,
             pattern: &'static str,
             path: String,
             valid: Value,
             wrong_types: Vec<Value>,
             missing_field: Option<Value>,
             strict: bool| JsonRoute { method, pattern, path, valid, wrong_types, missing_field, strict };
    vec![
        r(
            Method::POST,
            "/agents/invitations",
            "/api/v1/agents/invitations".into(),
            json!({"email": "invitee@example.com", "name": "Invitee"}),
            vec![
                json!({"email": 5}),
                json!({"email": "invitee@example.com", "name": ["x"]}),
                json!({"email": "invitee@example.com", "channel_ids": "1"}),
            ],
            Some(json!({"name": "Invitee"})),
            true,
        ),
        // The token matches nothing: the body is refused before the token is looked at.
        r(
            Method::POST,
            "/invitations/{token}",
            "/api/v1/invitations/sbi_unknown".into(),
            json!({"password": "long enough pw"}),
            vec![json!({"password": 12345678}), json!({"password": null})],
            Some(json!({})),
            true,
        ),
        r(
            Method::POST,
            "/setup",
            "/api/v1/setup".into(),
            json!({"email": "new@example.com", "password": "long enough pw"}),
            vec![
                json!({"email": 5, "password": "long enough pw"}),
                json!({"email": "new@example.com", "password": ["long enough pw"]}),
                json!({"email": "new@example.com", "password": "long enough pw", "name": 7}),
            ],
            Some(json!({"email": "new@example.com"})),
            true,
        ),
        r(
            Method::POST,
            "/auth/login",
            "/api/v1/auth/login".into(),
            json!({"email": "admin@example.com", "password": PASSWORD}),
            vec![
                json!({"email": 5, "password": PASSWORD}),
                json!({"email": "admin@example.com", "password": 12345678}),
                json!({"email": null, "password": PASSWORD}),
                json!({"email": ["admin@example.com"], "password": PASSWORD}),
            ],
            Some(json!({"email": "admin@example.com"})),
            true,
        ),
        r(
            Method::POST,
            "/conversations/counts",
            "/api/v1/conversations/counts".into(),
            json!({"views": {"open": "status=open", "mine": "assignee=me"}}),
            vec![
                json!({"views": ["status=open"]}),
                json!({"views": {"open": 5}}),
                json!({"views": "status=open"}),
                json!({"views": {"bad": "assignee=nobody-at-all"}}),
                json!({"views": {"bad": "sort=sideways"}}),
            ],
            Some(json!({})),
            true,
        ),
        r(
            Method::POST,
            "/conversations",
            "/api/v1/conversations".into(),
            json!({"channel": shop, "user_custom_id": "new-1", "content": "hello"}),
            vec![
                json!({"channel": shop.to_string(), "user_custom_id": "new-1", "content": "x"}),
                json!({"channel": 1.5, "user_custom_id": "new-1", "content": "x"}),
                json!({"channel": shop, "user_custom_id": 5, "content": "x"}),
                json!({"channel": shop, "user_custom_id": "new-1", "content": ["x"]}),
                json!({"channel": shop, "customer_id": "me", "content": "x"}),
                json!({"channel": shop, "user_custom_id": "new-1", "content": "x", "email": {"a": 1}}),
                json!({"channel": 99_999_999_999_999_999_999.0, "user_custom_id": "n", "content": "x"}),
            ],
            Some(json!({"channel": shop, "user_custom_id": "new-1"})),
            false,
        ),
        r(
            Method::PATCH,
            "/conversations/{id}",
            format!("/api/v1/conversations/{c}"),
            json!({"priority": "high"}),
            vec![
                json!({"status": 5}),
                json!({"assignee_id": "bob"}),
                json!({"team_id": t.to_string()}),
                json!({"tags": "vip"}),
                json!({"tags": [1]}),
                json!({"add_tags": {"a": 1}}),
                json!({"custom_fields": [1]}),
                json!({"custom_fields": "order=1"}),
                json!({"subject": false}),
            ],
            None,
            true,
        ),
        r(
            Method::POST,
            "/conversations/{id}/merge",
            format!("/api/v1/conversations/{c}/merge"),
            json!({"into": c2}),
            vec![json!({"into": c2.to_string()}), json!({"into": null}), json!({"into": [c2]}), json!({"into": 1.5})],
            Some(json!({})),
            true,
        ),
        r(
            Method::POST,
            "/conversations/{id}/messages",
            format!("/api/v1/conversations/{c}/messages"),
            json!({"content": "hi"}),
            vec![
                json!({"content": 5}),
                json!({"content": "x", "note": "yes"}),
                json!({"content": "x", "attachment_ids": "1"}),
                json!({"content": "x", "attachment_ids": ["a"]}),
                json!({"content": "x", "quoted_message_id": d.message.to_string()}),
                json!({"content": "x", "status": ["closed"]}),
            ],
            Some(json!({"note": true})),
            false,
        ),
        r(
            Method::POST,
            "/conversations/{id}/read",
            format!("/api/v1/conversations/{c}/read"),
            json!({"seq": 1}),
            vec![json!({"seq": "1"}), json!({"seq": 1.5}), json!({"seq": null})],
            Some(json!({})),
            true,
        ),
        r(
            Method::POST,
            "/conversations/{id}/notes",
            format!("/api/v1/conversations/{c}/notes"),
            json!({"content": "a note"}),
            vec![json!({"content": 5}), json!({"content": "x", "attachment_ids": {"a": 1}})],
            Some(json!({})),
            true,
        ),
        r(
            Method::PATCH,
            "/customers/{id}",
            format!("/api/v1/customers/{cu}"),
            json!({"notes": "vip"}),
            vec![
                json!({"name": 5}),
                json!({"company": 5}),
                json!({"owner_agent_id": "me"}),
                json!({"notes": []}),
                json!({"custom_fields": "x"}),
            ],
            None,
            true,
        ),
        r(
            Method::POST,
            "/customers/{id}/identities",
            format!("/api/v1/customers/{cu}/identities"),
            json!({"kind": "email", "value": "new@example.com"}),
            vec![
                json!({"kind": 1, "value": "new@example.com"}),
                json!({"kind": "email", "value": 5}),
                json!({"kind": "external", "value": "x", "channel_id": shop.to_string()}),
            ],
            Some(json!({"kind": "email"})),
            true,
        ),
        r(
            Method::POST,
            "/customers/{id}/merge",
            format!("/api/v1/customers/{cu}/merge"),
            json!({"into": cu2}),
            vec![json!({"into": cu2.to_string()}), json!({"into": null})],
            Some(json!({})),
            true,
        ),
        r(
            Method::POST,
            "/agents",
            "/api/v1/agents".into(),
            json!({"email": "new@example.com", "name": "New"}),
            vec![
                json!({"email": 5, "name": "New"}),
                json!({"email": "new@example.com", "name": "New", "channel_ids": "1"}),
                json!({"email": "new@example.com", "name": "New", "role": 1}),
                json!({"email": "new@example.com", "name": "New", "password": 12_345_678}),
            ],
            Some(json!({"email": "new@example.com"})),
            true,
        ),
        r(
            Method::PATCH,
            "/agents/{id}",
            format!("/api/v1/agents/{bob}"),
            json!({"name": "Bobby"}),
            vec![json!({"name": 5}), json!({"active": "no"}), json!({"role": ["admin"]}), json!({"password": 1})],
            None,
            true,
        ),
        r(
            Method::PUT,
            "/agents/{id}/channels",
            format!("/api/v1/agents/{bob}/channels"),
            json!({"channel_ids": [shop, d.inbox]}),
            vec![
                json!({"channel_ids": "1"}),
                json!({"channel_ids": ["a"]}),
                json!({"channel_ids": null}),
                json!({"channel_ids": [1.5]}),
            ],
            Some(json!({})),
            true,
        ),
        r(
            Method::POST,
            "/teams",
            "/api/v1/teams".into(),
            json!({"name": "New team"}),
            vec![
                json!({"name": 5}),
                json!({"name": "New team", "description": 1}),
                json!({"name": "New team", "member_ids": "1"}),
                json!({"name": "New team", "member_ids": ["a"]}),
            ],
            Some(json!({"description": "no name"})),
            true,
        ),
        r(
            Method::PATCH,
            "/teams/{id}",
            format!("/api/v1/teams/{t}"),
            json!({"name": "Renamed"}),
            vec![json!({"name": 5}), json!({"description": []})],
            None,
            true,
        ),
        r(
            Method::PUT,
            "/teams/{id}/members",
            format!("/api/v1/teams/{t}/members"),
            json!({"agent_ids": [bob]}),
            vec![json!({"agent_ids": "1"}), json!({"agent_ids": [true]})],
            Some(json!({})),
            true,
        ),
        r(
            Method::POST,
            "/channels",
            "/api/v1/channels".into(),
            json!({"kind": "custom", "name": "New", "mode": "async"}),
            vec![
                json!({"kind": 1, "name": "New"}),
                json!({"kind": "custom", "name": "New", "mode": "async", "settings": [1]}),
                json!({"kind": "custom", "name": "New", "mode": "async", "enabled": "yes"}),
                json!({"kind": "custom", "name": "New", "mode": "async", "inactivity_timeout_s": "600"}),
                json!({"kind": "custom", "name": "New", "mode": "async", "default_team_id": "1"}),
            ],
            Some(json!({"kind": "custom", "mode": "async"})),
            true,
        ),
        r(
            Method::PATCH,
            "/channels/{id}",
            format!("/api/v1/channels/{shop}"),
            json!({"name": "Renamed"}),
            vec![json!({"name": 5}), json!({"settings": "x"}), json!({"enabled": 1}), json!({"default_team_id": "x"})],
            None,
            true,
        ),
        r(
            Method::POST,
            "/statuses",
            "/api/v1/statuses".into(),
            json!({"key": "new_key", "name": "New", "base": "open"}),
            vec![
                json!({"key": 5, "name": "New", "base": "open"}),
                json!({"key": "new_key", "name": "New", "base": "open", "required_fields": "team"}),
                json!({"key": "new_key", "name": "New", "base": 1}),
            ],
            Some(json!({"key": "new_key", "name": "New"})),
            true,
        ),
        r(
            Method::PATCH,
            "/statuses/{key}",
            "/api/v1/statuses/waiting_vendor".into(),
            json!({"name": "Renamed"}),
            vec![
                json!({"name": 5}),
                json!({"position": "1"}),
                json!({"position": 1.5}),
                json!({"required_fields": "team"}),
            ],
            None,
            true,
        ),
        // NT-1…NT-13 (issue #18): every field optional, each a boolean.
        r(
            Method::PATCH,
            "/settings/notifications",
            "/api/v1/settings/notifications".into(),
            json!({"welcome_email": false}),
            vec![json!({"enabled": "no"}), json!({"cc_subscribers": 1}), json!({"ticket_closed": [true]})],
            None,
            true,
        ),
        r(
            Method::POST,
            "/tokens",
            "/api/v1/tokens".into(),
            json!({"name": "new"}),
            vec![json!({"name": 5}), json!({"name": "new", "agent_id": "me"})],
            Some(json!({"agent_id": bob})),
            true,
        ),
        r(
            Method::POST,
            "/custom-channels",
            "/api/v1/custom-channels".into(),
            json!({"name": "Hook", "webhook_url": "https://example.com/hook", "type": "async"}),
            vec![
                json!({"name": 5, "webhook_url": "https://example.com/hook", "type": "async"}),
                json!({"name": "Hook", "webhook_url": ["https://example.com/hook"], "type": "async"}),
                json!({"name": "Hook", "webhook_url": "https://example.com/hook", "type": "async", "routing": "x"}),
                json!({"name": "Hook", "webhook_url": "https://example.com/hook", "type": "async",
                    "routing": {"team_id": "1"}}),
                json!({"name": "Hook", "webhook_url": "https://example.com/hook", "type": "async",
                    "inactivity_timeout_s": "600"}),
            ],
            Some(json!({"name": "Hook", "type": "async"})),
            true,
        ),
        r(
            Method::PATCH,
            "/custom-channels/{id}",
            format!("/api/v1/custom-channels/{shop}"),
            json!({"name": "Renamed"}),
            vec![
                json!({"name": 5}),
                json!({"enabled": "no"}),
                json!({"webhook_url": 1}),
                json!({"routing": "round robin"}),
            ],
            None,
            true,
        ),
        r(
            Method::POST,
            "/custom-channels/{id}/inbound",
            format!("/api/v1/custom-channels/{shop}/inbound"),
            json!({"user_custom_id": "walk-in", "content": "hello"}),
            vec![
                json!({"user_custom_id": 5, "content": "hello"}),
                json!({"user_custom_id": "walk-in", "content": {"text": "hello"}}),
                json!({"user_custom_id": "walk-in", "content": "hello", "email": 5}),
            ],
            Some(json!({"user_custom_id": "walk-in"})),
            false,
        ),
        r(
            Method::POST,
            "/email-channels",
            "/api/v1/email-channels".into(),
            json!({"name": "Box", "protocol": "imap", "host": "127.0.0.1", "port": 9, "tls": "none",
                "username": "u", "password": "p", "smtp": {"host": "127.0.0.1", "port": 9, "tls": "none",
                "from_address": "box@example.com"}}),
            vec![
                json!({"name": "Box", "protocol": "imap", "host": "127.0.0.1", "port": "993", "tls": "none",
                    "username": "u", "password": "p", "smtp": {"host": "h", "port": 25, "tls": "none", "from_address": "a@b.c"}}),
                json!({"name": "Box", "protocol": "imap", "host": "127.0.0.1", "port": 9, "tls": "none",
                    "username": "u", "password": "p", "smtp": "smtp.example.com"}),
                json!({"name": "Box", "protocol": "imap", "host": "127.0.0.1", "port": 9, "tls": true,
                    "username": "u", "password": "p", "smtp": {"host": "h", "port": 25, "tls": "none", "from_address": "a@b.c"}}),
                json!({"name": "Box", "protocol": "imap", "host": "127.0.0.1", "port": 70000, "tls": "none",
                    "username": "u", "password": "p", "smtp": {"host": "h", "port": 25, "tls": "none", "from_address": "a@b.c"}}),
            ],
            Some(json!({"name": "Box", "protocol": "imap", "host": "127.0.0.1", "port": 9, "tls": "none",
                "username": "u", "password": "p"})),
            true,
        ),
        r(
            Method::PATCH,
            "/email-channels/{id}",
            format!("/api/v1/email-channels/{inbox}"),
            json!({"name": "Renamed"}),
            vec![json!({"name": 5}), json!({"enabled": "no"}), json!({"port": -1}), json!({"smtp": "x"})],
            None,
            true,
        ),
        r(
            Method::POST,
            "/mattermost-channels",
            "/api/v1/mattermost-channels".into(),
            json!({"name": "Bot", "server_url": "http://127.0.0.1:9", "bot_token": "t"}),
            vec![
                json!({"name": 5, "server_url": "http://127.0.0.1:9", "bot_token": "t"}),
                json!({"name": "Bot", "server_url": "http://127.0.0.1:9", "bot_token": "t", "mention_only": "yes"}),
                json!({"name": "Bot", "server_url": "http://127.0.0.1:9", "bot_token": "t", "mode": "sideways"}),
                json!({"name": "Bot", "server_url": "not a url", "bot_token": "t"}),
            ],
            Some(json!({"name": "Bot", "server_url": "http://127.0.0.1:9"})),
            true,
        ),
        r(
            Method::PATCH,
            "/mattermost-channels/{id}",
            format!("/api/v1/mattermost-channels/{shop}"),
            json!({"name": "Renamed"}),
            vec![json!({"name": 5}), json!({"enabled": "no"}), json!({"mode": "sideways"}), json!({"server_url": "x"})],
            None,
            true,
        ),
        r(
            Method::POST,
            "/mattermost-channels/{id}/conversations",
            format!("/api/v1/mattermost-channels/{shop}/conversations"),
            json!({"to": {"kind": "member", "id": "abc"}, "content": "hi"}),
            vec![
                json!({"to": {"kind": "person", "id": "abc"}, "content": "hi"}),
                json!({"to": "abc", "content": "hi"}),
                json!({"to": {"kind": "member", "id": "abc"}, "content": 5}),
            ],
            Some(json!({"content": "hi"})),
            true,
        ),
        r(
            Method::POST,
            "/zalo-channels",
            "/api/v1/zalo-channels".into(),
            json!({"name": "OA", "app_id": "1", "app_secret": "s", "oa_secret_key": "k", "access_token": "a",
                   "refresh_token": "r"}),
            vec![
                json!({"name": 5, "app_id": "1", "app_secret": "s", "oa_secret_key": "k", "access_token": "a",
                       "refresh_token": "r"}),
                json!({"name": "OA", "app_id": 1, "app_secret": "s", "oa_secret_key": "k", "access_token": "a",
                       "refresh_token": "r"}),
                json!({"name": "OA", "app_id": "1", "app_secret": "s", "oa_secret_key": "k", "access_token": "a",
                       "refresh_token": "r", "api_base_url": "not a url"}),
                json!({"name": "OA", "app_id": "1", "app_secret": "s", "oa_secret_key": "k", "access_token": "a",
                       "refresh_token": "r", "domain_verification": {"file_name": "index.html"}}),
            ],
            Some(json!({"name": "OA", "app_id": "1", "app_secret": "s", "oa_secret_key": "k", "access_token": "a"})),
            true,
        ),
        r(
            Method::PATCH,
            "/zalo-channels/{id}",
            format!("/api/v1/zalo-channels/{shop}"),
            json!({"name": "Renamed"}),
            vec![json!({"name": 5}), json!({"enabled": "no"}), json!({"api_base_url": 5})],
            None,
            true,
        ),
        // TP-1: notification templates (issue #18).
        r(
            Method::PUT,
            "/notification-templates/{kind}",
            "/api/v1/notification-templates/ticket_closed".into(),
            json!({"subject": "Closed: #Subject#", "body": "<p>#What_Happened#</p>"}),
            vec![json!({"subject": 5, "body": "b"}), json!({"subject": "s", "body": ["b"]})],
            Some(json!({"subject": "s"})),
            true,
        ),
        r(
            Method::POST,
            "/notification-templates/{kind}/preview",
            "/api/v1/notification-templates/ticket_closed/preview".into(),
            json!({"subject": "s", "body": "b"}),
            vec![json!({"subject": "s", "body": 1}), json!({"subject": "s", "body": "b", "conversation_id": "1"})],
            Some(json!({"body": "b"})),
            true,
        ),
    ]
}

#[tokio::test]
async fn malformed_bodies_on_every_json_route_are_refused_and_change_nothing() {
    let d = Desk::new().await;
    let routes = json_routes(&d);

    // Every route that takes a JSON body is in the table (logout, the raw upload, rotating a
    // secret, resending a delivery, retrying a reply, dismissing the checklist and marking notifications read take none; ending a chat takes an optional body and has
    // its own tests below).
    let listed: BTreeSet<(String, &str)> = routes.iter().map(|r| (r.method.to_string(), r.pattern)).collect();
    for (method, pattern) in api_routes() {
        if !["POST", "PATCH", "PUT"].contains(&method.as_str())
            || [
                "/auth/logout",
                "/attachments",
                "/conversations/{id}/end",
                "/custom-channels/{id}/secret",
                "/custom-channels/{id}/deliveries/{delivery}/resend",
                "/conversations/{id}/messages/{message_id}/retry",
                "/onboarding/dismiss",
                "/email-channels/{id}/check",
                // Marking notifications read takes no body (#17).
                "/me/notifications/read-all",
                "/me/notifications/{id}/read",
                // Zalo's signed event, taken as raw bytes (the signature covers them): tests/zalo.rs.
                "/zalo-channels/{id}/webhook",
            ]
            .contains(&pattern.as_str())
        {
            continue;
        }
        assert!(
            listed.contains(&(method.clone(), pattern.as_str())),
            "JSON route {method} {pattern} is not in json_routes"
        );
    }

    let json_ct = Some("application/json");
    for route in &routes {
        let (m, p) = (route.method.clone(), route.path.clone());
        let valid = serde_json::to_vec(&route.valid).unwrap();
        let trailing = [valid.as_slice(), b" trailing"].concat();
        let mut cases: Vec<(Req, u16, &str)> = vec![
            (raw(m.clone(), &p, json_ct, b"{\"na"), 400, "invalid_json"),
            (raw(m.clone(), &p, json_ct, b"{"), 400, "invalid_json"),
            (raw(m.clone(), &p, json_ct, &valid[..valid.len() - 1]), 400, "invalid_json"),
            (raw(m.clone(), &p, json_ct, &trailing), 400, "invalid_json"),
            (raw(m.clone(), &p, json_ct, b""), 400, "invalid_json"),
            (raw(m.clone(), &p, json_ct, b"{'single': 'quotes'}"), 400, "invalid_json"),
            (raw(m.clone(), &p, json_ct, b"{\"\xff\xfe\": 1}"), 400, "invalid_json"),
            (raw(m.clone(), &p, json_ct, b"null"), 400, "validation_failed"),
            (raw(m.clone(), &p, json_ct, b"\"a string\""), 400, "validation_failed"),
            (raw(m.clone(), &p, json_ct, b"42"), 400, "validation_failed"),
            (raw(m.clone(), &p, json_ct, b"[]"), 400, "validation_failed"),
            (raw(m.clone(), &p, Some("text/plain"), &valid), 415, "unsupported_media_type"),
            (raw(m.clone(), &p, None, &valid), 415, "unsupported_media_type"),
            (raw(m.clone(), &p, Some("application/x-www-form-urlencoded"), b"name=x"), 415, "unsupported_media_type"),
            (raw(m.clone(), &p, Some("multipart/form-data; boundary=x"), &valid), 415, "unsupported_media_type"),
        ];
        for wrong in &route.wrong_types {
            cases.push((req(m.clone(), &p, Body::Json(wrong.clone())), 400, "validation_failed"));
        }
        if let Some(missing) = &route.missing_field {
            cases.push((req(m.clone(), &p, Body::Json(missing.clone())), 400, "validation_failed"));
        }
        if route.strict {
            let mut extra = route.valid.clone();
            extra["unexpected_field"] = json!(1);
            cases.push((req(m.clone(), &p, Body::Json(extra)), 400, "validation_failed"));
        }
        d.refuse_all(&cases).await;
    }
    assert_no_server_errors(&d.srv).await;
}

// ---------------------------------------------------------------------------------------------
// Field validation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn invalid_fields_are_400_validation_failed_and_change_nothing() {
    let d = Desk::new().await;
    let (c, cu, t, shop, inbox) = (d.conv, d.customer, d.team, d.shop, d.inbox);
    let bob = d.bob.agent_id;
    let conv = format!("/api/v1/conversations/{c}");
    let msgs = format!("/api/v1/conversations/{c}/messages");
    let notes = format!("/api/v1/conversations/{c}/notes");
    let ids = format!("/api/v1/customers/{cu}/identities");
    let create = |extra: Value| {
        let mut body = json!({"channel": shop, "user_custom_id": "new-1", "content": "hello"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        post("/api/v1/conversations", body)
    };
    let channel = |body: Value| post("/api/v1/channels", body);
    let status = |body: Value| post("/api/v1/statuses", body);
    let agent = |body: Value| post("/api/v1/agents", body);
    let fifty_one_tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let many_fields: serde_json::Map<String, Value> = (0..101).map(|i| (format!("f{i}"), json!(i))).collect();
    let v = "validation_failed";
    let cases: Vec<(Req, u16, &str)> = vec![
        // Teams: names and descriptions.
        (post("/api/v1/teams", json!({"name": ""})), 400, v),
        (post("/api/v1/teams", json!({"name": "   "})), 400, v),
        (post("/api/v1/teams", json!({"name": long(101)})), 400, v),
        (post("/api/v1/teams", json!({"name": "a\u{7}b"})), 400, v),
        (post("/api/v1/teams", json!({"name": "ok", "description": long(2001)})), 400, v),
        (patch(format!("/api/v1/teams/{t}"), json!({"name": ""})), 400, v),
        (patch(format!("/api/v1/teams/{t}"), json!({"name": long(101)})), 400, v),
        (patch(format!("/api/v1/teams/{t}"), json!({"description": long(2001)})), 400, v),
        // Channels: kinds, modes, names, settings, timeouts.
        (channel(json!({"kind": "fax", "name": "Fax"})), 400, v),
        (channel(json!({"kind": "", "name": "None"})), 400, v),
        (channel(json!({"kind": "email", "name": "Mail", "mode": "sync"})), 400, v),
        (channel(json!({"kind": "mattermost", "name": "MM", "mode": "async"})), 400, v),
        (channel(json!({"kind": "zalo", "name": "Zalo", "mode": "async"})), 400, v),
        (channel(json!({"kind": "custom", "name": "No mode"})), 400, v),
        (channel(json!({"kind": "custom", "name": "Chatty", "mode": "chatty"})), 400, v),
        (channel(json!({"kind": "custom", "name": "", "mode": "async"})), 400, v),
        (channel(json!({"kind": "custom", "name": long(101), "mode": "async"})), 400, v),
        (
            channel(json!({"kind": "custom", "name": "Big", "mode": "async",
                "settings": {"blob": long(70_000)}})),
            400,
            v,
        ),
        (channel(json!({"kind": "custom", "name": "T", "mode": "sync", "inactivity_timeout_s": 0})), 400, v),
        (channel(json!({"kind": "custom", "name": "T", "mode": "sync", "inactivity_timeout_s": -5})), 400, v),
        (
            channel(json!({"kind": "custom", "name": "T", "mode": "sync",
                "inactivity_timeout_s": 7 * 24 * 3600 + 1})),
            400,
            v,
        ),
        (patch(format!("/api/v1/channels/{inbox}"), json!({"mode": "sync"})), 400, v),
        (patch(format!("/api/v1/channels/{shop}"), json!({"mode": "chatty"})), 400, v),
        (patch(format!("/api/v1/channels/{shop}"), json!({"name": ""})), 400, v),
        (patch(format!("/api/v1/channels/{shop}"), json!({"inactivity_timeout_s": 0})), 400, v),
        (patch(format!("/api/v1/channels/{shop}"), json!({"settings": {"blob": long(70_000)}})), 400, v),
        // Statuses: keys, names, bases, conditions.
        (status(json!({"key": "Bad", "name": "Bad", "base": "open"})), 400, v),
        (status(json!({"key": "1st", "name": "First", "base": "open"})), 400, v),
        (status(json!({"key": "a-b", "name": "Dash", "base": "open"})), 400, v),
        (status(json!({"key": "has space", "name": "Space", "base": "open"})), 400, v),
        (status(json!({"key": "", "name": "Empty", "base": "open"})), 400, v),
        (status(json!({"key": long(41), "name": "Long", "base": "open"})), 400, v),
        (status(json!({"key": "ok_key", "name": "", "base": "open"})), 400, v),
        (status(json!({"key": "ok_key", "name": long(61), "base": "open"})), 400, v),
        (status(json!({"key": "ok_key", "name": "Ok", "base": "sideways"})), 400, v),
        (status(json!({"key": "ok_key", "name": "Ok", "base": "open", "required_fields": ["nonsense"]})), 400, v),
        (status(json!({"key": "ok_key", "name": "Ok", "base": "open", "required_fields": ["custom:"]})), 400, v),
        (
            status(json!({"key": "ok_key", "name": "Ok", "base": "open",
                "required_fields": (0..21).map(|i| format!("custom:f{i}")).collect::<Vec<_>>()})),
            400,
            v,
        ),
        (patch("/api/v1/statuses/waiting_vendor", json!({"name": ""})), 400, v),
        (patch("/api/v1/statuses/waiting_vendor", json!({"required_fields": ["nonsense"]})), 400, v),
        // Agents: emails, names, roles, passwords.
        (agent(json!({"email": "not-an-email", "name": "X"})), 400, v),
        (agent(json!({"email": "a@b", "name": "X"})), 400, v),
        (agent(json!({"email": "", "name": "X"})), 400, v),
        (agent(json!({"email": "<a@example.com>", "name": "X"})), 400, v),
        (agent(json!({"email": "a b@example.com", "name": "X"})), 400, v),
        (agent(json!({"email": "new@example.com", "name": ""})), 400, v),
        (agent(json!({"email": "new@example.com", "name": long(101)})), 400, v),
        (agent(json!({"email": "new@example.com", "name": "X", "role": "god"})), 400, v),
        (agent(json!({"email": "new@example.com", "name": "X", "password": "short"})), 400, v),
        (agent(json!({"email": "new@example.com", "name": "X", "password": long(1025)})), 400, v),
        (patch(format!("/api/v1/agents/{bob}"), json!({"role": "god"})), 400, v),
        (patch(format!("/api/v1/agents/{bob}"), json!({"name": ""})), 400, v),
        (patch(format!("/api/v1/agents/{bob}"), json!({"password": "short"})), 400, v),
        // Tokens.
        (post("/api/v1/tokens", json!({"name": ""})), 400, v),
        (post("/api/v1/tokens", json!({"name": long(101)})), 400, v),
        // Starting a conversation.
        (create(json!({"content": ""})), 400, v),
        (create(json!({"content": "   "})), 400, v),
        (create(json!({"content": long(100_001)})), 400, v),
        (create(json!({"content_html": long(400_001)})), 400, v),
        (create(json!({"subject": long(301)})), 400, v),
        (create(json!({"user_custom_id": ""})), 400, v),
        (create(json!({"user_custom_id": long(256)})), 400, v),
        (create(json!({"email": "not-an-email"})), 400, v),
        (create(json!({"phone": "call me"})), 400, v),
        (create(json!({"phone": "12"})), 400, v),
        (create(json!({"name": long(201)})), 400, v),
        (create(json!({"company": long(201)})), 400, v),
        (create(json!({"external_message_id": ""})), 400, v),
        (create(json!({"external_message_id": long(501)})), 400, v),
        (create(json!({"customer_id": cu})), 400, v),
        (create(json!({"user_custom_id": null})), 400, v),
        (create(json!({"user_custom_id": null, "customer_id": 0})), 400, v),
        (create(json!({"channel": 0})), 400, v),
        (create(json!({"channel": -1})), 400, v),
        // Changing a conversation.
        (patch(&conv, json!({})), 400, v),
        (patch(&conv, json!({"priority": "meh"})), 400, v),
        (patch(&conv, json!({"subject": long(301)})), 400, v),
        (patch(&conv, json!({"tags": ["a,b"]})), 400, v),
        (patch(&conv, json!({"tags": [""]})), 400, v),
        (patch(&conv, json!({"tags": [long(51)]})), 400, v),
        (patch(&conv, json!({"tags": fifty_one_tags})), 400, v),
        (patch(&conv, json!({"add_tags": ["  "]})), 400, v),
        (patch(&conv, json!({"remove_tags": ["a,b"]})), 400, v),
        (patch(&conv, json!({"custom_fields": {"Bad Name": 1}})), 400, v),
        (patch(&conv, json!({"custom_fields": {"1st": 1}})), 400, v),
        (patch(&conv, json!({"custom_fields": {"a-b": 1}})), 400, v),
        (patch(&conv, json!({"custom_fields": {long(41): 1}})), 400, v),
        (patch(&conv, json!({"custom_fields": many_fields})), 400, v),
        (patch(&conv, json!({"custom_fields": {"big": long(70_000)}})), 400, v),
        (patch(&conv, json!({"assignee_id": 0})), 400, v),
        (patch(&conv, json!({"team_id": -1})), 400, v),
        (patch(&conv, json!({"status": "closed", "priority": "meh"})), 400, v),
        // Replies and notes.
        (post(&msgs, json!({"content": ""})), 400, v),
        (post(&msgs, json!({"content": " \n\t "})), 400, v),
        (post(&msgs, json!({"content": long(100_001)})), 400, v),
        (post(&msgs, json!({"content": "x", "content_html": long(400_001)})), 400, v),
        (post(&msgs, json!({"content": "x", "quoted_message_id": 0})), 400, v),
        (post(&msgs, json!({"content": "x", "attachment_ids": (1..=21).collect::<Vec<i64>>()})), 400, v),
        (post(&notes, json!({"content": ""})), 400, v),
        (post(&notes, json!({"content": "x", "status": "closed"})), 400, v),
        // Customers and their identities.
        (patch(format!("/api/v1/customers/{cu}"), json!({"name": ""})), 400, v),
        (patch(format!("/api/v1/customers/{cu}"), json!({"name": long(201)})), 400, v),
        (patch(format!("/api/v1/customers/{cu}"), json!({"company": ""})), 400, v),
        (patch(format!("/api/v1/customers/{cu}"), json!({"notes": long(10_001)})), 400, v),
        (post(&ids, json!({"kind": "fax", "value": "123"})), 400, v),
        (post(&ids, json!({"kind": "email", "value": "not-an-email"})), 400, v),
        (post(&ids, json!({"kind": "phone", "value": "call me"})), 400, v),
        (post(&ids, json!({"kind": "external", "value": "x"})), 400, v),
        (post(&ids, json!({"kind": "external", "value": " ", "channel_id": shop})), 400, v),
        (post(&ids, json!({"kind": "external", "value": long(256), "channel_id": shop})), 400, v),
        (post(&ids, json!({"kind": "email", "value": "z@example.com", "channel_id": shop})), 400, v),
    ];
    d.refuse_all(&cases).await;

    // Custom channels: names, webhook URLs, types, timeouts, routing; and their inbound messages.
    let hook = |extra: Value| {
        let mut body = json!({"name": "Hook", "webhook_url": "https://example.com/hook", "type": "async"});
        for (k, val) in extra.as_object().unwrap() {
            body[k] = val.clone();
        }
        post("/api/v1/custom-channels", body)
    };
    let custom = format!("/api/v1/custom-channels/{shop}");
    let inbound = |extra: Value| {
        let mut body = json!({"user_custom_id": "walk-in", "content": "hello"});
        for (k, val) in extra.as_object().unwrap() {
            body[k] = val.clone();
        }
        post(format!("/api/v1/custom-channels/{shop}/inbound"), body)
    };
    let cases: Vec<(Req, u16, &str)> = vec![
        (hook(json!({"name": ""})), 400, v),
        (hook(json!({"name": long(101)})), 400, v),
        (hook(json!({"webhook_url": ""})), 400, v),
        (hook(json!({"webhook_url": "not a url"})), 400, v),
        (hook(json!({"webhook_url": "ftp://example.com/hook"})), 400, v),
        (hook(json!({"webhook_url": "javascript:alert(1)"})), 400, v),
        (hook(json!({"webhook_url": format!("https://example.com/{}", long(2001))})), 400, v),
        (hook(json!({"type": "chatty"})), 400, v),
        (hook(json!({"type": "sync", "inactivity_timeout_s": 0})), 400, v),
        (hook(json!({"routing": {"priority": "meh"}})), 400, v),
        (hook(json!({"routing": {"tags": ["a,b"]}})), 400, v),
        (hook(json!({"routing": {"assign": {"mode": "round_robin"}}})), 400, v),
        (hook(json!({"routing": {"assign": {"mode": "psychic"}}})), 400, v),
        (hook(json!({"routing": {"colour": "red"}})), 400, v),
        (patch(&custom, json!({"name": ""})), 400, v),
        (patch(&custom, json!({"webhook_url": "not a url"})), 400, v),
        (patch(&custom, json!({"type": "chatty"})), 400, v),
        (patch(&custom, json!({"inactivity_timeout_s": -1})), 400, v),
        (inbound(json!({"user_custom_id": ""})), 400, v),
        (inbound(json!({"user_custom_id": long(256)})), 400, v),
        (inbound(json!({"content": ""})), 400, v),
        (inbound(json!({"content": "  "})), 400, v),
        (inbound(json!({"content": long(100_001)})), 400, v),
        (inbound(json!({"subject": long(301)})), 400, v),
        (inbound(json!({"email": "not-an-email"})), 400, v),
        (inbound(json!({"phone": "call me"})), 400, v),
        (inbound(json!({"external_message_id": ""})), 400, v),
        (inbound(json!({"external_message_id": long(501)})), 400, v),
        (
            post(format!("/api/v1/custom-channels/{}/inbound", d.old), json!({"user_custom_id": "u", "content": "x"})),
            422,
            "channel_disabled",
        ),
    ];
    d.refuse_all(&cases).await;

    // Positive control: the same routes accept well-formed input.
    d.admin.ok_post("/api/v1/teams", json!({"name": "Billing"}), 201).await;
    d.admin.ok_post("/api/v1/statuses", json!({"key": "on_hold", "name": "On hold", "base": "pending"}), 201).await;
    d.admin.ok_post(&msgs, json!({"content": "fine"}), 201).await;
    assert_no_server_errors(&d.srv).await;
}

// ---------------------------------------------------------------------------------------------
// Unknown ids: in paths 404, in bodies 422; a failing part writes nothing
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_ids_are_404_in_paths_and_422_in_bodies() {
    let d = Desk::new().await;
    let (c, cu, t, shop) = (d.conv, d.customer, d.team, d.shop);
    let bob = d.bob.agent_id;
    let m = MISSING;
    let nf = "not_found";
    let ur = "unknown_reference";
    let cases: Vec<(Req, u16, &str)> = vec![
        // Paths.
        (get(format!("/api/v1/conversations/{m}")), 404, nf),
        (patch(format!("/api/v1/conversations/{m}"), json!({"status": "closed"})), 404, nf),
        (post(format!("/api/v1/conversations/{m}/merge"), json!({"into": c})), 404, nf),
        (get(format!("/api/v1/conversations/{m}/messages")), 404, nf),
        (post(format!("/api/v1/conversations/{m}/messages"), json!({"content": "x"})), 404, nf),
        (post(format!("/api/v1/conversations/{m}/notes"), json!({"content": "x"})), 404, nf),
        (post(format!("/api/v1/conversations/{m}/end"), json!({})), 404, nf),
        (get(format!("/api/v1/customers/{m}")), 404, nf),
        (patch(format!("/api/v1/customers/{m}"), json!({"name": "X"})), 404, nf),
        (get(format!("/api/v1/customers/{m}/conversations")), 404, nf),
        (
            post(format!("/api/v1/customers/{m}/identities"), json!({"kind": "email", "value": "q@example.com"})),
            404,
            nf,
        ),
        (delete(format!("/api/v1/customers/{cu}/identities/{m}")), 404, nf),
        (delete(format!("/api/v1/customers/{m}/identities/1")), 404, nf),
        (post(format!("/api/v1/customers/{m}/merge"), json!({"into": cu})), 404, nf),
        (get(format!("/api/v1/agents/{m}")), 404, nf),
        (patch(format!("/api/v1/agents/{m}"), json!({"name": "X"})), 404, nf),
        (put(format!("/api/v1/agents/{m}/channels"), json!({"channel_ids": []})), 404, nf),
        (get(format!("/api/v1/teams/{m}")), 404, nf),
        (patch(format!("/api/v1/teams/{m}"), json!({"name": "X"})), 404, nf),
        (delete(format!("/api/v1/teams/{m}")), 404, nf),
        (put(format!("/api/v1/teams/{m}/members"), json!({"agent_ids": []})), 404, nf),
        (get(format!("/api/v1/channels/{m}")), 404, nf),
        (patch(format!("/api/v1/channels/{m}"), json!({"name": "X"})), 404, nf),
        (delete(format!("/api/v1/channels/{m}")), 404, nf),
        (get(format!("/api/v1/channels/{m}/deliveries")), 404, nf),
        (patch("/api/v1/statuses/no_such_status", json!({"name": "X"})), 404, nf),
        (delete("/api/v1/statuses/no_such_status"), 404, nf),
        (delete(format!("/api/v1/tokens/{m}")), 404, nf),
        (get(format!("/api/v1/attachments/{m}")), 404, nf),
        (get(format!("/api/v1/custom-channels/{m}")), 404, nf),
        (patch(format!("/api/v1/custom-channels/{m}"), json!({"name": "X"})), 404, nf),
        (delete(format!("/api/v1/custom-channels/{m}")), 404, nf),
        (req(Method::POST, format!("/api/v1/custom-channels/{m}/secret"), Body::None), 404, nf),
        (get(format!("/api/v1/custom-channels/{m}/deliveries")), 404, nf),
        (req(Method::POST, format!("/api/v1/custom-channels/{shop}/deliveries/{m}/resend"), Body::None), 404, nf),
        (post(format!("/api/v1/custom-channels/{m}/inbound"), json!({"user_custom_id": "u", "content": "x"})), 404, nf),
        // Not a custom channel: as good as missing on these routes.
        (get(format!("/api/v1/custom-channels/{}", d.inbox)), 404, nf),
        (
            post(
                format!("/api/v1/custom-channels/{}/inbound", d.inbox),
                json!({"user_custom_id": "u", "content": "x"}),
            ),
            404,
            nf,
        ),
        (get(format!("/api/v1/conversations/{}", i64::MAX)), 404, nf),
        (get("/api/v1/conversations/-1"), 404, nf),
        (get("/api/v1/no_such_endpoint"), 404, nf),
        // Bodies.
        (post("/api/v1/conversations", json!({"channel": m, "user_custom_id": "n", "content": "x"})), 422, ur),
        (post("/api/v1/conversations", json!({"channel": shop, "customer_id": m, "content": "x"})), 422, ur),
        (patch(format!("/api/v1/conversations/{c}"), json!({"team_id": m})), 422, ur),
        (patch(format!("/api/v1/conversations/{c}"), json!({"assignee_id": m})), 422, ur),
        (patch(format!("/api/v1/conversations/{c}"), json!({"status": "no_such_status"})), 422, ur),
        (post(format!("/api/v1/conversations/{c}/merge"), json!({"into": m})), 422, ur),
        (post(format!("/api/v1/conversations/{c}/merge"), json!({"into": -1})), 422, ur),
        (post(format!("/api/v1/conversations/{c}/messages"), json!({"content": "x", "attachment_ids": [m]})), 422, ur),
        (post(format!("/api/v1/conversations/{c}/messages"), json!({"content": "x", "quoted_message_id": m})), 422, ur),
        (post(format!("/api/v1/conversations/{c}/notes"), json!({"content": "x", "attachment_ids": [m]})), 422, ur),
        (patch(format!("/api/v1/customers/{cu}"), json!({"owner_agent_id": m})), 422, ur),
        (
            post(
                format!("/api/v1/customers/{cu}/identities"),
                json!({"kind": "external", "value": "x", "channel_id": m}),
            ),
            422,
            ur,
        ),
        (post(format!("/api/v1/customers/{cu}/merge"), json!({"into": m})), 422, ur),
        (put(format!("/api/v1/agents/{bob}/channels"), json!({"channel_ids": [shop, m]})), 422, ur),
        (put(format!("/api/v1/teams/{t}/members"), json!({"agent_ids": [bob, m]})), 422, ur),
        (
            post("/api/v1/channels", json!({"kind": "custom", "name": "N", "mode": "async", "default_team_id": m})),
            422,
            ur,
        ),
        (patch(format!("/api/v1/channels/{shop}"), json!({"default_team_id": m})), 422, ur),
        (post("/api/v1/tokens", json!({"name": "x", "agent_id": m})), 422, ur),
        (
            post(
                "/api/v1/custom-channels",
                json!({"name": "Hook", "webhook_url": "https://example.com/h",
                "type": "async", "routing": {"team_id": m}}),
            ),
            422,
            ur,
        ),
        (patch(format!("/api/v1/custom-channels/{shop}"), json!({"routing": {"status": "no_such_status"}})), 422, ur),
        (
            patch(
                format!("/api/v1/custom-channels/{shop}"),
                json!({"name": "Renamed", "routing": {"assign": {"mode": "round_robin", "agent_ids": [bob, m]}}}),
            ),
            422,
            ur,
        ),
        (post(format!("/api/v1/conversations/{}/messages", d.chat), json!({"content": "x", "user_id": m})), 422, ur),
    ];
    d.refuse_all(&cases).await;
    assert_no_server_errors(&d.srv).await;
}

#[tokio::test]
async fn a_request_that_fails_in_one_part_writes_none_of_it() {
    let d = Desk::new().await;
    let (c, cu, shop) = (d.conv, d.customer, d.shop);
    let msgs = format!("/api/v1/conversations/{c}/messages");
    let cases: Vec<(Req, u16, &str)> = vec![
        // Property changes together with an unknown reference.
        (
            patch(
                format!("/api/v1/conversations/{c}"),
                json!({"priority": "urgent", "tags": ["new"], "subject": "Changed", "team_id": MISSING}),
            ),
            422,
            "unknown_reference",
        ),
        (
            patch(
                format!("/api/v1/conversations/{c}"),
                json!({"status": "closed", "custom_fields": {"a": 1}, "assignee_id": MISSING}),
            ),
            422,
            "unknown_reference",
        ),
        // A conditional status whose conditions are not met, with other changes.
        (
            patch(format!("/api/v1/conversations/{c}"), json!({"status": "waiting_vendor", "tags": ["x"]})),
            422,
            "rule_violation",
        ),
        // Reply and set status in one action: the message is not kept when the status fails.
        (post(&msgs, json!({"content": "x", "status": "no_such_status"})), 422, "unknown_reference"),
        (post(&msgs, json!({"content": "x", "status": "waiting_vendor"})), 422, "rule_violation"),
        (post(&msgs, json!({"content": "x", "note": true, "status": "no_such_status"})), 422, "unknown_reference"),
        // Customers: a valid name with an unknown owner; a new company with an unknown owner.
        (
            patch(
                format!("/api/v1/customers/{cu}"),
                json!({"name": "New name", "company": "NewCo", "owner_agent_id": MISSING}),
            ),
            422,
            "unknown_reference",
        ),
        // Channels: a valid rename with an unknown default team.
        (
            patch(
                format!("/api/v1/channels/{shop}"),
                json!({"name": "Renamed", "enabled": false, "default_team_id": MISSING}),
            ),
            422,
            "unknown_reference",
        ),
        // A conversation on a disabled channel.
        (
            post("/api/v1/conversations", json!({"channel": d.old, "user_custom_id": "n", "content": "x"})),
            422,
            "rule_violation",
        ),
        // Merging a conversation into itself.
        (post(format!("/api/v1/conversations/{c}/merge"), json!({"into": c})), 422, "rule_violation"),
        (post(format!("/api/v1/customers/{cu}/merge"), json!({"into": cu})), 422, "rule_violation"),
        // Deleting a built-in status.
        (delete("/api/v1/statuses/open"), 422, "rule_violation"),
        // Customer messages through the API are for custom-channel conversations only.
        (
            post(format!("/api/v1/conversations/{}/messages", d.mail), json!({"content": "x", "user_id": cu})),
            422,
            "not_supported",
        ),
        // A customer message takes no agent options.
        (post(&msgs, json!({"content": "x", "user_id": cu, "status": "closed"})), 400, "validation_failed"),
    ];
    d.refuse_all(&cases).await;

    // The conversation still takes a reply, so the refusals above were about the input.
    d.admin.ok_post(&msgs, json!({"content": "fine", "status": "pending"}), 201).await;
    assert_no_server_errors(&d.srv).await;
}

#[tokio::test]
async fn duplicates_are_409_conflict_and_change_nothing() {
    let d = Desk::new().await;
    let cu2 = d.customer2;
    let cases: Vec<(Req, u16, &str)> = vec![
        (post("/api/v1/teams", json!({"name": "Support"})), 409, "conflict"),
        (post("/api/v1/agents", json!({"email": "BOB@example.com", "name": "Bob 2"})), 409, "conflict"),
        (post("/api/v1/statuses", json!({"key": "open", "name": "Open 2", "base": "open"})), 409, "conflict"),
        (
            post(format!("/api/v1/customers/{cu2}/identities"), json!({"kind": "email", "value": "Kim@Example.com"})),
            409,
            "conflict",
        ),
    ];
    d.refuse_all(&cases).await;
    // Positive control: an unused custom status may go.
    let (s, _) = d.admin.delete("/api/v1/statuses/waiting_vendor").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_no_server_errors(&d.srv).await;
}

// ---------------------------------------------------------------------------------------------
// Paths and queries
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn non_numeric_path_ids_are_400_invalid_path() {
    let d = Desk::new().await;
    let bodies = json_routes(&d);
    let mut cases: Vec<(Req, u16, &str)> = Vec::new();
    for (method, pattern) in api_routes() {
        if !pattern.contains("id}") {
            continue;
        }
        // A body that would be accepted, so the path is the only thing wrong.
        let body = bodies
            .iter()
            .find(|r| r.method.as_str() == method && r.pattern == pattern)
            .map(|r| Body::Json(r.valid.clone()))
            .unwrap_or(Body::None);
        for bad in ["abc", "1.5", "0x10", "99999999999999999999", "%20"] {
            let path = format!("/api/v1{pattern}")
                .replace("{identity_id}", bad)
                .replace("{delivery}", bad)
                .replace("{id}", bad);
            cases.push((req(method.parse().unwrap(), path, body.clone()), 400, "invalid_path"));
        }
        // One good id and one bad one.
        if pattern.contains("{identity_id}") {
            let path =
                format!("/api/v1{pattern}").replace("{id}", &d.customer.to_string()).replace("{identity_id}", "abc");
            cases.push((req(method.parse().unwrap(), path, body.clone()), 400, "invalid_path"));
        }
    }
    assert!(cases.len() >= 5 * 25, "{} cases", cases.len());
    d.refuse_all(&cases).await;
    assert_no_server_errors(&d.srv).await;
}

#[tokio::test]
async fn bad_query_values_are_400() {
    let d = Desk::new().await;
    let c = d.conv;
    let v = "validation_failed";
    let q = "invalid_query";
    let list = |query: &str| get(format!("/api/v1/conversations?{query}"));
    let cases: Vec<(Req, u16, &str)> = vec![
        (list("per_page=0"), 400, v),
        (list("per_page=101"), 400, v),
        (list("per_page=-1"), 400, v),
        (list("page=0"), 400, v),
        (list("page=-1"), 400, v),
        (list("page=1000001"), 400, v),
        (list("sort=sideways"), 400, v),
        (list("mode=chatty"), 400, v),
        (list("assignee=bob"), 400, v),
        (list("assignee="), 400, v),
        (list("priority=meh"), 400, v),
        (list(&format!("customer={}&user_id={}", d.customer, d.customer2)), 400, v),
        (list(&format!("q={}", long(201))), 400, v),
        (list("page=abc"), 400, q),
        (list("per_page=1.5"), 400, q),
        (list("channel=abc"), 400, q),
        (list("team=x"), 400, q),
        (list("customer=me"), 400, q),
        (list("show_active_chats=maybe"), 400, q),
        (list("include_merged=1x"), 400, q),
        (list("active=yes"), 400, q),
        (get(format!("/api/v1/conversations/{c}/messages?limit=0")), 400, v),
        (get(format!("/api/v1/conversations/{c}/messages?limit=201")), 400, v),
        (get(format!("/api/v1/conversations/{c}/messages?after_seq=x")), 400, q),
        (get(format!("/api/v1/conversations/{c}/messages?before_seq=1.5")), 400, q),
        (get("/api/v1/customers?per_page=0"), 400, v),
        (get("/api/v1/customers?per_page=101"), 400, v),
        (get("/api/v1/customers?page=0"), 400, v),
        (get(format!("/api/v1/customers?q={}", long(201))), 400, v),
        (get("/api/v1/customers?page=x"), 400, q),
        (get("/api/v1/audit?limit=0"), 400, v),
        (get("/api/v1/audit?limit=201"), 400, v),
        (get("/api/v1/audit?entity_id=1"), 400, v),
        (get("/api/v1/audit?before_id=x"), 400, q),
        (get("/api/v1/channels?kind=fax"), 400, v),
        (get("/api/v1/tokens?agent_id=me"), 400, q),
        (raw(Method::POST, "/api/v1/attachments", Some("text/plain"), b"bytes"), 400, q),
        (raw(Method::POST, "/api/v1/attachments?file_name=", Some("text/plain"), b"bytes"), 400, v),
        (raw(Method::POST, "/api/v1/attachments?file_name=..", Some("text/plain"), b"bytes"), 400, v),
        (raw(Method::POST, "/api/v1/attachments?file_name=dir/", Some("text/plain"), b"bytes"), 400, v),
        (raw(Method::POST, "/api/v1/attachments?file_name=a%01b.txt", Some("text/plain"), b"bytes"), 400, v),
        (raw(Method::POST, format!("/api/v1/attachments?file_name={}", long(256)), Some("text/plain"), b"b"), 400, v),
        (raw(Method::POST, "/api/v1/attachments?file_name=empty.txt", Some("text/plain"), b""), 400, v),
    ];
    d.refuse_all(&cases).await;
    assert_no_files_stored(&d);
    assert_no_server_errors(&d.srv).await;
}

/// Refused uploads leave no file behind.
fn assert_no_files_stored(d: &Desk) {
    let dir = d.srv.data_dir().join("attachments");
    let files = walk(&dir);
    assert!(files.is_empty(), "refused uploads stored {files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn missing_wrong_or_malformed_credentials_are_401() {
    let d = Desk::new().await;
    let anonymous = d.srv.anonymous();
    let token = d.admin.token.clone().unwrap();
    let authz: Vec<(&str, Vec<u8>)> = vec![
        ("no Authorization", vec![]),
        ("an empty Authorization", b"".to_vec()),
        ("the scheme only", b"Bearer".to_vec()),
        ("an empty bearer", b"Bearer    ".to_vec()),
        ("an unknown token", b"Bearer sbt_0000000000000000000000000000".to_vec()),
        ("a token with a letter changed", format!("Bearer {}x", &token[..token.len() - 1]).into_bytes()),
        ("the token without the scheme", token.clone().into_bytes()),
        ("Basic credentials", b"Basic YWRtaW5AZXhhbXBsZS5jb206Y29ycmVjdA==".to_vec()),
        ("another scheme", format!("Token {token}").into_bytes()),
        ("non-ASCII bytes", b"Bearer \xff\xfe\xfd".to_vec()),
        ("a session id as a bearer", b"Bearer 0123456789abcdef0123456789abcdef".to_vec()),
    ];
    let targets = vec![
        get("/api/v1/me"),
        get("/api/v1/conversations"),
        get(format!("/api/v1/conversations/{}", d.conv)),
        post("/api/v1/teams", json!({"name": "Sneaky"})),
        patch(format!("/api/v1/conversations/{}", d.conv), json!({"status": "closed"})),
        post(format!("/api/v1/conversations/{}/messages", d.conv), json!({"content": "x"})),
        delete(format!("/api/v1/teams/{}", d.team)),
        post("/api/v1/tokens", json!({"name": "stolen"})),
    ];
    let before = d.snapshot().await;
    for (how, header) in &authz {
        for t in &targets {
            let mut r = t.clone();
            if *how != "no Authorization" {
                r.headers.push(("Authorization", header.clone()));
            }
            let got = send(&anonymous, &r).await;
            expect_error(&got, 401, "unauthorized", &format!("{r} with {how}"));
        }
    }
    // A made-up session cookie, and a cookie next to a broken bearer.
    for t in &targets {
        let mut r = t.clone();
        r.headers.push(("Cookie", b"sb_session=0123456789abcdef".to_vec()));
        let got = send(&anonymous, &r).await;
        expect_error(&got, 401, "unauthorized", &format!("{r} with an unknown session"));
    }
    assert_unchanged(&before, &d.snapshot().await, "requests with bad credentials");

    // The real token works (positive control).
    let ok = send(&d.admin, &get("/api/v1/me")).await;
    assert_eq!(ok.0, StatusCode::OK);
    assert_no_server_errors(&d.srv).await;
}

#[tokio::test]
async fn login_refuses_bad_bodies_with_4xx() {
    let d = Desk::new().await;
    let anonymous = d.srv.anonymous();
    let login = |body: Value| post("/api/v1/auth/login", body);
    let v = "validation_failed";
    let cases: Vec<(Req, u16, &str)> = vec![
        (login(json!({"email": 5, "password": PASSWORD})), 400, v),
        (login(json!({"email": "admin@example.com", "password": 12_345_678})), 400, v),
        (login(json!({"email": "admin@example.com", "password": null})), 400, v),
        (login(json!({"email": {"$ne": ""}, "password": {"$ne": ""}})), 400, v),
        (login(json!({"email": "admin@example.com"})), 400, v),
        (login(json!({"password": PASSWORD})), 400, v),
        (login(json!({"email": "admin@example.com", "password": PASSWORD, "remember": true})), 400, v),
        (raw(Method::POST, "/api/v1/auth/login", Some("application/json"), b"{\"email\":"), 400, "invalid_json"),
        (
            raw(
                Method::POST,
                "/api/v1/auth/login",
                Some("application/x-www-form-urlencoded"),
                format!("email=admin%40example.com&password={PASSWORD}").as_bytes(),
            ),
            415,
            "unsupported_media_type",
        ),
        (login(json!({"email": "admin@example.com", "password": "wrong password"})), 401, "invalid_credentials"),
        (login(json!({"email": "not-an-email", "password": PASSWORD})), 401, "invalid_credentials"),
        (login(json!({"email": "", "password": ""})), 401, "invalid_credentials"),
        (login(json!({"email": "admin@example.com", "password": long(5000)})), 401, "invalid_credentials"),
    ];
    let before = d.snapshot().await;
    for (r, status, code) in &cases {
        let got = send(&anonymous, r).await;
        expect_error(&got, *status, code, &r.to_string());
    }
    assert_unchanged(&before, &d.snapshot().await, "refused logins");
    // Positive control.
    let ok = send(&anonymous, &login(json!({"email": "admin@example.com", "password": PASSWORD}))).await;
    assert_eq!(ok.0, StatusCode::OK, "{}", ok.1);
    assert_no_server_errors(&d.srv).await;
}

#[tokio::test]
async fn first_run_setup_validates_and_writes_nothing_until_valid() {
    let srv = TestServer::start().await;
    let anonymous = srv.anonymous();
    let setup = |body: Value| post("/api/v1/setup", body);
    let v = "validation_failed";
    let cases: Vec<(Req, u16, &str)> = vec![
        (setup(json!({"email": "not-an-email", "password": "long enough pw"})), 400, v),
        (setup(json!({"email": "root@example.com", "password": "short"})), 400, v),
        (setup(json!({"email": "root@example.com", "password": long(1025)})), 400, v),
        (setup(json!({"email": "root@example.com", "password": "long enough pw", "name": ""})), 400, v),
        (setup(json!({"email": "root@example.com", "password": "long enough pw", "name": long(101)})), 400, v),
        (setup(json!({"email": "root@example.com", "password": 12_345_678})), 400, v),
        (setup(json!({"email": "root@example.com"})), 400, v),
        (setup(json!({"email": "root@example.com", "password": "long enough pw", "role": "agent"})), 400, v),
        (raw(Method::POST, "/api/v1/setup", Some("application/json"), b"{"), 400, "invalid_json"),
        (raw(Method::POST, "/api/v1/setup", Some("text/plain"), b"{}"), 415, "unsupported_media_type"),
    ];
    for (r, status, code) in &cases {
        let got = send(&anonymous, r).await;
        expect_error(&got, *status, code, &r.to_string());
        assert_eq!(anonymous.ok_get("/api/v1/setup").await["needs_admin"], true, "{r}: no admin was created");
    }
    let created = send(&anonymous, &setup(json!({"email": "root@example.com", "password": "long enough pw"}))).await;
    assert_eq!(created.0, StatusCode::CREATED, "{}", created.1);
    let again = send(&anonymous, &setup(json!({"email": "other@example.com", "password": "long enough pw"}))).await;
    expect_error(&again, 409, "conflict", "a second setup");
    assert_no_server_errors(&srv).await;
}

// ---------------------------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn oversized_bodies_are_413_payload_too_large() {
    let srv = TestServer::start_with(|raw| {
        raw.max_body_bytes = Some(4096);
        raw.max_upload_bytes = Some(16 * 1024);
    })
    .await;
    let d = Desk::with(srv).await;
    let big = long(10 * 1024);
    let cases: Vec<(Req, u16, &str)> = json_routes(&d)
        .into_iter()
        .map(|r| {
            let mut body = r.valid.clone();
            let key = body.as_object().unwrap().keys().next().unwrap().clone();
            body[&key] = json!(big);
            (req(r.method, r.path, Body::Json(body)), 413, "payload_too_large")
        })
        .chain([(
            post("/api/v1/conversations", json!({"channel": d.shop, "user_custom_id": "n", "content": big})),
            413,
            "payload_too_large",
        )])
        .collect();
    d.refuse_all(&cases).await;

    // Uploads have their own, larger limit: 10 KB is fine, 20 KB is not.
    let upload = |bytes: usize| {
        raw(Method::POST, "/api/v1/attachments?file_name=big.bin", Some("application/octet-stream"), &vec![7u8; bytes])
    };
    let before = d.snapshot().await;
    let over = send(&d.admin, &upload(20 * 1024)).await;
    assert_eq!(over.0.as_u16(), 413, "an upload over max_upload_bytes: {}", over.1);
    assert_unchanged(&before, &d.snapshot().await, "an oversized upload");
    assert_no_files_stored(&d);
    let fine = send(&d.admin, &upload(10 * 1024)).await;
    assert_eq!(fine.0, StatusCode::CREATED, "10 KB is under the upload limit: {}", fine.1);
    assert_eq!(walk(&d.srv.data_dir().join("attachments")).len(), 1);
    assert_no_server_errors(&d.srv).await;
}

// ---------------------------------------------------------------------------------------------
// Known bugs (see the ignore reasons)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_oversized_upload_answers_in_the_error_shape() {
    let srv = TestServer::start_with(|raw| raw.max_upload_bytes = Some(4096)).await;
    let d = Desk::with(srv).await;
    d.refused(
        &raw(
            Method::POST,
            "/api/v1/attachments?file_name=big.bin",
            Some("application/octet-stream"),
            &[7u8; 10 * 1024],
        ),
        413,
        "payload_too_large",
    )
    .await;
}

#[tokio::test]
async fn creating_an_agent_with_an_unknown_channel_writes_nothing() {
    let d = Desk::new().await;
    d.refused(
        &post("/api/v1/agents", json!({"email": "new@example.com", "name": "New", "channel_ids": [d.shop, MISSING]})),
        422,
        "unknown_reference",
    )
    .await;
}

#[tokio::test]
async fn creating_a_team_with_an_unknown_member_writes_nothing() {
    let d = Desk::new().await;
    d.refused(
        &post("/api/v1/teams", json!({"name": "New team", "member_ids": [d.bob.agent_id, MISSING]})),
        422,
        "unknown_reference",
    )
    .await;
}

#[tokio::test]
async fn a_json_array_is_not_taken_for_an_object() {
    let d = Desk::new().await;
    let cases: Vec<(Req, u16, &str)> = vec![
        (post("/api/v1/teams", json!(["Array team"])), 400, "validation_failed"),
        (post("/api/v1/tokens", json!(["array token"])), 400, "validation_failed"),
        (post(format!("/api/v1/conversations/{}/merge", d.conv), json!([d.conv2])), 400, "validation_failed"),
        (put(format!("/api/v1/agents/{}/channels", d.bob.agent_id), json!([[]])), 400, "validation_failed"),
        (
            post(
                "/api/v1/custom-channels",
                json!({"name": "Hook", "webhook_url": "https://example.com/hook", "type": "async", "routing": []}),
            ),
            400,
            "validation_failed",
        ),
    ];
    d.refuse_all(&cases).await;
    let login = send(&d.srv.anonymous(), &post("/api/v1/auth/login", json!(["admin@example.com", PASSWORD]))).await;
    expect_error(&login, 400, "validation_failed", "POST /api/v1/auth/login [email, password]");
}

#[tokio::test]
async fn status_conditions_name_valid_custom_fields() {
    let d = Desk::new().await;
    d.refused(
        &post(
            "/api/v1/statuses",
            json!({"key": "unreachable", "name": "Unreachable", "base": "pending",
            "required_fields": ["custom:Bad Name"]}),
        ),
        400,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn customer_custom_fields_are_checked_like_conversation_ones() {
    let d = Desk::new().await;
    let path = format!("/api/v1/customers/{}", d.customer);
    let many: serde_json::Map<String, Value> = (0..101).map(|i| (format!("f{i}"), json!(i))).collect();
    d.refuse_all(&[
        (patch(&path, json!({"custom_fields": {"Bad Name": 1}})), 400, "validation_failed"),
        (patch(&path, json!({"custom_fields": many})), 400, "validation_failed"),
        (patch(&path, json!({"custom_fields": {"big": long(70_000)}})), 400, "validation_failed"),
    ])
    .await;
}

// ---------------------------------------------------------------------------------------------
// Ending a chat (optional body) and the socket upgrade
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ending_a_chat_refuses_bad_values_and_changes_nothing() {
    let d = Desk::new().await;
    let end = |id: i64| format!("/api/v1/conversations/{id}/end");
    d.refuse_all(&[
        (post(end(d.chat), json!({"status": "no_such_status"})), 422, "unknown_reference"),
        (post(end(d.chat), json!({"status": "waiting_vendor"})), 422, "rule_violation"),
        (post(end(d.conv), json!({})), 422, "rule_violation"),
        (post(end(MISSING), json!({})), 404, "not_found"),
        (req(Method::POST, end(d.conv), Body::None), 422, "rule_violation"),
    ])
    .await;
    // Positive control: it ends once; a second time is a conflict that changes nothing.
    let (s, ended) = d.admin.post(&end(d.chat), json!({"status": "pending"})).await;
    assert_eq!(s, StatusCode::OK, "{ended}");
    assert!(ended["ended_at"].is_string() && ended["status"] == "pending", "{ended}");
    d.refuse_all(&[(post(end(d.chat), json!({})), 409, "conflict")]).await;
    assert_no_server_errors(&d.srv).await;
}

#[tokio::test]
async fn ending_a_chat_refuses_malformed_bodies() {
    let d = Desk::new().await;
    let path = format!("/api/v1/conversations/{}/end", d.chat);
    let json_ct = Some("application/json");
    d.refuse_all(&[
        (raw(Method::POST, &path, json_ct, b"{\"status\": "), 400, "invalid_json"),
        (post(&path, json!({"status": 5})), 400, "validation_failed"),
        (post(&path, json!({"stauts": "closed"})), 400, "validation_failed"),
        (post(&path, json!(["closed"])), 400, "validation_failed"),
        (raw(Method::POST, &path, Some("text/plain"), b"{\"status\": \"closed\"}"), 415, "unsupported_media_type"),
    ])
    .await;
}

#[tokio::test]
async fn the_socket_upgrade_refuses_plain_requests_and_bad_cursors() {
    let d = Desk::new().await;
    d.refuse_all(&[
        (get("/api/v1/ws"), 400, "not_a_websocket"),
        (get("/api/v1/ws?cursor=garbage"), 400, "validation_failed"),
        (get(format!("/api/v1/ws?cursor={}", long(5000))), 400, "validation_failed"),
        (post("/api/v1/ws", json!({})), 404, "not_found"),
    ])
    .await;
    assert_no_server_errors(&d.srv).await;
}

// ---------------------------------------------------------------------------------------------
// NUL characters (PostgreSQL text cannot hold them)
// ---------------------------------------------------------------------------------------------

/// Requests carrying a NUL character in free text, in bodies, queries and paths.
fn nul_cases(d: &Desk) -> Vec<Req> {
    let nul = "a\u{0}b";
    let (c, cu, t, shop) = (d.conv, d.customer, d.team, d.shop);
    vec![
        post(format!("/api/v1/conversations/{c}/messages"), json!({"content": nul})),
        post(format!("/api/v1/conversations/{c}/messages"), json!({"content": "x", "content_html": nul})),
        post(format!("/api/v1/conversations/{c}/notes"), json!({"content": nul})),
        post("/api/v1/conversations", json!({"channel": shop, "user_custom_id": "n-1", "content": nul})),
        post(
            "/api/v1/conversations",
            json!({"channel": shop, "user_custom_id": "n-2", "content": "x", "subject": nul}),
        ),
        post("/api/v1/conversations", json!({"channel": shop, "user_custom_id": nul, "content": "x"})),
        post(
            "/api/v1/conversations",
            json!({"channel": shop, "user_custom_id": "n-3", "content": "x", "external_message_id": nul}),
        ),
        patch(format!("/api/v1/conversations/{c}"), json!({"subject": nul})),
        patch(format!("/api/v1/conversations/{c}"), json!({"status": nul})),
        patch(format!("/api/v1/conversations/{c}"), json!({"custom_fields": {"k": nul}})),
        patch(format!("/api/v1/teams/{t}"), json!({"description": nul})),
        post("/api/v1/teams", json!({"name": "Nul team", "description": nul})),
        patch(format!("/api/v1/customers/{cu}"), json!({"notes": nul})),
        patch(format!("/api/v1/customers/{cu}"), json!({"custom_fields": {"k": nul}})),
        post(
            format!("/api/v1/customers/{cu}/identities"),
            json!({"kind": "external", "value": nul, "channel_id": shop}),
        ),
        post("/api/v1/channels", json!({"kind": "custom", "name": "Nul", "mode": "async", "settings": {"k": nul}})),
        post("/api/v1/auth/login", json!({"email": "admin@example.com", "password": nul})),
        post("/api/v1/auth/login", json!({"email": nul, "password": nul})),
        get("/api/v1/conversations?q=a%00b"),
        get("/api/v1/conversations?status=a%00b"),
        get("/api/v1/conversations?tag=a%00b"),
        get("/api/v1/customers?q=a%00b"),
        get("/api/v1/companies?q=a%00b"),
        get("/api/v1/audit?entity_type=a%00b"),
        get("/api/v1/channels?kind=a%00b"),
        patch("/api/v1/statuses/a%00b", json!({"name": "x"})),
        delete("/api/v1/statuses/a%00b"),
        raw(Method::POST, "/api/v1/attachments?file_name=a%00b.txt", Some("text/plain"), b"bytes"),
    ]
}

#[tokio::test]
async fn text_with_nul_characters_never_causes_a_server_error() {
    let d = Desk::new().await;
    let mut server_errors = Vec::new();
    for r in nul_cases(&d) {
        let before = d.snapshot().await;
        // Not `send`: collect every 5xx, then report them all at once.
        let got = d.admin.request(r.method.clone(), &r.path);
        let got = match &r.body {
            Body::Json(v) => got.json(v),
            Body::Raw(Some(ct), b) => got.header("Content-Type", *ct).body(b.clone()),
            _ => got,
        };
        let resp = got.send().await.expect("request sent");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_server_error() {
            server_errors.push(format!("{r} -> {status} {body}"));
        } else if status.is_client_error() {
            // Refused (any code the server chose, in the error shape): then nothing was written.
            let code = body["error"].as_str().unwrap_or("").to_owned();
            assert!(!code.is_empty(), "{r}: {status} {body}");
            expect_error(&(status, body), status.as_u16(), &code, &r.to_string());
            assert_unchanged(&before, &d.snapshot().await, &r.to_string());
        }
    }
    assert!(server_errors.is_empty(), "server errors:\n{}", server_errors.join("\n"));
}
