//! Issue #17 item 4: a conversation's activity trail (`GET /conversations/{id}/activity`): each change of
//! status, priority, team, assignee, tags, subject and custom fields, merges on both sides (linked), and the end
//! of a chat with its reason — with who and when; 404 where the conversation is, and the other side of a merge
//! is named only where it is visible.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, TestServer, assert_error};

async fn patch(agent: &Api, id: i64, body: Value) {
    let (s, b) = agent.patch(&format!("/api/v1/conversations/{id}"), body).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

async fn trail(agent: &Api, id: i64) -> Vec<Value> {
    agent.ok_get(&format!("/api/v1/conversations/{id}/activity")).await.as_array().unwrap().clone()
}

/// (kind, actor name, from, to) of each entry.
fn lines(t: &[Value]) -> Vec<(String, String, Value, Value)> {
    t.iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["actor"]["name"].as_str().unwrap().to_owned(),
                e["from"].clone(),
                e["to"].clone(),
            )
        })
        .collect()
}

fn line(kind: &str, who: &str, from: Value, to: Value) -> (String, String, Value, Value) {
    (kind.into(), who.into(), from, to)
}

#[tokio::test]
async fn changes_become_entries_with_who_from_and_to() {
    let srv = TestServer::start().await;
    let ann = srv.agent("ann@example.com", "super_admin").await;
    let shop = ann.channel("custom", "Shop", Some("async")).await;
    let live = ann.channel("custom", "Live", Some("sync")).await;
    let bob_token = srv.agent("bob@example.com", "agent").await;
    ann.ok_put(&format!("/api/v1/agents/{}/channels", bob_token.agent_id), json!({"channel_ids": [shop, live]})).await;
    let bob = srv.login("bob@example.com").await;
    let team = ann.ok_post("/api/v1/teams", json!({"name": "Billing"}), 201).await["id"].as_i64().unwrap();
    let ticket = ann.inbound(shop, "cust-1", "Refund please").await;
    assert!(trail(&ann, ticket).await.is_empty(), "nothing changed yet");

    patch(&ann, ticket, json!({"status": "pending", "priority": "high"})).await;
    patch(&ann, ticket, json!({"team_id": team, "assignee_id": bob.agent_id})).await;
    patch(
        &bob,
        ticket,
        json!({"add_tags": ["vip"], "subject": "Refund for order 7", "custom_fields": {"plan": "gold"}}),
    )
    .await;
    // A change that changes nothing leaves no line.
    patch(&bob, ticket, json!({"priority": "high"})).await;
    patch(&bob, ticket, json!({"custom_fields": {"plan": null}, "team_id": null})).await;

    let t = trail(&bob, ticket).await;
    assert_eq!(
        lines(&t),
        vec![
            line("status", "ann", json!("open"), json!("pending")),
            line("priority", "ann", json!("normal"), json!("high")),
            line("team", "ann", Value::Null, json!(team)),
            line("assignee", "ann", Value::Null, json!(bob.agent_id)),
            line("tags", "bob", json!([]), json!(["vip"])),
            line("subject", "bob", json!("Refund please"), json!("Refund for order 7")),
            line("custom_field", "bob", Value::Null, json!("gold")),
            line("team", "bob", json!(team), Value::Null),
            line("custom_field", "bob", json!("gold"), Value::Null),
        ],
        "{t:#?}"
    );
    assert_eq!(t[6]["field"], "plan");
    assert_eq!(t[0]["actor"], json!({"kind": "agent", "agent_id": ann.agent_id, "name": "ann"}));
    let times: Vec<&str> = t.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let parsed: Vec<chrono::DateTime<chrono::Utc>> = times.iter().map(|s| s.parse().unwrap()).collect();
    assert!(parsed.windows(2).all(|w| w[0] <= w[1]), "oldest first: {times:?}");

    // "Send and close" and the end of a chat, with its reason.
    ann.ok_post(
        &format!("/api/v1/conversations/{ticket}/messages"),
        json!({"content": "Done", "status": "closed"}),
        201,
    )
    .await;
    assert_eq!(
        lines(&trail(&ann, ticket).await).last().unwrap(),
        &line("status", "ann", json!("pending"), json!("closed"))
    );
    let chat = ann.inbound(live, "visitor", "Hi").await;
    bob.ok_post(&format!("/api/v1/conversations/{chat}/end"), json!({}), 200).await;
    let t = trail(&ann, chat).await;
    assert_eq!(t.len(), 1, "{t:#?}");
    assert_eq!(
        (&t[0]["kind"], &t[0]["reason"], &t[0]["actor"]["name"]),
        (&json!("chat_ended"), &json!("agent"), &json!("bob"))
    );
}

#[tokio::test]
async fn a_merge_shows_on_both_sides_linked_and_no_access_is_404() {
    let srv = TestServer::start().await;
    let ann = srv.agent("ann@example.com", "super_admin").await;
    let shop = ann.channel("custom", "Shop", Some("async")).await;
    let vip = ann.channel("custom", "VIP", Some("async")).await;
    let bob = srv.agent("bob@example.com", "agent").await;
    ann.ok_put(&format!("/api/v1/agents/{}/channels", bob.agent_id), json!({"channel_ids": [shop]})).await;
    let survivor = ann.inbound(shop, "cust-1", "First").await;
    let merged = ann.inbound(shop, "cust-1b", "Second").await;
    let hidden = ann.inbound(vip, "cust-2", "Elsewhere").await;
    let number = |v: Value| v["number"].as_i64().unwrap();
    let survivor_no = number(ann.ok_get(&format!("/api/v1/conversations/{survivor}")).await);
    let merged_no = number(ann.ok_get(&format!("/api/v1/conversations/{merged}")).await);

    ann.ok_post(&format!("/api/v1/conversations/{merged}/merge"), json!({"into": survivor}), 200).await;
    let t = trail(&bob, survivor).await;
    assert_eq!(t.len(), 1, "{t:#?}");
    assert_eq!(t[0]["kind"], "merged_from");
    assert_eq!(t[0]["conversation"], json!({"id": merged, "number": merged_no}), "the merged one's history is linked");
    let t = trail(&bob, merged).await;
    assert_eq!(t[0]["kind"], "merged_into");
    assert_eq!(t[0]["conversation"], json!({"id": survivor, "number": survivor_no}));
    assert_eq!(t[0]["actor"]["name"], "ann");

    // Merged from a conversation bob may not see: the line is there, the other side is not named.
    ann.ok_post(&format!("/api/v1/conversations/{hidden}/merge"), json!({"into": survivor}), 200).await;
    let t = trail(&bob, survivor).await;
    assert_eq!(t.len(), 2);
    assert_eq!((&t[1]["kind"], &t[1]["conversation"]), (&json!("merged_from"), &Value::Null), "{t:#?}");
    assert!(!serde_json::to_string(&t).unwrap().contains(&format!("\"id\":{hidden}")));
    assert_eq!(trail(&ann, survivor).await[1]["conversation"]["id"], hidden, "the admin sees it");

    // The hidden one's own trail: 404 for bob, exactly like a conversation that does not exist.
    let got = bob.get(&format!("/api/v1/conversations/{hidden}/activity")).await;
    assert_error(&got, 404, "not_found");
    assert_eq!(got, bob.get("/api/v1/conversations/999999/activity").await);
}
