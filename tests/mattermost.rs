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

/// MM-11: after a refused replay the re-sync reads every channel of the bot with posts since its point
/// (`GET /users/{bot}/channels`), not only those it has conversations in: a new user's FIRST direct message, sent
/// while the socket was down, becomes exactly one conversation.
#[tokio::test]
async fn mm_11_a_first_dm_sent_while_the_socket_was_down_is_not_lost() {
    let mm = FakeMattermost::start().await;
    let alice = mm.user("alice", "Alice", "", "");
    let dm = mm.dm(&alice);
    let (srv, boss, bot) = desk(&mm, true, "group").await;
    mm.post_as(&alice, &dm, "before", "");
    wait_inbound(&boss, bot, 1).await;

    // Down, and the server forgets the connection: the reconnect gets a fresh hello.
    let hellos = mm.hellos();
    mm.set_down(true);
    mm.drop_sockets(false);
    let bob = mm.user("bob", "Bob", "", "");
    let bob_dm = mm.dm(&bob);
    mm.post_as(&bob, &bob_dm, "first words from bob", "");
    mm.allow_replay();
    mm.set_down(false);
    mm.wait_socket(hellos + 1, WAIT).await;
    let convs = wait_inbound(&boss, bot, 2).await;
    assert_eq!(convs.len(), 2, "{convs:?}");
    let bobs = convs.iter().find(|c| c["customer_name"] == "Bob").expect("Bob's conversation")["id"].as_i64().unwrap();
    let texts: Vec<Value> = inbound(&boss, bobs).await.iter().map(|m| m["content"].clone()).collect();
    assert_eq!(texts, vec![json!("first words from bob")]);
    assert!(mm.channel_lists() > 0, "the bot's channels were listed");

    // The re-sync made the DM a place like any other: Bob's next message joins his conversation.
    mm.post_as(&bob, &bob_dm, "still there?", "");
    wait_inbound(&boss, bot, 3).await;
    assert_eq!(conversations(&boss, bot).await.len(), 2);
    assert_eq!(inbound(&boss, bobs).await.len(), 2);
    srv.stop().await;
    mm.stop().await;
}

/// MM-11 on a server older than 6.1 (no `GET /users/{id}/channels`: 404): the re-sync falls back to the channels
/// the bot has conversations in, and still gets every post there.
#[tokio::test]
async fn mm_11_an_older_server_falls_back_to_the_known_channels() {
    let mm = FakeMattermost::start().await;
    mm.old_server(true);
    let alice = mm.user("alice", "Alice", "", "");
    let dm = mm.dm(&alice);
    let (srv, boss, bot) = desk(&mm, true, "group").await;
    mm.post_as(&alice, &dm, "before", "");
    wait_inbound(&boss, bot, 1).await;
    let (hellos, reads) = (mm.hellos(), mm.post_reads());
    mm.set_down(true);
    mm.drop_sockets(false);
    for i in 0..3 {
        mm.post_as(&alice, &dm, &format!("during {i}"), "");
    }
    mm.allow_replay();
    mm.set_down(false);
    mm.wait_socket(hellos + 1, WAIT).await;
    let convs = wait_inbound(&boss, bot, 4).await;
    assert_eq!(convs.len(), 1);
    assert!(mm.post_reads() > reads, "re-synced over REST");
    assert_eq!(mm.channel_lists(), 0);
    srv.stop().await;
    mm.stop().await;
}

/// MM-10: a post's files are committed with its message: the live event on the agent socket already lists them
/// (`conversation.created` for the first post, `message.created` for a later one).
#[tokio::test]
async fn mm_10_the_live_event_already_lists_the_files() {
    let mm = FakeMattermost::start().await;
    let alice = mm.user("alice", "Alice", "", "");
    let dm = mm.dm(&alice);
    let (srv, boss, _bot) = desk(&mm, true, "group").await;
    let mut socket = WsClient::connect(&srv.base, boss.token.as_deref().unwrap(), None).await;

    mm.post_file_as(&alice, &dm, "a screenshot", "screen.png", b"\x89PNG not really");
    let created = socket.wait_for("conversation.created", WAIT, |f| f["type"] == "conversation.created").await;
    let files = created["message"]["attachments"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 1, "{created}");
    assert_eq!(files[0]["file_name"], "screen.png");

    mm.post_file_as(&alice, &dm, "the error log", "log.txt", b"line 1\n");
    let added = socket
        .wait_for("message.created", WAIT, |f| f["type"] == "message.created" && f["message"]["direction"] == "in")
        .await;
    let files = added["message"]["attachments"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 1, "{added}");
    assert_eq!(files[0]["file_name"], "log.txt");
    assert_eq!(added["message"]["content"], "the error log");
    socket.close().await;
    srv.stop().await;
    mm.stop().await;
}

/// MM-7b + MM-12: in thread mode an outbound conversation to a channel starts a thread — the agent's first post is
/// its root, later replies go under it, and a customer's reply in that thread joins the conversation. Each outbound
/// conversation to the same channel is its own thread.
#[tokio::test]
async fn mm_7b_an_outbound_conversation_to_a_channel_in_thread_mode_is_a_thread() {
    let mm = FakeMattermost::start().await;
    let alice = mm.user("alice", "Alice", "", "");
    let support = mm.channel("support", "O");
    let (srv, boss, bot) = desk(&mm, true, "thread").await;
    let start = |content: &'static str| {
        let boss = &boss;
        let support = support.clone();
        async move {
            boss.ok_post(
                &format!("/api/v1/mattermost-channels/{bot}/conversations"),
                json!({"to": {"kind": "channel", "id": support}, "content": content}),
                201,
            )
            .await["id"]
                .as_i64()
                .unwrap()
        }
    };

    let one = start("Maintenance tonight").await;
    let posted = mm.wait_bot_posts(1, WAIT).await;
    let root = posted[0]["id"].as_str().unwrap().to_owned();
    assert_eq!((posted[0]["channel_id"].as_str(), posted[0]["root_id"].as_str()), (Some(support.as_str()), Some("")));

    boss.ok_post(&format!("/api/v1/conversations/{one}/messages"), json!({"content": "Done"}), 201).await;
    let posted = mm.wait_bot_posts(2, WAIT).await;
    assert_eq!(posted[1]["message"], "Done");
    assert_eq!(posted[1]["root_id"], root.as_str(), "later replies go under the first post");

    // A reply in that thread, without a mention, joins the conversation.
    mm.post_as(&alice, &support, "thanks, works again", &root);
    let deadline = tokio::time::Instant::now() + WAIT;
    while inbound(&boss, one).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the thread reply did not join the conversation");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(inbound(&boss, one).await[0]["content"], "@alice: thanks, works again");

    // A second outbound conversation to the same channel is another thread.
    let two = start("Second notice").await;
    let posted = mm.wait_bot_posts(3, WAIT).await;
    let root2 = posted[2]["id"].as_str().unwrap().to_owned();
    assert_eq!(posted[2]["root_id"], "");
    mm.post_as(&alice, &support, "noted", &root2);
    let deadline = tokio::time::Instant::now() + WAIT;
    while inbound(&boss, two).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the reply in the second thread did not join it");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(inbound(&boss, one).await.len(), 1);
    assert_eq!(conversations(&boss, bot).await.len(), 2);
    srv.stop().await;
    mm.stop().await;
}

/// MM-7b: a customer's reply in a new outbound thread joins its conversation even while the dispatcher still waits
/// for Mattermost's answer to the root post (so it has not recorded the root yet): the root post names its
/// conversation, and the bot's lane links the thread from it before the channel's next posts.
#[tokio::test]
async fn mm_7b_a_reply_in_a_new_thread_joins_it_before_the_root_posts_answer_came() {
    let mm = FakeMattermost::start().await;
    let alice = mm.user("alice", "Alice", "", "");
    let support = mm.channel("support", "O");
    let (srv, boss, bot) = desk(&mm, true, "thread").await;
    mm.hold_post_answers(true);
    let one = boss
        .ok_post(
            &format!("/api/v1/mattermost-channels/{bot}/conversations"),
            json!({"to": {"kind": "channel", "id": support}, "content": "Maintenance tonight"}),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let posted = mm.wait_bot_posts(1, WAIT).await;
    let root = posted[0]["id"].as_str().unwrap().to_owned();

    // The dispatcher is still waiting for the answer to that post when the customer answers in its thread.
    mm.post_as(&alice, &support, "thanks for the notice", &root);
    let deadline = tokio::time::Instant::now() + WAIT;
    while inbound(&boss, one).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the thread reply did not join the conversation");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(inbound(&boss, one).await[0]["content"], "@alice: thanks for the notice");
    assert_eq!(conversations(&boss, bot).await.len(), 1, "no conversation of its own for the thread");

    // Answered at last: the next reply goes under the same root.
    mm.hold_post_answers(false);
    boss.ok_post(&format!("/api/v1/conversations/{one}/messages"), json!({"content": "Done"}), 201).await;
    let posted = mm.wait_bot_posts(2, WAIT).await;
    assert_eq!(posted[1]["root_id"], root.as_str());
    srv.stop().await;
    mm.stop().await;
}

/// MM-12: an outbound conversation's link is committed with it, so its first message is posted at once — never
/// after a retry (the first retry comes 10 s later). Several are started at the same time.
#[tokio::test]
async fn mm_12_outbound_dms_are_delivered_at_once() {
    const PROMPTLY: Duration = Duration::from_secs(3);
    let mm = FakeMattermost::start().await;
    let users: Vec<String> = (0..12).map(|i| mm.user(&format!("user{i}"), "User", &i.to_string(), "")).collect();
    let (srv, boss, bot) = desk(&mm, true, "group").await;
    let started = tokio::time::Instant::now();
    let boss = &boss;
    let creations = users.iter().map(|u| {
        let body = json!({"to": {"kind": "member", "id": u}, "content": format!("hello {u}")});
        async move { boss.ok_post(&format!("/api/v1/mattermost-channels/{bot}/conversations"), body, 201).await }
    });
    futures_util::future::join_all(creations).await;
    let deadline = started + PROMPTLY;
    loop {
        let n = mm.bot_posts().len();
        if n == users.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} of {} first messages posted within {PROMPTLY:?}",
            users.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for u in &users {
        let dm = mm.dm(u);
        assert!(mm.bot_posts().iter().any(|p| p["channel_id"] == dm.as_str()), "no post in {u}'s DM");
    }
    srv.stop().await;
    mm.stop().await;
}

/// MM-9: Mattermost conversations are chats (CORE-5): a DM chat ends by inactivity (the channel's timeout); a later
/// DM while it is open joins it again (CORE-7, CC-9 b: the chat is live again); once it is closed, a later DM starts
/// a new conversation, and the DM's replies come from that one.
#[tokio::test]
async fn mm_9_a_dm_chat_ends_by_inactivity_and_a_dm_after_it_was_closed_starts_a_new_one() {
    let mm = FakeMattermost::start().await;
    let alice = mm.user("alice", "Alice", "", "");
    let dm = mm.dm(&alice);
    let srv = TestServer::start().await;
    let boss = srv.agent("boss@example.com", "super_admin").await;
    let bot = boss
        .ok_post(
            "/api/v1/mattermost-channels",
            json!({"name": "Helpbot", "server_url": mm.url, "bot_token": mm.bot_token, "inactivity_timeout_s": 1}),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    mm.wait_socket(1, WAIT).await;
    wait_state(&boss, bot, "connected").await;
    let mut socket = WsClient::connect(&srv.base, boss.token.as_deref().unwrap(), None).await;

    mm.post_as(&alice, &dm, "hello?", "");
    let first = wait_inbound(&boss, bot, 1).await[0]["id"].as_i64().unwrap();
    let ended = socket.wait_for("conversation.ended", WAIT, |f| f["type"] == "conversation.ended").await;
    assert_eq!(ended["conversation_id"], first);
    assert_eq!(ended["conversation"]["active_chat"], false);
    assert_eq!(boss.ok_get("/api/v1/conversations").await["total"], 1, "the ended chat is in the ticket list");

    // Still open: the next DM makes it live again.
    mm.post_as(&alice, &dm, "are you there?", "");
    wait_inbound(&boss, bot, 2).await;
    assert_eq!(conversations(&boss, bot).await.len(), 1);
    assert_eq!(boss.ok_get(&format!("/api/v1/conversations/{first}")).await["active_chat"], true);
    socket.wait_for("ended again", WAIT, |f| f["type"] == "conversation.ended" && f["conversation_id"] == first).await;

    // Closed: the next DM starts a new chat, and the agent's reply to it is posted in the DM.
    let closed = boss
        .call(reqwest::Method::PATCH, &format!("/api/v1/conversations/{first}"), Some(json!({"status": "closed"})))
        .await;
    assert_eq!(closed.0.as_u16(), 200, "{}", closed.1);
    mm.post_as(&alice, &dm, "new problem", "");
    let convs = wait_inbound(&boss, bot, 3).await;
    assert_eq!(convs.len(), 2, "{convs:?}");
    let second = convs[1]["id"].as_i64().unwrap();
    assert_ne!(second, first);
    let texts: Vec<Value> = inbound(&boss, second).await.iter().map(|m| m["content"].clone()).collect();
    assert_eq!(texts, vec![json!("new problem")]);
    assert_eq!(convs[1]["active_chat"], true);
    boss.ok_post(&format!("/api/v1/conversations/{second}/messages"), json!({"content": "Looking"}), 201).await;
    let posted = mm.wait_bot_posts(1, WAIT).await;
    assert_eq!((posted[0]["channel_id"].as_str(), posted[0]["message"].as_str()), (Some(dm.as_str()), Some("Looking")));
    socket.close().await;
    srv.stop().await;
    mm.stop().await;
}

/// MM-11 with the inbound pipeline: posts of different channels are stored concurrently, each channel's in order;
/// a socket dropped half-way without replay loses nothing and stores nothing twice (the re-sync point passes only
/// committed posts).
#[tokio::test]
async fn mm_11_many_channels_at_once_each_in_order_across_a_refused_replay() {
    const USERS: usize = 6;
    const POSTS: usize = 12;
    let mm = FakeMattermost::start().await;
    let users: Vec<(String, String)> = (0..USERS)
        .map(|i| {
            let u = mm.user(&format!("user{i}"), &format!("User{i}"), "", "");
            let dm = mm.dm(&u);
            (u, dm)
        })
        .collect();
    let (srv, boss, bot) = desk(&mm, true, "group").await;
    for n in 0..POSTS {
        if n == POSTS / 2 {
            let hellos = mm.hellos();
            mm.set_down(true);
            mm.drop_sockets(false);
            for (u, dm) in &users {
                mm.post_as(u, dm, &format!("{u} {n} (down)"), "");
            }
            mm.allow_replay();
            mm.set_down(false);
            mm.wait_socket(hellos + 1, WAIT).await;
            continue;
        }
        for (u, dm) in &users {
            mm.post_as(u, dm, &format!("{u} {n}"), "");
        }
    }
    let convs = wait_inbound(&boss, bot, USERS * POSTS).await;
    assert_eq!(convs.len(), USERS);
    for conv in &convs {
        let texts: Vec<String> = inbound(&boss, conv["id"].as_i64().unwrap())
            .await
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_owned())
            .collect();
        let user = texts[0].split(' ').next().unwrap().to_owned();
        let expected: Vec<String> = (0..POSTS)
            .map(|n| if n == POSTS / 2 { format!("{user} {n} (down)") } else { format!("{user} {n}") })
            .collect();
        assert_eq!(texts, expected, "each post once, in its channel's order");
    }
    srv.stop().await;
    mm.stop().await;
}
