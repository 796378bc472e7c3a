//! Pure types and rules of the help desk: no I/O, no actix, no diesel, no serde.
//!
//! Everything here can be tested exhaustively with plain unit tests. The store keeps these
//! values as text (`as_str` / `FromStr`); the HTTP layer has its own edge types.

pub mod access;
pub mod html;
pub mod kinds;
pub mod lifecycle;
pub mod linking;
pub mod links;
pub mod mail_notifications;
pub mod notifications;
pub mod routing;
pub mod status;
pub mod templates;
pub mod text;

pub use access::{ChannelScope, Role};
pub use kinds::{ChannelKind, ConnectionState, Direction, Mode, Priority, Rating, Receipt, Source};
pub use status::{StatusBase, missing_required_fields};
