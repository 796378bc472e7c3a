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
