//! Reloading the SLO spec: an engine that took spec A, then events, then
//! spec B, then more events, holds for every unchanged SLO exactly what an
//! engine fed B and every event holds, and for every new or changed SLO
//! what an engine fed B and only the events after the reload holds (an
//! error-rate SLO reads the request counts every service keeps, so it
//! keeps its past even when its objective changes).

use std::path::Path;

use slate::engine::{Engine, EngineSettings, ServiceState};
use slate::evaluate::AlertTracker;
use slate::model::{Event, Span, BURN_WINDOWS};
use slate::spec::SloSpec;

const T0: i64 = 1_790_000_000_000_000;

fn spec(text: &str) -> SloSpec {
    SloSpec::parse(Path::new("slos.yml"), text).unwrap()
}

const A: &str = "services:\n  api:\n    slo_latency_p99: 300ms\n    slo_error_rate: 99%\n    slo_availability: 99.9%\n  web:\n    slo_error_rate: 99.5%\n";
/// latency_p90 is new, error_rate changed, the others are unchanged (in
/// another order); web is gone from the spec, db is new.
const B: &str = "services:\n  api:\n    slo_latency_p90: 100ms\n    slo_availability: 99.9%\n    slo_error_rate: 98%\n    slo_latency_p99: 300ms\n  db:\n    slo_error_rate: 99%\n";

/// SplitMix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `n` events for `service` from `from` over `minutes`, a bad stretch in
/// the middle so that slices go down and alerts fire.
fn events(seed: u64, from: i64, minutes: i64, n: i64) -> Vec<(i64, bool, Option<u64>)> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let ts = from + i * minutes * 60_000_000 / n;
            let bad_stretch = i > n / 3 && i < n / 2;
            let error = rng.next() % 100 < if bad_stretch { 40 } else { 2 };
            let latency = (!rng.next().is_multiple_of(7)).then(|| rng.next() % 500_000);
            (ts, error, latency)
        })
        .collect()
}

fn feed(e: &mut Engine, service: &str, evs: &[(i64, bool, Option<u64>)]) {
    let id = e.resolve(service).unwrap();
    for &(ts, error, latency_us) in evs {
        e.record(&Event {
            ts,
            service: id,
            error,
            latency_us,
        });
    }
}

fn state<'a>(e: &'a Engine, name: &str) -> &'a ServiceState {
    e.services().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn unchanged_slos_keep_their_state_and_the_others_start_at_the_reload() {
    let before = events(1, T0, 40, 3000);
    let after = events(2, T0 + 40 * 60_000_000, 25, 2000);
    let settings = EngineSettings::default();

    let mut live = Engine::new(&spec(A), settings.clone());
    feed(&mut live, "api", &before);
    feed(&mut live, "web", &before[..100]);
    let maps = live.reload(&spec(B));
    feed(&mut live, "api", &after);

    let mut all = Engine::new(&spec(B), settings.clone());
    feed(&mut all, "api", &before);
    feed(&mut all, "api", &after);
    let mut since = Engine::new(&spec(B), settings);
    feed(&mut since, "api", &after);

    let api = live.services().position(|(n, _)| n == "api").unwrap();
    assert_eq!(
        maps[api],
        vec![None, Some(2), None, Some(0)],
        "new SLO j came from old SLO i"
    );
    let (got, all, since) = (
        state(&live, "api"),
        state(&all, "api"),
        state(&since, "api"),
    );
    let names: Vec<&str> = got.plan.slos.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["latency_p90", "availability", "error_rate", "latency_p99"]
    );
    let mut windows: Vec<Span> = BURN_WINDOWS.to_vec();
    windows.push(got.plan.period);
    for (j, name) in names.iter().enumerate() {
        let want_from = match *name {
            "latency_p90" => since,
            _ => all,
        };
        for &w in &windows {
            let g = got.slo_window(j, w);
            assert_eq!(g, want_from.slo_window(j, w), "{name} over {w}");
            assert!(g.total > 0, "{name} over {w} has data");
        }
    }
    assert_eq!(got.cumulative[1], all.cumulative[1], "availability kept");
    assert_eq!(got.cumulative[3], all.cumulative[3], "latency_p99 kept");
    assert_eq!(got.cumulative[0], since.cumulative[0], "latency_p90 new");
    assert_eq!(
        got.cumulative[2], since.cumulative[2],
        "error_rate changed: its episodes' counts start again"
    );
    assert!(got.cumulative[1].1 > 0, "some slices went down");
    assert_eq!((got.requests, got.errors), (all.requests, all.errors));
    // The latency windows are not the spec's: kept whole.
    let mut s1 = Default::default();
    let mut s2 = Default::default();
    let qs = [0.5, 0.99];
    let t = after.last().unwrap().0;
    assert_eq!(
        got.window_quantiles(Span::hours(1), t, &mut s1, &qs),
        all.window_quantiles(Span::hours(1), t, &mut s2, &qs)
    );

    // web left the spec: it stays, with no SLO; db is new.
    assert!(state(&live, "web").plan.slos.is_empty());
    assert_eq!(state(&live, "web").requests, 100);
    assert_eq!(state(&live, "db").plan.slos.len(), 1);
}

#[test]
fn a_new_period_restarts_every_slo_but_keeps_the_request_windows() {
    let before = events(3, T0, 30, 2000);
    let after = events(4, T0 + 30 * 60_000_000, 10, 800);
    let b = "services:\n  api:\n    period: 7d\n    slo_latency_p99: 300ms\n    slo_error_rate: 99%\n    slo_availability: 99.9%\n";
    let settings = EngineSettings::default();
    let mut live = Engine::new(&spec(A), settings.clone());
    feed(&mut live, "api", &before);
    let maps = live.reload(&spec(b));
    feed(&mut live, "api", &after);
    let mut all = Engine::new(&spec(b), settings.clone());
    feed(&mut all, "api", &before);
    feed(&mut all, "api", &after);
    let mut since = Engine::new(&spec(b), settings);
    feed(&mut since, "api", &after);
    assert_eq!(maps[0], vec![None, None, None]);
    let (got, all, since) = (
        state(&live, "api"),
        state(&all, "api"),
        state(&since, "api"),
    );
    for w in [Span::mins(5), Span::hours(1), Span::hours(6), Span::days(7)] {
        assert_eq!(got.slo_window(0, w), since.slo_window(0, w), "p99 {w}");
        assert_eq!(got.slo_window(1, w), all.slo_window(1, w), "error rate {w}");
    }
    for w in [Span::mins(1), Span::mins(5), Span::hours(1)] {
        for col in 0..3 {
            assert_eq!(got.window_sum(w, col), all.window_sum(w, col), "{w} {col}");
        }
    }
}

#[test]
fn alert_state_follows_unchanged_slos() {
    let before = events(5, T0, 60, 6000);
    let mut e = Engine::new(&spec(A), EngineSettings::default());
    let id = e.resolve("api").unwrap();
    let mut tracker = AlertTracker::new(e.service(id));
    for chunk in before.chunks(100) {
        feed(&mut e, "api", chunk);
        tracker.tick(e.service(id), chunk.last().unwrap().0, 1);
    }
    let firing_before: Vec<(usize, bool)> = tracker.states().map(|(i, _, f)| (i, f)).collect();
    assert!(
        firing_before.iter().any(|&(_, f)| f),
        "the bad stretch fires"
    );
    let episodes_before = tracker.episodes.clone();
    assert!(!episodes_before.is_empty());

    let maps = e.reload(&spec(B));
    let tracker = tracker.replanned(e.service(id), &maps[id as usize]);
    // Old SLO i is new SLO j: its episodes and open alerts move with it.
    for (j, old) in maps[id as usize].iter().enumerate() {
        let got: Vec<_> = tracker.episodes.iter().filter(|x| x.slo == j).collect();
        let want: Vec<_> = match old {
            Some(i) => episodes_before.iter().filter(|x| x.slo == *i).collect(),
            None => Vec::new(),
        };
        assert_eq!(got.len(), want.len(), "SLO {j}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                (g.start, g.end, g.bad, g.rule),
                (w.start, w.end, w.bad, w.rule)
            );
        }
        let firing: Vec<bool> = tracker
            .states()
            .filter(|(k, _, _)| *k == j)
            .map(|(_, _, f)| f)
            .collect();
        let was: Vec<bool> = match old {
            Some(i) => firing_before
                .iter()
                .filter(|(k, _)| k == i)
                .map(|&(_, f)| f)
                .collect(),
            None => vec![false; firing.len()],
        };
        assert_eq!(firing, was, "SLO {j}");
    }
}
