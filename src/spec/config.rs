//! `slate.yml`: input, engine and alerting settings (and, for `slate run`,
//! Kafka, HTTP, gate and export). Every key has a documented default; every
//! command-line flag overrides its key.

use std::path::Path;

use super::yaml::{Located, Node};
use super::{Errors, SpecErrors};
use crate::model::Span;

/// The JSON shapes slate decodes. Text formats come later (issue 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    NginxJson,
    EnvoyJson,
    Ecs,
    /// Traefik's JSON access log.
    Traefik,
    /// Caddy's JSON access log.
    Caddy,
    /// HAProxy HTTP logs (`option httplog`).
    Haproxy,
    /// Envoy's (and Istio's) text access logs, laid out by their format string.
    Envoy,
    /// W3C extended logs: IIS, CloudFront.
    W3c,
    /// Sniff the first lines and pick one of the others.
    Auto,
    /// AWS Application Load Balancer access logs.
    Alb,
    /// AWS Classic Load Balancer access logs.
    Elb,
    /// nginx text logs, laid out by `log_format` (default `combined`).
    Nginx,
    /// Apache text logs, laid out by `LogFormat` (default `combined`).
    Apache,
}

impl Format {
    pub const NAMES: &'static [&'static str] = &[
        "json",
        "nginx-json",
        "envoy-json",
        "ecs",
        "traefik",
        "caddy",
        "nginx",
        "apache",
        "haproxy",
        "envoy",
        "w3c",
        "alb",
        "elb",
        "auto",
    ];

    /// Whether lines are laid out by a `log_format` string.
    pub fn is_text(self) -> bool {
        matches!(self, Format::Nginx | Format::Apache | Format::Envoy)
    }

    pub fn parse(name: &str) -> Result<Format, String> {
        Ok(match name {
            "json" => Format::Json,
            "nginx-json" => Format::NginxJson,
            "envoy-json" => Format::EnvoyJson,
            "ecs" => Format::Ecs,
            "traefik" => Format::Traefik,
            "caddy" => Format::Caddy,
            "nginx" => Format::Nginx,
            "apache" => Format::Apache,
            "haproxy" => Format::Haproxy,
            "envoy" => Format::Envoy,
            "w3c" => Format::W3c,
            "auto" => Format::Auto,
            "alb" => Format::Alb,
            "elb" => Format::Elb,
            other => {
                let hint = super::yaml::closest(other, Format::NAMES.iter().copied())
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown format `{other}` (known: {}){hint}",
                    Format::NAMES.join(", ")
                ));
            }
        })
    }
}

/// How the lines arrive wrapped (DESIGN §3): by the container runtime,
/// the log shipper or syslog. The inner line is read by `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// Sniff the first lines (the default with `--format auto`).
    Auto,
    /// Bare lines (the default otherwise).
    None,
    /// Docker's `json-file`: `{"log":"<line>\n","stream":…,"time":…}`.
    Docker,
    /// The CRI log format: `<time> <stream> <P|F> <line>`, partials joined.
    Cri,
    /// Filebeat and Elastic Agent: `message` (or `event.original`) and `@timestamp`.
    Filebeat,
    /// Vector's JSON codec: `message` and `timestamp`.
    Vector,
    /// Fluent Bit: `log`, as an object or a `[time, {…}]` record.
    FluentBit,
    /// The OpenTelemetry Collector's `otlp_json`: many records a message.
    OtlpJson,
    /// Syslog: RFC 3164 or 5424, with or without a PRI, octet-counted or not.
    Syslog,
}

impl Envelope {
    pub const NAMES: &'static [&'static str] = &[
        "auto",
        "none",
        "docker",
        "cri",
        "filebeat",
        "vector",
        "fluent-bit",
        "otlp-json",
        "syslog",
    ];
    /// Every envelope but `auto`, in the order `auto` tries them.
    pub const CONCRETE: [Envelope; 8] = [
        Envelope::None,
        Envelope::Docker,
        Envelope::Cri,
        Envelope::Filebeat,
        Envelope::Vector,
        Envelope::FluentBit,
        Envelope::OtlpJson,
        Envelope::Syslog,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Envelope::Auto => "auto",
            Envelope::None => "none",
            Envelope::Docker => "docker",
            Envelope::Cri => "cri",
            Envelope::Filebeat => "filebeat",
            Envelope::Vector => "vector",
            Envelope::FluentBit => "fluent-bit",
            Envelope::OtlpJson => "otlp-json",
            Envelope::Syslog => "syslog",
        }
    }

    pub fn parse(name: &str) -> Result<Envelope, String> {
        Envelope::CONCRETE
            .into_iter()
            .chain([Envelope::Auto])
            .find(|e| e.name() == name)
            .ok_or_else(|| {
                let hint = super::yaml::closest(name, Envelope::NAMES.iter().copied())
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                format!(
                    "unknown envelope `{name}` (known: {}){hint}",
                    Envelope::NAMES.join(", ")
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyUnit {
    S,
    Ms,
    Us,
    Ns,
}

impl LatencyUnit {
    pub fn parse(s: &str) -> Result<LatencyUnit, String> {
        Ok(match s {
            "s" => LatencyUnit::S,
            "ms" => LatencyUnit::Ms,
            "us" | "µs" => LatencyUnit::Us,
            "ns" => LatencyUnit::Ns,
            _ => return Err(format!("unknown latency unit `{s}` (use s, ms, us or ns)")),
        })
    }
    /// Multiplier from this unit to microseconds.
    pub fn to_micros(self) -> f64 {
        match self {
            LatencyUnit::S => 1e6,
            LatencyUnit::Ms => 1e3,
            LatencyUnit::Us => 1.0,
            LatencyUnit::Ns => 1e-3,
        }
    }
}

/// Field paths (dotted for nested objects) of each event field. `None`
/// means "use the format's default".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldOverrides {
    pub ts: Option<String>,
    pub service: Option<String>,
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub status: Option<String>,
    pub latency: Option<String>,
    pub success: Option<String>,
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InputConfig {
    pub format: Format,
    /// `input.envelope`: what wraps each line. `None` (unset) is `auto`
    /// with `--format auto`, else `none`.
    pub envelope: Option<Envelope>,
    /// nginx `log_format` / Apache `LogFormat` string, or a predefined
    /// name (`combined`, `main`, `common`), for the text formats.
    pub log_format: Option<String>,
    pub fields: FieldOverrides,
    pub latency_unit: Option<LatencyUnit>,
    /// Status codes counted as errors; 5xx by default.
    pub error_statuses: StatusSet,
    pub default_service: Option<String>,
    /// `--service NAME`: every event belongs to NAME, whatever it says.
    pub constant_service: Option<String>,
    /// `input.service_map`: rules naming the service from the host or the
    /// path; the first that matches wins.
    pub service_map: Vec<ServiceRule>,
    /// `--timezone`: the zone of times written without one (HAProxy's
    /// accept date). UTC by default.
    pub timezone: Timezone,
    pub max_line_bytes: usize,
}

impl InputConfig {
    /// The envelope in force: `input.envelope`, else `auto` with
    /// `--format auto`, else `none`.
    pub fn envelope(&self) -> Envelope {
        self.envelope.unwrap_or(if self.format == Format::Auto {
            Envelope::Auto
        } else {
            Envelope::None
        })
    }

    /// The path of `--service-field envelope.PATH`, when the service is
    /// read from the envelope.
    pub fn envelope_service(&self) -> Option<&str> {
        self.fields.service.as_deref()?.strip_prefix("envelope.")
    }
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            format: Format::Json,
            envelope: None,
            log_format: None,
            fields: FieldOverrides::default(),
            latency_unit: None,
            error_statuses: StatusSet::parse("5xx").expect("static"),
            default_service: None,
            constant_service: None,
            timezone: Timezone::Fixed(0),
            service_map: Vec::new(),
            max_line_bytes: 1 << 20,
        }
    }
}

/// One `input.service_map` rule: when the host matches (exactly, or by
/// suffix for `*.example.com`) and the path starts with `path`, the event
/// belongs to `service`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRule {
    pub host: Option<String>,
    pub path: Option<String>,
    pub service: String,
}

impl ServiceRule {
    pub fn matches(&self, host: &str, path: Option<&str>) -> bool {
        let host_ok = match &self.host {
            None => true,
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => host.ends_with(suffix),
                None => host.eq_ignore_ascii_case(h),
            },
        };
        let path_ok = match &self.path {
            None => true,
            Some(p) => path.is_some_and(|x| x.starts_with(p.as_str())),
        };
        host_ok && path_ok
    }
}

/// A set of HTTP status codes (100–599), written `5xx,429`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet([u64; 10]);

impl StatusSet {
    pub fn parse(text: &str) -> Result<StatusSet, String> {
        let mut bits = [0u64; 10];
        let mut set = |code: u16| bits[code as usize / 64] |= 1 << (code % 64);
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX")) {
                match class.parse::<u16>() {
                    Ok(c @ 1..=5) => (c * 100..c * 100 + 100).for_each(&mut set),
                    _ => return Err(format!("`{part}` is not a status class (1xx–5xx)")),
                }
            } else {
                match part.parse::<u16>() {
                    Ok(c @ 100..=599) => set(c),
                    _ => {
                        return Err(format!(
                            "`{part}` is not a status code (100–599) or class (5xx)"
                        ))
                    }
                }
            }
        }
        Ok(StatusSet(bits))
    }
    pub fn contains(&self, code: u16) -> bool {
        code < 640 && self.0[code as usize / 64] & (1 << (code % 64)) != 0
    }
}

/// The default latency quantile windows.
pub const DEFAULT_QUANTILE_WINDOWS: [Span; 3] = [Span::mins(1), Span::mins(5), Span::hours(1)];

#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    pub max_services: usize,
    pub max_skew: Span,
    /// Latency quantile windows, 10s to 6h (default 1m, 5m, 1h).
    pub quantile_windows: Vec<Span>,
    /// 0 means one per core.
    pub threads: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_services: 10_000,
            max_skew: Span::mins(5),
            quantile_windows: DEFAULT_QUANTILE_WINDOWS.to_vec(),
            threads: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertingConfig {
    pub min_events: u64,
    /// The evaluation step (`--eval-every`): replay's in event time
    /// (default 1m), live's in wall-clock time (default 1s).
    pub eval_every: Option<Span>,
    /// `alerting.windows`: the alert pairs of every service that does not
    /// give its own, and the file and line they were written on.
    pub windows: Option<ConfiguredWindows>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfiguredWindows {
    pub file: std::path::PathBuf,
    pub line: usize,
    pub windows: super::alerting::Windows,
}

impl AlertingConfig {
    pub fn replay_step(&self) -> Span {
        self.eval_every.unwrap_or(Span::mins(1))
    }
    pub fn live_tick(&self) -> Span {
        self.eval_every.unwrap_or(Span::secs(1))
    }
}

/// The `kafka` section: what `slate run` consumes.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaConfig {
    /// `host:port,...` (librdkafka's `bootstrap.servers`).
    pub brokers: Option<String>,
    pub topics: Vec<String>,
    pub group: String,
    /// How far back history is read on start and on assignment (default:
    /// the longest SLO period, so that the state reaches as far back as
    /// the topic does).
    pub rebuild_window: Option<Span>,
    /// Where rejected records go, with the reason in a header.
    pub dead_letter_topic: Option<String>,
    /// librdkafka's `group.instance.id` (static membership): a restarted
    /// instance with the same id gets its partitions back at once, without
    /// waiting for the session timeout or moving them to another member.
    pub instance_id: Option<String>,
    /// A compacted topic that holds the live state, input partition p's
    /// in its partition p, keyed by service (DESIGN §8a): what several
    /// instances in one group hand partitions over through.
    pub state_topic: Option<String>,
    /// librdkafka properties passed through (SASL, TLS, tuning).
    pub properties: Vec<(String, String)>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: None,
            topics: Vec::new(),
            group: "slate".into(),
            rebuild_window: None,
            dead_letter_topic: None,
            instance_id: None,
            state_topic: None,
            properties: Vec::new(),
        }
    }
}

/// The `http` section.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: DEFAULT_LISTEN.into(),
        }
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9898";

/// The `state` section: where `slate run` keeps its state between runs
/// (DESIGN §8a).
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    /// Relative to the working directory, as Prometheus's `data/`.
    pub dir: std::path::PathBuf,
    /// How often a snapshot pass is written; zero turns durable state off
    /// (history is then read from Kafka on every start).
    pub interval: Span,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: "slate-data".into(),
            interval: Span::secs(30),
        }
    }
}

impl StateConfig {
    pub fn enabled(&self) -> bool {
        self.interval.0 > 0
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub input: InputConfig,
    pub state: StateConfig,
    pub engine: EngineConfig,
    pub alerting: AlertingConfig,
    pub kafka: KafkaConfig,
    pub http: HttpConfig,
    pub gate: GateConfig,
    pub export: ExportConfig,
}

/// The `export` section: series of other SLO tools beside slate's own, so
/// that their dashboards keep working (off by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportConfig {
    pub compat: Compat,
}

/// Which tools' series to emit too (`export.compat: [sloth, pyrra]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compat {
    pub sloth: bool,
    pub pyrra: bool,
}

/// The `gate` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateConfig {
    /// The deploy-gate policy `slate run` serves at `/api/v1/gate`; a
    /// relative path is read from the config file's folder.
    pub policy: Option<std::path::PathBuf>,
}

const SECTIONS: &[&str] = &[
    "input", "kafka", "state", "engine", "alerting", "http", "gate", "export",
];
const STATE_KEYS: &[&str] = &["dir", "interval"];
const INPUT_KEYS: &[&str] = &[
    "format",
    "envelope",
    "log_format",
    "timezone",
    "service_map",
    "fields",
    "latency_unit",
    "error_statuses",
    "default_service",
    "service_field",
    "max_line_bytes",
];
const FIELD_KEYS: &[&str] = &[
    "ts", "service", "endpoint", "method", "status", "latency", "success", "outcome",
];
const ENGINE_KEYS: &[&str] = &["max_services", "max_skew", "threads", "quantile_windows"];
const ALERTING_KEYS: &[&str] = &["min_events", "eval_every", "windows"];
const KAFKA_KEYS: &[&str] = &[
    "brokers",
    "topics",
    "group",
    "rebuild_window",
    "dead_letter_topic",
    "instance_id",
    "state_topic",
    "properties",
];
const HTTP_KEYS: &[&str] = &["listen"];
const GATE_KEYS: &[&str] = &["policy"];
const EXPORT_KEYS: &[&str] = &["compat"];
const COMPAT_TOOLS: &[&str] = &["sloth", "pyrra"];
/// Properties slate sets itself: passing them would break its guarantees.
const KAFKA_OWNED: &[(&str, &str)] = &[
    (
        "enable.auto.commit",
        "slate commits offsets only after their events are applied",
    ),
    (
        "enable.auto.offset.store",
        "slate stores offsets only after their events are applied",
    ),
    ("group.id", "use kafka.group"),
    ("group.instance.id", "use kafka.instance_id"),
    ("bootstrap.servers", "use kafka.brokers"),
    ("metadata.broker.list", "use kafka.brokers"),
];

impl Config {
    pub fn load(path: &Path) -> Result<Config, SpecErrors> {
        let text = super::read_file(path)?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, SpecErrors> {
        let root = super::parse_yaml(path, text)?;
        let mut errors = Errors::new(path);
        let mut cfg = Config::default();
        let top: &[(Located, Located)] = match &root.node {
            Node::Map(m) => m,
            Node::Null => &[],
            _ => {
                errors.add(root.line, "", "slate.yml must be a mapping of sections");
                return errors.finish(cfg);
            }
        };
        for (k, v) in top {
            let section = k.as_str().unwrap_or("");
            let entries: &[(Located, Located)] = match &v.node {
                Node::Map(m) => m,
                Node::Null => &[],
                _ => {
                    errors.add(v.line, section, "a section must be a mapping");
                    continue;
                }
            };
            match section {
                "input" => input(entries, &mut cfg.input, &mut errors),
                "engine" => engine(entries, &mut cfg.engine, &mut errors),
                "alerting" => alerting(entries, &mut cfg.alerting, &mut errors),
                "kafka" => kafka(entries, &mut cfg.kafka, &mut errors),
                "http" => http(entries, &mut cfg.http, &mut errors),
                "state" => state(entries, &mut cfg.state, &mut errors),
                "gate" => gate(entries, path, &mut cfg.gate, &mut errors),
                "export" => export(entries, &mut cfg.export, &mut errors),
                other => errors.unknown_key(k.line, other, SECTIONS, "section"),
            }
        }
        errors.finish(cfg)
    }
}

fn scalar<'a>(v: &'a Located, key: &str, errors: &mut Errors) -> Option<&'a str> {
    let s = v.as_str();
    if s.is_none() {
        errors.add(v.line, key, format!("expected a value, found {}", v.kind()));
    }
    s
}

fn number<T: std::str::FromStr>(v: &Located, key: &str, errors: &mut Errors) -> Option<T> {
    let s = scalar(v, key, errors)?;
    let parsed = s.replace('_', "").parse().ok();
    if parsed.is_none() {
        errors.add(v.line, key, format!("`{s}` is not a whole number"));
    }
    parsed
}

fn input(entries: &[(Located, Located)], cfg: &mut InputConfig, errors: &mut Errors) {
    for (k, v) in entries {
        let key = k.as_str().unwrap_or("");
        let path = format!("input.{key}");
        match key {
            "format" => {
                if let Some(s) = scalar(v, &path, errors) {
                    match Format::parse(s) {
                        Ok(f) => cfg.format = f,
                        Err(m) => errors.add(v.line, &path, m),
                    }
                }
            }
            "envelope" => {
                if let Some(s) = scalar(v, &path, errors) {
                    match Envelope::parse(s) {
                        Ok(e) => cfg.envelope = Some(e),
                        Err(m) => errors.add(v.line, &path, m),
                    }
                }
            }
            "latency_unit" => {
                if let Some(s) = scalar(v, &path, errors) {
                    match LatencyUnit::parse(s) {
                        Ok(u) => cfg.latency_unit = Some(u),
                        Err(m) => errors.add(v.line, &path, m),
                    }
                }
            }
            "error_statuses" => {
                if let Some(s) = scalar(v, &path, errors) {
                    match StatusSet::parse(s) {
                        Ok(set) => cfg.error_statuses = set,
                        Err(m) => errors.add(v.line, &path, m),
                    }
                }
            }
            "default_service" => {
                cfg.default_service = scalar(v, &path, errors).map(str::to_string);
            }
            "log_format" => {
                cfg.log_format = scalar(v, &path, errors).map(str::to_string);
            }
            "service_map" => service_map(v, &mut cfg.service_map, errors),
            "timezone" => {
                if let Some(s) = scalar(v, &path, errors) {
                    match parse_timezone(s) {
                        Ok(o) => cfg.timezone = o,
                        Err(m) => errors.add(v.line, &path, m),
                    }
                }
            }
            "service_field" => {
                cfg.fields.service = scalar(v, &path, errors).map(str::to_string);
            }
            "max_line_bytes" => {
                if let Some(n) = number::<usize>(v, &path, errors) {
                    if n < 64 {
                        errors.add(v.line, &path, "must be at least 64");
                    } else {
                        cfg.max_line_bytes = n;
                    }
                }
            }
            "fields" => {
                let Node::Map(fields) = &v.node else {
                    errors.add(
                        v.line,
                        &path,
                        "must map event fields to paths, e.g. `latency: timing.ms`",
                    );
                    continue;
                };
                for (fk, fv) in fields {
                    let name = fk.as_str().unwrap_or("");
                    let fpath = format!("input.fields.{name}");
                    let Some(value) = scalar(fv, &fpath, errors) else {
                        continue;
                    };
                    let slot = match name {
                        "ts" => &mut cfg.fields.ts,
                        "service" => &mut cfg.fields.service,
                        "endpoint" => &mut cfg.fields.endpoint,
                        "method" => &mut cfg.fields.method,
                        "status" => &mut cfg.fields.status,
                        "latency" => &mut cfg.fields.latency,
                        "success" => &mut cfg.fields.success,
                        "outcome" => &mut cfg.fields.outcome,
                        _ => {
                            errors.unknown_key(fk.line, name, FIELD_KEYS, "field");
                            continue;
                        }
                    };
                    *slot = Some(value.to_string());
                }
            }
            _ => errors.unknown_key(k.line, key, INPUT_KEYS, "input"),
        }
    }
}

/// `service_map:` is a list of `{host: ..., path: ..., service: ...}`.
fn service_map(v: &Located, out: &mut Vec<ServiceRule>, errors: &mut Errors) {
    let Node::Seq(items) = &v.node else {
        errors.add(
            v.line,
            "input.service_map",
            "must be a list of rules, e.g. `- {host: shop.example.com, service: shop}`",
        );
        return;
    };
    for item in items {
        let Node::Map(entries) = &item.node else {
            errors.add(
                item.line,
                "input.service_map",
                "each rule is a mapping with `service` and `host` and/or `path`",
            );
            continue;
        };
        let mut rule = ServiceRule {
            host: None,
            path: None,
            service: String::new(),
        };
        for (k, val) in entries {
            let key = k.as_str().unwrap_or("");
            let path = format!("input.service_map.{key}");
            let Some(text) = scalar(val, &path, errors) else {
                continue;
            };
            match key {
                "host" => rule.host = Some(text.to_string()),
                "path" => rule.path = Some(text.to_string()),
                "service" => rule.service = text.to_string(),
                _ => errors.unknown_key(k.line, key, &["host", "path", "service"], "service_map"),
            }
        }
        if rule.service.is_empty() || !crate::model::valid_service(&rule.service) {
            errors.add(
                item.line,
                "input.service_map",
                "a rule needs a `service` name (1–128 bytes)",
            );
        } else if rule.host.is_none() && rule.path.is_none() {
            errors.add(
                item.line,
                "input.service_map",
                "a rule needs `host`, `path` or both",
            );
        } else {
            out.push(rule);
        }
    }
}

fn engine(entries: &[(Located, Located)], cfg: &mut EngineConfig, errors: &mut Errors) {
    for (k, v) in entries {
        let key = k.as_str().unwrap_or("");
        let path = format!("engine.{key}");
        match key {
            "max_services" => {
                if let Some(n) = number::<usize>(v, &path, errors) {
                    cfg.max_services = n;
                }
            }
            "threads" => {
                if let Some(n) = number::<usize>(v, &path, errors) {
                    cfg.threads = n;
                }
            }
            "max_skew" => {
                if let Some(s) = scalar(v, &path, errors) {
                    match Span::parse(s) {
                        Ok(d) if d >= Span::secs(1) && d <= Span::hours(1) => cfg.max_skew = d,
                        Ok(_) => errors.add(v.line, &path, "must be between 1s and 1h"),
                        Err(m) => errors.add(v.line, &path, m),
                    }
                }
            }
            "quantile_windows" => match quantile_windows(v) {
                Ok(ws) => cfg.quantile_windows = ws,
                Err(m) => errors.add(v.line, &path, m),
            },
            _ => errors.unknown_key(k.line, key, ENGINE_KEYS, "engine"),
        }
    }
}

fn alerting(entries: &[(Located, Located)], cfg: &mut AlertingConfig, errors: &mut Errors) {
    for (k, v) in entries {
        let key = k.as_str().unwrap_or("");
        let path = format!("alerting.{key}");
        match key {
            "min_events" => {
                if let Some(n) = number::<u64>(v, &path, errors) {
                    cfg.min_events = n;
                }
            }
            "eval_every" => {
                if let Some(s) = scalar(v, &path, errors) {
                    match parse_eval_every(s) {
                        Ok(d) => cfg.eval_every = Some(d),
                        Err(m) => errors.add(v.line, &path, m),
                    }
                }
            }
            "windows" => {
                if let Some(w) = super::alerting::parse_windows(v, &path, errors) {
                    cfg.windows = Some(ConfiguredWindows {
                        file: errors.file().to_path_buf(),
                        line: v.line,
                        windows: w,
                    });
                }
            }
            _ => errors.unknown_key(k.line, key, ALERTING_KEYS, "alerting"),
        }
    }
}

fn kafka(entries: &[(Located, Located)], cfg: &mut KafkaConfig, errors: &mut Errors) {
    for (k, v) in entries {
        let key = k.as_str().unwrap_or("");
        let path = format!("kafka.{key}");
        match key {
            "brokers" => {
                if let Some(s) = scalar(v, &path, errors) {
                    match parse_brokers(s) {
                        Ok(b) => cfg.brokers = Some(b),
                        Err(m) => errors.add(v.line, &path, m),
                    }
                }
            }
            "topics" => {
                let items: Vec<&Located> = match &v.node {
                    Node::Seq(items) => items.iter().collect(),
                    _ => vec![v],
                };
                cfg.topics.clear();
                for item in items {
                    if let Some(t) = scalar(item, &path, errors) {
                        match check_topic(t) {
                            Ok(()) => cfg.topics.push(t.to_string()),
                            Err(m) => errors.add(item.line, &path, m),
                        }
                    }
                }
            }
            "group" => {
                if let Some(s) = scalar(v, &path, errors) {
                    if s.trim().is_empty() {
                        errors.add(v.line, &path, "the consumer group cannot be empty");
                    } else {
                        cfg.group = s.to_string();
                    }
                }
            }
            "instance_id" => {
                if let Some(s) = scalar(v, &path, errors) {
                    match check_instance_id(s) {
                        Ok(()) => cfg.instance_id = Some(s.to_string()),
                        Err(e) => errors.add(v.line, &path, e),
                    }
                }
            }
            "rebuild_window" => {
                if let Some(s) = scalar(v, &path, errors) {
                    match Span::parse(s) {
                        Ok(d) if d <= Span::days(90) => cfg.rebuild_window = Some(d),
                        Ok(_) => {
                            errors.add(v.line, &path, "must be at most 90d (the longest period)")
                        }
                        Err(m) => errors.add(v.line, &path, m),
                    }
                }
            }
            "dead_letter_topic" => {
                if let Some(t) = scalar(v, &path, errors) {
                    match check_topic(t) {
                        Ok(()) => cfg.dead_letter_topic = Some(t.to_string()),
                        Err(m) => errors.add(v.line, &path, m),
                    }
                }
            }
            "state_topic" => {
                if let Some(t) = scalar(v, &path, errors) {
                    match check_topic(t) {
                        Ok(()) => cfg.state_topic = Some(t.to_string()),
                        Err(m) => errors.add(v.line, &path, m),
                    }
                }
            }
            "properties" => {
                let Node::Map(props) = &v.node else {
                    errors.add(
                        v.line,
                        &path,
                        "must map librdkafka properties to values, e.g. `security.protocol: SASL_SSL`",
                    );
                    continue;
                };
                for (pk, pv) in props {
                    let name = pk.as_str().unwrap_or("");
                    let ppath = format!("kafka.properties.{name}");
                    if let Some((_, why)) = KAFKA_OWNED.iter().find(|(n, _)| *n == name) {
                        errors.add(pk.line, &ppath, format!("slate sets this itself: {why}"));
                        continue;
                    }
                    if let Some(val) = scalar(pv, &ppath, errors) {
                        cfg.properties.push((name.to_string(), val.to_string()));
                    }
                }
            }
            _ => errors.unknown_key(k.line, key, KAFKA_KEYS, "kafka"),
        }
    }
}

impl KafkaConfig {
    /// What `kafka.state_topic` needs of the rest: one input topic (its
    /// partition p's state is in the state topic's partition p), and a
    /// topic of its own.
    pub fn check_state_topic(&self) -> Result<(), String> {
        let Some(st) = &self.state_topic else {
            return Ok(());
        };
        if self.topics.len() != 1 {
            return Err(format!(
                "kafka.state_topic {st}: needs exactly one input topic (the state of its partition p is kept in {st}'s partition p); {} given",
                self.topics.len()
            ));
        }
        if self.topics.contains(st) || self.dead_letter_topic.as_ref() == Some(st) {
            return Err(format!(
                "kafka.state_topic {st}: give the state a topic of its own, not an input or the dead-letter topic"
            ));
        }
        Ok(())
    }
}

/// `host:port,host:port`: each with a port.
pub fn parse_brokers(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return Err("give at least one broker as host:port".into());
    }
    for p in &parts {
        let hostport = p.rsplit_once("://").map_or(*p, |(_, rest)| rest);
        match hostport.rsplit_once(':') {
            Some((h, port)) if !h.is_empty() && port.parse::<u16>().is_ok_and(|n| n > 0) => {}
            _ => return Err(format!("`{p}` is not host:port (e.g. localhost:9092)")),
        }
    }
    Ok(parts.join(","))
}

/// Kafka's topic name rule: 1–249 of `[a-zA-Z0-9._-]`.
/// Kafka's rule for `group.instance.id` (`kafka.instance_id`,
/// `--instance-id`): 1–249 of `[A-Za-z0-9._-]`.
pub fn check_instance_id(s: &str) -> Result<(), &'static str> {
    let ok = !s.is_empty()
        && s.len() <= 249
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("an instance id is 1–249 characters of a-z, A-Z, 0-9, `.`, `_` and `-` (a pod name, say)")
    }
}

pub fn check_topic(t: &str) -> Result<(), String> {
    if t.is_empty()
        || t.len() > 249
        || t == "."
        || t == ".."
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(format!(
            "`{t}` is not a Kafka topic name (1–249 letters, digits, `.`, `_`, `-`)"
        ));
    }
    Ok(())
}

fn http(entries: &[(Located, Located)], cfg: &mut HttpConfig, errors: &mut Errors) {
    for (k, v) in entries {
        let key = k.as_str().unwrap_or("");
        let path = format!("http.{key}");
        match key {
            "listen" => {
                if let Some(s) = scalar(v, &path, errors) {
                    match parse_listen(s) {
                        Ok(a) => cfg.listen = a,
                        Err(m) => errors.add(v.line, &path, m),
                    }
                }
            }
            _ => errors.unknown_key(k.line, key, HTTP_KEYS, "http"),
        }
    }
}

fn state(entries: &[(Located, Located)], cfg: &mut StateConfig, errors: &mut Errors) {
    for (k, v) in entries {
        let key = k.as_str().unwrap_or("");
        let path = format!("state.{key}");
        match key {
            "dir" => {
                if let Some(s) = scalar(v, &path, errors) {
                    if s.trim().is_empty() {
                        errors.add(v.line, &path, "the state dir cannot be empty (to turn durable state off, set state.interval: 0s)");
                    } else {
                        cfg.dir = s.into();
                    }
                }
            }
            "interval" => {
                if let Some(s) = scalar(v, &path, errors) {
                    match Span::parse(s) {
                        Ok(d) if d.0 == 0 || (Span::secs(1)..=Span::hours(1)).contains(&d) => {
                            cfg.interval = d
                        }
                        Ok(_) => errors.add(
                            v.line,
                            &path,
                            "must be between 1s and 1h (or 0s: no durable state)",
                        ),
                        Err(m) => errors.add(v.line, &path, m),
                    }
                }
            }
            _ => errors.unknown_key(k.line, key, STATE_KEYS, "state"),
        }
    }
}

fn gate(entries: &[(Located, Located)], file: &Path, cfg: &mut GateConfig, errors: &mut Errors) {
    for (k, v) in entries {
        let key = k.as_str().unwrap_or("");
        let path = format!("gate.{key}");
        match key {
            "policy" => {
                if let Some(s) = scalar(v, &path, errors) {
                    let p = Path::new(s);
                    cfg.policy = Some(if p.is_relative() {
                        file.parent().unwrap_or(Path::new(".")).join(p)
                    } else {
                        p.to_path_buf()
                    });
                }
            }
            _ => errors.unknown_key(k.line, key, GATE_KEYS, "gate"),
        }
    }
}

fn export(entries: &[(Located, Located)], cfg: &mut ExportConfig, errors: &mut Errors) {
    for (k, v) in entries {
        let key = k.as_str().unwrap_or("");
        let path = format!("export.{key}");
        match key {
            "compat" => {
                let items: Vec<&Located> = match &v.node {
                    Node::Seq(items) => items.iter().collect(),
                    Node::Null => Vec::new(),
                    _ => vec![v],
                };
                cfg.compat = Compat::default();
                for item in items {
                    match scalar(item, &path, errors) {
                        Some("sloth") => cfg.compat.sloth = true,
                        Some("pyrra") => cfg.compat.pyrra = true,
                        Some(other) => {
                            let hint = super::yaml::closest(other, COMPAT_TOOLS.iter().copied())
                                .map_or(String::new(), |c| format!("; did you mean `{c}`?"));
                            errors.add(
                                item.line,
                                &path,
                                format!(
                                    "`{other}`: slate emits the series of sloth and pyrra{hint}"
                                ),
                            );
                        }
                        None => {}
                    }
                }
            }
            _ => errors.unknown_key(k.line, key, EXPORT_KEYS, "export"),
        }
    }
}

/// An address to bind: `host:port` (`:9898` means every interface).
pub fn parse_listen(s: &str) -> Result<String, String> {
    let s = s.trim();
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    match full.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => Ok(full),
        _ => Err(format!(
            "`{s}` is not an address to listen on (e.g. 127.0.0.1:9898, 0.0.0.0:9898, :9898)"
        )),
    }
}

/// The zone of times written without one.
#[derive(Debug, Clone)]
pub enum Timezone {
    /// Seconds east of UTC.
    Fixed(i64),
    /// A tz database zone (`Europe/Paris`), with its daylight-saving rules.
    Named(String, jiff::tz::TimeZone),
}

impl PartialEq for Timezone {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Timezone::Fixed(a), Timezone::Fixed(b)) => a == b,
            (Timezone::Named(a, _), Timezone::Named(b, _)) => a == b,
            _ => false,
        }
    }
}

impl Timezone {
    /// The offset (seconds east of UTC) in force at a local wall-clock
    /// time, given as seconds since the epoch read as if it were UTC. In a
    /// gap or an overlap of a daylight-saving change, the earlier offset
    /// wins (RFC 5545's "compatible" rule).
    pub fn offset_at_local(&self, local_secs: i64) -> i64 {
        match self {
            Timezone::Fixed(o) => *o,
            Timezone::Named(_, tz) => {
                let (y, mo, d) = crate::model::civil_from_days(local_secs.div_euclid(86_400));
                let sod = local_secs.rem_euclid(86_400);
                let utc = jiff::civil::DateTime::new(
                    y as i16,
                    mo as i8,
                    d as i8,
                    (sod / 3600) as i8,
                    (sod / 60 % 60) as i8,
                    (sod % 60) as i8,
                    0,
                )
                .and_then(|dt| tz.to_ambiguous_timestamp(dt).compatible());
                utc.map_or(0, |t| local_secs - t.as_second())
            }
        }
    }
}

/// `UTC`, `Z`, a fixed offset (`+02:00`, `-0500`) or a tz database name
/// (`Europe/Paris`, with its daylight-saving rules).
pub fn parse_timezone(s: &str) -> Result<Timezone, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" || t.eq_ignore_ascii_case("gmt") {
        return Ok(Timezone::Fixed(0));
    }
    let bad = || {
        format!("`{t}`: give UTC, an offset such as +02:00 or -0500, or a zone name such as Europe/Paris")
    };
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => {
            return jiff::tz::TimeZone::get(t)
                .map(|tz| Timezone::Named(t.to_string(), tz))
                .map_err(|_| bad())
        }
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m): (i64, i64) = (
        digits[..2].parse().map_err(|_| bad())?,
        digits[2..].parse().map_err(|_| bad())?,
    );
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(Timezone::Fixed(sign * (h * 3600 + m * 60)))
}

/// `[1m, 5m, 1h]` or `"1m, 5m, 1h"`: 1 to 8 windows, whole multiples of
/// 10s up to 6h, kept sorted and without repeats.
fn quantile_windows(v: &Located) -> Result<Vec<Span>, String> {
    let items: Vec<String> = match &v.node {
        Node::Seq(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or("").to_string())
            .collect(),
        Node::Scalar(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
        _ => return Err("a list of windows, e.g. [1m, 5m, 1h]".into()),
    };
    let mut out = Vec::new();
    for item in &items {
        let w = Span::parse(item)?;
        if w < Span::secs(10) || w > Span::hours(6) || w.0 % Span::secs(10).0 != 0 {
            return Err(format!(
                "`{item}`: a quantile window is a multiple of 10s from 10s to 6h"
            ));
        }
        out.push(w);
    }
    out.sort();
    out.dedup();
    if out.is_empty() || out.len() > 8 {
        return Err("give 1 to 8 quantile windows".into());
    }
    Ok(out)
}

/// The evaluation step: whole seconds that divide an hour, so that ticks
/// fall on slot boundaries.
pub fn parse_eval_every(s: &str) -> Result<Span, String> {
    let d = Span::parse(s)?;
    if d < Span::secs(1)
        || d > Span::hours(1)
        || d.0 % Span::secs(1).0 != 0
        || Span::hours(1).0 % d.0 != 0
    {
        return Err(format!("`{s}`: the evaluation step must be whole seconds that divide an hour (1s, 10s, 1m, 5m)"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sets() {
        let s = StatusSet::parse("5xx,429").unwrap();
        assert!(s.contains(500) && s.contains(599) && s.contains(429));
        assert!(!s.contains(404) && !s.contains(200));
        assert!(StatusSet::parse("6xx").is_err());
        assert!(StatusSet::parse("42").is_err());
    }

    #[test]
    fn the_state_section() {
        let p = Path::new("slate.yml");
        let d = Config::default().state;
        assert_eq!(d.dir, Path::new("slate-data"));
        assert_eq!(d.interval, Span::secs(30));
        let ok = Config::parse(p, "state:\n  dir: /var/lib/slate\n  interval: 10s\n").unwrap();
        assert_eq!(ok.state.dir, Path::new("/var/lib/slate"));
        assert_eq!(ok.state.interval, Span::secs(10));
        assert!(!Config::parse(p, "state:\n  interval: 0s\n")
            .unwrap()
            .state
            .enabled());
        let errs = Config::parse(p, "state:\n  dir: ''\n  interval: 2h\n  dri: x\n")
            .unwrap_err()
            .0;
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].message.contains("cannot be empty"));
        assert!(errs[1].message.contains("between 1s and 1h"));
        assert!(errs[2].message.contains("dir"), "{}", errs[2].message);
    }

    #[test]
    fn kafka_state_topic_needs_one_input_topic_and_a_topic_of_its_own() {
        let ok = Config::parse(
            Path::new("slate.yml"),
            "kafka:\n  topics: [logs]\n  state_topic: slate-state\n",
        )
        .unwrap();
        assert_eq!(ok.kafka.state_topic.as_deref(), Some("slate-state"));
        assert_eq!(ok.kafka.check_state_topic(), Ok(()));
        let mut two = ok.kafka.clone();
        two.topics.push("more".into());
        let e = two.check_state_topic().unwrap_err();
        assert!(e.contains("exactly one input topic"), "{e}");
        let mut same = ok.kafka.clone();
        same.state_topic = Some("logs".into());
        let e = same.check_state_topic().unwrap_err();
        assert!(e.contains("a topic of its own"), "{e}");
        let errs = Config::parse(Path::new("slate.yml"), "kafka:\n  state_topic: \"a b\"\n")
            .unwrap_err()
            .0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].line, 2);
        assert_eq!(Config::default().kafka.check_state_topic(), Ok(()));
    }

    #[test]
    fn kafka_instance_id_and_history() {
        let ok = Config::parse(
            Path::new("slate.yml"),
            "kafka:\n  instance_id: slate-0\n  rebuild_window: 7d\n",
        )
        .unwrap();
        assert_eq!(ok.kafka.instance_id.as_deref(), Some("slate-0"));
        assert_eq!(ok.kafka.rebuild_window, Some(Span::days(7)));
        // By default the history read reaches as far as the longest period.
        assert_eq!(Config::default().kafka.rebuild_window, None);
        let errs = Config::parse(
            Path::new("slate.yml"),
            "kafka:\n  instance_id: slate 0\n  properties:\n    group.instance.id: x\n",
        )
        .unwrap_err()
        .0;
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!((errs[0].line, errs[1].line), (2, 4));
        assert!(
            errs[0].message.contains("a pod name"),
            "{}",
            errs[0].message
        );
        assert!(
            errs[1].message.contains("use kafka.instance_id"),
            "{}",
            errs[1].message
        );
    }

    #[test]
    fn config_sections_and_errors() {
        let text = "input:\n  format: nginx-json\n  fields:\n    latency: timing.total\n  error_statuses: 5xx,429\nengine:\n  max_servces: 5\nalerting:\n  eval_every: 7s\n";
        let errs = Config::parse(Path::new("slate.yml"), text).unwrap_err().0;
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].line, 7);
        assert!(errs[0].message.contains("did you mean `max_services`"));
        assert!(errs[1].message.contains("divide an hour"));
        let ok = Config::parse(
            Path::new("slate.yml"),
            &text
                .replace("max_servces", "max_services")
                .replace("7s", "10s"),
        )
        .unwrap();
        assert_eq!(ok.input.format, Format::NginxJson);
        assert_eq!(ok.input.fields.latency.as_deref(), Some("timing.total"));
        assert_eq!(ok.engine.max_services, 5);
        assert_eq!(ok.alerting.eval_every, Some(Span::secs(10)));
        assert_eq!(
            ok.engine.quantile_windows,
            [Span::mins(1), Span::mins(5), Span::hours(1)]
        );
        let q = Config::parse(
            Path::new("slate.yml"),
            "engine:\n  quantile_windows: [5m, 30s, 2h, 5m]\n",
        )
        .unwrap();
        assert_eq!(
            q.engine.quantile_windows,
            [Span::secs(30), Span::mins(5), Span::hours(2)]
        );
        let bad = Config::parse(Path::new("slate.yml"), "engine:\n  quantile_windows: 1d\n")
            .unwrap_err()
            .0;
        assert!(bad[0].message.contains("10s to 6h"), "{}", bad[0]);
    }

    #[test]
    fn export_compat_names_the_tools() {
        let c = Config::parse(
            Path::new("slate.yml"),
            "export:\n  compat: [sloth, pyrra]\n",
        )
        .unwrap();
        assert_eq!(
            c.export.compat,
            Compat {
                sloth: true,
                pyrra: true
            }
        );
        let one = Config::parse(Path::new("slate.yml"), "export:\n  compat: pyrra\n").unwrap();
        assert!(one.export.compat.pyrra && !one.export.compat.sloth);
        assert_eq!(Config::default().export.compat, Compat::default());
        let bad = Config::parse(
            Path::new("slate.yml"),
            "export:\n  compat: [slooth]\n  compt: []\n",
        )
        .unwrap_err()
        .0;
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].message.contains("did you mean `sloth`"),
            "{}",
            bad[0]
        );
        assert_eq!((bad[0].line, bad[1].line), (2, 3));
        assert!(
            bad[1].message.contains("did you mean `compat`"),
            "{}",
            bad[1]
        );
    }
}
