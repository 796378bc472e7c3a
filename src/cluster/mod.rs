//! What the nodes of one deployment coordinate beyond the bus (issue #14): [`lease`], so that a job that must run
//! once per deployment (polling a mailbox; later a Mattermost bot's socket) runs on exactly one node at a time and is
//! taken over when that node dies.

pub mod lease;
