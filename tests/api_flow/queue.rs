//! The chat queue and the ticket list for triage (issue #17 items 6 and 7): `waiting_since` set by a customer's
//! message and cleared by a reply (not by a note), the `waiting` filter and the `waiting_longest` order, the
//! `last_message_preview` of list rows (never an internal note), and the counts of several views in one call,
//! which count only what the caller's channel access lets them see.

use serde_json::{Value, json};

use crate::common::{Api, TestServer, assert_error};

/// A customer's message through the custom channel's one-call inbound endpoint (appended to their open
/// conversation); the conversation's id.
async fn customer_says(api: &Api, channel: i64, user: &str, text: &str) -> i64 {
    api.ok_post(
        &format!("/api/v1/custom-channels/{channel}/inbound"),
        json!({"user_custom_id": user, "content": text}),
        201,
    )
    .await["conversation_id"]
        .as_i64()
        .unwrap()
}

async fn conversation(api: &Api, id: i64) -> Value {
    api.ok_get(&format!("/api/v1/conversations/{id}")).await
}

/// The newest message's `created_at` of a conversation.
async fn last_message_at(api: &Api, id: i64) -> Value {
    let msgs = api.ok_get(&format!("/api/v1/conversations/{id}/messages?limit=200")).await;
    msgs.as_array().unwrap().last().unwrap()["created_at"].clone()
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn waiting_since_is_the_last_unanswered_customer_message_and_a_reply_clears_it() {
    let srv = TestServer::start().await;
    let admin = srv.agent("ada@example.com", "super_admin").await;
    let chat = admin.channel("custom", "Web chat", Some("sync")).await;

    let id = customer_says(&admin, chat, "carla", "Hello, is anyone there?").await;
    let first_at = last_message_at(&admin, id).await;
    let c = conversation(&admin, id).await;
    assert_eq!(c["waiting_since"], first_at, "the customer waits from their message: {c}");

    // A second message before any answer: the customer's waiting time runs from their last unanswered message.
    assert_eq!(customer_says(&admin, chat, "carla", "Hello??").await, id);
    let second_at = last_message_at(&admin, id).await;
    assert_ne!(second_at, first_at);
    assert_eq!(conversation(&admin, id).await["waiting_since"], second_at);

    // An internal note answers nobody.
    admin.ok_post(&format!("/api/v1/conversations/{id}/notes"), json!({"content": "Looking into it"}), 201).await;
    assert_eq!(conversation(&admin, id).await["waiting_since"], second_at, "a note is not an answer");

    // A reply does; the list says so too.
    admin.ok_post(&format!("/api/v1/conversations/{id}/messages"), json!({"content": "Hi Carla!"}), 201).await;
    let c = conversation(&admin, id).await;
    assert!(c["waiting_since"].is_null(), "answered: {c}");
    let listed = admin.ok_get("/api/v1/conversations?active=true").await;
    assert!(listed["items"][0]["waiting_since"].is_null());

    // The customer writes again: waiting again, from that message.
    customer_says(&admin, chat, "carla", "Thanks, one more thing").await;
    let again_at = last_message_at(&admin, id).await;
    assert_ne!(again_at, first_at);
    assert_eq!(conversation(&admin, id).await["waiting_since"], again_at);

    // A conversation an agent starts waits on nobody.
    let portal = admin.channel("custom", "Portal", Some("async")).await;
    let carla = conversation(&admin, id).await["customer_id"].as_i64().unwrap();
    let out = admin
        .ok_post(
            "/api/v1/conversations",
            json!({"channel": portal, "customer_id": carla, "subject": "Follow-up", "content": "We fixed it"}),
            201,
        )
        .await;
    let out = conversation(&admin, out["conversation_id"].as_i64().unwrap()).await;
    assert!(out["waiting_since"].is_null(), "{out}");
}

#[tokio::test]
async fn the_chat_queue_filters_waiting_chats_and_sorts_the_longest_waiting_first() {
    let srv = TestServer::start().await;
    let admin = srv.agent("ada@example.com", "super_admin").await;
    let chat = admin.channel("custom", "Web chat", Some("sync")).await;
    let early = customer_says(&admin, chat, "early", "I wrote first").await;
    let late = customer_says(&admin, chat, "late", "I wrote second").await;
    let answered = customer_says(&admin, chat, "answered", "I was answered").await;
    admin.ok_post(&format!("/api/v1/conversations/{answered}/messages"), json!({"content": "Hello"}), 201).await;

    let queue = admin.ok_get("/api/v1/conversations?active=true&sort=waiting_longest").await;
    assert_eq!(ids(&queue), vec![early, late, answered], "longest waiting first, the answered one last");
    let waiting = admin.ok_get("/api/v1/conversations?active=true&waiting=true&sort=waiting_longest").await;
    assert_eq!(ids(&waiting), vec![early, late]);
    assert_eq!(waiting["total"], 2);

    // The early customer writes again: their waiting time runs from that last unanswered message, so the later
    // customer, unanswered for longer now, comes first.
    customer_says(&admin, chat, "early", "Still there?").await;
    let waiting = admin.ok_get("/api/v1/conversations?active=true&waiting=true&sort=waiting_longest").await;
    assert_eq!(ids(&waiting), vec![late, early]);

    // Answering the later one moves it behind the one still waiting.
    admin.ok_post(&format!("/api/v1/conversations/{late}/messages"), json!({"content": "Yes!"}), 201).await;
    let queue = admin.ok_get("/api/v1/conversations?active=true&sort=waiting_longest").await;
    assert_eq!(ids(&queue)[0], early);

    // Mine / unassigned, as the chat queue's filters ask: taking a chat moves it from one to the other.
    let (s, _) = admin.patch(&format!("/api/v1/conversations/{late}"), json!({"assignee_id": admin.agent_id})).await;
    assert_eq!(s.as_u16(), 200);
    assert_eq!(ids(&admin.ok_get("/api/v1/conversations?active=true&assignee=me").await), vec![late]);
    assert!(!ids(&admin.ok_get("/api/v1/conversations?active=true&assignee=none").await).contains(&late));

    assert_error(&admin.get("/api/v1/conversations?sort=waiting").await, 400, "validation_failed");
}

#[tokio::test]
async fn list_rows_carry_a_plain_cut_preview_of_the_last_message_never_a_note() {
    let srv = TestServer::start().await;
    let admin = srv.agent("ada@example.com", "super_admin").await;
    let portal = admin.channel("custom", "Portal", Some("async")).await;
    let id = admin.inbound(portal, "dora", "Printer   on fire\n\nplease help").await;
    let page = admin.ok_get("/api/v1/conversations").await;
    assert_eq!(page["items"][0]["last_message_preview"], "Printer on fire please help", "white space collapsed");
    assert_eq!(page["items"][0]["last_message_direction"], "in", "the customer wrote it");
    assert!(page["items"][0].get("last_message_agent_id").is_none());

    admin.ok_post(&format!("/api/v1/conversations/{id}/messages"), json!({"content": "Unplug it."}), 201).await;
    admin.ok_post(&format!("/api/v1/conversations/{id}/notes"), json!({"content": "secret internal words"}), 201).await;
    let page = admin.ok_get("/api/v1/conversations").await;
    assert_eq!(page["items"][0]["last_message_preview"], "Unplug it.", "the reply, not the newer note");
    assert_eq!(page["items"][0]["last_message_direction"], "out");
    assert_eq!(page["items"][0]["last_message_agent_id"], admin.agent_id, "who answered");

    let long = "word ".repeat(100);
    customer_says(&admin, portal, "dora", &long).await;
    let page = admin.ok_get("/api/v1/conversations").await;
    let preview = page["items"][0]["last_message_preview"].as_str().unwrap();
    assert!(preview.ends_with('…') && preview.chars().count() <= 141, "cut: {preview:?}");

    // Only lists carry it.
    assert!(conversation(&admin, id).await.get("last_message_preview").is_none());
}

#[tokio::test]
async fn view_counts_come_in_one_call_and_only_count_channels_the_agent_may_see() {
    let srv = TestServer::start().await;
    let admin = srv.agent("ada@example.com", "super_admin").await;
    let alice = srv.agent("alice@example.com", "agent").await;
    let mine = admin.channel("custom", "Alice's portal", Some("async")).await;
    let hidden = admin.channel("custom", "Hidden portal", Some("async")).await;
    let chat = admin.channel("custom", "Hidden chat", Some("sync")).await;
    admin.ok_put(&format!("/api/v1/agents/{}/channels", alice.agent_id), json!({"channel_ids": [mine]})).await;

    let a1 = admin.inbound(mine, "u1", "first").await;
    admin.inbound(mine, "u2", "second").await;
    let h1 = admin.inbound(hidden, "u3", "third").await;
    admin.inbound(hidden, "u4", "fourth").await;
    customer_says(&admin, chat, "u5", "a live chat").await;
    let (s, _) = admin.patch(&format!("/api/v1/conversations/{a1}"), json!({"assignee_id": alice.agent_id})).await;
    assert_eq!(s.as_u16(), 200);
    // The hidden ticket is the admin's: "mine" differs between them.
    let (s, _) = admin.patch(&format!("/api/v1/conversations/{h1}"), json!({"assignee_id": admin.agent_id})).await;
    assert_eq!(s.as_u16(), 200);
    admin.ok_post(&format!("/api/v1/conversations/{a1}/messages"), json!({"content": "answered"}), 201).await;

    let views = json!({"views": {
        "all": "",
        "open": "status=open",
        "mine": "?assignee=me",
        "unassigned": "assignee=none",
        "waiting": "waiting=true",
        "chats": "active=true",
        "hidden": format!("channel={hidden}"),
    }});
    let counts = alice.ok_post("/api/v1/conversations/counts", views.clone(), 200).await["counts"].clone();
    // Alice sees her channel's two tickets; the hidden channel's tickets and chat are not counted.
    assert_eq!(
        counts,
        json!({"all": 2, "open": 2, "mine": 1, "unassigned": 1, "waiting": 1, "chats": 0, "hidden": 0}),
        "alice's counts"
    );
    // Each count is the list's total for the same query.
    for (view, query) in [("all", ""), ("mine", "assignee=me"), ("waiting", "waiting=true")] {
        let total = alice.ok_get(&format!("/api/v1/conversations?{query}")).await["total"].clone();
        assert_eq!(counts[view], total, "{view}");
    }
    let counts = admin.ok_post("/api/v1/conversations/counts", views, 200).await["counts"].clone();
    assert_eq!(counts["all"], 4);
    assert_eq!(
        counts["waiting"], 3,
        "u2's ticket and both hidden ones (a1 was answered; live chats are in no ticket view)"
    );
    assert_eq!(counts["chats"], 1);
    assert_eq!(counts["hidden"], 2);
    assert_eq!(counts["mine"], 1, "the hidden ticket");

    // Bad views are refused by name; too many are refused.
    assert_error(
        &alice.post("/api/v1/conversations/counts", json!({"views": {"x": "assignee=nobody"}})).await,
        400,
        "validation_failed",
    );
    let many: serde_json::Map<String, Value> = (0..51).map(|i| (format!("v{i}"), json!(""))).collect();
    assert_error(&alice.post("/api/v1/conversations/counts", json!({"views": many})).await, 400, "validation_failed");
}
