//! The Mattermost channel (issue #15) against the fake Mattermost of `tests/common/fake_mattermost.rs`: the connector
//! runs its real network code (REST and WebSocket over loopback) and the tests wait on what is observable — the
//! help desk's API and agent socket, the fake's record of the bot's posts — within bounded deadlines.

mod common;

use std::time::Duration;

use common::fake_mattermost::FakeMattermost;
use common::ws::WsClient;
use common::{Api, TestServer, assert_error};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);

/// A server with a super admin, and a bot connected on `mm`.
async fn desk(mm: &FakeMattermost, mention_only: bool, mode: &str) -> (TestServer, Api, i64) {
    let srv = TestServer::start().await;
    let boss = srv.agent("boss@example.com", "super_admin").await;
    let bot = boss
        .ok_post(
            "/api/v1/mattermost-channels",
            json!({"name": "Helpbot", "server_url": mm.url, "bot_token": mm.bot_token, "mention_only": mention_only, "mode": mode}),
            201,
        )
        .await;
    let id = bot["id"].as_i64().unwrap();
    mm.wait_socket(1, WAIT).await;
    wait_state(&boss, id, "connected").await;
    (srv, boss, id)
}

async fn wait_state(api: &Api, id: i64, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let view = api.ok_get(&format!("/api/v1/mattermost-channels/{id}")).await;
        if view["state"] == state {
            return view;
        }
        assert!(tokio::time::Instant::now() < deadline, "state {state} not reached: {view}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The bot's conversations (active chats included), oldest first.
async fn conversations(api: &Api, channel: i64) -> Vec<Value> {
    let list =
        api.ok_get(&format!("/api/v1/conversations?channel={channel}&show_active_chats=true&per_page=100")).await;
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|c| c["id"].as_i64());
    items
}

/// Customer messages of a conversation, oldest first.
async fn inbound(api: &Api, conversation: i64) -> Vec<Value> {
    let all = api.ok_get(&format!("/api/v1/conversations/{conversation}/messages?limit=200")).await;
    all.as_array().unwrap().iter().filter(|m| m["direction"] == "in").cloned().collect()
}

/// Wait until the bot's conversations hold `n` customer messages in all; returns the conversations.
async fn wait_inbound(api: &Api, channel: i64, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let convs = conversations(api, channel).await;
        let mut total = 0;
        for c in &convs {
            total += inbound(api, c["id"].as_i64().unwrap()).await.len();
        }
        if total >= n {
            return convs;
        }
        assert!(tokio::time::Instant::now() < deadline, "{total} of {n} customer messages stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn mm_2_cc_11_connect_checks_the_token_and_only_a_super_admin_connects() {
    let mm = FakeMattermost::start().await;
    let alice = mm.user("alice", "Alice", "Liddell", "alice@example.com");
    let srv = TestServer::start().await;
    let boss = srv.agent("boss@example.com", "super_admin").await;
    let admin = srv.agent("admin@example.com", "admin").await;
    let body = |token: &str| json!({"name": "Helpbot", "server_url": mm.url, "bot_token": token, "mention_only": true, "mode": "group"});

    // CC-11: a plain admin may not connect a channel.
    assert_error(&admin.post("/api/v1/mattermost-channels", body(&mm.bot_token)).await, 403, "forbidden");
    // MM-2: a wrong token (401 from Mattermost) and a user account are refused, naming the cause; nothing stored.
    let wrong = boss.post("/api/v1/mattermost-channels", body("not-the-token")).await;
    assert_error(&wrong, 422, "mattermost_token_rejected");
    assert!(wrong.1["message"].as_str().unwrap().contains("401"), "{}", wrong.1);
    let user_token = mm.user_token(&alice);
    let person = boss.post("/api/v1/mattermost-channels", body(&user_token)).await;
    assert_error(&person, 422, "mattermost_not_a_bot");
    assert!(person.1["message"].as_str().unwrap().contains("@alice"), "{}", person.1);
    assert_eq!(boss.ok_get("/api/v1/mattermost-channels").await, json!([]));
    assert_eq!(boss.ok_get("/api/v1/channels").await.as_array().map(Vec::len), Some(0), "nothing stored");

    // The right token: the bot's id and username are stored, the token never comes back.
    let made = boss.ok_post("/api/v1/mattermost-channels", body(&mm.bot_token), 201).await;
    let id = made["id"].as_i64().unwrap();
    assert_eq!(made["bot_user_id"], mm.bot_id);
    assert_eq!(made["bot_username"], "helpbot");
    assert!(!made.to_string().contains(&mm.bot_token), "the token is never returned: {made}");
    let view = wait_state(&boss, id, "connected").await;
    assert!(!view.to_string().contains(&mm.bot_token));
    assert_eq!(view["mode"], "group");
    assert_eq!(view["mention_only"], true);

    // Editing and deleting are the super admin's too.
    assert_error(
        &admin.patch(&format!("/api/v1/mattermost-channels/{id}"), json!({"name": "x"})).await,
        403,
        "forbidden",
    );
    assert_error(&admin.delete(&format!("/api/v1/mattermost-channels/{id}")).await, 403, "forbidden");
    let edited = boss
        .call(reqwest::Method::PATCH, &format!("/api/v1/mattermost-channels/{id}"), Some(json!({"mode": "thread"})))
        .await;
    assert_eq!(edited.0.as_u16(), 200, "{}", edited.1);
    assert_eq!(edited.1["mode"], "thread");
    let (status, _) = boss.delete(&format!("/api/v1/mattermost-channels/{id}")).await;
    assert_eq!(status.as_u16(), 204);
    srv.stop().await;
    mm.stop().await;
}

#[tokio::test]
async fn mm_5_a_dm_becomes_a_chat_and_the_agent_reply_is_posted_in_the_dm() {
    let mm = FakeMattermost::start().await;
    let alice = mm.user("alice", "Alice", "Liddell", "alice@example.com");
    let dm = mm.dm(&alice);
    let (srv, boss, bot) = desk(&mm, true, "group").await;

    let post = mm.post_as(&alice, &dm, "my printer is on fire", "");
    let convs = wait_inbound(&boss, bot, 1).await;
    assert_eq!(convs.len(), 1);
    let conv = &convs[0];
    assert_eq!(conv["mode"], "sync", "MM-9: a chat");
    assert_eq!(conv["channel_kind"], "mattermost");
    assert_eq!(conv["customer_name"], "Alice Liddell");
    let id = conv["id"].as_i64().unwrap();
    let msgs = inbound(&boss, id).await;
    assert_eq!(msgs[0]["content"], "my printer is on fire");
    assert_eq!(msgs[0]["external_message_id"], post);
    let customer = boss.ok_get(&format!("/api/v1/customers/{}", conv["customer_id"])).await;
    assert!(customer.to_string().contains("alice@example.com"), "the email Mattermost gave: {customer}");

    // A second DM joins the same conversation.
    mm.post_as(&alice, &dm, "still burning", "");
    wait_inbound(&boss, bot, 2).await;
    assert_eq!(conversations(&boss, bot).await.len(), 1);

    // MM-8: the agent's reply (quoting the first message) is posted by the bot, top-level, in the DM.
    let first = msgs[0]["id"].as_i64().unwrap();
    boss.ok_post(
        &format!("/api/v1/conversations/{id}/messages"),
        json!({"content": "On our way", "quoted_message_id": first}),
        201,
    )
    .await;
    let posted = mm.wait_bot_posts(1, WAIT).await;
    assert_eq!(posted[0]["channel_id"], dm);
    assert_eq!(posted[0]["root_id"], "");
    assert_eq!(posted[0]["message"], "> my printer is on fire\n\nOn our way");
    // The bot's own post comes back as a `posted` event and is not taken as a customer message.
    mm.post_as(&alice, &dm, "thanks", "");
    wait_inbound(&boss, bot, 3).await;
    assert_eq!(inbound(&boss, id).await.len(), 3);
    srv.stop().await;
    mm.stop().await;
}

#[tokio::test]
async fn mm_6_channel_posts_with_and_without_a_mention_under_both_settings() {
    for mention_only in [true, false] {
        let mm = FakeMattermost::start().await;
        let alice = mm.user("alice", "Alice", "", "");
        let support = mm.channel("support", "O");
        let (srv, boss, bot) = desk(&mm, mention_only, "group").await;

        mm.post_as(&alice, &support, "anyone around?", "");
        mm.post_as(&alice, &support, "@helpbot my order is late", "");
        let expected = if mention_only { 1 } else { 2 };
        let convs = wait_inbound(&boss, bot, expected).await;
        // One more post with a mention marks the end of what the connector has read.
        mm.post_as(&alice, &support, "@helpbot hello?", "");
        wait_inbound(&boss, bot, expected + 1).await;
        assert_eq!(convs.len(), 1, "MM-7a: one conversation for the channel");
        let texts: Vec<String> = inbound(&boss, convs[0]["id"].as_i64().unwrap())
            .await
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_owned())
            .collect();
        if mention_only {
            assert_eq!(texts, vec!["@alice: @helpbot my order is late", "@alice: @helpbot hello?"], "MM-6 checked");
        } else {
            assert_eq!(
                texts,
                vec!["@alice: anyone around?", "@alice: @helpbot my order is late", "@alice: @helpbot hello?"],
                "MM-6 unchecked"
            );
        }
        srv.stop().await;
        mm.stop().await;
    }
}

#[tokio::test]
async fn mm_7a_group_mode_one_conversation_per_channel_and_replies_top_level() {
    let mm = FakeMattermost::start().await;
    let alice = mm.user("alice", "Alice", "", "");
    let bob = mm.user("bob", "Bob", "", "");
    let support = mm.channel("support", "P");
    let (srv, boss, bot) = desk(&mm, true, "group").await;

    let root = mm.post_as(&alice, &support, "@helpbot the VPN is down", "");
    mm.post_as(&bob, &support, "@helpbot same here", root.as_str());
    let convs = wait_inbound(&boss, bot, 2).await;
    assert_eq!(convs.len(), 1, "both posts share the channel's conversation");
    let id = convs[0]["id"].as_i64().unwrap();
    boss.ok_post(&format!("/api/v1/conversations/{id}/messages"), json!({"content": "Restarting it"}), 201).await;
    let posted = mm.wait_bot_posts(1, WAIT).await;
    assert_eq!((posted[0]["channel_id"].as_str(), posted[0]["root_id"].as_str()), (Some(support.as_str()), Some("")));
    srv.stop().await;
    mm.stop().await;
}

#[tokio::test]
async fn mm_7b_thread_mode_one_conversation_per_root_post_and_replies_in_the_thread() {
    let mm = FakeMattermost::start().await;
    let alice = mm.user("alice", "Alice", "", "");
    let bob = mm.user("bob", "Bob", "", "");
    let support = mm.channel("support", "O");
    let (srv, boss, bot) = desk(&mm, true, "thread").await;

    let first = mm.post_as(&alice, &support, "@helpbot question one", "");
    let second = mm.post_as(&bob, &support, "@helpbot question two", "");
    // A reply in the first thread, without a mention, joins its conversation.
    mm.post_as(&alice, &support, "more about one", &first);
    let convs = wait_inbound(&boss, bot, 3).await;
    assert_eq!(convs.len(), 2, "one conversation per root post");
    let one = convs.iter().find(|c| c["customer_name"] == "Alice").unwrap()["id"].as_i64().unwrap();
    let two = convs.iter().find(|c| c["customer_name"] == "Bob").unwrap()["id"].as_i64().unwrap();
    assert_eq!(inbound(&boss, one).await.len(), 2);
    assert_eq!(inbound(&boss, two).await.len(), 1);

    boss.ok_post(&format!("/api/v1/conversations/{two}/messages"), json!({"content": "Answer two"}), 201).await;
    boss.ok_post(&format!("/api/v1/conversations/{one}/messages"), json!({"content": "Answer one"}), 201).await;
    let posted = mm.wait_bot_posts(2, WAIT).await;
    let root_of =
        |text: &str| posted.iter().find(|p| p["message"] == text).unwrap()["root_id"].as_str().unwrap().to_owned();
    assert_eq!(root_of("Answer one"), first);
    assert_eq!(root_of("Answer two"), second);
    srv.stop().await;
    mm.stop().await;
}

/// MM-11: the socket is dropped while 20 posts are sent; with replay the resumed connection gets them, without
/// (a fresh `hello`) the connector re-syncs over REST. Either way each is stored exactly once.
#[tokio::test]
async fn mm_11_socket_dropped_while_20_posts_are_sent_each_stored_once() {
    for replay in [true, false] {
        let mm = FakeMattermost::start().await;
        let alice = mm.user("alice", "Alice", "", "");
        let dm = mm.dm(&alice);
        let (srv, boss, bot) = desk(&mm, true, "group").await;
        mm.post_as(&alice, &dm, "before", "");
        wait_inbound(&boss, bot, 1).await;

        let hellos = mm.hellos();
        let reads = mm.post_reads();
        mm.drop_sockets(replay);
        for i in 0..20 {
            mm.post_as(&alice, &dm, &format!("during {i}"), "");
        }
        mm.allow_replay();
        mm.wait_socket(hellos + 1, WAIT).await;
        let convs = wait_inbound(&boss, bot, 21).await;
        mm.post_as(&alice, &dm, "after", "");
        wait_inbound(&boss, bot, 22).await;
        assert_eq!(convs.len(), 1);
        let texts: Vec<String> = inbound(&boss, convs[0]["id"].as_i64().unwrap())
            .await
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_owned())
            .collect();
        let mut expected = vec!["before".to_owned()];
        expected.extend((0..20).map(|i| format!("during {i}")));
        expected.push("after".into());
        assert_eq!(texts, expected, "replay {replay}: each post once, in order");
        if replay {
            assert_eq!(mm.post_reads(), reads, "resumed: the server replayed, no re-sync");
        } else {
            assert!(mm.post_reads() > reads, "a fresh hello: re-synced over REST");
        }
        srv.stop().await;
        mm.stop().await;
    }
}

/// MM-11: a re-sync that meets 429 waits as `X-Ratelimit-Reset` says and still gets every post.
#[tokio::test]
async fn mm_11_rate_limited_resync_waits_and_loses_nothing() {
    let mm = FakeMattermost::start().await;
    let alice = mm.user("alice", "Alice", "", "");
    let dm = mm.dm(&alice);
    let (srv, boss, bot) = desk(&mm, true, "group").await;
    mm.post_as(&alice, &dm, "before", "");
    wait_inbound(&boss, bot, 1).await;
    let hellos = mm.hellos();
    mm.drop_sockets(false);
    for i in 0..5 {
        mm.post_as(&alice, &dm, &format!("during {i}"), "");
    }
    mm.rate_limit(2);
    mm.allow_replay();
    mm.wait_socket(hellos + 1, WAIT).await;
    wait_inbound(&boss, bot, 6).await;
    assert_eq!(mm.rate_limited(), 2);
    srv.stop().await;
    mm.stop().await;
}

/// RT-5: Mattermost's `typing` shows as the customer typing on the agent socket.
#[tokio::test]
async fn rt_5_typing_in_mattermost_reaches_the_agent_socket() {
    let mm = FakeMattermost::start().await;
    let alice = mm.user("alice", "Alice", "", "");
    let dm = mm.dm(&alice);
    let (srv, boss, bot) = desk(&mm, true, "group").await;
    mm.post_as(&alice, &dm, "hello", "");
    let convs = wait_inbound(&boss, bot, 1).await;
    let id = convs[0]["id"].as_i64().unwrap();
    let mut socket = WsClient::connect(&srv.base, boss.token.as_deref().unwrap(), None).await;
    mm.typing(&alice, &dm, "");
    let t = socket.wait_for("typing", WAIT, |f| f["type"] == "typing").await;
    assert_eq!(t["conversation_id"], id);
    assert_eq!(t["who"], "customer");
    socket.close().await;
    srv.stop().await;
    mm.stop().await;
}

/// MM-11: a token revoked while the bot is connected: the next connection is refused with 401 and the channel shows
/// it needs attention, with the reason; disabling the channel stops its socket.
#[tokio::test]
async fn mm_11_a_revoked_token_marks_the_bot_as_needing_attention() {
    let mm = FakeMattermost::start().await;
    let (srv, boss, bot) = desk(&mm, true, "group").await;
    mm.revoke(&mm.bot_token);
    mm.drop_sockets(false);
    let view = wait_state(&boss, bot, "needs_attention").await;
    assert!(view["state_reason"].as_str().is_some_and(|r| r.contains("401")), "{view}");
    assert_eq!(mm.live_sockets(), 0);
    srv.stop().await;
    mm.stop().await;
}

#[tokio::test]
async fn a_disabled_bot_keeps_no_socket_and_an_enabled_one_reconnects() {
    let mm = FakeMattermost::start().await;
    let (srv, boss, bot) = desk(&mm, true, "group").await;
    let off = boss
        .call(reqwest::Method::PATCH, &format!("/api/v1/mattermost-channels/{bot}"), Some(json!({"enabled": false})))
        .await;
    assert_eq!(off.0.as_u16(), 200, "{}", off.1);
    let deadline = tokio::time::Instant::now() + WAIT;
    while mm.live_sockets() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the socket of a disabled bot stays open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hellos = mm.hellos();
    let on = boss
        .call(reqwest::Method::PATCH, &format!("/api/v1/mattermost-channels/{bot}"), Some(json!({"enabled": true})))
        .await;
    assert_eq!(on.0.as_u16(), 200, "{}", on.1);
    mm.wait_socket(hellos + 1, WAIT).await;
    srv.stop().await;
    mm.stop().await;
}

/// MM-10: a file posted to the bot is attached to the customer's message; an agent's attachment is uploaded to
/// Mattermost (`POST /files`) and attached to the bot's post.
#[tokio::test]
async fn mm_10_files_in_and_out() {
    let mm = FakeMattermost::start().await;
    let alice = mm.user("alice", "Alice", "", "");
    let dm = mm.dm(&alice);
    let (srv, boss, bot) = desk(&mm, true, "group").await;
    mm.post_file_as(&alice, &dm, "the error log", "log.txt", b"line 1\nline 2\n");
    let convs = wait_inbound(&boss, bot, 1).await;
    let id = convs[0]["id"].as_i64().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let file = loop {
        let msg = inbound(&boss, id).await.remove(0);
        if let Some(f) = msg["attachments"].as_array().and_then(|a| a.first()).cloned() {
            break f;
        }
        assert!(tokio::time::Instant::now() < deadline, "no attachment: {msg}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(file["file_name"], "log.txt");
    let bytes = boss
        .request(reqwest::Method::GET, &format!("/api/v1/attachments/{}", file["id"]))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"line 1\nline 2\n");

    let resp = boss
        .request(reqwest::Method::POST, "/api/v1/attachments?file_name=fix.txt")
        .header("Content-Type", "text/plain")
        .body(b"do this".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let attachment = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    boss.ok_post(
        &format!("/api/v1/conversations/{id}/messages"),
        json!({"content": "Try this", "attachment_ids": [attachment]}),
        201,
    )
    .await;
    let posted = mm.wait_bot_posts(1, WAIT).await;
    let files = posted[0]["file_ids"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{}", posted[0]);
    assert_eq!(mm.file(files[0].as_str().unwrap()), Some(("fix.txt".to_owned(), b"do this".to_vec())));
    srv.stop().await;
    mm.stop().await;
}

/// MM-12: a new conversation sent from the bot — the autocomplete lists members and channels (each marked), a member
/// gets a DM (`POST /channels/direct`), a channel gets a post; the customer's answer joins the conversation.
#[tokio::test]
async fn mm_12_outbound_to_a_member_and_to_a_channel() {
    let mm = FakeMattermost::start().await;
    let alice = mm.user("alice", "Alice", "Liddell", "alice@example.com");
    mm.user("albert", "Albert", "", "");
    let sales = mm.channel("alerts", "O");
    let srv = TestServer::start().await;
    let boss = srv.agent("boss@example.com", "super_admin").await;
    let bot = boss
        .ok_post(
            "/api/v1/mattermost-channels",
            json!({"name": "Helpbot", "server_url": mm.url, "bot_token": mm.bot_token, "mattermost_team_id": "team1"}),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    mm.wait_socket(1, WAIT).await;

    let found = boss.ok_get(&format!("/api/v1/mattermost-channels/{bot}/recipients?q=al")).await;
    let kinds: Vec<(String, String)> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap().to_owned(), r["label"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("member".to_owned(), "Albert (@albert)".to_owned()),
            ("member".to_owned(), "Alice Liddell (@alice)".to_owned()),
            ("channel".to_owned(), "alerts".to_owned()),
        ],
        "{found}"
    );

    // To a member: a DM.
    let conv = boss
        .ok_post(
            &format!("/api/v1/mattermost-channels/{bot}/conversations"),
            json!({"to": {"kind": "member", "id": alice}, "content": "Your order shipped"}),
            201,
        )
        .await;
    let id = conv["id"].as_i64().unwrap();
    assert_eq!(conv["customer_name"], "Alice Liddell");
    let posted = mm.wait_bot_posts(1, WAIT).await;
    let dm = mm.dm(&alice);
    assert_eq!(
        (posted[0]["channel_id"].as_str(), posted[0]["message"].as_str()),
        (Some(dm.as_str()), Some("Your order shipped"))
    );
    mm.post_as(&alice, &dm, "thanks!", "");
    let deadline = tokio::time::Instant::now() + WAIT;
    while inbound(&boss, id).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the answer did not join the outbound conversation");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // To a channel: a post there.
    boss.ok_post(
        &format!("/api/v1/mattermost-channels/{bot}/conversations"),
        json!({"to": {"kind": "channel", "id": sales}, "content": "Maintenance at 18:00"}),
        201,
    )
    .await;
    let posted = mm.wait_bot_posts(2, WAIT).await;
    assert_eq!((posted[1]["channel_id"].as_str(), posted[1]["root_id"].as_str()), (Some(sales.as_str()), Some("")));
    srv.stop().await;
    mm.stop().await;
}
