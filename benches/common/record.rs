//! What the load generator's sockets saw: for each message (an id carried in its text as
//! `<marker><digits>`), when its request was about to be written and how many frames carried it,
//! with the latency of every frame in a histogram. Shared by every socket task of a run.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use super::hist::Histogram;

pub struct Recorder {
    pub origin: Instant,
    marker: &'static [u8],
    /// Per message id: when its request was about to be written (ns since `origin`; 0 = not yet).
    pub sent: Vec<AtomicU64>,
    /// Per message id: frames received.
    pub got: Vec<AtomicU32>,
    /// Per message id: how long its request took to be answered (µs + 1; 0 = no answer yet).
    pub answered: Vec<AtomicU64>,
    /// Send → frame read, µs, every frame of the current window.
    pub latency: Histogram,
    /// Request → answer, µs.
    pub post: Histogram,
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    first: AtomicUsize,
    end: AtomicUsize,
    pub last_ns: AtomicU64,
    /// Sockets whose connection ended (closed by the server, e.g. as slow consumers).
    pub closed: AtomicUsize,
}

impl Recorder {
    /// Room for message ids `0..capacity`.
    pub fn new(capacity: usize, marker: &'static [u8]) -> Self {
        Self {
            origin: Instant::now(),
            marker,
            sent: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            got: (0..capacity).map(|_| AtomicU32::new(0)).collect(),
            answered: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            latency: Histogram::new(),
            post: Histogram::new(),
            frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            first: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            last_ns: AtomicU64::new(0),
            closed: AtomicUsize::new(0),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// Start a window: only ids in `first..end` count from now on; counters and histograms reset.
    pub fn begin(&self, first: usize, end: usize) {
        self.latency.reset();
        self.post.reset();
        self.frames.store(0, Relaxed);
        self.bytes.store(0, Relaxed);
        self.last_ns.store(0, Relaxed);
        self.first.store(first, Relaxed);
        self.end.store(end, Relaxed);
    }

    /// Mark message `id` as about to be sent; the timestamp.
    pub fn sending(&self, id: usize) -> u64 {
        let t0 = self.now_ns().max(1);
        if let Some(s) = self.sent.get(id) {
            s.store(t0, Relaxed);
        }
        t0
    }

    /// The answer to message `id`'s request arrived (`t0` from [`Self::sending`]).
    pub fn answered(&self, id: usize, t0: u64) {
        let us = (self.now_ns().saturating_sub(t0)) / 1000;
        self.post.record(us);
        if let Some(a) = self.answered.get(id) {
            a.store(us + 1, Relaxed);
        }
    }

    /// Messages of `range` that did not reach every one of `sockets` sockets:
    /// (how many, up to `sample` of them as (id, frames, answer µs)).
    pub fn incomplete(
        &self,
        range: std::ops::Range<usize>,
        sockets: u32,
        sample: usize,
    ) -> (usize, Vec<(usize, u32, u64)>) {
        let mut n = 0;
        let mut out = Vec::new();
        for id in range {
            let Some(got) = self.got.get(id) else { break };
            let got = got.load(Relaxed);
            if got < sockets && self.answered[id].load(Relaxed) > 0 {
                n += 1;
                if out.len() < sample {
                    out.push((id, got, self.answered[id].load(Relaxed) - 1));
                }
            }
        }
        (n, out)
    }

    /// A text frame arrived on some socket.
    pub fn on_text(&self, text: &[u8]) {
        let Some(at) = memchr::memmem::find(text, self.marker) else { return };
        let digits = &text[at + self.marker.len()..];
        let mut id = 0usize;
        let mut any = false;
        for &c in digits.iter().take(12) {
            if !c.is_ascii_digit() {
                break;
            }
            id = id * 10 + (c - b'0') as usize;
            any = true;
        }
        if !any || id < self.first.load(Relaxed) || id >= self.end.load(Relaxed) || id >= self.sent.len() {
            return;
        }
        let sent = self.sent[id].load(Relaxed);
        if sent == 0 {
            return;
        }
        let now = self.now_ns();
        self.latency.record(now.saturating_sub(sent) / 1000);
        self.got[id].fetch_add(1, Relaxed);
        self.frames.fetch_add(1, Relaxed);
        self.bytes.fetch_add(text.len() as u64, Relaxed);
        self.last_ns.fetch_max(now, Relaxed);
    }
}
