//! The Prometheus text exposition of DESIGN §7: every metric name and label
//! as specified, written as text directly from a [`Snapshot`] of gauges
//! (computed at the evaluation tick) and the process [`Counters`]; no
//! registry, and a scrape computes nothing. No data is no sample — never a
//! 0 or a NaN standing in for it.

use std::borrow::Cow;
use std::fmt::Write;

use super::snapshot::{Counters, KafkaGauges, ReloadState, Snapshot, QUANTILES};
use crate::decode::Reason;
use crate::engine::plan::{BURN_WINDOWS, SLI_WINDOWS};
use crate::evaluate::Severity;
use crate::model::Span;
use crate::spec::config::Compat;

/// What the exposition is made from.
pub struct Exposition<'a> {
    pub snapshot: &'a Snapshot,
    pub counters: &'a Counters,
    /// `slate run` only.
    pub kafka: Option<&'a KafkaGauges>,
    pub reload: Option<ReloadState>,
    /// Sloth's and Pyrra's series too (`export.compat`).
    pub compat: Compat,
}

/// Escapes a label value as the text format requires (borrowed when there
/// is nothing to escape, as for nearly every name).
fn escape(v: &str) -> Cow<'_, str> {
    // A byte scan: every scrape asks this of each sample's labels.
    if memchr::memchr3(b'\\', b'"', b'\n', v.as_bytes()).is_none() {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len() + 2);
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Where the text goes: one string, or chunks of about `chunk` bytes
/// handed to `sink` as they fill (a scrape streams them). Chunks small
/// enough to come from the allocator's free lists cost no page faults,
/// where one 70 MB string (10,000 services) faults on every page.
pub(super) struct Out<'a> {
    buf: String,
    chunk: usize,
    sink: &'a mut dyn FnMut(String) -> bool,
    /// The sink refused a chunk (the client went away): write no more.
    stopped: bool,
}

impl Out<'_> {
    fn full(&mut self) {
        if self.buf.len() >= self.chunk && !self.stopped {
            let next = String::with_capacity(self.chunk + (4 << 10));
            let done = std::mem::replace(&mut self.buf, next);
            self.stopped = !(self.sink)(done);
        }
    }
}

pub(super) fn family(out: &mut Out, name: &str, kind: &str, help: &str) {
    if out.stopped {
        return;
    }
    let _ = writeln!(out.buf, "# HELP {name} {help}");
    let _ = writeln!(out.buf, "# TYPE {name} {kind}");
}

/// One sample. Labels named by `kv` (a service, an SLO: values that vary
/// with every sample) are escaped as they are written; `pieces` come
/// written already (`key="value"`), built once per render and shared by
/// many samples.
pub(super) fn sample(out: &mut Out, name: &str, kv: &[(&str, &str)], pieces: &[&str], value: f64) {
    if !value.is_finite() || out.stopped {
        return;
    }
    let buf = &mut out.buf;
    buf.push_str(name);
    if !kv.is_empty() || !pieces.is_empty() {
        buf.push('{');
        let mut first = true;
        for (k, v) in kv {
            if !first {
                buf.push(',');
            }
            first = false;
            buf.push_str(k);
            buf.push_str("=\"");
            buf.push_str(&escape(v));
            buf.push('"');
        }
        for l in pieces {
            if !first {
                buf.push(',');
            }
            first = false;
            buf.push_str(l);
        }
        buf.push('}');
    }
    buf.push(' ');
    write_value(buf, value);
    buf.push('\n');
    out.full();
}

/// `key="value"`, the value escaped.
fn label(key: &str, value: &str) -> String {
    format!("{key}=\"{}\"", escape(value))
}

/// A sample's value: whole numbers as integers, others in the shortest
/// form that reads back exactly (ryu; Prometheus reads `1e-7`).
fn write_value(out: &mut String, v: f64) {
    if v == v.trunc() && v.abs() < 9.0e15 {
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        out.push_str(ryu::Buffer::new().format_finite(v));
    }
}

/// Window labels (`key="1h"`), written once per render.
#[derive(Default)]
struct SpanLabels(Vec<(&'static str, Span, String)>);

impl SpanLabels {
    fn index(&mut self, key: &'static str, s: Span) -> usize {
        match self.0.iter().position(|(k, w, _)| *w == s && *k == key) {
            Some(i) => i,
            None => {
                self.0.push((key, s, format!("{key}=\"{s}\"")));
                self.0.len() - 1
            }
        }
    }
    fn get(&self, i: usize) -> &str {
        &self.0[i].2
    }
}

/// Renders every family, in the order of DESIGN §7, as one string.
pub fn render(x: &Exposition) -> String {
    // About 7 KiB a service at the defaults: reserve more rather than copy
    // the whole text when it grows (pages never written cost nothing).
    let services = x.counters.names.len().max(x.snapshot.services.len());
    let mut text = String::new();
    let mut sink = |s: String| {
        text = s;
        true
    };
    render_to(
        x,
        Out {
            buf: String::with_capacity(4096 + services * (12 << 10)),
            chunk: usize::MAX,
            sink: &mut sink,
            stopped: false,
        },
    );
    text
}

/// Chunk size for a streamed scrape: a few hundred services' worth.
pub const SCRAPE_CHUNK: usize = 256 << 10;

/// Renders every family in chunks of about `chunk` bytes, each handed to
/// `sink` as soon as it is written; stops when `sink` returns false.
pub fn render_chunks(x: &Exposition, chunk: usize, sink: &mut dyn FnMut(String) -> bool) {
    render_to(
        x,
        Out {
            buf: String::with_capacity(chunk + (4 << 10)),
            chunk,
            sink,
            stopped: false,
        },
    );
}

fn render_to(x: &Exposition, mut out: Out) {
    let snap = x.snapshot;
    let windows: Vec<String> = snap
        .quantile_windows
        .iter()
        .map(|w| format!("window=\"{w}\""))
        .collect();
    let sli: Vec<String> = SLI_WINDOWS
        .iter()
        .map(|w| format!("window=\"{w}\""))
        .collect();
    let quantiles: Vec<String> = QUANTILES
        .iter()
        .map(|q| format!("quantile=\"{q}\""))
        .collect();
    let mut spans = SpanLabels::default();
    let burn: Vec<(Span, String)> = BURN_WINDOWS
        .iter()
        .map(|w| (*w, format!("window=\"{w}\"")))
        .collect();

    for (name, help, get) in [
        (
            "slate_requests_total",
            "Requests applied by this process.",
            (|c: &super::snapshot::ServiceCounts| c.requests) as fn(&_) -> u64,
        ),
        (
            "slate_request_errors_total",
            "Failed requests applied by this process.",
            |c| c.errors,
        ),
    ] {
        family(&mut out, name, "counter", help);
        for (n, c) in x.counters.names.iter().zip(&x.counters.services) {
            sample(&mut out, name, &[("service", n)], &[], get(c) as f64);
        }
    }

    family(
        &mut out,
        "slate_latency_seconds",
        "summary",
        "Latency quantiles over each window.",
    );
    for g in &snap.services {
        let n = &*g.name;
        for (w, qs) in windows.iter().zip(&g.latency) {
            for (q, v) in quantiles.iter().zip(qs) {
                if let Some(v) = v {
                    sample(
                        &mut out,
                        "slate_latency_seconds",
                        &[("service", n)],
                        &[w, q],
                        *v,
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
    for g in &snap.services {
        let n = &*g.name;
        for (w, v) in sli.iter().zip(g.rps) {
            sample(
                &mut out,
                "slate_requests_per_second",
                &[("service", n)],
                &[w],
                v,
            );
        }
    }
    family(
        &mut out,
        "slate_error_ratio",
        "gauge",
        "Share of failed requests over each window.",
    );
    for g in &snap.services {
        let n = &*g.name;
        for (w, v) in sli.iter().zip(g.error_ratio) {
            if let Some(v) = v {
                sample(&mut out, "slate_error_ratio", &[("service", n)], &[w], v);
            }
        }
    }

    for (name, help, get) in [
        (
            "slate_freshness_seconds",
            "Age of the last successful event.",
            (|g: &super::snapshot::ServiceGauges| g.freshness) as fn(&_) -> Option<f64>,
        ),
        (
            "slate_last_event_age_seconds",
            "Age of the last event.",
            |g| g.last_event_age,
        ),
    ] {
        family(&mut out, name, "gauge", help);
        for g in &snap.services {
            let n = &*g.name;
            if let Some(v) = get(g) {
                sample(&mut out, name, &[("service", n)], &[], v);
            }
        }
    }

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
        for g in &snap.services {
            for e in &g.slos {
                let v = match name {
                    "slate_slo_objective_ratio" => Some(e.objective),
                    "slate_slo_attainment_ratio" => e.attainment,
                    _ => e.budget_remaining(),
                };
                if let Some(v) = v {
                    sample(
                        &mut out,
                        name,
                        &[("service", &g.name), ("slo", &e.name)],
                        &[],
                        v,
                    );
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
    for g in &snap.services {
        for e in &g.slos {
            for (i, (w, b)) in e.burn_rates.iter().enumerate() {
                if let Some(b) = b {
                    let w = match burn.get(i) {
                        Some((bw, l)) if bw == w => l.as_str(),
                        _ => {
                            let i = spans.index("window", *w);
                            spans.get(i)
                        }
                    };
                    sample(
                        &mut out,
                        "slate_burn_rate",
                        &[("service", &g.name), ("slo", &e.name)],
                        &[w],
                        *b,
                    );
                }
            }
        }
    }
    let severities: Vec<(Severity, String)> = [Severity::Page, Severity::Ticket]
        .into_iter()
        .map(|s| (s, label("severity", s.as_str())))
        .collect();
    for (name, help) in [
        (
            "slate_alert_firing",
            "1 while a multi-window multi-burn-rate alert fires.",
        ),
        (
            "slate_alert_burn_rate_threshold",
            "The burn rate both windows of an alert pair must reach: budget share × period / long window.",
        ),
    ] {
        family(&mut out, name, "gauge", help);
        for g in &snap.services {
            for a in &g.alerts {
                let (long, short) = (
                    spans.index("long_window", a.long),
                    spans.index("short_window", a.short),
                );
                let severity = severities
                    .iter()
                    .find(|(s, _)| *s == a.severity)
                    .map_or("", |(_, l)| l.as_str());
                sample(
                    &mut out,
                    name,
                    &[("service", &g.name), ("slo", &g.slos[a.slo].name)],
                    &[severity, spans.get(long), spans.get(short)],
                    match name {
                        "slate_alert_firing" => a.firing as u8 as f64,
                        _ => a.threshold,
                    },
                );
            }
        }
    }

    family(
        &mut out,
        "slate_events_ingested_total",
        "counter",
        "Records read by this process, per source.",
    );
    for (source, n) in &x.counters.ingested {
        sample(
            &mut out,
            "slate_events_ingested_total",
            &[("source", source)],
            &[],
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
            &[],
            x.counters.rejected.get(r) as f64,
        );
    }
    if let Some(k) = x.kafka {
        family(
            &mut out,
            "slate_kafka_consumer_lag",
            "gauge",
            "Messages behind the partition's end, per assigned partition.",
        );
        for (topic, partition, lag) in &k.lag {
            sample(
                &mut out,
                "slate_kafka_consumer_lag",
                &[("topic", topic), ("partition", &partition.to_string())],
                &[],
                *lag as f64,
            );
        }
        family(
            &mut out,
            "slate_catching_up",
            "gauge",
            "1 while the partition reads its history (its services follow its events' time), else 0.",
        );
        for (topic, partition, reading) in &k.catching_up {
            sample(
                &mut out,
                "slate_catching_up",
                &[("topic", topic), ("partition", &partition.to_string())],
                &[],
                *reading as u8 as f64,
            );
        }
        if let Some(st) = &k.state {
            for (name, help, v) in [
                (
                    "slate_state_snapshot_duration_seconds",
                    "The last snapshot pass, from taking it on the apply thread to its file on disk.",
                    st.snapshot_seconds,
                ),
                (
                    "slate_state_snapshot_bytes",
                    "Bytes written by the last snapshot pass.",
                    st.snapshot_bytes as f64,
                ),
                (
                    "slate_state_last_snapshot_timestamp_seconds",
                    "When the last snapshot pass reached the disk (0: none yet).",
                    st.last_snapshot,
                ),
                (
                    "slate_state_restore_duration_seconds",
                    "How long the restore from the state dir took at start.",
                    st.restore_seconds,
                ),
            ] {
                family(&mut out, name, "gauge", help);
                sample(&mut out, name, &[], &[], v);
            }
            family(
                &mut out,
                "slate_state_snapshot_failures_total",
                "counter",
                "Snapshot files that did not read at the restore (each fell back to the one before) and passes that could not be written (each tried again with the next).",
            );
            sample(
                &mut out,
                "slate_state_snapshot_failures_total",
                &[],
                &[],
                st.failures as f64,
            );
            family(
                &mut out,
                "slate_state_gap_records",
                "gauge",
                "Records that expired from the partition while slate was away: the state lacks them.",
            );
            for (topic, partition, n) in &st.gaps {
                sample(
                    &mut out,
                    "slate_state_gap_records",
                    &[("topic", topic), ("partition", &partition.to_string())],
                    &[],
                    *n as f64,
                );
            }
        }
    }
    family(
        &mut out,
        "slate_latency_clamped_total",
        "counter",
        "Latencies above the histogram's top, recorded there.",
    );
    for (n, c) in x.counters.names.iter().zip(&x.counters.services) {
        sample(
            &mut out,
            "slate_latency_clamped_total",
            &[("service", n)],
            &[],
            c.clamped as f64,
        );
    }
    if let Some(k) = x.kafka {
        family(
            &mut out,
            "slate_service_partition_spread",
            "gauge",
            "Services seen on more than one partition of this instance, per topic.",
        );
        for (topic, n) in &k.spread {
            sample(
                &mut out,
                "slate_service_partition_spread",
                &[("topic", topic)],
                &[],
                *n as f64,
            );
        }
    }
    if let Some(r) = x.reload {
        family(
            &mut out,
            "slate_config_last_reload_successful",
            "gauge",
            "1 if the last SLO-spec reload succeeded.",
        );
        sample(
            &mut out,
            "slate_config_last_reload_successful",
            &[],
            &[],
            r.successful as u8 as f64,
        );
        family(
            &mut out,
            "slate_config_last_reload_success_timestamp_seconds",
            "gauge",
            "When the SLO spec was last loaded successfully.",
        );
        sample(
            &mut out,
            "slate_config_last_reload_success_timestamp_seconds",
            &[],
            &[],
            r.at,
        );
    }
    if x.compat.sloth {
        super::compat::sloth(&mut out, snap);
    }
    if x.compat.pyrra {
        super::compat::pyrra(&mut out, snap);
    }
    family(&mut out, "slate_build_info", "gauge", "slate's version.");
    sample(
        &mut out,
        "slate_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        &[],
        1.0,
    );
    if !out.stopped && !out.buf.is_empty() {
        (out.sink)(std::mem::take(&mut out.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::RejectCounts;
    use crate::engine::{Engine, EngineSettings};
    use crate::evaluate::AlertTracker;
    use crate::model::MICROS_PER_SEC;
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
            engine.record(&ev);
        }
        let now = t0 + 600 * MICROS_PER_SEC;
        engine.advance_all(now);
        let mut tracker = AlertTracker::new(engine.service(api));
        tracker.tick(engine.service(api), now, 0);
        let mut rejected = RejectCounts::default();
        rejected.add(Reason::InvalidJson);
        let snapshot = Snapshot::take(&engine, &[Some(tracker)], now, |_| true);
        let counters = Counters::from_engine(&engine, vec![("file", 601)], rejected);
        let text = render(&Exposition {
            snapshot: &snapshot,
            counters: &counters,
            kafka: None,
            reload: None,
            compat: Compat::default(),
        });
        // Streamed in small chunks, the text is the same, cut at line ends;
        // a sink that refuses stops the render.
        for chunk in [1, 100, 4096] {
            let mut parts = Vec::new();
            render_chunks(
                &Exposition {
                    snapshot: &snapshot,
                    counters: &counters,
                    kafka: None,
                    reload: None,
                    compat: Compat::default(),
                },
                chunk,
                &mut |c: String| {
                    parts.push(c);
                    true
                },
            );
            assert!(parts.iter().all(|p| p.ends_with('\n')));
            assert!(parts.len() > text.len() / chunk.max(200) / 2, "{chunk}");
            assert_eq!(parts.concat(), text);
        }
        let mut calls = 0;
        render_chunks(
            &Exposition {
                snapshot: &snapshot,
                counters: &counters,
                kafka: None,
                reload: None,
                compat: Compat::default(),
            },
            100,
            &mut |_| {
                calls += 1;
                calls < 3
            },
        );
        assert_eq!(calls, 3, "no chunk after the refusal");
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
        for (long, want) in [("1h", 14.4), ("6h", 6.0), ("1d", 3.0), ("3d", 1.0)] {
            let got = get(
                "slate_alert_burn_rate_threshold",
                &[("slo", "error_rate"), ("long_window", long)],
            );
            assert!((got - want).abs() < 1e-9, "{long}: {got}");
        }
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
