//! The Prometheus text exposition of DESIGN §7: every metric name and label
//! as specified, written as text directly (no registry: quantiles and
//! gauges are computed from the state at render time). No data is no
//! sample — never a 0 or a NaN standing in for it.

use std::fmt::Write;

use crate::decode::{Reason, RejectCounts};
use crate::engine::hist::DenseHist;
use crate::engine::plan::SLI_WINDOWS;
use crate::engine::{Engine, ServiceState};
use crate::evaluate::{evaluate_slos, AlertTracker};
use crate::model::{Micros, MICROS_PER_SEC};

/// What the exposition is made from.
pub struct Exposition<'a> {
    pub engine: &'a Engine,
    /// Per service (by id), its alert state; `None` for services without SLOs.
    pub trackers: &'a [Option<AlertTracker>],
    /// Events applied by this process, per source (`file`, `kafka`, ...).
    pub ingested: &'a [(&'a str, u64)],
    pub rejected: &'a RejectCounts,
    /// The evaluation time.
    pub now: Micros,
}

/// Escapes a label value as the text format requires.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    if !value.is_finite() {
        return;
    }
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A family with one sample per service, labelled `service`; `None` is no
/// sample.
fn per_service(
    out: &mut String,
    services: &[(usize, &str, &ServiceState)],
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&ServiceState) -> Option<f64>,
) {
    family(out, name, kind, help);
    for (_, n, s) in services {
        if let Some(v) = value(s) {
            sample(out, name, &[("service", n)], v);
        }
    }
}

/// Renders every family, in the order of DESIGN §7.
pub fn render(x: &Exposition) -> String {
    let mut out = String::with_capacity(4096 + x.engine.len() * 4096);
    let services: Vec<(usize, &str, &ServiceState)> = x
        .engine
        .services()
        .enumerate()
        .map(|(i, (n, s))| (i, n, s))
        .collect();
    let secs = |us: i64| us as f64 / MICROS_PER_SEC as f64;

    per_service(
        &mut out,
        &services,
        "slate_requests_total",
        "counter",
        "Requests applied by this process.",
        |s| Some(s.requests as f64),
    );
    per_service(
        &mut out,
        &services,
        "slate_request_errors_total",
        "counter",
        "Failed requests applied by this process.",
        |s| Some(s.errors as f64),
    );

    family(
        &mut out,
        "slate_latency_seconds",
        "summary",
        "Latency quantiles over each window.",
    );
    let mut scratch = DenseHist::default();
    let qs = [0.5, 0.95, 0.99];
    for (_, n, s) in &services {
        for &w in x.engine.quantile_windows() {
            let label = w.to_string();
            let values = s.window_quantiles(w, x.now, &mut scratch, &qs);
            for (q, v) in qs.iter().zip(values) {
                if let Some(us) = v {
                    let q = q.to_string();
                    sample(
                        &mut out,
                        "slate_latency_seconds",
                        &[("service", n), ("window", &label), ("quantile", &q)],
                        us / 1e6,
                    );
                }
            }
        }
    }

    family(
        &mut out,
        "slate_requests_per_second",
        "gauge",
        "Requests per second over each window.",
    );
    for (_, n, s) in &services {
        for w in SLI_WINDOWS {
            let total = s.window_sum(w, crate::engine::plan::COL_TOTAL);
            sample(
                &mut out,
                "slate_requests_per_second",
                &[("service", n), ("window", &w.to_string())],
                total as f64 / w.as_secs_f64(),
            );
        }
    }
    family(
        &mut out,
        "slate_error_ratio",
        "gauge",
        "Share of failed requests over each window.",
    );
    for (_, n, s) in &services {
        for w in SLI_WINDOWS {
            let total = s.window_sum(w, crate::engine::plan::COL_TOTAL);
            if total > 0 {
                let errors = s.window_sum(w, crate::engine::plan::COL_ERRORS);
                sample(
                    &mut out,
                    "slate_error_ratio",
                    &[("service", n), ("window", &w.to_string())],
                    errors as f64 / total as f64,
                );
            }
        }
    }

    per_service(
        &mut out,
        &services,
        "slate_freshness_seconds",
        "gauge",
        "Age of the last successful event.",
        |s| s.last_success.map(|ls| secs(x.now - ls).max(0.0)),
    );
    per_service(
        &mut out,
        &services,
        "slate_last_event_age_seconds",
        "gauge",
        "Age of the last event.",
        |s| s.last_ts.map(|l| secs(x.now - l).max(0.0)),
    );

    let evals: Vec<_> = services.iter().map(|(_, _, s)| evaluate_slos(s)).collect();
    for (name, help) in [
        ("slate_slo_objective_ratio", "The SLO's objective."),
        (
            "slate_slo_attainment_ratio",
            "Good over total over the SLO's period (or the data held).",
        ),
        (
            "slate_error_budget_remaining_ratio",
            "1 − budget consumed over the period; negative when overspent.",
        ),
    ] {
        family(&mut out, name, "gauge", help);
        for ((_, n, _), evs) in services.iter().zip(&evals) {
            for e in evs {
                let v = match name {
                    "slate_slo_objective_ratio" => Some(e.objective),
                    "slate_slo_attainment_ratio" => e.attainment,
                    _ => e.budget_remaining(),
                };
                if let Some(v) = v {
                    sample(&mut out, name, &[("service", n), ("slo", &e.name)], v);
                }
            }
        }
    }
    family(
        &mut out,
        "slate_burn_rate",
        "gauge",
        "Error ratio over the budget, per window.",
    );
    for ((_, n, _), evs) in services.iter().zip(&evals) {
        for e in evs {
            for (w, b) in &e.burn_rates {
                if let Some(b) = b {
                    sample(
                        &mut out,
                        "slate_burn_rate",
                        &[("service", n), ("slo", &e.name), ("window", &w.to_string())],
                        *b,
                    );
                }
            }
        }
    }
    family(
        &mut out,
        "slate_alert_firing",
        "gauge",
        "1 while a multi-window multi-burn-rate alert fires.",
    );
    for (i, n, s) in &services {
        let Some(Some(tr)) = x.trackers.get(*i) else {
            continue;
        };
        for (slo, rule, firing) in tr.states() {
            let long = rule.long.to_string();
            let short = rule.short.to_string();
            sample(
                &mut out,
                "slate_alert_firing",
                &[
                    ("service", n),
                    ("slo", &s.plan.slos[slo].name),
                    ("severity", rule.severity.as_str()),
                    ("long_window", &long),
                    ("short_window", &short),
                ],
                firing as u8 as f64,
            );
        }
    }

    family(
        &mut out,
        "slate_events_ingested_total",
        "counter",
        "Records read by this process, per source.",
    );
    for (source, n) in x.ingested {
        sample(
            &mut out,
            "slate_events_ingested_total",
            &[("source", source)],
            *n as f64,
        );
    }
    family(
        &mut out,
        "slate_events_rejected_total",
        "counter",
        "Records rejected by this process, per reason.",
    );
    for r in Reason::ALL {
        sample(
            &mut out,
            "slate_events_rejected_total",
            &[("reason", r.as_str())],
            x.rejected.get(r) as f64,
        );
    }
    per_service(
        &mut out,
        &services,
        "slate_latency_clamped_total",
        "counter",
        "Latencies above the histogram's top, recorded there.",
        |s| Some(s.clamped as f64),
    );
    family(&mut out, "slate_build_info", "gauge", "slate's version.");
    sample(
        &mut out,
        "slate_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineSettings;
    use crate::model::{parse_rfc3339, Event};
    use crate::spec::SloSpec;
    use std::collections::BTreeMap;

    /// Parses the exposition strictly: every sample line is
    /// `name{k="v",...} value`, every family has HELP and TYPE before its
    /// samples. Returns (name, labels, value) triples.
    fn parse(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
        let mut typed = std::collections::HashSet::new();
        let mut out = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_string());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (head, value) = line.rsplit_once(' ').expect("value");
            let value: f64 = value.parse().expect("number");
            let (name, labels) = match head.split_once('{') {
                Some((n, l)) => (n, l.strip_suffix('}').expect("closing brace")),
                None => (head, ""),
            };
            assert!(typed.contains(name), "{name} has no # TYPE before it");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{name}"
            );
            let mut map = BTreeMap::new();
            for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once("=\"").expect("k=\"v\"");
                map.insert(k.to_string(), v.trim_end_matches('"').to_string());
            }
            out.push((name.to_string(), map, value));
        }
        out
    }

    #[test]
    fn every_family_of_the_design_with_its_labels_and_values() {
        let spec = SloSpec::parse(
            std::path::Path::new("s.yml"),
            "services:\n  api:\n    slo_latency_p99: 200ms\n    slo_error_rate: 99%\n",
        )
        .unwrap();
        let mut engine = Engine::new(&spec, EngineSettings::default());
        let api = engine.resolve("api").unwrap();
        let t0 = parse_rfc3339(b"2026-11-24T10:00:00Z").unwrap();
        // 600 events over 10 minutes, every tenth failing, latencies 1–600 ms.
        for i in 0..600i64 {
            let ev = Event {
                ts: t0 + i * MICROS_PER_SEC,
                service: api,
                error: i % 10 == 0,
                latency_us: Some((i as u64 + 1) * 1000),
            };
            engine.apply(&ev).unwrap();
        }
        let now = t0 + 600 * MICROS_PER_SEC;
        engine.advance_all(now);
        let mut tracker = AlertTracker::new(engine.service(api));
        tracker.tick(engine.service(api), now, 0);
        let mut rejected = RejectCounts::default();
        rejected.add(Reason::InvalidJson);
        let text = render(&Exposition {
            engine: &engine,
            trackers: &[Some(tracker)],
            ingested: &[("file", 601)],
            rejected: &rejected,
            now,
        });
        let samples = parse(&text);
        let get = |name: &str, labels: &[(&str, &str)]| -> f64 {
            samples
                .iter()
                .find(|(n, l, _)| {
                    n == name
                        && labels
                            .iter()
                            .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
                })
                .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
                .2
        };
        assert_eq!(get("slate_requests_total", &[("service", "api")]), 600.0);
        assert_eq!(
            get("slate_request_errors_total", &[("service", "api")]),
            60.0
        );
        // The last 5 minutes: 300 events, 30 errors.
        assert!((get("slate_requests_per_second", &[("window", "5m")]) - 1.0).abs() < 0.05);
        assert!((get("slate_error_ratio", &[("window", "5m")]) - 0.1).abs() < 0.01);
        // 1m quantiles: events 540..599 → latencies 541..600 ms; p50 ≈ 570 ms.
        let p50 = get(
            "slate_latency_seconds",
            &[("window", "1m"), ("quantile", "0.5")],
        );
        assert!((p50 - 0.570).abs() < 0.570 * 0.02, "{p50}");
        assert_eq!(
            get("slate_slo_objective_ratio", &[("slo", "error_rate")]),
            0.99
        );
        assert!((get("slate_slo_attainment_ratio", &[("slo", "error_rate")]) - 0.9).abs() < 1e-9);
        // 10% errors at 99%: a burn of 10, budget remaining 1 − 10 = −9.
        assert!(
            (get(
                "slate_error_budget_remaining_ratio",
                &[("slo", "error_rate")]
            ) + 9.0)
                .abs()
                < 1e-9
        );
        assert!(
            (get(
                "slate_burn_rate",
                &[("slo", "error_rate"), ("window", "5m")]
            ) - 10.0)
                .abs()
                < 0.5
        );
        assert_eq!(
            get(
                "slate_alert_firing",
                &[("slo", "error_rate"), ("long_window", "6h")]
            ),
            1.0
        );
        assert_eq!(
            get(
                "slate_alert_firing",
                &[("slo", "error_rate"), ("long_window", "1h")]
            ),
            0.0,
            "burn 10 < 14.4"
        );
        assert_eq!(
            get("slate_events_rejected_total", &[("reason", "invalid_json")]),
            1.0
        );
        assert_eq!(
            get("slate_events_ingested_total", &[("source", "file")]),
            601.0
        );
        assert_eq!(get("slate_freshness_seconds", &[("service", "api")]), 1.0);
        assert_eq!(get("slate_build_info", &[]), 1.0);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("a\nb"), "a\\nb");
    }
}
