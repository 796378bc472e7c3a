//! Issue #13 (see tests/security.rs), item 1: customers and companies follow channel access
//! (HD-3, DESIGN invariant 4).
//!
//! An agent limited to channel A reaches only customers with an identity or a conversation on
//! A (their own or, for a customer merged away, their survivor's). Every customer route answers
//! for a customer of channel B exactly what it answers for an id no row has; lists, search,
//! totals and company lists leave B's customers out; a profile shows the global identities
//! (email, phone) and the external ids of channels in scope only. Admins see everything.
//!
//! The desk (`Desk::new`): channels A and B, alice with A only, and customers
//! - ann: an external id on A and one on B, an email, company "Apple Co";
//! - ben: on B only (email, company "Zebra Inc"), and gus, on B, merged into ben;
//! - cat: an external id on B only, but a conversation on A (an admin wrote to her there),
//!   company "Cat Corp";
//! - eve: on B, into whom dan (on B) was merged, into whom dora (on A) had been merged — eve
//!   is on A only through a merged record; dora and dan are pointers to eve.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::cases::{Case, MISSING, api_routes, case, expect_error, send};
use crate::common::{Api, TestServer};

/// Two answers are the same once the ids they name are blanked out (`hidden` in one, `MISSING`
/// in the other): for a reference in a body, whose message names the id it was given.
fn assert_same_answer(got: &(StatusCode, Value), hidden: i64, absent: &(StatusCode, Value), what: &str) {
    assert_eq!(got.0, absent.0, "{what}: {} vs {}", got.1, absent.1);
    assert_eq!(
        blank(&got.1.to_string(), hidden),
        blank(&absent.1.to_string(), MISSING),
        "{what}: must answer like a missing one"
    );
}

/// `text` with every number equal to `id` (a whole run of digits) replaced by `N`.
fn blank(text: &str, id: i64) -> String {
    let (mut out, mut digits) = (String::new(), String::new());
    let flush = |digits: &mut String, out: &mut String| {
        out.push_str(if *digits == id.to_string() { "N" } else { digits });
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// Compare two snapshots key by key, naming what changed.
fn assert_unchanged(before: &Value, after: &Value, what: &str) {
    let (b, a) = (before.as_object().unwrap(), after.as_object().unwrap());
    let changed: BTreeSet<&String> = b.keys().chain(a.keys()).filter(|k| b.get(*k) != a.get(*k)).collect();
    assert!(changed.is_empty(), "{what} changed {changed:?}:\nbefore: {before}\nafter:  {after}");
}

/// Ids of a page's items (`{"items": [...]}`) or of a plain list.
fn ids(v: &Value) -> BTreeSet<i64> {
    v.get("items").unwrap_or(v).as_array().unwrap_or_else(|| panic!("a list: {v}")).iter().map(id).collect()
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("an id: {v}"))
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

type Ident = (String, Option<i64>, String);

/// A profile's identities as (kind, channel, value), sorted.
fn identities(profile: &Value) -> Vec<Ident> {
    let mut out: Vec<Ident> = profile["identities"]
        .as_array()
        .unwrap_or_else(|| panic!("a profile: {profile}"))
        .iter()
        .map(|i| {
            (i["kind"].as_str().unwrap().to_owned(), i["channel_id"].as_i64(), i["value"].as_str().unwrap().to_owned())
        })
        .collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<Ident>) -> Vec<Ident> {
    v.sort();
    v
}

fn ext(ch: i64, value: &str) -> Ident {
    ("external".into(), Some(ch), value.into())
}

fn email(value: &str) -> Ident {
    ("email".into(), None, value.into())
}

/// Every route that addresses one customer, for `target`, with bodies that would change it;
/// `other` is the merge target, `identity` one of `target`'s identities, `tag` makes the new
/// identities' values unique. Merge comes last: it merges `target` away.
fn customer_cases(target: i64, other: i64, identity: i64, ch_a: i64, agent: i64, tag: u32) -> Vec<(Case, u16)> {
    let c = format!("/api/v1/customers/{target}");
    vec![
        (case(Method::GET, c.clone(), None), 200),
        (case(Method::GET, format!("{c}/conversations"), None), 200),
        (case(Method::PATCH, c.clone(), Some(json!({"name": "Taken over"}))), 200),
        (
            case(
                Method::PATCH,
                c.clone(),
                Some(json!({"company": "Taken Co", "notes": "mine now", "custom_fields": {"k": "v"}})),
            ),
            200,
        ),
        (case(Method::PATCH, c.clone(), Some(json!({"owner_agent_id": agent}))), 200),
        (case(Method::PATCH, c.clone(), Some(json!({"company": null, "owner_agent_id": null}))), 200),
        (
            case(
                Method::POST,
                format!("{c}/identities"),
                Some(json!({"kind": "email", "value": format!("new-{tag}@example.com")})),
            ),
            201,
        ),
        (
            case(
                Method::POST,
                format!("{c}/identities"),
                Some(json!({"kind": "phone", "value": format!("+48 600 100 {tag:03}")})),
            ),
            201,
        ),
        (
            case(
                Method::POST,
                format!("{c}/identities"),
                Some(json!({"kind": "external", "value": format!("linked-{tag}"), "channel_id": ch_a})),
            ),
            201,
        ),
        (case(Method::DELETE, format!("{c}/identities/{identity}"), None), 204),
        (case(Method::POST, format!("{c}/merge"), Some(json!({"into": other}))), 200),
    ]
}

/// The `/api/v1` routes of customers and companies in `src/http/routes.rs`, as (method, path).
fn customer_routes() -> BTreeSet<(String, String)> {
    let out: BTreeSet<_> = api_routes()
        .into_iter()
        .filter(|r| r.pattern.starts_with("/customers") || r.pattern.starts_with("/companies"))
        .map(|r| (r.method, format!("/api/v1{}", r.pattern)))
        .collect();
    assert!(out.len() >= 8, "found the customer routes in routes.rs: {out:?}");
    out
}

struct Desk {
    /// Kept for its lifetime: the server stops when it is dropped.
    _srv: TestServer,
    admin: Api,
    /// alice with an API token.
    alice: Api,
    /// alice signed in with the dashboard session (cookie + CSRF).
    alice_web: Api,
    ch_a: i64,
    ch_b: i64,
    ann: i64,
    /// ann's conversation on A (a custom channel: customer messages through the API work).
    ann_conv_a: i64,
    ben: i64,
    /// ben's email identity (global, but ben is not alice's).
    ben_email: i64,
    gus: i64,
    cat: i64,
    dora: i64,
    dan: i64,
    eve: i64,
}

impl Desk {
    async fn new() -> Self {
        let srv = TestServer::start().await;
        let admin = srv.agent("admin@example.com", "super_admin").await;
        let ch_a = admin.channel("custom", "Channel A", Some("async")).await;
        let ch_b = admin.channel("custom", "Channel B", Some("async")).await;
        let alice = srv.agent("alice@example.com", "agent").await;
        let (s, view) =
            admin.put(&format!("/api/v1/agents/{}/channels", alice.agent_id), json!({"channel_ids": [ch_a]})).await;
        assert_eq!(s, StatusCode::OK, "give alice channel A: {view}");
        let alice_web = srv.login("alice@example.com").await;

        let inbound = |body: Value| {
            let admin = admin.clone();
            async move { admin.ok_post("/api/v1/conversations", body, 201).await }
        };
        let user = |v: &Value| v["user_id"].as_i64().unwrap();
        let a = inbound(json!({"channel": ch_a, "user_custom_id": "ann-a", "email": "ann@example.com",
            "name": "Ann", "company": "Apple Co", "content": "apple question"}))
        .await;
        let b = inbound(json!({"channel": ch_b, "user_custom_id": "ann-b", "email": "ann@example.com",
            "content": "zebra question from ann"}))
        .await;
        assert_eq!(user(&a), user(&b), "the same email on both channels: one customer");
        let ben = user(
            &inbound(json!({"channel": ch_b, "user_custom_id": "ben-b", "email": "ben@example.com",
                "name": "Ben Zebra", "company": "Zebra Inc", "content": "zebra secret"}))
            .await,
        );
        let gus =
            user(&inbound(json!({"channel": ch_b, "user_custom_id": "gus-b", "name": "Gus", "content": "hi"})).await);
        admin.ok_post(&format!("/api/v1/customers/{gus}/merge"), json!({"into": ben}), 200).await;
        let cat =
            user(&inbound(json!({"channel": ch_b, "user_custom_id": "cat-b", "name": "Cat", "content": "hi"})).await);
        admin
            .ok_post(
                "/api/v1/conversations",
                json!({"channel": ch_a, "customer_id": cat, "subject": "Outreach", "content": "hello cat"}),
                201,
            )
            .await;
        let (s, patched) = admin.patch(&format!("/api/v1/customers/{cat}"), json!({"company": "Cat Corp"})).await;
        assert_eq!(s, StatusCode::OK, "{patched}");
        let dora =
            user(&inbound(json!({"channel": ch_a, "user_custom_id": "dora-a", "name": "Dora", "content": "hi"})).await);
        let dan =
            user(&inbound(json!({"channel": ch_b, "user_custom_id": "dan-b", "name": "Dan", "content": "hi"})).await);
        let eve =
            user(&inbound(json!({"channel": ch_b, "user_custom_id": "eve-b", "name": "Eve", "content": "hi"})).await);
        admin.ok_post(&format!("/api/v1/customers/{dora}/merge"), json!({"into": dan}), 200).await;
        admin.ok_post(&format!("/api/v1/customers/{dan}/merge"), json!({"into": eve}), 200).await;

        let ben_profile = admin.ok_get(&format!("/api/v1/customers/{ben}")).await;
        let ben_email = ben_profile["identities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["kind"] == "email")
            .map(id)
            .unwrap_or_else(|| panic!("ben has an email: {ben_profile}"));
        Self {
            admin,
            alice,
            alice_web,
            ch_a,
            ch_b,
            ann: user(&a),
            ann_conv_a: a["conversation_id"].as_i64().unwrap(),
            ben,
            ben_email,
            gus,
            cat,
            dora,
            dan,
            eve,
            _srv: srv,
        }
    }

    /// The customers alice must never reach (ben, and gus who was merged into him).
    fn hidden(&self) -> [i64; 2] {
        [self.ben, self.gus]
    }

    fn alices(&self) -> [(&'static str, &Api); 2] {
        [("token", &self.alice), ("session", &self.alice_web)]
    }

    /// Everything alice could have changed, as the admin sees it.
    async fn snapshot(&self) -> Value {
        let a = &self.admin;
        let mut out = serde_json::Map::new();
        for cu in [self.ann, self.ben, self.gus, self.cat, self.dora, self.dan, self.eve] {
            out.insert(format!("customer {cu}"), a.ok_get(&format!("/api/v1/customers/{cu}")).await);
        }
        for path in [
            "/api/v1/customers?per_page=100",
            "/api/v1/companies",
            "/api/v1/conversations?include_merged=true&show_active_chats=true&per_page=100",
            "/api/v1/audit?limit=200",
        ] {
            out.insert(path.into(), a.ok_get(path).await);
        }
        Value::Object(out)
    }
}

#[tokio::test]
async fn every_customer_route_answers_for_another_channels_customer_like_for_a_missing_one() {
    let d = Desk::new().await;

    // The table covers every customer route of routes.rs (the two lists are the next test's).
    let mut covered: BTreeSet<(String, String)> = customer_cases(1, 2, 3, 4, 5, 0)
        .into_iter()
        .map(|(c, _)| (c.method.to_string(), c.path.replace("/1", "/{id}").replace("/3", "/{identity_id}")))
        .collect();
    covered.insert(("GET".into(), "/api/v1/customers".into()));
    covered.insert(("GET".into(), "/api/v1/companies".into()));
    for route in customer_routes() {
        assert!(covered.contains(&route), "customer route {route:?} is not in customer_cases");
    }

    let before = d.snapshot().await;
    for (who, alice) in d.alices() {
        for hidden in d.hidden() {
            let cases = customer_cases(hidden, d.ann, d.ben_email, d.ch_a, alice.agent_id, 1);
            let absent = customer_cases(MISSING, d.ann, d.ben_email, d.ch_a, alice.agent_id, 1);
            for ((c, _), (missing, _)) in cases.into_iter().zip(absent) {
                let what = format!("alice ({who}) {c}");
                let got = send(alice, &c).await;
                expect_error(&got, 404, "not_found", &what);
                assert_eq!(got, send(alice, &missing).await, "{what}: must answer like a missing customer");
            }

            // Named in a body: the merge target, the customer to write to, the author of a
            // customer message — "does not exist", as for an id no row has.
            let named = |c: i64| {
                [
                    case(Method::POST, format!("/api/v1/customers/{}/merge", d.ann), Some(json!({"into": c}))),
                    case(
                        Method::POST,
                        "/api/v1/conversations",
                        Some(json!({"channel": d.ch_a, "customer_id": c, "content": "hello"})),
                    ),
                    case(
                        Method::POST,
                        format!("/api/v1/conversations/{}/messages", d.ann_conv_a),
                        Some(json!({"content": "as them", "user_id": c})),
                    ),
                ]
            };
            for (c, missing) in named(hidden).into_iter().zip(named(MISSING)) {
                let what = format!("alice ({who}) {c}");
                let got = send(alice, &c).await;
                expect_error(&got, 422, "unknown_reference", &what);
                assert_same_answer(&got, hidden, &send(alice, &missing).await, &what);
            }
        }

        // ann is alice's, but not her external id on B: it cannot be unlinked, and B takes no
        // new external id — answered like a missing identity and a missing channel.
        let ann_b = d.admin.ok_get(&format!("/api/v1/customers/{}", d.ann)).await["identities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["channel_id"] == d.ch_b)
            .map(id)
            .expect("ann's id on B");
        let got =
            send(alice, &case(Method::DELETE, format!("/api/v1/customers/{}/identities/{ann_b}", d.ann), None)).await;
        expect_error(&got, 404, "not_found", &format!("alice ({who}) unlinks ann's id on B"));
        let absent =
            send(alice, &case(Method::DELETE, format!("/api/v1/customers/{}/identities/{MISSING}", d.ann), None)).await;
        assert_eq!(got, absent, "alice ({who}) unlinks ann's id on B: like a missing identity");
        let link = |ch: i64| {
            case(
                Method::POST,
                format!("/api/v1/customers/{}/identities", d.ann),
                Some(json!({"kind": "external", "value": "sneak", "channel_id": ch})),
            )
        };
        let got = send(alice, &link(d.ch_b)).await;
        expect_error(&got, 422, "unknown_reference", &format!("alice ({who}) links an id on B"));
        assert_same_answer(&got, d.ch_b, &send(alice, &link(MISSING)).await, "an id on B");
    }
    assert_unchanged(&before, &d.snapshot().await, "alice's requests on B's customers");

    // The admin reaches every one of them.
    for cu in [d.ben, d.gus] {
        d.admin.ok_get(&format!("/api/v1/customers/{cu}")).await;
        d.admin.ok_get(&format!("/api/v1/customers/{cu}/conversations")).await;
    }

    // Positive controls: the same routes work for alice on customers of A (each credential
    // its own), on one reached only through a conversation (cat) and on one reached only
    // through a merged record (eve), so the 404s above are about access and nothing else.
    for (n, (who, alice)) in d.alices().into_iter().enumerate() {
        let n = n as u32;
        let mut targets = vec![];
        for k in 0..2 {
            let conv = d.admin.inbound(d.ch_a, &format!("own-{who}-{k}"), "apple").await;
            targets
                .push(d.admin.ok_get(&format!("/api/v1/conversations/{conv}")).await["customer_id"].as_i64().unwrap());
        }
        if n == 0 {
            targets.push(d.cat);
        } else {
            targets.push(d.eve);
        }
        // Each target is merged into ann at the end of its table; the identity unlinked is a
        // phone alice links first (cat shows her no identity at all: hers is on B).
        for (k, target) in targets.into_iter().enumerate() {
            let identity = alice
                .ok_post(
                    &format!("/api/v1/customers/{target}/identities"),
                    json!({"kind": "phone", "value": format!("+48 600 200 {n}{k:02}")}),
                    201,
                )
                .await["id"]
                .as_i64()
                .unwrap();
            for (c, ok) in customer_cases(target, d.ann, identity, d.ch_a, alice.agent_id, 10 * (n + 1) + k as u32) {
                let got = send(alice, &c).await;
                assert_eq!(got.0.as_u16(), ok, "alice ({who}) on a customer of hers: {c}: {}", got.1);
            }
        }
    }
}

#[tokio::test]
async fn lists_search_totals_and_companies_leave_out_another_channels_customers() {
    let d = Desk::new().await;
    let (ann, ben, cat, eve) = (d.ann, d.ben, d.cat, d.eve);
    // (query, what alice finds, what the admin finds)
    let cases: Vec<(&str, Vec<i64>, Vec<i64>)> = vec![
        ("", vec![ann, cat, eve], vec![ann, ben, cat, eve]),
        ("per_page=100", vec![ann, cat, eve], vec![ann, ben, cat, eve]),
        ("q=zebra", vec![], vec![ben]),
        ("q=ZEBRA", vec![], vec![ben]),
        ("q=ben%40", vec![], vec![ben]),
        ("q=gus", vec![], vec![ben]),   // gus' id moved to ben with the merge
        ("q=ann-b", vec![], vec![ann]), // ann's id on B is not alice's to search by
        ("q=ann-a", vec![ann], vec![ann]),
        ("q=ann%40example", vec![ann], vec![ann]),
        ("q=cat-b", vec![], vec![cat]),
        ("q=cat", vec![cat], vec![cat]),
        ("q=dora-a", vec![eve], vec![eve]),
        ("q=dan-b", vec![], vec![eve]),
        ("q=-b", vec![], vec![ann, ben, cat, eve]),
        ("q=-a", vec![ann, eve], vec![ann, eve]),
    ];
    for (q, alice_finds, admin_finds) in &cases {
        let path = format!("/api/v1/customers?{q}");
        for (who, alice) in d.alices() {
            let page = alice.ok_get(&path).await;
            assert_eq!(ids(&page), alice_finds.iter().copied().collect(), "alice ({who}) GET {path}: {page}");
            assert_eq!(page["total"], alice_finds.len(), "alice ({who}) GET {path}: the total counts what she sees");
        }
        let page = d.admin.ok_get(&path).await;
        assert_eq!(ids(&page), admin_finds.iter().copied().collect(), "admin GET {path}: {page}");
        assert_eq!(page["total"], admin_finds.len(), "admin GET {path}");
    }

    // Paging: the total and the pages agree on what alice may see.
    for (who, alice) in d.alices() {
        let mut seen = BTreeSet::new();
        for page in 1..=4 {
            let got = alice.ok_get(&format!("/api/v1/customers?per_page=1&page={page}")).await;
            assert_eq!(got["total"], 3, "alice ({who}) page {page}: {got}");
            assert_eq!(got["items"].as_array().unwrap().len(), usize::from(page <= 3), "alice ({who}) page {page}");
            seen.extend(ids(&got));
        }
        assert_eq!(seen, BTreeSet::from([ann, cat, eve]), "alice ({who}) pages through her customers");
    }

    // Companies: those with a customer alice may see — ann's, and cat's (cat is hers through a
    // conversation only); never Zebra Inc, whose only customer is on B.
    for (q, alice_sees, admin_sees) in [
        ("", vec!["Apple Co", "Cat Corp"], vec!["Apple Co", "Cat Corp", "Zebra Inc"]),
        ("?q=zebra", vec![], vec!["Zebra Inc"]),
        ("?q=co", vec!["Apple Co", "Cat Corp"], vec!["Apple Co", "Cat Corp"]),
        ("?q=inc", vec![], vec!["Zebra Inc"]),
    ] {
        let path = format!("/api/v1/companies{q}");
        for (who, alice) in d.alices() {
            assert_eq!(names(&alice.ok_get(&path).await), alice_sees, "alice ({who}) GET {path}");
        }
        assert_eq!(names(&d.admin.ok_get(&path).await), admin_sees, "admin GET {path}");
    }

    // Once alice's channel reaches ben (an admin writes to him on A), he and his company are hers.
    d.admin
        .ok_post("/api/v1/conversations", json!({"channel": d.ch_a, "customer_id": ben, "content": "hello ben"}), 201)
        .await;
    let page = d.alice.ok_get("/api/v1/customers?q=zebra").await;
    assert_eq!(ids(&page), BTreeSet::from([ben]), "{page}");
    assert_eq!(names(&d.alice.ok_get("/api/v1/companies?q=zebra").await), ["Zebra Inc"]);
    d.alice.ok_get(&format!("/api/v1/customers/{}", d.gus)).await;
}

#[tokio::test]
async fn a_profile_shows_only_the_identities_of_channels_in_scope() {
    let d = Desk::new().await;
    let (a, b) = (d.ch_a, d.ch_b);

    // (customer, what alice sees, what the admin sees)
    let cases = [
        (
            d.ann,
            vec![ext(a, "ann-a"), email("ann@example.com")],
            vec![ext(a, "ann-a"), email("ann@example.com"), ext(b, "ann-b")],
        ),
        (d.cat, vec![], vec![ext(b, "cat-b")]),
        (d.eve, vec![ext(a, "dora-a")], vec![ext(b, "eve-b"), ext(a, "dora-a"), ext(b, "dan-b")]),
        (d.dora, vec![], vec![]),
        (d.dan, vec![], vec![]),
    ];
    for (customer, alice_sees, admin_sees) in &cases {
        let path = format!("/api/v1/customers/{customer}");
        for (who, alice) in d.alices() {
            let profile = alice.ok_get(&path).await;
            assert_eq!(identities(&profile), sorted(alice_sees.clone()), "alice ({who}) GET {path}: {profile}");
        }
        assert_eq!(identities(&d.admin.ok_get(&path).await), sorted(admin_sees.clone()), "admin GET {path}");
    }
    // The merged pointers lead alice to eve, who is hers through dora's record.
    for pointer in [d.dora, d.dan] {
        assert_eq!(d.alice.ok_get(&format!("/api/v1/customers/{pointer}")).await["merged_into_id"], d.eve);
    }

    // A customer's conversations: only those on A.
    let history = |api: Api, cu: i64| async move {
        let page = api.ok_get(&format!("/api/v1/customers/{cu}/conversations")).await;
        page["items"].as_array().unwrap().iter().map(|c| c["channel_id"].as_i64().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(history(d.alice.clone(), d.eve).await, vec![a], "alice: eve's history");
    assert_eq!(history(d.admin.clone(), d.eve).await.len(), 3, "admin: eve's history");

    // What a change answers is the profile as alice sees it.
    let (s, patched) = d.alice.patch(&format!("/api/v1/customers/{}", d.ann), json!({"notes": "vip"})).await;
    assert_eq!(s, StatusCode::OK, "{patched}");
    assert_eq!(identities(&patched), sorted(vec![ext(a, "ann-a"), email("ann@example.com")]), "{patched}");

    // An email already someone else's: named only when alice may see its owner.
    let (s, taken) = d
        .alice
        .post(&format!("/api/v1/customers/{}/identities", d.ann), json!({"kind": "email", "value": "ben@example.com"}))
        .await;
    expect_error(&(s, taken.clone()), 409, "conflict", "alice links ben's email to ann");
    assert_eq!(taken["message"], "email \"ben@example.com\" belongs to another customer", "{taken}");
    let (s, named) = d
        .admin
        .post(&format!("/api/v1/customers/{}/identities", d.ann), json!({"kind": "email", "value": "ben@example.com"}))
        .await;
    expect_error(&(s, named.clone()), 409, "conflict", "the admin links ben's email to ann");
    assert!(named["message"].as_str().unwrap().ends_with(&format!("customer {}", d.ben)), "{named}");
    let (s, named) = d
        .alice
        .post(
            &format!("/api/v1/customers/{}/identities", d.cat),
            json!({"kind": "external", "value": "ann-a", "channel_id": a}),
        )
        .await;
    expect_error(&(s, named.clone()), 409, "conflict", "alice links ann's id on A to cat");
    assert!(named["message"].as_str().unwrap().ends_with(&format!("customer {}", d.ann)), "{named}");
}

#[tokio::test]
async fn merging_needs_both_customers_in_scope() {
    let d = Desk::new().await;
    // ben (B) into ann, and ann into ben: neither exists for alice.
    let (s, body) = d.alice.post(&format!("/api/v1/customers/{}/merge", d.ben), json!({"into": d.ann})).await;
    expect_error(&(s, body), 404, "not_found", "alice merges ben into ann");
    let (s, body) = d.alice.post(&format!("/api/v1/customers/{}/merge", d.ann), json!({"into": d.ben})).await;
    expect_error(&(s, body.clone()), 422, "unknown_reference", "alice merges ann into ben");
    assert_eq!(body["message"], format!("customer {} does not exist", d.ben));
    assert!(d.admin.ok_get(&format!("/api/v1/customers/{}", d.ann)).await["merged_into_id"].is_null());

    // cat (hers through a conversation) into ann: the survivor gets cat's id on B, which alice's
    // view of it leaves out; cat stays reachable as a pointer.
    let merged = d.alice.ok_post(&format!("/api/v1/customers/{}/merge", d.cat), json!({"into": d.ann}), 200).await;
    assert_eq!(id(&merged), d.ann);
    assert_eq!(identities(&merged), sorted(vec![ext(d.ch_a, "ann-a"), email("ann@example.com")]), "{merged}");
    let admin_view = d.admin.ok_get(&format!("/api/v1/customers/{}", d.ann)).await;
    assert!(identities(&admin_view).contains(&ext(d.ch_b, "cat-b")), "{admin_view}");
    assert_eq!(d.alice.ok_get(&format!("/api/v1/customers/{}", d.cat)).await["merged_into_id"], d.ann);

    // The admin merges across channels as before.
    let merged = d.admin.ok_post(&format!("/api/v1/customers/{}/merge", d.ben), json!({"into": d.ann}), 200).await;
    assert!(identities(&merged).contains(&email("ben@example.com")), "{merged}");
    // gus pointed at ben; now at ann, whom alice may see — and so she may see gus.
    assert_eq!(d.alice.ok_get(&format!("/api/v1/customers/{}", d.gus)).await["merged_into_id"], d.ann);
    assert_eq!(d.alice.ok_get(&format!("/api/v1/customers/{}", d.ben)).await["merged_into_id"], d.ann);
}

/// The routes added since #13 (Mattermost bots, #15) follow the same rule: an agent without access to
/// a bot gets, for the bot itself, its recipients, an outbound conversation from it, its conversations
/// and their customers, exactly what an id no row has (404) — and the bot posts nothing for them —;
/// lists leave all of it out; the bot token appears in no answer. Given the bot, the agent reaches it
/// all (managing it stays the super admin's: `tests/access.rs`, `cc_11_*`).
#[tokio::test]
async fn a_mattermost_bots_conversations_and_customers_follow_channel_access() {
    use std::time::Duration;

    use crate::common::fake_mattermost::FakeMattermost;
    const WAIT: Duration = Duration::from_secs(15);

    let mm = FakeMattermost::start().await;
    let maria = mm.user("maria", "Maria", "Moss", "maria@mm.example");
    let dm = mm.dm(&maria);
    let srv = TestServer::start().await;
    let boss = srv.agent("boss@example.com", "super_admin").await;
    let ch_a = boss.channel("custom", "Channel A", Some("async")).await;
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
    // A DM from maria makes a conversation (and a customer) on the bot.
    mm.post_as(&maria, &dm, "where is my parcel", "");
    let of_bot = format!("/api/v1/conversations?channel={bot}&show_active_chats=true&per_page=100");
    let deadline = tokio::time::Instant::now() + WAIT;
    let conv = loop {
        if let Some(c) = boss.ok_get(&of_bot).await["items"].as_array().and_then(|l| l.first()).cloned() {
            break c;
        }
        assert!(tokio::time::Instant::now() < deadline, "maria's DM made no conversation");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (conv, customer) = (id(&conv), conv["customer_id"].as_i64().unwrap());

    let alice = srv.agent("alice@example.com", "agent").await;
    boss.ok_put(&format!("/api/v1/agents/{}/channels", alice.agent_id), json!({"channel_ids": [ch_a]})).await;
    let alice_web = srv.login("alice@example.com").await;
    let cases = |bot: i64, conv: i64, customer: i64| {
        vec![
            case(Method::GET, format!("/api/v1/mattermost-channels/{bot}"), None),
            case(Method::GET, format!("/api/v1/mattermost-channels/{bot}/recipients?q=ma"), None),
            case(
                Method::POST,
                format!("/api/v1/mattermost-channels/{bot}/conversations"),
                Some(json!({"to": {"kind": "member", "id": maria}, "content": "hello from alice"})),
            ),
            case(Method::GET, format!("/api/v1/channels/{bot}"), None),
            case(Method::GET, format!("/api/v1/conversations/{conv}"), None),
            case(Method::GET, format!("/api/v1/conversations/{conv}/messages"), None),
            case(Method::POST, format!("/api/v1/conversations/{conv}/messages"), Some(json!({"content": "hi"}))),
            case(Method::PATCH, format!("/api/v1/conversations/{conv}"), Some(json!({"tags": ["mine"]}))),
            case(Method::GET, format!("/api/v1/customers/{customer}"), None),
            case(Method::GET, format!("/api/v1/customers/{customer}/conversations"), None),
            case(Method::PATCH, format!("/api/v1/customers/{customer}"), Some(json!({"name": "Taken over"}))),
        ]
    };
    let before = (boss.ok_get(&of_bot).await, boss.ok_get(&format!("/api/v1/customers/{customer}")).await);
    let token = mm.bot_token.clone();
    for (who, api) in [("token", &alice), ("session", &alice_web)] {
        for (c, missing) in cases(bot, conv, customer).into_iter().zip(cases(MISSING, MISSING, MISSING)) {
            let what = format!("alice ({who}) {c}");
            let got = send(api, &c).await;
            expect_error(&got, 404, "not_found", &what);
            assert_eq!(got, send(api, &missing).await, "{what}: must answer like a missing one");
        }
        assert_eq!(api.ok_get("/api/v1/mattermost-channels").await, json!([]), "alice ({who})");
        let channels = api.ok_get("/api/v1/channels").await;
        assert_eq!(ids(&channels), BTreeSet::from([ch_a]), "alice ({who}): {channels}");
        for path in [of_bot.clone(), "/api/v1/conversations?show_active_chats=true&per_page=100".to_owned()] {
            let page = api.ok_get(&path).await;
            assert!(!ids(&page).contains(&conv), "alice ({who}) GET {path}: {page}");
        }
        for q in ["maria", "Moss", "mm.example", &maria] {
            let page = api.ok_get(&format!("/api/v1/customers?q={q}")).await;
            assert_eq!((ids(&page), &page["total"]), (BTreeSet::new(), &json!(0)), "alice ({who}) searches {q}");
        }
    }
    assert!(mm.bot_posts().is_empty(), "the bot posted for alice: {:?}", mm.bot_posts());
    let after = (boss.ok_get(&of_bot).await, boss.ok_get(&format!("/api/v1/customers/{customer}")).await);
    assert_eq!(before, after, "alice's requests changed nothing");

    // Given the bot, alice reaches all of it; the token is in none of the answers.
    boss.ok_put(&format!("/api/v1/agents/{}/channels", alice.agent_id), json!({"channel_ids": [ch_a, bot]})).await;
    for (who, api) in [("token", &alice), ("session", &alice_web)] {
        for c in cases(bot, conv, customer).into_iter().filter(|c| c.method == Method::GET) {
            let got = send(api, &c).await;
            assert_eq!(got.0, StatusCode::OK, "alice ({who}) {c}: {}", got.1);
            assert!(!got.1.to_string().contains(&token), "alice ({who}) {c} shows the bot token");
        }
        let list = api.ok_get("/api/v1/mattermost-channels").await;
        assert_eq!(ids(&list), BTreeSet::from([bot]), "alice ({who})");
        assert!(ids(&api.ok_get(&of_bot).await).contains(&conv), "alice ({who})");
    }
    srv.stop().await;
    mm.stop().await;
}
