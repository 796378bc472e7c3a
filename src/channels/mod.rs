//! Channel connectors: each speaks one provider's protocol and produces normalised inbound
//! messages or sends outbound ones; none decides what a message does to a conversation (the
//! actors do) and none touches the store except through its repositories.
//!
//! - [`custom`]: integrator channels over HTTP, reply webhook.
//! - [`email`]: parsing, threading, junk rules and subject commands of mail (no I/O yet).
//! - [`mattermost`]: a bot on a Mattermost server — REST client, WebSocket, mapping rules, connector.
//! - [`zalo`]: a Zalo Official Account — signed webhooks stored then processed, the OA send API, token refresh.
//! - [`settings`]: the one typed reader of a channel's `settings` JSON, by kind, with its routing part.
//! - [`dispatcher`]: drains the durable outbox with retries and backoff.

pub mod custom;
pub mod dispatcher;
pub mod email;
pub mod mattermost;
pub mod settings;
pub mod zalo;
