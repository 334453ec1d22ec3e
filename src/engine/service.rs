//! `ServiceState`: everything slate keeps about one service. Plain data,
//! no handles and no locks, so that it can be merged and snapshotted.

use std::collections::VecDeque;

use super::calendar::CalendarDays;
use super::hist::{DenseHist, MAX_US};
use super::latency::LatencyWindows;
use super::plan::{Replan, ServicePlan, COL_ERRORS, COL_LATENCY_TOTAL, COL_TOTAL};
use super::ring::SlotRing;
use crate::model::{Event, Micros, Span};
use crate::spec::SloKind;

/// Good and total events (or slices) of one SLO over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GoodTotal {
    pub good: u64,
    pub total: u64,
}

impl GoodTotal {
    pub fn bad(&self) -> u64 {
        self.total - self.good
    }
    /// `None` when there are no events: no data, never 0 or NaN.
    pub fn ratio(&self) -> Option<f64> {
        (self.total > 0).then(|| self.good as f64 / self.total as f64)
    }
}

/// A closed slice's counts and verdicts (bit `i`: SLO `i` judged it bad).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ClosedSlice {
    start: Micros,
    total: u64,
    errors: u64,
    bad: u64,
}

/// A slice is down when more than `1 − target` of its requests failed; a
/// slice with no requests is up.
fn slice_down(total: u64, errors: u64, target: f64) -> bool {
    total > 0 && errors as f64 > (1.0 - target) * total as f64 * (1.0 + 1e-9)
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServiceState {
    pub plan: ServicePlan,
    /// Events applied (process counters).
    pub requests: u64,
    pub errors: u64,
    pub clamped: u64,
    /// The oldest event applied: how far back the state reaches.
    pub first_ts: Option<Micros>,
    pub last_ts: Option<Micros>,
    pub last_success: Option<Micros>,
    rings: Vec<SlotRing>,
    latency: LatencyWindows,
    /// Whole-span histogram, kept by replay for its report.
    pub span_latency: Option<DenseHist>,
    /// The open availability slice: its start, events and errors.
    slice_start: Option<Micros>,
    slice_total: u64,
    slice_errors: u64,
    /// Closed slices still within reach of late events, oldest first, so
    /// that a late event re-judges its slice (availability SLOs).
    recent_slices: VecDeque<ClosedSlice>,
    /// Per SLO: cumulative (total, bad) since the start, for episodes and
    /// incidents; and for timeslice SLOs the first slice that counts.
    pub cumulative: Vec<(u64, u64)>,
    track_start: Vec<Option<Micros>>,
    /// Spans of event time within reach that the state lacks: records that
    /// expired from the topic while slate was away (DESIGN §8a), `[from,
    /// to)`. `coverage` leaves them out. Saved beside the state (it came
    /// after the version-1 layout), not in it.
    #[serde(skip)]
    pub missing: Vec<(Micros, Micros)>,
    /// Per day, each SLO's total and bad counts, for the weeks and months
    /// of the report and the review (when the engine keeps them); saved
    /// apart from the state, at the end of its snapshot unit.
    #[serde(skip)]
    pub calendar: Option<CalendarDays>,
    /// The corrections that reach this service (from the spec in force,
    /// not saved) and what they excluded.
    #[serde(skip)]
    pub corrections: Corrections,
}

/// A service's corrections: which SLOs they cover at a time, cached for
/// the stretch of time the answer holds, and per SLO the events (slices)
/// they excluded since the state began (process counts, not saved).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Corrections {
    list: Vec<(std::sync::Arc<crate::spec::correction::Correction>, u64)>,
    /// The SLO bits covered at times in `[from, until)`.
    from: Micros,
    until: Micros,
    mask: u64,
    pub excluded: Vec<u64>,
}

impl Corrections {
    pub fn new(
        list: Vec<(std::sync::Arc<crate::spec::correction::Correction>, u64)>,
        slos: usize,
    ) -> Corrections {
        Corrections {
            list,
            from: 0,
            until: 0,
            mask: 0,
            excluded: vec![0; slos],
        }
    }

    /// The bits of the SLOs a correction covers at `ts`.
    #[inline]
    pub fn mask_at(&mut self, ts: Micros) -> u64 {
        if self.list.is_empty() {
            return 0;
        }
        if self.from <= ts && ts < self.until {
            return self.mask;
        }
        let (mut mask, mut until) = (0, Micros::MAX);
        for (c, bits) in &self.list {
            let (inside, u) = c.state_at(ts);
            if inside {
                mask |= bits;
            }
            until = until.min(u);
        }
        (self.from, self.until, self.mask) = (ts, until, mask);
        mask
    }

    fn exclude(&mut self, i: usize) {
        if let Some(n) = self.excluded.get_mut(i) {
            *n += 1;
        }
    }
}

impl ServiceState {
    /// `quantile_keeps`: closed latency slots per tier ([`super::keeps_for`]).
    pub fn new(
        plan: ServicePlan,
        quantile_keeps: [i64; 3],
        keep_span_latency: bool,
    ) -> ServiceState {
        let rings = plan
            .tiers
            .iter()
            .map(|t| {
                let lens: Vec<i64> = t.windows.iter().map(|w| w.0 / t.res.0 + 1).collect();
                SlotRing::new(t.res.0, plan.cols, &lens)
            })
            .collect();
        let n = plan.slos.len();
        ServiceState {
            plan,
            requests: 0,
            errors: 0,
            clamped: 0,
            first_ts: None,
            last_ts: None,
            last_success: None,
            rings,
            latency: LatencyWindows::new(quantile_keeps),
            span_latency: keep_span_latency.then(DenseHist::default),
            slice_start: None,
            slice_total: 0,
            slice_errors: 0,
            recent_slices: VecDeque::new(),
            cumulative: vec![(0, 0); n],
            track_start: vec![None; n],
            missing: Vec::new(),
            calendar: None,
            corrections: Corrections::default(),
        }
    }

    /// This state under a reloaded plan ([`ServicePlan::replan`]): what
    /// every service keeps (counters, timestamps, latency, the SLI
    /// columns) moves across, and so does each SLO's state whose
    /// definition did not change; new and changed SLOs start now.
    pub fn replanned(self, re: Replan) -> ServiceState {
        let quantile_keeps = self.latency.keeps();
        let mut new = ServiceState::new(re.plan, quantile_keeps, false);
        for (t, ring) in new.plan.tiers.iter().zip(new.rings.iter_mut()) {
            if let Some(ti) = self.plan.tiers.iter().position(|o| o.res == t.res) {
                self.rings[ti].copy_into(ring, &re.cols);
            }
        }
        for (j, old) in re.slos.iter().enumerate() {
            if let Some(i) = *old {
                new.cumulative[j] = self.cumulative[i];
                new.track_start[j] = self.track_start[i];
            }
        }
        new.requests = self.requests;
        new.errors = self.errors;
        new.clamped = self.clamped;
        new.first_ts = self.first_ts;
        new.missing = self.missing;
        new.last_ts = self.last_ts;
        new.last_success = self.last_success;
        new.latency = self.latency;
        new.span_latency = self.span_latency;
        if new.plan.slice == self.plan.slice {
            new.slice_start = self.slice_start;
            new.slice_total = self.slice_total;
            new.slice_errors = self.slice_errors;
            if new.plan.slos.iter().any(|s| s.kind.is_timeslice()) {
                new.recent_slices = self
                    .recent_slices
                    .into_iter()
                    .map(|c| ClosedSlice {
                        bad: re.slos.iter().enumerate().fold(0, |b, (j, old)| match old {
                            Some(i) => b | (c.bad >> i & 1) << j,
                            None => b,
                        }),
                        ..c
                    })
                    .collect();
            }
        } else if let Some(last) = self.last_ts {
            // Slices of the new length start with the current one.
            let d = new.plan.slice.0;
            new.slice_start = Some(last.div_euclid(d) * d);
        }
        new.calendar = self.calendar.map(|c| c.replanned(&re.slos));
        new
    }

    /// Approximate heap use, for the memory bench.
    pub fn heap_bytes(&self) -> usize {
        self.rings.iter().map(SlotRing::heap_bytes).sum::<usize>()
            + self.latency.heap_bytes()
            + self
                .span_latency
                .as_ref()
                .map_or(0, |_| super::hist::BUCKETS * 4)
    }

    /// Moves this service's clock to `t`: slots advance and the slices
    /// that ended by `t` close.
    pub fn advance(&mut self, t: Micros) {
        self.close_slices(t);
        for r in &mut self.rings {
            r.advance_to(t);
        }
    }

    pub fn record(&mut self, ev: &Event) {
        self.advance(ev.ts);
        self.requests += 1;
        self.last_ts = Some(self.last_ts.map_or(ev.ts, |l| l.max(ev.ts)));
        self.first_ts = Some(self.first_ts.map_or(ev.ts, |f| f.min(ev.ts)));
        if ev.error {
            self.errors += 1;
        } else {
            self.last_success = Some(self.last_success.map_or(ev.ts, |l| l.max(ev.ts)));
        }
        if self.slice_start.is_none() {
            let d = self.plan.slice.0;
            self.slice_start = Some(ev.ts.div_euclid(d) * d);
        }
        if self.slice_start.is_some_and(|s| ev.ts >= s) {
            self.slice_total += 1;
            self.slice_errors += ev.error as u64;
        } else {
            self.late_into_slice(ev);
        }
        let latency = ev.latency_us;
        if latency.is_some_and(|us| us >= MAX_US) {
            self.clamped += 1;
        }
        // Columns this event adds one to, the same in every ring.
        let mut mask = 1u64 << COL_TOTAL;
        if ev.error {
            mask |= 1 << COL_ERRORS;
        }
        if latency.is_some() {
            mask |= 1 << COL_LATENCY_TOTAL;
        }
        let mut day = self.calendar.as_mut().and_then(|c| c.day_mut(ev.ts));
        let corrected = self.corrections.mask_at(ev.ts);
        for (i, slo) in self.plan.slos.iter().enumerate() {
            let bad = match slo.kind {
                SloKind::Success => ev.error,
                SloKind::Latency { threshold_us } => match latency {
                    Some(us) => us > threshold_us,
                    None => continue,
                },
                _ => continue,
            };
            if corrected >> i & 1 == 1 {
                self.corrections.exclude(i);
                continue;
            }
            // A total column of its own (a correction covers the SLO, or
            // a reload added it); the shared ones are in the mask.
            if let Some(c) = slo.total_col {
                mask |= 1 << c;
            }
            self.cumulative[i].0 += 1;
            if let Some(c) = day.as_mut().and_then(|d| d.get_mut(i)) {
                c.0 = c.0.saturating_add(1);
                c.1 = c.1.saturating_add(bad as u32);
            }
            if bad {
                self.cumulative[i].1 += 1;
                mask |= 1 << slo.bad_col;
            }
        }
        for r in &mut self.rings {
            r.bump(ev.ts, mask);
        }
        if let Some(us) = latency {
            self.latency.record(ev.ts, us);
            if let Some(h) = &mut self.span_latency {
                h.record(us);
            }
        }
    }

    /// Closes every slice that ended by `t`, judging it per timeslice SLO.
    fn close_slices(&mut self, t: Micros) {
        let d = self.plan.slice.0;
        // The first slice opens with the first event (in `record`).
        let Some(mut start) = self.slice_start else {
            return;
        };
        if start + d > t {
            return;
        }
        let has_timeslice = self.plan.slos.iter().any(|s| s.kind.is_timeslice());
        while start + d <= t {
            let end = start + d;
            let mut verdicts = 0u64;
            if has_timeslice {
                let corrected = self.corrections.mask_at(start);
                for i in 0..self.plan.slos.len() {
                    let bad = match self.plan.slos[i].kind {
                        SloKind::Availability { slice_target } => {
                            slice_down(self.slice_total, self.slice_errors, slice_target)
                        }
                        SloKind::Freshness { max_age } => match self.last_success {
                            // Slices before the first success do not count.
                            Some(ls) if ls < end => end - ls > max_age.0,
                            _ => continue,
                        },
                        _ => continue,
                    };
                    if self.track_start[i].is_none() {
                        self.track_start[i] = Some(start);
                    }
                    if corrected >> i & 1 == 1 {
                        // Left out of the SLO: counted in its column of
                        // excluded slices, which its total leaves out.
                        self.corrections.exclude(i);
                        if let Some(col) = self.plan.slos[i].total_col {
                            for r in &mut self.rings {
                                if r.holds(start) {
                                    r.add(start, col, 1);
                                }
                            }
                        }
                        continue;
                    }
                    self.cumulative[i].0 += 1;
                    if let Some(c) = &mut self.calendar {
                        c.add(start, i, 1, bad as i32);
                    }
                    if bad {
                        verdicts |= 1 << i;
                        self.cumulative[i].1 += 1;
                        let col = self.plan.slos[i].bad_col;
                        for r in &mut self.rings {
                            if r.holds(start) {
                                r.add(start, col, 1);
                            }
                        }
                    }
                }
            }
            if has_timeslice {
                self.recent_slices.push_back(ClosedSlice {
                    start,
                    total: self.slice_total,
                    errors: self.slice_errors,
                    bad: verdicts,
                });
                let keep = super::LATE_HORIZON.0 / d + 1;
                while self.recent_slices.len() as i64 > keep {
                    self.recent_slices.pop_front();
                }
            }
            self.slice_total = 0;
            self.slice_errors = 0;
            start = end;
            if !has_timeslice && start + d <= t {
                // Nothing to judge: jump over the idle slices at once.
                start = t.div_euclid(d) * d;
            }
        }
        self.slice_start = Some(start);
    }

    /// A late event for a closed slice: count it there and re-judge the
    /// slice for each availability SLO, correcting its bad count.
    fn late_into_slice(&mut self, ev: &Event) {
        let Ok(k) = self.recent_slices.binary_search_by_key(
            &(ev.ts.div_euclid(self.plan.slice.0) * self.plan.slice.0),
            |c| c.start,
        ) else {
            return;
        };
        let slice = &mut self.recent_slices[k];
        slice.total += 1;
        slice.errors += ev.error as u64;
        let (start, total, errors, was) = (slice.start, slice.total, slice.errors, slice.bad);
        let mut now_bad = was;
        let corrected = self.corrections.mask_at(start);
        for (i, slo) in self.plan.slos.iter().enumerate() {
            if corrected >> i & 1 == 1 {
                continue;
            }
            if let SloKind::Availability { slice_target } = slo.kind {
                let down = slice_down(total, errors, slice_target);
                if down != (was >> i & 1 == 1) {
                    now_bad ^= 1 << i;
                    let delta: i64 = if down { 1 } else { -1 };
                    self.cumulative[i].1 = (self.cumulative[i].1 as i64 + delta) as u64;
                    if let Some(c) = &mut self.calendar {
                        c.add(start, i, 0, delta as i32);
                    }
                    for r in &mut self.rings {
                        if r.holds(start) {
                            r.add_signed(start, slo.bad_col, delta);
                        }
                    }
                }
            }
        }
        self.recent_slices[k].bad = now_bad;
    }

    /// The calendar period holding `now`, for a service with one.
    pub fn calendar_period(&self, now: Micros) -> Option<super::calendar::PeriodBounds> {
        let tz = self.calendar.as_ref()?.time_zone();
        super::calendar::period_bounds(self.plan.calendar?, tz, now)
    }

    /// The period's length at `now`: a rolling period's, or the calendar
    /// period's own (a 31-day month is 31 days), by which burn-rate
    /// thresholds are set.
    pub fn period_length(&self, now: Micros) -> Span {
        self.calendar_period(now)
            .map_or(self.plan.period, |b| b.length())
    }

    /// Good and total of SLO `i` over its period as of `now`: the rolling
    /// window, or the calendar period since its start (the budget starts
    /// whole at each boundary).
    pub fn slo_period(&self, i: usize, now: Micros) -> GoodTotal {
        match (self.calendar_period(now), &self.calendar) {
            (Some(b), Some(c)) => {
                let (total, bad) = c.sum(i, b.start, now);
                GoodTotal {
                    good: total.saturating_sub(bad),
                    total,
                }
            }
            _ => self.slo_window(i, self.plan.period),
        }
    }

    /// The share of the period before `now` that the state holds: from its
    /// oldest event on, less the spans it lacks ([`Self::missing`]). For a
    /// calendar period, the share of it so far.
    pub fn coverage(&self, now: Micros) -> f64 {
        let Some(first) = self.first_ts else {
            return 0.0;
        };
        let start = self
            .calendar_period(now)
            .map_or(now - self.plan.period.0, |b| b.start);
        let period = (now - start).max(1);
        let from = first.max(start);
        let held = (now - from).max(0);
        let lacks: i64 = self
            .missing
            .iter()
            .map(|&(a, b)| (b.min(now) - a.max(from)).max(0))
            .sum();
        ((held - lacks).max(0) as f64 / period as f64).min(1.0)
    }

    /// The state lacks event time `[from, to)` (records expired before they
    /// were read); spans that left the period by `to` are forgotten.
    pub fn lacks(&mut self, from: Micros, to: Micros) {
        let period = self.plan.period.0;
        self.missing.retain(|&(_, b)| b > to - period);
        if to > from {
            self.missing.push((from, to));
        }
    }

    /// Counts of column `col` over window `w` (must be a planned window).
    pub fn window_sum(&self, w: Span, col: usize) -> u64 {
        match self.plan.locate(w) {
            Some((ti, wi)) => self.rings[ti].window_sum(wi, col),
            None => 0,
        }
    }

    /// Good and total of SLO `i` over window `w`.
    pub fn slo_window(&self, i: usize, w: Span) -> GoodTotal {
        let slo = &self.plan.slos[i];
        let Some((ti, wi)) = self.plan.locate(w) else {
            return GoodTotal::default();
        };
        let ring = &self.rings[ti];
        let bad = ring.window_sum(wi, slo.bad_col);
        let total = match slo.total_col {
            Some(col) if !slo.kind.is_timeslice() => ring.window_sum(wi, col),
            excluded => {
                // Closed slices that start inside the window and after
                // this SLO's first counted slice.
                let (Some(track), Some(open)) = (self.track_start[i], self.slice_start) else {
                    return GoodTotal::default();
                };
                let d = self.plan.slice.0;
                let from = ring.window_start(wi).div_euclid(d) * d;
                let from = if from < ring.window_start(wi) {
                    from + d
                } else {
                    from
                };
                let from = from.max(track);
                let slices = if open > from {
                    ((open - from) / d) as u64
                } else {
                    0
                };
                // Less those a correction left out.
                slices.saturating_sub(excluded.map_or(0, |c| ring.window_sum(wi, c)))
            }
        };
        GoodTotal {
            good: total.saturating_sub(bad),
            total,
        }
    }

    /// Latency quantiles (µs) over a quantile window ending at `t`.
    pub fn window_quantiles(
        &self,
        w: Span,
        t: Micros,
        scratch: &mut DenseHist,
        qs: &[f64],
    ) -> Vec<Option<f64>> {
        self.latency.window(w, t, scratch);
        scratch.quantiles(qs)
    }
}
