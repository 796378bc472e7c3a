//! Issue #18 item 2 (HD-13): categories (teams) scope technicians. An agent sees the categories they belong to,
//! admins all of them; another category is 404 for the agent; the ticket list filters "my categories"; a category
//! never grants access to a channel's conversations (channel access stays the rule).

use serde_json::json;

use crate::common::TestServer;

// covers HD-13
#[tokio::test]
async fn agents_see_their_own_categories_and_can_list_their_tickets() {
    let srv = TestServer::start().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let ann = srv.agent("ann@example.com", "agent").await;
    let bob = srv.agent("bob@example.com", "agent").await;
    let ch = admin.channel("custom", "Partner portal", Some("async")).await;
    admin.ok_put(&format!("/api/v1/agents/{}/channels", ann.agent_id), json!({"channel_ids": [ch]})).await;
    let billing = admin.ok_post("/api/v1/teams", json!({"name": "Billing", "member_ids": [ann.agent_id]}), 201).await;
    let billing = billing["id"].as_i64().unwrap();
    let hardware = admin.ok_post("/api/v1/teams", json!({"name": "Hardware", "member_ids": [bob.agent_id]}), 201).await;
    let hardware = hardware["id"].as_i64().unwrap();

    let names = |v: serde_json::Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(admin.ok_get("/api/v1/teams").await), vec!["Billing", "Hardware"], "admins see all");
    assert_eq!(names(ann.ok_get("/api/v1/teams").await), vec!["Billing"], "an agent sees their own");
    assert_eq!(ann.ok_get(&format!("/api/v1/teams/{billing}")).await["name"], "Billing");
    assert_eq!(ann.get(&format!("/api/v1/teams/{hardware}")).await.0.as_u16(), 404);

    let in_billing = admin.inbound(ch, "c-1", "Invoice wrong").await;
    let in_hardware = admin.inbound(ch, "c-2", "Screen broken").await;
    let nowhere = admin.inbound(ch, "c-3", "Hello").await;
    for (id, team) in [(in_billing, billing), (in_hardware, hardware)] {
        let (status, body) = admin.patch(&format!("/api/v1/conversations/{id}"), json!({"team_id": team})).await;
        assert!(status.is_success(), "{status}: {body}");
    }
    let ids = |v: serde_json::Value| -> Vec<i64> {
        v["items"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect()
    };
    assert_eq!(ids(ann.ok_get("/api/v1/conversations?my_teams=true").await), vec![in_billing]);
    let mut all = ids(ann.ok_get("/api/v1/conversations").await);
    all.sort_unstable();
    assert_eq!(all, vec![in_billing, in_hardware, nowhere], "categories do not narrow channel access");
    // Bob is in Hardware but may not see the channel: a category grants no access.
    assert!(ids(bob.ok_get("/api/v1/conversations?my_teams=true").await).is_empty());
    assert_eq!(bob.get(&format!("/api/v1/conversations/{in_hardware}")).await.0.as_u16(), 404);
}
