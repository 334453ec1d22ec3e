//! What the outside world reads, computed once per evaluation tick: every
//! gauge of the exposition and the live `services` object of the API. The
//! tick pays for quantiles and SLO evaluation; a scrape only writes text.
//! Counters live apart ([`Counters`]), published as events are applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::decode::RejectCounts;
use crate::engine::hist::DenseHist;
use crate::engine::plan::{COL_ERRORS, COL_TOTAL, SLI_WINDOWS};
use crate::engine::service::GoodTotal;
use crate::engine::Engine;
use crate::evaluate::{evaluate_slos, AlertTracker, Severity, SloEval};
use crate::model::{Micros, Span, MICROS_PER_SEC};
use crate::report::{self, ServiceReport};

/// The quantiles of `slate_latency_seconds`.
pub const QUANTILES: [f64; 3] = [0.5, 0.95, 0.99];

/// The window of Pyrra's `:rate5m` series.
pub const RECENT: Span = Span::mins(5);

/// The window the live API's latency and throughput are taken over.
pub const API_WINDOW: Span = Span::mins(5);

/// One alert pair's state.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertState {
    pub slo: usize,
    pub severity: Severity,
    pub long: Span,
    pub short: Span,
    /// The burn rate both windows must reach (for the period in force).
    pub threshold: f64,
    pub firing: bool,
}

/// One service's gauges at a tick.
#[derive(Debug, Clone)]
pub struct ServiceGauges {
    pub name: Box<str>,
    /// Per quantile window: p50, p95, p99 in seconds.
    pub latency: Vec<[Option<f64>; 3]>,
    /// Per SLI window (1m, 5m, 1h).
    pub rps: [f64; 3],
    pub error_ratio: [Option<f64>; 3],
    pub freshness: Option<f64>,
    pub last_event_age: Option<f64>,
    pub slos: Vec<SloEval>,
    /// Per SLO: good and total over the last 5 minutes (Pyrra's rates).
    pub slos_recent: Vec<GoodTotal>,
    /// The SLOs' period.
    pub period: Span,
    /// The spec's `labels` for the service (Sloth's series carry them).
    pub labels: BTreeMap<String, String>,
    pub alerts: Vec<AlertState>,
}

/// Every gauge at one evaluation tick.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The evaluation time (`None` before the first tick).
    pub at: Option<Micros>,
    pub quantile_windows: Vec<Span>,
    pub services: Vec<ServiceGauges>,
}

impl Snapshot {
    /// Evaluates every service at `now` for which `shown` holds (by id).
    /// The caller has advanced the services' clocks and ticked their
    /// alert trackers.
    pub fn take(
        engine: &Engine,
        trackers: &[Option<AlertTracker>],
        now: Micros,
        shown: impl Fn(usize) -> bool,
    ) -> Snapshot {
        let mut scratch = DenseHist::default();
        let windows = engine.quantile_windows().to_vec();
        let secs = |us: i64| (us as f64 / MICROS_PER_SEC as f64).max(0.0);
        // Most specs label nothing: then this map is empty and costs nothing.
        let labelled: rustc_hash::FxHashMap<&str, &BTreeMap<String, String>> = engine
            .spec()
            .services
            .iter()
            .filter(|sp| !sp.labels.is_empty())
            .map(|sp| (sp.name.as_str(), &sp.labels))
            .collect();
        let services = engine
            .services()
            .enumerate()
            .filter(|&(id, _)| shown(id))
            .map(|(id, (name, s))| {
                let latency_us: Vec<Vec<Option<f64>>> = windows
                    .iter()
                    .map(|&w| s.window_quantiles(w, now, &mut scratch, &QUANTILES))
                    .collect();
                let latency = latency_us
                    .iter()
                    .map(|q| [0, 1, 2].map(|i| q[i].map(|us| us / 1e6)))
                    .collect();
                let mut rps = [0.0; 3];
                let mut error_ratio = [None; 3];
                for (i, w) in SLI_WINDOWS.iter().enumerate() {
                    let total = s.window_sum(*w, COL_TOTAL);
                    rps[i] = total as f64 / w.as_secs_f64();
                    if total > 0 {
                        error_ratio[i] = Some(s.window_sum(*w, COL_ERRORS) as f64 / total as f64);
                    }
                }
                let tracker = trackers.get(id).and_then(Option::as_ref);
                let alerts = tracker
                    .map(|tr| {
                        tr.states()
                            .map(|(slo, rule, firing)| AlertState {
                                slo,
                                severity: rule.severity,
                                long: rule.long,
                                short: rule.short,
                                threshold: rule.threshold,
                                firing,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let slos = evaluate_slos(s, now);
                let slos_recent = (0..slos.len()).map(|i| s.slo_window(i, RECENT)).collect();
                let labels = labelled.get(name).map(|l| (*l).clone()).unwrap_or_default();
                ServiceGauges {
                    name: name.into(),
                    latency,
                    rps,
                    error_ratio,
                    freshness: s.last_success.map(|ls| secs(now - ls)),
                    last_event_age: s.last_ts.map(|l| secs(now - l)),
                    slos,
                    slos_recent,
                    period: s.period_length(now),
                    labels,
                    alerts,
                }
            })
            .collect();
        Snapshot {
            at: Some(now),
            quantile_windows: windows,
            services,
        }
    }
}

/// The live `services` object of the report at `now` (`/api/v1/services`
/// and the gate): built when asked for, not at every tick.
pub fn live_services(
    engine: &Engine,
    trackers: &[Option<AlertTracker>],
    now: Micros,
    shown: impl Fn(usize) -> bool,
) -> BTreeMap<String, ServiceReport> {
    let mut scratch = DenseHist::default();
    let windows = engine.quantile_windows();
    // The API's window, or the middle one when it is not kept.
    let api_window = windows
        .iter()
        .copied()
        .find(|&w| w == API_WINDOW)
        .unwrap_or(windows[windows.len().saturating_sub(1) / 2]);
    engine
        .services()
        .enumerate()
        .filter(|&(id, _)| shown(id))
        .map(|(id, (name, s))| {
            let latency_us = s.window_quantiles(api_window, now, &mut scratch, &QUANTILES);
            let report = report::live_service(
                s,
                &evaluate_slos(s, now),
                trackers.get(id).and_then(Option::as_ref),
                API_WINDOW,
                &latency_us,
                now,
            );
            (name.to_string(), report)
        })
        .collect()
}

/// The report behind the live status page at `now`: the services as
/// `/api/v1/services` gives them, and the summary a replay's report has
/// of them.
pub fn live_report(
    engine: &Engine,
    trackers: &[Option<AlertTracker>],
    now: Micros,
    shown: impl Fn(usize) -> bool,
    events: report::EventsReport,
) -> report::Report {
    let services = live_services(engine, trackers, now, &shown);
    let start = engine
        .services()
        .enumerate()
        .filter(|&(id, _)| shown(id))
        .filter_map(|(_, (_, s))| s.first_ts)
        .min();
    report::Report {
        schema_version: 1,
        span: start.map(|s| report::SpanReport {
            start: crate::model::format_rfc3339(s),
            end: crate::model::format_rfc3339(now),
        }),
        events,
        summary: report::Summary::of(&services),
        services,
        incidents: Vec::new(),
    }
}

/// Per service: events applied by this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceCounts {
    pub requests: u64,
    pub errors: u64,
    pub clamped: u64,
}

/// The process counters, published as events are applied.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Service names by id (shared: they change only when a service appears).
    pub names: Arc<[Box<str>]>,
    pub services: Vec<ServiceCounts>,
    /// Records read, per source (`file`, `kafka`).
    pub ingested: Vec<(&'static str, u64)>,
    pub rejected: RejectCounts,
}

impl Counters {
    /// Every event the engine holds counted as applied by this process (a
    /// replay, or a test).
    pub fn from_engine(
        engine: &Engine,
        ingested: Vec<(&'static str, u64)>,
        rejected: RejectCounts,
    ) -> Counters {
        Counters {
            names: engine.services().map(|(n, _)| n.into()).collect(),
            services: engine
                .services()
                .map(|(_, s)| ServiceCounts {
                    requests: s.requests,
                    errors: s.errors,
                    clamped: s.clamped,
                })
                .collect(),
            ingested,
            rejected,
        }
    }
}

/// The Kafka consumer's gauges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KafkaGauges {
    /// (topic, partition, lag in messages).
    pub lag: Vec<(String, i32, i64)>,
    /// Per topic: services seen on more than one of this instance's
    /// partitions.
    pub spread: Vec<(String, u64)>,
    /// (topic, partition, reading its history) per assigned partition.
    pub catching_up: Vec<(String, i32, bool)>,
    /// The state dir's passes, when durable state is on.
    pub state: Option<StateGauges>,
}

/// The state dir's gauges (DESIGN §8a).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateGauges {
    /// The last pass: from taking it on the apply thread to its file on disk.
    pub snapshot_seconds: f64,
    /// Bytes the last pass wrote.
    pub snapshot_bytes: u64,
    /// When the last pass reached the disk (seconds since the epoch; 0: none yet).
    pub last_snapshot: f64,
    pub restore_seconds: f64,
    /// Files that did not read at the restore, and passes that could not be written.
    pub failures: u64,
    /// (topic, partition, records expired while slate was away).
    pub gaps: Vec<(String, i32, i64)>,
}

/// The last SLO-spec reload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReloadState {
    pub successful: bool,
    /// Seconds since the epoch of the last successful load.
    pub at: f64,
}
