//! Latency quantile windows (1m, 5m, 1h) from tiered slots: the open 10-s
//! slot is a dense histogram; when it closes it becomes sparse and rolls
//! up into the open minute, which rolls up into the open quarter hour.
//! A window is the sum of the slots that overlap it, so the 1m window steps
//! by 10 s, 5m by 1 min and 1h by 15 min.

use std::collections::VecDeque;

use super::hist::{DenseHist, SparseHist};
use crate::model::{Micros, MICROS_PER_MIN, MICROS_PER_SEC};

const TEN_S: i64 = 10 * MICROS_PER_SEC;
const MIN: i64 = MICROS_PER_MIN;
const QUARTER: i64 = 15 * MICROS_PER_MIN;

/// The quantile windows slate keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantileWindow {
    M1,
    M5,
    H1,
}

impl QuantileWindow {
    pub const ALL: [QuantileWindow; 3] =
        [QuantileWindow::M1, QuantileWindow::M5, QuantileWindow::H1];
    pub fn label(self) -> &'static str {
        match self {
            QuantileWindow::M1 => "1m",
            QuantileWindow::M5 => "5m",
            QuantileWindow::H1 => "1h",
        }
    }
    fn micros(self) -> i64 {
        match self {
            QuantileWindow::M1 => MIN,
            QuantileWindow::M5 => 5 * MIN,
            QuantileWindow::H1 => 60 * MIN,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Tier {
    /// Closed slots, oldest first: (interval index, histogram).
    closed: VecDeque<(i64, SparseHist)>,
    /// The open accumulator (interval index, histogram) of the coarser
    /// tiers; unused for the 10-s tier, whose open slot is dense.
    open: Option<(i64, SparseHist)>,
}

impl Tier {
    fn push_closed(&mut self, tag: i64, h: SparseHist, keep: i64) {
        if !h.is_empty() {
            self.closed.push_back((tag, h));
        }
        while self.closed.front().is_some_and(|(t, _)| *t <= tag - keep) {
            self.closed.pop_front();
        }
    }
    /// A late value for the open accumulator (`tag` is its interval).
    fn record_open(&mut self, tag: i64, us: u64) {
        self.open
            .get_or_insert_with(|| (tag, SparseHist::default()))
            .1
            .record(us);
    }

    /// A late value for a closed slot: found or inserted in order.
    fn record_closed(&mut self, tag: i64, us: u64) {
        match self.closed.binary_search_by_key(&tag, |(t, _)| *t) {
            Ok(p) => self.closed[p].1.record(us),
            Err(p) => {
                let mut h = SparseHist::default();
                h.record(us);
                self.closed.insert(p, (tag, h));
            }
        }
    }
    fn heap_bytes(&self) -> usize {
        self.closed
            .iter()
            .map(|(_, h)| h.heap_bytes() + 24)
            .sum::<usize>()
            + self.open.as_ref().map_or(0, |(_, h)| h.heap_bytes())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LatencyWindows {
    open: DenseHist,
    /// Index of the open 10-s slot (`i64::MIN` before the first value).
    open_tag: i64,
    ten: Tier,
    minute: Tier,
    quarter: Tier,
}

impl Default for LatencyWindows {
    fn default() -> Self {
        LatencyWindows {
            open: DenseHist::default(),
            open_tag: i64::MIN,
            ten: Tier::default(),
            minute: Tier::default(),
            quarter: Tier::default(),
        }
    }
}

impl LatencyWindows {
    pub fn heap_bytes(&self) -> usize {
        super::hist::BUCKETS * 4
            + self.ten.heap_bytes()
            + self.minute.heap_bytes()
            + self.quarter.heap_bytes()
    }

    #[inline]
    pub fn record(&mut self, ts: Micros, us: u64) {
        // The open slot, without a division.
        if self.open_tag != i64::MIN
            && ts >= self.open_tag * TEN_S
            && ts < (self.open_tag + 1) * TEN_S
        {
            self.open.record(us);
            return;
        }
        self.record_slow(ts, us);
    }

    fn record_slow(&mut self, ts: Micros, us: u64) {
        let tag = ts.div_euclid(TEN_S);
        if tag > self.open_tag {
            self.roll(tag);
        }
        if tag == self.open_tag {
            self.open.record(us);
            return;
        }
        // Late: its 10-s slot is closed and rolled up.
        if tag > self.open_tag - 7 {
            self.ten.record_closed(tag, us);
        }
        let minute = ts.div_euclid(MIN);
        let cur_minute = (self.open_tag * TEN_S).div_euclid(MIN);
        if minute == cur_minute {
            // Rolled into the open minute; the quarter gets it from there.
            self.minute.record_open(minute, us);
            return;
        }
        if minute > cur_minute - 6 {
            self.minute.record_closed(minute, us);
        }
        let quarter = ts.div_euclid(QUARTER);
        let cur_quarter = (self.open_tag * TEN_S).div_euclid(QUARTER);
        if quarter == cur_quarter {
            self.quarter.record_open(quarter, us);
        } else if quarter > cur_quarter - 5 {
            self.quarter.record_closed(quarter, us);
        }
    }

    /// Closes the open 10-s slot and rolls it up, so that `tag` is open.
    pub fn roll(&mut self, tag: i64) {
        if tag <= self.open_tag {
            return;
        }
        if self.open_tag != i64::MIN {
            let closed = self.open.to_sparse();
            self.open.clear();
            let minute = (self.open_tag * TEN_S).div_euclid(MIN);
            match &mut self.minute.open {
                Some((m, h)) if *m == minute => h.merge(&closed),
                _ => self.minute.open = Some((minute, closed.clone())),
            }
            self.ten.push_closed(self.open_tag, closed, 7);
        }
        self.open_tag = tag;
        // Close the accumulators that the new slot has left behind.
        let minute = (tag * TEN_S).div_euclid(MIN);
        if self.minute.open.as_ref().is_some_and(|(m, _)| *m < minute) {
            let (m, h) = self.minute.open.take().expect("checked");
            let quarter = (m * MIN).div_euclid(QUARTER);
            match &mut self.quarter.open {
                Some((q, qh)) if *q == quarter => qh.merge(&h),
                _ => {
                    if let Some((q, qh)) = self.quarter.open.take() {
                        self.quarter.push_closed(q, qh, 5);
                    }
                    self.quarter.open = Some((quarter, h.clone()));
                }
            }
            self.minute.push_closed(m, h, 6);
        }
        let quarter = (tag * TEN_S).div_euclid(QUARTER);
        if self
            .quarter
            .open
            .as_ref()
            .is_some_and(|(q, _)| *q < quarter)
        {
            let (q, h) = self.quarter.open.take().expect("checked");
            self.quarter.push_closed(q, h, 5);
        }
    }

    /// Sums the slots overlapping `[t − w, t)` into `out` (cleared first).
    pub fn window(&self, w: QuantileWindow, t: Micros, out: &mut DenseHist) {
        out.clear();
        let from = t - w.micros();
        let overlaps = |tag: i64, res: i64| (tag + 1) * res > from && tag * res < t.max(from + 1);
        if self.open_tag != i64::MIN && overlaps(self.open_tag, TEN_S) {
            out.add_dense(&self.open);
        }
        let tiers: &[(&Tier, i64)] = match w {
            QuantileWindow::M1 => &[(&self.ten, TEN_S)],
            QuantileWindow::M5 => &[(&self.minute, MIN)],
            QuantileWindow::H1 => &[(&self.quarter, QUARTER)],
        };
        for &(tier, res) in tiers {
            for (tag, h) in &tier.closed {
                if overlaps(*tag, res) {
                    out.add_sparse(h);
                }
            }
            if w != QuantileWindow::M1 {
                if let Some((tag, h)) = &tier.open {
                    if overlaps(*tag, res) {
                        out.add_sparse(h);
                    }
                }
            }
        }
        if w == QuantileWindow::H1 {
            if let Some((tag, h)) = &self.minute.open {
                if overlaps(*tag, MIN) {
                    out.add_sparse(h);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value recorded lands in exactly the windows whose slots
    /// overlap it: compared with a brute-force count over the same slots.
    #[test]
    fn windows_count_what_overlapping_slots_hold() {
        let mut lw = LatencyWindows::default();
        let mut events = Vec::new();
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut ts = 1_000 * MICROS_PER_SEC * 3600;
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            ts += (rng % 700_000) as i64; // ~0.35 s apart, ~2 h in all
            let late = if rng % 10 == 0 {
                (rng % 30_000_000) as i64
            } else {
                0
            };
            let at = ts - late;
            lw.record(at, rng % 1000);
            events.push(at);
        }
        let t = ts + 1;
        let mut out = DenseHist::default();
        for (w, res) in [
            (QuantileWindow::M1, TEN_S),
            (QuantileWindow::M5, MIN),
            (QuantileWindow::H1, QUARTER),
        ] {
            lw.window(w, t, &mut out);
            let from = t - w.micros();
            let expect = events
                .iter()
                .filter(|&&e| {
                    let tag = e.div_euclid(res);
                    (tag + 1) * res > from && e < t
                })
                .count() as u64;
            assert_eq!(out.total(), expect, "window {}", w.label());
        }
    }
}
