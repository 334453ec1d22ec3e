//! The series of Sloth and Pyrra, written from slate's own snapshot, so
//! that the dashboards a team already has keep working (`export.compat`,
//! off by default). Names and labels as those projects record them:
//!
//! - Sloth (`internal/prometheus/recording_rules.go`): the SLI error ratio
//!   `slo:sli_error:ratio_rate<w>` for every burn window and the period,
//!   with `sloth_id` (`<service>-<slo>`), `sloth_service`, `sloth_slo`,
//!   `sloth_window` and the service's spec `labels`; the metadata series
//!   `slo:objective:ratio`, `slo:error_budget:ratio`,
//!   `slo:time_period:days`, `slo:current_burn_rate:ratio` (over the 5m
//!   window), `slo:period_burn_rate:ratio`,
//!   `slo:period_error_budget_remaining:ratio` and `sloth_slo_info`
//!   (with `sloth_version`, `sloth_mode`, `sloth_spec`, `sloth_objective`
//!   in percent), without `sloth_window`.
//! - Pyrra's generic rules: `pyrra_objective`, `pyrra_window` (seconds),
//!   `pyrra_availability` (over the period), `pyrra_requests:rate5m` and
//!   `pyrra_errors:rate5m` (per second over 5 minutes), labelled `slo`
//!   (`<service>-<slo>`: Pyrra's SLO names are unique, slate's are per
//!   service).
//!
//! Windows are written as Prometheus writes durations (`28d` is `4w`), as
//! Sloth names its series. Metric names with `:` are what promtool flags:
//! these series are the one exception to a clean `promtool check metrics`.

use super::prometheus::{family, sample, Out};
use super::snapshot::Snapshot;
use crate::model::{Span, MICROS_PER_DAY};

/// A duration as Prometheus writes it: years and weeks only when exact.
pub fn prom_duration(s: Span) -> String {
    let days = s.0 / MICROS_PER_DAY;
    if s.0 % MICROS_PER_DAY == 0 && days > 0 {
        if days % 365 == 0 {
            return format!("{}y", days / 365);
        }
        if days % 7 == 0 {
            return format!("{}w", days / 7);
        }
    }
    s.to_string()
}

/// A ratio as Sloth writes an objective in percent (`99.9`).
fn percent(objective: f64) -> String {
    let s = format!("{:.10}", objective * 100.0);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub(super) fn sloth(out: &mut Out, snap: &Snapshot) {
    // The SLI error ratio, one family per window, as Sloth records them.
    let mut windows: Vec<Span> = crate::model::BURN_WINDOWS.to_vec();
    for g in &snap.services {
        if !g.slos.is_empty() && !windows.contains(&g.period) {
            windows.push(g.period);
        }
    }
    for w in windows {
        let pw = prom_duration(w);
        let name = format!("slo:sli_error:ratio_rate{pw}");
        family(
            out,
            &name,
            "gauge",
            &format!("Sloth-compatible: the SLO's error ratio over {pw}."),
        );
        for g in &snap.services {
            for e in &g.slos {
                let budget = 1.0 - e.objective;
                let v = if w == g.period {
                    e.attainment.map(|a| 1.0 - a)
                } else {
                    e.burn_rates
                        .iter()
                        .find(|(bw, _)| *bw == w)
                        .and_then(|(_, b)| *b)
                        .map(|b| b * budget)
                };
                if let Some(v) = v {
                    let id = format!("{}-{}", g.name, e.name);
                    let mut kv = vec![
                        ("sloth_id", id.as_str()),
                        ("sloth_service", &*g.name),
                        ("sloth_slo", e.name.as_str()),
                        ("sloth_window", pw.as_str()),
                    ];
                    extend_labels(&mut kv, &g.labels);
                    sample(out, &name, &kv, &[], v);
                }
            }
        }
    }

    let version = format!("slate-{}", env!("CARGO_PKG_VERSION"));
    for (name, help) in [
        (
            "slo:objective:ratio",
            "Sloth-compatible: the SLO's objective.",
        ),
        (
            "slo:error_budget:ratio",
            "Sloth-compatible: the error budget, 1 − objective.",
        ),
        (
            "slo:time_period:days",
            "Sloth-compatible: the SLO's period in days.",
        ),
        (
            "slo:current_burn_rate:ratio",
            "Sloth-compatible: the burn rate over 5m.",
        ),
        (
            "slo:period_burn_rate:ratio",
            "Sloth-compatible: the burn rate over the period.",
        ),
        (
            "slo:period_error_budget_remaining:ratio",
            "Sloth-compatible: 1 − the period's burn rate.",
        ),
        ("sloth_slo_info", "Sloth-compatible: the SLO's description."),
    ] {
        family(out, name, "gauge", help);
        for g in &snap.services {
            for e in &g.slos {
                let v = match name {
                    "slo:objective:ratio" => Some(e.objective),
                    "slo:error_budget:ratio" => Some(1.0 - e.objective),
                    "slo:time_period:days" => Some(g.period.0 as f64 / MICROS_PER_DAY as f64),
                    "slo:current_burn_rate:ratio" => e
                        .burn_rates
                        .iter()
                        .find(|(w, _)| *w == Span::mins(5))
                        .and_then(|(_, b)| *b),
                    "slo:period_burn_rate:ratio" => e.budget_consumed,
                    "slo:period_error_budget_remaining:ratio" => e.budget_remaining(),
                    _ => Some(1.0),
                };
                let Some(v) = v else { continue };
                let id = format!("{}-{}", g.name, e.name);
                let objective = percent(e.objective);
                let mut kv = vec![
                    ("sloth_id", id.as_str()),
                    ("sloth_service", &*g.name),
                    ("sloth_slo", e.name.as_str()),
                ];
                if name == "sloth_slo_info" {
                    kv.extend([
                        ("sloth_version", version.as_str()),
                        ("sloth_mode", "slate"),
                        ("sloth_spec", "slate/v1"),
                        ("sloth_objective", objective.as_str()),
                    ]);
                }
                extend_labels(&mut kv, &g.labels);
                sample(out, name, &kv, &[], v);
            }
        }
    }
}

/// The spec's labels, after the series' own (which win, as in Sloth).
fn extend_labels<'a>(
    kv: &mut Vec<(&'a str, &'a str)>,
    labels: &'a std::collections::BTreeMap<String, String>,
) {
    for (k, v) in labels {
        if !kv.iter().any(|(own, _)| own == k) {
            kv.push((k.as_str(), v.as_str()));
        }
    }
}

pub(super) fn pyrra(out: &mut Out, snap: &Snapshot) {
    let secs = super::snapshot::RECENT.as_secs_f64();
    for (name, help) in [
        ("pyrra_objective", "Pyrra-compatible: the SLO's objective."),
        (
            "pyrra_window",
            "Pyrra-compatible: the SLO's period in seconds.",
        ),
        (
            "pyrra_availability",
            "Pyrra-compatible: good over total over the period.",
        ),
        (
            "pyrra_requests:rate5m",
            "Pyrra-compatible: events (or slices) the SLO judged per second over 5m.",
        ),
        (
            "pyrra_errors:rate5m",
            "Pyrra-compatible: bad events (or slices) per second over 5m.",
        ),
    ] {
        family(out, name, "gauge", help);
        for g in &snap.services {
            for (e, recent) in g.slos.iter().zip(&g.slos_recent) {
                let v = match name {
                    "pyrra_objective" => Some(e.objective),
                    "pyrra_window" => Some(g.period.as_secs_f64()),
                    "pyrra_availability" => e.attainment,
                    "pyrra_requests:rate5m" => Some(recent.total as f64 / secs),
                    _ => Some(recent.bad() as f64 / secs),
                };
                if let Some(v) = v {
                    let slo = format!("{}-{}", g.name, e.name);
                    sample(out, name, &[("slo", &slo)], &[], v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::RejectCounts;
    use crate::engine::{Engine, EngineSettings};
    use crate::evaluate::AlertTracker;
    use crate::export::prometheus::{render, Exposition};
    use crate::export::snapshot::Counters;
    use crate::model::{parse_rfc3339, Event, MICROS_PER_SEC};
    use crate::spec::config::Compat;
    use crate::spec::SloSpec;
    use std::collections::BTreeMap;

    /// `name{labels}` → value, labels sorted so that a test can name them.
    fn samples(text: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (head, v) = line.rsplit_once(' ').unwrap();
            let (name, labels) = head.split_once('{').unwrap_or((head, "}"));
            let mut pairs: Vec<&str> = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|p| !p.is_empty())
                .collect();
            pairs.sort();
            out.insert(format!("{name}{{{}}}", pairs.join(",")), v.parse().unwrap());
        }
        out
    }

    #[test]
    fn sloth_and_pyrra_series_hold_slates_figures() {
        let spec = SloSpec::parse(
            std::path::Path::new("s.yml"),
            "services:\n  api:\n    slo_latency_p99: 200ms\n    slo_error_rate: 99%\n    labels:\n      team: payments\n",
        )
        .unwrap();
        let mut engine = Engine::new(&spec, EngineSettings::default());
        let api = engine.resolve("api").unwrap();
        let t0 = parse_rfc3339(b"2026-11-24T10:00:00Z").unwrap();
        // One event a second for 10 minutes: every tenth fails; latencies
        // 1, 2, … 600 ms (the first 200 within 200 ms).
        for i in 0..600i64 {
            engine.record(&Event {
                ts: t0 + i * MICROS_PER_SEC,
                service: api,
                error: i % 10 == 0,
                latency_us: Some((i as u64 + 1) * 1000),
            });
        }
        let now = t0 + 600 * MICROS_PER_SEC;
        engine.advance_all(now);
        let mut tracker = AlertTracker::new(engine.service(api));
        tracker.tick(engine.service(api), now, 0);
        let snapshot = Snapshot::take(&engine, &[Some(tracker)], now, |_| true);
        let counters = Counters::from_engine(&engine, vec![], RejectCounts::default());
        let text = |compat| {
            render(&Exposition {
                snapshot: &snapshot,
                counters: &counters,
                kafka: None,
                reload: None,
                compat,
            })
        };
        let off = text(Compat::default());
        assert!(
            !off.contains("slo:") && !off.contains("pyrra_"),
            "off by default"
        );
        let m = samples(&text(Compat {
            sloth: true,
            pyrra: true,
        }));
        let get = |k: &str| {
            *m.get(k)
                .unwrap_or_else(|| panic!("no {k} in {:#?}", m.keys()))
        };
        let close = |k: &str, want: f64| {
            let got = get(k);
            assert!((got - want).abs() < 1e-9, "{k}: {got}, want {want}");
        };
        let id = r#"sloth_id="api-error_rate",sloth_service="api",sloth_slo="error_rate""#;
        let team = r#"team="payments""#;
        // Over the period (all 600 events): 60 failed. Over the last 5
        // minutes (events 300–599): 30 of 300.
        close(
            &format!("slo:sli_error:ratio_rate30d{{{id},sloth_window=\"30d\",{team}}}"),
            0.1,
        );
        close(
            &format!("slo:sli_error:ratio_rate5m{{{id},sloth_window=\"5m\",{team}}}"),
            0.1,
        );
        close(&format!("slo:objective:ratio{{{id},{team}}}"), 0.99);
        close(&format!("slo:error_budget:ratio{{{id},{team}}}"), 0.01);
        close(&format!("slo:time_period:days{{{id},{team}}}"), 30.0);
        close(&format!("slo:current_burn_rate:ratio{{{id},{team}}}"), 10.0);
        close(&format!("slo:period_burn_rate:ratio{{{id},{team}}}"), 10.0);
        close(
            &format!("slo:period_error_budget_remaining:ratio{{{id},{team}}}"),
            -9.0,
        );
        close(
            &format!(
                "sloth_slo_info{{sloth_id=\"api-error_rate\",sloth_mode=\"slate\",sloth_objective=\"99\",sloth_service=\"api\",sloth_slo=\"error_rate\",sloth_spec=\"slate/v1\",sloth_version=\"slate-{}\",{team}}}",
                env!("CARGO_PKG_VERSION")
            ),
            1.0,
        );
        // The latency SLO: 400 of 600 slower than 200 ms over the period;
        // all 300 of the last 5 minutes.
        let lat = r#"sloth_id="api-latency_p99",sloth_service="api",sloth_slo="latency_p99""#;
        close(
            &format!("slo:sli_error:ratio_rate30d{{{lat},sloth_window=\"30d\",{team}}}"),
            400.0 / 600.0,
        );
        close(
            &format!("slo:sli_error:ratio_rate5m{{{lat},sloth_window=\"5m\",{team}}}"),
            1.0,
        );

        close(r#"pyrra_objective{slo="api-error_rate"}"#, 0.99);
        close(r#"pyrra_window{slo="api-error_rate"}"#, 30.0 * 86400.0);
        close(r#"pyrra_availability{slo="api-error_rate"}"#, 0.9);
        close(r#"pyrra_requests:rate5m{slo="api-error_rate"}"#, 1.0);
        close(r#"pyrra_errors:rate5m{slo="api-error_rate"}"#, 0.1);
        close(
            r#"pyrra_availability{slo="api-latency_p99"}"#,
            200.0 / 600.0,
        );
        close(r#"pyrra_errors:rate5m{slo="api-latency_p99"}"#, 1.0);
        // Every burn window of slate has its Sloth family.
        for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
            assert!(
                m.keys()
                    .any(|k| k.starts_with(&format!("slo:sli_error:ratio_rate{w}{{"))),
                "{w}"
            );
        }
    }

    #[test]
    fn durations_as_prometheus_writes_them() {
        assert_eq!(prom_duration(Span::mins(5)), "5m");
        assert_eq!(prom_duration(Span::hours(6)), "6h");
        assert_eq!(prom_duration(Span::days(3)), "3d");
        assert_eq!(prom_duration(Span::days(30)), "30d");
        assert_eq!(prom_duration(Span::days(28)), "4w");
        assert_eq!(prom_duration(Span::days(7)), "1w");
        assert_eq!(prom_duration(Span::days(90)), "90d");
        assert_eq!(prom_duration(Span::days(365)), "1y");
        assert_eq!(percent(0.999), "99.9");
        assert_eq!(percent(0.99), "99");
        assert_eq!(percent(0.9995), "99.95");
    }
}
