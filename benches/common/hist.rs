//! A lock-free latency histogram in microseconds: log-linear buckets (64 per power of two, so a
//! quantile is off by at most ~1.6 %), recorded from many tasks at once with relaxed atomics.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const SUB: u64 = 64;
const BUCKETS: usize = 64 + 58 * 64;

pub struct Histogram {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as u64; // >= 6
    let m = v >> (e - 6); // in [64, 128)
    (64 + (e - 6) * 64 + (m - 64)) as usize
}

/// The middle of bucket `i`.
fn value(i: usize) -> u64 {
    if (i as u64) < SUB {
        return i as u64;
    }
    let k = (i as u64 - 64) / 64;
    let m = 64 + (i as u64 - 64) % 64;
    (m << k) + ((1u64 << k) >> 1)
}

impl Histogram {
    pub fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    pub fn record(&self, us: u64) {
        self.buckets[index(us).min(BUCKETS - 1)].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum.fetch_add(us, Relaxed);
        self.max.fetch_max(us, Relaxed);
    }

    pub fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Relaxed);
        }
        self.count.store(0, Relaxed);
        self.sum.store(0, Relaxed);
        self.max.store(0, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    pub fn max(&self) -> u64 {
        self.max.load(Relaxed)
    }

    pub fn mean(&self) -> u64 {
        let n = self.count();
        self.sum.load(Relaxed).checked_div(n).unwrap_or(0)
    }

    /// The `q` quantile (0 < q ≤ 1), in microseconds; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let n = self.count();
        if n == 0 {
            return 0;
        }
        let target = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Relaxed);
            if seen >= target {
                return value(i).min(self.max());
            }
        }
        self.max()
    }
}
