//! The real-time core on one node (issue #3): live events, collision and typing, presence,
//! access filtering on the socket, resume without gaps, and the inactivity end of chats.
//! Requirements RT-1…RT-3, RT-7, CORE-4, CORE-5; DESIGN invariants 2, 3, 4.

mod common;

use std::time::Duration;

use common::ws::{WsClient, messages};
use common::{Api, TestServer, assert_error};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn token(api: &Api) -> &str {
    api.token.as_deref().unwrap()
}

/// An admin, two agents with access to channel `ch`, and an agent without it.
struct Desk {
    srv: TestServer,
    admin: Api,
    ann: Api,
    bob: Api,
    outsider: Api,
    ch: i64,
    other_ch: i64,
}

async fn desk(timeout_s: Option<i64>) -> Desk {
    let srv = TestServer::start().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let mut body = json!({"kind": "custom", "name": "Live chat", "mode": "sync"});
    if let Some(t) = timeout_s {
        body["inactivity_timeout_s"] = json!(t);
    }
    let ch = admin.ok_post("/api/v1/channels", body, 201).await["id"].as_i64().unwrap();
    let other_ch = admin.channel("custom", "Secret", Some("async")).await;
    let ann = srv.agent("ann@example.com", "agent").await;
    let bob = srv.agent("bob@example.com", "agent").await;
    let outsider = srv.agent("out@example.com", "agent").await;
    for a in [&ann, &bob] {
        admin.ok_put(&format!("/api/v1/agents/{}/channels", a.agent_id), json!({"channel_ids": [ch]})).await;
    }
    admin.ok_put(&format!("/api/v1/agents/{}/channels", outsider.agent_id), json!({"channel_ids": [other_ch]})).await;
    Desk { srv, admin, ann, bob, outsider, ch, other_ch }
}

#[tokio::test]
async fn rt_1_new_conversations_and_messages_arrive_live_for_those_with_access() {
    let d = desk(None).await;
    let mut ann = WsClient::connect(&d.srv.base, token(&d.ann), None).await;
    let mut outsider = WsClient::connect(&d.srv.base, token(&d.outsider), None).await;

    let id = d.admin.inbound(d.ch, "cust-1", "Hello, anyone?").await;
    let created = ann.wait_for("conversation.created", WAIT, |f| f["type"] == "conversation.created").await;
    assert_eq!(created["conversation_id"], id);
    assert_eq!(created["seq"], 1);
    assert_eq!(created["conversation"]["active_chat"], true, "CORE-4: a new chat");
    assert_eq!(created["message"]["content"], "Hello, anyone?");
    assert!(created["cursor"].as_str().unwrap().starts_with("c1."));

    d.ann
        .ok_post(&format!("/api/v1/conversations/{id}/messages"), json!({"content": "Hi! How can I help?"}), 201)
        .await;
    let reply = ann.wait_for("message.created", WAIT, |f| f["type"] == "message.created").await;
    assert_eq!((reply["conversation_id"].as_i64(), reply["seq"].as_i64()), (Some(id), Some(2)));
    assert_eq!(reply["message"]["author"]["name"], "ann");
    assert_eq!(reply["conversation"]["last_seq"], 2);

    // Invariant 4: the outsider sees its own channel's events, never the others'.
    let secret = d.admin.inbound(d.other_ch, "vip", "private").await;
    let seen = outsider.wait_for("its own channel's event", WAIT, |f| f["type"] == "conversation.created").await;
    assert_eq!(seen["conversation_id"], secret);
    assert!(
        outsider.log.iter().all(|f| f["conversation_id"] != id),
        "the outsider received an event of a channel it has no access to: {:#?}",
        outsider.log
    );
    let ann_rest = ann.drain(Duration::from_millis(300)).await;
    assert!(ann_rest.iter().all(|f| f["conversation_id"] != secret), "{ann_rest:#?}");
    ann.ping().await;
}

#[tokio::test]
async fn rt_3_viewing_replying_typing_and_presence() {
    let d = desk(None).await;
    let id = d.admin.inbound(d.ch, "cust", "help").await;
    let mut bob = WsClient::connect(&d.srv.base, token(&d.bob), None).await;
    let mut ann = WsClient::connect(&d.srv.base, token(&d.ann), None).await;
    let online = bob.wait_for("ann online", WAIT, |f| f["type"] == "presence" && f["agent_id"] == d.ann.agent_id).await;
    assert_eq!(online["status"], "online");

    ann.send(json!({"type": "view", "conversation_id": id})).await;
    let c = bob
        .wait_for("ann viewing", WAIT, |f| {
            f["type"] == "collision" && f["viewing"].as_array().is_some_and(|v| !v.is_empty())
        })
        .await;
    assert_eq!(c["conversation_id"], id);
    assert_eq!(c["viewing"][0]["agent_id"], d.ann.agent_id);
    assert_eq!(c["viewing"][0]["name"], "ann");

    ann.send(json!({"type": "typing", "conversation_id": id, "state": "start"})).await;
    let c = bob
        .wait_for("ann replying", WAIT, |f| {
            f["type"] == "collision" && f["replying"].as_array().is_some_and(|v| !v.is_empty())
        })
        .await;
    assert_eq!(c["replying"][0]["agent_id"], d.ann.agent_id);
    let t = bob.wait_for("typing", WAIT, |f| f["type"] == "typing").await;
    assert_eq!(t["who"]["agent_id"], d.ann.agent_id);
    assert_eq!(t["state"], "start");

    ann.send(json!({"type": "presence", "status": "away"})).await;
    bob.wait_for("ann away", WAIT, |f| {
        f["type"] == "presence" && f["agent_id"] == d.ann.agent_id && f["status"] == "away"
    })
    .await;

    // The tab dies without a goodbye: its markers vanish by themselves.
    ann.kill();
    bob.wait_for("markers cleared", Duration::from_secs(15), |f| {
        f["type"] == "collision"
            && f["viewing"].as_array().is_some_and(|v| v.is_empty())
            && f["replying"].as_array().is_some_and(|v| v.is_empty())
    })
    .await;
    bob.wait_for("ann offline", Duration::from_secs(15), |f| {
        f["type"] == "presence" && f["agent_id"] == d.ann.agent_id && f["status"] == "offline"
    })
    .await;

    // Bad frames get an error and the socket stays usable.
    bob.send(json!({"type": "dance"})).await;
    let e = bob.wait_for("error", WAIT, |f| f["type"] == "error").await;
    assert_eq!(e["error"], "bad_frame");
    bob.send(json!({"type": "view", "conversation_id": 999_999})).await;
    assert_eq!(bob.wait_for("error", WAIT, |f| f["type"] == "error").await["error"], "not_found");
    bob.ping().await;
}

#[tokio::test]
async fn invariant_4_outsiders_cannot_view_or_type_in_foreign_conversations() {
    let d = desk(None).await;
    let id = d.admin.inbound(d.ch, "cust", "help").await;
    let mut outsider = WsClient::connect(&d.srv.base, token(&d.outsider), None).await;
    let mut ann = WsClient::connect(&d.srv.base, token(&d.ann), None).await;
    outsider.send(json!({"type": "view", "conversation_id": id})).await;
    assert_eq!(outsider.wait_for("error", WAIT, |f| f["type"] == "error").await["error"], "not_found");
    outsider.send(json!({"type": "typing", "conversation_id": id, "state": "start"})).await;
    assert_eq!(outsider.wait_for("error", WAIT, |f| f["type"] == "error").await["error"], "not_found");
    // And collision frames of that conversation never reach the outsider.
    ann.send(json!({"type": "view", "conversation_id": id})).await;
    ann.ping().await;
    let got = outsider.drain(Duration::from_millis(500)).await;
    assert!(got.iter().all(|f| f["type"] != "collision"), "{got:#?}");
    assert_eq!(WsClient::refused(&d.srv.base, None).await, 401);
    assert_eq!(WsClient::refused(&d.srv.base, Some("sbt_wrong")).await, 401);
}

#[tokio::test]
async fn rt_7_resume_after_a_drop_misses_nothing_and_repeats_nothing() {
    let d = desk(None).await;
    let id = d.admin.inbound(d.ch, "cust", "start").await;
    let mut ann = WsClient::connect(&d.srv.base, token(&d.ann), None).await;
    for i in 0..3 {
        d.admin
            .ok_post(&format!("/api/v1/conversations/{id}/messages"), json!({"content": format!("live {i}")}), 201)
            .await;
    }
    for seq in 2..=4 {
        ann.wait_for("live message", WAIT, |f| f["type"] == "message.created" && f["seq"] == seq).await;
    }
    let cursor = ann.cursor.clone().unwrap();
    ann.kill();
    // While disconnected: more messages, a property change, a new conversation.
    for i in 0..4 {
        d.admin
            .ok_post(&format!("/api/v1/conversations/{id}/messages"), json!({"content": format!("missed {i}")}), 201)
            .await;
    }
    d.admin.patch(&format!("/api/v1/conversations/{id}"), json!({"priority": "high"})).await;
    let second = d.admin.inbound(d.ch, "cust-2", "meanwhile").await;

    let mut back = WsClient::connect(&d.srv.base, token(&d.ann), None).await;
    back.send(json!({"type": "resume", "cursor": cursor})).await;
    let done = back.wait_for("resumed", WAIT, |f| f["type"] == "resumed").await;
    // The six changes above, and the delivery-state changes of the replies the dispatcher made meanwhile (#16).
    let updates = back.log.iter().filter(|f| f["type"] == "message.updated").count();
    assert_eq!(done["replayed"], 6 + updates, "{:#?}", back.log);
    assert_eq!(messages(&back.log), vec![(id, 5), (id, 6), (id, 7), (id, 8)], "exactly the missed messages, in order");
    assert!(back.log.iter().any(|f| f["type"] == "conversation.updated" && f["conversation"]["priority"] == "high"));
    assert!(back.log.iter().any(|f| f["type"] == "conversation.created" && f["conversation_id"] == second));
    // Live again, and nothing comes twice.
    d.admin.ok_post(&format!("/api/v1/conversations/{id}/messages"), json!({"content": "after"}), 201).await;
    back.wait_for("live after resume", WAIT, |f| f["type"] == "message.created" && f["seq"] == 9).await;
    let mut ids: Vec<i64> = back.log.iter().filter_map(|f| f["event_id"].as_i64()).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "no event twice: {:#?}", back.log);

    // The same through ?cursor= on the upgrade.
    let cursor2 = back.cursor.clone().unwrap();
    back.kill();
    d.admin.ok_post(&format!("/api/v1/conversations/{second}/messages"), json!({"content": "x"}), 201).await;
    let mut again = WsClient::connect(&d.srv.base, token(&d.ann), Some(&cursor2)).await;
    again.wait_for("resumed", WAIT, |f| f["type"] == "resumed").await;
    assert_eq!(messages(&again.log), vec![(second, 2)]);

    again.send(json!({"type": "resume", "cursor": "nonsense"})).await;
    assert_eq!(again.wait_for("error", WAIT, |f| f["type"] == "error").await["error"], "bad_cursor");
}

#[tokio::test]
async fn core_5_chat_ends_by_inactivity_exactly_once() {
    let d = desk(Some(2)).await;
    let mut ann = WsClient::connect(&d.srv.base, token(&d.ann), None).await;
    let id = d.admin.inbound(d.ch, "cust", "anyone?").await;
    let ended = ann.wait_for("conversation.ended", Duration::from_secs(8), |f| f["type"] == "conversation.ended").await;
    assert_eq!(ended["conversation_id"], id);
    assert_eq!(ended["conversation"]["active_chat"], false);
    let list = d.admin.ok_get("/api/v1/conversations").await;
    assert_eq!(list["total"], 1, "the ended chat is now in the ticket list");
    let audit = d.admin.ok_get(&format!("/api/v1/audit?entity_type=conversation&entity_id={id}")).await;
    let ends = audit.as_array().unwrap().iter().filter(|e| e["action"] == "conversation.end").count();
    assert_eq!(ends, 1);
    assert_eq!(
        ann.drain(Duration::from_millis(1500)).await.iter().filter(|f| f["type"] == "conversation.ended").count(),
        0
    );
    assert_error(&d.ann.post(&format!("/api/v1/conversations/{id}/end"), json!({})).await, 409, "conflict");
}

#[tokio::test]
async fn core_5_a_message_just_before_the_deadline_keeps_the_chat_open() {
    let d = desk(Some(3)).await;
    let mut ann = WsClient::connect(&d.srv.base, token(&d.ann), None).await;
    let id = d.admin.inbound(d.ch, "cust", "hello").await;
    let first = d.admin.ok_get(&format!("/api/v1/conversations/{id}")).await["inactivity_deadline"]
        .as_str()
        .unwrap()
        .to_owned();
    // Wait until shortly before the deadline (the scenario, not synchronisation), then write.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    d.ann.ok_post(&format!("/api/v1/conversations/{id}/messages"), json!({"content": "still here"}), 201).await;
    let moved = d.admin.ok_get(&format!("/api/v1/conversations/{id}")).await;
    assert!(moved["inactivity_deadline"].as_str().unwrap() > first.as_str());
    // Past the first deadline: still active.
    let early = ann.drain(Duration::from_millis(1800)).await;
    assert!(early.iter().all(|f| f["type"] != "conversation.ended"), "ended despite the message: {early:#?}");
    assert_eq!(d.admin.ok_get(&format!("/api/v1/conversations/{id}")).await["active_chat"], true);
    // And it does end at the new deadline.
    ann.wait_for("conversation.ended", Duration::from_secs(6), |f| f["type"] == "conversation.ended").await;
}

#[tokio::test]
async fn core_5_restart_inside_the_window_still_ends_on_time() {
    let d = desk(Some(3)).await;
    let id = d.admin.inbound(d.ch, "cust", "hello").await;
    let srv = d.srv.restart().await;
    let ann = Api::with_token(&srv.base, token(&d.ann), d.ann.agent_id);
    let mut socket = WsClient::connect(&srv.base, token(&ann), None).await;
    let ended = socket
        .wait_for("conversation.ended after restart", Duration::from_secs(8), |f| f["type"] == "conversation.ended")
        .await;
    assert_eq!(ended["conversation_id"], id);
}

#[tokio::test]
async fn core_5_agent_ends_a_chat_with_a_status() {
    let d = desk(None).await;
    let id = d.admin.inbound(d.ch, "cust", "thanks, bye").await;
    let mut bob = WsClient::connect(&d.srv.base, token(&d.bob), None).await;
    let c = d.ann.ok_post(&format!("/api/v1/conversations/{id}/end"), json!({"status": "closed"}), 200).await;
    assert_eq!(c["status"], "closed");
    assert_eq!(c["active_chat"], false);
    let f = bob.wait_for("ended", WAIT, |f| f["type"] == "conversation.ended").await;
    assert_eq!(f["conversation"]["status"], "closed");
    let ticket = d.admin.inbound(d.other_ch, "x", "an email-like ticket").await;
    assert_error(&d.admin.post(&format!("/api/v1/conversations/{ticket}/end"), json!({})).await, 422, "rule_violation");
    assert_error(&d.outsider.post(&format!("/api/v1/conversations/{id}/end"), json!({})).await, 404, "not_found");
}
