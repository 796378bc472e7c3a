//! #14 item 6: enumerated columns are read as their `domain` enums. A stored value outside its set
//! (a row damaged by hand, a downgrade) is an internal error answered 500 — the request fails, the
//! server does not panic, and neither the value nor the database's words reach the client.

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use serde_json::json;

use crate::common::{TestServer, assert_error};

/// Store `value` in `table.column` of row `id` past the column's CHECK constraint (SQLite: the
/// constraints switched off for this connection; PostgreSQL: the constraint dropped), through a
/// connection of the test's own, as a hand edit or an older version would.
async fn damage(url: &str, table: &str, column: &str, id: i64, value: &str) {
    let update = format!("UPDATE {table} SET {column} = '{value}' WHERE id = {id};");
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            use diesel::Connection;
            use diesel::connection::SimpleConnection;
            let mut conn = diesel::SqliteConnection::establish(path).expect("open the SQLite file");
            SimpleConnection::batch_execute(&mut conn, &format!("PRAGMA ignore_check_constraints = ON; {update}"))
                .expect("damage the row");
        }
        None => {
            let mut conn = AsyncPgConnection::establish(url).await.expect("connect to PostgreSQL");
            conn.batch_execute(&format!("ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_check; {update}"))
                .await
                .expect("damage the row");
        }
    }
}

#[tokio::test]
async fn a_damaged_enumerated_value_is_a_500_without_details() {
    let server = TestServer::start().await;
    let admin = server.agent("admin@damaged.test", "super_admin").await;
    let other = server.agent("other@damaged.test", "agent").await;
    let channel = admin.channel("custom", "Chat", Some("sync")).await;
    let conversation = admin.inbound(channel, "u-1", "hello").await;

    let url = &server.db.url;
    damage(url, "agents", "role", other.agent_id, "overlord").await;
    damage(url, "conversations", "mode", conversation, "chatty").await;
    damage(url, "channel_instances", "kind", channel, "pigeon").await;

    for path in [
        format!("/api/v1/agents/{}", other.agent_id),
        format!("/api/v1/conversations/{conversation}"),
        "/api/v1/channels".to_owned(),
    ] {
        let got = admin.get(&path).await;
        assert_error(&got, 500, "internal");
        let message = got.1["message"].as_str().unwrap();
        for leak in ["overlord", "chatty", "pigeon", "agents", "conversations", "channel_instances"] {
            assert!(!message.contains(leak), "GET {path}: {message:?} leaks {leak:?}");
        }
    }
    // The server is still up and answers what is intact.
    let (status, me) = admin.get("/api/v1/me").await;
    assert_eq!(status.as_u16(), 200, "{me}");
    assert_eq!(me["agent"]["role"], json!("super_admin"));
}
