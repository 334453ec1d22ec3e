//! Chart series for the HTML report: what a live slate would have shown
//! over the span, sampled at the replay's ticks on a coarser step (at most
//! [`MAX_POINTS`] points; when full, every other point goes and the step
//! doubles, so a span of any length ends with 500–1000 points and the cost
//! stays a small share of the replay).
//!
//! Per service with SLOs: latency p50/p95/p99 over the configured quantile
//! window nearest the step, and per SLO the error budget remaining (as
//! `slate_error_budget_remaining_ratio` would have read) and the burn rates
//! of the alert pairs' long windows. `f32` and NaN for "no data" keep it
//! small: about 40 KB per service at three SLOs.

use crate::engine::hist::DenseHist;
use crate::engine::Engine;
use crate::evaluate::{alert_rules, evaluate_slos};
use crate::model::{Micros, Span};

/// At most this many points per series.
pub const MAX_POINTS: usize = 1000;

#[derive(Debug, Clone, Default)]
pub struct SloSeries {
    pub budget_remaining: Vec<f32>,
    /// One series per charted window ([`ServiceSeries::windows`]).
    pub burn: Vec<Vec<f32>>,
}

#[derive(Debug, Clone, Default)]
pub struct ServiceSeries {
    pub name: String,
    /// p50, p95, p99 in milliseconds.
    pub latency_ms: [Vec<f32>; 3],
    pub slos: Vec<SloSeries>,
    /// The burn-rate windows charted: the long window of each of the
    /// service's alert pairs (Google's 1h, 6h, 1d and 3d by default).
    pub windows: Vec<Span>,
    /// The alert threshold of each charted window for this service's
    /// period (`None`: the pair is longer than the period, dropped).
    pub thresholds: Vec<Option<f64>>,
}

impl ServiceSeries {
    fn columns(&mut self) -> impl Iterator<Item = &mut Vec<f32>> {
        self.latency_ms.iter_mut().chain(
            self.slos
                .iter_mut()
                .flat_map(|s| std::iter::once(&mut s.budget_remaining).chain(s.burn.iter_mut())),
        )
    }
}

/// The series of every service with SLOs, indexed like the engine's
/// services (`None`: no SLO, nothing charted).
#[derive(Debug, Clone, Default)]
pub struct Charts {
    pub times: Vec<Micros>,
    pub step: Micros,
    pub services: Vec<Option<ServiceSeries>>,
    /// The quantile window of the latency series, chosen at the first
    /// sample (a series keeps one window throughout).
    pub latency_window: Option<Span>,
    next: Option<Micros>,
    scratch: DenseHist,
    /// Live: only services with an id below this are charted (0: all), so
    /// that 10,000 services do not keep 10,000 charts.
    limit: usize,
}

fn nan(v: Option<f64>) -> f32 {
    v.map_or(f32::NAN, |x| x as f32)
}

impl Charts {
    /// `first_step`: the replay's tick step (the finest sampling).
    pub fn new(first_step: Span) -> Charts {
        Charts {
            step: first_step.0.max(1),
            ..Charts::default()
        }
    }

    /// Charts only the first `services` services (by id: those the spec
    /// names come first), as the live status page keeps them.
    pub fn limited(mut self, services: usize) -> Charts {
        self.limit = services;
        self
    }

    /// The configured quantile window nearest five steps (by ratio): a
    /// point then sums a few steps' events, and the lines are not noise.
    fn pick_window(&self, windows: &[Span]) -> Option<Span> {
        let step = 5.0 * self.step as f64;
        windows.iter().copied().min_by(|a, b| {
            let d = |w: &Span| (w.0 as f64 / step).ln().abs();
            d(a).total_cmp(&d(b))
        })
    }

    /// Called at every replay tick `t` (after the trackers): samples when
    /// the step has passed.
    pub fn tick(&mut self, engine: &Engine, t: Micros) {
        if self.next.is_some_and(|n| t < n) {
            return;
        }
        if self.times.len() >= MAX_POINTS {
            self.halve();
        }
        self.next = Some(t.div_euclid(self.step) * self.step + self.step);
        if self.latency_window.is_none() {
            self.latency_window = self.pick_window(engine.quantile_windows());
        }
        let n = self.times.len();
        self.times.push(t);
        for (id, (name, s)) in engine.services().enumerate() {
            if self.limit > 0 && id >= self.limit {
                break;
            }
            if s.plan.slos.is_empty() {
                continue;
            }
            if self.services.len() <= id {
                self.services.resize(id + 1, None);
            }
            let series = self.services[id].get_or_insert_with(|| {
                let rules = alert_rules(&s.plan.alerting, s.period_length(t));
                let mut windows: Vec<Span> = s.plan.alerting.iter().map(|w| w.long).collect();
                windows.sort();
                windows.dedup();
                let mut fresh = ServiceSeries {
                    name: name.to_string(),
                    slos: vec![
                        SloSeries {
                            budget_remaining: Vec::new(),
                            burn: vec![Vec::new(); windows.len()],
                        };
                        s.plan.slos.len()
                    ],
                    thresholds: windows
                        .iter()
                        .map(|w| rules.iter().find(|r| r.long == *w).map(|r| r.threshold))
                        .collect(),
                    windows,
                    ..ServiceSeries::default()
                };
                // A service first seen now has had no data until now.
                fresh.columns().for_each(|c| c.resize(n, f32::NAN));
                fresh
            });
            let q = match self.latency_window {
                Some(w) => s.window_quantiles(w, t, &mut self.scratch, &[0.5, 0.95, 0.99]),
                None => vec![None; 3],
            };
            for (col, v) in series.latency_ms.iter_mut().zip(&q) {
                col.push(nan(v.map(|us| us / 1000.0)));
            }
            for (slo, e) in series.slos.iter_mut().zip(evaluate_slos(s, t)) {
                slo.budget_remaining.push(nan(e.budget_remaining()));
                for (col, w) in slo.burn.iter_mut().zip(&series.windows) {
                    let b = e
                        .burn_rates
                        .iter()
                        .find(|(bw, _)| bw == w)
                        .and_then(|x| x.1);
                    col.push(nan(b));
                }
            }
        }
    }

    /// Every other point goes; the step doubles.
    fn halve(&mut self) {
        fn keep_even<T: Copy>(v: &mut Vec<T>) {
            let mut i = 0;
            v.retain(|_| {
                i += 1;
                i % 2 == 1
            });
        }
        keep_even(&mut self.times);
        for s in self.services.iter_mut().flatten() {
            s.columns().for_each(keep_even);
        }
        self.step *= 2;
    }

    /// Adds the final state (at the end of the span) as the last point.
    pub fn finish(&mut self, engine: &Engine, end: Micros) {
        if self.times.last().is_some_and(|&l| l >= end) {
            return;
        }
        self.next = None;
        self.tick(engine, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineSettings;
    use crate::model::{Event, MICROS_PER_MIN};
    use crate::spec::SloSpec;
    use std::path::Path;

    #[test]
    fn samples_stay_few_and_aligned_over_a_long_span() {
        let spec = SloSpec::parse(
            Path::new("s.yml"),
            "services:\n  api:\n    slo_error_rate: 99%\n  late:\n    slo_error_rate: 99%\n",
        )
        .unwrap();
        let mut engine = Engine::new(&spec, EngineSettings::default());
        let api = engine.resolve("api").unwrap();
        let mut charts = Charts::new(Span(MICROS_PER_MIN));
        let t0 = 1_790_000_000_000_000;
        // Four days of ticks every minute: 5760 ticks.
        for m in 0..5760i64 {
            let t = t0 + m * MICROS_PER_MIN;
            engine.record(&Event {
                ts: t,
                service: api,
                error: m % 50 == 0,
                latency_us: Some(10_000),
            });
            engine.advance_all(t + 1);
            charts.tick(&engine, t + 1);
        }
        let end = t0 + 5759 * MICROS_PER_MIN + 1;
        charts.finish(&engine, end);
        assert_eq!(*charts.times.last().unwrap(), end);
        let n = charts.times.len();
        assert!((MAX_POINTS / 2..=MAX_POINTS).contains(&n), "{n}");
        assert!(charts.step >= 8 * MICROS_PER_MIN, "{}", charts.step);
        assert!(charts.times.windows(2).all(|w| w[1] > w[0]));
        let s = charts.services[api as usize].as_ref().unwrap();
        for c in s
            .latency_ms
            .iter()
            .chain(std::iter::once(&s.slos[0].budget_remaining))
        {
            assert_eq!(c.len(), n);
        }
        // The last point is what the evaluation says at the last tick...
        let last = |v: &Vec<f32>| f64::from(*v.last().unwrap());
        let e = &evaluate_slos(engine.service(api), end)[0];
        for (k, w) in s.windows.iter().enumerate() {
            let want = e.burn_rates.iter().find(|b| b.0 == *w).unwrap().1.unwrap();
            assert!((last(&s.slos[0].burn[k]) - want).abs() < 1e-5, "{w}");
        }
        let want = e.budget_remaining().unwrap();
        assert!((last(&s.slos[0].budget_remaining) - want).abs() < 1e-5);
        // ...and that is, counted here: 116 of 5760 events failing at 99%
        // (minutes 0, 50, …), a budget of 1 − (116/5760)/0.01; over the 3d
        // window about 1 in 50 failing, a burn near 2.
        assert!(
            (want - (1.0 - 116.0 / 5760.0 / 0.01)).abs() < 1e-9,
            "{want}"
        );
        assert!((last(&s.slos[0].burn[3]) - 2.0).abs() < 0.05);
        assert!((last(&s.latency_ms[1]) - 10.0).abs() < 0.1);
        assert_eq!(
            s.windows,
            [Span::hours(1), Span::hours(6), Span::days(1), Span::days(3)]
        );
        assert_eq!(s.thresholds, [Some(14.4), Some(6.0), Some(3.0), Some(1.0)]);
        // A service named in the spec but silent has NaN throughout.
        let late = charts.services[1].as_ref().unwrap();
        assert_eq!(late.latency_ms[0].len(), n);
        assert!(late.slos[0].budget_remaining.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn a_service_with_its_own_pairs_charts_their_long_windows() {
        let spec = SloSpec::parse(
            Path::new("s.yml"),
            "services:\n  api:\n    period: 7d\n    slo_error_rate: 99%\n    alerting:\n      page:\n        quick: {budget_percent: 3, long_window: 30m, short_window: 5m}\n        slow: {budget_percent: 6, long_window: 4h, short_window: 20m}\n      ticket: disable\n",
        )
        .unwrap();
        let mut engine = Engine::new(&spec, EngineSettings::default());
        let api = engine.resolve("api").unwrap();
        let mut charts = Charts::new(Span(MICROS_PER_MIN));
        let t0 = 1_790_000_000_000_000;
        for m in 0..600i64 {
            let t = t0 + m * MICROS_PER_MIN;
            engine.record(&Event {
                ts: t,
                service: api,
                error: m % 20 == 0,
                latency_us: Some(10_000),
            });
            engine.advance_all(t + 1);
            charts.tick(&engine, t + 1);
        }
        let s = charts.services[api as usize].as_ref().unwrap();
        assert_eq!(s.windows, [Span::mins(30), Span::hours(4)]);
        // 3% × 7d / 30m and 6% × 7d / 4h.
        let want = [0.03 * 7.0 * 48.0, 0.06 * 7.0 * 6.0];
        for (got, want) in s.thresholds.iter().zip(want) {
            assert!((got.unwrap() - want).abs() < 1e-9, "{got:?} vs {want}");
        }
        // The last point of each is the evaluation's burn over that window;
        // over 4h, 1 in 20 failing at 99% is a burn near 5.
        let end = t0 + 599 * MICROS_PER_MIN + 1;
        let e = &evaluate_slos(engine.service(api), end)[0];
        for (b, w) in s.slos[0].burn.iter().zip(&s.windows) {
            let want = e.burn_rates.iter().find(|x| x.0 == *w).unwrap().1.unwrap();
            assert!((f64::from(*b.last().unwrap()) - want).abs() < 1e-5, "{w}");
        }
        assert!((f64::from(*s.slos[0].burn[1].last().unwrap()) - 5.0).abs() < 0.1);
    }
}
