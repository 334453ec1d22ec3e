//! `SlotRing`: a ring of fixed-length time slots, each holding a few u32
//! counters, with running sums for windows of whole slots.
//!
//! A window of `len` slots covers the open slot (`head`) and the `len − 1`
//! before it. Sums of the closed part are kept up to date as slots enter
//! and leave, so reading a window costs one addition per column whatever
//! its length. The ring holds exactly the intervals `(head − n, head]`:
//! slots are zeroed as the head passes over them, so after an idle gap no
//! stale count comes back, and no slot needs a tag.

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SlotRing {
    /// Slot length in microseconds.
    res: i64,
    cols: usize,
    /// Number of slots.
    n: i64,
    counts: Box<[u32]>,
    /// The open slot's interval index, its start time (µs) and position:
    /// the common case, an event in the open slot, needs no division.
    head: i64,
    head_start: i64,
    head_pos: usize,
    windows: Box<[Window]>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Window {
    len: i64,
    /// Sum over the closed slots `(head − len, head − 1]`, per column.
    closed: Box<[u64]>,
}

impl SlotRing {
    /// `window_lens` in slots, each at least 1; the ring holds the longest.
    pub fn new(res: i64, cols: usize, window_lens: &[i64]) -> SlotRing {
        let n = window_lens.iter().copied().max().unwrap_or(1).max(1) as usize;
        SlotRing {
            res,
            cols,
            n: n as i64,
            counts: vec![0; n * cols].into_boxed_slice(),
            head: i64::MIN,
            head_start: i64::MIN,
            head_pos: 0,
            windows: window_lens
                .iter()
                .map(|&len| Window {
                    len: len.max(1),
                    closed: vec![0; cols].into_boxed_slice(),
                })
                .collect(),
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.counts.len() * 4 + self.windows.len() * (std::mem::size_of::<Window>() + self.cols * 8)
    }

    fn n(&self) -> i64 {
        self.n
    }

    fn pos(&self, abs: i64) -> usize {
        abs.rem_euclid(self.n()) as usize
    }

    /// The counters of interval `abs`, if the ring holds it.
    fn slot(&self, abs: i64) -> Option<&[u32]> {
        if self.head == i64::MIN || abs > self.head || abs <= self.head - self.n {
            return None;
        }
        let p = self.pos(abs);
        Some(&self.counts[p * self.cols..(p + 1) * self.cols])
    }

    /// Makes the slot holding `ts` the open one, if it is later.
    #[inline]
    pub fn advance_to(&mut self, ts: i64) {
        if ts >= self.head_start.saturating_add(self.res) {
            self.advance_slow(ts);
        }
    }

    fn advance_slow(&mut self, ts: i64) {
        let to = ts.div_euclid(self.res);
        if self.head != i64::MIN && to > self.head {
            let head = self.head;
            let cols = self.cols;
            let head_at = self.pos(head) * cols;
            for wi in 0..self.windows.len() {
                let len = self.windows[wi].len;
                let w = &mut self.windows[wi];
                if to - head >= len {
                    w.closed.fill(0);
                    continue;
                }
                // Slots that leave: (head − len, to − len], all still held.
                for a in (head - len + 1)..=(to - len) {
                    let at = (a.rem_euclid(self.n) as usize) * cols;
                    for (sum, &v) in w.closed.iter_mut().zip(&self.counts[at..at + cols]) {
                        *sum -= v as u64;
                    }
                }
                // The old open slot enters the closed part (it is > to − len).
                for (sum, &v) in w
                    .closed
                    .iter_mut()
                    .zip(&self.counts[head_at..head_at + cols])
                {
                    *sum += v as u64;
                }
            }
        } else if self.head != i64::MIN {
            return;
        }
        // Zero the slots the head passes over: what they held left every
        // window above (the longest window is the whole ring).
        let first_new = if self.head == i64::MIN {
            to
        } else {
            (self.head + 1).max(to - self.n + 1)
        };
        for a in first_new..=to {
            let p = self.pos(a);
            self.counts[p * self.cols..(p + 1) * self.cols].fill(0);
        }
        self.head = to;
        self.head_start = to * self.res;
        self.head_pos = self.pos(to);
    }

    /// Adds 1 to every column whose bit is set in `mask`, in the slot
    /// holding `ts` (the hot path: one call per event and ring).
    #[inline]
    pub fn bump(&mut self, ts: i64, mask: u64) {
        self.advance_to(ts);
        if ts >= self.head_start {
            let base = self.head_pos * self.cols;
            let mut m = mask;
            while m != 0 {
                let col = m.trailing_zeros() as usize;
                m &= m - 1;
                let c = &mut self.counts[base + col];
                *c = c.saturating_add(1);
            }
        } else {
            let mut m = mask;
            while m != 0 {
                let col = m.trailing_zeros() as usize;
                m &= m - 1;
                self.add(ts, col, 1);
            }
        }
    }

    /// Whether the slot holding `ts` is still in the ring.
    #[inline]
    pub fn holds(&self, ts: i64) -> bool {
        // abs > head − n  ⟺  ts ≥ (head − n + 1) · res
        self.head == i64::MIN || ts >= self.head_start - (self.n() - 1) * self.res
    }

    /// Adds `v` to column `col` of the slot holding `ts`. Later slots move
    /// the ring forward; a slot no longer held is left alone (the windows
    /// have moved past it: a late event counts only where it is covered).
    pub fn add(&mut self, ts: i64, col: usize, v: u32) {
        let abs = ts.div_euclid(self.res);
        self.advance_to(ts);
        if abs <= self.head - self.n() {
            return;
        }
        let p = self.pos(abs);
        let c = &mut self.counts[p * self.cols + col];
        *c = c.saturating_add(v);
        if abs < self.head {
            for w in self.windows.iter_mut() {
                if abs > self.head - w.len {
                    w.closed[col] += v as u64;
                }
            }
        }
    }

    /// Adds a signed correction to a held slot (a slice re-judged after a
    /// late event). The slot must hold `ts` and the count stay ≥ 0.
    pub fn add_signed(&mut self, ts: i64, col: usize, delta: i64) {
        if delta >= 0 {
            return self.add(ts, col, delta as u32);
        }
        let abs = ts.div_euclid(self.res);
        let p = self.pos(abs);
        if abs > self.head || abs <= self.head - self.n() {
            return;
        }
        let c = &mut self.counts[p * self.cols + col];
        let d = (-delta).min(*c as i64) as u32;
        *c -= d;
        if abs < self.head {
            for w in self.windows.iter_mut() {
                if abs > self.head - w.len {
                    w.closed[col] -= d as u64;
                }
            }
        }
    }

    /// The sum of column `col` over window `wi` as of the open slot.
    pub fn window_sum(&self, wi: usize, col: usize) -> u64 {
        let open = self.slot(self.head).map_or(0, |s| s[col] as u64);
        self.windows[wi].closed[col] + open
    }

    /// Start (µs) of the oldest slot of window `wi`.
    pub fn window_start(&self, wi: usize) -> i64 {
        (self.head - self.windows[wi].len + 1) * self.res
    }

    /// Copies columns `(old, new)` of every held slot into `into`, an empty
    /// ring of the same slot length (a reloaded SLO spec). A ring of the
    /// same shape is copied as it is, running sums included; another is
    /// filled slot by slot, as far back as it reaches.
    pub fn copy_into(&self, into: &mut SlotRing, cols: &[(usize, usize)]) {
        if self.res != into.res || self.head == i64::MIN || cols.is_empty() {
            return;
        }
        let same_shape = self.n == into.n
            && self.windows.len() == into.windows.len()
            && self
                .windows
                .iter()
                .zip(into.windows.iter())
                .all(|(a, b)| a.len == b.len);
        if same_shape {
            into.head = self.head;
            into.head_start = self.head_start;
            into.head_pos = self.head_pos;
            for p in 0..self.n as usize {
                for &(o, n) in cols {
                    into.counts[p * into.cols + n] = self.counts[p * self.cols + o];
                }
            }
            for (a, b) in self.windows.iter().zip(into.windows.iter_mut()) {
                for &(o, n) in cols {
                    b.closed[n] = a.closed[o];
                }
            }
            return;
        }
        into.advance_to(self.head_start);
        for abs in (self.head - self.n + 1)..=self.head {
            let Some(slot) = self.slot(abs) else { continue };
            if abs <= into.head - into.n {
                continue;
            }
            for &(o, n) in cols {
                if slot[o] > 0 {
                    into.add(abs * self.res, n, slot[o]);
                }
            }
        }
    }

    /// Sum over window `wi` by walking its slots: the reference for tests.
    #[cfg(test)]
    pub fn window_sum_slow(&self, wi: usize, col: usize) -> u64 {
        let len = self.windows[wi].len;
        ((self.head - len + 1)..=self.head)
            .filter_map(|a| self.slot(a).map(|s| s[col] as u64))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Running sums equal a walk over the slots, whatever the order of
        /// adds and advances, including gaps longer than the ring.
        #[test]
        fn running_sums_equal_walks(ops in prop::collection::vec((0i64..4, 0i64..50, 0usize..2, 1u32..5), 1..300)) {
            let mut ring = SlotRing::new(10, 2, &[1, 3, 7, 12]);
            let mut now = 1000i64;
            for (kind, delta, col, v) in ops {
                match kind {
                    0 => now += delta * 10,           // advance
                    1 => now += delta * 40,           // a long gap
                    _ => {
                        let ts = now - delta * 3;     // late adds, some out of the ring
                        if ring.holds(ts) { ring.add(ts, col, v); }
                        continue;
                    }
                }
                ring.advance_to(now);
                ring.add(now, col, v);
                for wi in 0..4 {
                    for c in 0..2 {
                        prop_assert_eq!(ring.window_sum(wi, c), ring.window_sum_slow(wi, c));
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// A ring copied into another shape (a reload) sums, over every
        /// window the old ring covered, what the old ring held; copied into
        /// the same shape it is the same ring.
        #[test]
        fn copies_keep_every_held_slot(ops in prop::collection::vec((0i64..3, 0i64..20, 0usize..3, 1u32..5), 1..200)) {
            let mut old = SlotRing::new(10, 3, &[2, 6, 9]);
            let mut now = 5000i64;
            for (kind, delta, col, v) in ops {
                if kind == 0 { now += delta * 10; }
                let ts = now - delta * 4;
                if old.holds(ts) { old.add(ts, col, v); }
            }
            // Columns 0 and 2 move to 1 and 0 of a wider ring.
            let map = [(0, 1), (2, 0)];
            let mut same = SlotRing::new(10, 3, &[2, 6, 9]);
            old.copy_into(&mut same, &[(0, 0), (1, 1), (2, 2)]);
            prop_assert_eq!(&same, &old);
            let mut other = SlotRing::new(10, 2, &[1, 4, 9, 15]);
            old.copy_into(&mut other, &map);
            for (wi, len) in [(0, 1), (1, 4), (2, 9)] {
                for &(o, n) in &map {
                    let want: u64 = ((old.head - len + 1)..=old.head)
                        .filter_map(|a| old.slot(a).map(|s| s[o] as u64))
                        .sum();
                    prop_assert_eq!(other.window_sum(wi, n), want);
                    prop_assert_eq!(other.window_sum_slow(wi, n), want);
                }
            }
        }
    }

    #[test]
    fn idle_gap_brings_no_stale_count_back() {
        let mut ring = SlotRing::new(10, 1, &[6]);
        ring.add(5, 0, 7);
        ring.advance_to(60 * 10 + 5); // exactly one ring later: same position
        assert_eq!(ring.window_sum(0, 0), 0);
        ring.add(60 * 10 + 5, 0, 1);
        assert_eq!(ring.window_sum(0, 0), 1);
    }
}
