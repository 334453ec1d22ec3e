//! The replay report: built from the engine's final state, the alert
//! episodes and the driver's tally; written as JSON (`schema_version: 1`,
//! DESIGN §7) or as a readable table.
//!
//! May import `model`, `spec`, `engine` and `evaluate`.

pub mod chart;
pub mod gate;
pub mod html;
pub mod review;
pub mod table;

use std::collections::BTreeMap;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, ServiceState};
use crate::evaluate::{evaluate_slos, incidents, AlertTracker, Episode, SloEval};
use crate::model::{format_rfc3339, Micros, Span};
use crate::model::{Reason, RejectCounts};

/// What the driver counts besides the engine's state.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub accepted: u64,
    pub rejected: RejectCounts,
    pub outside_span: u64,
    pub first: Option<Micros>,
    pub last: Option<Micros>,
    /// Inputs that could not be read to the end (a truncated gzip file, a
    /// read error): what was read before counts; the rest is named here.
    pub input_errors: Vec<String>,
}

/// Cumulative bad counts per service and SLO at the ticks that open and
/// close an `--incident` interval.
#[derive(Debug, Clone)]
pub struct IncidentTrack {
    pub from: Micros,
    pub to: Micros,
    pub at_from: Option<Vec<Vec<u64>>>,
    pub at_to: Option<Vec<Vec<u64>>>,
}

/// A map that keeps its insertion order when serialized.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Ordered<V> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Visit<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered<V>, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(0));
                while let Some(entry) = m.next_entry()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub schema_version: u32,
    pub span: Option<SpanReport>,
    pub events: EventsReport,
    pub summary: Summary,
    pub services: BTreeMap<String, ServiceReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<IncidentReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpanReport {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventsReport {
    pub accepted: u64,
    pub rejected: u64,
    pub rejected_by_reason: Ordered<u64>,
    pub outside_span: u64,
    /// Inputs that could not be read to the end, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub input_errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub slos: usize,
    pub slos_met: usize,
    /// Event-weighted attainment over all occurrence SLOs.
    pub reliability: Option<f64>,
    /// The same one number per ISO week and per month of the span.
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub weeks: Ordered<Reliability>,
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub months: Ordered<Reliability>,
}

impl Summary {
    /// The summary of services' reports: every SLO, those met over their
    /// period, and the one number (all good events over all events the
    /// occurrence SLOs judged), over the period and per week and month.
    pub(crate) fn of(services: &BTreeMap<String, ServiceReport>) -> Summary {
        let (mut slos, mut met, mut good, mut total) = (0, 0, 0u64, 0u64);
        let (mut weeks, mut months) = (BTreeMap::new(), BTreeMap::new());
        for s in services.values() {
            for (name, o) in &s.slos.0 {
                slos += 1;
                met += (o.met == Some(true)) as usize;
                if crate::spec::slo::is_timeslice_name(name) {
                    continue;
                }
                good += o.good;
                total += o.total;
                if let Some((_, c)) = s.calendar.0.iter().find(|(n, _)| n == name) {
                    c.add_to(&mut weeks, &mut months);
                }
            }
        }
        Summary {
            slos,
            slos_met: met,
            reliability: (total > 0).then(|| r(good as f64 / total as f64)),
            weeks: reliabilities(weeks),
            months: reliabilities(months),
        }
    }
}

/// The one number over a week or a month: all good events over all events
/// the occurrence SLOs judged in it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Reliability {
    pub reliability: Option<f64>,
    pub good: u64,
    pub total: u64,
}

/// An SLO's figures per calendar week and month.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SloCalendar {
    pub weeks: Ordered<CalendarFigures>,
    pub months: Ordered<CalendarFigures>,
}

impl SloCalendar {
    /// Adds this SLO's good and total to the one number's (good, total)
    /// per week and per month.
    fn add_to(
        &self,
        weeks: &mut BTreeMap<String, (u64, u64)>,
        months: &mut BTreeMap<String, (u64, u64)>,
    ) {
        for (all, mine) in [(weeks, &self.weeks), (months, &self.months)] {
            for (k, f) in &mine.0 {
                let e = all.entry(k.clone()).or_default();
                e.0 += f.good;
                e.1 += f.total;
            }
        }
    }
}

/// Good and total events (slices) of an SLO over a week or a month, and
/// the share of that week's (month's) budget they spent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CalendarFigures {
    pub good: u64,
    pub total: u64,
    pub budget_consumed: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServiceReport {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: Option<f64>,
    pub throughput_rps: Option<f64>,
    pub latency_ms: Quantiles,
    pub freshness_s: Option<f64>,
    pub slos: Ordered<SloReport>,
    pub alerts: Vec<AlertReport>,
    /// The alert episodes grouped into incidents (DESIGN §7).
    #[serde(default)]
    pub incidents: Vec<IncidentSummary>,
    /// Replay: per SLO, its figures per ISO week and per month of the span
    /// (in the service's `period_timezone`).
    #[serde(default, skip_serializing_if = "Ordered::is_empty")]
    pub calendar: Ordered<SloCalendar>,
    /// The SLOs' period (`30d`), for a service with SLOs: what a budget
    /// is a share of (the review's "runs out on").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// Where the calendar's weeks and months are cut, when not UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_timezone: Option<String>,
    /// Live only: the time of the newest event the state holds (RFC 3339),
    /// by which `slate gate` picks the newer of two instances that both
    /// hold a service during a handover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Quantiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SloReport {
    pub objective: f64,
    pub attainment: Option<f64>,
    pub met: Option<bool>,
    pub budget_consumed: Option<f64>,
    pub budget_remaining: Option<f64>,
    pub burn_rate: Ordered<Option<f64>>,
    /// Good and total events (slices, for timeslice SLOs) behind `attainment`.
    pub good: u64,
    pub total: u64,
    /// Live only: the share of the period the state reaches back (a budget
    /// over 3 days of data is not a 30-day budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// Events (slices) a correction left out of this SLO (DESIGN §4).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub excluded: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlertReport {
    pub slo: String,
    pub severity: String,
    pub long_window: String,
    pub short_window: String,
    pub burn_rate_threshold: f64,
    pub start: String,
    pub end: Option<String>,
    pub budget_consumed: f64,
}

/// One incident of a service: the alert episodes of one SLO that overlap
/// or lie within 5 minutes of each other, what a postmortem calls one
/// incident; `alerts` lists each pair's episode apart.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IncidentSummary {
    pub slo: String,
    pub start: String,
    pub end: Option<String>,
    /// The highest severity of its episodes.
    pub severity: String,
    /// The share of the period's budget spent over the union of its
    /// episodes (each bad event once, however many pairs fired on it).
    pub budget_consumed: f64,
    /// Its episodes, in start order.
    pub pairs: Vec<AlertReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IncidentReport {
    pub from: String,
    pub to: String,
    /// Per service and SLO: the share of the period's budget spent.
    pub budget_consumed: BTreeMap<String, Ordered<f64>>,
}

/// Rounds away float noise so that reports are stable text.
fn r(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 12 - v.abs().log10().ceil() as i32;
    let scale = 10f64.powi(digits.clamp(0, 15));
    (v * scale).round() / scale
}

fn ro(v: Option<f64>) -> Option<f64> {
    v.map(r)
}

/// Each SLO's figures; `coverage` (live) is the share of the period the
/// state reaches back.
fn slo_reports(
    evals: &[SloEval],
    coverage: Option<&[f64]>,
    excluded: &[u64],
) -> Ordered<SloReport> {
    Ordered(
        evals
            .iter()
            .enumerate()
            .map(|(i, e)| {
                (
                    e.name.clone(),
                    SloReport {
                        objective: e.objective,
                        attainment: ro(e.attainment),
                        met: e.met(),
                        budget_consumed: ro(e.budget_consumed),
                        budget_remaining: ro(e.budget_remaining()),
                        burn_rate: Ordered(
                            e.burn_rates
                                .iter()
                                .map(|(w, b)| (w.to_string(), ro(*b)))
                                .collect(),
                        ),
                        good: e.period.good,
                        total: e.period.total,
                        coverage: coverage.and_then(|c| c.get(i)).map(|&c| r(c)),
                        excluded: excluded.get(i).copied().unwrap_or(0),
                    },
                )
            })
            .collect(),
    )
}

/// The share of the period's budget that `bad` events (or slices) of SLO
/// `i` from time `at` are (`period_total(i, at)` events in the period).
fn budget_share(
    s: &ServiceState,
    i: usize,
    bad: u64,
    at: Micros,
    period_total: &impl Fn(usize, Micros) -> f64,
) -> f64 {
    let denom = s.plan.slos[i].budget() * period_total(i, at);
    if denom > 0.0 {
        r(bad as f64 / denom)
    } else {
        0.0
    }
}

fn episode_report(
    s: &ServiceState,
    ep: &Episode,
    period_total: &impl Fn(usize, Micros) -> f64,
) -> AlertReport {
    AlertReport {
        slo: s.plan.slos[ep.slo].name.clone(),
        severity: ep.rule.severity.as_str().to_string(),
        long_window: ep.rule.long.to_string(),
        short_window: ep.rule.short.to_string(),
        burn_rate_threshold: r(ep.rule.threshold),
        start: format_rfc3339(ep.start),
        end: ep.end.map(format_rfc3339),
        budget_consumed: budget_share(s, ep.slo, ep.bad, ep.start, period_total),
    }
}

/// A service's alert episodes, and the incidents they make; a budget is a
/// share of the period's whole budget (`period_total(slo, at)` events).
fn alert_reports(
    s: &ServiceState,
    tr: &AlertTracker,
    period_total: impl Fn(usize, Micros) -> f64,
) -> (Vec<AlertReport>, Vec<IncidentSummary>) {
    let mut alerts: Vec<AlertReport> = tr
        .episodes
        .iter()
        .map(|ep| episode_report(s, ep, &period_total))
        .collect();
    alerts.sort_by(|a, b| (&a.start, &a.slo, &a.severity).cmp(&(&b.start, &b.slo, &b.severity)));
    let mut incidents: Vec<IncidentSummary> = incidents(&tr.episodes)
        .into_iter()
        .map(|inc| IncidentSummary {
            slo: s.plan.slos[inc.slo].name.clone(),
            start: format_rfc3339(inc.start),
            end: inc.end.map(format_rfc3339),
            severity: inc.severity.as_str().to_string(),
            budget_consumed: budget_share(s, inc.slo, inc.bad, inc.start, &period_total),
            pairs: inc
                .episodes
                .iter()
                .map(|&k| episode_report(s, &tr.episodes[k], &period_total))
                .collect(),
        })
        .collect();
    incidents.sort_by(|a, b| (&a.start, &a.slo).cmp(&(&b.start, &b.slo)));
    (alerts, incidents)
}

/// For a calendar period: the events of SLO `i` in the period holding
/// `at`, scaled up to the whole period when the state saw only part of it
/// by `now` (the budget an episode spends is a share of its own period's).
fn calendar_period_total(s: &ServiceState, i: usize, at: Micros, now: Micros) -> Option<f64> {
    let b = s.calendar_period(at)?;
    let (total, _) = s.calendar.as_ref()?.sum(i, b.start, b.end - 1);
    let seen = b.end.min(now) - b.start.max(s.first_ts.unwrap_or(b.start));
    let whole = b.end - b.start;
    Some(if seen > 0 && seen < whole {
        total as f64 * whole as f64 / seen as f64
    } else {
        total as f64
    })
}

/// A service as `slate run` shows it at `now` (`/api/v1/services`):
/// counts over the state held, latency and throughput over `recent`
/// (`latency_us`: its p50, p95 and p99), and each SLO's coverage.
pub fn live_service(
    s: &ServiceState,
    evals: &[SloEval],
    tracker: Option<&AlertTracker>,
    recent: Span,
    latency_us: &[Option<f64>],
    now: Micros,
) -> ServiceReport {
    let coverage = vec![s.coverage(now); s.plan.slos.len()];
    let (alerts, incidents) = tracker
        .map(|tr| {
            alert_reports(s, tr, |i, at| {
                calendar_period_total(s, i, at, now)
                    .unwrap_or_else(|| s.slo_window(i, s.plan.period).total as f64)
            })
        })
        .unwrap_or_default();
    let recent_total = s.window_sum(recent, crate::engine::plan::COL_TOTAL);
    let ms = |i: usize| {
        latency_us
            .get(i)
            .copied()
            .flatten()
            .map(|us| r(us / 1000.0))
    };
    ServiceReport {
        requests: s.requests,
        errors: s.errors,
        error_rate: (s.requests > 0).then(|| r(s.errors as f64 / s.requests as f64)),
        throughput_rps: Some(r(recent_total as f64 / recent.as_secs_f64())),
        latency_ms: Quantiles {
            p50: ms(0),
            p95: ms(1),
            p99: ms(2),
        },
        freshness_s: s.last_success.map(|ls| r(((now - ls).max(0)) as f64 / 1e6)),
        slos: slo_reports(evals, Some(&coverage), &s.corrections.excluded),
        alerts,
        incidents,
        calendar: calendar_of(s),
        period: period_name(s),
        period_timezone: timezone_of(s),
        last_event: s.last_ts.map(format_rfc3339),
    }
}

/// A service's calendar: per SLO, its days summed into ISO weeks and
/// months.
fn calendar_of(s: &ServiceState) -> Ordered<SloCalendar> {
    let Some(cal) = &s.calendar else {
        return Ordered::default();
    };
    let n = s.plan.slos.len();
    // Per SLO, (total, bad) per week and per month.
    let mut per_week: Vec<BTreeMap<String, (u64, u64)>> = vec![BTreeMap::new(); n];
    let mut per_month = per_week.clone();
    for day in cal.days() {
        let (week, month) = cal.labels(&day);
        for (i, &(total, bad)) in day.counts.iter().enumerate().take(n) {
            let (total, bad) = (total as u64, bad as u64);
            if total == 0 {
                continue;
            }
            for (map, key) in [(&mut per_week[i], &week), (&mut per_month[i], &month)] {
                let e = map.entry(key.clone()).or_default();
                e.0 += total;
                e.1 += bad;
            }
        }
    }
    let figures = |slo: usize, m: &BTreeMap<String, (u64, u64)>| {
        let budget = s.plan.slos[slo].budget();
        Ordered(
            m.iter()
                .map(|(k, &(total, bad))| {
                    let good = total.saturating_sub(bad);
                    (
                        k.clone(),
                        CalendarFigures {
                            good,
                            total,
                            budget_consumed: (total > 0)
                                .then(|| r(bad as f64 / total as f64 / budget)),
                        },
                    )
                })
                .collect(),
        )
    };
    let mut out = Ordered::default();
    for (i, slo) in s.plan.slos.iter().enumerate() {
        out.0.push((
            slo.name.clone(),
            SloCalendar {
                weeks: figures(i, &per_week[i]),
                months: figures(i, &per_month[i]),
            },
        ));
    }
    out
}

/// The zone a service's calendar is cut in, when not UTC.
/// The SLOs' period as the spec says it: `30d`, or `month`.
fn period_name(s: &ServiceState) -> Option<String> {
    (!s.plan.slos.is_empty()).then(|| match s.plan.calendar {
        Some(c) => c.to_string(),
        None => s.plan.period.to_string(),
    })
}

fn timezone_of(s: &ServiceState) -> Option<String> {
    s.calendar
        .as_ref()
        .and_then(|c| c.time_zone().iana_name())
        .filter(|n| *n != "UTC")
        .map(str::to_string)
}

fn reliabilities(m: BTreeMap<String, (u64, u64)>) -> Ordered<Reliability> {
    Ordered(
        m.into_iter()
            .map(|(k, (good, total))| {
                (
                    k,
                    Reliability {
                        reliability: (total > 0).then(|| r(good as f64 / total as f64)),
                        good,
                        total,
                    },
                )
            })
            .collect(),
    )
}

pub fn build(
    engine: &Engine,
    trackers: &[Option<AlertTracker>],
    tally: &Tally,
    incidents: &[IncidentTrack],
) -> Report {
    let span_secs = match (tally.first, tally.last) {
        (Some(f), Some(l)) if l > f => Some(Span(l - f)),
        _ => None,
    };
    let end = tally.last.unwrap_or(0) + 1;
    let mut services = BTreeMap::new();
    // Scale from the span to the period when the span is shorter: an
    // episode's budget is a share of the whole period's budget.
    let period_total = |s: &crate::engine::ServiceState, i: usize, at: Micros| -> f64 {
        if let Some(t) = calendar_period_total(s, i, at, end) {
            return t;
        }
        let p = s.plan.period;
        match span_secs {
            Some(span) if span < p => s.cumulative[i].0 as f64 * p.0 as f64 / span.0 as f64,
            _ => s.slo_window(i, p).total as f64,
        }
    };
    for (id, (name, s)) in engine.services().enumerate() {
        let evals = evaluate_slos(s, end);
        let slos = slo_reports(&evals, None, &s.corrections.excluded);
        let (alerts, incidents) = trackers
            .get(id)
            .and_then(Option::as_ref)
            .map(|tr| alert_reports(s, tr, |i, at| period_total(s, i, at)))
            .unwrap_or_default();
        let calendar = calendar_of(s);
        let q = s
            .span_latency
            .as_ref()
            .map(|h| h.quantiles(&[0.5, 0.95, 0.99]))
            .unwrap_or_else(|| vec![None; 3]);
        services.insert(
            name.to_string(),
            ServiceReport {
                requests: s.requests,
                errors: s.errors,
                error_rate: (s.requests > 0).then(|| r(s.errors as f64 / s.requests as f64)),
                throughput_rps: span_secs.map(|sp| r(s.requests as f64 / sp.as_secs_f64())),
                latency_ms: Quantiles {
                    p50: q[0].map(|us| r(us / 1000.0)),
                    p95: q[1].map(|us| r(us / 1000.0)),
                    p99: q[2].map(|us| r(us / 1000.0)),
                },
                freshness_s: s.last_success.map(|ls| r((end - 1 - ls) as f64 / 1e6)),
                slos,
                alerts,
                incidents,
                calendar,
                period: period_name(s),
                period_timezone: timezone_of(s),
                last_event: None,
            },
        );
    }
    let incidents = incidents
        .iter()
        .map(|inc| {
            let mut budget_consumed = BTreeMap::new();
            for (id, (name, s)) in engine.services().enumerate() {
                if s.plan.slos.is_empty() {
                    continue;
                }
                let mut per = Ordered::default();
                for (i, slo) in s.plan.slos.iter().enumerate() {
                    let at = |snap: &Option<Vec<Vec<u64>>>| {
                        snap.as_ref()
                            .and_then(|v| v.get(id))
                            .and_then(|v| v.get(i))
                            .copied()
                    };
                    // Before the interval opened, nothing was spent in it.
                    let from = at(&inc.at_from);
                    let to = at(&inc.at_to).unwrap_or(0);
                    let bad = match (&inc.at_from, from) {
                        (None, _) => 0,
                        (Some(_), f) => to.saturating_sub(f.unwrap_or(0)),
                    };
                    let denom = slo.budget() * period_total(s, i, inc.from);
                    per.0.push((
                        slo.name.clone(),
                        if denom > 0.0 {
                            r(bad as f64 / denom)
                        } else {
                            0.0
                        },
                    ));
                }
                budget_consumed.insert(name.to_string(), per);
            }
            IncidentReport {
                from: format_rfc3339(inc.from),
                to: format_rfc3339(inc.to),
                budget_consumed,
            }
        })
        .collect();
    Report {
        schema_version: 1,
        span: match (tally.first, tally.last) {
            (Some(f), Some(l)) => Some(SpanReport {
                start: format_rfc3339(f),
                end: format_rfc3339(l),
            }),
            _ => None,
        },
        events: EventsReport {
            accepted: tally.accepted,
            rejected: tally.rejected.total(),
            rejected_by_reason: Ordered(
                Reason::ALL
                    .iter()
                    .map(|r| (r.as_str().to_string(), tally.rejected.get(*r)))
                    .collect(),
            ),
            outside_span: tally.outside_span,
            input_errors: tally.input_errors.clone(),
        },
        summary: Summary::of(&services),
        services,
        incidents,
    }
}
