//! Login throttling (issue #13): failed sign-ins are limited per account and per client address,
//! each by a keyed GCRA limiter of the `governor` crate. This node's counts live in its memory:
//! with several nodes behind a load balancer each node counts what it sees.
//!
//! - The account key is the normalised email asked for, whether or not such an agent exists, so a
//!   throttled answer tells nothing about which accounts exist. A malformed email has no account
//!   key (no account can have it); the address limit still applies.
//! - The address key is the peer's IP address; IPv6 addresses count by their /64 network (one
//!   host usually holds a whole /64), IPv4-mapped IPv6 addresses as the IPv4 address.
//! - An attempt *reserves* one failure on both keys before anything else, so a refused attempt
//!   costs no database read and no argon2 work, and parallel guesses cannot slip past the limit
//!   together. A successful sign-in gives its reservations back (a success never counts as a
//!   failure); so does an attempt refused by the other key. An attempt that is neither refused
//!   nor given back counts as a failure.
//! - Idle keys (whose allowance is full again) are dropped every [`SWEEP_EVERY`], so memory stays
//!   bounded by the keys that failed within one window.
//!
//! No HTTP here: the login handler turns [`Throttled`] into 429 with `Retry-After`. Failures and
//! refusals are logged (the address and which limit, never the email or the password) and
//! counted as `switchboard_login_failed_total` and `switchboard_login_throttled_total{limit}`.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::{InMemoryState, StateStore};
use governor::{Quota, RateLimiter};

/// How often idle keys are dropped.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The configured limits: this many failures per key, regained evenly over `window`
/// (`None`: that limit is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_account: Option<NonZeroU32>,
    pub per_address: Option<NonZeroU32>,
    pub window: Duration,
}

/// Which limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Account,
    Address,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Address => "address",
        }
    }
}

/// An attempt refused before any work: retry after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub limit: LimitKind,
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole seconds for `Retry-After`, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        (self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)).max(1)
    }
}

/// An admitted attempt: its reservations, until [`LoginThrottle::succeeded`] gives them back or
/// [`LoginThrottle::failed`] keeps them.
#[derive(Debug)]
#[must_use = "report the outcome with `succeeded` or `failed`"]
pub struct Attempt {
    account: Option<String>,
    address: Option<IpAddr>,
}

/// Both limits of one node.
pub struct LoginThrottle {
    account: Option<Limit<String>>,
    address: Option<Limit<IpAddr>>,
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> Self {
        Self {
            account: limits.per_account.map(|n| Limit::new(n, limits.window)),
            address: limits.per_address.map(|n| Limit::new(n, limits.window)),
        }
    }

    /// Reserve a failure for `account` (a normalised email, if the request had a valid one) and
    /// `address`; refused when either key has used its allowance.
    pub fn begin(&self, account: Option<&str>, address: Option<IpAddr>) -> Result<Attempt, Throttled> {
        let address = address.map(address_key);
        let mut attempt = Attempt { account: None, address: None };
        if let (Some(limit), Some(ip)) = (&self.address, address) {
            limit.reserve(&ip).map_err(|wait| self.refused(&attempt, LimitKind::Address, wait, address))?;
            attempt.address = Some(ip);
        }
        if let (Some(limit), Some(email)) = (&self.account, account) {
            let email = email.to_owned();
            limit.reserve(&email).map_err(|wait| self.refused(&attempt, LimitKind::Account, wait, address))?;
            attempt.account = Some(email);
        }
        Ok(attempt)
    }

    /// The password was right: the attempt counts as nothing.
    pub fn succeeded(&self, attempt: Attempt) {
        self.give_back(&attempt);
    }

    /// The password (or the email) was wrong: the reserved failures stay.
    pub fn failed(&self, attempt: Attempt) {
        metrics::counter!("switchboard_login_failed_total").increment(1);
        tracing::info!(address = ?attempt.address, "sign-in failed");
    }

    fn refused(&self, attempt: &Attempt, limit: LimitKind, wait: Duration, address: Option<IpAddr>) -> Throttled {
        self.give_back(attempt);
        let throttled = Throttled { limit, retry_after: wait };
        metrics::counter!("switchboard_login_throttled_total", "limit" => limit.as_str()).increment(1);
        tracing::warn!(
            ?address,
            limit = limit.as_str(),
            retry_after_secs = throttled.retry_after_secs(),
            "sign-in throttled"
        );
        throttled
    }

    fn give_back(&self, attempt: &Attempt) {
        if let (Some(limit), Some(ip)) = (&self.address, &attempt.address) {
            limit.give_back(ip);
        }
        if let (Some(limit), Some(email)) = (&self.account, &attempt.account) {
            limit.give_back(email);
        }
    }

    /// Drop keys whose allowance is full again.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.account {
            l.forget_idle();
        }
        if let Some(l) = &self.address {
            l.forget_idle();
        }
    }

    /// Call [`Self::forget_idle`] every [`SWEEP_EVERY`] while the throttle is alive and the node runs.
    pub fn sweep_in_background(self: &Arc<Self>, shutdown: &crate::shutdown::Shutdown) {
        let weak: Weak<Self> = Arc::downgrade(self);
        shutdown.spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(throttle) => throttle.forget_idle(),
                    None => return,
                }
            }
        });
    }
}

/// The key an address counts under: IPv4 as is, IPv6 by its /64 network.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// governor's keyed state (a DashMap of GCRA cells, as in its `DashMapStateStore`), shared so
/// that [`Limit::give_back`] can return a reserved cell — governor has no call for that.
struct Cells<K: Hash + Eq>(Arc<DashMap<K, InMemoryState>>);

impl<K: Hash + Eq + Clone> StateStore for Cells<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for Cells<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&*self.0, drop_below);
    }

    fn shrink_to_fit(&self) {
        self.0.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One keyed limit: `per_window` failures, one regained every `window / per_window`.
struct Limit<K: Hash + Eq + Clone> {
    limiter: RateLimiter<K, Cells<K>, DefaultClock>,
    cells: Arc<DashMap<K, InMemoryState>>,
    /// The time one cell stands for (GCRA's emission interval).
    interval: Nanos,
}

impl<K: Hash + Eq + Clone> Limit<K> {
    fn new(per_window: NonZeroU32, window: Duration) -> Self {
        // Settings::resolve keeps the window at least a second and the count at most a million.
        let interval = (window / per_window.get()).max(Duration::from_micros(1));
        let quota =
            Quota::with_period(interval).unwrap_or_else(|| Quota::per_second(per_window)).allow_burst(per_window);
        let cells = Arc::new(DashMap::new());
        let limiter = RateLimiter::new(quota, Cells(cells.clone()), DefaultClock::default());
        Self { limiter, cells, interval: Nanos::from(interval) }
    }

    /// Take one cell, or say how long until one is free.
    fn reserve(&self, key: &K) -> Result<(), Duration> {
        self.limiter.check_key(key).map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Return a cell taken by [`Self::reserve`]: move the key's theoretical arrival time back by
    /// one interval (GCRA's exact inverse of taking one; never more than a full allowance).
    fn give_back(&self, key: &K) {
        let interval = self.interval;
        let _ = self.cells.measure_and_replace(key, |tat| match tat {
            Some(tat) => Ok(((), tat.saturating_sub(interval))),
            None => Err(()),
        });
    }

    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_account: u32, per_address: u32) -> LoginThrottle {
        LoginThrottle::new(Limits {
            per_account: NonZeroU32::new(per_account),
            per_address: NonZeroU32::new(per_address),
            window: Duration::from_secs(600),
        })
    }

    const HOME: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const AWAY: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    #[test]
    fn failures_use_the_allowance_and_successes_do_not() {
        let t = throttle(3, 100);
        for _ in 0..10 {
            t.succeeded(t.begin(Some("a@x.org"), HOME).unwrap());
        }
        for _ in 0..3 {
            t.failed(t.begin(Some("a@x.org"), HOME).unwrap());
        }
        let refused = t.begin(Some("a@x.org"), AWAY).unwrap_err();
        assert_eq!(refused.limit, LimitKind::Account);
        assert!(refused.retry_after > Duration::from_secs(100) && refused.retry_after <= Duration::from_secs(200));
        assert_eq!(refused.retry_after_secs(), refused.retry_after.as_secs() + 1);
        // Another account is not affected.
        t.succeeded(t.begin(Some("b@x.org"), HOME).unwrap());
    }

    #[test]
    fn the_address_limit_counts_every_account_and_a_refusal_counts_nothing() {
        let t = throttle(100, 2);
        t.failed(t.begin(Some("a@x.org"), HOME).unwrap());
        t.failed(t.begin(None, HOME).unwrap());
        let refused = t.begin(Some("c@x.org"), HOME).unwrap_err();
        assert_eq!(refused.limit, LimitKind::Address);
        // The refused attempt did not count against c@x.org: it still has its full allowance.
        let elsewhere = |i: u8| Some(IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i)));
        for i in 0..100 {
            t.failed(t.begin(Some("c@x.org"), elsewhere(i)).unwrap());
        }
        assert_eq!(t.begin(Some("c@x.org"), elsewhere(200)).unwrap_err().limit, LimitKind::Account);
    }

    #[test]
    fn ipv6_counts_by_network_and_off_means_off() {
        let t = throttle(0, 1);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        t.failed(t.begin(Some("a@x.org"), Some(a)).unwrap());
        assert!(t.begin(Some("a@x.org"), Some(b)).is_err(), "same /64");
        t.failed(t.begin(Some("a@x.org"), Some(other)).unwrap());
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), HOME.unwrap());
        let none = throttle(0, 0);
        for _ in 0..50 {
            none.failed(none.begin(Some("a@x.org"), HOME).unwrap());
        }
    }

    #[test]
    fn sweeping_keeps_what_still_counts() {
        let t = throttle(2, 100);
        t.failed(t.begin(Some("b@x.org"), AWAY).unwrap());
        t.failed(t.begin(Some("b@x.org"), AWAY).unwrap());
        t.forget_idle();
        assert_eq!(t.begin(Some("b@x.org"), AWAY).unwrap_err().limit, LimitKind::Account);
    }
}
