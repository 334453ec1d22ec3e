//! The core with a mock clock: the late rule against a naive count, and
//! history read through several clocks (partitions) against one clock (a
//! replay) of the same events.

use proptest::prelude::*;

use super::*;
use crate::engine::plan::{COL_ERRORS, COL_TOTAL};
use crate::model::{MICROS_PER_MIN, MICROS_PER_SEC};

const T0: Micros = 1_794_999_960 * MICROS_PER_SEC; // 2026-11-18T16:26Z, a whole minute
const HOUR: Micros = 60 * MICROS_PER_MIN;
const DAY: Micros = 24 * HOUR;

fn spec() -> SloSpec {
    SloSpec::parse(
        std::path::Path::new("s.yml"),
        "services:\n  a:\n    slo_error_rate: 99%\n    slo_latency_p99: 200ms\n    slo_availability: 99%\n  b:\n    slo_error_rate: 99%\n",
    )
    .unwrap()
}

fn core() -> Core {
    Core::new(
        &spec(),
        CoreSettings {
            engine: EngineSettings::default(),
            min_events: 0,
            step: Span::mins(1),
        },
    )
}

fn ev(core: &mut Core, name: &str, ts: Micros, error: bool) -> Event {
    Event {
        ts,
        service: core.resolve(name).unwrap(),
        error,
        latency_us: Some(if error { 900_000 } else { 20_000 }),
    }
}

#[test]
fn the_horizon_is_the_longest_period() {
    assert_eq!(core().horizon(), Span::days(30));
    let sli_only = Core::new(
        &SloSpec::parse(std::path::Path::new("s.yml"), "services: {}\n").unwrap(),
        CoreSettings {
            engine: EngineSettings::default(),
            min_events: 0,
            step: Span::mins(1),
        },
    );
    assert_eq!(sli_only.horizon(), LATE_HORIZON);
}

/// DESIGN §5: an event is `too_late` only beyond the longest period; a
/// late one counts in every window that still covers it and leaves the
/// windows that moved past it alone.
#[test]
fn late_events_count_in_every_window_that_still_covers_them() {
    let mut c = core();
    let now = T0 + 10 * DAY;
    let e = ev(&mut c, "a", now, false);
    c.apply(0, &e, now).unwrap();
    let a = e.service;
    // 2 hours late, 3 days late, 29 days late: all inside the 30-day period.
    for (late, error) in [(2 * HOUR, true), (3 * DAY + HOUR, true), (29 * DAY, false)] {
        let e = ev(&mut c, "a", now - late, error);
        c.apply(0, &e, now).unwrap();
    }
    // 31 days late: beyond the period.
    let e = ev(&mut c, "a", now - 31 * DAY, true);
    assert_eq!(c.apply(0, &e, now), Err(Reason::TooLate));
    let s = c.engine.service(a);
    assert_eq!(s.requests, 4);
    assert_eq!(s.window_sum(Span::days(30), COL_TOTAL), 4);
    assert_eq!(s.window_sum(Span::days(30), COL_ERRORS), 2);
    assert_eq!(
        s.window_sum(Span::days(3), COL_TOTAL),
        2,
        "the 3d window covers now and 2h ago"
    );
    assert_eq!(s.window_sum(Span::hours(6), COL_ERRORS), 1);
    assert_eq!(
        s.window_sum(Span::hours(1), COL_TOTAL),
        1,
        "the 1h window moved past all of them"
    );
    // The error-rate SLO's period: 4 events, 2 bad.
    let gt = s.slo_window(0, Span::days(30));
    assert_eq!((gt.good, gt.total), (2, 4));
}

#[test]
fn ticks_come_every_step_as_the_watermark_passes_them() {
    let mut c = core();
    let mut got = Vec::new();
    for ts in [
        T0 + 5 * MICROS_PER_SEC,
        T0 + 30 * MICROS_PER_SEC,
        T0 + 185 * MICROS_PER_SEC,
    ] {
        while let Some(t) = c.due_tick(0, ts) {
            got.push((t - T0) / MICROS_PER_SEC);
        }
    }
    // T0 is a whole minute: the first tick is the minute after the first event.
    assert_eq!(T0 % MICROS_PER_MIN, 0);
    assert_eq!(got, vec![60, 120, 180]);
    c.reset_clock(0);
    assert_eq!(c.due_tick(0, T0 + DAY), None, "a reset clock starts again");
}

/// Events of one service in time order with some disorder, an error
/// burst, a quiet gap; for two services.
fn traffic(seed: u64, n: usize) -> Vec<(&'static str, Micros, bool)> {
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::new();
    for name in ["a", "b"] {
        let mut ts = T0;
        for i in 0..n {
            let r = next();
            ts += (r % 20) as i64 * MICROS_PER_SEC;
            if i == n / 3 {
                ts += 5 * HOUR; // a quiet spell
            }
            let burst = (n / 2..n / 2 + n / 10).contains(&i);
            let error = if burst { r % 3 != 0 } else { r % 97 == 0 };
            // A few events hours late.
            let late = if r % 41 == 0 {
                (r % 7) as i64 * HOUR
            } else {
                0
            };
            out.push((name, ts - late, error));
        }
    }
    out
}

/// Per service: requests, errors, each SLO's (good, total) over its
/// period, and its alert episodes (SLO, start, end, bad).
type Summary = (
    u64,
    u64,
    Vec<(u64, u64)>,
    Vec<(usize, Micros, Option<Micros>, u64)>,
);

fn summary(c: &Core) -> Vec<Summary> {
    c.engine
        .services()
        .enumerate()
        .map(|(id, (_, s))| {
            let slos = (0..s.plan.slos.len())
                .map(|i| {
                    let gt = s.slo_window(i, s.plan.period);
                    (gt.good, gt.total)
                })
                .collect();
            let eps = c.trackers[id]
                .as_ref()
                .map(|t| {
                    t.episodes
                        .iter()
                        .map(|e| (e.slo, e.start, e.end, e.bad))
                        .collect()
                })
                .unwrap_or_default();
            (s.requests, s.errors, slos, eps)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// Two partitions' histories read side by side (in any interleaving),
    /// each service ticking on its own partition's clock, give the state
    /// and the alert episodes of one clock reading each service's events
    /// in order: what `slate replay` of each partition gives.
    #[test]
    fn histories_read_through_their_own_clocks_equal_one_clock(seed in 1u64.., n in 200usize..800, chunk in 1usize..300) {
        let events = traffic(seed, n);
        // The reference: each service alone, on one clock, ticked as a
        // replay ticks (every service at each tick its events pass).
        let mut want = Vec::new();
        for name in ["a", "b"] {
            let mut c = core();
            let mut wm: Option<Micros> = None;
            for &(n2, ts, error) in events.iter().filter(|e| e.0 == name) {
                let e = ev(&mut c, n2, ts, error);
                while let Some(t) = c.due_tick(0, ts) {
                    c.tick_all(t);
                }
                let now = wm.map_or(ts, |w| w.max(ts));
                wm = Some(now);
                c.apply(0, &e, now).unwrap();
            }
            c.finish(wm);
            let s = summary(&c);
            let id = c.engine.resolve(name).unwrap() as usize;
            want.push(s[id].clone());
        }
        // The burst fires alerts: the episodes compared are not empty.
        prop_assert!(want.iter().all(|w| !w.3.is_empty()));
        // Partition 0 holds a, partition 1 holds b: read `chunk` events of
        // one, then of the other, as a consumer fetches them.
        let mut c = core();
        let a: Vec<_> = events.iter().filter(|e| e.0 == "a").collect();
        let b: Vec<_> = events.iter().filter(|e| e.0 == "b").collect();
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            for (part, list, k) in [(0usize, &a, &mut i), (1, &b, &mut j)] {
                for &&(name, ts, error) in list.iter().skip(*k).take(chunk) {
                    let e = ev(&mut c, name, ts, error);
                    while let Some(t) = c.due_tick(part, ts) {
                        c.tick(part, t);
                    }
                    let now = c.now_at(part, ts);
                    c.apply(part, &e, now).unwrap();
                }
                *k = (*k + chunk).min(list.len());
            }
        }
        // Each service finishes at its own last event, as the references did.
        for name in ["a", "b"] {
            let last = events.iter().filter(|e| e.0 == name).map(|e| e.1).max().unwrap();
            let id = c.engine.resolve(name).unwrap();
            c.engine.advance_service(id, last + 1);
        }
        c.finish(None);
        let got = summary(&c);
        for (k, name) in ["a", "b"].iter().enumerate() {
            let id = c.engine.resolve(name).unwrap() as usize;
            prop_assert_eq!(&got[id], &want[k], "service {}", name);
        }
    }
}

/// Everything a service's figures come from, as of `t`: the summary, each
/// SLO's evaluation (every burn window) and the latency quantiles.
fn figures(c: &Core, t: Micros) -> Vec<(Summary, Vec<crate::evaluate::SloEval>, Vec<Option<f64>>)> {
    let sums = summary(c);
    let mut scratch = crate::engine::hist::DenseHist::default();
    c.engine
        .services()
        .zip(sums)
        .map(|((_, s), sum)| {
            let q = s.window_quantiles(Span::hours(1), t, &mut scratch, &[0.5, 0.99]);
            (sum, crate::evaluate::evaluate_slos(s, t), q)
        })
        .collect()
}

/// Feeds `events[from..to]` through clock 0 (service a) and 1 (b).
fn feed(c: &mut Core, events: &[(&'static str, Micros, bool)], from: usize, to: usize) {
    for &(name, ts, error) in &events[from..to] {
        let part = (name == "b") as usize;
        let e = ev(c, name, ts, error);
        while let Some(t) = c.due_tick(part, ts) {
            c.tick(part, t);
        }
        let now = c.now_at(part, ts);
        c.apply(part, &e, now).unwrap();
    }
}

fn settings() -> CoreSettings {
    CoreSettings {
        engine: EngineSettings::default(),
        min_events: 0,
        step: Span::mins(1),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// Snapshot → restore → the rest of the events: the same state, the
    /// same alert episodes and the same figures as a run never interrupted,
    /// wherever the cut falls.
    #[test]
    fn a_restored_snapshot_continues_as_an_uninterrupted_run(seed in 1u64.., n in 100usize..500, cut in 0.0f64..1.0) {
        let mut events = traffic(seed, n);
        // Interleave the two services by time, as one topic would carry them.
        events.sort_by_key(|e| e.1);
        let at = (events.len() as f64 * cut) as usize;
        let mut whole = core();
        feed(&mut whole, &events, 0, events.len());
        let mut first = core();
        feed(&mut first, &events, 0, at);
        let bytes = snapshot::encode(&first);
        let mut restored = snapshot::decode(&bytes, &spec(), settings()).unwrap();
        prop_assert_eq!(figures(&restored, T0 + 30 * DAY), figures(&first, T0 + 30 * DAY));
        feed(&mut restored, &events, at, events.len());
        let end = events.iter().map(|e| e.1).max().unwrap() + 1;
        for c in [&mut whole, &mut restored] {
            c.engine.advance_all(end);
            c.finish(None);
        }
        prop_assert_eq!(figures(&restored, end), figures(&whole, end));
        prop_assert!(whole.trackers.iter().flatten().any(|t| !t.episodes.is_empty()));
    }
}

/// A snapshot taken under one spec and restored under another keeps what
/// still matches, as a reload does: the unchanged SLO keeps its counts,
/// the changed one starts again, a new service appears.
#[test]
fn a_snapshot_restored_under_another_spec_keeps_what_matches() {
    let mut c = core();
    let events = traffic(7, 300);
    feed(&mut c, &events, 0, events.len());
    let bytes = snapshot::encode(&c);
    let other = SloSpec::parse(
        std::path::Path::new("s.yml"),
        "services:\n  a:\n    slo_error_rate: 99%\n    slo_latency_p99: 100ms\n  b:\n    slo_error_rate: 99%\n  c:\n    slo_error_rate: 99%\n",
    )
    .unwrap();
    let r = snapshot::decode(&bytes, &other, settings()).unwrap();
    let a = r.engine.service(r.engine.index_of("a").unwrap());
    let was = c.engine.service(c.engine.index_of("a").unwrap());
    assert_eq!(
        a.slo_window(0, Span::days(30)),
        was.slo_window(0, Span::days(30))
    );
    assert_eq!(a.requests, was.requests);
    assert_eq!(
        a.slo_window(1, Span::days(30)).total,
        0,
        "the changed latency SLO starts again"
    );
    assert_eq!(a.plan.slos.len(), 2, "the availability SLO is gone");
    assert!(r.engine.index_of("c").is_some());
    assert_eq!(r.trackers.len(), r.engine.len());
}

#[test]
fn a_corrupt_snapshot_is_an_error_not_a_panic() {
    let mut c = core();
    let events = traffic(9, 100);
    feed(&mut c, &events, 0, events.len());
    let bytes = snapshot::encode(&c);
    for cut in [0, 5, 23, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            snapshot::decode(&bytes[..cut], &spec(), settings()).is_err(),
            "cut at {cut}"
        );
    }
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut bad = bytes.clone();
        let i = (x % bad.len() as u64) as usize;
        bad[i] ^= 1 << (x >> 61);
        assert!(
            snapshot::decode(&bad, &spec(), settings()).is_err(),
            "bit flipped at {i}"
        );
    }
}

/// Feeds `events[from..to]` as [`feed`] does, with a wall-clock tick of
/// every service every 37 events (as `slate run` ticks services that went
/// live): services move with time between their events.
fn feed_with_wall_ticks(
    c: &mut Core,
    events: &[(&'static str, Micros, bool)],
    from: usize,
    to: usize,
) {
    for i in from..to {
        feed(c, events, i, i + 1);
        if i % 37 == 0 {
            c.tick_wall(events[i].1, |_| false);
        }
    }
}

/// The latest unit of each service over a base and its deltas, and the
/// last head: what a restore reads from a state dir.
fn overlay(files: &[snapshot::PassFile]) -> (snapshot::Head, FxHashMap<Box<str>, Vec<u8>>) {
    let mut units = FxHashMap::default();
    for f in files {
        for u in &f.units {
            units.insert(u.name.clone(), u.bytes.clone());
        }
    }
    (files.last().unwrap().head.clone(), units)
}

use rustc_hash::FxHashMap;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// Incremental passes: a base, then deltas of only the services that
    /// changed, at random cuts; restored from the base and the deltas up
    /// to any of them, the rest of the run gives the state, episodes and
    /// figures of the run never interrupted. Services that had no event
    /// since their unit was written were moved by wall ticks meanwhile;
    /// the restore moves them as far.
    #[test]
    fn a_base_and_its_deltas_restore_as_an_uninterrupted_run(
        seed in 1u64..,
        n in 100usize..400,
        cuts in proptest::collection::vec(0.0f64..1.0, 1..6),
        pick in 0usize..6,
    ) {
        // b ends in its error burst: its episodes end, and its windows
        // move, by wall ticks alone, with no event of its own.
        let mut events = traffic(seed, n);
        let b_from = events.iter().position(|e| e.0 == "b").unwrap();
        events.truncate(b_from + n / 2 + n / 20);
        events.sort_by_key(|e| e.1);
        let b_last = events.iter().rposition(|e| e.0 == "b").unwrap();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| (events.len() as f64 * c) as usize).collect();
        cuts.push(b_last + 1);
        cuts.sort_unstable();
        cuts.dedup();
        let mut whole = core();
        let mut files = Vec::new();
        let mut at = 0;
        for (k, &cut) in cuts.iter().enumerate() {
            feed_with_wall_ticks(&mut whole, &events, at, cut);
            at = cut;
            let changed = whole.changed();
            let pass = whole.take(k == 0).encode();
            if k > 0 {
                prop_assert_eq!(pass.units.len(), changed);
            }
            // Through the bytes, as on disk.
            files.push(snapshot::PassFile::from_bytes(&pass.to_bytes()).unwrap());
        }
        let r = pick % cuts.len();
        prop_assume!(cuts[r] > b_last);
        let (head, units) = overlay(&files[..=r]);
        let mut restored = snapshot::restore(&head, units, &spec(), settings()).unwrap();
        prop_assert_eq!(restored.changed(), 0);
        feed_with_wall_ticks(&mut restored, &events, cuts[r], events.len());
        feed_with_wall_ticks(&mut whole, &events, at, events.len());
        let end = events.iter().map(|e| e.1).max().unwrap() + 1;
        for c in [&mut whole, &mut restored] {
            c.engine.advance_all(end);
            c.finish(None);
        }
        prop_assert_eq!(figures(&restored, end), figures(&whole, end));
        // The state itself, byte for byte, once both moved to the same time.
        prop_assert_eq!(snapshot::encode(&restored), snapshot::encode(&whole));
    }
}

/// A pass after nothing happened writes no service; after one event,
/// that one service.
#[test]
fn a_pass_writes_only_what_changed() {
    let mut c = core();
    let events = traffic(3, 200);
    feed(&mut c, &events, 0, events.len());
    assert_eq!(c.take(true).units.len(), 2);
    assert_eq!(c.take(false).units.len(), 0);
    let late = T0 + 100 * HOUR;
    c.tick_wall(late, |_| false);
    let quiet = c.take(false).units.len();
    let e = ev(&mut c, "b", late, false);
    c.apply(1, &e, late).unwrap();
    let pass = c.take(false);
    assert_eq!(pass.units.len(), 1, "{quiet} written after the tick");
    assert_eq!(&*pass.units[0].name, "b");
}

/// A retention gap (DESIGN §8a): the span between the state's newest event
/// of a partition and its first event left is out of `coverage`, for every
/// service of that partition, until it leaves the period; it survives a
/// snapshot; the other partition's services are untouched.
#[test]
fn a_retention_gap_is_left_out_of_coverage_and_survives_a_snapshot() {
    let mut c = core();
    // a on clock 0 from T0 to T0 + 2 days; b on clock 1 likewise.
    let mut last = 0;
    for k in 0..=48 {
        let ts = T0 + k * HOUR;
        for (part, name) in [(0, "a"), (1, "b")] {
            let e = ev(&mut c, name, ts, false);
            c.apply(part, &e, ts).unwrap();
        }
        last = ts;
    }
    assert_eq!(c.newest(0), Some(last));
    c.reset_clock(0);
    assert_eq!(
        c.newest(0),
        Some(last),
        "a reset clock: its services' newest event"
    );
    // Clock 0's records of the next 3 days expired; its first one left is
    // dated 3 days after the state's newest.
    let resumed = last + 3 * DAY;
    assert_eq!(c.lacks(0, last, resumed), 1);
    let e = ev(&mut c, "a", resumed, false);
    c.apply(0, &e, resumed).unwrap();
    let now = resumed + DAY;
    let (a, b) = (
        c.engine.index_of("a").unwrap(),
        c.engine.index_of("b").unwrap(),
    );
    let period = 30 * DAY;
    let want_a = ((now - T0) - 3 * DAY) as f64 / period as f64;
    let want_b = (now - T0) as f64 / period as f64;
    let close = |got: f64, want: f64| (got - want).abs() < 1e-12;
    assert!(close(c.engine.service(a).coverage(now), want_a));
    assert!(close(c.engine.service(b).coverage(now), want_b));
    // Through a snapshot, and through a version-1 file (which has no gaps).
    let r = snapshot::decode(&snapshot::encode(&c), &spec(), settings()).unwrap();
    assert!(close(r.engine.service(a).coverage(now), want_a));
    let v1 = snapshot::decode(&snapshot::encode_v1(&c), &spec(), settings()).unwrap();
    assert!(close(v1.engine.service(a).coverage(now), want_b));
    assert_eq!(
        figures(&v1, now),
        figures(&c, now),
        "a version-1 file keeps the rest"
    );
    // Part of the gap has left the period: only what is inside counts.
    let later = T0 + 2 * DAY + 31 * DAY;
    let inside = (last + 3 * DAY) - (later - period);
    assert!(close(
        c.engine.service(a).coverage(later),
        (period - inside) as f64 / period as f64
    ));
    // A later gap forgets the spans that left its period.
    let s = c.engine.service_mut(a);
    s.lacks(later + DAY, later + 2 * DAY);
    assert_eq!(s.missing, vec![(later + DAY, later + 2 * DAY)]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// A partition handed over mid-stream (DESIGN §8a): its services'
    /// units and its clock's schedule taken from one core, that core lets
    /// them go, another adopts them and reads the rest of the partition.
    /// Each service ends where a run that never moved it ends, and the
    /// core that let it go no longer shows it.
    #[test]
    fn a_partition_handed_to_another_core_continues_as_if_it_never_moved(seed in 1u64.., n in 100usize..500, cut in 0.0f64..1.0) {
        let mut events = traffic(seed, n);
        events.sort_by_key(|e| e.1);
        let at = (events.len() as f64 * cut) as usize;
        let mut whole = core();
        feed(&mut whole, &events, 0, events.len());
        let mut x = core();
        x.only_homed = true;
        feed(&mut x, &events, 0, at);
        // Partition 1 (service b) moves from x to y.
        let taken = x.take(true);
        let schedule = x.schedule(1);
        let moved: Vec<_> = taken
            .units
            .iter()
            .zip(&taken.homes)
            .filter(|(_, &h)| h == 1)
            .map(|(u, _)| u.clone())
            .collect();
        let b_seen = events[..at].iter().any(|e| e.0 == "b");
        prop_assert_eq!(moved.len(), b_seen as usize);
        // A cut before b's first event hands nothing over.
        prop_assume!(b_seen);
        let before = x.homes_moved();
        prop_assert_eq!(x.park(1), b_seen as usize);
        prop_assert!(x.homes_moved() > before);
        let b = x.engine.index_of("b").unwrap();
        prop_assert!(!x.shown(b));
        prop_assert_eq!(x.engine.service(b).requests, 0);
        let mut y = core();
        y.only_homed = true;
        for u in &moved {
            let id = y.adopt(1, &u.name, &u.bytes).unwrap().unwrap();
            prop_assert!(y.shown(id));
        }
        y.set_schedule(1, schedule);
        // The rest: a's events to x, b's to y.
        let rest = &events[at..];
        let a_rest: Vec<_> = rest.iter().copied().filter(|e| e.0 == "a").collect();
        let b_rest: Vec<_> = rest.iter().copied().filter(|e| e.0 == "b").collect();
        feed(&mut x, &a_rest, 0, a_rest.len());
        feed(&mut y, &b_rest, 0, b_rest.len());
        let end = events.iter().map(|e| e.1).max().unwrap() + 1;
        for c in [&mut whole, &mut x, &mut y] {
            c.engine.advance_all(end);
            c.finish(None);
        }
        let of = |c: &Core, name: &str| {
            let id = c.engine.index_of(name).unwrap() as usize;
            figures(c, end).swap_remove(id)
        };
        prop_assert_eq!(of(&x, "a"), of(&whole, "a"));
        prop_assert_eq!(of(&y, "b"), of(&whole, "b"));
        prop_assert!(!x.shown(b));
    }
}

/// A service held through another partition (unkeyed traffic) keeps its
/// state here: the unit handed over for it is not adopted.
#[test]
fn a_unit_for_a_service_held_through_another_partition_is_not_adopted() {
    let mut x = core();
    let e = ev(&mut x, "a", T0, false);
    x.apply(0, &e, T0).unwrap();
    let unit = x
        .take(true)
        .units
        .into_iter()
        .find(|u| &*u.name == "a")
        .unwrap();
    let mut y = core();
    let e = ev(&mut y, "a", T0, true);
    y.apply(2, &e, T0).unwrap();
    assert_eq!(y.adopt(1, "a", &unit.bytes), Ok(None));
    let a = y.engine.index_of("a").unwrap();
    assert_eq!(y.engine.service(a).errors, 1);
    assert!(y.adopt(1, "a", b"not a unit").is_err());
}

/// An episode's cumulative bad count at its start (what an incident's
/// cost over the union of its episodes needs) is saved at the end of its
/// service's unit; a unit without it, as the slate before wrote them,
/// still reads, with none.
#[test]
fn episodes_keep_their_start_counts_through_a_snapshot_and_older_units_read_without() {
    let mut c = core();
    let mut events = traffic(7, 400);
    events.sort_by_key(|e| e.1);
    feed(&mut c, &events, 0, events.len());
    let episodes = |c: &Core| -> Vec<crate::evaluate::Episode> {
        c.trackers
            .iter()
            .flatten()
            .flat_map(|t| t.episodes.clone())
            .collect()
    };
    let before = episodes(&c);
    assert!(!before.is_empty(), "the traffic fires alerts");
    assert!(before.iter().all(|e| e.bad_before.is_some()));
    let bytes = snapshot::encode(&c);
    let restored = snapshot::decode(&bytes, &spec(), settings()).unwrap();
    assert_eq!(episodes(&restored), before);

    let mut file = snapshot::PassFile::from_bytes(&bytes).unwrap();
    for u in &mut file.units {
        // The four fields of a version-2 unit, without the trailing one.
        let saved: snapshot::SavedService = postcard::from_bytes(&u.bytes).unwrap();
        let shorter = postcard::to_allocvec(&saved).unwrap();
        assert!(shorter.len() < u.bytes.len() || episodes(&c).is_empty());
        u.bytes = shorter;
    }
    let old = snapshot::decode(&file.to_bytes(), &spec(), settings()).unwrap();
    let got = episodes(&old);
    assert_eq!(got.len(), before.len());
    for (g, b) in got.iter().zip(&before) {
        assert_eq!(g.bad_before, None);
        assert_eq!((g.start, g.end, g.bad), (b.start, b.end, b.bad));
    }
}

/// A calendar week (Europe/Berlin): live state counts the events since
/// Monday 00:00 in Berlin for the period, late ones included, and a
/// snapshot cut on either side of the boundary continues as a run never
/// interrupted.
#[test]
fn a_calendar_week_restarts_at_monday_in_its_zone_and_survives_a_snapshot() {
    let spec = SloSpec::parse(
        std::path::Path::new("s.yml"),
        "defaults:\n  period: week\n  period_timezone: Europe/Berlin\nservices:\n  a:\n    slo_error_rate: 99%\n    slo_availability: 99%\n  b:\n    slo_error_rate: 99%\n",
    )
    .unwrap();
    let settings = || CoreSettings {
        engine: EngineSettings {
            calendar: true,
            calendar_days: 100,
            ..EngineSettings::default()
        },
        min_events: 0,
        step: Span::mins(1),
    };
    // Monday 2026-11-23 00:00 in Berlin is 2026-11-22T23:00Z; the traffic
    // starts four hours before it.
    let monday = crate::model::parse_rfc3339(b"2026-11-22T23:00:00Z").unwrap();
    let shift = monday - 4 * HOUR - T0;
    let mut events = traffic(5, 400);
    for e in &mut events {
        e.1 += shift;
    }
    events.sort_by_key(|e| e.1);
    let end = events.iter().map(|e| e.1).max().unwrap() + 1;
    assert!(events[0].1 < monday && end > monday + HOUR);
    let mut whole = Core::new(&spec, settings());
    feed(&mut whole, &events, 0, events.len());
    whole.engine.advance_all(end);
    for (name, i) in [("a", 0), ("b", 0)] {
        let s = whole.engine.service(whole.engine.index_of(name).unwrap());
        let mine = events.iter().filter(|e| e.0 == name && e.1 >= monday);
        let total = mine.clone().count() as u64;
        let bad = mine.filter(|e| e.2).count() as u64;
        assert_eq!(
            s.slo_period(i, end),
            crate::engine::GoodTotal {
                good: total - bad,
                total
            },
            "{name}"
        );
        // Before Monday: the week before's events.
        let before = events
            .iter()
            .filter(|e| e.0 == name && e.1 < monday)
            .count() as u64;
        assert_eq!(s.slo_period(i, monday - 1).total, before, "{name}");
        assert_eq!(s.period_length(end), Span::days(7));
        // The state holds all of this week so far.
        assert!((s.coverage(end) - 1.0).abs() < 1e-9, "{name}");
    }
    for cut in [0.3, 0.8] {
        let at = (events.len() as f64 * cut) as usize;
        let mut first = Core::new(&spec, settings());
        feed(&mut first, &events, 0, at);
        let bytes = snapshot::encode(&first);
        let mut restored = snapshot::decode(&bytes, &spec, settings()).unwrap();
        feed(&mut restored, &events, at, events.len());
        restored.engine.advance_all(end);
        assert_eq!(figures(&restored, end), figures(&whole, end), "cut {cut}");
    }
}
