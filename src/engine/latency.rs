//! Latency quantile windows from tiered slots: the open 10-s slot is a
//! dense histogram; when it closes it becomes sparse and rolls up into the
//! open minute, which rolls up into the open quarter hour. A window is the
//! sum of the slots that overlap it: windows up to 2m step by 10 s, up to
//! 30m by 1 min, longer ones by 15 min (the defaults 1m, 5m and 1h use one
//! tier each). Each tier keeps as many closed slots as its longest window
//! needs, so unused tiers cost next to nothing.

use std::collections::VecDeque;

use super::hist::{DenseHist, SparseHist};
use crate::model::{Micros, Span, MICROS_PER_MIN, MICROS_PER_SEC};

const TEN_S: i64 = 10 * MICROS_PER_SEC;
const MIN: i64 = MICROS_PER_MIN;
const QUARTER: i64 = 15 * MICROS_PER_MIN;
const RES: [i64; 3] = [TEN_S, MIN, QUARTER];

pub use crate::spec::config::DEFAULT_QUANTILE_WINDOWS;

/// The tier (10 s, 1 min, 15 min slots) serving a window.
fn tier_of(w: Span) -> usize {
    if w <= Span::mins(2) {
        0
    } else if w <= Span::mins(30) {
        1
    } else {
        2
    }
}

/// Closed slots each tier keeps for a set of windows.
pub fn keeps_for(windows: &[Span]) -> [i64; 3] {
    let mut keep = [1i64; 3];
    for &w in windows {
        let t = tier_of(w);
        keep[t] = keep[t].max((w.0 + RES[t] - 1) / RES[t] + 1);
    }
    keep
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatencyWindows {
    /// Closed slots kept per tier (see [`keeps_for`]).
    keep: [i64; 3],
    open: DenseHist,
    /// Index of the open 10-s slot (`i64::MIN` before the first value).
    open_tag: i64,
    ten: Tier,
    minute: Tier,
    quarter: Tier,
}

impl Default for LatencyWindows {
    fn default() -> Self {
        LatencyWindows::new(keeps_for(&DEFAULT_QUANTILE_WINDOWS))
    }
}

impl LatencyWindows {
    pub fn new(keep: [i64; 3]) -> Self {
        LatencyWindows {
            keep,
            open: DenseHist::default(),
            open_tag: i64::MIN,
            ten: Tier::default(),
            minute: Tier::default(),
            quarter: Tier::default(),
        }
    }

    /// Closed slots kept per tier.
    pub fn keeps(&self) -> [i64; 3] {
        self.keep
    }

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
        if tag > self.open_tag - self.keep[0] {
            self.ten.record_closed(tag, us);
        }
        let minute = ts.div_euclid(MIN);
        let cur_minute = (self.open_tag * TEN_S).div_euclid(MIN);
        if minute == cur_minute {
            // Rolled into the open minute; the quarter gets it from there.
            self.minute.record_open(minute, us);
            return;
        }
        if minute > cur_minute - self.keep[1] {
            self.minute.record_closed(minute, us);
        }
        let quarter = ts.div_euclid(QUARTER);
        let cur_quarter = (self.open_tag * TEN_S).div_euclid(QUARTER);
        if quarter == cur_quarter {
            self.quarter.record_open(quarter, us);
        } else if quarter > cur_quarter - self.keep[2] {
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
            self.ten.push_closed(self.open_tag, closed, self.keep[0]);
        }
        self.open_tag = tag;
        // Close the accumulators that the new slot has left behind.
        let minute = (tag * TEN_S).div_euclid(MIN);
        if let Some((m, h)) = self.minute.open.take_if(|(m, _)| *m < minute) {
            let quarter = (m * MIN).div_euclid(QUARTER);
            match &mut self.quarter.open {
                Some((q, qh)) if *q == quarter => qh.merge(&h),
                _ => {
                    if let Some((q, qh)) = self.quarter.open.take() {
                        self.quarter.push_closed(q, qh, self.keep[2]);
                    }
                    self.quarter.open = Some((quarter, h.clone()));
                }
            }
            self.minute.push_closed(m, h, self.keep[1]);
        }
        let quarter = (tag * TEN_S).div_euclid(QUARTER);
        if let Some((q, h)) = self.quarter.open.take_if(|(q, _)| *q < quarter) {
            self.quarter.push_closed(q, h, self.keep[2]);
        }
    }

    /// Sums the slots overlapping `[t − w, t)` into `out` (cleared first).
    /// `w` should be one of the windows the keeps were made for.
    pub fn window(&self, w: Span, t: Micros, out: &mut DenseHist) {
        out.clear();
        let from = t - w.0;
        let overlaps = |tag: i64, res: i64| (tag + 1) * res > from && tag * res < t;
        let mut add = |slot: Option<&(i64, SparseHist)>, res: i64| {
            if let Some((tag, h)) = slot {
                if overlaps(*tag, res) {
                    out.add_sparse(h);
                }
            }
        };
        let tier = tier_of(w);
        let (closed, res) = match tier {
            0 => (&self.ten, TEN_S),
            1 => (&self.minute, MIN),
            _ => (&self.quarter, QUARTER),
        };
        closed.closed.iter().for_each(|s| add(Some(s), res));
        // The open accumulators hold what the closed slots of this tier
        // do not have yet.
        if tier >= 1 {
            add(self.minute.open.as_ref(), MIN);
        }
        if tier >= 2 {
            add(self.quarter.open.as_ref(), QUARTER);
        }
        if self.open_tag != i64::MIN && overlaps(self.open_tag, TEN_S) {
            out.add_dense(&self.open);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value recorded lands in exactly the windows whose slots
    /// overlap it: compared with a brute-force count over the same slots,
    /// for the default windows and for others.
    #[test]
    fn windows_count_what_overlapping_slots_hold() {
        for windows in [
            DEFAULT_QUANTILE_WINDOWS.to_vec(),
            vec![
                Span::secs(30),
                Span::mins(2),
                Span::mins(10),
                Span::mins(30),
                Span::hours(3),
            ],
        ] {
            let mut lw = LatencyWindows::new(keeps_for(&windows));
            let mut events = Vec::new();
            let mut rng = 0x9E37_79B9_7F4A_7C15u64;
            let mut ts = 1_000 * MICROS_PER_SEC * 3600;
            for _ in 0..40_000 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                ts += (rng % 700_000) as i64; // ~0.35 s apart, ~4 h in all
                let late = if rng.is_multiple_of(10) {
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
            for &w in &windows {
                lw.window(w, t, &mut out);
                let res = RES[tier_of(w)];
                let from = t - w.0;
                let expect = events
                    .iter()
                    .filter(|&&e| {
                        let tag = e.div_euclid(res);
                        (tag + 1) * res > from && e < t
                    })
                    .count() as u64;
                assert_eq!(out.total(), expect, "window {w}");
            }
        }
    }

    #[test]
    fn keeps_follow_the_longest_window_of_each_tier() {
        assert_eq!(keeps_for(&DEFAULT_QUANTILE_WINDOWS), [7, 6, 5]);
        assert_eq!(keeps_for(&[Span::mins(1)]), [7, 1, 1]);
        assert_eq!(keeps_for(&[Span::hours(6)]), [1, 1, 25]);
    }
}
