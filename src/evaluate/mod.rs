//! (state, SLO spec, now) → evaluation: SLIs per window, budgets, burn
//! rates and multi-window multi-burn-rate alert states. Pure functions of
//! the engine's state; the alert tracker turns firing states at successive
//! ticks into episodes.
//!
//! May import `model`, `spec` and `engine`.

use crate::engine::plan::{SloPlan, BURN_WINDOWS};
use crate::engine::{GoodTotal, ServiceState};
use crate::model::{Micros, Span};

use crate::spec::alerting::AlertWindow;
pub use crate::spec::alerting::Severity;

/// One MWMB alert pair.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertRule {
    pub severity: Severity,
    pub long: Span,
    pub short: Span,
    /// Burn-rate threshold: `budget_fraction × period / long`.
    pub threshold: f64,
}

/// The alert pairs of `windows` for a period of length `period`; pairs
/// whose long window exceeds the period are dropped.
pub fn alert_rules(windows: &[AlertWindow], period: Span) -> Vec<AlertRule> {
    windows
        .iter()
        .filter(|w| w.long <= period)
        .map(|w| AlertRule {
            severity: w.severity,
            long: w.long,
            short: w.short,
            threshold: w.budget_fraction * period.0 as f64 / w.long.0 as f64,
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
    /// The SLO's cumulative bad count when the episode started, by which
    /// overlapping episodes' bad counts are told apart (an incident's
    /// cost is over the union of its episodes). `None` for an episode
    /// restored from a snapshot that predates it. Saved apart from the
    /// tracker (see `apply::snapshot`), so that older snapshots still
    /// read.
    #[serde(skip)]
    pub bad_before: Option<u64>,
}

/// Per-service alert state across ticks.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertTracker {
    rules: Vec<AlertRule>,
    /// A calendar period's thresholds follow its length: the period they
    /// were set for, `[start, end)` (not saved: set again at the first tick).
    #[serde(skip)]
    rules_for: (Micros, Micros),
    /// Per (slo, rule): the open episode's index in `episodes`, and the
    /// SLO's cumulative bad count when it started.
    open: Vec<Option<(usize, u64)>>,
    pub episodes: Vec<Episode>,
}

impl AlertTracker {
    pub fn new(s: &ServiceState) -> AlertTracker {
        let rules = alert_rules(&s.plan.alerting, s.plan.period);
        AlertTracker {
            open: vec![None; rules.len() * s.plan.slos.len()],
            rules,
            rules_for: (0, 0),
            episodes: Vec::new(),
        }
    }

    /// Sets the thresholds for the calendar period holding `t` when it is
    /// not the one they were set for (a rolling period's never change).
    fn follow_period(&mut self, s: &ServiceState, t: Micros) {
        if s.plan.calendar.is_none() || (self.rules_for.0 <= t && t < self.rules_for.1) {
            return;
        }
        let Some(b) = s.calendar_period(t) else {
            return;
        };
        self.rules_for = (b.start, b.end);
        let now = alert_rules(&s.plan.alerting, b.length());
        if now.len() == self.rules.len() {
            for (r, n) in self.rules.iter_mut().zip(now) {
                r.threshold = n.threshold;
            }
        }
    }

    /// Evaluates every pair at tick `t`; true when an episode started or
    /// ended (what a snapshot pass has to write again).
    pub fn tick(&mut self, s: &ServiceState, t: Micros, min_events: u64) -> bool {
        self.follow_period(s, t);
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
                            bad_before: Some(bad_now),
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
        // The same pairs (a calendar period's thresholds move with its length).
        let pairs = |rules: &[AlertRule]| -> Vec<(Severity, Span, Span)> {
            rules
                .iter()
                .map(|r| (r.severity, r.long, r.short))
                .collect()
        };
        if pairs(&new.rules) != pairs(&self.rules) {
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

/// Episodes of one SLO this close (or overlapping) are one incident.
pub const INCIDENT_GAP: Span = Span::mins(5);

/// What a postmortem calls one incident: the alert episodes of one SLO
/// that overlap or lie within [`INCIDENT_GAP`] of each other.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub slo: usize,
    pub start: Micros,
    /// `None` while one of its episodes still fires.
    pub end: Option<Micros>,
    /// The highest severity among its episodes.
    pub severity: Severity,
    /// Indices into the episodes grouped, in start order.
    pub episodes: Vec<usize>,
    /// Bad events (or slices) over the union of its episodes, each counted
    /// once however many pairs fired on it.
    pub bad: u64,
}

/// The later of two ends, `None` (still firing) being the latest.
fn later(a: Option<Micros>, b: Option<Micros>) -> Option<Micros> {
    a.zip(b).map(|(a, b)| a.max(b))
}

/// A run of overlapping episodes inside an incident, and what it spent:
/// the SLO's cumulative bad count at its start (`None`: an episode's is
/// unknown) and the highest at an episode's end.
struct Stretch {
    before: Option<u64>,
    upto: u64,
    end: Option<Micros>,
    /// The costliest episode's bad count: the cost when `before` is unknown.
    lone: u64,
}

impl Stretch {
    fn of(e: &Episode) -> Stretch {
        Stretch {
            before: e.bad_before,
            upto: e.bad_before.map_or(0, |b| b + e.bad),
            end: e.end,
            lone: e.bad,
        }
    }

    fn extend(&mut self, e: &Episode) {
        self.before = self.before.zip(e.bad_before).map(|(a, b)| a.min(b));
        self.upto = self.upto.max(e.bad_before.map_or(0, |b| b + e.bad));
        self.end = later(self.end, e.end);
        self.lone = self.lone.max(e.bad);
    }

    fn cost(&self) -> u64 {
        self.before
            .map_or(self.lone, |before| self.upto.saturating_sub(before))
    }
}

/// Groups `episodes` into incidents, per SLO, in start order.
pub fn incidents(episodes: &[Episode]) -> Vec<Incident> {
    let mut order: Vec<usize> = (0..episodes.len()).collect();
    order.sort_by_key(|&i| {
        (
            episodes[i].slo,
            episodes[i].start,
            episodes[i].end.is_none(),
        )
    });
    let mut out: Vec<Incident> = Vec::new();
    // The last incident's current run of overlapping episodes.
    let mut stretch: Option<Stretch> = None;
    for i in order {
        let e = &episodes[i];
        let after = |end: Option<Micros>, gap: i64| end.is_some_and(|end| e.start > end + gap);
        match (out.last_mut(), stretch.as_mut()) {
            (Some(inc), Some(st)) if inc.slo == e.slo && !after(inc.end, INCIDENT_GAP.0) => {
                inc.episodes.push(i);
                inc.severity = inc.severity.min(e.rule.severity);
                inc.end = later(inc.end, e.end);
                if after(st.end, 0) {
                    // A gap inside the incident: what fell in it is not its cost.
                    inc.bad += st.cost();
                    *st = Stretch::of(e);
                } else {
                    st.extend(e);
                }
            }
            (last, st) => {
                if let (Some(inc), Some(st)) = (last, st) {
                    inc.bad += st.cost();
                }
                out.push(Incident {
                    slo: e.slo,
                    start: e.start,
                    end: e.end,
                    severity: e.rule.severity,
                    episodes: vec![i],
                    bad: 0,
                });
                stretch = Some(Stretch::of(e));
            }
        }
    }
    if let (Some(inc), Some(st)) = (out.last_mut(), stretch) {
        inc.bad += st.cost();
    }
    out
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

/// The windows whose burn rate a service reports: the usual ones, and
/// those of its alert pairs, shortest first.
pub fn burn_windows(s: &ServiceState) -> Vec<Span> {
    let mut all: Vec<Span> = BURN_WINDOWS.to_vec();
    for w in s.plan.alerting.iter().flat_map(|w| [w.long, w.short]) {
        if !all.contains(&w) {
            all.push(w);
        }
    }
    all.sort();
    all
}

/// Every SLO of `s` as of `now` (its clock: the period of a calendar
/// SLO is the one holding `now`).
pub fn evaluate_slos(s: &ServiceState, now: Micros) -> Vec<SloEval> {
    let windows = burn_windows(s);
    s.plan
        .slos
        .iter()
        .enumerate()
        .map(|(i, slo)| {
            let period = s.slo_period(i, now);
            SloEval {
                name: slo.name.clone(),
                objective: slo.objective,
                period,
                attainment: period.ratio(),
                budget_consumed: period.ratio().map(|a| (1.0 - a) / slo.budget()),
                burn_rates: windows
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
    use crate::spec::alerting::DEFAULT_WINDOWS;

    #[test]
    fn thresholds_follow_the_period() {
        let r = alert_rules(&DEFAULT_WINDOWS, Span::days(30));
        let t: Vec<f64> = r.iter().map(|r| r.threshold).collect();
        assert_eq!(r.len(), 4);
        for (got, want) in t.iter().zip([14.4, 6.0, 3.0, 1.0]) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
        let short = alert_rules(&DEFAULT_WINDOWS, Span::days(1));
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

    fn ep(slo: usize, sev: Severity, start: i64, end: Option<i64>, cum: &[u64]) -> Episode {
        const M: i64 = 60_000_000;
        let at = |m: i64| cum[(m as usize).min(cum.len() - 1)];
        let last = end.unwrap_or(cum.len() as i64 - 1);
        Episode {
            slo,
            rule: AlertRule {
                severity: sev,
                long: Span::hours(1),
                short: Span::mins(5),
                threshold: 14.4,
            },
            start: start * M,
            end: end.map(|e| e * M),
            bad: at(last) - at(start),
            bad_before: Some(at(start)),
        }
    }

    #[test]
    fn overlapping_and_near_episodes_are_one_incident_costed_over_their_union() {
        const M: i64 = 60_000_000;
        // One bad event a minute, 10 a minute between minutes 10 and 30.
        let cum: Vec<u64> = (0..200u64)
            .scan(0, |c, m| {
                let v = *c;
                *c += if (10..30).contains(&m) { 10 } else { 1 };
                Some(v)
            })
            .collect();
        let eps = vec![
            ep(0, Severity::Ticket, 12, Some(40), &cum),
            ep(0, Severity::Page, 10, Some(20), &cum),
            // 4 minutes after the union's end: the same incident.
            ep(0, Severity::Ticket, 44, Some(50), &cum),
            // 6 minutes after: another.
            ep(0, Severity::Ticket, 56, Some(60), &cum),
            // Another SLO, overlapping in time: its own.
            ep(1, Severity::Ticket, 15, Some(25), &cum),
        ];
        let got = incidents(&eps);
        assert_eq!(got.len(), 3, "{got:?}");
        let first = &got[0];
        assert_eq!(
            (first.slo, first.start, first.end),
            (0, 10 * M, Some(50 * M))
        );
        assert_eq!(first.severity, Severity::Page);
        assert_eq!(first.episodes, vec![1, 0, 2]);
        // Union (10, 40] and (44, 50]: each bad event once.
        assert_eq!(first.bad, (cum[40] - cum[10]) + (cum[50] - cum[44]));
        assert!(first.bad < eps[0].bad + eps[1].bad + eps[2].bad);
        assert_eq!(
            (got[1].slo, got[1].start, got[1].bad),
            (0, 56 * M, cum[60] - cum[56])
        );
        assert_eq!(got[1].severity, Severity::Ticket);
        assert_eq!((got[2].slo, got[2].episodes.clone()), (1, vec![4]));
    }

    #[test]
    fn an_open_episode_keeps_its_incident_open() {
        let cum: Vec<u64> = (0..100).collect();
        let eps = vec![
            ep(0, Severity::Page, 10, None, &cum),
            ep(0, Severity::Ticket, 80, Some(90), &cum),
        ];
        let got = incidents(&eps);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].end, None);
        assert_eq!(got[0].bad, cum[99] - cum[10]);
    }

    #[test]
    fn without_cumulative_counts_an_incident_costs_its_costliest_episode() {
        let cum: Vec<u64> = (0..100).map(|m| m * 2).collect();
        let mut eps = vec![
            ep(0, Severity::Page, 10, Some(20), &cum),
            ep(0, Severity::Ticket, 15, Some(40), &cum),
        ];
        eps[0].bad_before = None;
        let got = incidents(&eps);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].bad, eps[1].bad.max(eps[0].bad));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Against a naive reading: minute by minute, which minutes the
        /// episodes of an SLO cover, and which episodes are within five
        /// minutes of each other (union-find).
        #[test]
        fn incidents_agree_with_a_minute_by_minute_reading(
            steps in proptest::collection::vec(0u64..20, 120),
            raw in proptest::collection::vec((0usize..2, 0i64..110, 1i64..30, proptest::bool::ANY), 0..12),
        ) {
            const M: i64 = 60_000_000;
            let cum: Vec<u64> = steps.iter().scan(0, |c, d| { let v = *c; *c += d; Some(v) }).collect();
            let eps: Vec<Episode> = raw
                .iter()
                .map(|&(slo, s, len, page)| {
                    let sev = if page { Severity::Page } else { Severity::Ticket };
                    ep(slo, sev, s, Some((s + len).min(119)), &cum)
                })
                .collect();
            let got = incidents(&eps);
            // Union-find of episodes within 5 minutes of each other.
            let n = eps.len();
            let mut parent: Vec<usize> = (0..n).collect();
            fn find(p: &mut [usize], i: usize) -> usize {
                if p[i] != i { let r = find(p, p[i]); p[i] = r; }
                p[i]
            }
            for i in 0..n {
                for j in 0..n {
                    let (a, b) = (&eps[i], &eps[j]);
                    if a.slo == b.slo && b.start <= a.end.unwrap() + 5 * M && a.start <= b.end.unwrap() + 5 * M {
                        let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                        parent[ri] = rj;
                    }
                }
            }
            let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
            for i in 0..n {
                let r = find(&mut parent, i);
                groups.entry(r).or_default().push(i);
            }
            proptest::prop_assert_eq!(got.len(), groups.len());
            for g in groups.values() {
                let start = g.iter().map(|&i| eps[i].start).min().unwrap();
                let slo = eps[g[0]].slo;
                let inc = got.iter().find(|x| x.slo == slo && x.start == start).unwrap();
                let mut members = inc.episodes.clone();
                members.sort_unstable();
                proptest::prop_assert_eq!(&members, g);
                let end = g.iter().map(|&i| eps[i].end.unwrap()).max().unwrap();
                proptest::prop_assert_eq!(inc.end, Some(end));
                let sev = g.iter().map(|&i| eps[i].rule.severity).min().unwrap();
                proptest::prop_assert_eq!(inc.severity, sev);
                // Minute k's bad events (cum[k+1] - cum[k]) count once when
                // any episode covers (k, k+1].
                let bad: u64 = (0..119)
                    .filter(|&k| g.iter().any(|&i| eps[i].start <= k * M && (k + 1) * M <= eps[i].end.unwrap()))
                    .map(|k| cum[k as usize + 1] - cum[k as usize])
                    .sum();
                proptest::prop_assert_eq!(inc.bad, bad);
            }
        }
    }
}
