//! The Zalo OA channel (issue #16) against the fake Zalo of `tests/common/fake_zalo.rs`: the server runs its real
//! network code (webhook in, OA API and OAuth out, media fetched over loopback), and the tests wait on what is
//! observable — the help desk's API and agent socket, the stored events, the fake's record of what the OA sent —
//! within bounded deadlines.

mod common;

use std::time::{Duration, Instant};

use common::fake_zalo::FakeZalo;
use common::ws::WsClient;
use common::{Api, TestServer, assert_error};
use serde_json::{Value, json};
use switchboard::store;

const WAIT: Duration = Duration::from_secs(20);
const PUBLIC: &str = "http://desk.example.test";

struct Desk {
    srv: TestServer,
    boss: Api,
    zalo: FakeZalo,
    id: i64,
    /// The webhook as Zalo posts to it.
    hook: String,
    access: String,
    refresh: String,
}

fn connect_body(zalo: &FakeZalo, access: &str, refresh: &str, expires_in: Option<i64>) -> Value {
    let mut body = json!({"name": "Zalo OA", "app_id": zalo.app_id, "app_secret": zalo.app_secret,
        "oa_secret_key": zalo.oa_secret_key, "access_token": access, "refresh_token": refresh,
        "api_base_url": zalo.url, "oauth_base_url": zalo.url, "inactivity_timeout_s": 3600});
    if let Some(e) = expires_in {
        body["access_token_expires_in"] = json!(e);
    }
    body
}

/// A server with a super admin and an OA connected on a fake Zalo; `expires_in`: what the admin says of the access
/// token (`None`: unknown, so it is refreshed at once).
async fn desk(expires_in: Option<i64>) -> Desk {
    let zalo = FakeZalo::start().await;
    let srv = TestServer::start_with(|raw| raw.public_url = Some(PUBLIC.into())).await;
    let boss = srv.agent("boss@example.com", "super_admin").await;
    let (access, refresh) = zalo.issue_tokens();
    let made = boss.ok_post("/api/v1/zalo-channels", connect_body(&zalo, &access, &refresh, expires_in), 201).await;
    let id = made["id"].as_i64().unwrap();
    let hook = format!("{}/api/v1/zalo-channels/{id}/webhook", srv.base);
    Desk { srv, boss, zalo, id, hook, access, refresh }
}

impl Desk {
    async fn stop(self) {
        self.srv.stop().await;
        self.zalo.stop().await;
    }

    /// Post a signed event; it must be answered 200.
    async fn send(&self, body: &str) -> Value {
        let (status, answer) = self.zalo.post(&self.hook, body, None).await;
        assert_eq!(status, 200, "webhook answered {status}: {answer}");
        answer
    }
}

/// The OA's conversations (active chats included), oldest first.
async fn conversations(api: &Api, channel: i64) -> Vec<Value> {
    let list =
        api.ok_get(&format!("/api/v1/conversations?channel={channel}&show_active_chats=true&per_page=100")).await;
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|c| c["id"].as_i64());
    items
}

async fn messages(api: &Api, conversation: i64) -> Vec<Value> {
    api.ok_get(&format!("/api/v1/conversations/{conversation}/messages?limit=200")).await.as_array().cloned().unwrap()
}

/// Every message of the OA's conversations, once at least `n` are stored.
async fn wait_messages(api: &Api, channel: i64, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut all = Vec::new();
        for c in conversations(api, channel).await {
            all.extend(messages(api, c["id"].as_i64().unwrap()).await);
        }
        if all.len() >= n {
            return all;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} of {n} messages stored: {all:#?}", all.len());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// The message with this Zalo id.
async fn by_zalo_id(api: &Api, channel: i64, msg_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        for c in conversations(api, channel).await {
            if let Some(m) =
                messages(api, c["id"].as_i64().unwrap()).await.into_iter().find(|m| m["external_message_id"] == msg_id)
            {
                return m;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "message {msg_id} not stored");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn wait_view(api: &Api, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let view = api.ok_get(&format!("/api/v1/zalo-channels/{id}")).await;
        if done(&view) {
            return view;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {view}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// The events stored for the channel.
async fn stored_events(srv: &TestServer, channel: i64) -> Vec<store::models::ZaloEvent> {
    store::zalo::events_of(srv.store(), channel).await.unwrap()
}

async fn wait_processed(srv: &TestServer, channel: i64) {
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    loop {
        let pending = store::zalo::pending_count(srv.store(), channel).await.unwrap();
        if pending == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{pending} events still unprocessed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn image_event(z: &FakeZalo, kind: &str, user: &str, msg_id: &str, url: &str, text: &str) -> String {
    z.user_event(
        kind,
        user,
        json!({"msg_id": msg_id, "text": text, "attachments": [{"type": kind, "payload": {"thumbnail": url, "url": url, "id": "s1"}}]}),
    )
}

fn file_event(z: &FakeZalo, kind: &str, user: &str, msg_id: &str, url: &str, name: &str) -> String {
    z.user_event(
        kind,
        user,
        json!({"msg_id": msg_id, "attachments": [{"type": kind, "payload": {"url": url, "name": name, "size": "4", "checksum": "x", "type": "pdf"}}]}),
    )
}

async fn upload(api: &Api, name: &str, mime: &str, bytes: &[u8]) -> i64 {
    let resp = api
        .request(reqwest::Method::POST, &format!("/api/v1/attachments?file_name={name}"))
        .header("Content-Type", mime)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn download(api: &Api, url: &str) -> Vec<u8> {
    let resp = api.request(reqwest::Method::GET, url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    resp.bytes().await.unwrap().to_vec()
}

// ---------------------------------------------------------------------------------------------------------------
// ZL-1, ZL-2, CC-11: connecting
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn zl_1_zl_2_cc_11_a_super_admin_connects_and_no_secret_or_token_ever_comes_back() {
    let zalo = FakeZalo::start().await;
    let srv = TestServer::start_with(|raw| raw.public_url = Some(PUBLIC.into())).await;
    let boss = srv.agent("boss@example.com", "super_admin").await;
    let admin = srv.agent("admin@example.com", "admin").await;
    let (access, refresh) = zalo.issue_tokens();
    let body = connect_body(&zalo, &access, &refresh, Some(90_000));
    let secrets = [zalo.app_secret.as_str(), zalo.oa_secret_key.as_str(), access.as_str(), refresh.as_str()];
    let shows_a_secret = |v: &Value| secrets.iter().any(|s| v.to_string().contains(s));

    // CC-11: a plain admin may not connect, change or remove one.
    assert_error(&admin.post("/api/v1/zalo-channels", body.clone()).await, 403, "forbidden");
    // Malformed input: refused, nothing stored.
    let mut bad = body.clone();
    bad["api_base_url"] = json!("ftp://zalo");
    assert_error(&boss.post("/api/v1/zalo-channels", bad).await, 400, "validation_failed");
    assert_eq!(boss.ok_get("/api/v1/zalo-channels").await, json!([]));

    let made = boss.ok_post("/api/v1/zalo-channels", body, 201).await;
    let id = made["id"].as_i64().unwrap();
    assert_eq!(made["webhook_url"], format!("{PUBLIC}/api/v1/zalo-channels/{id}/webhook"), "ZL-2");
    assert_eq!(made["app_id"], zalo.app_id);
    assert_eq!(made["state"], "connected");
    assert!(!shows_a_secret(&made), "no secret or token in {made}");
    assert!(made["access_token_expires_at"].is_string());
    let view = boss.ok_get(&format!("/api/v1/zalo-channels/{id}")).await;
    assert!(!shows_a_secret(&view), "{view}");
    assert!(!shows_a_secret(&boss.ok_get("/api/v1/zalo-channels").await));
    assert!(!shows_a_secret(&boss.ok_get(&format!("/api/v1/channels/{id}")).await), "nor through /channels");
    // A plain admin reads it (like every channel it may work in) but does not change it.
    assert!(!shows_a_secret(&admin.ok_get(&format!("/api/v1/zalo-channels/{id}")).await));
    assert_error(&admin.patch(&format!("/api/v1/zalo-channels/{id}"), json!({"name": "x"})).await, 403, "forbidden");
    assert_error(&admin.delete(&format!("/api/v1/zalo-channels/{id}")).await, 403, "forbidden");
    // Secrets are sealed at rest: the stored row does not hold them.
    let row = store::channels::list(srv.store(), &switchboard::domain::ChannelScope::All, None).await.unwrap();
    assert_eq!(row.len(), 1);

    // ZL-2: the domain-verification file, served at the root of the public URL.
    let edited = boss
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/zalo-channels/{id}"),
            Some(json!({"name": "Support OA", "domain_verification": {"file_name": "zalo_verifierAbC-123.html"}})),
        )
        .await;
    assert_eq!(edited.0.as_u16(), 200, "{}", edited.1);
    assert_eq!(edited.1["name"], "Support OA");
    assert_eq!(edited.1["domain_verification"]["url"], format!("{PUBLIC}/zalo_verifierAbC-123.html"));
    let file = reqwest::get(format!("{}/zalo_verifierAbC-123.html", srv.base)).await.unwrap();
    assert_eq!(file.status().as_u16(), 200);
    assert!(file.text().await.unwrap().contains(r#"content="AbC-123""#));
    assert_eq!(reqwest::get(format!("{}/zalo_verifierNope.html", srv.base)).await.unwrap().status().as_u16(), 404);
    // The generic channel API does not take Zalo settings (they would skip these checks).
    assert_error(
        &boss.post("/api/v1/channels", json!({"kind": "zalo", "name": "x", "settings": {"app_id": "1"}})).await,
        400,
        "validation_failed",
    );
    // Tokens come in pairs.
    assert_error(
        &boss.patch(&format!("/api/v1/zalo-channels/{id}"), json!({"access_token": "only-one"})).await,
        400,
        "validation_failed",
    );
    let (status, _) = boss.delete(&format!("/api/v1/zalo-channels/{id}")).await;
    assert_eq!(status.as_u16(), 204);
    assert_eq!(boss.ok_get("/api/v1/zalo-channels").await, json!([]));
    srv.stop().await;
    zalo.stop().await;
}

/// #13 item 5 for this connector: without SWITCHBOARD_ALLOWED_INTERNAL_HOSTS an OA's Zalo URLs cannot point inside.
#[tokio::test]
async fn zalo_urls_to_internal_addresses_are_refused_unless_allowed() {
    let zalo = FakeZalo::start().await;
    let srv = TestServer::start_with(|raw| raw.allowed_internal_hosts = None).await;
    let boss = srv.agent("boss@example.com", "super_admin").await;
    let (access, refresh) = zalo.issue_tokens();
    for url in ["http://127.0.0.1:9", "http://localhost:9", "http://169.254.169.254", "http://2130706433"] {
        let mut body = connect_body(&zalo, &access, &refresh, Some(90_000));
        body["api_base_url"] = json!(url);
        assert_error(&boss.post("/api/v1/zalo-channels", body).await, 422, "zalo_url_refused");
        let mut body = connect_body(&zalo, &access, &refresh, Some(90_000));
        body["api_base_url"] = json!("https://openapi.zalo.me");
        body["oauth_base_url"] = json!(url);
        assert_error(&boss.post("/api/v1/zalo-channels", body).await, 422, "zalo_url_refused");
    }
    assert_eq!(boss.ok_get("/api/v1/zalo-channels").await, json!([]), "nothing stored");
    srv.stop().await;
    zalo.stop().await;
}

// ---------------------------------------------------------------------------------------------------------------
// ZL-3: the webhook
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn zl_3_a_bad_or_missing_signature_is_401_and_stores_nothing() {
    let d = desk(Some(90_000)).await;
    let body = d.zalo.text("246845883529197922", "m-bad-1", "hello");
    let good = d.zalo.sign(&body);
    let bare = good.trim_start_matches("mac=").to_owned();
    let wrong_key = format!(
        "mac={}",
        common::fake_zalo::signature(
            &d.zalo.app_id,
            &body,
            serde_json::from_str::<Value>(&body).unwrap()["timestamp"].as_str().unwrap(),
            &d.zalo.app_secret
        )
    );
    let tampered = body.replace("hello", "HELLO");
    for (what, payload, sig) in [
        ("no header", body.as_str(), None),
        ("empty", body.as_str(), Some("")),
        ("garbage", body.as_str(), Some("mac=deadbeef")),
        ("signed with the app secret, not the OA secret key", body.as_str(), Some(wrong_key.as_str())),
        ("another body", tampered.as_str(), Some(good.as_str())),
        ("another body, no mac=", tampered.as_str(), Some(bare.as_str())),
        ("not JSON", "nope", Some(good.as_str())),
    ] {
        let (status, answer) = d.zalo.post_raw(&d.hook, payload, sig, None).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!(answer["error"], "invalid_signature", "{what}");
    }
    assert!(stored_events(&d.srv, d.id).await.is_empty(), "nothing stored");
    // With and without `mac=`, a good signature is taken.
    assert_eq!(d.zalo.post_raw(&d.hook, &body, Some(&bare), None).await.0, 200);
    let other = d.zalo.text("246845883529197922", "m-bad-2", "again");
    assert_eq!(d.zalo.post(&d.hook, &other, None).await.0, 200);
    assert_eq!(stored_events(&d.srv, d.id).await.len(), 2);
    // An id that is no Zalo channel: 404; a disabled channel: 401, nothing stored.
    let (status, _) = d.zalo.post(&format!("{}/api/v1/zalo-channels/999999/webhook", d.srv.base), &body, None).await;
    assert_eq!(status, 404);
    let (s, b) = d.boss.patch(&format!("/api/v1/zalo-channels/{}", d.id), json!({"enabled": false})).await;
    assert_eq!(s.as_u16(), 200, "{b}");
    let third = d.zalo.text("246845883529197922", "m-bad-3", "disabled");
    assert_eq!(d.zalo.post(&d.hook, &third, None).await.0, 401);
    assert_eq!(stored_events(&d.srv, d.id).await.len(), 2);
    d.stop().await;
}

#[tokio::test]
async fn zl_3_the_same_event_delivered_five_times_makes_one_message() {
    let d = desk(Some(90_000)).await;
    let body = d.zalo.text("1001", "m-dup", "only once please");
    for retry in 0..5u32 {
        let (status, answer) = d.zalo.post(&d.hook, &body, (retry > 0).then_some(retry)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["duplicate"], retry > 0, "{answer}");
    }
    // Zalo's own retry schedule, compressed: the first attempt is answered, so it is not retried.
    let statuses = d.zalo.deliver(&d.hook, &body, 600).await;
    assert_eq!(statuses, vec![200]);
    assert_eq!(stored_events(&d.srv, d.id).await.len(), 1, "stored once");
    wait_processed(&d.srv, d.id).await;
    let all = wait_messages(&d.boss, d.id, 1).await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["content"], "only once please");
    d.stop().await;
}

/// The issue's load figure: 2,000 events in a burst (64 at a time), every answer 200 within 2 s, each stored once,
/// then every one processed, in order per user.
#[tokio::test]
async fn zl_3_two_thousand_events_in_a_burst_are_answered_within_two_seconds_and_stored_once() {
    let d = desk(Some(90_000)).await;
    const USERS: usize = 50;
    const EACH: usize = 40;
    let mut bodies = Vec::new();
    for i in 0..EACH {
        for u in 0..USERS {
            bodies.push(d.zalo.text(&format!("9{u:04}"), &format!("burst-{u}-{i}"), &format!("{i}")));
        }
    }
    let hook = d.hook.clone();
    let zalo = &d.zalo;
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures_util::stream::iter(bodies.iter())
        .map(|body| {
            let hook = hook.clone();
            async move {
                let t = Instant::now();
                let (status, answer) = zalo.post(&hook, body, None).await;
                assert_eq!(status, 200, "{answer}");
                t.elapsed()
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let total = started.elapsed();
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    let max = *latencies.last().unwrap();
    eprintln!("zalo webhook burst: {} events in {total:?}; ack p50 {p50:?} p99 {p99:?} max {max:?}", bodies.len());
    assert!(max < Duration::from_secs(2), "every answer within Zalo's 2 s: max {max:?}");
    let events = stored_events(&d.srv, d.id).await;
    assert_eq!(events.len(), USERS * EACH, "every event stored once");
    // Processed: every message, each user's in the order their events were stored (concurrent requests of one
    // user may arrive in any order; the order of arrival is the order kept).
    wait_processed(&d.srv, d.id).await;
    let convs = conversations(&d.boss, d.id).await;
    assert_eq!(convs.len(), USERS, "one chat per Zalo user");
    for c in convs {
        let got: Vec<String> = messages(&d.boss, c["id"].as_i64().unwrap())
            .await
            .iter()
            .map(|m| m["external_message_id"].as_str().unwrap().to_owned())
            .collect();
        let user = got[0].split('-').nth(1).unwrap().to_owned();
        let stored: Vec<String> = events
            .iter()
            .filter(|e| e.dedupe_key.starts_with(&format!("user_send_text:burst-{user}-")))
            .map(|e| e.dedupe_key.trim_start_matches("user_send_text:").to_owned())
            .collect();
        assert_eq!(got.len(), EACH, "conversation {}", c["id"]);
        assert_eq!(got, stored, "conversation {}: in the order stored", c["id"]);
    }
    d.stop().await;
}

use futures_util::StreamExt;

// ---------------------------------------------------------------------------------------------------------------
// ZL-4, ZL-5, CORE-9: every event kind
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn zl_4_every_message_kind_is_shown_as_it_should() {
    let d = desk(Some(90_000)).await;
    let z = &d.zalo;
    let user = "246845883529197922";
    let jpg = z.media("photo.jpg", "image/jpeg", b"\xff\xd8\xff jpeg bytes");
    let gif = z.media("funny.gif", "image/gif", b"GIF89a gif bytes");
    let sticker = z.media("sticker.png", "image/png", b"\x89PNG sticker");
    let pdf = z.media("a.pdf", "application/pdf", b"%PDF");
    let mp3 = z.media("voice.mp3", "audio/mpeg", b"ID3 audio");
    let mp4 = z.media("clip.mp4", "video/mp4", b"video bytes");
    let events = [
        z.text(user, "k-text", "Xin chào"),
        image_event(z, "image", user, "k-image", &jpg, "my broken phone"),
        image_event(z, "gif", user, "k-gif", &gif, ""),
        image_event(z, "sticker", user, "k-sticker", &sticker, ""),
        file_event(z, "file", user, "k-file", &pdf, "a.pdf"),
        file_event(z, "audio", user, "k-audio", &mp3, "voice.mp3"),
        file_event(z, "video", user, "k-video", &mp4, "clip.mp4"),
        z.user_event(
            "link",
            user,
            json!({"msg_id": "k-link", "text": "look", "attachments": [{"type": "link", "payload": {"url": "https://shop.example/p/1", "title": "The product", "thumbnail": "https://shop.example/t.jpg"}}]}),
        ),
        z.user_event(
            "location",
            user,
            json!({"msg_id": "k-location", "attachments": [{"type": "location", "payload": {"coordinates": {"latitude": "10.7769", "longitude": "106.7009"}}}]}),
        ),
        z.user_event(
            "business_card",
            user,
            json!({"msg_id": "k-card", "attachments": [{"type": "link", "payload": {"title": "Nguyen Van A", "description": "{\"phone\":\"0901234567\"}", "url": "https://zalo.me/0901234567"}}]}),
        ),
        z.user_event("text", user, json!({"msg_id": "k-quote", "text": "about that photo", "quote_msg_id": "k-image"})),
    ];
    for e in &events {
        d.send(e).await;
    }
    let all = wait_messages(&d.boss, d.id, events.len()).await;
    assert_eq!(all.len(), events.len());
    let convs = conversations(&d.boss, d.id).await;
    assert_eq!(convs.len(), 1, "ZL-5: one chat for the user");
    assert_eq!(convs[0]["mode"], "sync");
    assert_eq!(convs[0]["active_chat"], true);
    assert_eq!(convs[0]["channel_kind"], "zalo");
    assert!(convs[0]["customer_name"].as_str().unwrap().starts_with("Zalo user …7922"), "{}", convs[0]);
    let m = |id: &str| all.iter().find(|m| m["external_message_id"] == id).cloned().unwrap_or_else(|| panic!("{id}"));
    let seqs: Vec<i64> = events.iter().enumerate().map(|(i, _)| all[i]["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>(), "in the order sent");
    assert_eq!(m("k-text")["content"], "Xin chào");
    assert_eq!(m("k-text")["direction"], "in");
    // Images, GIFs and stickers: inline images fetched into the attachment store.
    for (id, mime, bytes) in [
        ("k-image", "image/jpeg", &b"\xff\xd8\xff jpeg bytes"[..]),
        ("k-gif", "image/gif", b"GIF89a gif bytes"),
        ("k-sticker", "image/png", b"\x89PNG sticker"),
    ] {
        let msg = m(id);
        let files = msg["attachments"].as_array().unwrap();
        assert_eq!(files.len(), 1, "{msg}");
        assert_eq!(files[0]["mime_type"], mime, "{id}");
        assert_eq!(download(&d.boss, files[0]["url"].as_str().unwrap()).await, bytes, "{id}");
    }
    assert_eq!(m("k-image")["content"], "my broken phone");
    assert_eq!(m("k-sticker")["content"], "(sticker)");
    // Files, audio and video: downloadable under their names.
    for (id, name, mime) in [
        ("k-file", "a.pdf", "application/pdf"),
        ("k-audio", "voice.mp3", "audio/mpeg"),
        ("k-video", "clip.mp4", "video/mp4"),
    ] {
        let msg = m(id);
        assert_eq!(msg["attachments"][0]["file_name"], name, "{msg}");
        assert_eq!(msg["attachments"][0]["mime_type"], mime, "{msg}");
    }
    assert_eq!(m("k-link")["content"], "look\nThe product\nhttps://shop.example/p/1");
    let location = m("k-location");
    assert!(
        location["content"].as_str().unwrap().contains("https://www.google.com/maps?q=10.7769,106.7009"),
        "{location}"
    );
    assert!(
        location["content_html"].as_str().unwrap().contains("href=\"https://www.google.com/maps?q=10.7769,106.7009\"")
    );
    let card = m("k-card")["content"].as_str().unwrap().to_owned();
    assert!(card.contains("Contact card") && card.contains("Nguyen Van A") && card.contains("0901234567"), "{card}");
    assert_eq!(m("k-quote")["quoted_message_id"], m("k-image")["id"], "CORE-9: the quote");
    // user_id_by_app is kept on the customer.
    let customer = d.boss.ok_get(&format!("/api/v1/customers/{}", convs[0]["customer_id"])).await;
    assert_eq!(customer["custom_fields"]["zalo_user_id_by_app"], format!("app{user}"), "{customer}");
    d.stop().await;
}

#[tokio::test]
async fn zl_4_anonymous_users_are_their_own_customers_and_get_replies() {
    let d = desk(Some(90_000)).await;
    let z = &d.zalo;
    let jpg = z.media("anon.jpg", "image/jpeg", b"anon image");
    for body in [
        z.event("anonymous_send_text", json!({"sender": {"id": "anon77"}, "recipient": {"id": z.oa_id},
            "message": {"msg_id": "a-1", "text": "who am I", "conversation_id": "conv9"}})),
        z.event("anonymous_send_image", json!({"sender": {"id": "anon77"}, "recipient": {"id": z.oa_id},
            "message": {"msg_id": "a-2", "conversation_id": "conv9", "attachments": [{"type": "image", "payload": {"url": jpg}}]}})),
    ] {
        d.send(&body).await;
    }
    let all = wait_messages(&d.boss, d.id, 2).await;
    assert_eq!(all[1]["attachments"].as_array().unwrap().len(), 1);
    let conv = &conversations(&d.boss, d.id).await[0];
    assert!(conv["customer_name"].as_str().unwrap().starts_with("Anonymous Zalo user"), "{conv}");
    let conv_id = conv["id"].as_i64().unwrap();
    d.boss
        .ok_post(&format!("/api/v1/conversations/{conv_id}/messages"), json!({"content": "you are welcome"}), 201)
        .await;
    let sent = z.wait_sent(1, WAIT).await;
    assert_eq!(sent[0].body["recipient"], json!({"anonymous_id": "anon77", "conversation_id": "conv9"}));
    d.stop().await;
}

#[tokio::test]
async fn zl_4_oa_messages_sent_outside_are_recorded_and_echoes_of_ours_are_skipped() {
    let d = desk(Some(90_000)).await;
    let z = &d.zalo;
    let user = "5005";
    d.send(&z.text(user, "o-1", "hi")).await;
    let conv = by_zalo_id(&d.boss, d.id, "o-1").await["conversation_id"].as_i64().unwrap();
    // Our reply goes out; Zalo then posts its echo (oa_send_text with the message_id it gave).
    d.boss.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "from the desk"}), 201).await;
    let sent = z.wait_sent(1, WAIT).await;
    let echo = z.event(
        "oa_send_text",
        json!({"sender": {"id": z.oa_id}, "recipient": {"id": user},
        "message": {"msg_id": sent[0].message_id, "text": "from the desk"}}),
    );
    d.send(&echo).await;
    // A message the OA's staff sent from Zalo's own app: recorded as the business's.
    let outside = z.event(
        "oa_send_text",
        json!({"sender": {"id": z.oa_id, "admin_id": "adm1"}, "recipient": {"id": user},
        "message": {"msg_id": "o-outside", "text": "sent from the Zalo app"}}),
    );
    d.send(&outside).await;
    d.send(&z.text(user, "o-2", "thanks")).await;
    by_zalo_id(&d.boss, d.id, "o-2").await;
    wait_processed(&d.srv, d.id).await;
    let all = messages(&d.boss, conv).await;
    let texts: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|m| (m["direction"].as_str().unwrap(), m["source"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(
        texts,
        vec![
            ("in", "channel", "hi"),
            ("out", "api", "from the desk"),
            ("out", "channel", "sent from the Zalo app"),
            ("in", "channel", "thanks")
        ],
        "the echo is skipped, the outside message kept"
    );
    assert_eq!(all[1]["external_message_id"], sent[0].message_id, "our reply carries Zalo's message_id");
    assert_eq!(z.sent().len(), 1, "the outside message is not sent again");
    d.stop().await;
}

#[tokio::test]
async fn zl_4_receipts_mark_our_messages_delivered_then_read_live() {
    let d = desk(Some(90_000)).await;
    let z = &d.zalo;
    let user = "6006";
    d.send(&z.text(user, "r-1", "hello?")).await;
    let conv = by_zalo_id(&d.boss, d.id, "r-1").await["conversation_id"].as_i64().unwrap();
    let mut ws = WsClient::connect(&d.srv.base, d.boss.token.as_deref().unwrap(), None).await;
    let reply =
        d.boss.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "we are here"}), 201).await;
    let reply_id = reply["message_id"].as_i64().unwrap();
    assert_eq!(reply["message"]["delivery"]["state"], "pending", "{reply}");
    let sent = z.wait_sent(1, WAIT).await;
    let is_update = |state: &'static str| {
        move |f: &Value| {
            f["type"] == "message.updated"
                && f["message"]["id"] == reply_id
                && f["message"]["delivery"]["state"] == state
        }
    };
    let frame = ws.wait_for("sent", WAIT, is_update("sent")).await;
    assert!(frame["seq"].is_null() && frame["conversation"]["id"] == conv, "{frame}");
    d.send(&z.event(
        "user_received_message",
        json!({"sender": {"id": user}, "recipient": {"id": z.oa_id},
        "message": {"msg_id": sent[0].message_id}}),
    ))
    .await;
    ws.wait_for("delivered", WAIT, is_update("delivered")).await;
    d.send(&z.event(
        "user_seen_message",
        json!({"sender": {"id": user}, "recipient": {"id": z.oa_id},
        "message": {"msg_ids": [sent[0].message_id]}}),
    ))
    .await;
    ws.wait_for("read", WAIT, is_update("read")).await;
    // A late delivery receipt does not lower the mark; the REST view agrees.
    d.send(&z.event(
        "user_received_message",
        json!({"sender": {"id": user}, "recipient": {"id": z.oa_id},
        "message": {"msg_id": sent[0].message_id}, "timestamp": "1"}),
    ))
    .await;
    wait_processed(&d.srv, d.id).await;
    let mine = messages(&d.boss, conv).await.into_iter().find(|m| m["id"] == reply_id).unwrap();
    assert_eq!(mine["delivery"]["state"], "read", "{mine}");
    let inbound = messages(&d.boss, conv).await.into_iter().find(|m| m["direction"] == "in").unwrap();
    assert!(inbound["delivery"].is_null(), "customer messages have no delivery state");
    // The seed's name for a read receipt is taken too.
    d.boss.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "second"}), 201).await;
    let sent = z.wait_sent(2, WAIT).await;
    d.send(&z.event(
        "user_read_message",
        json!({"sender": {"id": user}, "recipient": {"id": z.oa_id},
        "message": {"msg_id": sent[1].message_id}}),
    ))
    .await;
    ws.wait_for("read (user_read_message)", WAIT, |f| {
        f["type"] == "message.updated"
            && f["message"]["content"] == "second"
            && f["message"]["delivery"]["state"] == "read"
    })
    .await;
    ws.close().await;
    d.stop().await;
}

#[tokio::test]
async fn zl_4_follow_and_unfollow_show_on_the_customer() {
    let d = desk(Some(90_000)).await;
    let z = &d.zalo;
    d.send(&z.event(
        "follow",
        json!({"oa_id": z.oa_id, "follower": {"id": "7007"}, "source": "oa_profile", "user_id_by_app": "app7007"}),
    ))
    .await;
    wait_processed(&d.srv, d.id).await;
    d.send(&z.text("7007", "f-1", "just followed")).await;
    let conv = by_zalo_id(&d.boss, d.id, "f-1").await["conversation_id"].as_i64().unwrap();
    let customer_id = d.boss.ok_get(&format!("/api/v1/conversations/{conv}")).await["customer_id"].as_i64().unwrap();
    let c = d.boss.ok_get(&format!("/api/v1/customers/{customer_id}")).await;
    assert_eq!(c["custom_fields"]["zalo_follow"]["state"], "following", "{c}");
    assert_eq!(c["custom_fields"]["zalo_user_id_by_app"], "app7007");
    d.send(&z.event("unfollow", json!({"oa_id": z.oa_id, "follower": {"id": "7007"}, "source": "oa_profile"}))).await;
    wait_processed(&d.srv, d.id).await;
    let c = d.boss.ok_get(&format!("/api/v1/customers/{customer_id}")).await;
    assert_eq!(c["custom_fields"]["zalo_follow"]["state"], "unfollowed", "{c}");
    d.stop().await;
}

// ---------------------------------------------------------------------------------------------------------------
// ZL-6: replies and tokens
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn zl_6_text_image_and_file_replies_reach_zalo_in_order_never_twice() {
    let d = desk(Some(90_000)).await;
    let z = &d.zalo;
    let user = "8008";
    d.send(&z.text(user, "s-1", "send me the manual")).await;
    let conv = by_zalo_id(&d.boss, d.id, "s-1").await["conversation_id"].as_i64().unwrap();
    let png = upload(&d.boss, "diagram.png", "image/png", b"\x89PNG diagram").await;
    let pdf = upload(&d.boss, "manual.pdf", "application/pdf", b"%PDF manual").await;
    d.boss.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "first"}), 201).await;
    let with_files = d
        .boss
        .ok_post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"content": "here it is", "attachment_ids": [png, pdf]}),
            201,
        )
        .await;
    d.boss.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "last"}), 201).await;
    let sent = z.wait_sent(5, WAIT).await;
    assert_eq!(sent[0].text(), Some("first"));
    assert_eq!(sent[1].text(), Some("here it is"));
    let image_id = sent[2].body["message"]["attachment"]["payload"]["elements"][0]["attachment_id"].as_str().unwrap();
    assert_eq!(z.upload(image_id).unwrap(), ("diagram.png".to_owned(), b"\x89PNG diagram".to_vec()));
    let file_token = sent[3].body["message"]["attachment"]["payload"]["token"].as_str().unwrap();
    assert_eq!(z.upload(file_token).unwrap(), ("manual.pdf".to_owned(), b"%PDF manual".to_vec()));
    assert_eq!(sent[4].text(), Some("last"));
    assert!(sent.iter().all(|s| s.user() == Some(user)));
    // Nothing more arrives (each part once), and each reply is marked sent.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mine: Vec<Value> = messages(&d.boss, conv).await.into_iter().filter(|m| m["direction"] == "out").collect();
        if mine.iter().all(|m| m["delivery"]["state"] == "sent") {
            assert_eq!(mine[1]["id"], with_files["message_id"]);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{mine:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(z.sent().len(), 5, "never twice");
    d.stop().await;
}

#[tokio::test]
async fn zl_6_a_zalo_error_is_recorded_on_the_message_and_shown() {
    let d = desk(Some(90_000)).await;
    let z = &d.zalo;
    d.send(&z.text("9009", "e-1", "hi")).await;
    let conv = by_zalo_id(&d.boss, d.id, "e-1").await["conversation_id"].as_i64().unwrap();
    z.fail_next_sends(&[(-230, "User has not interacted with the OA in the last 7 days")]);
    let reply =
        d.boss.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "late"}), 201).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = messages(&d.boss, conv).await.into_iter().find(|m| m["id"] == reply["message_id"]).unwrap();
        if m["delivery"]["state"] == "failed" {
            let error = m["delivery"]["error"].as_str().unwrap();
            assert!(error.contains("-230") && error.contains("7 days"), "{error}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(z.sent().is_empty());
    d.stop().await;
}

#[tokio::test]
async fn zl_6_an_expired_access_token_is_refreshed_and_the_reply_sent() {
    let d = desk(Some(90_000)).await;
    let z = &d.zalo;
    d.send(&z.text("1111", "x-1", "hello")).await;
    let conv = by_zalo_id(&d.boss, d.id, "x-1").await["conversation_id"].as_i64().unwrap();
    z.expire_access_tokens();
    d.boss.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "after expiry"}), 201).await;
    let sent = z.wait_sent(1, WAIT).await;
    assert_eq!(sent[0].text(), Some("after expiry"));
    assert_ne!(sent[0].token, d.access, "sent with the refreshed token");
    assert_eq!(z.refreshes(), (1, 0));
    assert!(z.is_spent(&d.refresh));
    let view = wait_view(&d.boss, d.id, "connected", |v| v["state"] == "connected").await;
    assert!(view["access_token_expires_at"].is_string());
    let stored = store::zalo::tokens(d.srv.store(), d.id).await.unwrap().unwrap();
    assert_eq!(stored.access_token, sent[0].token, "the new tokens are stored");
    assert_ne!(stored.refresh_token, d.refresh);
    assert_eq!(z.sent().len(), 1);
    d.stop().await;
}

/// A crash after a refresh committed and before anything used the new tokens: the restarted server uses the
/// stored (new) tokens; the spent refresh token is never sent again (the fake refuses reuse), so no lock-out.
#[tokio::test]
async fn zl_6_a_crash_between_storing_the_new_refresh_token_and_using_it_locks_nothing_out() {
    // Expiry unknown: the OA's job refreshes at once.
    let d = desk(None).await;
    let z = &d.zalo;
    let deadline = tokio::time::Instant::now() + WAIT;
    let refreshed = loop {
        let t = store::zalo::tokens(d.srv.store(), d.id).await.unwrap().unwrap();
        if t.generation > 0 {
            break t;
        }
        assert!(tokio::time::Instant::now() < deadline, "no refresh committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(z.is_spent(&d.refresh));
    assert_eq!(z.refreshes(), (1, 0));
    // The node stops right after the commit, before any send.
    let Desk { srv, boss, zalo, id, .. } = d;
    let srv = srv.restart().await;
    let boss = boss_on(&srv, &boss);
    let hook = format!("{}/api/v1/zalo-channels/{id}/webhook", srv.base);
    let (status, _) = zalo.post(&hook, &zalo.text("2222", "c-1", "after the crash"), None).await;
    assert_eq!(status, 200);
    let conv = by_zalo_id(&boss, id, "c-1").await["conversation_id"].as_i64().unwrap();
    // The send uses the stored (new) access token: no refresh needed.
    boss.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "still connected"}), 201).await;
    let sent = zalo.wait_sent(1, WAIT).await;
    assert_eq!(sent[0].text(), Some("still connected"));
    assert_eq!(sent[0].token, refreshed.access_token, "sent with the token stored before the crash");
    assert_eq!(zalo.refreshes(), (1, 0), "nothing refreshed again");
    // And when that token expires, the stored refresh token (never the spent one) gets new ones.
    zalo.expire_access_tokens();
    boss.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "and later"}), 201).await;
    let sent = zalo.wait_sent(2, WAIT).await;
    assert_eq!(sent[1].text(), Some("and later"));
    assert!(zalo.is_spent(&refreshed.refresh_token), "the stored refresh token was the one used");
    assert_eq!(zalo.refreshes(), (2, 0), "no refused (reused) refresh token: no lock-out");
    let view = boss.ok_get(&format!("/api/v1/zalo-channels/{id}")).await;
    assert_eq!(view["state"], "connected", "{view}");
    srv.stop().await;
    zalo.stop().await;
}

/// The same agent on a restarted server (a new port).
fn boss_on(srv: &TestServer, boss: &Api) -> Api {
    Api::with_token(&srv.base, boss.token.as_deref().unwrap(), boss.agent_id)
}

#[tokio::test]
async fn zl_6_a_refused_refresh_marks_the_oa_as_needing_attention_until_new_tokens_come() {
    let zalo = FakeZalo::start().await;
    let srv = TestServer::start_with(|raw| raw.public_url = Some(PUBLIC.into())).await;
    let boss = srv.agent("boss@example.com", "super_admin").await;
    let (access, _) = zalo.issue_tokens();
    // A refresh token Zalo does not know (revoked, or copied wrong); expiry unknown, so it is refreshed at once.
    let made = boss.ok_post("/api/v1/zalo-channels", connect_body(&zalo, &access, "rt_not_issued", None), 201).await;
    let id = made["id"].as_i64().unwrap();
    let view = wait_view(&boss, id, "needs_attention", |v| v["state"] == "needs_attention").await;
    let reason = view["state_reason"].as_str().unwrap();
    assert!(reason.contains("refresh token") && reason.contains("-14014"), "{reason}");
    assert!(view["state_since"].is_string());
    assert_eq!(zalo.refreshes().1, 1, "refused once");
    // New tokens from the admin: connected again, and refreshed with them.
    let (access2, refresh2) = zalo.issue_tokens();
    let (s, b) = boss
        .patch(&format!("/api/v1/zalo-channels/{id}"), json!({"access_token": access2, "refresh_token": refresh2}))
        .await;
    assert_eq!(s.as_u16(), 200, "{b}");
    wait_view(&boss, id, "refreshed with the new tokens", |v| {
        v["state"] == "connected" && v["access_token_expires_at"].is_string()
    })
    .await;
    assert!(zalo.is_spent(&refresh2));
    assert_eq!(zalo.refreshes(), (1, 1));
    srv.stop().await;
    zalo.stop().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Access (invariant 4)
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_agent_without_access_to_the_oa_gets_404_on_its_conversations() {
    let d = desk(Some(90_000)).await;
    d.send(&d.zalo.text("3333", "p-1", "private")).await;
    let conv = by_zalo_id(&d.boss, d.id, "p-1").await["conversation_id"].as_i64().unwrap();
    let carol = d.srv.agent("carol@example.com", "agent").await;
    assert_error(&carol.get(&format!("/api/v1/conversations/{conv}")).await, 404, "not_found");
    assert_error(&carol.get(&format!("/api/v1/conversations/{conv}/messages")).await, 404, "not_found");
    assert_error(
        &carol.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "x"})).await,
        404,
        "not_found",
    );
    assert_error(&carol.get(&format!("/api/v1/zalo-channels/{}", d.id)).await, 404, "not_found");
    assert_eq!(carol.ok_get("/api/v1/zalo-channels").await, json!([]));
    d.boss.ok_put(&format!("/api/v1/agents/{}/channels", carol.agent_id), json!({"channel_ids": [d.id]})).await;
    carol.ok_get(&format!("/api/v1/conversations/{conv}")).await;
    d.stop().await;
}

/// ZL-5 (CORE-4, CORE-5): a Zalo conversation is a chat and ends by inactivity like every chat; the ended chat stays
/// open, so the user's next message makes it live again — one conversation, not two.
#[tokio::test]
async fn zl_5_a_zalo_chat_ends_by_inactivity_and_the_next_message_revives_it() {
    let d = desk(Some(90_000)).await;
    let (s, b) = d.boss.patch(&format!("/api/v1/zalo-channels/{}", d.id), json!({"inactivity_timeout_s": 1})).await;
    assert_eq!(s.as_u16(), 200, "{b}");
    let mut socket = WsClient::connect(&d.srv.base, d.boss.token.as_deref().unwrap(), None).await;

    d.send(&d.zalo.text("2002", "m-idle-1", "hello?")).await;
    let first = wait_messages(&d.boss, d.id, 1).await[0]["conversation_id"].as_i64().unwrap();
    assert_eq!(conversations(&d.boss, d.id).await[0]["active_chat"], true, "CORE-4: a chat while it goes on");
    let ended = socket.wait_for("conversation.ended", WAIT, |f| f["type"] == "conversation.ended").await;
    assert_eq!(ended["conversation_id"], first);
    assert_eq!(ended["conversation"]["active_chat"], false);

    d.send(&d.zalo.text("2002", "m-idle-2", "are you there?")).await;
    wait_messages(&d.boss, d.id, 2).await;
    let convs = conversations(&d.boss, d.id).await;
    assert_eq!(convs.len(), 1, "{convs:?}");
    assert_eq!(convs[0]["active_chat"], true, "the next message makes the chat live again");
    socket.close().await;
    d.stop().await;
}
