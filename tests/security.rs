//! Issue #13: the defects found by probing the server as an attacker, one module per kind of
//! defect, in one test binary (few integration-test binaries keep the build short). Each test
//! fails without its fix and runs on SQLite and on PostgreSQL (`SWITCHBOARD_TEST_DATABASE`).

mod common;

#[path = "security/customer_scope.rs"]
mod customer_scope;
#[path = "security/damaged_rows.rs"]
mod damaged_rows;
#[path = "security/hardening.rs"]
mod hardening;
#[path = "security/html_policy.rs"]
mod html_policy;
#[path = "security/identity_changes.rs"]
mod identity_changes;
#[path = "security/login_throttle.rs"]
mod login_throttle;
#[path = "security/one_conversation.rs"]
mod one_conversation;
#[path = "security/outbound.rs"]
mod outbound;
#[path = "security/portal_isolation.rs"]
mod portal_isolation;
#[path = "security/secrets.rs"]
mod secrets;
