//! (state, SLO spec, now) → evaluation: SLIs per window, budgets, burn
//! rates and multi-window multi-burn-rate alert states. Pure functions of
//! the engine's state; the alert tracker turns firing states at successive
//! ticks into episodes.
//!
//! May import `model`, `spec` and `engine`.

use crate::engine::plan::{SloPlan, BURN_WINDOWS};
use crate::engine::{GoodTotal, ServiceState};
use crate::model::{Micros, Span};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    Page,
    Ticket,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One MWMB alert pair.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertRule {
    pub severity: Severity,
    pub long: Span,
    pub short: Span,
    /// Burn-rate threshold: `budget_fraction × period / long`.
    pub threshold: f64,
}

/// Google SRE's four pairs: (severity, long, short, share of the period's
/// budget spent in the long window).
const PAIRS: [(Severity, Span, Span, f64); 4] = [
    (Severity::Page, Span::hours(1), Span::mins(5), 0.02),
    (Severity::Page, Span::hours(6), Span::mins(30), 0.05),
    (Severity::Ticket, Span::days(1), Span::hours(2), 0.10),
    (Severity::Ticket, Span::days(3), Span::hours(6), 0.10),
];

/// The alert pairs for a period; pairs whose long window exceeds the
/// period are dropped.
pub fn alert_rules(period: Span) -> Vec<AlertRule> {
    PAIRS
        .iter()
        .filter(|(_, long, _, _)| *long <= period)
        .map(|&(severity, long, short, fraction)| AlertRule {
            severity,
            long,
            short,
            threshold: fraction * period.0 as f64 / long.0 as f64,
        })
        .collect()
}

/// Burn rate of a window: error ratio over the budget. `None` without data.
pub fn burn_rate(gt: GoodTotal, slo: &SloPlan) -> Option<f64> {
    gt.ratio().map(|sli| (1.0 - sli) / slo.budget())
}

/// `bad / total ≥ threshold × budget`, with a relative tolerance of 1e-9 in
/// favour of firing, so that rounding cannot flip a tie (1 bad in 100 at
/// 99% is a burn of exactly 1).
pub fn burn_at_least(gt: GoodTotal, slo: &SloPlan, threshold: f64) -> bool {
    gt.total > 0 && gt.bad() as f64 >= threshold * slo.budget() * gt.total as f64 * (1.0 - 1e-9)
}

/// Whether an alert pair fires for SLO `i` of a service.
pub fn fires(s: &ServiceState, i: usize, rule: &AlertRule, min_events: u64) -> bool {
    let slo = &s.plan.slos[i];
    let short = s.slo_window(i, rule.short);
    if short.total < min_events.max(1) {
        return false;
    }
    burn_at_least(short, slo, rule.threshold)
        && burn_at_least(s.slo_window(i, rule.long), slo, rule.threshold)
}

/// An alert episode: from the first firing tick to the first tick that
/// does not fire.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Episode {
    pub slo: usize,
    pub rule: AlertRule,
    pub start: Micros,
    pub end: Option<Micros>,
    /// Bad events (or slices) of the SLO during the episode.
    pub bad: u64,
}

/// Per-service alert state across ticks.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertTracker {
    rules: Vec<AlertRule>,
    /// Per (slo, rule): the open episode's index in `episodes`, and the
    /// SLO's cumulative bad count when it started.
    open: Vec<Option<(usize, u64)>>,
    pub episodes: Vec<Episode>,
}

impl AlertTracker {
    pub fn new(s: &ServiceState) -> AlertTracker {
        let rules = alert_rules(s.plan.period);
        AlertTracker {
            open: vec![None; rules.len() * s.plan.slos.len()],
            rules,
            episodes: Vec::new(),
        }
    }

    /// Evaluates every pair at tick `t`; true when an episode started or
    /// ended (what a snapshot pass has to write again).
    pub fn tick(&mut self, s: &ServiceState, t: Micros, min_events: u64) -> bool {
        let nr = self.rules.len();
        let mut changed = false;
        for i in 0..s.plan.slos.len() {
            let bad_now = s.cumulative[i].1;
            for (ri, rule) in self.rules.iter().enumerate() {
                let firing = fires(s, i, rule, min_events);
                let slot = &mut self.open[i * nr + ri];
                match (firing, *slot) {
                    (true, None) => {
                        self.episodes.push(Episode {
                            slo: i,
                            rule: *rule,
                            start: t,
                            end: None,
                            bad: 0,
                        });
                        *slot = Some((self.episodes.len() - 1, bad_now));
                        changed = true;
                    }
                    (false, Some((ep, bad_at_start))) => {
                        self.episodes[ep].end = Some(t);
                        self.episodes[ep].bad = bad_now.saturating_sub(bad_at_start);
                        *slot = None;
                        changed = true;
                    }
                    _ => {}
                }
            }
        }
        changed
    }

    /// This tracker for `s` after a reload: `slos[j]` is the old index of
    /// SLO `j` if it did not change. Unchanged SLOs keep their open alerts
    /// and episodes; the others start with none.
    pub fn replanned(self, s: &ServiceState, slos: &[Option<usize>]) -> AlertTracker {
        let mut new = AlertTracker::new(s);
        if new.rules != self.rules {
            return new;
        }
        let nr = self.rules.len();
        let mut map = vec![usize::MAX; self.episodes.len()];
        for (k, e) in self.episodes.into_iter().enumerate() {
            if let Some(j) = slos.iter().position(|o| *o == Some(e.slo)) {
                map[k] = new.episodes.len();
                new.episodes.push(Episode { slo: j, ..e });
            }
        }
        for (j, old) in slos.iter().enumerate() {
            let Some(i) = *old else { continue };
            for ri in 0..nr {
                new.open[j * nr + ri] = self.open[i * nr + ri].map(|(ep, bad)| (map[ep], bad));
            }
        }
        new
    }

    /// Every (SLO index, rule, firing now) pair.
    pub fn states(&self) -> impl Iterator<Item = (usize, &AlertRule, bool)> + '_ {
        let nr = self.rules.len().max(1);
        self.open
            .iter()
            .enumerate()
            .map(move |(k, o)| (k / nr, &self.rules[k % nr], o.is_some()))
    }

    /// Forgets episodes that ended before `t` (live keeps a period's
    /// worth); true when one was forgotten.
    pub fn forget_before(&mut self, t: Micros) -> bool {
        if !self
            .episodes
            .iter()
            .any(|e| e.end.is_some_and(|end| end < t))
        {
            return false;
        }
        let mut map = vec![usize::MAX; self.episodes.len()];
        let mut kept = Vec::with_capacity(self.episodes.len());
        for (i, e) in self.episodes.drain(..).enumerate() {
            if e.end.is_none_or(|end| end >= t) {
                map[i] = kept.len();
                kept.push(e);
            }
        }
        self.episodes = kept;
        for (ep, _) in self.open.iter_mut().flatten() {
            *ep = map[*ep];
        }
        true
    }

    /// Brings the bad counts of still-open episodes up to date.
    pub fn finish(&mut self, s: &ServiceState) {
        let nr = self.rules.len().max(1);
        for (k, slot) in self.open.iter().enumerate() {
            if let Some((ep, bad_at_start)) = slot {
                self.episodes[*ep].bad = s.cumulative[k / nr].1.saturating_sub(*bad_at_start);
            }
        }
    }
}

/// An SLO as of time `t`.
#[derive(Debug, Clone, PartialEq)]
pub struct SloEval {
    pub name: String,
    pub objective: f64,
    /// Over the period window (or all the data, when shorter).
    pub period: GoodTotal,
    pub attainment: Option<f64>,
    pub budget_consumed: Option<f64>,
    pub burn_rates: Vec<(Span, Option<f64>)>,
}

impl SloEval {
    pub fn met(&self) -> Option<bool> {
        self.attainment.map(|a| a >= self.objective - 1e-12)
    }
    pub fn budget_remaining(&self) -> Option<f64> {
        self.budget_consumed.map(|c| 1.0 - c)
    }
}

pub fn evaluate_slos(s: &ServiceState) -> Vec<SloEval> {
    s.plan
        .slos
        .iter()
        .enumerate()
        .map(|(i, slo)| {
            let period = s.slo_window(i, s.plan.period);
            SloEval {
                name: slo.name.clone(),
                objective: slo.objective,
                period,
                attainment: period.ratio(),
                budget_consumed: period.ratio().map(|a| (1.0 - a) / slo.budget()),
                burn_rates: BURN_WINDOWS
                    .iter()
                    .map(|&w| (w, burn_rate(s.slo_window(i, w), slo)))
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_the_period() {
        let r = alert_rules(Span::days(30));
        let t: Vec<f64> = r.iter().map(|r| r.threshold).collect();
        assert_eq!(r.len(), 4);
        for (got, want) in t.iter().zip([14.4, 6.0, 3.0, 1.0]) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
        let short = alert_rules(Span::days(1));
        assert_eq!(short.len(), 3, "the 3d pair is dropped for a 1d period");
        assert!((short[0].threshold - 0.02 * 24.0).abs() < 1e-9);
    }

    #[test]
    fn ties_fire() {
        let slo = SloPlan {
            name: "x".into(),
            kind: crate::spec::SloKind::Success,
            objective: 0.99,
            bad_col: 1,
            total_col: Some(0),
        };
        assert!(burn_at_least(
            GoodTotal {
                good: 99,
                total: 100
            },
            &slo,
            1.0
        ));
        assert!(!burn_at_least(
            GoodTotal {
                good: 100,
                total: 100
            },
            &slo,
            1.0
        ));
        // 14.4 × 0.1% = 1.44% bad: exactly at the page threshold.
        let slo999 = SloPlan {
            objective: 0.999,
            ..slo
        };
        assert!(burn_at_least(
            GoodTotal {
                good: 985_600,
                total: 1_000_000
            },
            &slo999,
            14.4
        ));
        assert!(!burn_at_least(
            GoodTotal {
                good: 985_601,
                total: 1_000_000
            },
            &slo999,
            14.4
        ));
    }
}
