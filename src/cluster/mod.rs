//! What the nodes of one deployment coordinate beyond the bus (issue #14): [`lease`], so that a job that must run
//! once per deployment (polling a mailbox, keeping a Mattermost bot's socket) runs on exactly one node at a time and
//! is taken over when that node dies; and [`supervisor`], which runs one connector per enabled channel instance of a
//! kind on the node holding its lease (the mailboxes and the Mattermost bots are each one).

pub mod lease;
pub mod supervisor;
