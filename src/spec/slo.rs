//! The SLO spec (`service-slos.yml`): which SLOs each service has, their
//! objectives, periods and timeslice settings. Open-ended keys such as
//! `slo_latency_p999` are parsed from the key itself.

use std::collections::BTreeMap;
use std::path::Path;

use super::yaml::{Located, Node};
use super::{parse_ratio, Errors, SpecErrors};
use crate::model::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct SloSpec {
    /// In the order the file lists them.
    pub services: Vec<ServiceSpec>,
    /// Notes that are not errors (e.g. alert pairs dropped for a short period).
    pub warnings: Vec<String>,
    /// Planned maintenance and known bad data (`corrections:`).
    pub corrections: Vec<std::sync::Arc<super::correction::Correction>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    /// A rolling period's length; for a calendar period the longest such
    /// period (what the state has to hold).
    pub period: Span,
    /// `period: week | month | quarter`: the budget starts whole at each
    /// boundary (in `period_timezone`).
    pub calendar_period: Option<CalendarPeriod>,
    /// Where the report's calendar weeks and months are cut
    /// (`period_timezone`, an IANA name; UTC by default).
    pub period_timezone: jiff::tz::TimeZone,
    /// Its alert pairs: its own (`alerting:`, here or under `defaults:`),
    /// else slate.yml's `alerting.windows` ([`SloSpec::use_alert_windows`]),
    /// else Google SRE's four.
    pub alerting: Vec<super::alerting::AlertWindow>,
    /// The `alerting:` the spec gave it, and on which line.
    pub alerting_line: Option<usize>,
    alerting_written: u8,
    pub availability_slice: Span,
    pub labels: BTreeMap<String, String>,
    pub slos: Vec<Slo>,
    /// The spec's corrections that reach this service, each with the bits
    /// of the SLOs (by index in `slos`) it covers.
    pub corrections: Vec<(std::sync::Arc<super::correction::Correction>, u64)>,
}

impl ServiceSpec {
    /// The shortest its period can be (a calendar month can be a February).
    pub fn shortest_period(&self) -> Span {
        match self.calendar_period {
            Some(CalendarPeriod::Week) => Span::days(7),
            Some(CalendarPeriod::Month) => Span::days(28),
            Some(CalendarPeriod::Quarter) => Span::days(90),
            None => self.period,
        }
    }

    /// Its period as the spec writes it: `30d`, `month`.
    pub fn period_name(&self) -> String {
        self.calendar_period
            .map_or(self.period.to_string(), |c| c.to_string())
    }

    /// Whether a correction covers SLO `i`.
    pub fn corrected(&self, i: usize) -> bool {
        self.corrections.iter().any(|(_, m)| m >> i & 1 == 1)
    }
}

/// A calendar-aligned SLO period (DESIGN §4): its budget starts whole at
/// each boundary, in the service's `period_timezone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarPeriod {
    /// The ISO week, from Monday.
    Week,
    Month,
    Quarter,
}

impl CalendarPeriod {
    pub fn parse(s: &str) -> Option<CalendarPeriod> {
        match s {
            "week" => Some(CalendarPeriod::Week),
            "month" => Some(CalendarPeriod::Month),
            "quarter" => Some(CalendarPeriod::Quarter),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CalendarPeriod::Week => "week",
            CalendarPeriod::Month => "month",
            CalendarPeriod::Quarter => "quarter",
        }
    }

    /// The longest such period: how far back late data and the rings reach.
    pub fn longest(self) -> crate::model::Span {
        crate::model::Span::days(match self {
            CalendarPeriod::Week => 7,
            CalendarPeriod::Month => 31,
            CalendarPeriod::Quarter => 92,
        })
    }
}

impl std::fmt::Display for CalendarPeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// The key without `slo_`: `latency_p99`, `error_rate`, `availability`...
    pub name: String,
    pub kind: SloKind,
    pub objective: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SloKind {
    /// Good event: latency ≤ threshold. Events without latency do not count.
    Latency { threshold_us: u64 },
    /// Good event: not an error (`slo_error_rate` and `slo_success_rate`).
    Success,
    /// Good slice: its error ratio is at most `1 − slice_target`.
    Availability { slice_target: f64 },
    /// Good slice: at its end, the last success is at most `max_age` old.
    Freshness { max_age: Span },
}

impl SloKind {
    /// Timeslice SLOs count slices; the others count events.
    pub fn is_timeslice(&self) -> bool {
        matches!(
            self,
            SloKind::Availability { .. } | SloKind::Freshness { .. }
        )
    }
}

/// Whether an SLO of this name counts slices: an SLO's name is its key
/// without `slo_`, and only `slo_availability` and `slo_freshness` are
/// timeslice SLOs (what a report, which carries names, not kinds, reads).
pub fn is_timeslice_name(name: &str) -> bool {
    matches!(name, "availability" | "freshness")
}

pub const DEFAULT_PERIOD: Span = Span::days(30);
pub const DEFAULT_SLICE: Span = Span::mins(1);
pub const DEFAULT_SLICE_TARGET: f64 = 0.9;
pub const DEFAULT_FRESHNESS_OBJECTIVE: f64 = 0.99;
pub const MAX_SLOS_PER_SERVICE: usize = 60;

const FIXED_KEYS: &[&str] = &[
    "slo_error_rate",
    "slo_success_rate",
    "slo_availability",
    "slo_freshness",
    "slo_latency_p99",
    "period",
    "period_timezone",
    "availability_slice",
    "availability_slice_target",
    "slo_freshness_objective",
    "labels",
    "alerting",
];

impl SloSpec {
    pub fn load(path: &Path) -> Result<SloSpec, SpecErrors> {
        let text = super::read_file(path)?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<SloSpec, SpecErrors> {
        let root = super::parse_yaml(path, text)?;
        let mut errors = Errors::new(path);
        let mut spec = SloSpec {
            services: Vec::new(),
            warnings: Vec::new(),
            corrections: Vec::new(),
        };
        let Node::Map(top) = &root.node else {
            errors.add(
                root.line,
                "",
                "the SLO spec must be a mapping with a `services:` key",
            );
            return errors.finish(spec);
        };
        let mut defaults: Vec<(Located, Located)> = Vec::new();
        let mut services = None;
        let mut corrections = None;
        for (k, v) in top {
            match k.as_str().unwrap_or("") {
                "services" => services = Some(v),
                "corrections" => corrections = Some(v),
                "defaults" => match &v.node {
                    Node::Map(entries) => defaults = entries.clone(),
                    Node::Null => {}
                    _ => errors.add(v.line, "defaults", "must be a mapping of SLO keys"),
                },
                other => errors.unknown_key(
                    k.line,
                    other,
                    &["services", "defaults", "corrections"],
                    "top-level",
                ),
            }
        }
        let Some(services) = services else {
            errors.add(
                root.line,
                "services",
                "missing: list your services under `services:`",
            );
            return errors.finish(spec);
        };
        match &services.node {
            Node::Map(entries) => {
                for (name, body) in entries {
                    let Some(name_str) = name.as_str() else {
                        errors.add(name.line, "services", "a service name must be a string");
                        continue;
                    };
                    if let Some(svc) = service(name_str, name.line, body, &defaults, &mut errors) {
                        if spec.services.iter().any(|s| s.name == svc.name) {
                            errors.add(name.line, name_str, "service listed twice");
                        } else {
                            spec.services.push(svc);
                        }
                    }
                }
            }
            Node::Null => {}
            _ => errors.add(
                services.line,
                "services",
                "must be a mapping of service names",
            ),
        }
        if let Some(c) = corrections {
            let services = &spec.services;
            spec.corrections = super::correction::parse(
                c,
                &mut errors,
                &|name| services.iter().any(|s| s.name == name),
                &|among, slo| {
                    services
                        .iter()
                        .filter(|s| among.is_none_or(|a| a.contains(&s.name)))
                        .any(|s| s.slos.iter().any(|x| x.name == slo))
                },
            );
        }
        for svc in &mut spec.services {
            for c in &spec.corrections {
                if !c.applies_to_service(&svc.name) {
                    continue;
                }
                let mask = svc
                    .slos
                    .iter()
                    .enumerate()
                    .filter(|(_, slo)| c.applies_to_slo(&slo.name))
                    .fold(0u64, |m, (i, _)| m | 1 << i);
                if mask != 0 {
                    svc.corrections.push((c.clone(), mask));
                }
            }
        }
        for svc in &spec.services {
            if svc.period < Span::days(3) && !svc.slos.is_empty() {
                spec.warnings.push(format!(
                    "{}: period {} is shorter than 3d: alert pairs whose long window exceeds it are dropped",
                    svc.name, svc.period
                ));
            }
        }
        errors.finish(spec)
    }

    /// Gives slate.yml's `alerting.windows` to every service without
    /// `alerting:` of its own. A configured long window longer than a
    /// service's period is an error naming the configuration's line.
    pub fn use_alert_windows(
        &mut self,
        configured: Option<&super::config::ConfiguredWindows>,
    ) -> Result<(), SpecErrors> {
        let Some(c) = configured else {
            return Ok(());
        };
        let mut errors = Errors::new(&c.file);
        for svc in self
            .services
            .iter_mut()
            .filter(|s| s.alerting_line.is_none())
        {
            if let Some(w) = c.windows.too_long(svc.shortest_period()).next() {
                if !svc.slos.is_empty() {
                    errors.add(
                        c.line,
                        "alerting.windows",
                        format!(
                            "the {} pair's long window {} is longer than service {}'s period ({}): shorten it, or give {} an `alerting:` of its own in the SLO spec",
                            w.severity.as_str(),
                            w.long,
                            svc.name,
                            svc.period_name(),
                            svc.name
                        ),
                    );
                }
            }
            svc.alerting = c.windows.pairs.clone();
        }
        errors.finish(())
    }

    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }
}

fn service(
    name: &str,
    line: usize,
    body: &Located,
    defaults: &[(Located, Located)],
    errors: &mut Errors,
) -> Option<ServiceSpec> {
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        errors.add(
            line,
            name,
            "a service name must be 1–128 bytes with no control characters",
        );
        return None;
    }
    let own: &[(Located, Located)] = match &body.node {
        Node::Map(entries) => entries,
        Node::Null => &[],
        _ => {
            errors.add(body.line, name, "must be a mapping of SLO keys");
            return None;
        }
    };
    // Service keys override `defaults:` keys of the same name.
    let mut keys: Vec<&(Located, Located)> = own.iter().collect();
    for d in defaults {
        if !own.iter().any(|(k, _)| k.as_str() == d.0.as_str()) {
            keys.push(d);
        }
    }
    let mut svc = ServiceSpec {
        name: name.to_string(),
        period: super::slo::DEFAULT_PERIOD,
        calendar_period: None,
        period_timezone: jiff::tz::TimeZone::UTC,
        alerting: super::alerting::DEFAULT_WINDOWS.to_vec(),
        alerting_line: None,
        alerting_written: 0,
        availability_slice: DEFAULT_SLICE,
        labels: BTreeMap::new(),
        slos: Vec::new(),
        corrections: Vec::new(),
    };
    let mut slice_target = DEFAULT_SLICE_TARGET;
    let mut freshness_objective = DEFAULT_FRESHNESS_OBJECTIVE;
    let mut freshness: Option<(usize, Span)> = None;
    let mut has_availability = false;
    for (k, v) in keys {
        let key = k.as_str().unwrap_or("");
        let ctx = format!("{name}.{key}");
        if key == "alerting" {
            if let Some(w) = super::alerting::parse_windows(v, &ctx, errors) {
                svc.alerting = w.pairs;
                svc.alerting_written = w.written;
                svc.alerting_line = Some(k.line);
            }
            continue;
        }
        let Some(value) = v.as_str() else {
            if key == "labels" {
                match &v.node {
                    Node::Map(entries) => {
                        for (lk, lv) in entries {
                            let lname = lk.as_str().unwrap_or("");
                            if !is_label_name(lname) {
                                errors.add(
                                    lk.line,
                                    &format!("{ctx}.{lname}"),
                                    "not a Prometheus label name (letters, digits and _, not starting with a digit or __)",
                                );
                                continue;
                            }
                            svc.labels
                                .insert(lname.to_string(), lv.as_str().unwrap_or("").to_string());
                        }
                    }
                    Node::Null => {}
                    _ => errors.add(v.line, &ctx, "labels must be a mapping of names to values"),
                }
            } else {
                errors.add(
                    v.line,
                    &ctx,
                    format!("expected a value, found {}", v.kind()),
                );
            }
            continue;
        };
        match key {
            "slo_error_rate" | "slo_success_rate" | "slo_availability" => {
                match objective(value) {
                    Ok(objective) => {
                        let kind = if key == "slo_availability" {
                            has_availability = true;
                            SloKind::Availability {
                                slice_target: DEFAULT_SLICE_TARGET,
                            }
                        } else {
                            SloKind::Success
                        };
                        svc.slos.push(Slo {
                            name: key["slo_".len()..].to_string(),
                            kind,
                            objective,
                        });
                    }
                    Err(msg) => errors.add(v.line, &ctx, msg),
                }
            }
            "slo_freshness" => match Span::parse(value) {
                Ok(d) if d.0 > 0 => freshness = Some((v.line, d)),
                Ok(_) => errors.add(v.line, &ctx, "must be longer than zero"),
                Err(msg) => errors.add(v.line, &ctx, msg),
            },
            "slo_freshness_objective" => match objective(value) {
                Ok(o) => freshness_objective = o,
                Err(msg) => errors.add(v.line, &ctx, msg),
            },
            "period" => match (CalendarPeriod::parse(value), Span::parse(value)) {
                (Some(p), _) => {
                    svc.period = p.longest();
                    svc.calendar_period = Some(p);
                }
                (None, Ok(p)) if p >= Span::days(1) && p <= Span::days(90) && p.0 % Span::hours(1).0 == 0 => {
                    svc.period = p
                }
                (None, Ok(_)) => errors.add(
                    v.line,
                    &ctx,
                    "must be whole hours between 1d and 90d (e.g. 7d, 28d, 30d), or week, month or quarter",
                ),
                (None, Err(msg)) => errors.add(
                    v.line,
                    &ctx,
                    format!("{msg}; or a calendar period: week, month or quarter"),
                ),
            },
            "period_timezone" => match jiff::tz::TimeZone::get(value) {
                Ok(tz) => svc.period_timezone = tz,
                Err(_) => errors.add(
                    v.line,
                    &ctx,
                    format!("unknown time zone {value:?}: give an IANA name such as Europe/Berlin or America/New_York, or UTC"),
                ),
            },
            "availability_slice" => match Span::parse(value) {
                Ok(s) if s >= Span::secs(10) && s <= Span::hours(1) && s.0 % Span::secs(10).0 == 0 => {
                    svc.availability_slice = s
                }
                Ok(_) => errors.add(v.line, &ctx, "must be a multiple of 10s between 10s and 1h"),
                Err(msg) => errors.add(v.line, &ctx, msg),
            },
            "availability_slice_target" => match parse_ratio(value) {
                Ok(t) if t > 0.0 && t <= 1.0 => slice_target = t,
                Ok(_) => errors.add(v.line, &ctx, "must be above 0 and at most 100%"),
                Err(msg) => errors.add(v.line, &ctx, msg),
            },
            _ if key.starts_with("slo_latency_p") => match latency_objective(key) {
                Some(objective) => match Span::parse(value) {
                    Ok(d) if d.0 > 0 => svc.slos.push(Slo {
                        name: key["slo_".len()..].to_string(),
                        kind: SloKind::Latency {
                            threshold_us: d.0 as u64,
                        },
                        objective,
                    }),
                    Ok(_) => errors.add(v.line, &ctx, "the latency threshold must be above zero"),
                    Err(msg) => errors.add(v.line, &ctx, msg),
                },
                None => errors.add(
                    k.line,
                    &ctx,
                    "a latency SLO key is `slo_latency_pNN` with NN the percentile digits (p95, p99, p999)",
                ),
            },
            _ => errors.unknown_key(k.line, key, FIXED_KEYS, "SLO"),
        }
    }
    if let Some((_, max_age)) = freshness {
        svc.slos.push(Slo {
            name: "freshness".to_string(),
            kind: SloKind::Freshness { max_age },
            objective: freshness_objective,
        });
    }
    // Each SLO takes a bit of a 64-bit column mask on the hot path.
    if svc.slos.len() > MAX_SLOS_PER_SERVICE {
        errors.add(
            line,
            name,
            format!(
                "has {} SLOs; at most {MAX_SLOS_PER_SERVICE} per service",
                svc.slos.len()
            ),
        );
        return None;
    }
    let shortest = svc.shortest_period();
    if let Some(at) = svc.alerting_line {
        let own = super::alerting::Windows {
            pairs: svc.alerting.clone(),
            written: svc.alerting_written,
        };
        for w in own.too_long(shortest) {
            errors.add(
                at,
                &format!("{name}.alerting"),
                format!(
                    "the {} pair's long window {} is longer than the period ({}): shorten it or lengthen `period`",
                    w.severity.as_str(),
                    w.long,
                    svc.period_name(),
                ),
            );
        }
    }
    if has_availability {
        for slo in &mut svc.slos {
            if let SloKind::Availability { slice_target: t } = &mut slo.kind {
                *t = slice_target;
            }
        }
    }
    Some(svc)
}

/// An objective between 0.5 and 1 (exclusive), with hints for the two
/// usual mistakes.
fn objective(text: &str) -> Result<f64, String> {
    let v = parse_ratio(text)?;
    if v >= 1.0 {
        return Err(format!(
            "`{text}` leaves no error budget: an objective must be below 100% (e.g. \"99.9%\")"
        ));
    }
    if v < 0.5 {
        return Err(format!(
            "`{text}` is below 50%: an objective is the share of good events (write \"99.9%\", not the error rate \"0.1%\")"
        ));
    }
    Ok(v)
}

/// `slo_latency_p99` → 0.99, `p999` → 0.999, `p50` → 0.5.
fn latency_objective(key: &str) -> Option<f64> {
    let digits = key.strip_prefix("slo_latency_p")?;
    if digits.len() < 2 || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: f64 = format!("0.{digits}").parse().ok()?;
    (0.5..1.0).contains(&v).then_some(v)
}

/// A Prometheus label name (`labels` become labels of the compatibility
/// series).
fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../fixtures/service-slos.yml");

    fn parse(text: &str) -> Result<SloSpec, SpecErrors> {
        SloSpec::parse(Path::new("slos.yml"), text)
    }

    #[test]
    fn seed_spec_loads_unchanged() {
        let spec = parse(SEED).unwrap();
        let names: Vec<_> = spec.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["api-gateway", "user-service", "batch-processor"]);
        let api = &spec.services[0];
        assert_eq!(api.slos.len(), 3);
        assert_eq!(api.slos[0].name, "latency_p99");
        assert_eq!(
            api.slos[0].kind,
            SloKind::Latency {
                threshold_us: 200_000
            }
        );
        assert!((api.slos[0].objective - 0.99).abs() < 1e-12);
        assert!((api.slos[1].objective - 0.999).abs() < 1e-12);
        let batch = &spec.services[2];
        assert_eq!(batch.slos[0].name, "success_rate");
        assert_eq!(
            batch.slos[1].kind,
            SloKind::Freshness {
                max_age: Span::hours(1)
            }
        );
        assert_eq!(batch.slos[1].objective, 0.99);
    }

    #[test]
    fn every_error_is_reported_with_line_and_hint() {
        let text = "services:\n  api:\n    slo_eror_rate: \"99%\"\n    slo_availability: \"100%\"\n    slo_error_rate: \"0.1%\"\n    period: 200d\n";
        let errs = parse(text).unwrap_err().0;
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert_eq!(errs[0].line, 3);
        assert!(
            errs[0].message.contains("did you mean `slo_error_rate`"),
            "{}",
            errs[0]
        );
        assert!(errs[1].message.contains("no error budget"));
        assert!(errs[2].message.contains("not the error rate"));
        assert!(errs[3].message.contains("between 1d and 90d"));
        assert!(errs[0]
            .to_string()
            .starts_with("slos.yml:3: `slo_eror_rate`"));
    }

    #[test]
    fn corrections_are_checked_with_line_and_key() {
        let text = "services:
  api:
    slo_error_rate: 99%
corrections:
  - services: [api]
    start: 2026-11-01T02:00:00Z
    end: 2026-11-01T01:00:00Z
  - services: \"*\"
    start: 2026-11-01T02:00:00Z
    duration: 1h
    rrule: FREQ=WEEKLY;BYDAY=XX
  - services: [web]
    slos: [latency_p99]
    start: yesterday
    duration: 1h
  - services: [api]
    slos: [error_rate]
    start: 2026-11-01T02:00:00Z
    duration: 2h
    rrule: FREQ=WEEKLY;BYDAY=SU
    reason: backups
";
        let errs = parse(text).unwrap_err().0;
        let got: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert_eq!(
            got,
            [
                (7, "corrections[0].end"),
                (11, "corrections[1].rrule"),
                (12, "corrections[2].services"),
                (13, "corrections[2].slos"),
                (14, "corrections[2].start"),
            ],
            "{errs:?}"
        );
        assert!(errs[0].message.contains("ends before it starts"));
        assert!(errs[1].message.contains("BYDAY=XX"));
        assert!(errs[2].message.contains("web is not a service"));
        let ok = parse(&text.replace("end: 2026-11-01T01:00:00Z", "end: 2026-11-01T03:00:00Z"));
        assert!(ok.is_err(), "the other corrections still fail");
        let last = &text[text.find("  - services: [api]\n    slos").unwrap()..];
        let spec = parse(&format!(
            "services:\n  api:\n    slo_error_rate: 99%\n    slo_latency_p99: 1s\ncorrections:\n{last}"
        ))
        .unwrap();
        assert_eq!(spec.corrections.len(), 1);
        assert_eq!(spec.services[0].corrections.len(), 1);
        assert_eq!(spec.services[0].corrections[0].1, 0b1, "error_rate only");
        assert!(spec.services[0].corrected(0) && !spec.services[0].corrected(1));
    }

    #[test]
    fn an_alert_window_longer_than_its_period_is_an_error_with_its_line() {
        let pairs = "    alerting:\n      page:\n        quick: {budget_percent: 2, long_window: 1h, short_window: 5m}\n        slow: {budget_percent: 5, long_window: 2d, short_window: 30m}\n";
        let e = SloSpec::parse(
            Path::new("s.yml"),
            &format!("services:\n  api:\n    period: 1d\n    slo_error_rate: 99%\n{pairs}"),
        )
        .unwrap_err();
        let found: Vec<(usize, &str)> = e.0.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert_eq!(found, [(5, "api.alerting")], "{e}");
        assert!(
            e.0[0].message.contains("2d is longer than the period (1d)"),
            "{e}"
        );
        // A month is at least 28 days: a 30-day window does not fit it.
        let long = pairs.replace("2d", "30d");
        assert!(SloSpec::parse(
            Path::new("s.yml"),
            &format!("services:\n  api:\n    period: month\n    slo_error_rate: 99%\n{long}"),
        )
        .is_err());
        // slate.yml's windows: the error names its file and line.
        let mut spec = SloSpec::parse(
            Path::new("s.yml"),
            "services:\n  api:\n    period: 1d\n    slo_error_rate: 99%\n  web:\n    slo_error_rate: 99%\n",
        )
        .unwrap();
        let c = crate::spec::config::ConfiguredWindows {
            file: "slate.yml".into(),
            line: 7,
            windows: crate::spec::alerting::Windows {
                pairs: vec![crate::spec::alerting::DEFAULT_WINDOWS[3]],
                written: 2,
            },
        };
        let e = spec.use_alert_windows(Some(&c)).unwrap_err();
        assert_eq!((e.0.len(), e.0[0].line), (1, 7), "{e}");
        assert!(e.0[0].message.contains("service api's period (1d)"), "{e}");
        assert_eq!(spec.services[1].alerting, c.windows.pairs, "web takes them");
    }

    #[test]
    fn a_period_timezone_must_exist() {
        let ok = parse("defaults:\n  period_timezone: Europe/Berlin\nservices:\n  api:\n    slo_error_rate: 99%\n").unwrap();
        assert_eq!(
            ok.services[0].period_timezone,
            jiff::tz::TimeZone::get("Europe/Berlin").unwrap()
        );
        let errs = parse(
            "services:\n  api:\n    slo_error_rate: 99%\n    period_timezone: Europe/Berlinn\n",
        )
        .unwrap_err()
        .0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            (errs[0].line, errs[0].key.as_str()),
            (4, "api.period_timezone")
        );
        assert!(errs[0].message.contains("unknown time zone"), "{}", errs[0]);
    }

    #[test]
    fn labels_must_be_prometheus_label_names() {
        let text = "services:\n  api:\n    slo_error_rate: 99%\n    labels:\n      team: payments\n      bad-name: x\n      __reserved: y\n";
        let errs = parse(text).unwrap_err().0;
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(
            (errs[0].line, errs[0].key.as_str()),
            (6, "api.labels.bad-name")
        );
        assert_eq!(errs[1].line, 7);
        assert!(errs[0].message.contains("not a Prometheus label name"));
        let ok = parse(&text.replace("      bad-name: x\n      __reserved: y\n", "")).unwrap();
        assert_eq!(ok.services[0].labels["team"], "payments");
    }

    #[test]
    fn defaults_apply_unless_overridden() {
        let text = "defaults:\n  period: 7d\n  slo_error_rate: 99%\nservices:\n  a:\n    period: 28d\n  b: {}\n";
        let spec = parse(text).unwrap();
        assert_eq!(spec.services[0].period, Span::days(28));
        assert_eq!(spec.services[1].period, Span::days(7));
        assert_eq!(spec.services[1].slos[0].name, "error_rate");
    }

    #[test]
    fn latency_keys_are_open_ended() {
        assert_eq!(latency_objective("slo_latency_p999"), Some(0.999));
        assert_eq!(latency_objective("slo_latency_p50"), Some(0.5));
        assert_eq!(latency_objective("slo_latency_p5"), None);
        assert_eq!(latency_objective("slo_latency_pxx"), None);
    }
}
