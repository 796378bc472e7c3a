//! The resume cursor (RT-7, DESIGN invariant 2): which stored events a socket has received.
//!
//! Event ids come from the database in the order transactions *started*, not the order they
//! committed, so a socket can receive event 11 before event 10. A single "last id" would then
//! skip 10 on resume. The cursor therefore keeps the highest id seen plus a bitmap of the
//! [`WINDOW`] ids below it; on resume everything above the high mark, and every id inside the
//! window whose bit is clear, is replayed — exactly what was missed, nothing twice. Ids further
//! back than the window are treated as seen: the window is far larger than the number of
//! transactions that can be in flight at once (pool size × nodes).
//!
//! The same structure deduplicates a node's incoming bus traffic against its store repair loop.

use std::fmt::Write;

/// How many ids below the high mark the cursor remembers individually.
pub const WINDOW: i64 = 256;
const WORDS: usize = (WINDOW as usize) / 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Highest id seen (0: none).
    max: i64,
    /// Bit `i` set ⇔ id `max - i` was seen (bit 0 is `max` itself).
    seen: [u64; WORDS],
}

impl Default for Cursor {
    fn default() -> Self {
        Self::at(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed cursor")]
pub struct BadCursor;

impl Cursor {
    /// A cursor that has seen everything up to and including `max`.
    pub fn at(max: i64) -> Self {
        Self { max, seen: [u64::MAX; WORDS] }
    }

    pub fn max(&self) -> i64 {
        self.max
    }

    fn bit(&self, i: i64) -> bool {
        let i = i as usize;
        self.seen[i / 64] >> (i % 64) & 1 == 1
    }

    fn set(&mut self, i: i64) {
        let i = i as usize;
        self.seen[i / 64] |= 1 << (i % 64);
    }

    /// Shift the window up by `n` ids (new ids start unseen).
    fn shift(&mut self, n: i64) {
        if n >= WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let n = n as usize;
        let (words, bits) = (n / 64, n % 64);
        let mut out = [0u64; WORDS];
        for (i, slot) in out.iter_mut().enumerate() {
            let Some(src) = i.checked_sub(words) else { continue };
            let mut v = self.seen[src] << bits;
            if bits > 0 && src > 0 {
                v |= self.seen[src - 1] >> (64 - bits);
            }
            *slot = v;
        }
        self.seen = out;
    }

    /// Whether `id` has not been seen yet (and so must be delivered or replayed).
    pub fn is_missing(&self, id: i64) -> bool {
        if id > self.max {
            return true;
        }
        let back = self.max - id;
        back < WINDOW && !self.bit(back)
    }

    /// Record `id` as seen. Returns false when it had been seen already (a duplicate).
    pub fn observe(&mut self, id: i64) -> bool {
        if !self.is_missing(id) {
            return false;
        }
        if id > self.max {
            self.shift(id - self.max);
            self.max = id;
        }
        self.set(self.max - id);
        true
    }

    /// Everything either cursor has seen.
    pub fn merge(&mut self, other: &Cursor) {
        let max = self.max.max(other.max);
        let mut out = Cursor { max, seen: [0; WORDS] };
        for back in 0..WINDOW {
            let id = max - back;
            if id <= 0 || !self.is_missing(id) || !other.is_missing(id) {
                out.set(back);
            }
        }
        *self = out;
    }

    /// The lowest id a replay must start after.
    pub fn replay_from(&self) -> i64 {
        (self.max - WINDOW).max(0)
    }

    /// `c1.{max}.{hex bitmap}`; the bitmap is omitted when every bit is set.
    pub fn encode(&self) -> String {
        let mut out = format!("c1.{}", self.max);
        if self.seen != [u64::MAX; WORDS] {
            out.push('.');
            for w in self.seen {
                let _ = write!(out, "{w:016x}");
            }
        }
        out
    }

    pub fn decode(text: &str) -> Result<Self, BadCursor> {
        let mut parts = text.split('.');
        if parts.next() != Some("c1") {
            return Err(BadCursor);
        }
        let max: i64 = parts.next().and_then(|m| m.parse().ok()).filter(|m| *m >= 0).ok_or(BadCursor)?;
        let mut cursor = Self::at(max);
        if let Some(bits) = parts.next() {
            if bits.len() != WORDS * 16 {
                return Err(BadCursor);
            }
            for (i, slot) in cursor.seen.iter_mut().enumerate() {
                *slot = u64::from_str_radix(&bits[i * 16..(i + 1) * 16], 16).map_err(|_| BadCursor)?;
            }
        }
        if parts.next().is_some() {
            return Err(BadCursor);
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_ids_are_new_once() {
        let mut c = Cursor::default();
        for id in 1..=1000 {
            assert!(c.observe(id), "{id}");
            assert!(!c.observe(id), "duplicate {id}");
        }
        assert_eq!(c.encode(), "c1.1000");
    }

    #[test]
    fn out_of_order_commit_is_replayed_exactly() {
        let mut c = Cursor::at(10);
        assert!(c.observe(12));
        assert!(c.is_missing(11), "11 committed later: still owed");
        assert!(!c.is_missing(10) && !c.is_missing(12));
        let resumed = Cursor::decode(&c.encode()).unwrap();
        assert_eq!(resumed, c);
        let owed: Vec<i64> = (resumed.replay_from() + 1..=20).filter(|id| resumed.is_missing(*id)).collect();
        assert_eq!(owed, vec![11, 13, 14, 15, 16, 17, 18, 19, 20]);
        let mut c = resumed;
        assert!(c.observe(11));
        assert!(!c.observe(11));
    }

    #[test]
    fn big_jumps_and_word_boundaries() {
        let mut c = Cursor::at(5);
        assert!(c.observe(5 + 63));
        assert!(c.observe(5 + 64));
        assert!(c.observe(5 + 200));
        assert!(!c.observe(5 + 64), "still remembered after a shift across words");
        assert!(c.is_missing(5 + 65));
        assert!(!c.is_missing(5), "5 is 200 back, inside the window, seen");
        assert!(c.observe(5 + 1000));
        assert!(c.is_missing(5 + 999));
        assert!(!c.is_missing(5 + 1000 - WINDOW), "beyond the window counts as seen");
        let round = Cursor::decode(&c.encode()).unwrap();
        assert_eq!(round, c);
    }

    #[test]
    fn exhaustive_against_a_set_for_small_shuffles() {
        use std::collections::BTreeSet;
        // Deterministic permutations of short sequences: the cursor answers like a set would.
        for seed in 0..200u64 {
            let mut ids: Vec<i64> = (1..=40).collect();
            let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            for i in (1..ids.len()).rev() {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                ids.swap(i, (x >> 33) as usize % (i + 1));
            }
            let (mut c, mut set) = (Cursor::default(), BTreeSet::new());
            for id in ids.iter().take(25) {
                assert_eq!(c.observe(*id), set.insert(*id));
            }
            let c = Cursor::decode(&c.encode()).unwrap();
            for id in 1..=40 {
                assert_eq!(c.is_missing(id), !set.contains(&id), "seed {seed} id {id}");
            }
        }
    }

    #[test]
    fn merge_is_a_union() {
        let mut a = Cursor::at(10);
        a.observe(12);
        let mut b = Cursor::at(0);
        b.observe(11);
        b.observe(14);
        a.merge(&b);
        assert_eq!(a.max(), 14);
        assert!(!a.is_missing(10) && !a.is_missing(11) && !a.is_missing(12) && !a.is_missing(14));
        assert!(a.is_missing(13) && a.is_missing(15));
    }

    #[test]
    fn malformed_cursors_are_rejected() {
        for bad in ["", "c1", "c2.5", "c1.x", "c1.-3", "c1.5.zz", "c1.5.00", "c1.5.0.0"] {
            assert_eq!(Cursor::decode(bad), Err(BadCursor), "{bad:?}");
        }
    }
}
