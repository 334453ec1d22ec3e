//! The streaming engine against a naive, exact reference written from
//! DESIGN.md §4–§5, on generated traffic with gaps, disorder, stalls and
//! idle services: counts exact, quantiles within 1%, burn rates over the
//! slot-aligned windows exact, alert episodes within one evaluation tick.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use slate::gen::{generate, GenOptions, Incident};
use slate::model::{parse_rfc3339, Micros, Span};
use slate::replay::{replay, ReplayOptions};
use slate::report::Report;
use slate::source::file::InputName;
use slate::spec::{Config, SloSpec};

const MIN: i64 = 60_000_000;
/// The seed's spec; `slos_of` below restates it for the reference.
const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/service-slos.yml");

#[derive(Debug, Clone)]
struct Ev {
    /// Position in the input.
    idx: usize,
    ts: Micros,
    service: String,
    error: bool,
    latency_us: Option<u64>,
}

fn traffic() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let opts = GenOptions {
        services: 5,
        duration: Span::hours(14),
        rate: 1.5,
        seed: 7,
        incidents: [
            "errors:api-gateway:3h+25m:0.3",
            "stall:api-gateway:6h+2h",
            "errors:user-service:9h+40m:0.05",
            "slow:user-service:11h+30m:6",
            "disorder:user-service:0s+14h:40s",
            "stall:batch-processor:4h+3h",
            "stall:svc-0003:1h+10h",
        ]
        .iter()
        .map(|s| Incident::parse(s).unwrap())
        .collect(),
        ..GenOptions::default()
    };
    generated(&opts, "traffic.jsonl")
}

/// `opts`' traffic, written to `name` in a directory of its own: the
/// directory (kept while it lives), the file and its bytes.
fn generated(opts: &GenOptions, name: &str) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let mut bytes = Vec::new();
    generate(opts, &mut bytes).unwrap();
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    (dir, path, bytes)
}

/// An independent decode of the default event shape (DESIGN §3) with
/// serde_json's `Value`: the accepted events, and how many lines it
/// rejects.
fn reference_decode(bytes: &[u8]) -> (Vec<Ev>, u64) {
    let mut events = Vec::new();
    let mut rejected = 0;
    for l in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let decoded = (|| {
            let v: serde_json::Value = serde_json::from_slice(l).ok()?;
            let o = v.as_object()?;
            let ts = parse_rfc3339(o.get("ts")?.as_str()?.as_bytes())?;
            let service = o
                .get("service")?
                .as_str()
                .filter(|s| !s.is_empty())?
                .to_string();
            let error = match o.get("status") {
                Some(s) => {
                    let code = s.as_u64().filter(|c| (100..600).contains(c))?;
                    code >= 500
                }
                None => !o.get("success")?.as_bool()?,
            };
            let latency_us = match o.get("latency_ms") {
                None => None,
                Some(l) => Some((l.as_f64().filter(|v| *v >= 0.0)? * 1000.0).round() as u64),
            };
            Some((ts, service, error, latency_us))
        })();
        match decoded {
            Some((ts, service, error, latency_us)) => events.push(Ev {
                idx: events.len(),
                ts,
                service,
                error,
                latency_us,
            }),
            None => rejected += 1,
        }
    }
    (events, rejected)
}

fn run(path: &Path, threads: usize) -> Report {
    run_spec(path, threads, SloSpec::load(Path::new(SPEC)).unwrap())
}

fn run_spec(path: &Path, threads: usize, spec: SloSpec) -> Report {
    run_with(path, threads, spec, Config::default())
}

fn run_with(path: &Path, threads: usize, spec: SloSpec, config: Config) -> Report {
    replay(ReplayOptions {
        inputs: vec![InputName(path.to_path_buf())],
        spec,
        config,
        from: None,
        to: None,
        incidents: Vec::new(),
        threads,
        dead_letter: None,
        progress: false,
        charts: false,
        save_state: None,
    })
    .unwrap()
}

fn nearest_rank(sorted: &[u64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

/// One SLO's occurrences: (time, bad). Events for occurrence SLOs; closed
/// slices (by their start) for timeslice SLOs.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Latency(u64),
    Success,
    Availability,
    Freshness(i64),
}

struct RefSlo {
    name: &'static str,
    objective: f64,
    kind: Kind,
}

fn slos_of(service: &str) -> Vec<RefSlo> {
    match service {
        "api-gateway" => vec![
            RefSlo {
                name: "latency_p99",
                objective: 0.99,
                kind: Kind::Latency(200_000),
            },
            RefSlo {
                name: "error_rate",
                objective: 0.999,
                kind: Kind::Success,
            },
            RefSlo {
                name: "availability",
                objective: 0.9995,
                kind: Kind::Availability,
            },
        ],
        "user-service" => vec![
            RefSlo {
                name: "latency_p99",
                objective: 0.99,
                kind: Kind::Latency(500_000),
            },
            RefSlo {
                name: "error_rate",
                objective: 0.995,
                kind: Kind::Success,
            },
            RefSlo {
                name: "availability",
                objective: 0.999,
                kind: Kind::Availability,
            },
        ],
        "batch-processor" => vec![
            RefSlo {
                name: "success_rate",
                objective: 0.99,
                kind: Kind::Success,
            },
            RefSlo {
                name: "freshness",
                objective: 0.99,
                kind: Kind::Freshness(60 * MIN),
            },
        ],
        _ => vec![],
    }
}

/// One minute slices from the one holding `first` (the first event, or
/// the first success for freshness) to the last closed by `until`, judged
/// with the events applied by then: those before input position `applied`
/// (no look-ahead, as live would have seen them). Returns (start, bad).
fn slices(evs: &[&Ev], kind: Kind, until: Micros, applied: usize) -> Vec<(Micros, bool)> {
    // Availability counts from the slice of the service's first event in
    // input order (a later line dated earlier does not reopen the past);
    // freshness from the slice of the first success.
    let first = match kind {
        Kind::Availability => evs.first().map(|e| e.ts),
        Kind::Freshness(_) => evs.iter().filter(|e| !e.error).map(|e| e.ts).min(),
        _ => unreachable!(),
    };
    let Some(first) = first else { return vec![] };
    // (events, errors) per slice, and the successes in time order.
    let mut per: BTreeMap<Micros, (u64, u64)> = BTreeMap::new();
    let mut successes: Vec<Micros> = Vec::new();
    for e in evs.iter().filter(|e| e.idx < applied) {
        let c = per.entry(e.ts.div_euclid(MIN) * MIN).or_default();
        c.0 += 1;
        c.1 += e.error as u64;
        if !e.error {
            successes.push(e.ts);
        }
    }
    successes.sort_unstable();
    let mut out = Vec::new();
    let mut s = first.div_euclid(MIN) * MIN;
    while s + MIN <= until {
        let bad = match kind {
            Kind::Availability => {
                let (n, errors) = per.get(&s).copied().unwrap_or((0, 0));
                n > 0 && errors as f64 > 0.1 * n as f64
            }
            Kind::Freshness(max) => {
                let i = successes.partition_point(|&t| t < s + MIN);
                s + MIN - successes[i - 1] > max
            }
            _ => unreachable!(),
        };
        out.push((s, bad));
        s += MIN;
    }
    out
}

/// The SLO's occurrences known at `until` with the first `applied` events
/// of the input applied: (time, bad).
fn occurrences(evs: &[&Ev], kind: Kind, until: Micros, applied: usize) -> Vec<(Micros, bool)> {
    match kind {
        Kind::Latency(t) => evs
            .iter()
            .filter(|e| e.idx < applied)
            .filter_map(|e| e.latency_us.map(|l| (e.ts, l > t)))
            .collect(),
        Kind::Success => evs
            .iter()
            .filter(|e| e.idx < applied)
            .map(|e| (e.ts, e.error))
            .collect(),
        _ => slices(evs, kind, until, applied),
    }
}

/// Resolution of a window's slots (DESIGN §5).
fn res(w: i64) -> i64 {
    if w <= 60 * MIN {
        MIN / 6
    } else if w <= 360 * MIN {
        MIN
    } else if w <= 3 * 1440 * MIN {
        5 * MIN
    } else {
        60 * MIN
    }
}

/// An occurrence SLO's occurrences as (the watermark when it was read,
/// bad). The tick at T has applied the input before its first line dated
/// T or later, so the occurrence at input position k is in the ticks
/// after the newest time dated at or before position k, and in no tick
/// before: an episode from tick A to tick B spent the bad occurrences
/// whose watermark w has A ≤ w < B.
fn occurrences_at(evs: &[&Ev], kind: Kind, events: &[Ev]) -> Vec<(Micros, bool)> {
    let mut upto = Vec::with_capacity(events.len());
    let mut m = Micros::MIN;
    for e in events {
        m = m.max(e.ts);
        upto.push(m);
    }
    evs.iter()
        .filter_map(|e| {
            let bad = match kind {
                Kind::Latency(t) => e.latency_us? > t,
                Kind::Success => e.error,
                _ => return None,
            };
            Some((upto[e.idx], bad))
        })
        .collect()
}

/// Occurrences sorted by time with running bad counts, for fast windows.
struct Occ {
    ts: Vec<Micros>,
    bad_before: Vec<u64>,
    timeslice: bool,
}

impl Occ {
    fn new(mut occ: Vec<(Micros, bool)>, timeslice: bool) -> Occ {
        occ.sort_by_key(|o| o.0);
        let mut bad_before = vec![0];
        for o in &occ {
            bad_before.push(bad_before.last().unwrap() + o.1 as u64);
        }
        Occ {
            ts: occ.iter().map(|o| o.0).collect(),
            bad_before,
            timeslice,
        }
    }

    /// (bad, total) in the slot-aligned window of length `w` ending at
    /// `t`; slices count once closed (`start + 1m ≤ t`).
    fn window(&self, w: i64, t: Micros) -> (u64, u64) {
        let from = t.div_euclid(res(w)) * res(w) - w;
        let a = self.ts.partition_point(|&x| x < from);
        let b = self
            .ts
            .partition_point(|&x| if self.timeslice { x + MIN <= t } else { x < t });
        let b = b.max(a);
        (self.bad_before[b] - self.bad_before[a], (b - a) as u64)
    }
}

#[test]
fn streaming_engine_agrees_with_the_naive_reference() {
    let (_dir, path, bytes) = traffic();
    check_against_reference(&path, &bytes, 10);
}

/// DESIGN §5 alert windows: a spec's own pairs (Sloth's `AlertWindows`
/// shape under `defaults: alerting:`) with the ticket tier disabled, and
/// slate.yml's `alerting.windows` for every service without its own:
/// the episodes are those the naive evaluation of the same pairs finds,
/// no other pair fires, and the burn rate of each configured window is
/// reported.
#[test]
fn configured_alert_windows_and_a_disabled_tier_agree_with_the_naive_reference() {
    let (_dir, path, bytes) = traffic();
    let seed_spec = std::fs::read_to_string(SPEC).unwrap();
    let own = format!(
        "defaults:\n  alerting:\n    page:\n      quick: {{budget_percent: 3, long_window: 30m, short_window: 5m}}\n      slow: {{budget_percent: 6, long_window: 4h, short_window: 20m}}\n    ticket: disable\n{seed_spec}"
    );
    let spec = SloSpec::parse(Path::new("s.yml"), &own).unwrap();
    let pairs = [
        (30 * MIN, 5 * MIN, 0.03, "page"),
        (240 * MIN, 20 * MIN, 0.06, "page"),
    ];
    check_with_pairs(&path, &bytes, 3, spec.clone(), &pairs);
    let report = run_spec(&path, 2, spec);
    let api = &report.services["api-gateway"].slos.0[0].1;
    assert!(api.burn_rate.0.iter().any(|(w, _)| w == "30m"));
    assert!(api.burn_rate.0.iter().any(|(w, _)| w == "4h"));
    assert!(api.burn_rate.0.iter().any(|(w, _)| w == "20m"));

    // The same pairs from slate.yml, tickets kept: 2 pages and 2 tickets.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("slate.yml");
    std::fs::write(
        &cfg,
        "alerting:\n  windows:\n    page:\n      quick: {budget_percent: 3, long_window: 30m, short_window: 5m}\n      slow: {budget_percent: 6, long_window: 4h, short_window: 20m}\n",
    )
    .unwrap();
    let config = Config::load(&cfg).unwrap();
    let report = run_with(&path, 2, SloSpec::load(Path::new(SPEC)).unwrap(), config);
    let mut seen: Vec<(String, String)> = report
        .services
        .values()
        .flat_map(|s| {
            s.alerts
                .iter()
                .map(|a| (a.long_window.clone(), a.short_window.clone()))
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert!(seen.contains(&("30m".into(), "5m".into())), "{seen:?}");
    assert!(
        seen.iter().all(
            |p| [("30m", "5m"), ("4h", "20m"), ("1d", "2h"), ("3d", "6h")]
                .iter()
                .any(|(l, s)| p.0 == *l && p.1 == *s)
        ),
        "{seen:?}"
    );
}

/// The bundled fixture behind the golden report was checked here before
/// its report was frozen, and stays checked.
#[test]
fn the_incidents_fixture_agrees_with_the_naive_reference() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/incidents.jsonl.gz"
    ));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap()),
        &mut bytes,
    )
    .unwrap();
    check_against_reference(path, &bytes, 10);
}

fn fixture(name: &str) -> (std::path::PathBuf, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap()),
        &mut bytes,
    )
    .unwrap();
    (path, bytes)
}

#[test]
fn the_slow_burn_fixture_agrees_with_the_naive_reference() {
    let (path, bytes) = fixture("slow-burn.jsonl.gz");
    check_against_reference(&path, &bytes, 10);
}

#[test]
fn the_quiet_weekend_fixture_agrees_with_the_naive_reference() {
    let (path, bytes) = fixture("quiet-weekend.jsonl.gz");
    check_against_reference(&path, &bytes, 5);
}

/// Google SRE's four pairs: (long, short, budget share, severity).
const PAIRS: [(i64, i64, f64, &str); 4] = [
    (60 * MIN, 5 * MIN, 0.02, "page"),
    (360 * MIN, 30 * MIN, 0.05, "page"),
    (1440 * MIN, 120 * MIN, 0.1, "ticket"),
    (3 * 1440 * MIN, 360 * MIN, 0.1, "ticket"),
];

fn check_against_reference(path: &Path, bytes: &[u8], min_episodes: usize) {
    let spec = SloSpec::load(Path::new(SPEC)).unwrap();
    check_with_pairs(path, bytes, min_episodes, spec, &PAIRS);
}

/// [`check_against_reference`] under `spec`, whose alert pairs are `pairs`.
fn check_with_pairs(
    path: &Path,
    bytes: &[u8],
    min_episodes: usize,
    spec: SloSpec,
    pairs: &[(i64, i64, f64, &'static str)],
) {
    let (events, rejected) = reference_decode(bytes);
    let ordered = events.windows(2).all(|w| w[0].ts <= w[1].ts);
    let report = run_spec(path, 2, spec);
    let first = events.iter().map(|e| e.ts).min().unwrap();
    let last = events.iter().map(|e| e.ts).max().unwrap();
    let end = last + 1;

    assert_eq!(report.events.accepted, events.len() as u64);
    assert_eq!(report.events.rejected, rejected);
    let mut by_service: BTreeMap<&str, Vec<&Ev>> = BTreeMap::new();
    for e in &events {
        by_service.entry(&e.service).or_default().push(e);
    }
    // Every service seen, and the spec's services even without events.
    for (name, s) in &report.services {
        let seen = by_service.get(name.as_str()).map_or(0, |v| v.len() as u64);
        assert_eq!(s.requests, seen, "{name}");
    }
    assert!(by_service.keys().all(|k| report.services.contains_key(*k)));

    let period = 30 * 1440 * MIN;
    let mut episodes = 0;
    let mut incidents_checked = 0;
    let mut budgets_checked = 0;
    for (name, evs) in &by_service {
        let s = &report.services[*name];
        // Counts: exact.
        assert_eq!(s.requests, evs.len() as u64, "{name} requests");
        assert_eq!(
            s.errors,
            evs.iter().filter(|e| e.error).count() as u64,
            "{name} errors"
        );
        // Quantiles over the span: within 1% of nearest rank.
        let mut lat: Vec<u64> = evs.iter().filter_map(|e| e.latency_us).collect();
        lat.sort_unstable();
        for (q, got) in [
            (0.5, s.latency_ms.p50),
            (0.95, s.latency_ms.p95),
            (0.99, s.latency_ms.p99),
        ] {
            let want = nearest_rank(&lat, q) / 1000.0;
            let got = got.unwrap();
            assert!(
                (got - want).abs() <= want * 0.01,
                "{name} p{q}: {got} vs {want}"
            );
        }
        // Freshness: the age of the last success at the end of the span.
        let last_ok = evs.iter().filter(|e| !e.error).map(|e| e.ts).max().unwrap();
        assert!((s.freshness_s.unwrap() - (last - last_ok) as f64 / 1e6).abs() < 1e-3);

        for slo in slos_of(name) {
            let timeslice = matches!(slo.kind, Kind::Availability | Kind::Freshness(_));
            let occ = Occ::new(occurrences(evs, slo.kind, end, usize::MAX), timeslice);
            let r = &s.slos.0.iter().find(|(n, _)| n == slo.name).unwrap().1;
            let budget = 1.0 - slo.objective;
            // Attainment over the span (shorter than the period).
            let (bad, total) = occ.window(period, end);
            let att = 1.0 - bad as f64 / total as f64;
            let tol = 1e-9;
            assert!(
                (r.attainment.unwrap() - att).abs() <= tol,
                "{name}/{}: attainment {} vs {att}",
                slo.name,
                r.attainment.unwrap()
            );
            assert_eq!(
                (r.total, r.total - r.good),
                (total, bad),
                "{name}/{} counts",
                slo.name
            );
            // Burn rates as of the end, over slot-aligned windows.
            for (w, got) in &r.burn_rate.0 {
                let wm = Span::parse(w).unwrap().0;
                let (b, t) = occ.window(wm, end);
                let want = (t > 0).then(|| b as f64 / t as f64 / budget);
                match (got, want) {
                    (Some(g), Some(x)) => {
                        let tol = 1e-6 * x.max(1.0);
                        assert!(
                            (g - x).abs() <= tol,
                            "{name}/{} burn {w}: {g} vs {x}",
                            slo.name
                        );
                    }
                    (None, None) => {}
                    other => panic!("{name}/{} burn {w}: {other:?}", slo.name),
                }
            }
            // Alerts, minute by minute: the tick at T sees the input up to
            // the first line dated T or later.
            let mut expected: Vec<(&str, i64, Micros, Option<Micros>)> = Vec::new();
            let mut open: Vec<Option<Micros>> = vec![None; pairs.len()];
            let mut t = first.div_euclid(MIN) * MIN + MIN;
            while t <= last {
                // In time order, the input applied by T is every event before
                // T, and the whole-input occurrences serve every tick.
                let per_tick;
                let occ = if ordered {
                    &occ
                } else {
                    let applied = events
                        .iter()
                        .position(|e| e.ts >= t)
                        .unwrap_or(events.len());
                    per_tick = Occ::new(occurrences(evs, slo.kind, t, applied), timeslice);
                    &per_tick
                };
                for (pi, &(long, short, fraction, sev)) in pairs.iter().enumerate() {
                    let threshold = fraction * period as f64 / long as f64;
                    let fires = [long, short].iter().all(|&w| {
                        let (b, n) = occ.window(w, t);
                        n > 0 && b as f64 >= threshold * budget * n as f64 * (1.0 - 1e-9)
                    });
                    match (fires, open[pi]) {
                        (true, None) => open[pi] = Some(t),
                        (false, Some(st)) => {
                            expected.push((sev, long, st, Some(t)));
                            open[pi] = None;
                        }
                        _ => {}
                    }
                }
                t += MIN;
            }
            for (pi, o) in open.iter().enumerate() {
                if let Some(st) = o {
                    expected.push((pairs[pi].3, pairs[pi].0, *st, None));
                }
            }
            let mut got: Vec<(&str, i64, Micros, Option<Micros>)> = s
                .alerts
                .iter()
                .filter(|a| a.slo == slo.name)
                .map(|a| {
                    (
                        a.severity.as_str(),
                        Span::parse(&a.long_window).unwrap().0,
                        parse_rfc3339(a.start.as_bytes()).unwrap(),
                        a.end.as_ref().map(|e| parse_rfc3339(e.as_bytes()).unwrap()),
                    )
                })
                .collect();
            expected.sort();
            got.sort();
            episodes += expected.len();
            assert_eq!(
                got.len(),
                expected.len(),
                "{name}/{}: episodes\n got {got:?}\nwant {expected:?}",
                slo.name
            );
            incidents_checked += check_incidents(
                &mut budgets_checked,
                name,
                slo.name,
                &expected,
                s,
                (!timeslice).then(|| occurrences_at(evs, slo.kind, &events)),
                budget * occ.ts.len() as f64 * period as f64 / (last - first) as f64,
            );
            for (g, x) in got.iter().zip(&expected) {
                assert_eq!((g.0, g.1), (x.0, x.1));
                assert!(
                    (g.2 - x.2).abs() <= MIN,
                    "{name}/{} start {g:?} vs {x:?}",
                    slo.name
                );
                match (g.3, x.3) {
                    (Some(a), Some(b)) => assert!(
                        (a - b).abs() <= MIN,
                        "{name}/{} end {g:?} vs {x:?}",
                        slo.name
                    ),
                    (None, None) => {}
                    _ => panic!("{name}/{}: end {g:?} vs {x:?}", slo.name),
                }
            }
        }
    }
    // The incidents above must have raised alerts, or this test proves little.
    assert!(episodes >= min_episodes, "only {episodes} episodes");
    assert!(
        episodes == 0 || (incidents_checked > 0 && budgets_checked > 0),
        "{episodes} episodes: {incidents_checked} incidents, {budgets_checked} budgets compared"
    );
}

/// The report's incidents of one SLO against the reference's episodes
/// grouped here (DESIGN §7: episodes that overlap or lie within 5 minutes
/// of each other are one incident, its severity the highest, its cost the
/// bad occurrences over the union of its episodes, counted once). The cost
/// is compared where the occurrences are given (time-ordered input, an
/// occurrence SLO: the tick at T has applied every event before T) and
/// the report's episodes are the reference's to the tick. Returns the
/// incidents compared.
fn check_incidents(
    compared: &mut usize,
    name: &str,
    slo: &str,
    expected: &[(&str, i64, Micros, Option<Micros>)],
    s: &slate::report::ServiceReport,
    occ: Option<Vec<(Micros, bool)>>,
    budget_denominator: f64,
) -> usize {
    let mut eps: Vec<(Micros, Option<Micros>, &str)> =
        expected.iter().map(|e| (e.2, e.3, e.0)).collect();
    eps.sort();
    // (start, end, severity, members) per incident.
    type Interval = (Micros, Option<Micros>);
    let mut want: Vec<(Micros, Option<Micros>, &str, Vec<Interval>)> = Vec::new();
    for (st, en, sev) in eps {
        match want.last_mut() {
            Some(w) if w.1.is_none_or(|end| st <= end + 5 * MIN) => {
                w.1 = w.1.zip(en).map(|(a, b)| a.max(b));
                if sev == "page" {
                    w.2 = "page";
                }
                w.3.push((st, en));
            }
            _ => want.push((st, en, sev, vec![(st, en)])),
        }
    }
    let got: Vec<&slate::report::IncidentSummary> =
        s.incidents.iter().filter(|i| i.slo == slo).collect();
    assert_eq!(
        got.len(),
        want.len(),
        "{name}/{slo}: incidents\n got {got:?}\nwant {want:?}"
    );
    for (g, w) in got.iter().zip(&want) {
        let start = parse_rfc3339(g.start.as_bytes()).unwrap();
        let end = g.end.as_ref().map(|e| parse_rfc3339(e.as_bytes()).unwrap());
        assert_eq!(g.severity, w.2, "{name}/{slo}: severity of {g:?}");
        assert!((start - w.0).abs() <= MIN, "{name}/{slo}: {g:?} vs {w:?}");
        match (end, w.1) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= MIN, "{name}/{slo}: {g:?} vs {w:?}"),
            (None, None) => {}
            _ => panic!("{name}/{slo}: end {g:?} vs {w:?}"),
        }
        assert_eq!(g.pairs.len(), w.3.len(), "{name}/{slo}: pairs of {g:?}");
        let mut ticks: Vec<(Micros, Option<Micros>)> = g
            .pairs
            .iter()
            .map(|p| {
                (
                    parse_rfc3339(p.start.as_bytes()).unwrap(),
                    p.end.as_ref().map(|e| parse_rfc3339(e.as_bytes()).unwrap()),
                )
            })
            .collect();
        ticks.sort();
        let same_ticks = ticks == w.3;
        let (Some(occ), true) = (occ.as_ref(), same_ticks) else {
            continue;
        };
        // Each bad occurrence once, if any episode holds it.
        let bad = occ
            .iter()
            .filter(|&&(at, bad)| {
                bad && w
                    .3
                    .iter()
                    .any(|&(a, b)| a <= at && b.is_none_or(|b| at < b))
            })
            .count();
        let want_budget = bad as f64 / budget_denominator;
        *compared += 1;
        assert!(
            (g.budget_consumed - want_budget).abs() <= 1e-9 * want_budget.max(1e-9),
            "{name}/{slo}: {g:?} spent {} against {want_budget} ({bad} bad)",
            g.budget_consumed
        );
        // The union costs no more than its pairs together, and at least
        // the costliest.
        let pairs: Vec<f64> = g.pairs.iter().map(|p| p.budget_consumed).collect();
        assert!(g.budget_consumed <= pairs.iter().sum::<f64>() * (1.0 + 1e-9));
        assert!(g.budget_consumed >= pairs.iter().cloned().fold(0.0, f64::max) * (1.0 - 1e-9));
    }
    want.len()
}

#[test]
fn the_report_does_not_depend_on_the_number_of_threads() {
    let (_dir, path, _) = traffic();
    let one = serde_json::to_string(&run(&path, 1)).unwrap();
    let four = serde_json::to_string(&run(&path, 4)).unwrap();
    assert_eq!(one, four);
}

/// DESIGN §7 `calendar` and `summary.weeks` / `summary.months`: nine days
/// of traffic across a month boundary and two ISO weeks (with an error
/// burst, a stalled batch job, disorder and the gaps of a low rate),
/// replayed with the seed's spec in UTC and again with `period_timezone`
/// set to a zone half an hour off UTC; each SLO's good and total per week
/// and per month, and the one number per week and month, against events
/// and slices bucketed here by their own time.
#[test]
fn calendar_weeks_and_months_agree_with_the_naive_reference() {
    let opts = GenOptions {
        services: 3,
        duration: Span::days(9),
        rate: 0.05,
        seed: 11,
        start: parse_rfc3339(b"2026-10-27T00:00:00Z").unwrap(),
        incidents: [
            "errors:api-gateway:4d+3h:0.3",
            "stall:batch-processor:5d+2h",
            "disorder:user-service:0s+9d:40s",
        ]
        .iter()
        .map(|s| Incident::parse(s).unwrap())
        .collect(),
        ..GenOptions::default()
    };
    let (_dir, path, bytes) = generated(&opts, "nine-days.jsonl");
    let (events, _) = reference_decode(&bytes);
    let end = events.iter().map(|e| e.ts).max().unwrap() + 1;
    let seed_spec = std::fs::read_to_string(SPEC).unwrap();

    for zone in ["UTC", "Asia/Kolkata"] {
        let spec = SloSpec::parse(
            Path::new("s.yml"),
            &format!("defaults:\n  period_timezone: {zone}\n{seed_spec}"),
        )
        .unwrap();
        let report = run_with(&path, 2, spec, Config::default());
        let tz = jiff::tz::TimeZone::get(zone).unwrap();
        let labels = |t: Micros| {
            let d = jiff::Timestamp::from_microsecond(t)
                .unwrap()
                .to_zoned_datetime(tz.clone())
                .date();
            let w = d.iso_week_date();
            (
                format!("{}-W{:02}", w.year(), w.week()),
                format!("{}-{:02}", d.year(), d.month()),
            )
        };
        // The one number: (good, total) per week and month.
        let mut all: [BTreeMap<String, (u64, u64)>; 2] = Default::default();
        let mut compared = 0;
        for (name, s) in &report.services {
            let evs: Vec<&Ev> = events.iter().filter(|e| &e.service == name).collect();
            for slo in slos_of(name) {
                let timeslice = matches!(slo.kind, Kind::Availability | Kind::Freshness(_));
                let mut want: [BTreeMap<String, (u64, u64)>; 2] = Default::default();
                for (t, bad) in occurrences(&evs, slo.kind, end, usize::MAX) {
                    let (w, m) = labels(t);
                    for (map, k) in want.iter_mut().zip([w, m]) {
                        let e = map.entry(k).or_default();
                        e.0 += !bad as u64;
                        e.1 += 1;
                    }
                }
                if !timeslice {
                    for (a, w) in all.iter_mut().zip(&want) {
                        for (k, &(g, t)) in w {
                            let e = a.entry(k.clone()).or_default();
                            e.0 += g;
                            e.1 += t;
                        }
                    }
                }
                let cal = &s.calendar.0.iter().find(|(n, _)| n == slo.name).unwrap().1;
                for (got, want, what) in [
                    (&cal.weeks, &want[0], "weeks"),
                    (&cal.months, &want[1], "months"),
                ] {
                    let got: BTreeMap<String, (u64, u64)> = got
                        .0
                        .iter()
                        .map(|(k, f)| (k.clone(), (f.good, f.total)))
                        .collect();
                    assert_eq!(&got, want, "{zone} {name}/{} {what}", slo.name);
                    compared += want.len();
                }
                // A week's budget: its bad share over the SLO's budget.
                for (k, f) in &cal.weeks.0 {
                    let b = (f.total - f.good) as f64 / f.total as f64 / (1.0 - slo.objective);
                    assert!(
                        (f.budget_consumed.unwrap() - b).abs() <= 1e-9 * b.max(1.0),
                        "{k}"
                    );
                }
            }
        }
        for (got, want, what) in [
            (&report.summary.weeks, &all[0], "weeks"),
            (&report.summary.months, &all[1], "months"),
        ] {
            let got: BTreeMap<String, (u64, u64)> = got
                .0
                .iter()
                .map(|(k, r)| (k.clone(), (r.good, r.total)))
                .collect();
            assert_eq!(&got, want, "{zone} summary.{what}");
            for (k, r) in &report.summary.weeks.0 {
                let x = r.good as f64 / r.total as f64;
                assert!((r.reliability.unwrap() - x).abs() < 1e-9, "{k}");
            }
        }
        // Two months and two or three weeks, per SLO.
        assert_eq!(all[1].len(), 2, "{zone}: {:?}", all[1]);
        assert!(all[0].len() >= 2, "{zone}: {:?}", all[0]);
        assert!(compared >= 8 * 4, "{zone}: {compared}");
    }
}

/// DESIGN §4 calendar periods: with `period: month` (and `week`) the
/// budget starts whole at the boundary in the period's zone: each SLO's
/// figures are those of the events (slices) since the month (week) began,
/// as a reading of the input finds them; the burn-rate thresholds follow
/// the period's own length (a 31-day October, a 30-day November); an
/// episode's budget is a share of its own month's.
#[test]
fn a_calendar_period_restarts_its_budget_at_the_boundary() {
    let opts = GenOptions {
        services: 3,
        duration: Span::days(9),
        rate: 0.05,
        seed: 13,
        start: parse_rfc3339(b"2026-10-27T00:00:00Z").unwrap(),
        incidents: [
            "errors:api-gateway:2d+3h:0.3",
            "errors:api-gateway:6d+3h:0.3",
            "stall:batch-processor:5d+2h",
        ]
        .iter()
        .map(|s| Incident::parse(s).unwrap())
        .collect(),
        ..GenOptions::default()
    };
    let (_dir, path, bytes) = generated(&opts, "month-boundary.jsonl");
    let (events, _) = reference_decode(&bytes);
    let end = events.iter().map(|e| e.ts).max().unwrap() + 1;
    let seed_spec = std::fs::read_to_string(SPEC).unwrap();
    let at = |s: &str| parse_rfc3339(s.as_bytes()).unwrap();
    for (period, zone, start, days) in [
        ("month", "UTC", at("2026-11-01T00:00:00Z"), 30.0),
        ("month", "Asia/Kolkata", at("2026-10-31T18:30:00Z"), 30.0),
        ("week", "Europe/Berlin", at("2026-11-01T23:00:00Z"), 7.0),
    ] {
        let spec = SloSpec::parse(
            Path::new("s.yml"),
            &format!("defaults:\n  period: {period}\n  period_timezone: {zone}\n{seed_spec}"),
        )
        .unwrap();
        let report = run_with(&path, 2, spec, Config::default());
        let mut compared = 0;
        for (name, s) in &report.services {
            assert_eq!(s.period.as_deref(), Some(period), "{name}");
            let evs: Vec<&Ev> = events.iter().filter(|e| &e.service == name).collect();
            for slo in slos_of(name) {
                let (mut good, mut total) = (0u64, 0u64);
                for (t, bad) in occurrences(&evs, slo.kind, end, usize::MAX) {
                    if t >= start {
                        total += 1;
                        good += !bad as u64;
                    }
                }
                let r = &s.slos.0.iter().find(|(n, _)| n == slo.name).unwrap().1;
                let what = format!("{period} {zone} {name}/{}", slo.name);
                assert_eq!((r.good, r.total), (good, total), "{what}");
                if total > 0 {
                    let b = (total - good) as f64 / total as f64 / (1.0 - slo.objective);
                    let got = r.budget_consumed.unwrap();
                    assert!((got - b).abs() <= 1e-6 * b.max(1.0), "{what}: {got} vs {b}");
                    compared += 1;
                }
            }
            // Thresholds: budget share × the period's days / the long window.
            for a in &s.alerts {
                let t = at(&a.start);
                let days = if period == "month" && t < start {
                    31.0
                } else {
                    days
                };
                let (share, long_h) = match (a.long_window.as_str(), a.short_window.as_str()) {
                    ("1h", _) => (0.02, 1.0),
                    ("6h", _) => (0.05, 6.0),
                    ("1d", _) => (0.10, 24.0),
                    ("3d", _) => (0.10, 72.0),
                    other => panic!("{other:?}"),
                };
                let want = share * days * 24.0 / long_h;
                assert!(
                    (a.burn_rate_threshold - want).abs() < 1e-3,
                    "{period} {zone} {name} {} at {}: {} vs {want}",
                    a.long_window,
                    a.start,
                    a.burn_rate_threshold
                );
            }
        }
        assert!(compared >= 8, "{period} {zone}: {compared}");
        // An episode's budget is a share of its own period's: the bad
        // events inside it over B × the events of the period holding its
        // start, scaled up to the whole period when the data covers only
        // part of it (the input is in time order: the tick at T has
        // applied every event before T).
        if period == "month" {
            let api: Vec<&Ev> = events
                .iter()
                .filter(|e| e.service == "api-gateway")
                .collect();
            assert!(api.windows(2).all(|w| w[0].ts <= w[1].ts));
            let first = api[0].ts;
            let mut episodes = 0;
            for a in report.services["api-gateway"]
                .alerts
                .iter()
                .filter(|a| a.slo == "error_rate")
            {
                let from = at(&a.start);
                let to = a.end.as_deref().map_or(end, at);
                let bad = api
                    .iter()
                    .filter(|e| e.error && e.ts >= from && e.ts < to)
                    .count();
                let (p0, p1) = if from < start {
                    (start - 31 * 1440 * MIN, start)
                } else {
                    (start, start + 30 * 1440 * MIN)
                };
                let total = api.iter().filter(|e| e.ts >= p0 && e.ts < p1).count() as f64;
                let seen = (p1.min(end) - p0.max(first)) as f64;
                let scaled = total * (p1 - p0) as f64 / seen;
                let want = bad as f64 / (0.001 * scaled);
                assert!(
                    (a.budget_consumed - want).abs() <= 1e-6 * want.max(1e-3),
                    "{zone} {} {}/{}: {} vs {want}",
                    a.start,
                    a.long_window,
                    a.short_window,
                    a.budget_consumed
                );
                episodes += (bad > 0) as usize;
            }
            assert!(episodes >= 4, "{zone}: {episodes}");
        }
        // Both bursts fired, one in each month.
        let api = &report.services["api-gateway"];
        let pages: Vec<&str> = api
            .alerts
            .iter()
            .filter(|a| a.long_window == "1h")
            .map(|a| a.start.as_str())
            .collect();
        assert!(
            pages.iter().any(|s| at(s) < at("2026-11-01T00:00:00Z")),
            "{pages:?}"
        );
        assert!(
            pages.iter().any(|s| at(s) > at("2026-11-02T00:00:00Z")),
            "{pages:?}"
        );
    }
}

/// DESIGN §4 corrections: a one-off correction over an error burst and a
/// daily one; the events and slices inside them count for no SLO (the
/// report counts them apart, exactly as a reading of the input finds
/// them), the rest is counted as before, the burst fires no alert any
/// more (it did without the correction), and the budget it spent comes
/// back.
#[test]
fn corrections_exclude_exactly_their_events_and_slices_and_fire_no_alert() {
    let opts = GenOptions {
        services: 3,
        duration: Span::days(2),
        rate: 0.3,
        seed: 23,
        start: parse_rfc3339(b"2026-11-01T00:00:00Z").unwrap(),
        incidents: [
            "errors:api-gateway:20h+40m:0.4",
            "disorder:user-service:0s+2d:30s",
        ]
        .iter()
        .map(|s| Incident::parse(s).unwrap())
        .collect(),
        ..GenOptions::default()
    };
    let (_dir, path, bytes) = generated(&opts, "two-days.jsonl");
    let (events, _) = reference_decode(&bytes);
    let end = events.iter().map(|e| e.ts).max().unwrap() + 1;
    let seed_spec = std::fs::read_to_string(SPEC).unwrap();
    let corrections = "corrections:
  - services: [api-gateway]
    start: 2026-11-01T19:55:00Z
    end: 2026-11-01T20:50:00Z
    reason: the deploy that broke it, rolled back
  - services: \"*\"
    slos: [error_rate, availability, success_rate]
    start: 2026-11-01T03:00:00Z
    duration: 30m
    rrule: FREQ=DAILY
    reason: nightly maintenance
";
    let run = |text: &str| {
        run_with(
            &path,
            2,
            SloSpec::parse(Path::new("s.yml"), text).unwrap(),
            Config::default(),
        )
    };
    let plain = run(&seed_spec);
    let corrected = run(&format!("{seed_spec}{corrections}"));
    let at = |s: &str| parse_rfc3339(s.as_bytes()).unwrap();
    let one_off = (at("2026-11-01T19:55:00Z"), at("2026-11-01T20:50:00Z"));
    let nightly = [
        (at("2026-11-01T03:00:00Z"), at("2026-11-01T03:30:00Z")),
        (at("2026-11-02T03:00:00Z"), at("2026-11-02T03:30:00Z")),
    ];
    let inside = |service: &str, slo: &str, t: Micros| {
        (service == "api-gateway" && one_off.0 <= t && t < one_off.1)
            || (["error_rate", "availability", "success_rate"].contains(&slo)
                && nightly.iter().any(|&(a, b)| a <= t && t < b))
    };
    let mut excluded_total = 0;
    for (name, s) in &corrected.services {
        let evs: Vec<&Ev> = events.iter().filter(|e| &e.service == name).collect();
        assert_eq!(
            s.requests,
            evs.len() as u64,
            "{name}: every event is still a request"
        );
        for slo in slos_of(name) {
            let occ = occurrences(&evs, slo.kind, end, usize::MAX);
            let (mut excluded, mut total, mut bad) = (0u64, 0u64, 0u64);
            for &(t, b) in &occ {
                if inside(name, slo.name, t) {
                    excluded += 1;
                } else {
                    total += 1;
                    bad += b as u64;
                }
            }
            let r = &s.slos.0.iter().find(|(n, _)| n == slo.name).unwrap().1;
            assert_eq!(
                (r.excluded, r.total, r.total - r.good),
                (excluded, total, bad),
                "{name}/{}: (excluded, total, bad)",
                slo.name
            );
            excluded_total += excluded;
        }
    }
    assert!(excluded_total > 0);
    let errors_alerts = |r: &Report| {
        r.services["api-gateway"]
            .alerts
            .iter()
            .filter(|a| a.slo == "error_rate")
            .count()
    };
    assert!(
        errors_alerts(&plain) > 0,
        "the burst fires without the correction"
    );
    assert_eq!(
        errors_alerts(&corrected),
        0,
        "{:?}",
        corrected.services["api-gateway"].alerts
    );
    let left = |r: &Report| {
        r.services["api-gateway"]
            .slos
            .0
            .iter()
            .find(|(n, _)| n == "error_rate")
            .unwrap()
            .1
            .budget_remaining
            .unwrap()
    };
    assert!(
        left(&corrected) > left(&plain) + 0.5,
        "{} vs {}",
        left(&corrected),
        left(&plain)
    );
}
