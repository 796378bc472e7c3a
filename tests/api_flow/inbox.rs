//! Issue #17 items 2 and 3: the agents' notification inbox and @mentions in internal notes.
//!
//! Each kind (assigned, mentioned, customer replied, chat waiting) is produced once by the change
//! feed's consumer, never for the agent who made the change, never for an agent who cannot see the
//! conversation's channel; read / read-all; another agent's notification is 404; the socket frame
//! arrives. The consumer's work is awaited by its feed rows running out (`store::feed::pending`),
//! not by sleeping.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard::store::feed::{self, Consumer};

use crate::common::ws::WsClient;
use crate::common::{Api, TestServer, assert_error};

/// Wait until the notification consumer has taken every feed row written so far.
async fn settled(srv: &TestServer) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if feed::pending(srv.store(), Consumer::Notifications).await.unwrap() == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the notification consumer did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn inbox(api: &Api) -> Value {
    api.ok_get("/api/v1/me/notifications").await
}

fn kinds(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap().to_owned()).collect()
}

/// The agents the outbox holds a "you were mentioned" mail for, on channel `ch`, sorted.
async fn mention_mails(srv: &TestServer, ch: i64) -> Vec<i64> {
    let rows = switchboard::store::outbox::list_for_channel(srv.store(), ch, 100).await.unwrap();
    let mut to: Vec<i64> = rows
        .into_iter()
        .filter(|d| d.kind == switchboard::store::notifications::MENTION_EMAIL)
        .map(|d| serde_json::from_str::<Value>(&d.payload).unwrap()["agent_id"].as_i64().unwrap())
        .collect();
    to.sort_unstable();
    to
}

struct Team {
    srv: TestServer,
    root: Api,
    ann: Api,
    bob: Api,
    /// An agent of another channel only.
    eve: Api,
    /// An async custom channel ann and bob work.
    desk: i64,
    conv: i64,
    customer: i64,
}

impl Team {
    async fn new() -> Self {
        let srv = TestServer::start().await;
        let root = srv.agent("root@example.com", "super_admin").await;
        let ann = srv.agent("ann@example.com", "agent").await;
        let bob = srv.agent("bob@example.com", "agent").await;
        let eve = srv.agent("eve@example.com", "agent").await;
        let desk = root.channel("custom", "Desk", Some("async")).await;
        let other = root.channel("custom", "Other", Some("async")).await;
        for a in [&ann, &bob] {
            root.ok_put(&format!("/api/v1/agents/{}/channels", a.agent_id), json!({"channel_ids": [desk]})).await;
        }
        root.ok_put(&format!("/api/v1/agents/{}/channels", eve.agent_id), json!({"channel_ids": [other]})).await;
        let conv = root.inbound(desk, "cust-1", "My order is late").await;
        let customer = root.ok_get(&format!("/api/v1/conversations/{conv}")).await["customer_id"].as_i64().unwrap();
        Team { srv, root, ann, bob, eve, desk, conv, customer }
    }

    async fn customer_says(&self, text: &str) {
        self.root
            .ok_post(
                &format!("/api/v1/conversations/{}/messages", self.conv),
                json!({"content": text, "user_id": self.customer}),
                201,
            )
            .await;
    }
}

#[tokio::test]
async fn each_kind_once_never_to_the_actor_nor_to_agents_without_access() {
    let t = Team::new().await;
    let c = format!("/api/v1/conversations/{}", t.conv);

    // Ann gives the conversation to Bob: Bob is notified, Ann (who did it) is not.
    let (s, _) = t.ann.patch(&c, json!({"assignee_id": t.bob.agent_id})).await;
    assert_eq!(s, StatusCode::OK);
    // The customer writes twice on Bob's conversation: one unread "customer replied", refreshed.
    t.customer_says("Any news?").await;
    t.customer_says("Hello??").await;
    // Ann mentions Bob, the admin and herself in a note.
    let note = t
        .ann
        .ok_post(
            &format!("{c}/notes"),
            json!({"content": "@bob can you check? cc @root — @ann", "mentions": [t.bob.agent_id, t.root.agent_id, t.ann.agent_id]}),
            201,
        )
        .await;
    settled(&t.srv).await;

    let bob = inbox(&t.bob).await;
    assert_eq!(kinds(&bob), ["mentioned", "customer_replied", "assigned"], "newest first: {bob}");
    assert_eq!(bob["unread_count"], 3);
    let [mentioned, replied, assigned] = [&bob["items"][0], &bob["items"][1], &bob["items"][2]];
    assert_eq!(assigned["actor"], json!({"kind": "agent", "id": t.ann.agent_id, "name": "ann"}));
    assert_eq!(assigned["conversation_id"], t.conv);
    assert_eq!(assigned["subject"], "My order is late");
    assert_eq!(replied["actor"]["kind"], "customer");
    assert_eq!(replied["excerpt"], "Hello??", "the newer message refreshed the unread one");
    assert_eq!(mentioned["actor"]["id"], t.ann.agent_id);
    assert_eq!(mentioned["message_id"], note["message_id"]);
    assert!(mentioned["excerpt"].as_str().unwrap().starts_with("@bob can you check?"));
    assert!(mentioned["read_at"].is_null());

    assert_eq!(kinds(&inbox(&t.root).await), ["mentioned"], "an admin may be mentioned anywhere");
    // Nobody was online: each mentioned agent is also mailed, through the outbox (not Ann, the author).
    let mails = mention_mails(&t.srv, t.desk).await;
    assert_eq!(mails, [t.root.agent_id, t.bob.agent_id], "one mail per mentioned agent who is away");
    let ann = inbox(&t.ann).await;
    assert_eq!(ann["items"], json!([]), "never to the agent who made the change: {ann}");
    assert_eq!(ann["unread_count"], 0);
    assert_eq!(inbox(&t.eve).await["items"], json!([]));

    // The note shows whom it mentions.
    let messages = t.ann.ok_get(&format!("{c}/messages")).await;
    let shown = messages.as_array().unwrap().iter().find(|m| m["id"] == note["message_id"]).unwrap();
    assert_eq!(
        shown["mentions"],
        json!([{"agent_id": t.ann.agent_id, "name": "ann"}, {"agent_id": t.bob.agent_id, "name": "bob"},
               {"agent_id": t.root.agent_id, "name": "root"}])
    );

    // Bob taking a conversation himself notifies nobody; the customer writing on it then notifies him.
    let second = t.root.inbound(t.desk, "cust-2", "Second question").await;
    t.bob.patch(&format!("/api/v1/conversations/{second}"), json!({"assignee_id": t.bob.agent_id})).await;
    settled(&t.srv).await;
    assert_eq!(inbox(&t.bob).await["unread_count"], 3, "taking it oneself is no notification");

    // Eve cannot see the channel: she cannot be mentioned (422, nothing stored) nor list its agents.
    let before = t.ann.ok_get(&format!("{c}/messages")).await.as_array().unwrap().len();
    let refused =
        t.ann.post(&format!("{c}/notes"), json!({"content": "@eve look", "mentions": [t.eve.agent_id]})).await;
    assert_error(&refused, 422, "rule_violation");
    assert_eq!(t.ann.ok_get(&format!("{c}/messages")).await.as_array().unwrap().len(), before, "no note stored");
    assert_error(
        &t.ann.post(&format!("{c}/messages"), json!({"content": "@bob", "mentions": [t.bob.agent_id]})).await,
        400,
        "validation_failed",
    );
    settled(&t.srv).await;
    assert_eq!(inbox(&t.eve).await["items"], json!([]));

    // Who may be mentioned: the agents of the channel and the admins, by name; Eve gets 404 for it.
    let names: Vec<Value> = t.ann.ok_get(&format!("{c}/mentionable")).await.as_array().unwrap().to_vec();
    let names: Vec<&str> = names.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ann", "bob", "root"]);
    assert_error(&t.eve.get(&format!("{c}/mentionable")).await, 404, "not_found");

    // Bob loses the channel: its notifications leave his list and his count.
    t.root.ok_put(&format!("/api/v1/agents/{}/channels", t.bob.agent_id), json!({"channel_ids": []})).await;
    let gone = inbox(&t.bob).await;
    assert_eq!((gone["items"].clone(), gone["unread_count"].clone()), (json!([]), json!(0)));
}

#[tokio::test]
async fn read_one_read_all_pages_and_another_agents_notification_is_404() {
    let t = Team::new().await;
    let c = format!("/api/v1/conversations/{}", t.conv);
    for i in 0..3 {
        t.ann
            .ok_post(
                &format!("{c}/notes"),
                json!({"content": format!("@bob note {i}"), "mentions": [t.bob.agent_id]}),
                201,
            )
            .await;
    }
    t.bob.ok_post(&format!("{c}/notes"), json!({"content": "@ann thanks", "mentions": [t.ann.agent_id]}), 201).await;
    settled(&t.srv).await;

    let first = t.bob.ok_get("/api/v1/me/notifications?limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["has_more"], true);
    let last = first["items"][1]["id"].as_i64().unwrap();
    let rest = t.bob.ok_get(&format!("/api/v1/me/notifications?limit=2&before={last}")).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["has_more"], false);
    assert_eq!(rest["items"][0]["excerpt"], "@bob note 0");

    let newest = first["items"][0]["id"].as_i64().unwrap();
    let ann_own = inbox(&t.ann).await["items"][0]["id"].as_i64().unwrap();
    // Another agent's notification is not found, for reading it as for marking it.
    assert_error(&t.ann.post(&format!("/api/v1/me/notifications/{newest}/read"), json!({})).await, 404, "not_found");
    assert_error(&t.bob.post(&format!("/api/v1/me/notifications/{ann_own}/read"), json!({})).await, 404, "not_found");
    assert_error(&t.bob.post("/api/v1/me/notifications/999999/read", json!({})).await, 404, "not_found");
    assert_eq!(inbox(&t.bob).await["unread_count"], 3, "nothing changed");

    let read = t.bob.ok_post(&format!("/api/v1/me/notifications/{newest}/read"), json!({}), 200).await;
    assert_eq!(read["unread_count"], 2);
    // Again: no change.
    assert_eq!(
        t.bob.ok_post(&format!("/api/v1/me/notifications/{newest}/read"), json!({}), 200).await["unread_count"],
        2
    );
    let page = inbox(&t.bob).await;
    assert!(page["items"][0]["read_at"].is_string());
    assert!(page["items"][1]["read_at"].is_null());
    let unread = t.bob.ok_get("/api/v1/me/notifications?unread=true").await;
    assert_eq!(unread["items"].as_array().unwrap().len(), 2);

    assert_eq!(t.bob.ok_post("/api/v1/me/notifications/read-all", json!({}), 200).await["unread_count"], 0);
    let page = inbox(&t.bob).await;
    assert_eq!(page["unread_count"], 0);
    assert!(page["items"].as_array().unwrap().iter().all(|n| n["read_at"].is_string()));
    assert_eq!(inbox(&t.ann).await["unread_count"], 1, "Ann's own are untouched");

    assert_error(&t.bob.get("/api/v1/me/notifications?limit=0").await, 400, "validation_failed");
}

#[tokio::test]
async fn a_new_chat_routed_to_an_agent_and_a_mention_arrive_on_their_socket() {
    let t = Team::new().await;
    let routing = json!({"assign": {"mode": "round_robin", "agent_ids": [t.bob.agent_id]}});
    let chat = t
        .root
        .ok_post(
            "/api/v1/custom-channels",
            json!({"name": "Chat", "webhook_url": "http://127.0.0.1:9/", "type": "sync", "routing": routing}),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    for a in [&t.ann, &t.bob] {
        t.root.ok_put(&format!("/api/v1/agents/{}/channels", a.agent_id), json!({"channel_ids": [t.desk, chat]})).await;
    }
    // Bob is online (routing gives chats to online agents); Eve watches from another channel.
    let mut bob = WsClient::connect(&t.srv.base, t.bob.token.as_deref().unwrap(), None).await;
    let mut eve = WsClient::connect(&t.srv.base, t.eve.token.as_deref().unwrap(), None).await;
    let mut ann = WsClient::connect(&t.srv.base, t.ann.token.as_deref().unwrap(), None).await;
    let mut watcher = WsClient::connect(&t.srv.base, t.root.token.as_deref().unwrap(), None).await;
    let bob_online = |f: &Value| f["agent_id"] == t.bob.agent_id && f["status"] == "online";
    let known = watcher.hello["presence"].as_array().unwrap().iter().any(bob_online)
        || watcher.log.iter().any(|f| f["type"] == "presence" && bob_online(f));
    if !known {
        watcher
            .wait_for("bob online", Duration::from_secs(10), |f| {
                f["type"] == "presence" && f["agent_id"] == t.bob.agent_id && f["status"] == "online"
            })
            .await;
    }

    let created = t
        .root
        .ok_post(
            "/api/v1/conversations",
            json!({"channel": chat, "user_custom_id": "visitor", "content": "Hi, anyone?"}),
            201,
        )
        .await;
    let chat_id = created["conversation_id"].as_i64().unwrap();
    let frame = bob.wait_for("chat_waiting", Duration::from_secs(10), |f| f["type"] == "notification").await;
    assert_eq!(frame["notification"]["kind"], "chat_waiting");
    assert_eq!(frame["notification"]["conversation_id"], chat_id);
    assert_eq!(frame["notification"]["actor"]["kind"], "system");
    assert_eq!(frame["notification"]["excerpt"], "Hi, anyone?");
    assert_eq!(frame["unread_count"], 1);

    t.ann
        .ok_post(
            &format!("/api/v1/conversations/{chat_id}/notes"),
            json!({"content": "@bob this one is a VIP", "mentions": [t.bob.agent_id]}),
            201,
        )
        .await;
    let frame = bob
        .wait_for("mentioned", Duration::from_secs(10), |f| {
            f["type"] == "notification" && f["notification"]["kind"] == "mentioned"
        })
        .await;
    assert_eq!(frame["unread_count"], 2);
    let id = frame["notification"]["id"].as_i64().unwrap();
    settled(&t.srv).await;
    assert_eq!(mention_mails(&t.srv, chat).await.len(), 0, "Bob is online: no mail");
    assert_eq!(inbox(&t.bob).await["items"][0]["id"], id, "the frame is the stored notification");

    // Reading it on one device tells his other sockets.
    t.bob.ok_post(&format!("/api/v1/me/notifications/{id}/read"), json!({}), 200).await;
    let read = bob.wait_for("read", Duration::from_secs(10), |f| f["type"] == "notifications.read").await;
    assert_eq!((read["ids"].clone(), read["unread_count"].clone()), (json!([id]), json!(1)));

    settled(&t.srv).await;
    // Nobody else got a notification frame: not the author, not an agent of another channel.
    for (who, socket) in [("ann", &mut ann), ("eve", &mut eve), ("root", &mut watcher)] {
        let frames = socket.drain(Duration::from_millis(300)).await;
        let all: Vec<&Value> = socket.log.iter().chain(frames.iter()).collect();
        assert!(
            !all.iter().any(|f| f["type"] == "notification" || f["type"] == "notifications.read"),
            "{who} got another agent's notification frame"
        );
    }
}
