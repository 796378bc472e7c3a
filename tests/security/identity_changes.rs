//! Issue #13 (see tests/security.rs), items 2, 3 and 7a: open sockets follow every change of who
//! the agent is — demoted, deactivated, signed out, token revoked, password changed — within 2 s
//! (close codes in `docs/realtime.md`), and a change of channel access narrows or widens them
//! without a close; a password change ends the agent's other sessions and, on request, their API
//! tokens, and one's own needs the current password; a plain admin cannot touch a super admin's
//! credentials. The two-node case is in `tests/multinode.rs`.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use switchboard::store::{self, audit::Actor};

use crate::common::ws::WsClient;
use crate::common::{Api, PASSWORD, TestServer, assert_error};

/// How soon an identity change must reach an open socket (issue #13).
const WITHIN: Duration = Duration::from_secs(2);
/// Close codes (`docs/realtime.md`).
const CREDENTIALS_ENDED: u16 = 4001;
const ROLE_CHANGED: u16 = 4003;
const NEW_PASSWORD: &str = "a much newer secret";

/// A desk: a super admin, a channel, and an agent with access to it.
struct Desk {
    srv: TestServer,
    root: Api,
    ch: i64,
}

async fn desk() -> Desk {
    let srv = TestServer::start().await;
    let root = srv.agent("root@example.com", "super_admin").await;
    let ch = root.channel("custom", "Web chat", Some("async")).await;
    Desk { srv, root, ch }
}

impl Desk {
    /// An agent (`role`) with access to the desk's channel, acting through an API token.
    async fn agent(&self, email: &str, role: &str) -> Api {
        let api = self.srv.agent(email, role).await;
        self.root.ok_put(&format!("/api/v1/agents/{}/channels", api.agent_id), json!({"channel_ids": [self.ch]})).await;
        api
    }

    /// Sign in as `email` with `password`: the session cookie (`sb_session=…`) and a client using it.
    async fn login(&self, email: &str, password: &str) -> (String, Api) {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/login", self.srv.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "login as {email}");
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("sb_session="))
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_owned();
        let me: serde_json::Value = resp.json().await.unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("cookie", cookie.parse().unwrap());
        let client = reqwest::Client::builder().default_headers(headers).build().unwrap();
        let api = Api {
            base: self.srv.base.clone(),
            token: None,
            csrf: me["csrf_token"].as_str().map(str::to_owned),
            agent_id: me["agent"]["id"].as_i64().unwrap(),
            client,
        };
        (cookie, api)
    }

    async fn token_socket(&self, api: &Api) -> WsClient {
        WsClient::connect(&self.srv.base, api.token.as_deref().unwrap(), None).await
    }

    /// A new conversation on the desk's channel; returns its id.
    async fn conversation(&self, user: &str) -> i64 {
        self.root.inbound(self.ch, user, "Hello").await
    }
}

/// The socket is closed with `code` within [`WITHIN`] of `since`.
async fn assert_closed(ws: &mut WsClient, code: u16, since: Instant, what: &str) {
    let got = ws.closed_within(WITHIN.saturating_sub(since.elapsed())).await;
    assert_eq!(
        got,
        Some(code),
        "{what}: socket closed with {got:?} after {:?}; frames: {:#?}",
        since.elapsed(),
        ws.log
    );
    let last = ws.log.last().expect("an error frame before the close");
    assert_eq!(last["type"], "error", "{last}");
}

/// The socket is still open and still receives what it may see.
async fn assert_live(ws: &mut WsClient, d: &Desk, what: &str) {
    let id = d.conversation(&format!("still-live-{}", uuid::Uuid::new_v4().simple())).await;
    ws.wait_for(what, Duration::from_secs(10), |f| f["type"] == "conversation.created" && f["conversation_id"] == id)
        .await;
    assert_eq!(ws.close_code, None, "{what}");
}

async fn status(api: &Api, path: &str) -> u16 {
    api.get(path).await.0.as_u16()
}

#[tokio::test]
async fn a_demoted_admin_socket_closes_within_2s_and_reconnects_without_the_all_channel_scope() {
    let d = desk().await;
    let boss = d.agent("boss@example.com", "admin").await;
    let other = d.root.channel("custom", "Other desk", Some("async")).await;
    let mut ws = d.token_socket(&boss).await;

    let t = Instant::now();
    d.root.patch(&format!("/api/v1/agents/{}", boss.agent_id), json!({"role": "agent"})).await;
    assert_closed(&mut ws, ROLE_CHANGED, t, "demoted admin").await;

    // Reconnected, the former admin sees their own channel only.
    let mut ws = d.token_socket(&boss).await;
    let foreign = d.root.inbound(other, "cust-foreign", "Not yours").await;
    let own = d.conversation("cust-own").await;
    ws.wait_for("their own channel's conversation", Duration::from_secs(10), |f| f["conversation_id"] == own).await;
    assert!(!ws.log.iter().any(|f| f["conversation_id"] == foreign), "no event of a channel they lost: {:#?}", ws.log);
}

/// Whether the socket may act on `conversation` now: a `view` of it is answered `not_found` (before
/// the `pong` that follows it) only when its channel is outside the socket's scope.
async fn may_view(ws: &mut WsClient, conversation: i64) -> bool {
    ws.send(json!({"type": "view", "conversation_id": conversation})).await;
    ws.send(json!({"type": "ping"})).await;
    let mut refused = false;
    loop {
        let f = ws.wait_for("an answer to view + ping", Duration::from_secs(5), |_| true).await;
        match f["type"].as_str() {
            Some("pong") => return !refused,
            Some("error") => {
                assert_eq!(f["error"], "not_found", "{f}");
                refused = true;
            }
            _ => {}
        }
    }
}

/// Whether a socket frame is about one of `ids`.
fn about(frame: &serde_json::Value, ids: &[i64]) -> bool {
    frame["conversation_id"].as_i64().is_some_and(|c| ids.contains(&c))
}

#[tokio::test]
async fn a_channel_access_change_narrows_and_widens_an_open_socket_within_2s() {
    let d = desk().await;
    let ann = d.agent("ann@example.com", "agent").await;
    let other = d.root.channel("custom", "Other desk", Some("async")).await;
    let both = json!({"channel_ids": [d.ch, other]});
    d.root.ok_put(&format!("/api/v1/agents/{}/channels", ann.agent_id), both.clone()).await;
    let (cookie, _) = d.login("ann@example.com", PASSWORD).await;
    let mut sockets = [
        ("token socket", d.token_socket(&ann).await),
        ("cookie socket", WsClient::connect_with_cookie(&d.srv.base, &cookie).await),
    ];
    let theirs = d.root.inbound(other, "cust-other", "Hello").await;
    for (what, ws) in &mut sockets {
        ws.wait_for(what, Duration::from_secs(10), |f| f["type"] == "conversation.created" && about(f, &[theirs]))
            .await;
        assert!(may_view(ws, theirs).await, "{what}: the other channel is in scope");
    }

    // Taken: within 2 s neither socket reaches the other channel any more; both stay open.
    let t = Instant::now();
    d.root.ok_put(&format!("/api/v1/agents/{}/channels", ann.agent_id), json!({"channel_ids": [d.ch]})).await;
    let mut narrowed_at = Vec::new();
    for (what, ws) in &mut sockets {
        while may_view(ws, theirs).await {
            assert!(t.elapsed() < WITHIN, "{what}: still reaches the channel taken {:?} ago", t.elapsed());
        }
        narrowed_at.push(ws.log.len());
    }
    // From then on no event of that channel arrives, old conversation or new, while its own do.
    d.root.ok_post(&format!("/api/v1/conversations/{theirs}/notes"), json!({"content": "not for ann"}), 201).await;
    let new_there = d.root.inbound(other, "cust-other-2", "Not yours now").await;
    let own = d.conversation("cust-own").await;
    for ((what, ws), from) in sockets.iter_mut().zip(narrowed_at) {
        ws.wait_for(what, Duration::from_secs(10), |f| f["type"] == "conversation.created" && about(f, &[own])).await;
        let leaked: Vec<_> = ws.log[from..].iter().filter(|f| about(f, &[theirs, new_there])).collect();
        assert!(leaked.is_empty(), "{what}: events of a channel no longer in scope: {leaked:#?}");
        assert_eq!(ws.close_code, None, "{what}: narrowed, not closed");
    }

    // Given back: within 2 s both reach it again, without reconnecting.
    let t = Instant::now();
    d.root.ok_put(&format!("/api/v1/agents/{}/channels", ann.agent_id), both).await;
    for (what, ws) in &mut sockets {
        while !may_view(ws, theirs).await {
            assert!(t.elapsed() < WITHIN, "{what}: does not reach the channel given {:?} ago", t.elapsed());
        }
    }
    let back = d.root.inbound(other, "cust-other-3", "Yours again").await;
    for (what, ws) in &mut sockets {
        ws.wait_for(what, Duration::from_secs(10), |f| f["type"] == "conversation.created" && about(f, &[back])).await;
    }
}

#[tokio::test]
async fn a_deactivated_agent_socket_closes_within_2s_and_cannot_reconnect() {
    let d = desk().await;
    let ann = d.agent("ann@example.com", "agent").await;
    let (cookie, _) = d.login("ann@example.com", PASSWORD).await;
    let mut by_token = d.token_socket(&ann).await;
    let mut by_cookie = WsClient::connect_with_cookie(&d.srv.base, &cookie).await;

    let t = Instant::now();
    let (s, b) = d.root.patch(&format!("/api/v1/agents/{}", ann.agent_id), json!({"active": false})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_closed(&mut by_token, CREDENTIALS_ENDED, t, "deactivated, token socket").await;
    assert_closed(&mut by_cookie, CREDENTIALS_ENDED, t, "deactivated, cookie socket").await;
    assert_eq!(WsClient::refused(&d.srv.base, ann.token.as_deref()).await, 401);
}

#[tokio::test]
async fn signing_out_closes_the_sockets_of_that_session_only() {
    let d = desk().await;
    let ann = d.agent("ann@example.com", "agent").await;
    let (leaving_cookie, leaving) = d.login("ann@example.com", PASSWORD).await;
    let (staying_cookie, staying) = d.login("ann@example.com", PASSWORD).await;
    let mut leaving_ws = WsClient::connect_with_cookie(&d.srv.base, &leaving_cookie).await;
    let mut staying_ws = WsClient::connect_with_cookie(&d.srv.base, &staying_cookie).await;
    let mut token_ws = d.token_socket(&ann).await;

    let t = Instant::now();
    let (s, _) = leaving.call(Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_closed(&mut leaving_ws, CREDENTIALS_ENDED, t, "signed-out session's socket").await;
    assert_live(&mut staying_ws, &d, "the other session's socket").await;
    assert_live(&mut token_ws, &d, "the token's socket").await;
    assert_eq!(status(&leaving, "/api/v1/me").await, 401);
    assert_eq!(status(&staying, "/api/v1/me").await, 200);
}

#[tokio::test]
async fn revoking_a_token_closes_the_sockets_opened_with_it_only() {
    let d = desk().await;
    let ann = d.agent("ann@example.com", "agent").await;
    let second = ann.ok_post("/api/v1/tokens", json!({"name": "second"}), 201).await;
    let kept = Api::with_token(&d.srv.base, second["token"].as_str().unwrap(), ann.agent_id);
    let mut revoked_ws = d.token_socket(&ann).await;
    let mut kept_ws = d.token_socket(&kept).await;
    let tokens = ann.ok_get("/api/v1/tokens").await;
    let first = tokens.as_array().unwrap().iter().find(|t| t["name"] == "test").unwrap()["id"].as_i64().unwrap();

    let t = Instant::now();
    let (s, _) = kept.delete(&format!("/api/v1/tokens/{first}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_closed(&mut revoked_ws, CREDENTIALS_ENDED, t, "revoked token's socket").await;
    assert_live(&mut kept_ws, &d, "the other token's socket").await;
}

#[tokio::test]
async fn an_own_password_change_ends_the_other_sessions_and_their_sockets_but_keeps_this_one() {
    let d = desk().await;
    let ann = d.agent("ann@example.com", "agent").await;
    let (this_cookie, this) = d.login("ann@example.com", PASSWORD).await;
    let (other_cookie, other) = d.login("ann@example.com", PASSWORD).await;
    let mut this_ws = WsClient::connect_with_cookie(&d.srv.base, &this_cookie).await;
    let mut other_ws = WsClient::connect_with_cookie(&d.srv.base, &other_cookie).await;
    let mut token_ws = d.token_socket(&ann).await;

    let t = Instant::now();
    let (s, b) = this
        .patch(
            &format!("/api/v1/agents/{}", ann.agent_id),
            json!({"password": NEW_PASSWORD, "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_closed(&mut other_ws, CREDENTIALS_ENDED, t, "the other session's socket").await;
    assert_eq!(status(&other, "/api/v1/me").await, 401, "the other session ended");
    assert_eq!(status(&this, "/api/v1/me").await, 200, "this session lives on");
    assert_live(&mut this_ws, &d, "this session's socket").await;
    // Tokens stay unless asked.
    assert_eq!(status(&ann, "/api/v1/me").await, 200);
    assert_live(&mut token_ws, &d, "the token's socket").await;
    d.login("ann@example.com", NEW_PASSWORD).await;

    // Asked: every API token of hers is revoked too, and its socket closes.
    let t = Instant::now();
    let (s, b) = this
        .patch(
            &format!("/api/v1/agents/{}", ann.agent_id),
            json!({"password": PASSWORD, "current_password": NEW_PASSWORD, "revoke_tokens": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_closed(&mut token_ws, CREDENTIALS_ENDED, t, "the token's socket after revoke_tokens").await;
    assert_eq!(status(&ann, "/api/v1/me").await, 401, "the token was revoked");
    assert_eq!(status(&this, "/api/v1/me").await, 200, "this session still lives on");
}

#[tokio::test]
async fn an_own_password_change_needs_the_current_password_and_bad_input_changes_nothing() {
    let d = desk().await;
    let ann = d.agent("ann@example.com", "agent").await;
    let (_, this) = d.login("ann@example.com", PASSWORD).await;
    let (_, other) = d.login("ann@example.com", PASSWORD).await;
    let path = format!("/api/v1/agents/{}", ann.agent_id);

    assert_error(&this.patch(&path, json!({"password": NEW_PASSWORD})).await, 400, "validation_failed");
    assert_error(
        &this.patch(&path, json!({"password": NEW_PASSWORD, "current_password": "not my password"})).await,
        403,
        "wrong_password",
    );
    // Through an API token as well: the token alone does not let its holder take over the account.
    assert_error(
        &ann.patch(&path, json!({"password": NEW_PASSWORD, "revoke_tokens": true})).await,
        400,
        "validation_failed",
    );
    assert_error(&this.patch(&path, json!({"revoke_tokens": true})).await, 400, "validation_failed");
    assert_error(&this.patch(&path, json!({"current_password": PASSWORD})).await, 400, "validation_failed");

    // Nothing changed: the old password signs in, every session and the token still work.
    d.login("ann@example.com", PASSWORD).await;
    for (api, what) in [(&this, "this session"), (&other, "the other session"), (&ann, "the token")] {
        assert_eq!(status(api, "/api/v1/me").await, 200, "{what}");
    }
    let audit = d.root.ok_get(&format!("/api/v1/audit?entity_type=agent&entity_id={}", ann.agent_id)).await;
    assert!(!audit.as_array().unwrap().iter().any(|e| e["action"] == "agent.update"), "no change recorded: {audit:#}");
}

#[tokio::test]
async fn an_admin_setting_a_password_ends_every_session_of_the_agent_and_on_request_the_tokens() {
    let d = desk().await;
    let ann = d.agent("ann@example.com", "agent").await;
    let (cookie, session) = d.login("ann@example.com", PASSWORD).await;
    let mut cookie_ws = WsClient::connect_with_cookie(&d.srv.base, &cookie).await;
    let mut token_ws = d.token_socket(&ann).await;

    let t = Instant::now();
    let (s, b) = d
        .root
        .patch(&format!("/api/v1/agents/{}", ann.agent_id), json!({"password": NEW_PASSWORD, "revoke_tokens": true}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_closed(&mut cookie_ws, CREDENTIALS_ENDED, t, "the agent's session socket").await;
    assert_closed(&mut token_ws, CREDENTIALS_ENDED, t, "the agent's token socket").await;
    assert_eq!(status(&session, "/api/v1/me").await, 401);
    assert_eq!(status(&ann, "/api/v1/me").await, 401);
    assert_eq!(status(&d.root, "/api/v1/me").await, 200, "the admin's own credentials are untouched");
}

#[tokio::test]
async fn a_change_whose_bus_announcement_was_lost_still_reaches_the_socket_within_2s() {
    let d = desk().await;
    let ann = d.agent("ann@example.com", "agent").await;
    let mut ws = d.token_socket(&ann).await;
    // Commit through the store alone, as if the bus had dropped the handler's announcement.
    let t = Instant::now();
    store::agents::update(
        d.srv.store(),
        ann.agent_id,
        store::agents::AgentPatch { active: Some(false), ..Default::default() },
        Actor::System,
    )
    .await
    .unwrap();
    assert_closed(&mut ws, CREDENTIALS_ENDED, t, "deactivated with no bus announcement").await;
}

#[tokio::test]
async fn a_plain_admin_cannot_revoke_or_change_a_super_admins_credentials() {
    let d = desk().await;
    let admin = d.agent("admin@example.com", "admin").await;
    let (_, root_session) = d.login("root@example.com", PASSWORD).await;
    let root_id = d.root.agent_id;
    let tokens = admin.ok_get(&format!("/api/v1/tokens?agent_id={root_id}")).await;
    let root_token = tokens.as_array().unwrap()[0]["id"].as_i64().unwrap();

    assert_error(&admin.delete(&format!("/api/v1/tokens/{root_token}")).await, 403, "forbidden");
    let path = format!("/api/v1/agents/{root_id}");
    for body in [
        json!({"password": NEW_PASSWORD}),
        json!({"password": NEW_PASSWORD, "revoke_tokens": true}),
        json!({"role": "agent"}),
        json!({"active": false}),
    ] {
        assert_error(&admin.patch(&path, body.clone()).await, 403, "forbidden");
    }
    // Nothing changed: the super admin's token, session and password all still work.
    assert_eq!(status(&d.root, "/api/v1/me").await, 200);
    assert_eq!(status(&root_session, "/api/v1/me").await, 200);
    let me = d.login("root@example.com", PASSWORD).await.1.ok_get("/api/v1/me").await;
    assert_eq!(me["agent"]["role"], "super_admin");

    // The neighbouring right that stays: an admin revokes an agent's token; a super admin an admin's.
    let ann = d.agent("ann@example.com", "agent").await;
    let ann_token = admin.ok_get(&format!("/api/v1/tokens?agent_id={}", ann.agent_id)).await[0]["id"].as_i64().unwrap();
    assert_eq!(admin.delete(&format!("/api/v1/tokens/{ann_token}")).await.0, StatusCode::NO_CONTENT);
    let admin_token =
        d.root.ok_get(&format!("/api/v1/tokens?agent_id={}", admin.agent_id)).await[0]["id"].as_i64().unwrap();
    assert_eq!(d.root.delete(&format!("/api/v1/tokens/{admin_token}")).await.0, StatusCode::NO_CONTENT);
}
