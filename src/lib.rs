//! Switchboard: an omnichannel help desk server.
//!
//! The binary (`src/main.rs`) is a thin CLI over this library; integration tests start the same
//! server in-process through [`server::start`]. See `ARCHITECTURE.md` for the map.

pub mod auth;
pub mod blobs;
pub mod bus;
pub mod changes;
pub mod channels;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod http;
pub mod outbound;
pub mod portal;
pub mod realtime;
pub mod secrets;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod view;

/// The command that creates the first admin; printed on a first start and shown by the dashboard.
pub const FIRST_ADMIN_COMMAND: &str =
    "switchboard admin create --email you@example.com --password 'choose-a-password' --name 'Your Name'";
