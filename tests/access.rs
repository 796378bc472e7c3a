//! DESIGN invariant 4 and HD-3: an agent never sees or touches, through any endpoint or the
//! agent socket, a conversation of a channel they were not given (and gets exactly the answer a
//! missing one gets); role checks guard every admin route; every API route needs credentials; a
//! deactivated agent's credentials stop working.
//!
//! The route tables are checked against `src/http/routes.rs` (and the handlers' `Admin`
//! extractor), so a new conversation route, channel route, admin route or API route that is not
//! listed here fails these tests, naming it, until it is covered.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cases::{Case, MISSING, RouteDef, api_routes, case, expect_error, send};
use common::ws::WsClient;
use common::{Api, PASSWORD, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers (the request tables themselves: `common::cases`)
// ---------------------------------------------------------------------------------------------

fn expect_ok(got: &(StatusCode, Value), status: u16, what: &str) {
    assert_eq!(got.0.as_u16(), status, "{what}: expected {status}, got {} {}", got.0, got.1);
}

/// Ids of the items of a conversation page.
fn page_ids(page: &Value) -> BTreeSet<i64> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a conversation page: {page}"))
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

/// Ids of a JSON array of objects.
fn array_ids(list: &Value) -> BTreeSet<i64> {
    list.as_array().unwrap_or_else(|| panic!("a list: {list}")).iter().map(|c| c["id"].as_i64().unwrap()).collect()
}

/// Compare two snapshots key by key, naming what changed.
fn assert_unchanged(before: &Value, after: &Value, what: &str) {
    let (b, a) = (before.as_object().unwrap(), after.as_object().unwrap());
    let changed: BTreeSet<&String> = b.keys().chain(a.keys()).filter(|k| b.get(*k) != a.get(*k)).collect();
    assert!(
        changed.is_empty(),
        "{what} changed {changed:?}:\nbefore: {}\nafter:  {}",
        serde_json::to_string(&changed.iter().map(|k| &b[k.as_str()]).collect::<Vec<_>>()).unwrap(),
        serde_json::to_string(&changed.iter().map(|k| a.get(k.as_str())).collect::<Vec<_>>()).unwrap()
    );
}

/// Token listings without `last_used_at`, which a token's own use updates.
fn without_last_used(tokens: Value) -> Value {
    let mut tokens = tokens;
    for t in tokens.as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("last_used_at");
    }
    tokens
}

/// Outbound deliveries without what the background dispatcher updates as it retries (state,
/// attempts, errors, next attempt): which rows exist is what a request could have changed.
fn stable_deliveries(deliveries: Value) -> Value {
    let mut deliveries = deliveries;
    for d in deliveries.as_array_mut().unwrap() {
        let d = d.as_object_mut().unwrap();
        for volatile in ["state", "attempts", "last_error", "next_attempt_at", "delivered_at"] {
            d.remove(volatile);
        }
    }
    deliveries
}

/// Messages without their delivery state, which the background dispatcher updates as it tries (#16).
fn stable_messages(messages: Value) -> Value {
    let mut messages = messages;
    for m in messages.as_array_mut().unwrap() {
        m.as_object_mut().unwrap().remove("delivery");
    }
    messages
}

async fn upload(api: &Api, name: &str, bytes: &[u8]) -> i64 {
    let resp = api
        .request(Method::POST, &format!("/api/v1/attachments?file_name={name}"))
        .header("Content-Type", "text/plain")
        .body(bytes.to_vec())
        .send()
        .await
        .expect("upload sent");
    assert_eq!(resp.status(), StatusCode::CREATED, "upload {name}");
    resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Whether a handler takes the `Admin` extractor (admin-only by signature).
fn handler_requires_admin(handler: &str) -> bool {
    let (module, function) = handler.rsplit_once("::").expect("module::function");
    let path = match module.strip_prefix("super::") {
        Some(m) => format!("{}/src/http/{m}.rs", env!("CARGO_MANIFEST_DIR")),
        None => format!("{}/src/http/handlers/{module}.rs", env!("CARGO_MANIFEST_DIR")),
    };
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let start =
        src.find(&format!("pub async fn {function}(")).unwrap_or_else(|| panic!("{handler} not found in {path}"));
    let signature = &src[start..start + src[start..].find('{').unwrap()];
    signature.contains("Admin(")
}

// ---------------------------------------------------------------------------------------------
// The desk: an admin, channels A, B and a chat channel of B's team, alice with access to A only
// ---------------------------------------------------------------------------------------------

struct Desk {
    srv: TestServer,
    admin: Api,
    /// alice with an API token.
    alice: Api,
    /// alice signed in with the dashboard session (cookie + CSRF).
    alice_web: Api,
    ch_a: i64,
    /// A chat channel alice also has.
    ch_a_chat: i64,
    ch_b: i64,
    ch_b_chat: i64,
    team: i64,
    conv_a: i64,
    conv_a2: i64,
    conv_b: i64,
    number_b: i64,
    conv_b_merged: i64,
    conv_b_chat: i64,
    /// Customer with a conversation on A and one on B.
    pat: i64,
    /// Customer only on B (their conversation was merged into `conv_b`).
    bob: i64,
    /// Customer only in B's chat channel.
    carl: i64,
    msg_a: i64,
    msg_b: i64,
    att_a: i64,
    att_b: i64,
}

impl Desk {
    async fn new() -> Self {
        let srv = TestServer::start().await;
        let admin = srv.agent("admin@example.com", "super_admin").await;
        let ch_a = admin.channel("custom", "Channel A", Some("async")).await;
        let ch_b = admin.channel("custom", "Channel B", Some("async")).await;
        let ch_b_chat = admin.channel("custom", "Channel B chat", Some("sync")).await;
        let ch_a_chat = admin.channel("custom", "Channel A chat", Some("sync")).await;

        let alice = srv.agent("alice@example.com", "agent").await;
        let (s, view) = admin
            .put(&format!("/api/v1/agents/{}/channels", alice.agent_id), json!({"channel_ids": [ch_a, ch_a_chat]}))
            .await;
        assert_eq!(s, StatusCode::OK, "give alice channel A: {view}");
        assert_eq!(view["channel_ids"], json!([ch_a, ch_a_chat]));
        let alice_web = srv.login("alice@example.com").await;

        let create = |body: Value| {
            let admin = admin.clone();
            async move { admin.ok_post("/api/v1/conversations", body, 201).await }
        };
        let a = create(json!({"channel": ch_a, "user_custom_id": "pat-a", "email": "pat@example.com",
            "name": "Pat", "subject": "Apple order", "content": "apple pie question"}))
        .await;
        let a2 = create(json!({"channel": ch_a, "user_custom_id": "quinn-a", "name": "Quinn",
            "subject": "Apple second", "content": "apple second question"}))
        .await;
        let b = create(json!({"channel": ch_b, "user_custom_id": "pat-b", "email": "pat@example.com",
            "subject": "Zebra order", "content": "zebra crossing secret"}))
        .await;
        assert_eq!(a["user_id"], b["user_id"], "same email on both channels: one customer");
        let b2 = create(json!({"channel": ch_b, "user_custom_id": "bob-b", "name": "Bob Zebra",
            "subject": "Zebra again", "content": "zebra number two"}))
        .await;
        let chat = create(json!({"channel": ch_b_chat, "user_custom_id": "carl", "name": "Carl",
            "content": "zebra live chat"}))
        .await;
        let id = |v: &Value| v["conversation_id"].as_i64().unwrap();
        let (conv_a, conv_a2, conv_b, conv_b_merged, conv_b_chat) = (id(&a), id(&a2), id(&b), id(&b2), id(&chat));

        let team = admin.ok_post("/api/v1/teams", json!({"name": "Support"}), 201).await["id"].as_i64().unwrap();
        admin.ok_post(&format!("/api/v1/conversations/{conv_b_merged}/merge"), json!({"into": conv_b}), 200).await;
        let (s, patched) = admin
            .patch(
                &format!("/api/v1/conversations/{conv_b}"),
                json!({"tags": ["zebra-tag"], "team_id": team, "priority": "high",
                    "custom_fields": {"secret": "yes"}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{patched}");

        // Messages, notes and an attachment on both sides.
        let att_b = upload(&admin, "b-secret.txt", b"zebra file").await;
        let msg_b = admin
            .ok_post(
                &format!("/api/v1/conversations/{conv_b}/messages"),
                json!({"content": "zebra reply", "attachment_ids": [att_b]}),
                201,
            )
            .await["message_id"]
            .as_i64()
            .unwrap();
        admin
            .ok_post(&format!("/api/v1/conversations/{conv_b}/notes"), json!({"content": "zebra internal note"}), 201)
            .await;
        admin
            .ok_post(
                &format!("/api/v1/conversations/{conv_b_chat}/messages"),
                json!({"content": "zebra chat reply"}),
                201,
            )
            .await;
        let att_a = upload(&admin, "a-file.txt", b"apple file").await;
        let msg_a = admin
            .ok_post(
                &format!("/api/v1/conversations/{conv_a}/messages"),
                json!({"content": "apple reply", "attachment_ids": [att_a]}),
                201,
            )
            .await["message_id"]
            .as_i64()
            .unwrap();
        admin.ok_post(&format!("/api/v1/conversations/{conv_a}/notes"), json!({"content": "apple note"}), 201).await;

        let customer = |v: &Value| v["user_id"].as_i64().unwrap();
        Self {
            admin,
            alice,
            alice_web,
            ch_a,
            ch_a_chat,
            ch_b,
            ch_b_chat,
            team,
            conv_a,
            conv_a2,
            conv_b,
            number_b: b["number"].as_i64().unwrap(),
            conv_b_merged,
            conv_b_chat,
            pat: customer(&a),
            bob: customer(&b2),
            carl: customer(&chat),
            msg_a,
            msg_b,
            att_a,
            att_b,
            srv,
        }
    }

    /// The conversations alice must never see.
    fn hidden(&self) -> [i64; 3] {
        [self.conv_b, self.conv_b_merged, self.conv_b_chat]
    }

    /// alice through both kinds of credentials.
    fn alices(&self) -> [(&'static str, &Api); 2] {
        [("token", &self.alice), ("session", &self.alice_web)]
    }

    /// Everything alice could have changed, as the admin sees it.
    async fn snapshot(&self) -> Value {
        let a = &self.admin;
        let mut out = serde_json::Map::new();
        for id in [self.conv_a, self.conv_a2, self.conv_b, self.conv_b_merged, self.conv_b_chat] {
            out.insert(format!("conversation {id}"), a.ok_get(&format!("/api/v1/conversations/{id}")).await);
            out.insert(
                format!("messages of {id}"),
                stable_messages(a.ok_get(&format!("/api/v1/conversations/{id}/messages?limit=200")).await),
            );
        }
        out.insert(
            "all conversations".into(),
            a.ok_get("/api/v1/conversations?include_merged=true&show_active_chats=true&per_page=100").await,
        );
        for ch in [self.ch_a, self.ch_b, self.ch_b_chat] {
            out.insert(
                format!("deliveries of channel {ch}"),
                stable_deliveries(a.ok_get(&format!("/api/v1/channels/{ch}/deliveries")).await),
            );
        }
        for cu in [self.pat, self.bob, self.carl] {
            out.insert(format!("customer {cu}"), a.ok_get(&format!("/api/v1/customers/{cu}")).await);
        }
        out.insert("channels".into(), a.ok_get("/api/v1/channels").await);
        out.insert("agents".into(), a.ok_get("/api/v1/agents").await);
        out.insert("audit".into(), a.ok_get("/api/v1/audit?limit=200").await);
        Value::Object(out)
    }
}

/// Every route that addresses one conversation, for `target`, with bodies that would change it.
/// `other` is a second conversation (the merge target). For the positive control `target` is a
/// chat in progress (so `end` succeeds). Merge comes last: it closes `target`.
/// `customer` is the target's customer (for a customer message through a custom channel).
/// A message id no conversation case's message has (the message source route answers 404 for it).
const NO_MAIL_MESSAGE: i64 = 987_654;

fn conversation_cases(target: i64, other: i64, customer: i64, agent_id: i64, team: i64) -> Vec<(Case, u16)> {
    let c = format!("/api/v1/conversations/{target}");
    vec![
        (case(Method::GET, c.clone(), None), 200),
        (case(Method::GET, format!("{c}/messages?after_seq=0&limit=200"), None), 200),
        (case(Method::GET, format!("{c}/messages"), None), 200),
        (case(Method::GET, format!("{c}/messages?before_seq=100"), None), 200),
        (case(Method::GET, format!("{c}/activity"), None), 200),
        (case(Method::POST, format!("{c}/read"), Some(json!({"seq": 1}))), 200),
        // No message of this conversation came by mail: no source, but only after access is checked.
        (case(Method::GET, format!("{c}/messages/{NO_MAIL_MESSAGE}/source"), None), 404),
        // No such message: the retry answers 404, but only after access is checked.
        (case(Method::POST, format!("{c}/messages/{NO_MAIL_MESSAGE}/retry"), Some(json!({}))), 404),
        (case(Method::GET, format!("{c}/mentionable"), None), 200),
        (case(Method::PATCH, c.clone(), Some(json!({"tags": ["mine"]}))), 200),
        (case(Method::PATCH, c.clone(), Some(json!({"add_tags": ["more"], "remove_tags": ["zebra-tag"]}))), 200),
        (case(Method::PATCH, c.clone(), Some(json!({"assignee_id": agent_id}))), 200),
        (case(Method::PATCH, c.clone(), Some(json!({"assignee_id": null}))), 200),
        (case(Method::PATCH, c.clone(), Some(json!({"team_id": team}))), 200),
        (case(Method::PATCH, c.clone(), Some(json!({"team_id": null}))), 200),
        (case(Method::PATCH, c.clone(), Some(json!({"priority": "low", "subject": "taken over"}))), 200),
        (case(Method::PATCH, c.clone(), Some(json!({"custom_fields": {"secret": null, "mine": "yes"}}))), 200),
        (case(Method::PATCH, c.clone(), Some(json!({"status": "pending"}))), 200),
        (case(Method::POST, format!("{c}/messages"), Some(json!({"content": "hello from alice"}))), 201),
        (
            case(
                Method::POST,
                format!("{c}/messages"),
                Some(json!({"content": "as the customer", "user_id": customer})),
            ),
            201,
        ),
        (case(Method::POST, format!("{c}/messages"), Some(json!({"content": "a note by flag", "note": true}))), 201),
        (case(Method::POST, format!("{c}/notes"), Some(json!({"content": "peeking"}))), 201),
        (case(Method::POST, format!("{c}/end"), Some(json!({}))), 200),
        (case(Method::POST, format!("{c}/messages"), Some(json!({"content": "bye", "status": "closed"}))), 201),
        (case(Method::POST, format!("{c}/merge"), Some(json!({"into": other}))), 200),
    ]
}

/// Every non-admin route that addresses one channel, for channel `ch` (a custom channel).
fn channel_cases(ch: i64) -> Vec<(Case, u16)> {
    vec![
        (case(Method::GET, format!("/api/v1/channels/{ch}"), None), 200),
        (case(Method::GET, format!("/api/v1/custom-channels/{ch}"), None), 200),
        (
            case(
                Method::POST,
                format!("/api/v1/custom-channels/{ch}/inbound"),
                Some(json!({"user_custom_id": "walk-in", "content": "a message through the channel"})),
            ),
            201,
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Invariant 4: conversations of other channels
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_conversation_route_answers_404_for_another_channels_conversation() {
    let d = Desk::new().await;

    // The table covers every route that addresses one conversation in routes.rs.
    let covered: BTreeSet<(String, String)> = conversation_cases(1, 2, 3, 4, 5)
        .into_iter()
        .map(|(c, _)| {
            let path = c.path.split('?').next().unwrap().replace(&format!("/{NO_MAIL_MESSAGE}"), "/{message_id}");
            let path = path.replace("/1", "/{id}");
            (c.method.to_string(), path)
        })
        .collect();
    for r in api_routes().into_iter().filter(|r| r.pattern.starts_with("/conversations/{id}")) {
        assert!(
            covered.contains(&(r.method.clone(), format!("/api/v1{}", r.pattern))),
            "conversation route {} {} ({}) is not in conversation_cases",
            r.method,
            r.pattern,
            r.handler
        );
    }

    let covered: BTreeSet<(String, String)> =
        channel_cases(1).into_iter().map(|(c, _)| (c.method.to_string(), c.path.replace("/1", "/{id}"))).collect();
    for r in api_routes().into_iter().filter(|r| {
        (r.pattern.starts_with("/channels/{id}") || r.pattern.starts_with("/custom-channels/{id}"))
            && !handler_requires_admin(&r.handler)
    }) {
        assert!(
            covered.contains(&(r.method.clone(), format!("/api/v1{}", r.pattern))),
            "channel route {} {} ({}) is not in channel_cases",
            r.method,
            r.pattern,
            r.handler
        );
    }

    let before = d.snapshot().await;
    for (who, alice) in d.alices() {
        for hidden in d.hidden() {
            for ((c, _), (missing, _)) in conversation_cases(hidden, d.conv_a, d.pat, alice.agent_id, d.team)
                .into_iter()
                .zip(conversation_cases(MISSING, d.conv_a, d.pat, alice.agent_id, d.team))
            {
                let what = format!("alice ({who}) {c}");
                let got = send(alice, &c).await;
                expect_error(&got, 404, "not_found", &what);
                // Exactly the answer for a conversation that does not exist: nothing leaks.
                let absent = send(alice, &missing).await;
                assert_eq!(got, absent, "{what}: must answer like a missing conversation");
            }
        }

        // Merging alice's own conversation into a hidden one: the target is unknown to her.
        for hidden in d.hidden() {
            let what = format!("alice ({who}) merges {} into {hidden}", d.conv_a);
            let got = send(
                alice,
                &case(Method::POST, format!("/api/v1/conversations/{}/merge", d.conv_a), Some(json!({"into": hidden}))),
            )
            .await;
            expect_error(&got, 422, "unknown_reference", &what);
            let absent = send(
                alice,
                &case(
                    Method::POST,
                    format!("/api/v1/conversations/{}/merge", d.conv_a),
                    Some(json!({"into": MISSING})),
                ),
            )
            .await;
            assert_eq!(
                got.1["message"].as_str().unwrap().replace(&hidden.to_string(), "N"),
                absent.1["message"].as_str().unwrap().replace(&MISSING.to_string(), "N"),
                "{what}: must answer like a missing conversation"
            );
        }

        // B's channels, through every non-admin route that addresses one channel.
        for ch in [d.ch_b, d.ch_b_chat] {
            for ((c, _), (missing, _)) in channel_cases(ch).into_iter().zip(channel_cases(MISSING)) {
                let what = format!("alice ({who}) {c}");
                let got = send(alice, &c).await;
                expect_error(&got, 404, "not_found", &what);
                let absent = send(alice, &missing).await;
                assert_eq!(got, absent, "{what}: must answer like a missing channel");
            }
        }

        // The attachment of a message in B.
        let what = format!("alice ({who}) GET attachment {} of B", d.att_b);
        let got = send(alice, &case(Method::GET, format!("/api/v1/attachments/{}", d.att_b), None)).await;
        expect_error(&got, 404, "not_found", &what);
        let absent = send(alice, &case(Method::GET, format!("/api/v1/attachments/{MISSING}"), None)).await;
        assert_eq!(got, absent, "{what}: must answer like a missing attachment");

        // Starting a conversation in B, quoting B's message from A, linking an id of B.
        for (c, like_missing) in [
            (
                case(
                    Method::POST,
                    "/api/v1/conversations",
                    Some(json!({"channel": d.ch_b, "user_custom_id": "sneak", "content": "hi"})),
                ),
                case(
                    Method::POST,
                    "/api/v1/conversations",
                    Some(json!({"channel": MISSING, "user_custom_id": "sneak", "content": "hi"})),
                ),
            ),
            (
                case(
                    Method::POST,
                    "/api/v1/conversations",
                    Some(json!({"channel": d.ch_b_chat, "customer_id": d.carl, "content": "hi"})),
                ),
                case(
                    Method::POST,
                    "/api/v1/conversations",
                    Some(json!({"channel": MISSING, "customer_id": d.carl, "content": "hi"})),
                ),
            ),
            (
                case(
                    Method::POST,
                    format!("/api/v1/conversations/{}/messages", d.conv_a),
                    Some(json!({"content": "quoting", "quoted_message_id": d.msg_b})),
                ),
                case(
                    Method::POST,
                    format!("/api/v1/conversations/{}/messages", d.conv_a),
                    Some(json!({"content": "quoting", "quoted_message_id": MISSING})),
                ),
            ),
            (
                case(
                    Method::POST,
                    format!("/api/v1/customers/{}/identities", d.pat),
                    Some(json!({"kind": "external", "value": "x-1", "channel_id": d.ch_b})),
                ),
                case(
                    Method::POST,
                    format!("/api/v1/customers/{}/identities", d.pat),
                    Some(json!({"kind": "external", "value": "x-1", "channel_id": MISSING})),
                ),
            ),
        ] {
            let what = format!("alice ({who}) {c}");
            let got = send(alice, &c).await;
            expect_error(&got, 422, "unknown_reference", &what);
            let absent = send(alice, &like_missing).await;
            expect_error(&absent, 422, "unknown_reference", &format!("{like_missing}"));
        }
    }
    assert_unchanged(&before, &d.snapshot().await, "alice's requests on B's conversations");

    // Positive controls: the same routes work on conversations of channel A, for both
    // credentials, so the 404s above are about access and nothing else.
    for (who, alice) in d.alices() {
        let p1 = d.admin.inbound(d.ch_a_chat, &format!("p1-{who}"), "apple one").await;
        let p2 = d.admin.inbound(d.ch_a, &format!("p2-{who}"), "apple two").await;
        let p1_customer = d.admin.ok_get(&format!("/api/v1/conversations/{p1}")).await["customer_id"].as_i64().unwrap();
        for (c, ok) in conversation_cases(p1, p2, p1_customer, alice.agent_id, d.team) {
            let got = send(alice, &c).await;
            expect_ok(&got, ok, &format!("alice ({who}) on her own channel: {c}"));
        }
        for (c, ok) in channel_cases(d.ch_a) {
            let got = send(alice, &c).await;
            expect_ok(&got, ok, &format!("alice ({who}) on her own channel: {c}"));
        }
        let merged = alice.ok_get(&format!("/api/v1/conversations/{p1}")).await;
        assert_eq!(merged["merged_into_id"], p2);
        assert_eq!(merged["last_seq"], 6, "first message + 5 appended through alice");
        assert!(merged["ended_at"].is_string(), "alice ended her chat: {merged}");

        let file = alice.request(Method::GET, &format!("/api/v1/attachments/{}", d.att_a)).send().await.unwrap();
        assert_eq!(file.status(), StatusCode::OK, "alice ({who}) reads A's attachment");
        assert_eq!(file.bytes().await.unwrap().as_ref(), b"apple file");

        let quoted = send(
            alice,
            &case(
                Method::POST,
                format!("/api/v1/conversations/{}/messages", d.conv_a),
                Some(json!({"content": "quoting", "quoted_message_id": d.msg_a})),
            ),
        )
        .await;
        expect_ok(&quoted, 201, &format!("alice ({who}) quotes in A"));
        let created = send(
            alice,
            &case(
                Method::POST,
                "/api/v1/conversations",
                Some(json!({"channel": d.ch_a, "user_custom_id": format!("new-{who}"), "content": "hi"})),
            ),
        )
        .await;
        expect_ok(&created, 201, &format!("alice ({who}) starts one in A"));
        let linked = send(
            alice,
            &case(
                Method::POST,
                format!("/api/v1/customers/{}/identities", d.pat),
                Some(json!({"kind": "external", "value": format!("x-{who}"), "channel_id": d.ch_a})),
            ),
        )
        .await;
        expect_ok(&linked, 201, &format!("alice ({who}) links an id of A"));
    }
}

#[tokio::test]
async fn lists_search_and_customer_history_never_show_another_channels_conversations() {
    let d = Desk::new().await;
    let (a, a2) = (d.conv_a, d.conv_a2);
    let hidden: BTreeSet<i64> = d.hidden().into_iter().collect();
    let n = d.number_b;
    // (query, what alice sees exactly, whether the admin sees one of B's with the same query)
    let cases: Vec<(String, Vec<i64>, bool)> = vec![
        (String::new(), vec![a, a2], true),
        (format!("channel={}", d.ch_b), vec![], true),
        (format!("channel={}&include_merged=true&show_active_chats=true", d.ch_b), vec![], true),
        (format!("channel={}&show_active_chats=true", d.ch_b_chat), vec![], true),
        (format!("channel={}&active=true", d.ch_b_chat), vec![], true),
        (format!("channel={}", d.ch_a), vec![a, a2], false),
        ("show_active_chats=true".into(), vec![a, a2], true),
        ("active=true".into(), vec![], true),
        ("include_merged=true".into(), vec![a, a2], true),
        ("include_merged=true&show_active_chats=true&per_page=100".into(), vec![a, a2], true),
        (format!("customer={}", d.pat), vec![a], true),
        (format!("user_id={}", d.pat), vec![a], true),
        (format!("customer={}&include_merged=true", d.bob), vec![], true),
        (format!("customer={}&show_active_chats=true", d.carl), vec![], true),
        ("q=zebra".into(), vec![], true),
        ("q=ZEBRA&include_merged=true&show_active_chats=true".into(), vec![], true),
        ("q=secret".into(), vec![], true),
        ("q=Bob&include_merged=true".into(), vec![], true),
        ("q=Carl&show_active_chats=true".into(), vec![], true),
        (format!("q=%23{n}"), vec![], true),
        (format!("q={n}"), vec![], true),
        ("q=apple".into(), vec![a, a2], false),
        ("tag=zebra-tag".into(), vec![], true),
        (format!("team={}", d.team), vec![], true),
        ("priority=high".into(), vec![], true),
        ("status=open".into(), vec![a, a2], true),
        ("status=closed&include_merged=true".into(), vec![], true),
        ("assignee=none".into(), vec![a, a2], true),
        ("mode=sync&show_active_chats=true".into(), vec![], true),
        ("mode=async&include_merged=true".into(), vec![a, a2], true),
        ("sort=created_asc&include_merged=true&show_active_chats=true".into(), vec![a, a2], true),
    ];
    for (q, alice_sees, admin_sees_b) in &cases {
        let path = format!("/api/v1/conversations?{q}");
        for (who, alice) in d.alices() {
            let got = send(alice, &case(Method::GET, path.clone(), None)).await;
            expect_ok(&got, 200, &format!("alice ({who}) GET {path}"));
            let ids = page_ids(&got.1);
            assert_eq!(ids, alice_sees.iter().copied().collect(), "alice ({who}) GET {path}: {}", got.1);
            assert_eq!(got.1["total"], ids.len(), "alice ({who}) GET {path}: the total counts only what she may see");
        }
        let admin = d.admin.ok_get(&path).await;
        assert_eq!(
            !page_ids(&admin).is_disjoint(&hidden),
            *admin_sees_b,
            "admin GET {path} (the filter itself must match B's conversations): {admin}"
        );
    }

    // A customer's history across channels (HD-1) leaves out what alice may not see; a customer
    // only on B's channels (carl, bob) does not exist for her (tests/security/customer_scope.rs).
    for (customer, alice_sees, admin_sees) in
        [(d.pat, Some(vec![a]), vec![a, d.conv_b]), (d.carl, None, vec![d.conv_b_chat]), (d.bob, None, vec![])]
    {
        let path = format!("/api/v1/customers/{customer}/conversations");
        for (who, alice) in d.alices() {
            let got = send(alice, &case(Method::GET, path.clone(), None)).await;
            let Some(alice_sees) = &alice_sees else {
                expect_error(&got, 404, "not_found", &format!("alice ({who}) GET {path}"));
                let missing = case(Method::GET, format!("/api/v1/customers/{MISSING}/conversations"), None);
                assert_eq!(got, send(alice, &missing).await, "alice ({who}) GET {path}: like a missing customer");
                continue;
            };
            expect_ok(&got, 200, &format!("alice ({who}) GET {path}"));
            assert_eq!(page_ids(&got.1), alice_sees.iter().copied().collect(), "alice ({who}) GET {path}: {}", got.1);
            assert_eq!(got.1["total"], alice_sees.len(), "alice ({who}) GET {path}");
        }
        assert_eq!(page_ids(&d.admin.ok_get(&path).await), admin_sees.into_iter().collect(), "admin GET {path}");
    }

    // Channels: only A is listed; B and B's chat channel do not exist for alice.
    for (who, alice) in d.alices() {
        for path in ["/api/v1/channels", "/api/v1/channels?kind=custom", "/api/v1/custom-channels"] {
            let list = alice.ok_get(path).await;
            assert_eq!(array_ids(&list), BTreeSet::from([d.ch_a, d.ch_a_chat]), "alice ({who}) GET {path}: {list}");
        }
        for ch in [d.ch_b, d.ch_b_chat] {
            let path = format!("/api/v1/channels/{ch}");
            let got = send(alice, &case(Method::GET, path.clone(), None)).await;
            expect_error(&got, 404, "not_found", &format!("alice ({who}) GET {path}"));
            let absent = send(alice, &case(Method::GET, format!("/api/v1/channels/{MISSING}"), None)).await;
            assert_eq!(got, absent, "alice ({who}) GET {path}: like a missing channel");
        }
        let own = alice.ok_get(&format!("/api/v1/channels/{}", d.ch_a)).await;
        assert_eq!(own["id"], d.ch_a, "alice ({who}) sees channel A");
        let me = alice.ok_get("/api/v1/me").await;
        assert_eq!(me["agent"]["channel_ids"], json!([d.ch_a, d.ch_a_chat]));
        assert_eq!(me["all_channels"], false);
    }
    assert_eq!(
        array_ids(&d.admin.ok_get("/api/v1/channels").await),
        BTreeSet::from([d.ch_a, d.ch_a_chat, d.ch_b, d.ch_b_chat]),
        "the admin sees every channel"
    );
}

#[tokio::test]
async fn an_agent_without_access_to_the_channel_cannot_be_assigned() {
    let d = Desk::new().await;
    let before = d.snapshot().await;
    for hidden in [d.conv_b, d.conv_b_chat] {
        for body in [
            json!({"assignee_id": d.alice.agent_id}),
            json!({"assignee_id": d.alice.agent_id, "status": "pending", "tags": ["x"]}),
        ] {
            let c = case(Method::PATCH, format!("/api/v1/conversations/{hidden}"), Some(body));
            let got = send(&d.admin, &c).await;
            expect_error(&got, 422, "rule_violation", &format!("admin {c}"));
        }
    }
    assert_unchanged(&before, &d.snapshot().await, "refused assignments to an agent without access");

    // Positive control: alice may be assigned in A, and then finds it as hers.
    let c = case(
        Method::PATCH,
        format!("/api/v1/conversations/{}", d.conv_a),
        Some(json!({"assignee_id": d.alice.agent_id})),
    );
    let got = send(&d.admin, &c).await;
    expect_ok(&got, 200, &format!("admin {c}"));
    assert_eq!(got.1["assignee_id"], d.alice.agent_id);
    let mine = d.alice.ok_get("/api/v1/conversations?assignee=me").await;
    assert_eq!(page_ids(&mine), BTreeSet::from([d.conv_a]));

    // Access is checked on every request: taking channel A away hides A at once, even though
    // alice is still its assignee and her token and session were made before.
    let (s, _) =
        d.admin.put(&format!("/api/v1/agents/{}/channels", d.alice.agent_id), json!({"channel_ids": []})).await;
    assert_eq!(s, StatusCode::OK);
    for (who, alice) in d.alices() {
        let path = format!("/api/v1/conversations/{}", d.conv_a);
        expect_error(
            &send(alice, &case(Method::GET, path.clone(), None)).await,
            404,
            "not_found",
            &format!("alice ({who}) GET {path} after losing channel A"),
        );
        let list = alice.ok_get("/api/v1/conversations?assignee=me").await;
        assert_eq!(list["total"], 0, "alice ({who}): {list}");
    }
}

/// A reply in alice's own channel may not reveal that an attachment id of another channel
/// exists: naming it must answer like naming an attachment that does not exist.
#[tokio::test]
async fn naming_another_channels_attachment_answers_like_a_missing_one() {
    let d = Desk::new().await;
    let before = d.snapshot().await;
    for (who, alice) in d.alices() {
        let c = case(
            Method::POST,
            format!("/api/v1/conversations/{}/messages", d.conv_a),
            Some(json!({"content": "look", "attachment_ids": [d.att_b]})),
        );
        let got = send(alice, &c).await;
        expect_error(&got, 422, "unknown_reference", &format!("alice ({who}) {c}"));
    }
    assert_unchanged(&before, &d.snapshot().await, "naming B's attachment");
}

// ---------------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------------

/// Admin-only by role, and what an agent does there.
struct RoleDesk {
    srv: TestServer,
    admin: Api,
    /// An agent (role `agent`) with access to `ch`.
    carol: Api,
    other: i64,
    team: i64,
    ch: i64,
    admin_token_id: i64,
    /// A queued delivery of `ch`.
    delivery: i64,
}

impl RoleDesk {
    async fn new() -> Self {
        let srv = TestServer::start().await;
        let admin = srv.agent("admin@example.com", "super_admin").await;
        let carol = srv.agent("carol@example.com", "agent").await;
        let other = srv.agent("dan@example.com", "agent").await.agent_id;
        let ch = admin.channel("custom", "Shop", Some("async")).await;
        let (s, _) =
            admin.put(&format!("/api/v1/agents/{}/channels", carol.agent_id), json!({"channel_ids": [ch]})).await;
        assert_eq!(s, StatusCode::OK);
        let conv = admin.inbound(ch, "u-1", "hello").await;
        admin.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "queued"}), 201).await;
        let team = admin.ok_post("/api/v1/teams", json!({"name": "Support"}), 201).await["id"].as_i64().unwrap();
        admin.ok_post("/api/v1/statuses", json!({"key": "on_hold", "name": "On hold", "base": "pending"}), 201).await;
        let tokens = admin.ok_get(&format!("/api/v1/tokens?agent_id={}", admin.agent_id)).await;
        let admin_token_id = tokens[0]["id"].as_i64().unwrap();
        let delivery = admin.ok_get(&format!("/api/v1/channels/{ch}/deliveries")).await[0]["id"]
            .as_i64()
            .expect("the reply queued a delivery");
        Self { srv, admin, carol, other, team, ch, admin_token_id, delivery }
    }

    async fn snapshot(&self) -> Value {
        let a = &self.admin;
        let mut out = serde_json::Map::new();
        for path in [
            "/api/v1/teams",
            "/api/v1/channels",
            "/api/v1/statuses",
            "/api/v1/notification-templates",
            "/api/v1/agents",
            "/api/v1/audit?limit=200",
            "/api/v1/conversations?include_merged=true&show_active_chats=true&per_page=100",
        ] {
            out.insert(path.into(), a.ok_get(path).await);
        }
        out.insert("tokens".into(), without_last_used(a.ok_get("/api/v1/tokens").await));
        out.insert(
            "deliveries".into(),
            stable_deliveries(a.ok_get(&format!("/api/v1/channels/{}/deliveries", self.ch)).await),
        );
        Value::Object(out)
    }
}

#[tokio::test]
async fn agents_get_403_on_every_admin_route_and_nothing_changes() {
    let d = RoleDesk::new().await;
    let carol_web = d.srv.login("carol@example.com").await;
    let (me, other, t, ch) = (d.carol.agent_id, d.other, d.team, d.ch);
    let mailbox = json!({"name": "Box", "protocol": "imap", "host": "127.0.0.1", "port": 9, "tls": "none",
        "username": "u", "password": "p", "poll_interval_s": 300,
        "smtp": {"host": "127.0.0.1", "port": 9, "tls": "none", "from_address": "box@example.com"}});
    let mb = d.admin.ok_post("/api/v1/email-channels", mailbox, 201).await["id"].as_i64().unwrap();
    let cases = vec![
        case(Method::POST, "/api/v1/teams", Some(json!({"name": "Sneaky"}))),
        case(Method::PATCH, format!("/api/v1/teams/{t}"), Some(json!({"name": "Renamed team"}))),
        case(Method::DELETE, format!("/api/v1/teams/{t}"), None),
        case(Method::PUT, format!("/api/v1/teams/{t}/members"), Some(json!({"agent_ids": [me]}))),
        case(Method::POST, "/api/v1/channels", Some(json!({"kind": "custom", "name": "Sneaky", "mode": "async"}))),
        case(Method::PATCH, format!("/api/v1/channels/{ch}"), Some(json!({"name": "Sneaky", "enabled": false}))),
        case(
            Method::POST,
            "/api/v1/custom-channels",
            Some(json!({"name": "Sneaky hook", "webhook_url": "https://example.com/hook", "type": "async"})),
        ),
        case(
            Method::PATCH,
            format!("/api/v1/custom-channels/{ch}"),
            Some(json!({"webhook_url": "https://example.com/stolen"})),
        ),
        case(Method::POST, format!("/api/v1/custom-channels/{ch}/secret"), None),
        case(Method::GET, format!("/api/v1/custom-channels/{ch}/deliveries"), None),
        case(Method::POST, format!("/api/v1/custom-channels/{ch}/deliveries/{}/resend", d.delivery), None),
        case(Method::DELETE, format!("/api/v1/custom-channels/{ch}"), None),
        case(Method::DELETE, format!("/api/v1/channels/{ch}"), None),
        case(Method::GET, format!("/api/v1/channels/{ch}/deliveries"), None),
        case(
            Method::POST,
            "/api/v1/email-channels",
            Some(json!({"name": "Sneaky box", "protocol": "imap", "host": "127.0.0.1", "port": 9, "tls": "none",
                "username": "u", "password": "p", "smtp": {"host": "127.0.0.1", "port": 9, "tls": "none",
                "from_address": "sneaky@example.com"}})),
        ),
        case(Method::PATCH, format!("/api/v1/email-channels/{mb}"), Some(json!({"host": "evil.example.com"}))),
        case(Method::DELETE, format!("/api/v1/email-channels/{mb}"), None),
        case(Method::POST, format!("/api/v1/email-channels/{mb}/check"), None),
        case(
            Method::POST,
            "/api/v1/mattermost-channels",
            Some(json!({"name": "Sneaky bot", "server_url": "http://127.0.0.1:9", "bot_token": "t"})),
        ),
        case(Method::PATCH, format!("/api/v1/mattermost-channels/{ch}"), Some(json!({"enabled": false}))),
        case(Method::DELETE, format!("/api/v1/mattermost-channels/{ch}"), None),
        case(Method::POST, "/api/v1/zalo-channels", Some(zalo_body())),
        case(Method::PATCH, format!("/api/v1/zalo-channels/{ch}"), Some(json!({"enabled": false}))),
        case(Method::DELETE, format!("/api/v1/zalo-channels/{ch}"), None),
        case(Method::GET, format!("/api/v1/email-channels/{mb}/log"), None),
        case(Method::GET, format!("/api/v1/email-channels/{mb}/log/1/source"), None),
        case(Method::POST, "/api/v1/statuses", Some(json!({"key": "sneaky", "name": "Sneaky", "base": "open"}))),
        case(Method::PATCH, "/api/v1/statuses/on_hold", Some(json!({"name": "Sneaky"}))),
        case(Method::PATCH, "/api/v1/statuses/open", Some(json!({"position": 9}))),
        case(Method::DELETE, "/api/v1/statuses/on_hold", None),
        case(
            Method::POST,
            "/api/v1/agents",
            Some(json!({"email": "sneaky@example.com", "name": "Sneaky", "role": "admin",
                "password": "long enough password"})),
        ),
        case(Method::POST, "/api/v1/agents", Some(json!({"email": "plain@example.com", "name": "Plain"}))),
        case(Method::POST, "/api/v1/agents/invitations", Some(json!({"email": "invited@example.com"}))),
        case(Method::GET, "/api/v1/onboarding", None),
        case(Method::POST, "/api/v1/onboarding/dismiss", None),
        case(Method::PUT, format!("/api/v1/agents/{me}/channels"), Some(json!({"channel_ids": [ch]}))),
        case(Method::PUT, format!("/api/v1/agents/{other}/channels"), Some(json!({"channel_ids": [ch]}))),
        case(Method::PATCH, format!("/api/v1/agents/{other}"), Some(json!({"name": "Sneaky"}))),
        case(Method::PATCH, format!("/api/v1/agents/{other}"), Some(json!({"password": "new long password"}))),
        case(Method::PATCH, format!("/api/v1/agents/{other}"), Some(json!({"active": false}))),
        case(Method::PATCH, format!("/api/v1/agents/{}", d.admin.agent_id), Some(json!({"role": "agent"}))),
        case(Method::PATCH, format!("/api/v1/agents/{me}"), Some(json!({"role": "admin"}))),
        case(Method::PATCH, format!("/api/v1/agents/{me}"), Some(json!({"active": false}))),
        case(Method::GET, "/api/v1/audit", None),
        case(Method::GET, "/api/v1/audit?entity_type=agent", None),
        case(Method::GET, "/api/v1/notification-templates", None),
        case(Method::GET, "/api/v1/notification-templates/ticket_closed", None),
        case(Method::PUT, "/api/v1/notification-templates/ticket_closed", Some(json!({"subject": "s", "body": ""}))),
        case(Method::DELETE, "/api/v1/notification-templates/ticket_closed", None),
        case(
            Method::POST,
            "/api/v1/notification-templates/ticket_closed/preview",
            Some(json!({"subject": "s", "body": "#Subject#"})),
        ),
        // NT-1…NT-13 (issue #18): the notification settings are admins' only.
        case(Method::GET, "/api/v1/settings/notifications", None),
        case(Method::PATCH, "/api/v1/settings/notifications", Some(json!({"enabled": false}))),
        case(Method::POST, "/api/v1/tokens", Some(json!({"name": "sneaky", "agent_id": other}))),
        case(Method::POST, "/api/v1/tokens", Some(json!({"name": "sneaky", "agent_id": d.admin.agent_id}))),
    ];

    // Every route whose handler takes the `Admin` extractor is in the table.
    for r in api_routes().into_iter().filter(|r| handler_requires_admin(&r.handler)) {
        let prefix = format!("/api/v1{}", r.pattern.split('{').next().unwrap());
        assert!(
            cases.iter().any(|c| c.method.as_str() == r.method
                && c.path.starts_with(&prefix)
                && c.path.matches('/').count() == format!("/api/v1{}", r.pattern).matches('/').count()),
            "admin route {} {} ({}) is not in the table",
            r.method,
            r.pattern,
            r.handler
        );
    }

    let before = d.snapshot().await;
    for (who, carol) in [("token", &d.carol), ("session", &carol_web)] {
        for c in &cases {
            let got = send(carol, c).await;
            expect_error(&got, 403, "forbidden", &format!("agent ({who}) {c}"));
        }
        // Another agent's token is not even there for an agent.
        let c = case(Method::DELETE, format!("/api/v1/tokens/{}", d.admin_token_id), None);
        expect_error(&send(carol, &c).await, 404, "not_found", &format!("agent ({who}) {c}"));
        let listed = carol.ok_get(&format!("/api/v1/tokens?agent_id={}", d.admin.agent_id)).await;
        assert!(
            listed.as_array().unwrap().iter().all(|t| t["agent_id"] == me),
            "agent ({who}) lists only her own tokens: {listed}"
        );
    }
    assert_unchanged(&before, &d.snapshot().await, "an agent's admin requests");

    // Positive controls: what an agent may do, and the admin may do the rest.
    let (s, b) = d.carol.patch(&format!("/api/v1/agents/{me}"), json!({"name": "Carol C"})).await;
    assert_eq!(s, StatusCode::OK, "an agent renames herself: {b}");
    d.carol.ok_post("/api/v1/tokens", json!({"name": "mine"}), 201).await;
    let admin_self = format!("/api/v1/agents/{}", d.admin.agent_id);
    for c in &cases {
        if c.method == Method::DELETE || c.path == admin_self {
            continue; // keep the rows the table points at, and the admin an admin
        }
        let got = send(&d.admin, c).await;
        // The mailbox has no logged mail here: the admin gets through to "not found", where the agent got 403.
        let nothing_logged = c.path.ends_with("/log/1/source") && got.1["message"] == "logged mail not found";
        // No Mattermost server answers here and the table's channel is a custom one: the admin gets past the role
        // check to what comes after it (unreachable server, no such bot), where the agent got 403.
        let past_role = (c.path.starts_with("/api/v1/mattermost-channels")
            || c.path.starts_with("/api/v1/zalo-channels"))
            && [404, 422].contains(&got.0.as_u16());
        assert!(got.0.is_success() || nothing_logged || past_role, "admin {c} must be allowed: {} {}", got.0, got.1);
    }
}

#[tokio::test]
async fn admins_cannot_create_or_change_a_super_admin() {
    let srv = TestServer::start().await;
    let root = srv.agent("root@example.com", "super_admin").await;
    let admin = srv.agent("admin@example.com", "admin").await;
    let admin2 = srv.agent("admin2@example.com", "admin").await.agent_id;
    let agent = srv.agent("agent@example.com", "agent").await.agent_id;
    let agent2 = srv.agent("agent2@example.com", "agent").await.agent_id;
    let r = root.agent_id;
    let cases = vec![
        case(
            Method::POST,
            "/api/v1/agents",
            Some(json!({"email": "boss@example.com", "name": "Boss", "role": "super_admin",
                "password": "long enough password"})),
        ),
        case(Method::PATCH, format!("/api/v1/agents/{r}"), Some(json!({"name": "Demoted"}))),
        case(Method::PATCH, format!("/api/v1/agents/{r}"), Some(json!({"role": "agent"}))),
        case(Method::PATCH, format!("/api/v1/agents/{r}"), Some(json!({"active": false}))),
        case(Method::PATCH, format!("/api/v1/agents/{r}"), Some(json!({"password": "taken over password"}))),
        case(Method::PATCH, format!("/api/v1/agents/{admin2}"), Some(json!({"role": "super_admin"}))),
        case(Method::PATCH, format!("/api/v1/agents/{agent}"), Some(json!({"role": "super_admin"}))),
    ];
    let admin_web = srv.login("admin@example.com").await;
    let agents_before = root.ok_get("/api/v1/agents").await;
    let audit_before = root.ok_get("/api/v1/audit?limit=200").await;
    for (who, api) in [("token", &admin), ("session", &admin_web)] {
        for c in &cases {
            let got = send(api, c).await;
            expect_error(&got, 403, "forbidden", &format!("admin ({who}) {c}"));
        }
    }
    assert_eq!(root.ok_get("/api/v1/agents").await, agents_before, "no agent changed");
    assert_eq!(root.ok_get("/api/v1/audit?limit=200").await, audit_before, "nothing was written");
    // The old password of the super admin still works.
    srv.login("root@example.com").await;

    // Positive controls: a super admin may do all of it (another super admin changes root);
    // an admin manages agents who are not super admins.
    let root_path = format!("/api/v1/agents/{r}");
    for c in cases.iter().filter(|c| c.path != root_path) {
        let got = send(&root, c).await;
        assert!(got.0.is_success(), "super admin {c}: {} {}", got.0, got.1);
    }
    let other_root = srv.agent("root2@example.com", "super_admin").await;
    for c in cases.iter().filter(|c| c.path == root_path) {
        let got = send(&other_root, c).await;
        assert!(got.0.is_success(), "another super admin {c}: {} {}", got.0, got.1);
    }
    let (s, b) = admin.patch(&format!("/api/v1/agents/{agent2}"), json!({"role": "admin"})).await;
    assert_eq!(s, StatusCode::OK, "an admin makes an admin: {b}");
    admin
        .ok_post("/api/v1/agents", json!({"email": "helper@example.com", "name": "Helper", "role": "admin"}), 201)
        .await;
}

#[tokio::test]
async fn an_admin_cannot_promote_themselves_to_super_admin() {
    let srv = TestServer::start().await;
    let root = srv.agent("root@example.com", "super_admin").await;
    let admin = srv.agent("admin@example.com", "admin").await;
    let c = case(Method::PATCH, format!("/api/v1/agents/{}", admin.agent_id), Some(json!({"role": "super_admin"})));
    expect_error(&send(&admin, &c).await, 403, "forbidden", &format!("admin {c}"));
    let me = root.ok_get(&format!("/api/v1/agents/{}", admin.agent_id)).await;
    assert_eq!(me["role"], "admin", "still an admin");
}

#[tokio::test]
async fn an_admin_cannot_mint_a_token_for_a_super_admin() {
    let srv = TestServer::start().await;
    let root = srv.agent("root@example.com", "super_admin").await;
    let admin = srv.agent("admin@example.com", "admin").await;
    let tokens_before = without_last_used(root.ok_get("/api/v1/tokens").await);
    let c = case(Method::POST, "/api/v1/tokens", Some(json!({"name": "as root", "agent_id": root.agent_id})));
    let got = send(&admin, &c).await;
    // If it was created, show what it allows: acting as the super admin.
    if let Some(secret) = got.1["token"].as_str() {
        let as_root = Api::with_token(&srv.base, secret, root.agent_id);
        let made = as_root
            .post("/api/v1/agents", json!({"email": "boss@example.com", "name": "Boss", "role": "super_admin"}))
            .await;
        panic!("admin {c} answered {} and the token then created a super admin: {} {}", got.0, made.0, made.1);
    }
    expect_error(&got, 403, "forbidden", &format!("admin {c}"));
    assert_eq!(without_last_used(root.ok_get("/api/v1/tokens").await), tokens_before);
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

/// A request for each `/api/v1` route with real ids and a body that would change something.
fn sample_request(r: &RouteDef, ids: &Ids) -> Option<Case> {
    let path = format!("/api/v1{}", r.pattern)
        .replace("{identity_id}", &ids.identity.to_string())
        .replace("{delivery}", &ids.delivery.to_string())
        .replace("{key}", "on_hold")
        .replace("{kind}", "ticket_closed")
        .replace("{message_id}", &NO_MAIL_MESSAGE.to_string())
        .replace("{log_id}", "1");
    let id = match r.pattern.split('/').nth(1).unwrap() {
        "conversations" => ids.conversation,
        "customers" => ids.customer,
        "agents" => ids.agent,
        "teams" => ids.team,
        "channels" | "custom-channels" | "email-channels" | "mattermost-channels" | "zalo-channels" => ids.channel,
        "tokens" => ids.token,
        "attachments" => ids.attachment,
        _ => 1,
    };
    let mut path = path.replace("{id}", &id.to_string());
    if r.pattern == "/attachments" {
        path.push_str("?file_name=x.txt");
    }
    let body = match (r.method.as_str(), r.pattern.as_str()) {
        ("GET" | "DELETE", _) => None, // includes GET /ws, the socket upgrade
        ("POST", "/auth/logout") => None,
        ("POST", "/me/notifications/read-all" | "/me/notifications/{id}/read") => None,
        ("POST", "/attachments") => None, // raw bytes, sent by the caller
        ("POST", "/setup") => Some(json!({"email": "x@example.com", "password": "long enough pw"})),
        ("POST", "/auth/login") => Some(json!({"email": "x@example.com", "password": PASSWORD})),
        ("POST", "/conversations") => Some(json!({"channel": ids.channel, "user_custom_id": "anon", "content": "hi"})),
        ("POST", "/conversations/counts") => Some(json!({"views": {"all": ""}})),
        ("PATCH", "/conversations/{id}") => Some(json!({"status": "closed"})),
        ("POST", "/conversations/{id}/merge") => Some(json!({"into": ids.conversation2})),
        ("POST", "/conversations/{id}/messages") => Some(json!({"content": "hi"})),
        ("POST", "/conversations/{id}/notes") => Some(json!({"content": "hi"})),
        ("POST", "/conversations/{id}/end") => Some(json!({"status": "closed"})),
        ("POST", "/conversations/{id}/read") => Some(json!({"seq": 1})),
        ("PATCH", "/customers/{id}") => Some(json!({"name": "Renamed"})),
        ("POST", "/customers/{id}/identities") => Some(json!({"kind": "email", "value": "new@example.com"})),
        ("POST", "/customers/{id}/merge") => Some(json!({"into": ids.customer2})),
        ("POST", "/agents") => Some(json!({"email": "new@example.com", "name": "New"})),
        ("POST", "/agents/invitations") => Some(json!({"email": "invited@example.com"})),
        ("POST", "/onboarding/dismiss") => None,
        ("POST", "/conversations/{id}/messages/{message_id}/retry") => None,
        ("PATCH", "/agents/{id}") => Some(json!({"active": false})),
        ("PUT", "/agents/{id}/channels") => Some(json!({"channel_ids": []})),
        ("POST", "/teams") => Some(json!({"name": "New"})),
        ("PATCH", "/teams/{id}") => Some(json!({"name": "Renamed"})),
        ("PUT", "/teams/{id}/members") => Some(json!({"agent_ids": [ids.agent]})),
        ("POST", "/channels") => Some(json!({"kind": "custom", "name": "New", "mode": "async"})),
        ("PATCH", "/channels/{id}") => Some(json!({"enabled": false})),
        ("POST", "/statuses") => Some(json!({"key": "new_one", "name": "New", "base": "open"})),
        ("PATCH", "/statuses/{key}") => Some(json!({"name": "Renamed"})),
        ("PUT", "/notification-templates/{kind}") => Some(json!({"subject": "s", "body": ""})),
        ("POST", "/notification-templates/{kind}/preview") => Some(json!({"subject": "s", "body": "b"})),
        ("PATCH", "/settings/notifications") => Some(json!({"welcome_email": false})),
        ("POST", "/tokens") => Some(json!({"name": "new"})),
        ("POST", "/custom-channels") => {
            Some(json!({"name": "New", "webhook_url": "https://example.com/hook", "type": "async"}))
        }
        ("PATCH", "/custom-channels/{id}") => Some(json!({"enabled": false})),
        ("POST", "/custom-channels/{id}/inbound") => Some(json!({"user_custom_id": "anon", "content": "hi"})),
        ("POST", "/custom-channels/{id}/secret" | "/custom-channels/{id}/deliveries/{delivery}/resend") => None,
        ("POST", "/email-channels") => {
            Some(json!({"name": "New box", "protocol": "imap", "host": "127.0.0.1", "port": 9,
            "tls": "none", "username": "u", "password": "p",
            "smtp": {"host": "127.0.0.1", "port": 9, "tls": "none", "from_address": "box@example.com"}}))
        }
        ("PATCH", "/email-channels/{id}") => Some(json!({"enabled": false})),
        ("POST", "/email-channels/{id}/check") => None,
        ("POST", "/mattermost-channels") => {
            Some(json!({"name": "New bot", "server_url": "http://127.0.0.1:9", "bot_token": "t"}))
        }
        ("PATCH", "/mattermost-channels/{id}") => Some(json!({"enabled": false})),
        ("POST", "/mattermost-channels/{id}/conversations") => {
            Some(json!({"to": {"kind": "member", "id": "abc"}, "content": "hi"}))
        }
        ("POST", "/zalo-channels") => Some(zalo_body()),
        ("PATCH", "/zalo-channels/{id}") => Some(json!({"enabled": false})),
        ("POST", "/zalo-channels/{id}/webhook") => Some(json!({"event_name": "user_send_text", "timestamp": "1"})),
        _ => return None,
    };
    Some(case(r.method.parse().unwrap(), path, body))
}

/// A Zalo OA to connect (`POST /api/v1/zalo-channels`); nothing answers at its URLs.
fn zalo_body() -> Value {
    json!({"name": "OA", "app_id": "1", "app_secret": "s", "oa_secret_key": "k", "access_token": "a",
           "refresh_token": "r", "api_base_url": "http://127.0.0.1:9", "oauth_base_url": "http://127.0.0.1:9"})
}

struct Ids {
    conversation: i64,
    conversation2: i64,
    customer: i64,
    customer2: i64,
    identity: i64,
    agent: i64,
    team: i64,
    channel: i64,
    token: i64,
    attachment: i64,
    delivery: i64,
}

#[tokio::test]
async fn every_api_route_needs_credentials() {
    let d = RoleDesk::new().await;
    let admin = &d.admin;
    let c1 = admin.inbound(d.ch, "anon-1", "first").await;
    let c2 = admin.inbound(d.ch, "anon-2", "second").await;
    let customer = admin.ok_get(&format!("/api/v1/conversations/{c1}")).await["customer_id"].as_i64().unwrap();
    let customer2 = admin.ok_get(&format!("/api/v1/conversations/{c2}")).await["customer_id"].as_i64().unwrap();
    let identity = admin
        .ok_post(
            &format!("/api/v1/customers/{customer}/identities"),
            json!({"kind": "phone", "value": "+48 123 456 789"}),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let ids = Ids {
        conversation: c1,
        conversation2: c2,
        customer,
        customer2,
        identity,
        agent: d.carol.agent_id,
        team: d.team,
        channel: d.ch,
        token: d.admin_token_id,
        attachment: upload(admin, "x.txt", b"secret").await,
        delivery: d.delivery,
    };
    // Zalo signs its webhook instead (401 `invalid_signature` without it: tests/zalo.rs).
    let public = [
        ("POST", "/auth/login"),
        ("GET", "/setup"),
        ("POST", "/setup"),
        ("POST", "/zalo-channels/{id}/webhook"),
        ("GET", "/invitations/{token}"),
        ("POST", "/invitations/{token}"),
    ];
    let before = d.snapshot().await;
    let customer_before = admin.ok_get(&format!("/api/v1/customers/{customer}")).await;
    let anonymous = d.srv.anonymous();
    let mut checked = 0;
    for r in api_routes() {
        if public.contains(&(r.method.as_str(), r.pattern.as_str())) {
            continue;
        }
        let c = sample_request(&r, &ids)
            .unwrap_or_else(|| panic!("route {} {} has no sample request", r.method, r.pattern));
        // No credentials, a made-up token, a malformed header, a made-up session cookie.
        let variants: [(&str, Option<(&str, &str)>); 5] = [
            ("no credentials", None),
            ("an unknown token", Some(("Authorization", "Bearer sbt_0123456789abcdef"))),
            ("an empty bearer", Some(("Authorization", "Bearer "))),
            ("a Basic header", Some(("Authorization", "Basic YWRtaW46cGFzcw=="))),
            ("an unknown session", Some(("Cookie", "sb_session=0123456789abcdef"))),
        ];
        for (how, header) in variants {
            let mut req = anonymous.request(c.method.clone(), &c.path);
            if let Some((name, value)) = header {
                req = req.header(name, value);
            }
            req = match (&c.body, r.pattern.as_str()) {
                (Some(b), _) => req.json(b),
                (None, "/attachments") => req.header("Content-Type", "text/plain").body("bytes"),
                (None, _) => req,
            };
            let resp = req.send().await.expect("request sent");
            let status = resp.status();
            let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null);
            expect_error(&(status, body), 401, "unauthorized", &format!("{c} with {how}"));
            checked += 1;
        }
    }
    assert!(checked >= 5 * 40, "checked {checked}");
    assert_unchanged(&before, &d.snapshot().await, "requests without credentials");
    assert_eq!(
        admin.ok_get(&format!("/api/v1/customers/{customer}")).await,
        customer_before,
        "the customer is unchanged"
    );

    // The public routes answer without credentials.
    assert_eq!(anonymous.ok_get("/api/v1/setup").await["needs_admin"], false);
    let (s, _) =
        anonymous.post("/api/v1/auth/login", json!({"email": "carol@example.com", "password": PASSWORD})).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_deactivated_agents_token_and_session_stop_working() {
    let srv = TestServer::start().await;
    let admin = srv.agent("admin@example.com", "admin").await;
    let dave = srv.agent("dave@example.com", "agent").await;
    let dave_web = srv.login("dave@example.com").await;
    let boss = srv.agent("boss@example.com", "admin").await;
    let boss_web = srv.login("boss@example.com").await;
    for (who, api) in
        [("dave token", &dave), ("dave session", &dave_web), ("boss token", &boss), ("boss session", &boss_web)]
    {
        assert_eq!(api.get("/api/v1/me").await.0, StatusCode::OK, "{who} works before");
    }
    for id in [dave.agent_id, boss.agent_id] {
        let (s, b) = admin.patch(&format!("/api/v1/agents/{id}"), json!({"active": false})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["active"], false);
    }
    let before_teams = admin.ok_get("/api/v1/teams").await;
    let before_tokens = without_last_used(admin.ok_get("/api/v1/tokens").await);
    for (who, api) in
        [("dave token", &dave), ("dave session", &dave_web), ("boss token", &boss), ("boss session", &boss_web)]
    {
        for c in [
            case(Method::GET, "/api/v1/me", None),
            case(Method::GET, "/api/v1/conversations", None),
            case(Method::POST, "/api/v1/tokens", Some(json!({"name": "again"}))),
            case(Method::POST, "/api/v1/teams", Some(json!({"name": "Ghost"}))),
            case(Method::POST, "/api/v1/auth/logout", None),
        ] {
            let got = send(api, &c).await;
            expect_error(&got, 401, "unauthorized", &format!("deactivated {who}: {c}"));
        }
    }
    assert_eq!(admin.ok_get("/api/v1/teams").await, before_teams);
    assert_eq!(without_last_used(admin.ok_get("/api/v1/tokens").await), before_tokens);
    for email in ["dave@example.com", "boss@example.com"] {
        let got = srv.anonymous().post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD})).await;
        expect_error(&got, 401, "invalid_credentials", &format!("{email} signs in"));
    }
}

// ---------------------------------------------------------------------------------------------
// The agent socket
// ---------------------------------------------------------------------------------------------

/// Whether a socket frame is about one of `hidden`, or carries B's text.
fn mentions(frame: &Value, hidden: &BTreeSet<i64>) -> bool {
    frame["conversation_id"].as_i64().is_some_and(|c| hidden.contains(&c))
        || frame.to_string().to_lowercase().contains("zebra")
}

#[tokio::test]
async fn the_socket_never_shows_or_takes_another_channels_conversation() {
    let d = Desk::new().await;
    // Upper bounds for frames to arrive, not pauses: every wait ends at the frame it waits for.
    let wait = Duration::from_secs(10);
    let hidden: BTreeSet<i64> = d.hidden().into_iter().collect();
    let token = |a: &Api| a.token.clone().expect("a token client");
    let mut admin_ws = WsClient::connect(&d.srv.base, &token(&d.admin), None).await;
    let mut alice_ws = WsClient::connect(&d.srv.base, &token(&d.alice), None).await;
    let start = alice_ws.cursor.clone().expect("a cursor in hello");

    // Viewing or typing in a hidden conversation answers exactly like a missing one.
    for id in d.hidden() {
        for frame in [
            json!({"type": "view", "conversation_id": id}),
            json!({"type": "typing", "conversation_id": id, "state": "start"}),
        ] {
            alice_ws.send(frame.clone()).await;
            let got = alice_ws.wait_for("an answer", wait, |f| f["type"] == "error").await;
            let mut missing = frame.clone();
            missing["conversation_id"] = json!(MISSING);
            alice_ws.send(missing).await;
            let absent = alice_ws.wait_for("an answer", wait, |f| f["type"] == "error").await;
            assert_eq!(got["error"], "not_found", "alice sends {frame}: {got}");
            assert_eq!(got, absent, "alice sends {frame}: must answer like a missing conversation");
        }
    }
    // Positive control, and the point after which the admin would have seen alice's markers on
    // B: her viewing A is announced.
    alice_ws.send(json!({"type": "view", "conversation_id": d.conv_a})).await;
    let seen = admin_ws
        .wait_for("alice viewing A", wait, |f| {
            f["type"] == "collision"
                && f["conversation_id"] == d.conv_a
                && f["viewing"].as_array().is_some_and(|v| v.iter().any(|w| w["agent_id"] == d.alice.agent_id))
        })
        .await;
    assert_eq!(seen["conversation_id"], d.conv_a);
    assert!(
        admin_ws.log.iter().all(|f| !(f["type"] == "collision" || f["type"] == "typing") || !mentions(f, &hidden)),
        "alice's frames about B were published: {:#?}",
        admin_ws.log
    );

    // Everything that happens in B, then one thing in A: alice gets A's, never B's.
    let b = format!("/api/v1/conversations/{}", d.conv_b);
    d.admin.ok_post(&format!("{b}/messages"), json!({"content": "zebra again"}), 201).await;
    d.admin.ok_post(&format!("{b}/notes"), json!({"content": "zebra note"}), 201).await;
    let (s, _) = d.admin.patch(&b, json!({"tags": ["zebra-2"], "status": "pending"})).await;
    assert_eq!(s, StatusCode::OK);
    let chat = format!("/api/v1/conversations/{}", d.conv_b_chat);
    d.admin.ok_post(&format!("{chat}/messages"), json!({"content": "zebra chat"}), 201).await;
    d.admin.ok_post(&format!("{chat}/end"), json!({}), 200).await;
    d.admin.inbound(d.ch_b, "pat-b", "zebra new conversation").await;
    let marker = d
        .admin
        .ok_post(&format!("/api/v1/conversations/{}/messages", d.conv_a), json!({"content": "apple marker"}), 201)
        .await["message_id"]
        .as_i64()
        .unwrap();
    alice_ws
        .wait_for("A's new message", wait, |f| f["type"] == "message.created" && f["message"]["id"] == marker)
        .await;
    assert!(
        alice_ws.log.iter().all(|f| !mentions(f, &hidden)),
        "alice's socket carried B's conversations: {:#?}",
        alice_ws.log
    );
    // The admin did get B's events (so the check above is not empty).
    admin_ws.wait_for("B's events", wait, |f| f["type"] == "message.created" && f["message"]["id"] == marker).await;
    assert!(admin_ws.log.iter().any(|f| mentions(f, &hidden)), "{:#?}", admin_ws.log);

    // Resuming from before all of it replays A's message and nothing of B's.
    let mut again = WsClient::connect(&d.srv.base, &token(&d.alice), Some(&start)).await;
    again
        .wait_for("A's message, replayed", wait, |f| f["type"] == "message.created" && f["message"]["id"] == marker)
        .await;
    assert!(again.log.iter().all(|f| !mentions(f, &hidden)), "the replay carried B's conversations: {:#?}", again.log);
    again.close().await;
    alice_ws.close().await;
    admin_ws.close().await;
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI document's error answers (#13) against the same route facts
// ---------------------------------------------------------------------------------------------

/// Every `/api/v1` route's operation lists the 4xx the tests above show it gives: 401 where
/// credentials are needed, 403 for each admin route (and every state-changing one: CSRF), 404
/// where the path names a row, 400 and 413 where it takes a body; and no 403 on a read any agent
/// may make. `ADMIN_ONLY` in `src/http/openapi.rs` names exactly the handlers with `Admin`.
#[test]
fn the_openapi_document_lists_each_routes_error_answers() {
    let doc: Value = serde_json::from_str(&switchboard::http::openapi::document_json()).unwrap();
    // Zalo signs its webhook instead (401 `invalid_signature` without it: tests/zalo.rs).
    let public = [
        ("POST", "/auth/login"),
        ("GET", "/setup"),
        ("POST", "/setup"),
        ("POST", "/zalo-channels/{id}/webhook"),
        ("GET", "/invitations/{token}"),
        ("POST", "/invitations/{token}"),
    ];
    let mut admin_ids = BTreeSet::new();
    let mut checked = 0;
    for r in api_routes() {
        if r.pattern == "/ws" {
            continue; // the socket upgrade is described in docs/realtime.md, not in the document
        }
        let what = format!("{} {} ({})", r.method, r.pattern, r.handler);
        let op = &doc["paths"][format!("/api/v1{}", r.pattern)][r.method.to_lowercase()];
        assert!(op.is_object(), "{what} is not in the OpenAPI document");
        let lists = |status: u16| {
            let resp = &op["responses"][status.to_string()];
            if resp.is_null() {
                return false;
            }
            let schema = &resp["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(schema, "#/components/schemas/ErrorBody", "{what}: {status} has the error body");
            true
        };
        let admin = handler_requires_admin(&r.handler);
        if admin {
            admin_ids.insert(op["operationId"].as_str().unwrap().to_owned());
        }
        let authenticated = !public.contains(&(r.method.as_str(), r.pattern.as_str()));
        // Sign-in answers 401 for a wrong password, Zalo's webhook for a wrong signature.
        let signed = r.pattern == "/auth/login" || r.pattern == "/zalo-channels/{id}/webhook";
        assert_eq!(lists(401), authenticated || signed, "{what}: 401");
        let changes = r.method != "GET";
        assert_eq!(lists(403), admin || (authenticated && changes), "{what}: 403");
        assert_eq!(lists(404), r.pattern.contains('{'), "{what}: 404");
        if !op["requestBody"].is_null() {
            assert!(lists(400) && lists(413), "{what}: a body can be malformed or too large");
        }
        if r.pattern.contains('{') || !op["parameters"].is_null() {
            assert!(lists(400), "{what}: a path or query can be malformed");
        }
        checked += 1;
    }
    assert!(checked >= 40, "checked {checked}");
    let listed: BTreeSet<String> = switchboard::http::openapi::ADMIN_ONLY.iter().map(|s| s.to_string()).collect();
    assert_eq!(listed, admin_ids, "ADMIN_ONLY names exactly the operations whose handler takes `Admin`");
    assert!(doc["paths"]["/api/v1/auth/login"]["post"]["responses"]["429"].is_object(), "sign-in is throttled");
}

/// CC-11: only a super admin connects, changes or removes channels, of every kind; a plain admin gets 403 on each
/// such route (`openapi::SUPER_ADMIN_ONLY`) and nothing changes.
#[tokio::test]
async fn cc_11_a_plain_admin_cannot_connect_change_or_remove_channels() {
    let srv = TestServer::start().await;
    let root = srv.agent("root@example.com", "super_admin").await;
    let admin = srv.agent("admin@example.com", "admin").await;
    let ch = root.channel("custom", "Shop", Some("async")).await;
    let cases = vec![
        case(Method::POST, "/api/v1/channels", Some(json!({"kind": "custom", "name": "X", "mode": "async"}))),
        case(Method::PATCH, format!("/api/v1/channels/{ch}"), Some(json!({"name": "X"}))),
        case(Method::DELETE, format!("/api/v1/channels/{ch}"), None),
        case(
            Method::POST,
            "/api/v1/custom-channels",
            Some(json!({"name": "X", "webhook_url": "https://example.com/hook", "type": "async"})),
        ),
        case(Method::PATCH, format!("/api/v1/custom-channels/{ch}"), Some(json!({"name": "X"}))),
        case(Method::POST, format!("/api/v1/custom-channels/{ch}/secret"), None),
        case(Method::DELETE, format!("/api/v1/custom-channels/{ch}"), None),
        case(
            Method::POST,
            "/api/v1/email-channels",
            Some(json!({"name": "Box", "protocol": "imap", "host": "127.0.0.1", "port": 9, "tls": "none",
                "username": "u", "password": "p", "smtp": {"host": "127.0.0.1", "port": 9, "tls": "none",
                "from_address": "box@example.com"}})),
        ),
        case(Method::PATCH, format!("/api/v1/email-channels/{ch}"), Some(json!({"name": "X"}))),
        case(Method::DELETE, format!("/api/v1/email-channels/{ch}"), None),
        case(
            Method::POST,
            "/api/v1/mattermost-channels",
            Some(json!({"name": "X", "server_url": "http://127.0.0.1:9", "bot_token": "t"})),
        ),
        case(Method::PATCH, format!("/api/v1/mattermost-channels/{ch}"), Some(json!({"name": "X"}))),
        case(Method::DELETE, format!("/api/v1/mattermost-channels/{ch}"), None),
        case(Method::POST, "/api/v1/zalo-channels", Some(zalo_body())),
        case(Method::PATCH, format!("/api/v1/zalo-channels/{ch}"), Some(json!({"name": "X"}))),
        case(Method::DELETE, format!("/api/v1/zalo-channels/{ch}"), None),
    ];
    assert_eq!(cases.len(), switchboard::http::openapi::SUPER_ADMIN_ONLY.len(), "one case per super-admin route");
    let before = root.ok_get("/api/v1/channels").await;
    for c in &cases {
        expect_error(&send(&admin, c).await, 403, "forbidden", &format!("admin {c}"));
    }
    assert_eq!(root.ok_get("/api/v1/channels").await, before, "nothing changed");
}
