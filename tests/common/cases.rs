//! Request tables for the access suites (`tests/access.rs`, `tests/security/customer_scope.rs`):
//! one request as a [`Case`], sent with the rule that the server never answers 5xx, and the exact
//! shape of an error answer; and the `/api/v1` route table read from `src/http/routes.rs`, so
//! that a table of cases can be checked for completeness.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::Api;

/// An id no row has.
pub const MISSING: i64 = 999_999;

/// One request of a table: method, path, JSON body.
#[derive(Clone, Debug)]
pub struct Case {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
}

pub fn case(method: Method, path: impl Into<String>, body: Option<Value>) -> Case {
    Case { method, path: path.into(), body }
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(b) = &self.body {
            write!(f, " {b}")?;
        }
        Ok(())
    }
}

/// Send a request; the server must never answer 5xx.
pub async fn send(api: &Api, c: &Case) -> (StatusCode, Value) {
    let got = api.call(c.method.clone(), &c.path, c.body.clone()).await;
    assert!(got.0.as_u16() < 500, "{c} answered {} {} (a server error)", got.0, got.1);
    got
}

/// Assert an error answer of the exact shape `{"error": code, "message": non-empty}`.
pub fn expect_error(got: &(StatusCode, Value), status: u16, code: &str, what: &str) {
    assert_eq!(got.0.as_u16(), status, "{what}: expected {status} {code}, got {} {}", got.0, got.1);
    let obj = got.1.as_object().unwrap_or_else(|| panic!("{what}: error body is not an object: {}", got.1));
    assert_eq!(obj.len(), 2, "{what}: error body has exactly error and message: {}", got.1);
    assert_eq!(got.1["error"], code, "{what}: {}", got.1);
    assert!(got.1["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: a message for people: {}", got.1);
}

/// A route of the `/api/v1` scope as `src/http/routes.rs` declares it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteDef {
    pub method: String,
    pub pattern: String,
    /// `module::function`
    pub handler: String,
}

/// Read every `/api/v1` route from the router source, so the tables below can be checked for
/// completeness.
pub fn api_routes() -> Vec<RouteDef> {
    let src: String = include_str!("../../src/http/routes.rs").chars().filter(|c| !c.is_whitespace()).collect();
    let scope = src.split("web::scope(\"/api/v1\")").nth(1).expect("routes.rs has the /api/v1 scope");
    let mut out = Vec::new();
    let mut resource: Option<String> = None;
    let mut rest = scope;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("web::resource(\"") {
            let end = after.find('"').unwrap();
            resource = Some(after[..end].to_owned());
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix(".route(") {
            let (pattern, after) = match after.strip_prefix('"') {
                Some(p) => {
                    let end = p.find('"').unwrap();
                    (p[..end].to_owned(), &p[end + 2..])
                }
                None => (resource.clone().expect("a route inside a resource"), after),
            };
            let after = after.strip_prefix("web::").expect("web::<method>()");
            let method = after[..after.find('(').unwrap()].to_uppercase();
            let to = after.find(".to(").unwrap() + 4;
            let handler = after[to..to + after[to..].find(')').unwrap()].to_owned();
            out.push(RouteDef { method, pattern, handler });
            rest = after;
        } else {
            let mut chars = rest.chars();
            chars.next();
            rest = chars.as_str();
        }
    }
    assert!(out.len() >= 40, "parsed only {} routes from routes.rs: {out:?}", out.len());
    out
}
