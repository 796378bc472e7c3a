//! Issue #13 item 6 (see tests/security.rs): a customer's concurrent messages end up in exactly
//! one conversation (CC-9, CORE-7) — their first messages, and their messages right after a chat
//! ended — and the agent socket announces that conversation once, with every message in it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};
use switchboard::config::{RawConfig, Settings};

use crate::common::ws::WsClient;
use crate::common::{Api, TestServer};

/// Messages each customer sends at once.
const BURST: usize = 10;

async fn custom_channel(admin: &Api, kind: &str) -> i64 {
    let body = json!({"name": format!("app {kind}"), "webhook_url": "http://127.0.0.1:9/hook", "type": kind});
    admin.ok_post("/api/v1/custom-channels", body, 201).await["id"].as_i64().unwrap()
}

/// `BURST` concurrent inbound messages from `user` (alternating between the given nodes); the answers.
async fn burst(nodes: &[&Api], channel: i64, user: &str) -> Vec<Value> {
    let calls = (0..BURST).map(|i| {
        let api = nodes[i % nodes.len()];
        let body = json!({"user_custom_id": user, "content": format!("{user} message {i}")});
        async move { api.ok_post(&format!("/api/v1/custom-channels/{channel}/inbound"), body, 201).await }
    });
    join_all(calls).await
}

/// All answers of one customer's burst name one conversation and one customer, and exactly one
/// says it started the conversation. Returns (conversation id, user id).
fn one_conversation(user: &str, answers: &[Value]) -> (i64, i64) {
    let conversations: BTreeSet<i64> = answers.iter().map(|a| a["conversation_id"].as_i64().unwrap()).collect();
    let users: BTreeSet<i64> = answers.iter().map(|a| a["user_id"].as_i64().unwrap()).collect();
    let created = answers.iter().filter(|a| a["created"] == true).count();
    assert_eq!(conversations.len(), 1, "{user}: {BURST} concurrent messages made conversations {conversations:?}");
    assert_eq!(users.len(), 1, "{user}: {BURST} concurrent messages made customers {users:?}");
    assert_eq!(created, 1, "{user}: {created} answers say they started the conversation");
    (*conversations.first().unwrap(), *users.first().unwrap())
}

/// The seqs of a conversation's messages as the API lists them.
async fn seqs(api: &Api, conversation: i64) -> Vec<i64> {
    let page = api.ok_get(&format!("/api/v1/conversations/{conversation}/messages?limit=100")).await;
    let items = page.as_array().or_else(|| page["items"].as_array()).expect("a message list");
    items.iter().map(|m| m["seq"].as_i64().unwrap()).collect()
}

async fn total(api: &Api, query: &str) -> i64 {
    api.ok_get(&format!("/api/v1/conversations?show_active_chats=true&per_page=1&{query}")).await["total"]
        .as_i64()
        .unwrap()
}

/// 20 rounds of 20 new customers sending 10 concurrent first messages each: exactly 20 new
/// conversations (and 20 customers) per round.
#[tokio::test]
async fn concurrent_first_messages_of_new_customers_make_one_conversation_each() {
    let server = TestServer::start().await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    let channel = custom_channel(&admin, "sync").await;
    const CUSTOMERS: usize = 20;
    for round in 1..=20 {
        let bursts = (0..CUSTOMERS).map(|c| {
            let admin = &admin;
            async move {
                let user = format!("r{round}-c{c}");
                let answers = burst(&[admin], channel, &user).await;
                (user, answers)
            }
        });
        for (user, answers) in join_all(bursts).await {
            one_conversation(&user, &answers);
        }
        let conversations = total(&admin, &format!("channel={channel}")).await;
        assert_eq!(conversations, (round * CUSTOMERS) as i64, "conversations after round {round}");
    }
}

/// The agent socket sees one `conversation.created` per new customer, and all ten messages in
/// that conversation with seqs 1..10, no gaps, no duplicates; the API lists the same.
#[tokio::test]
async fn the_socket_announces_one_conversation_with_every_message_once() {
    let server = TestServer::start().await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    let channel = custom_channel(&admin, "sync").await;
    let mut ws = WsClient::connect(&server.base, admin.token.as_deref().unwrap(), None).await;

    const CUSTOMERS: usize = 5;
    let users: Vec<String> = (0..CUSTOMERS).map(|c| format!("socket-{c}")).collect();
    let one = [&admin];
    let answers = join_all(users.iter().map(|u| burst(&one, channel, u))).await;
    let mut mine = BTreeMap::new();
    for (user, answers) in users.iter().zip(&answers) {
        let (conversation, customer) = one_conversation(user, answers);
        mine.insert(customer, conversation);
    }
    // A message sent after every answer came back: the bus keeps order, so once its frame is
    // here, every frame of the bursts is too.
    let sentinel = admin
        .ok_post(
            &format!("/api/v1/custom-channels/{channel}/inbound"),
            json!({"user_custom_id": "sentinel", "content": "last"}),
            201,
        )
        .await["conversation_id"]
        .as_i64()
        .unwrap();
    ws.wait_for("the sentinel's frame", Duration::from_secs(30), |f| f["conversation_id"] == sentinel).await;

    let stored: Vec<&Value> = ws
        .log
        .iter()
        .filter(|f| matches!(f["type"].as_str(), Some("conversation.created" | "message.created")))
        .collect();
    for (customer, conversation) in &mine {
        let of_customer: Vec<&&Value> =
            stored.iter().filter(|f| f["conversation"]["customer_id"].as_i64() == Some(*customer)).collect();
        let created: Vec<i64> = of_customer
            .iter()
            .filter(|f| f["type"] == "conversation.created")
            .map(|f| f["conversation_id"].as_i64().unwrap())
            .collect();
        assert_eq!(created, vec![*conversation], "customer {customer}: conversation.created frames");
        assert!(
            of_customer.iter().all(|f| f["conversation_id"].as_i64() == Some(*conversation)),
            "customer {customer}: every frame is of conversation {conversation}"
        );
        let mut got: Vec<i64> = of_customer.iter().map(|f| f["seq"].as_i64().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (1..=BURST as i64).collect::<Vec<_>>(), "customer {customer}: seqs on the socket");
        assert_eq!(seqs(&admin, *conversation).await, (1..=BURST as i64).collect::<Vec<_>>(), "seqs in the API");
        assert_eq!(total(&admin, &format!("user_id={customer}")).await, 1, "customer {customer}'s conversations");
    }
}

/// A second node on the same PostgreSQL database (a second server process would do the same):
/// its own actors and caches, so only the store can keep two nodes from both starting a
/// conversation. SQLite is one node by design: there the second "node" is the first one.
async fn second_node(server: &TestServer, api: &Api) -> Option<(switchboard::server::RunningServer, Api)> {
    crate::common::postgres_admin_url()?;
    let raw = RawConfig {
        bind: Some("127.0.0.1:0".into()),
        database_url: Some(server.db.url.clone()),
        data_dir: Some(server.data_dir().display().to_string()),
        db_pool_size: Some(4),
        workers: Some(1),
        log: Some("warn".into()),
        ..Default::default()
    };
    let settings = Settings::resolve(raw).expect("valid settings");
    let running = switchboard::server::start(settings, switchboard::server::StartOptions { handle_signals: false })
        .await
        .expect("second node starts");
    let base = format!("http://{}", running.addr);
    let node = Api::with_token(&base, api.token.as_deref().unwrap(), api.agent_id);
    Some((running, node))
}

/// Right after a chat ended (status closed), a customer's concurrent messages — arriving at two
/// nodes where there are two — start exactly one new conversation (CC-9 a), holding all of them.
#[tokio::test]
async fn concurrent_messages_right_after_a_chat_ended_start_one_new_conversation() {
    let server = TestServer::start().await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    let channel = custom_channel(&admin, "sync").await;
    let node2 = second_node(&server, &admin).await;
    let nodes: Vec<&Api> = match &node2 {
        Some((_, api)) => vec![&admin, api],
        None => vec![&admin],
    };
    const CUSTOMERS: usize = 10;
    for round in 1..=3 {
        let mut ended = BTreeMap::new();
        for c in 0..CUSTOMERS {
            let user = format!("ended-{c}");
            let first = admin
                .ok_post(
                    &format!("/api/v1/custom-channels/{channel}/inbound"),
                    json!({"user_custom_id": user, "content": format!("round {round}")}),
                    201,
                )
                .await;
            let id = first["conversation_id"].as_i64().unwrap();
            // Each node has served this customer (and remembers their conversation).
            for node in &nodes {
                node.ok_post(
                    &format!("/api/v1/custom-channels/{channel}/inbound"),
                    json!({"user_custom_id": user, "content": "still there?"}),
                    201,
                )
                .await;
            }
            let c = admin.ok_post(&format!("/api/v1/conversations/{id}/end"), json!({"status": "closed"}), 200).await;
            assert_eq!(c["status"], "closed", "{c}");
            ended.insert(user, id);
        }
        let answers = join_all(ended.keys().map(|u| burst(&nodes, channel, u))).await;
        for ((user, old), answers) in ended.iter().zip(&answers) {
            let (new, customer) = one_conversation(user, answers);
            assert_ne!(new, *old, "{user}: a closed chat is not reopened");
            assert_eq!(seqs(&admin, new).await, (1..=BURST as i64).collect::<Vec<_>>(), "{user}: seqs");
            assert_eq!(total(&admin, &format!("user_id={customer}")).await, round + 1, "{user}: conversations");
        }
    }
    if let Some((running, _)) = node2 {
        running.stop().await.expect("second node stops");
    }
}
