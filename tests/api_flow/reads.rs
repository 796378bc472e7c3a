//! Issue #17 item 1: unread state on the server. An agent's read cursor per conversation only rises,
//! outlives the session that set it, drives the `unread` of conversation answers and the per-view totals of
//! `GET /me/unread`, reaches the agent's other sockets as a `read` frame, and never names or counts a
//! conversation of a channel the agent may not see.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::ws::WsClient;
use crate::common::{Api, TestServer, assert_error};

const WAIT: Duration = Duration::from_secs(10);

/// A customer's message in conversation `id` (custom channel, as the integrator sends it).
async fn customer_writes(admin: &Api, id: i64, text: &str) {
    let customer = admin.ok_get(&format!("/api/v1/conversations/{id}")).await["customer_id"].as_i64().unwrap();
    admin
        .ok_post(&format!("/api/v1/conversations/{id}/messages"), json!({"content": text, "user_id": customer}), 201)
        .await;
}

async fn read(agent: &Api, id: i64, seq: i64) -> Value {
    agent.ok_post(&format!("/api/v1/conversations/{id}/read"), json!({"seq": seq}), 200).await
}

fn totals(unread: &Value, view: &str) -> (i64, i64) {
    (unread[view]["conversations"].as_i64().unwrap(), unread[view]["messages"].as_i64().unwrap())
}

fn item(unread: &Value, id: i64) -> Option<Value> {
    unread["conversations"].as_array().unwrap().iter().find(|c| c["conversation_id"] == id).cloned()
}

/// An agent `email` who may work `channels`, signed in with a password (the dashboard's way).
async fn agent_on(srv: &TestServer, admin: &Api, email: &str, channels: &[i64]) -> Api {
    let token_api = srv.agent(email, "agent").await;
    admin.ok_put(&format!("/api/v1/agents/{}/channels", token_api.agent_id), json!({"channel_ids": channels})).await;
    srv.login(email).await
}

#[tokio::test]
async fn the_cursor_only_rises_outlives_the_session_and_counts_per_view() {
    let srv = TestServer::start().await;
    let ann = srv.agent("ann@example.com", "super_admin").await;
    let shop = ann.channel("custom", "Shop", Some("async")).await;
    let live = ann.channel("custom", "Live", Some("sync")).await;
    let bob = agent_on(&srv, &ann, "bob@example.com", &[shop, live]).await;

    // A ticket: three customer messages (seq 1–3) and a reply (seq 4); a chat with one customer message.
    let ticket = ann.inbound(shop, "cust-1", "Where is my order?").await;
    customer_writes(&ann, ticket, "Hello?").await;
    customer_writes(&ann, ticket, "Anyone there?").await;
    ann.ok_post(&format!("/api/v1/conversations/{ticket}/messages"), json!({"content": "Looking into it"}), 201).await;
    let chat = ann.inbound(live, "visitor", "Hi, quick question").await;

    let unread = bob.ok_get("/api/v1/me/unread").await;
    assert_eq!(totals(&unread, "tickets"), (1, 3), "{unread}");
    assert_eq!(totals(&unread, "chats"), (1, 1), "{unread}");
    assert_eq!(item(&unread, chat).unwrap()["view"], "chats");
    let list = bob.ok_get("/api/v1/conversations").await;
    assert_eq!(list["items"][0]["id"], ticket);
    assert_eq!(list["items"][0]["unread"], 3, "the row is bold: {list}");
    assert_eq!(bob.ok_get(&format!("/api/v1/conversations/{chat}")).await["unread"], 1);

    // Read up to seq 2: one customer message (seq 3) is left; the reply never counts.
    let r = read(&bob, ticket, 2).await;
    assert_eq!((r["last_read_seq"].as_i64(), r["unread"].as_i64()), (Some(2), Some(1)), "{r}");
    // A lower cursor changes nothing.
    let r = read(&bob, ticket, 1).await;
    assert_eq!((r["last_read_seq"].as_i64(), r["unread"].as_i64()), (Some(2), Some(1)), "{r}");

    // A new sign-in (another browser, another device) sees the same.
    let bob_elsewhere = srv.login("bob@example.com").await;
    let unread = bob_elsewhere.ok_get("/api/v1/me/unread").await;
    assert_eq!(totals(&unread, "tickets"), (1, 1), "{unread}");
    assert_eq!(item(&unread, ticket).unwrap()["last_read_seq"], 2);
    assert_eq!(bob_elsewhere.ok_get(&format!("/api/v1/conversations/{ticket}")).await["unread"], 1);

    // All read: the ticket leaves the totals and its row is no longer bold; the chat is untouched.
    read(&bob_elsewhere, ticket, 4).await;
    let unread = bob.ok_get("/api/v1/me/unread").await;
    assert_eq!(totals(&unread, "tickets"), (0, 0), "{unread}");
    assert_eq!(totals(&unread, "chats"), (1, 1), "{unread}");
    assert!(item(&unread, ticket).is_none());
    assert_eq!(bob.ok_get("/api/v1/conversations").await["items"][0]["unread"], 0);

    // The customer writes again: unread again, for bob and (still, never having read) for ann.
    customer_writes(&ann, ticket, "Still waiting").await;
    assert_eq!(totals(&bob.ok_get("/api/v1/me/unread").await, "tickets"), (1, 1));
    assert_eq!(totals(&ann.ok_get("/api/v1/me/unread").await, "tickets"), (1, 4), "cursors are per agent");

    // A closed ticket is no longer work to do: out of the totals, though its own count stays.
    let (s, b) = ann.patch(&format!("/api/v1/conversations/{ticket}"), json!({"status": "closed"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(totals(&bob.ok_get("/api/v1/me/unread").await, "tickets"), (0, 0));
    assert_eq!(bob.ok_get(&format!("/api/v1/conversations/{ticket}")).await["unread"], 1);

    // The chat ends: it moves from the chats view to the tickets view.
    ann.ok_post(&format!("/api/v1/conversations/{chat}/end"), json!({}), 200).await;
    let unread = bob.ok_get("/api/v1/me/unread").await;
    assert_eq!((totals(&unread, "chats"), totals(&unread, "tickets")), ((0, 0), (1, 1)), "{unread}");
}

#[tokio::test]
async fn another_channels_conversation_is_404_and_never_counted() {
    let srv = TestServer::start().await;
    let ann = srv.agent("ann@example.com", "super_admin").await;
    let shop = ann.channel("custom", "Shop", Some("async")).await;
    let vip = ann.channel("custom", "VIP", Some("async")).await;
    let bob = agent_on(&srv, &ann, "bob@example.com", &[shop]).await;
    let mine = ann.inbound(shop, "cust-1", "Mine").await;
    let secret = ann.inbound(vip, "cust-2", "Not for bob").await;
    customer_writes(&ann, secret, "More secrets").await;

    let missing = bob.post(&format!("/api/v1/conversations/{secret}/read"), json!({"seq": 1})).await;
    assert_error(&missing, 404, "not_found");
    assert_eq!(missing, bob.post("/api/v1/conversations/999999/read", json!({"seq": 1})).await, "same as none at all");
    assert_error(&bob.get(&format!("/api/v1/conversations/{secret}")).await, 404, "not_found");

    let unread = bob.ok_get("/api/v1/me/unread").await;
    assert_eq!(totals(&unread, "tickets"), (1, 1), "only the Shop ticket: {unread}");
    assert!(item(&unread, secret).is_none(), "{unread}");
    assert!(item(&unread, mine).is_some(), "{unread}");

    // The refused call wrote nothing: given the channel later, bob has all of it unread.
    ann.ok_put(&format!("/api/v1/agents/{}/channels", bob.agent_id), json!({"channel_ids": [shop, vip]})).await;
    let unread = bob.ok_get("/api/v1/me/unread").await;
    assert_eq!(item(&unread, secret).unwrap()["unread"], 2, "{unread}");
    assert_eq!(item(&unread, secret).unwrap()["last_read_seq"], 0);
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let srv = TestServer::start().await;
    let ann = srv.agent("ann@example.com", "super_admin").await;
    let shop = ann.channel("custom", "Shop", Some("async")).await;
    let bob = agent_on(&srv, &ann, "bob@example.com", &[shop]).await;
    let ticket = ann.inbound(shop, "cust-1", "Hello").await;
    customer_writes(&ann, ticket, "Second").await;
    let path = format!("/api/v1/conversations/{ticket}/read");

    // Seqs that name no message of the conversation.
    for seq in [0, -1, 3, i64::MAX] {
        assert_error(&bob.post(&path, json!({"seq": seq})).await, 422, "unknown_reference");
    }
    // Malformed bodies.
    for body in [json!({}), json!({"seq": "2"}), json!({"seq": 1.5}), json!({"seq": 1, "extra": true}), json!([1])] {
        let got = bob.post(&path, body.clone()).await;
        assert_eq!(got.0, StatusCode::BAD_REQUEST, "{body}: {got:?}");
    }
    let unread = bob.ok_get("/api/v1/me/unread").await;
    assert_eq!(item(&unread, ticket).unwrap()["unread"], 2, "{unread}");
    assert_eq!(item(&unread, ticket).unwrap()["last_read_seq"], 0);
}

#[tokio::test]
async fn the_agents_other_sockets_hear_the_read_and_nobody_else_does() {
    let srv = TestServer::start().await;
    let ann = srv.agent("ann@example.com", "super_admin").await;
    let shop = ann.channel("custom", "Shop", Some("async")).await;
    let bob = srv.agent("bob@example.com", "agent").await;
    let carl = srv.agent("carl@example.com", "agent").await;
    for a in [&bob, &carl] {
        ann.ok_put(&format!("/api/v1/agents/{}/channels", a.agent_id), json!({"channel_ids": [shop]})).await;
    }
    let ticket = ann.inbound(shop, "cust-1", "Hello").await;
    customer_writes(&ann, ticket, "Are you there?").await;

    let mut bob_tab = WsClient::connect(&srv.base, bob.token.as_deref().unwrap(), None).await;
    let mut bob_phone = WsClient::connect(&srv.base, bob.token.as_deref().unwrap(), None).await;
    let mut carl_tab = WsClient::connect(&srv.base, carl.token.as_deref().unwrap(), None).await;

    read(&bob, ticket, 2).await;
    for socket in [&mut bob_tab, &mut bob_phone] {
        let f = socket.wait_for("a read frame", WAIT, |f| f["type"] == "read").await;
        assert_eq!(f, json!({"type": "read", "conversation_id": ticket, "last_read_seq": 2, "unread": 0}));
    }
    // A cursor that did not move announces nothing: the next frame bob's sockets get is the note below.
    read(&bob, ticket, 1).await;
    ann.ok_post(&format!("/api/v1/conversations/{ticket}/notes"), json!({"content": "marker"}), 201).await;
    let note = bob_tab.wait_for("the note", WAIT, |f| f["type"] == "message.created").await;
    assert_eq!(note["message"]["content"], "marker");
    assert!(!bob_tab.log.iter().any(|f| f["type"] == "read" && f["last_read_seq"] == 1), "{:#?}", bob_tab.log);
    // Carl, who may see the ticket too, never hears of bob's cursor (frames arrive in order: the note came after).
    carl_tab
        .wait_for("the note", WAIT, |f| f["type"] == "message.created" && f["message"]["content"] == "marker")
        .await;
    assert!(!carl_tab.log.iter().any(|f| f["type"] == "read"), "{:#?}", carl_tab.log);
}
