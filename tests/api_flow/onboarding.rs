//! Issue #17 item 9: agent invitations (an admin invites by email, the invited person sets their own password
//! through a single-use, expiring link, then signs in; expired, used, replaced and altered links are refused; only
//! admins invite) and the first-run checklist computed from what the install holds.

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, TestServer, assert_error};

/// The token at the end of an invitation link.
fn token_of(created: &Value) -> String {
    let url = created["url"].as_str().unwrap();
    url.rsplit_once("/invite/").unwrap_or_else(|| panic!("a set-your-password link: {url}")).1.to_owned()
}

async fn sign_in(srv: &TestServer, email: &str, password: &str) -> StatusCode {
    srv.anonymous().post("/api/v1/auth/login", json!({"email": email, "password": password})).await.0
}

/// Run SQL on the test's database through a connection of its own (to age an invitation).
async fn sql(url: &str, statement: &str) {
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            use diesel::Connection;
            use diesel::connection::SimpleConnection;
            let mut conn = diesel::SqliteConnection::establish(path).expect("open the SQLite file");
            SimpleConnection::batch_execute(&mut conn, statement).expect("run the statement");
        }
        None => {
            let mut conn = AsyncPgConnection::establish(url).await.expect("connect to PostgreSQL");
            conn.batch_execute(statement).await.expect("run the statement");
        }
    }
}

fn steps(checklist: &Value) -> Vec<(String, bool)> {
    checklist["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap().to_owned(), s["done"].as_bool().unwrap()))
        .collect()
}

#[tokio::test]
async fn an_invited_agent_sets_a_password_once_and_signs_in() {
    let srv = TestServer::start().await;
    let root = srv.agent("root@example.com", "super_admin").await;
    let admin = srv.agent("admin@example.com", "admin").await;
    let anonymous = srv.anonymous();
    let ch = root.channel("custom", "Shop", Some("async")).await;

    let created = admin
        .ok_post(
            "/api/v1/agents/invitations",
            json!({"email": "New.Person@Example.com", "name": "New Person", "channel_ids": [ch]}),
            201,
        )
        .await;
    assert_eq!(created["agent"]["email"], "new.person@example.com");
    assert_eq!(created["agent"]["has_password"], false);
    assert_eq!(created["agent"]["channel_ids"], json!([ch]));
    assert_eq!(created["mailed"], false);
    // `{SWITCHBOARD_PUBLIC_URL}/invite/sbi_…` (the test server's public URL names its bind address, port 0).
    assert!(created["url"].as_str().unwrap().starts_with("http://127.0.0.1:0/invite/sbi_"), "{created}");
    let token = token_of(&created);
    assert_eq!(sign_in(&srv, "new.person@example.com", "anything at all").await, StatusCode::UNAUTHORIZED);

    // The link shows who it is for, without credentials.
    let shown = anonymous.ok_get(&format!("/api/v1/invitations/{token}")).await;
    assert_eq!(shown["email"], "new.person@example.com");
    assert_eq!(shown["name"], "New Person");
    // An altered token matches nothing.
    let mut altered = token.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == '0' { '1' } else { '0' });
    assert_error(&anonymous.get(&format!("/api/v1/invitations/{altered}")).await, 404, "not_found");
    assert_error(
        &anonymous.post(&format!("/api/v1/invitations/{altered}"), json!({"password": "a long password"})).await,
        404,
        "not_found",
    );

    // The password rules are the usual ones; a refused password leaves the link usable.
    let accept = format!("/api/v1/invitations/{token}");
    assert_error(&anonymous.post(&accept, json!({"password": "short"})).await, 400, "validation_failed");
    let done = anonymous.ok_post(&accept, json!({"password": "my own password"}), 200).await;
    assert_eq!(done["email"], "new.person@example.com");
    assert_eq!(sign_in(&srv, "new.person@example.com", "my own password").await, StatusCode::OK);
    let agents = admin.ok_get("/api/v1/agents").await;
    let me = agents.as_array().unwrap().iter().find(|a| a["email"] == "new.person@example.com").unwrap();
    assert_eq!(me["has_password"], true);

    // Single use: the link is spent.
    assert_error(&anonymous.post(&accept, json!({"password": "another password"})).await, 422, "invitation_used");
    assert_error(&anonymous.get(&accept).await, 422, "invitation_used");
    assert_eq!(sign_in(&srv, "new.person@example.com", "another password").await, StatusCode::UNAUTHORIZED);
    // An agent who has a password is not invited again.
    assert_error(
        &admin.post("/api/v1/agents/invitations", json!({"email": "new.person@example.com"})).await,
        409,
        "conflict",
    );

    // An expired link is refused, and so is a link replaced by a newer invitation.
    let late = admin.ok_post("/api/v1/agents/invitations", json!({"email": "late@example.com"}), 201).await;
    let late_token = token_of(&late);
    sql(&srv.db.url, "UPDATE agent_invitations SET expires_at = '2001-01-01 00:00:00' WHERE agent_id IN (SELECT id FROM agents WHERE email = 'late@example.com');").await;
    assert_error(&anonymous.get(&format!("/api/v1/invitations/{late_token}")).await, 422, "invitation_expired");
    assert_error(
        &anonymous.post(&format!("/api/v1/invitations/{late_token}"), json!({"password": "too late now"})).await,
        422,
        "invitation_expired",
    );
    let again = admin.ok_post("/api/v1/agents/invitations", json!({"email": "late@example.com"}), 201).await;
    assert_eq!(again["agent"]["id"], late["agent"]["id"], "the same agent, invited again");
    assert_error(&anonymous.get(&format!("/api/v1/invitations/{late_token}")).await, 404, "not_found");
    anonymous
        .ok_post(&format!("/api/v1/invitations/{}", token_of(&again)), json!({"password": "in time now"}), 200)
        .await;
    assert_eq!(sign_in(&srv, "late@example.com", "in time now").await, StatusCode::OK);
}

#[tokio::test]
async fn only_admins_invite_and_only_super_admins_invite_super_admins() {
    let srv = TestServer::start().await;
    let admin = srv.agent("admin@example.com", "admin").await;
    let agent = srv.agent("agent@example.com", "agent").await;
    assert_error(&agent.post("/api/v1/agents/invitations", json!({"email": "x@example.com"})).await, 403, "forbidden");
    assert_error(
        &srv.anonymous().post("/api/v1/agents/invitations", json!({"email": "x@example.com"})).await,
        401,
        "unauthorized",
    );
    assert_error(
        &admin.post("/api/v1/agents/invitations", json!({"email": "boss@example.com", "role": "super_admin"})).await,
        403,
        "forbidden",
    );
    assert_error(
        &admin.post("/api/v1/agents/invitations", json!({"email": "y@example.com", "channel_ids": [999]})).await,
        422,
        "unknown_reference",
    );
    let agents = admin.ok_get("/api/v1/agents").await;
    assert_eq!(agents.as_array().unwrap().len(), 2, "nobody was created: {agents}");
    assert_error(&agent.get("/api/v1/onboarding").await, 403, "forbidden");
    assert_error(&agent.post("/api/v1/onboarding/dismiss", json!({})).await, 403, "forbidden");
}

#[tokio::test]
async fn the_first_run_checklist_follows_what_the_install_holds() {
    let srv = TestServer::start().await;
    let admin: Api = srv.agent("admin@example.com", "super_admin").await;
    let all_false = vec![
        ("connect_channel".to_owned(), false),
        ("invite_teammate".to_owned(), false),
        ("answer_message".to_owned(), false),
    ];
    let c = admin.ok_get("/api/v1/onboarding").await;
    assert_eq!(steps(&c), all_false);
    assert_eq!((c["complete"].as_bool(), c["dismissed"].as_bool()), (Some(false), Some(false)));

    let ch = admin
        .ok_post(
            "/api/v1/custom-channels",
            json!({"name": "Site", "webhook_url": "http://127.0.0.1:9/h", "type": "sync"}),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let c = admin.ok_get("/api/v1/onboarding").await;
    assert_eq!(steps(&c)[0], ("connect_channel".to_owned(), true));
    admin.ok_post("/api/v1/agents/invitations", json!({"email": "mate@example.com"}), 201).await;
    assert_eq!(steps(&admin.ok_get("/api/v1/onboarding").await)[1], ("invite_teammate".to_owned(), true));

    // A test message from a customer is not yet an answer; the admin's reply is.
    let conv = admin
        .ok_post(
            &format!("/api/v1/custom-channels/{ch}/inbound"),
            json!({"user_custom_id": "test", "content": "Test"}),
            201,
        )
        .await["conversation_id"]
        .as_i64()
        .unwrap();
    assert!(!admin.ok_get("/api/v1/onboarding").await["complete"].as_bool().unwrap());
    admin.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "It works"}), 201).await;
    let c = admin.ok_get("/api/v1/onboarding").await;
    assert!(steps(&c).iter().all(|(_, done)| *done), "{c}");
    assert_eq!(c["complete"], true);

    let (s, _) = admin.post("/api/v1/onboarding/dismiss", json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(admin.ok_get("/api/v1/onboarding").await["dismissed"], true);
}
