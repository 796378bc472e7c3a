//! Issue #13 (see tests/security.rs): secrets at rest. Custom channels' signing secrets and
//! mailbox IMAP/POP3 and SMTP passwords are sealed in the database under a key from
//! `SWITCHBOARD_SECRET_KEY` or `{data_dir}/secret.key`; plaintext rows of older versions and values
//! sealed under a previous key are sealed again on start; a node with another key refuses to start.
//! Each test reads the raw rows with its own database connection, as someone holding a copy of
//! the database would.

use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use diesel::sql_types::{Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard::channels::email::settings::EmailSettings;
use switchboard::config::{RawConfig, Settings};
use switchboard::domain::ChannelScope;
use switchboard::secrets::SecretKey;
use switchboard::server::StartOptions;
use switchboard::store;
use tokio::sync::mpsc;

use crate::common::{Api, TestServer};

const IMAP_PASSWORD: &str = "imap-pass-Q7wz";
const SMTP_PASSWORD: &str = "smtp-pass-K3vb";

/// A channel row as stored.
#[derive(diesel::QueryableByName, Debug)]
struct Row {
    #[diesel(sql_type = Text)]
    settings: String,
    #[diesel(sql_type = Nullable<Text>)]
    secret: Option<String>,
}

/// Run `sql` on the test's database through a connection of its own (not the server's store).
async fn raw_rows(url: &str, sql: String) -> Vec<Row> {
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            use diesel::Connection;
            let mut conn = diesel::SqliteConnection::establish(path).expect("open the SQLite file");
            diesel::RunQueryDsl::load(diesel::sql_query(sql), &mut conn).expect("raw query")
        }
        None => {
            let mut conn = AsyncPgConnection::establish(url).await.expect("connect to PostgreSQL");
            diesel_async::RunQueryDsl::load(diesel::sql_query(sql), &mut conn).await.expect("raw query")
        }
    }
}

async fn raw_exec(url: &str, sql: String) {
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            use diesel::Connection;
            let mut conn = diesel::SqliteConnection::establish(path).expect("open the SQLite file");
            diesel::RunQueryDsl::execute(diesel::sql_query(sql), &mut conn).expect("raw statement");
        }
        None => {
            let mut conn = AsyncPgConnection::establish(url).await.expect("connect to PostgreSQL");
            diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), &mut conn).await.expect("raw statement");
        }
    }
}

async fn raw_channel(server: &TestServer, id: i64) -> Row {
    raw_rows(&server.db.url, format!("SELECT settings, secret FROM channel_instances WHERE id = {id}"))
        .await
        .pop()
        .expect("the channel row")
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A custom channel replying to `url`; returns its id and signing secret.
async fn custom_channel(admin: &Api, url: &str) -> (i64, String) {
    let c = admin
        .ok_post("/api/v1/custom-channels", json!({"name": "Shop app", "webhook_url": url, "type": "async"}), 201)
        .await;
    (c["id"].as_i64().unwrap(), c["secret"].as_str().unwrap().to_owned())
}

/// A mailbox that is never connected (disabled): only its stored settings matter here.
async fn mailbox(admin: &Api) -> i64 {
    let body = json!({
        "name": "Support", "protocol": "imap", "host": "127.0.0.1", "port": 9, "tls": "none",
        "username": "support", "password": IMAP_PASSWORD, "enabled": false,
        "smtp": {"host": "127.0.0.1", "port": 9, "tls": "none", "username": "support", "password": SMTP_PASSWORD,
                 "from_address": "desk@example.test"}
    });
    admin.ok_post("/api/v1/email-channels", body, 201).await["id"].as_i64().unwrap()
}

/// The mailbox settings the connector gets from the store.
async fn connector_settings(server: &TestServer, id: i64) -> EmailSettings {
    let c = store::channels::get(server.store(), id, &ChannelScope::All).await.expect("the mailbox");
    EmailSettings::of(&c.settings).expect("readable settings")
}

fn sealed_by(value: &str, key: &SecretKey) -> bool {
    value.starts_with(&format!("sb1:{}:", key.id()))
}

/// Nothing secret in the row: neither the plaintext nor an unsealed value.
fn assert_sealed(row: &Row, key: Option<&SecretKey>, plaintexts: &[&str]) {
    let all = format!("{} {}", row.settings, row.secret.as_deref().unwrap_or(""));
    for p in plaintexts {
        assert!(!all.contains(p), "{p:?} is stored in plaintext: {all}");
    }
    let settings: Value = serde_json::from_str(&row.settings).unwrap();
    let mut values: Vec<&str> = row.secret.iter().map(String::as_str).collect();
    values.extend(settings["password"].as_str());
    values.extend(settings["smtp"]["password"].as_str());
    for v in values {
        assert!(v.starts_with("sb1:"), "not sealed: {v}");
        if let Some(key) = key {
            assert!(sealed_by(v, key), "not sealed under key {}: {v}", key.id());
        }
    }
}

/// A loopback webhook receiver handing each request to the test as it arrives.
struct Receiver {
    url: String,
    got: mpsc::UnboundedReceiver<(String, String, Vec<u8>)>,
    handle: actix_web::dev::ServerHandle,
}

async fn hook(
    req: HttpRequest,
    body: web::Bytes,
    tx: web::Data<mpsc::UnboundedSender<(String, String, Vec<u8>)>>,
) -> HttpResponse {
    let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let _ = tx.send((h("x-switchboard-timestamp"), h("x-switchboard-signature"), body.to_vec()));
    HttpResponse::Ok().finish()
}

impl Receiver {
    async fn start() -> Self {
        let (tx, got) = mpsc::unbounded_channel();
        let data = web::Data::new(tx);
        let server = HttpServer::new(move || App::new().app_data(data.clone()).route("/hook", web::post().to(hook)))
            .workers(1)
            .disable_signals()
            .bind("127.0.0.1:0")
            .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url: format!("http://127.0.0.1:{port}/hook"), got, handle }
    }

    /// The next webhook's signature checked against `secret`.
    async fn next_verifies(&mut self, secret: &str) -> bool {
        let (timestamp, signature, body) = tokio::time::timeout(Duration::from_secs(15), self.got.recv())
            .await
            .expect("a webhook within 15 s")
            .expect("receiver running");
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(&body);
        signature == format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// An agent's reply on a custom channel, which the server sends as a signed webhook.
async fn reply_through_webhook(admin: &Api, channel: i64, user: &str) {
    let first = admin
        .ok_post(
            &format!("/api/v1/custom-channels/{channel}/inbound"),
            json!({"user_custom_id": user, "content": "Hi"}),
            201,
        )
        .await;
    let conv = first["conversation_id"].as_i64().unwrap();
    admin.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "Hello"}), 201).await;
}

fn settings_for(server: &TestServer, adjust: impl FnOnce(&mut RawConfig)) -> Settings {
    let mut raw = RawConfig {
        bind: Some("127.0.0.1:0".into()),
        database_url: Some(server.db.url.clone()),
        data_dir: Some(server.data_dir().display().to_string()),
        db_pool_size: Some(2),
        workers: Some(1),
        log: Some("warn".into()),
        ..Default::default()
    };
    adjust(&mut raw);
    Settings::resolve(raw).expect("valid settings")
}

/// Start another node on the server's database; its start-up error, if it fails.
async fn start_error(settings: Settings) -> Option<String> {
    match switchboard::server::start(settings, StartOptions { handle_signals: false }).await {
        Ok(running) => {
            running.stop().await.unwrap();
            None
        }
        Err(e) => Some(format!("{e:#}")),
    }
}

fn key_text(key: &SecretKey) -> Option<switchboard::config::Secret> {
    Some(key.to_base64().into())
}

#[tokio::test]
async fn secrets_and_passwords_are_sealed_in_the_database_and_never_returned() {
    let server = TestServer::start().await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    let mut rx = Receiver::start().await;
    let (custom, secret) = custom_channel(&admin, &rx.url).await;
    let mail = mailbox(&admin).await;

    assert_sealed(&raw_channel(&server, custom).await, None, &[&secret]);
    assert_sealed(&raw_channel(&server, mail).await, None, &[IMAP_PASSWORD, SMTP_PASSWORD]);

    // What the code gets back is the plaintext: the connector's login and SMTP password …
    let s = connector_settings(&server, mail).await;
    assert_eq!((s.password.as_str(), s.smtp.password.as_deref()), (IMAP_PASSWORD, Some(SMTP_PASSWORD)));
    // … and the webhook is signed with the secret the integrator was given.
    reply_through_webhook(&admin, custom, "u-1").await;
    assert!(rx.next_verifies(&secret).await, "the webhook signature verifies with the channel's secret");

    // No answer carries a password or the signing secret (only create and rotate show it once).
    for path in [
        format!("/api/v1/email-channels/{mail}"),
        "/api/v1/email-channels".into(),
        format!("/api/v1/channels/{mail}"),
        format!("/api/v1/channels/{custom}"),
        "/api/v1/channels".into(),
        "/api/v1/custom-channels".into(),
    ] {
        let body = admin.ok_get(&path).await.to_string();
        for s in [IMAP_PASSWORD, SMTP_PASSWORD, secret.as_str(), "sb1:"] {
            assert!(!body.contains(s), "{path} shows {s:?}: {body}");
        }
    }
    let view = admin.ok_get(&format!("/api/v1/email-channels/{mail}")).await;
    assert_eq!((view["password_set"].as_bool(), view["smtp"]["password_set"].as_bool()), (Some(true), Some(true)));

    // An update that leaves the passwords out keeps them, still sealed.
    let (status, body) = admin.patch(&format!("/api/v1/email-channels/{mail}"), json!({"name": "Help"})).await;
    assert_eq!(status, 200, "{body}");
    assert_sealed(&raw_channel(&server, mail).await, None, &[IMAP_PASSWORD, SMTP_PASSWORD]);
    assert_eq!(connector_settings(&server, mail).await.password, IMAP_PASSWORD);
    rx.stop().await;
}

#[tokio::test]
async fn the_key_file_is_created_private_on_first_start_and_reused() {
    let server = TestServer::start().await;
    let path = server.data_dir().join("secret.key");
    let text = std::fs::read_to_string(&path).expect("the key file was created on first start");
    let key = SecretKey::from_base64(&text).expect("it holds a key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "only the owner reads it");
    }
    let admin = server.agent("admin@example.com", "super_admin").await;
    let mail = mailbox(&admin).await;
    assert_sealed(&raw_channel(&server, mail).await, Some(&key), &[IMAP_PASSWORD]);

    let server = server.restart().await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "the same key after a restart");
    assert_eq!(connector_settings(&server, mail).await.password, IMAP_PASSWORD);

    // A key file that is not a key stops the start with a message naming it (a fresh database, so
    // only the file is wrong).
    let other = TestServer::start().await;
    std::fs::write(other.data_dir().join("secret.key"), "not a key\n").unwrap();
    let err = start_error(settings_for(&other, |_| {})).await.expect("a malformed key file is refused");
    assert!(err.contains("secret.key") && err.contains("does not hold a key"), "{err}");
}

#[tokio::test]
async fn a_node_with_another_key_refuses_to_start() {
    let key = SecretKey::generate();
    let server = TestServer::start_with(|raw| raw.secret_key = key_text(&key)).await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    let mail = mailbox(&admin).await;
    let before = raw_channel(&server, mail).await;
    assert_sealed(&before, Some(&key), &[IMAP_PASSWORD]);

    // A second node with its own data directory and no key setting makes its own key file: wrong.
    let elsewhere = tempfile::tempdir().unwrap();
    let own_dir = |raw: &mut RawConfig| raw.data_dir = Some(elsewhere.path().display().to_string());
    let err = start_error(settings_for(&server, own_dir)).await.expect("another node's key is refused");
    assert!(err.contains(&format!("sealed with key {}", key.id())), "{err}");
    assert!(err.contains("SWITCHBOARD_SECRET_KEY"), "the message says what to do: {err}");
    // Given the same key, it starts.
    assert_eq!(start_error(settings_for(&server, |raw| raw.secret_key = key_text(&key))).await, None);

    let after = raw_channel(&server, mail).await;
    assert_eq!((after.settings, after.secret), (before.settings, before.secret), "the refused node changed nothing");
    assert_eq!(connector_settings(&server, mail).await.password, IMAP_PASSWORD);
}

#[tokio::test]
async fn rotation_reseals_under_the_new_key_with_the_old_one_as_previous() {
    let old = SecretKey::generate();
    let server = TestServer::start_with(|raw| raw.secret_key = key_text(&old)).await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    let (custom, secret) = custom_channel(&admin, "http://127.0.0.1:9/hook").await;
    let mail = mailbox(&admin).await;
    assert_sealed(&raw_channel(&server, custom).await, Some(&old), &[&secret]);

    let new = SecretKey::generate();
    let server = server
        .restart_with(|raw| {
            raw.secret_key = key_text(&new);
            raw.secret_key_previous = key_text(&old);
        })
        .await;
    assert_sealed(&raw_channel(&server, custom).await, Some(&new), &[&secret]);
    assert_sealed(&raw_channel(&server, mail).await, Some(&new), &[IMAP_PASSWORD, SMTP_PASSWORD]);

    // Once rotated, the old key is no longer needed, and no longer accepted alone.
    let server = server.restart_with(|raw| raw.secret_key = key_text(&new)).await;
    let s = connector_settings(&server, mail).await;
    assert_eq!((s.password.as_str(), s.smtp.password.as_deref()), (IMAP_PASSWORD, Some(SMTP_PASSWORD)));
    // The webhook is signed with what the store hands the dispatcher. (Not sent here: the stopped
    // in-process servers' dispatchers still run, the first one with only the old key.)
    let c = store::channels::get(server.store(), custom, &ChannelScope::All).await.unwrap();
    assert_eq!(c.secret.as_deref(), Some(secret.as_str()), "the same signing secret after the rotation");
    let err = start_error(settings_for(&server, |raw| raw.secret_key = key_text(&old))).await.expect("refused");
    assert!(err.contains(&format!("sealed with key {}", new.id())), "{err}");
}

#[tokio::test]
async fn plaintext_rows_of_older_versions_are_sealed_on_start() {
    let server = TestServer::start().await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    let mut rx = Receiver::start().await;
    let (custom, secret) = custom_channel(&admin, &rx.url).await;
    let mail = mailbox(&admin).await;

    // What an older version stored: the secret and the passwords as they are.
    let mut settings: Value = serde_json::from_str(&raw_channel(&server, mail).await.settings).unwrap();
    settings["password"] = IMAP_PASSWORD.into();
    settings["smtp"]["password"] = SMTP_PASSWORD.into();
    let url = server.db.url.clone();
    raw_exec(
        &url,
        format!("UPDATE channel_instances SET settings = {} WHERE id = {mail}", quoted(&settings.to_string())),
    )
    .await;
    raw_exec(&url, format!("UPDATE channel_instances SET secret = {} WHERE id = {custom}", quoted(&secret))).await;
    assert_eq!(raw_channel(&server, custom).await.secret.as_deref(), Some(secret.as_str()));

    let server = server.restart().await;
    let key = SecretKey::from_base64(&std::fs::read_to_string(server.data_dir().join("secret.key")).unwrap()).unwrap();
    let sealed_custom = raw_channel(&server, custom).await;
    let sealed_mail = raw_channel(&server, mail).await;
    assert_sealed(&sealed_custom, Some(&key), &[&secret]);
    assert_sealed(&sealed_mail, Some(&key), &[IMAP_PASSWORD, SMTP_PASSWORD]);

    // Everything still works with the original values.
    let s = connector_settings(&server, mail).await;
    assert_eq!((s.password.as_str(), s.smtp.password.as_deref()), (IMAP_PASSWORD, Some(SMTP_PASSWORD)));
    let admin = Api::with_token(&server.base, admin.token.as_deref().unwrap(), admin.agent_id);
    reply_through_webhook(&admin, custom, "u-3").await;
    assert!(rx.next_verifies(&secret).await, "the webhook signature verifies with the original secret");

    // Idempotent: another start leaves the sealed rows as they are.
    let server = server.restart().await;
    let again = (raw_channel(&server, custom).await, raw_channel(&server, mail).await);
    assert_eq!((again.0.secret, again.1.settings), (sealed_custom.secret, sealed_mail.settings));
    rx.stop().await;
}

/// The first of "the channels to come" (#13 item 8): a Mattermost bot's token is sealed like the other
/// secrets, is in no answer (create, update, lists, the generic channel views) nor in the audit log, is
/// sealed from a plaintext row on start, and the connector still signs in with it.
#[tokio::test]
async fn a_mattermost_bot_token_is_sealed_at_rest_and_never_returned() {
    use crate::common::fake_mattermost::FakeMattermost;
    const WAIT: Duration = Duration::from_secs(15);

    let mm = FakeMattermost::start().await;
    let token = mm.bot_token.clone();
    let server = TestServer::start().await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    let made = admin
        .ok_post(
            "/api/v1/mattermost-channels",
            json!({"name": "Helpbot", "server_url": mm.url, "bot_token": token}),
            201,
        )
        .await;
    let bot = made["id"].as_i64().unwrap();
    assert_sealed(&raw_channel(&server, bot).await, None, &[&token]);
    mm.wait_socket(1, WAIT).await;

    // A new token for the same bot (checked with Mattermost like at connect) is sealed too.
    let (status, edited) = admin
        .patch(&format!("/api/v1/mattermost-channels/{bot}"), json!({"bot_token": token, "name": "Helpbot 2"}))
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_sealed(&raw_channel(&server, bot).await, None, &[&token]);
    let mut answers = vec![("create".to_owned(), made), ("update".to_owned(), edited)];
    for path in [
        format!("/api/v1/mattermost-channels/{bot}"),
        "/api/v1/mattermost-channels".into(),
        format!("/api/v1/channels/{bot}"),
        "/api/v1/channels".into(),
        "/api/v1/audit?limit=200".into(),
    ] {
        answers.push((path.clone(), admin.ok_get(&path).await));
    }
    for (what, body) in answers {
        let body = body.to_string();
        assert!(!body.contains(&token) && !body.contains("sb1:"), "{what} shows the token: {body}");
    }

    // What an older version stored: the token as it is. Sealed on start; the bot signs in with it.
    raw_exec(&server.db.url, format!("UPDATE channel_instances SET secret = {} WHERE id = {bot}", quoted(&token)))
        .await;
    let hellos = mm.hellos();
    let server = server.restart().await;
    let key = SecretKey::from_base64(&std::fs::read_to_string(server.data_dir().join("secret.key")).unwrap()).unwrap();
    assert_sealed(&raw_channel(&server, bot).await, Some(&key), &[&token]);
    let c = store::channels::get(server.store(), bot, &ChannelScope::All).await.unwrap();
    assert_eq!(c.secret.as_deref(), Some(token.as_str()), "the connector gets the token back");
    mm.wait_socket(hellos + 1, WAIT).await;
    server.stop().await;
    mm.stop().await;
}

/// A Zalo OA's rotating tokens live in their own table (`zalo_tokens`, #16): sealed when written, sealed again
/// under a new key on rotation, and sealed on start when an older version left them in plaintext.
#[tokio::test]
async fn zalo_tokens_are_sealed_at_rest_through_a_rotation_and_from_plaintext() {
    use crate::common::fake_zalo::FakeZalo;

    /// The tokens row as stored.
    #[derive(diesel::QueryableByName, Debug)]
    struct Tokens {
        #[diesel(sql_type = Text)]
        access_token: String,
        #[diesel(sql_type = Text)]
        refresh_token: String,
    }
    async fn raw_tokens(server: &TestServer, id: i64) -> (String, String) {
        let sql = format!("SELECT access_token, refresh_token FROM zalo_tokens WHERE channel_instance_id = {id}");
        let row = match server.db.url.strip_prefix("sqlite://") {
            Some(path) => {
                use diesel::Connection;
                let mut conn = diesel::SqliteConnection::establish(path).expect("open the SQLite file");
                diesel::RunQueryDsl::load::<Tokens>(diesel::sql_query(sql), &mut conn).expect("raw query").pop()
            }
            None => {
                let mut conn = AsyncPgConnection::establish(&server.db.url).await.expect("connect to PostgreSQL");
                diesel_async::RunQueryDsl::load::<Tokens>(diesel::sql_query(sql), &mut conn)
                    .await
                    .expect("raw query")
                    .pop()
            }
        };
        let row = row.expect("the tokens row");
        (row.access_token, row.refresh_token)
    }
    async fn opened(server: &TestServer, id: i64) -> (String, String) {
        let t = store::zalo::tokens(server.store(), id).await.unwrap().expect("tokens");
        (t.access_token, t.refresh_token)
    }

    let zalo = FakeZalo::start().await;
    let (access, refresh) = zalo.issue_tokens();
    let old = SecretKey::generate();
    let server = TestServer::start_with(|raw| raw.secret_key = key_text(&old)).await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    // The expiry is given, so connecting calls nothing and the tokens stay the ones given.
    let body = json!({"name": "Zalo OA", "app_id": zalo.app_id, "app_secret": zalo.app_secret,
        "oa_secret_key": zalo.oa_secret_key, "access_token": access, "refresh_token": refresh,
        "access_token_expires_in": 90000, "api_base_url": zalo.url, "oauth_base_url": zalo.url});
    let oa = admin.ok_post("/api/v1/zalo-channels", body, 201).await["id"].as_i64().unwrap();
    let stored = raw_tokens(&server, oa).await;
    assert!(sealed_by(&stored.0, &old) && sealed_by(&stored.1, &old), "sealed under the key: {stored:?}");

    let new = SecretKey::generate();
    let server = server
        .restart_with(|raw| {
            raw.secret_key = key_text(&new);
            raw.secret_key_previous = key_text(&old);
        })
        .await;
    let stored = raw_tokens(&server, oa).await;
    assert!(sealed_by(&stored.0, &new) && sealed_by(&stored.1, &new), "sealed again under the new key: {stored:?}");
    assert_eq!(opened(&server, oa).await, (access.clone(), refresh.clone()), "the same tokens after the rotation");

    // What an older version stored: the tokens as they are. Sealed on start, and they open to the same values.
    raw_exec(
        &server.db.url,
        format!(
            "UPDATE zalo_tokens SET access_token = {}, refresh_token = {} WHERE channel_instance_id = {oa}",
            quoted(&access),
            quoted(&refresh)
        ),
    )
    .await;
    let server = server.restart_with(|raw| raw.secret_key = key_text(&new)).await;
    let stored = raw_tokens(&server, oa).await;
    assert!(sealed_by(&stored.0, &new) && sealed_by(&stored.1, &new), "plaintext sealed on start: {stored:?}");
    assert_eq!(opened(&server, oa).await, (access, refresh), "the tokens open to what was stored");
    server.stop().await;
    zalo.stop().await;
}
