//! Leases (issue #14): a job that must run on exactly one node of the deployment at a time — polling a mailbox, and
//! later a Mattermost bot's socket — is named by a [`Job`], and a node runs it only while it holds the job's lease:
//! a row in the database (`store::leases`) with the holder's node id and an expiry.
//!
//! How a user drives it: keep one [`Leases`] per kind of job and call [`Leases::hold`] every second or so with the
//! jobs that should run (say, the enabled mailboxes). It returns the ones this node holds; run exactly those, stop
//! the rest. Each call:
//!
//! - takes a lease that is free or expired (one conditional statement, so two nodes never both win),
//! - renews one it holds once [`Timing::renew_every`] has passed since it was last written (a write every few
//!   seconds per job, nothing in between),
//! - leaves one another node holds alone until it expires ([`Timing::ttl`] after its holder last renewed it),
//! - lets go of one it holds that is no longer wanted.
//!
//! There is no balancing: the first node to find a lease free takes it, so after a cluster start the first node up
//! may run every job. When the database cannot be reached, a node keeps the leases it holds only until their expiry, so it stops
//! before another node may take over. [`Leases::release_all`] hands everything back on a clean stop, so the other
//! nodes take over at their next call; after a crash (SIGKILL) they take over within [`Timing::ttl`] plus one call.
//!
//! Expiries are written and compared with each node's clock: the nodes' clocks must agree to well within
//! [`Timing::ttl`] (NTP does). A brief overlap when they do not is harmless for mailboxes (an import is idempotent by
//! Message-ID).
//!
//! A single node (the in-process bus: no other node can exist) is [`Leases::solo`]: it takes every lease whoever
//! held it, so a restarted node does not wait for the leases of its previous process to expire.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::store::leases::{self, Lease, Take};
use crate::store::{self, Store};

/// A job that runs on one node at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    /// Polling a mailbox (an email channel instance).
    Mailbox(i64),
    /// Keeping a Mattermost bot's WebSocket (a Mattermost channel instance, MM-11).
    Mattermost(i64),
    /// Processing a Zalo OA's stored webhook events and refreshing its tokens (a Zalo channel instance, #16).
    Zalo(i64),
}

impl Job {
    /// Its lease's name in the database.
    pub fn lease_name(&self) -> String {
        match self {
            Job::Mailbox(id) => format!("mailbox:{id}"),
            Job::Mattermost(id) => format!("mattermost:{id}"),
            Job::Zalo(id) => format!("zalo:{id}"),
        }
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lease_name())
    }
}

/// How long a lease lasts and how often its holder renews it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// A lease not renewed for this long is free: the longest a dead node's job waits for another node.
    pub ttl: Duration,
    /// How often the holder writes a new expiry. Well below `ttl`, so a slow database or a missed call does not
    /// lose the lease.
    pub renew_every: Duration,
}

impl Timing {
    /// 15 s leases renewed every 5 s: a job of a dead node is taken over within about 16 s.
    pub const DEFAULT: Timing = Timing { ttl: Duration::from_secs(15), renew_every: Duration::from_secs(5) };
}

/// What to do about one wanted job's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Ours, renewed recently: nothing to write.
    Keep,
    /// Free, expired, ours and due for renewal, or we are solo: write our expiry.
    Take,
    /// Another node's and not expired: not ours to run.
    Wait,
}

/// The decision for one wanted job, given its stored lease (if any). Pure.
pub fn decide(lease: Option<&Lease>, me: &str, now: NaiveDateTime, timing: Timing, solo: bool) -> Decision {
    let Some(lease) = lease else { return Decision::Take };
    let left = lease.expires_at - now;
    let renew_below = chrono::Duration::from_std(timing.ttl.saturating_sub(timing.renew_every)).unwrap_or_default();
    if lease.holder == me {
        if left > renew_below { Decision::Keep } else { Decision::Take }
    } else if solo || lease.expires_at <= now {
        Decision::Take
    } else {
        Decision::Wait
    }
}

/// One node's leases of one kind of job (see the module docs). Cheap to share behind an `Arc`.
pub struct Leases {
    store: Store,
    /// This node's id (`Realtime::node_id`).
    me: Arc<str>,
    timing: Timing,
    solo: bool,
    /// The jobs this node holds, with the expiry it last wrote or read.
    held: Mutex<HashMap<Job, NaiveDateTime>>,
}

impl Leases {
    /// Leases for a node of several (the Redis bus).
    pub fn new(store: Store, me: Arc<str>, timing: Timing) -> Self {
        Self { store, me, timing, solo: false, held: Mutex::new(HashMap::new()) }
    }

    /// Leases for the only node of a deployment: every lease is taken whoever held it.
    pub fn solo(store: Store, me: Arc<str>, timing: Timing) -> Self {
        Self { solo: true, ..Self::new(store, me, timing) }
    }

    /// This node's id, as written in the leases it holds.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Take, renew and let go of leases so that this node holds what it can of `wanted` and nothing else; the jobs
    /// it holds now (see the module docs). Database errors are logged: what was held stays held until its expiry.
    pub async fn hold(&self, wanted: &[Job]) -> HashSet<Job> {
        let unwanted: Vec<Job> = self.lock().keys().filter(|j| !wanted.contains(j)).copied().collect();
        if !unwanted.is_empty() {
            let names: Vec<String> = unwanted.iter().map(Job::lease_name).collect();
            if let Err(e) = leases::release(&self.store, &names, &self.me).await {
                // It expires by itself; this node stops the job either way.
                tracing::warn!(error = %e, "cannot release leases");
            }
            let mut held = self.lock();
            for job in &unwanted {
                held.remove(job);
            }
        }
        let names: Vec<String> = wanted.iter().map(Job::lease_name).collect();
        match leases::of(&self.store, &names).await {
            Ok(rows) => {
                let rows: HashMap<String, Lease> = rows.into_iter().map(|l| (l.name.clone(), l)).collect();
                for job in wanted {
                    self.settle(*job, rows.get(&job.lease_name())).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read leases"),
        }
        self.valid(wanted)
    }

    /// Act on the decision for one wanted job.
    async fn settle(&self, job: Job, lease: Option<&Lease>) {
        let now = store::now();
        match decide(lease, &self.me, now, self.timing, self.solo) {
            Decision::Keep => {
                if let Some(l) = lease {
                    self.lock().insert(job, l.expires_at);
                }
            }
            Decision::Wait => {
                self.lock().remove(&job);
            }
            Decision::Take => {
                let expires_at = now + chrono::Duration::from_std(self.timing.ttl).unwrap_or_default();
                let how = if self.solo { Take::Always } else { Take::IfFree { now } };
                match leases::take(&self.store, &job.lease_name(), &self.me, expires_at, how).await {
                    Ok(true) => {
                        if self.lock().insert(job, expires_at).is_none() {
                            tracing::info!(job = %job, node = %self.me, "lease taken");
                        }
                    }
                    Ok(false) => {
                        if self.lock().remove(&job).is_some() {
                            tracing::warn!(job = %job, node = %self.me, "lease lost to another node");
                        }
                    }
                    // What we held stays ours until its expiry ([`Self::valid`]).
                    Err(e) => tracing::warn!(job = %job, error = %e, "cannot take or renew a lease"),
                }
            }
        }
    }

    /// The wanted jobs this node holds and whose expiry has not passed.
    fn valid(&self, wanted: &[Job]) -> HashSet<Job> {
        let now = store::now();
        self.lock().iter().filter(|(job, until)| **until > now && wanted.contains(job)).map(|(job, _)| *job).collect()
    }

    /// Hand back every lease this node holds (a clean stop): the other nodes take over at their next call.
    pub async fn release_all(&self) {
        let names: Vec<String> = self.lock().drain().map(|(job, _)| job.lease_name()).collect();
        if let Err(e) = leases::release(&self.store, &names, &self.me).await {
            tracing::warn!(error = %e, "cannot release leases; they expire by themselves");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Job, NaiveDateTime>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing { ttl: Duration::from_secs(15), renew_every: Duration::from_secs(5) };

    fn at(s: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap().naive_utc()
    }

    fn lease(holder: &str, expires: i64) -> Lease {
        Lease { name: "mailbox:1".into(), holder: holder.into(), expires_at: at(expires) }
    }

    #[test]
    fn a_free_lease_is_taken() {
        assert_eq!(decide(None, "a", at(0), T, false), Decision::Take);
    }

    #[test]
    fn ones_own_lease_is_kept_then_renewed_before_it_expires() {
        // Written at 0 until 15: kept while more than 10 s are left, renewed from 5 s after the write on.
        assert_eq!(decide(Some(&lease("a", 15)), "a", at(0), T, false), Decision::Keep);
        assert_eq!(decide(Some(&lease("a", 15)), "a", at(4), T, false), Decision::Keep);
        assert_eq!(decide(Some(&lease("a", 15)), "a", at(5), T, false), Decision::Take);
        assert_eq!(decide(Some(&lease("a", 15)), "a", at(14), T, false), Decision::Take);
        assert_eq!(decide(Some(&lease("a", 15)), "a", at(20), T, false), Decision::Take, "expired: try again");
    }

    #[test]
    fn another_nodes_lease_waits_until_it_expires() {
        assert_eq!(decide(Some(&lease("b", 15)), "a", at(0), T, false), Decision::Wait);
        assert_eq!(decide(Some(&lease("b", 15)), "a", at(14), T, false), Decision::Wait);
        assert_eq!(decide(Some(&lease("b", 15)), "a", at(15), T, false), Decision::Take, "expired at 15");
        assert_eq!(decide(Some(&lease("b", 15)), "a", at(60), T, false), Decision::Take);
    }

    #[test]
    fn a_solo_node_takes_any_lease() {
        assert_eq!(decide(Some(&lease("old-process", 15)), "a", at(0), T, true), Decision::Take);
        assert_eq!(decide(Some(&lease("a", 15)), "a", at(0), T, true), Decision::Keep, "its own is kept as usual");
    }

    #[test]
    fn lease_names_are_stable() {
        assert_eq!(Job::Mailbox(42).lease_name(), "mailbox:42");
        assert_eq!(Job::Mailbox(42).to_string(), "mailbox:42");
    }
}
