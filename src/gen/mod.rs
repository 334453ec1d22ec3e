//! `slate gen`: deterministic synthetic traffic with injected incidents,
//! for fixtures, demos and benchmarks. The same flags give the same bytes:
//! the random source is a fixed SplitMix64, not an external crate whose
//! streams may change between versions.

pub mod kafka;

use std::io::{self, Write};

use crate::decode::text::{Render, TextDecoder};
use crate::model::{format_rfc3339, parse_instant, Micros, Span, MICROS_PER_SEC};
use crate::spec::config::Envelope;

pub const DEFAULT_START: &str = "2026-11-01T00:00:00Z";
const SEED_SERVICES: [&str; 3] = ["api-gateway", "user-service", "batch-processor"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IncidentKind {
    /// A share PARAM of requests fail (default 0.5).
    Errors(f64),
    /// Latency × PARAM (default 10).
    Slow(f64),
    /// No events at all: a stuck batch job.
    Stall,
    /// A share PARAM of lines are malformed (default 0.1).
    Malformed(f64),
    /// Timestamps jittered by up to ±PARAM/2 (default 30s).
    Disorder(Span),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub kind: IncidentKind,
    pub service: String,
    /// Offset from the start of the traffic.
    pub start: Span,
    pub duration: Span,
}

impl Incident {
    /// Parses `KIND:SERVICE:START+DURATION[:PARAM]`, e.g. `errors:api:2h+20m:0.3`.
    pub fn parse(spec: &str) -> Result<Incident, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let usage = || {
            format!("`{spec}`: an incident is KIND:SERVICE:START+DURATION[:PARAM], e.g. errors:api-gateway:2h+20m:0.3")
        };
        if parts.len() < 3 || parts.len() > 4 {
            return Err(usage());
        }
        let (start, duration) = parts[2].split_once('+').ok_or_else(usage)?;
        let start = Span::parse(start).map_err(|e| format!("`{spec}`: start {e}"))?;
        let duration = Span::parse(duration).map_err(|e| format!("`{spec}`: duration {e}"))?;
        let param = parts.get(3).copied();
        let ratio = |default: f64| -> Result<f64, String> {
            match param {
                None => Ok(default),
                Some(p) => match p.parse::<f64>() {
                    Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
                    _ => Err(format!("`{spec}`: PARAM must be a share between 0 and 1")),
                },
            }
        };
        let kind = match parts[0] {
            "errors" => IncidentKind::Errors(ratio(0.5)?),
            "malformed" => IncidentKind::Malformed(ratio(0.1)?),
            "slow" => IncidentKind::Slow(match param {
                None => 10.0,
                Some(p) => p
                    .parse::<f64>()
                    .ok()
                    .filter(|v| *v > 0.0 && v.is_finite())
                    .ok_or_else(|| format!("`{spec}`: PARAM must be a latency factor above 0"))?,
            }),
            "stall" => IncidentKind::Stall,
            "disorder" => IncidentKind::Disorder(match param {
                None => Span::secs(30),
                Some(p) => Span::parse(p).map_err(|e| format!("`{spec}`: jitter {e}"))?,
            }),
            other => {
                return Err(format!(
                    "`{spec}`: unknown incident kind `{other}` (errors, slow, stall, malformed, disorder)"
                ))
            }
        };
        Ok(Incident {
            kind,
            service: parts[1].to_string(),
            start,
            duration,
        })
    }
}

#[derive(Debug, Clone)]
pub struct GenOptions {
    pub services: usize,
    pub duration: Span,
    /// Events per second per service.
    pub rate: f64,
    pub incidents: Vec<Incident>,
    pub seed: u64,
    pub start: Micros,
    /// The log format to write.
    pub writer: Writer,
    /// Every incident recurs with this period (from its own start).
    pub repeat: Option<Span>,
    /// Write each event when the wall clock reaches its time (a live load
    /// generator), flushing as it goes.
    pub follow: bool,
    /// The envelope each line is wrapped in, as a pipeline would deliver it.
    pub envelope: Envelope,
}

/// How `gen` writes an event: JSON lines, a compiled nginx/Apache/Envoy
/// layout, or one of the fixed formats, each readable by its decoder.
#[derive(Debug, Clone, Default)]
pub enum Writer {
    #[default]
    Json,
    Layout(TextDecoder),
    Haproxy,
    Alb,
    Elb,
    /// IIS flavour: `time-taken` in ms.
    W3c,
    /// The JSON shapes of other tools, as their presets read them.
    NginxJson,
    EnvoyJson,
    Ecs,
    Traefik,
    Caddy,
}

impl Writer {
    fn header(&self) -> &'static str {
        match self {
            Writer::W3c => "#Software: slate gen\n#Version: 1.0\n#Fields: date time s-sitename cs-method cs-uri-stem sc-status time-taken\n",
            _ => "",
        }
    }

    fn write(&self, r: &Render, out: &mut String) {
        use std::fmt::Write as _;
        let stamp = format_rfc3339(r.ts);
        let secs = r.latency_us as f64 / 1e6;
        let ms = (r.latency_us + 500) / 1000;
        let _ = match self {
            Writer::Json => Ok(()),
            Writer::Layout(layout) => {
                layout.render(r, out);
                Ok(())
            }
            Writer::Haproxy => {
                let clf = crate::decode::text::format_clf(r.ts);
                write!(
                    out,
                    r#"{} {:>2} {} gen haproxy[1]: 10.0.0.1:40000 [{}.{}] fe {}/srv1 0/0/1/{ms}/{ms} {} 512 - - ---- 1/1/1/1/0 0/0 "{} {} HTTP/1.1""#,
                    &clf[3..6],
                    stamp[8..10].trim_start_matches('0'),
                    &stamp[11..19],
                    &clf[..20],
                    &stamp[20..23],
                    r.service,
                    r.status,
                    r.method,
                    r.path
                )
            }
            Writer::Alb => write!(
                out,
                r#"http {stamp} app/gen/0 10.0.0.1:40000 10.0.1.1:80 0.000 {secs:.6} 0.000 {s} {s} 100 512 "{m} http://{svc}:80{p} HTTP/1.1" "slate-gen" - - arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/{svc}/0 "Root=1-0" "-" "-" 0 {stamp} "forward" "-" "-" "10.0.1.1:80" "{s}" "-" "-""#,
                s = r.status,
                m = r.method,
                svc = r.service,
                p = r.path
            ),
            Writer::Elb => write!(
                out,
                r#"{stamp} {} 10.0.0.1:40000 10.0.1.1:80 0.000 {secs:.6} 0.000 {s} {s} 100 512 "{} http://x:80{} HTTP/1.1" "slate-gen" - -"#,
                r.service,
                r.method,
                r.path,
                s = r.status
            ),
            Writer::NginxJson => write!(
                out,
                r#"{{"time_iso8601":"{}+00:00","host":"{}","request_uri":"{}","request_method":"{}","status":"{}","request_time":"{secs:.3}"}}"#,
                &stamp[..19],
                r.service,
                r.path,
                r.method,
                r.status
            ),
            Writer::EnvoyJson => write!(
                out,
                r#"{{"start_time":"{stamp}","method":"{}","path":"{}","response_code":{},"duration":{ms},"upstream_cluster":"{}"}}"#,
                r.method, r.path, r.status, r.service
            ),
            Writer::Ecs => write!(
                out,
                r#"{{"@timestamp":"{stamp}","service":{{"name":"{}"}},"url":{{"path":"{}"}},"http":{{"request":{{"method":"{}"}},"response":{{"status_code":{}}}}},"event":{{"duration":{}}}}}"#,
                r.service,
                r.path,
                r.method,
                r.status,
                r.latency_us * 1000
            ),
            Writer::Traefik => write!(
                out,
                r#"{{"StartUTC":"{stamp}","RequestMethod":"{}","RequestPath":"{}","DownstreamStatus":{},"Duration":{},"ServiceName":"{}","level":"info","msg":""}}"#,
                r.method,
                r.path,
                r.status,
                r.latency_us * 1000,
                r.service
            ),
            Writer::Caddy => write!(
                out,
                r#"{{"level":"info","ts":{}.{:06},"logger":"http.log.access","msg":"handled request","request":{{"method":"{}","host":"{}","uri":"{}"}},"duration":{secs:.6},"status":{}}}"#,
                r.ts.div_euclid(MICROS_PER_SEC),
                r.ts.rem_euclid(MICROS_PER_SEC),
                r.method,
                r.service,
                r.path,
                r.status
            ),
            Writer::W3c => write!(
                out,
                "{} {} {} {} {} {} {ms}",
                &stamp[..10],
                &stamp[11..23],
                r.service,
                r.method,
                r.path,
                r.status
            ),
        };
    }
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            services: 3,
            duration: Span::hours(1),
            rate: 10.0,
            incidents: Vec::new(),
            seed: 1,
            start: parse_instant(DEFAULT_START).expect("static"),
            writer: Writer::Json,
            repeat: None,
            follow: false,
            envelope: Envelope::None,
        }
    }
}

/// SplitMix64: small, fast, and fixed forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-300);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

pub fn service_name(i: usize) -> String {
    SEED_SERVICES
        .get(i)
        .map_or_else(|| format!("svc-{i:04}"), |s| s.to_string())
}

/// How a service behaves when nothing is wrong.
struct Profile {
    name: String,
    /// Mean gap between events, µs.
    gap_us: f64,
    error_p: f64,
    median_ms: f64,
    sigma: f64,
    batch: bool,
}

fn profile(i: usize, rate: f64) -> Profile {
    let name = service_name(i);
    let batch = name == "batch-processor";
    let (error_p, median_ms, sigma) = match i {
        0 => (0.0003, 25.0, 0.6),
        1 => (0.001, 80.0, 0.5),
        2 => (0.002, 20_000.0, 0.4),
        _ => (
            0.0005 + (i % 7) as f64 * 0.0002,
            10.0 + (i % 11) as f64 * 5.0,
            0.55,
        ),
    };
    // A batch job reports a run every few seconds at most.
    let rate = if batch {
        (rate / 10.0).max(1.0 / 60.0)
    } else {
        rate
    };
    Profile {
        name,
        gap_us: MICROS_PER_SEC as f64 / rate.max(1e-6),
        error_p,
        median_ms,
        sigma,
        batch,
    }
}

/// Writes the traffic as JSON lines. Returns the number of lines written.
pub fn generate(opts: &GenOptions, out: &mut dyn Write) -> io::Result<u64> {
    let profiles: Vec<Profile> = (0..opts.services).map(|i| profile(i, opts.rate)).collect();
    let mut rng = Rng::new(opts.seed);
    let end = opts.start + opts.duration.0;
    // Next event time per service; a linear scan finds the earliest, which
    // is fast enough for the service counts gen is used with.
    let mut next: Vec<f64> = profiles
        .iter()
        .map(|p| opts.start as f64 + rng.f64() * p.gap_us)
        .collect();
    let active = |svc: &str, t: Micros, want: &dyn Fn(&IncidentKind) -> bool| {
        opts.incidents.iter().find(|inc| {
            let since = t - opts.start - inc.start.0;
            let since = match opts.repeat {
                Some(r) if since >= 0 => since % r.0.max(1),
                _ => since,
            };
            (inc.service == svc || inc.service == "*")
                && want(&inc.kind)
                && since >= 0
                && since < inc.duration.0
        })
    };
    let mut lines = 0u64;
    let mut wrapped = String::with_capacity(512);
    let mut otlp: Vec<(String, Micros, &str)> = Vec::new();
    for h in opts.writer.header().lines() {
        wrapped.clear();
        wrap(opts.envelope, h, opts.start, "-", lines, &mut wrapped);
        out.write_all(wrapped.as_bytes())?;
    }
    let mut malformed_kind = 0usize;
    let mut line = String::with_capacity(256);
    while let Some((i, &t)) = next.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)) {
        let ts = t as Micros;
        if ts >= end {
            break;
        }
        let p = &profiles[i];
        next[i] = t + -p.gap_us * (1.0 - rng.f64()).ln();
        if active(&p.name, ts, &|k| matches!(k, IncidentKind::Stall)).is_some() {
            continue;
        }
        let mut error_p = p.error_p;
        if let Some(inc) = active(&p.name, ts, &|k| matches!(k, IncidentKind::Errors(_))) {
            if let IncidentKind::Errors(share) = inc.kind {
                error_p = share;
            }
        }
        let mut latency_ms = p.median_ms * (p.sigma * rng.normal()).exp();
        if let Some(inc) = active(&p.name, ts, &|k| matches!(k, IncidentKind::Slow(_))) {
            if let IncidentKind::Slow(f) = inc.kind {
                latency_ms *= f;
            }
        }
        let error = rng.f64() < error_p;
        let mut written_ts = ts;
        if let Some(inc) = active(&p.name, ts, &|k| matches!(k, IncidentKind::Disorder(_))) {
            if let IncidentKind::Disorder(j) = inc.kind {
                written_ts += ((rng.f64() - 0.5) * j.0 as f64) as Micros;
            }
        }
        let stamp = format_rfc3339(written_ts);
        line.clear();
        use std::fmt::Write as _;
        let status = if p.batch {
            if error {
                500
            } else {
                200
            }
        } else if error {
            [500, 502, 503, 504][(rng.next_u64() % 4) as usize]
        } else {
            [200, 200, 200, 201, 204, 304, 404][(rng.next_u64() % 7) as usize]
        };
        // Batch jobs draw no endpoint, so their JSON stays as it was.
        let (method, endpoint) = if p.batch {
            ("POST", "/batch")
        } else {
            [
                ("GET", "/v1/items"),
                ("GET", "/v1/users"),
                ("POST", "/v1/orders"),
                ("GET", "/healthz"),
            ][(rng.next_u64() % 4) as usize]
        };
        if !matches!(opts.writer, Writer::Json) {
            opts.writer.write(
                &Render {
                    ts: written_ts,
                    service: &p.name,
                    status,
                    latency_us: (latency_ms * 1000.0).round() as u64,
                    method,
                    path: endpoint,
                },
                &mut line,
            );
        } else if p.batch {
            let _ = write!(
                line,
                r#"{{"ts":"{stamp}","service":"{}","success":{},"latency_ms":{latency_ms:.3}}}"#,
                p.name, !error
            );
        } else {
            let _ = write!(
                line,
                r#"{{"ts":"{stamp}","service":"{}","endpoint":"{endpoint}","method":"{method}","status":{status},"latency_ms":{latency_ms:.3}}}"#,
                p.name
            );
        }
        if let Some(inc) = active(&p.name, ts, &|k| matches!(k, IncidentKind::Malformed(_))) {
            if let IncidentKind::Malformed(share) = inc.kind {
                if rng.f64() < share {
                    malformed_kind += 1;
                    line = malformed(&line, &stamp, &p.name, malformed_kind);
                }
            }
        }
        if opts.follow {
            wait_until(ts, out)?;
        }
        lines += 1;
        if opts.envelope == Envelope::OtlpJson {
            // Eight records a request, as a collector batches them.
            otlp.push((line.clone(), written_ts, &p.name));
            if otlp.len() == OTLP_BATCH || opts.follow {
                write_otlp(&mut otlp, out)?;
            }
            continue;
        }
        wrapped.clear();
        wrap(
            opts.envelope,
            &line,
            written_ts,
            &p.name,
            lines,
            &mut wrapped,
        );
        out.write_all(wrapped.as_bytes())?;
    }
    write_otlp(&mut otlp, out)?;
    Ok(lines)
}

/// Records in one OTLP request that `gen` writes.
const OTLP_BATCH: usize = 8;

/// Writes `line` (no newline) as `envelope` wraps it, newline included.
/// The envelope's time is the event's; `n` picks which CRI lines are
/// split into partials.
fn wrap(envelope: Envelope, line: &str, ts: Micros, service: &str, n: u64, out: &mut String) {
    use std::fmt::Write as _;
    let js = |s: &str| serde_json::to_string(s).expect("a string");
    let stamp = format_rfc3339(ts);
    match envelope {
        Envelope::None | Envelope::Auto => out.push_str(line),
        Envelope::Docker => {
            let _ = write!(
                out,
                r#"{{"log":{},"stream":"stdout","time":"{}"}}"#,
                js(&format!("{line}\n")),
                stamp
            );
        }
        Envelope::Cri => {
            // One line in five arrives in three parts (gen's lines are
            // ASCII: any byte is a place to cut).
            if n.is_multiple_of(5) && line.len() >= 3 {
                let (a, rest) = line.as_bytes().split_at(line.len() / 3);
                let (b, c) = rest.split_at(rest.len() / 2);
                for (tag, part) in [("P", a), ("P", b), ("F", c)] {
                    let _ = write!(out, "{stamp} stdout {tag} ");
                    out.push_str(&String::from_utf8_lossy(part));
                    out.push('\n');
                }
                out.pop();
            } else {
                let _ = write!(out, "{stamp} stdout F {line}");
            }
        }
        Envelope::Filebeat => {
            let _ = write!(
                out,
                r#"{{"@timestamp":"{stamp}","message":{},"agent":{{"type":"filebeat"}},"kubernetes":{{"container":{{"name":{}}}}}}}"#,
                js(line),
                js(service)
            );
        }
        Envelope::Vector => {
            let _ = write!(
                out,
                r#"{{"message":{},"source_type":"kubernetes_logs","timestamp":"{stamp}","kubernetes":{{"container_name":{}}}}}"#,
                js(line),
                js(service)
            );
        }
        Envelope::FluentBit => {
            let _ = write!(
                out,
                r#"[{}.{:06},{{"log":{},"stream":"stdout","kubernetes":{{"container_name":{}}}}}]"#,
                ts.div_euclid(MICROS_PER_SEC),
                ts.rem_euclid(MICROS_PER_SEC),
                js(&format!("{line}\n")),
                js(service)
            );
        }
        Envelope::OtlpJson => {
            let mut batch = vec![(line.to_string(), ts, service)];
            let mut buf = Vec::new();
            let _ = write_otlp(&mut batch, &mut buf);
            out.push_str(std::str::from_utf8(&buf).expect("JSON").trim_end());
        }
        Envelope::Syslog => {
            // RFC 5424, local0.info, as nginx's `access_log syslog:` or
            // rsyslog's forwarding writes it.
            let _ = write!(out, "<134>1 {stamp} web-1 {service} - - - {line}");
        }
    }
    out.push('\n');
}

/// One OTLP/JSON logs request of the records in `batch` (emptied), each
/// service its resource, written as a line.
fn write_otlp(batch: &mut Vec<(String, Micros, &str)>, out: &mut dyn Write) -> io::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut resources: Vec<(&str, Vec<serde_json::Value>)> = Vec::new();
    for (line, ts, service) in batch.iter() {
        let rec = serde_json::json!({
            "timeUnixNano": (ts * 1000).to_string(),
            "observedTimeUnixNano": (ts * 1000 + 1_000).to_string(),
            "severityText": "INFO",
            "body": {"stringValue": line},
            "attributes": [{"key": "log.iostream", "value": {"stringValue": "stdout"}}],
        });
        match resources.iter_mut().find(|(s, _)| s == service) {
            Some((_, recs)) => recs.push(rec),
            None => resources.push((service, vec![rec])),
        }
    }
    let req = serde_json::json!({
        "resourceLogs": resources.into_iter().map(|(service, recs)| serde_json::json!({
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeLogs": [{"scope": {"name": "filelog"}, "logRecords": recs}],
        })).collect::<Vec<_>>(),
    });
    batch.clear();
    let mut text = req.to_string();
    text.push('\n');
    out.write_all(text.as_bytes())
}

/// Sleeps until the wall clock reaches `ts` (a few milliseconds early is
/// close enough), flushing what was written before it sleeps.
fn wait_until(ts: Micros, out: &mut dyn Write) -> io::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    if ts - now > 5_000 {
        out.flush()?;
        std::thread::sleep(std::time::Duration::from_micros((ts - now) as u64));
    }
    Ok(())
}

/// A bad line of one of the kinds a real pipeline produces.
fn malformed(good: &str, stamp: &str, service: &str, n: usize) -> String {
    match n % 7 {
        0 => good[..good.len() / 2].to_string(),
        1 => format!(r#"{{"ts":"{stamp}","status":200,"latency_ms":3.0}}"#),
        2 => format!(r#"{{"ts":"{stamp}","service":"{service}","status":true}}"#),
        3 => format!(r#"{{"ts":"not-a-time","service":"{service}","status":200}}"#),
        4 => format!(r#"{{"ts":"{stamp}","service":"{service}","status":200,"latency_ms":-5}}"#),
        5 => format!(r#"{{"ts":"{stamp}","service":"{service}","status":"OK"}}"#),
        _ => format!(r#"["{service}",200]"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incidents_parse() {
        let i = Incident::parse("errors:api-gateway:2h+20m:0.3").unwrap();
        assert_eq!(i.kind, IncidentKind::Errors(0.3));
        assert_eq!((i.start, i.duration), (Span::hours(2), Span::mins(20)));
        assert_eq!(
            Incident::parse("stall:batch-processor:1h+3h").unwrap().kind,
            IncidentKind::Stall
        );
        assert!(Incident::parse("oops:a:1h+1m")
            .unwrap_err()
            .contains("unknown incident kind"));
        assert!(Incident::parse("errors:a:1h")
            .unwrap_err()
            .contains("KIND:SERVICE"));
        assert!(Incident::parse("errors:a:1h+1m:3")
            .unwrap_err()
            .contains("between 0 and 1"));
    }

    #[test]
    fn incidents_repeat_with_their_period() {
        let opts = GenOptions {
            services: 1,
            duration: Span::mins(30),
            rate: 20.0,
            incidents: vec![Incident::parse("errors:api-gateway:1m+2m:1.0").unwrap()],
            repeat: Some(Span::mins(10)),
            ..GenOptions::default()
        };
        let mut text = Vec::new();
        generate(&opts, &mut text).unwrap();
        // Per minute of traffic: share of failed requests.
        let mut per_min = [(0u32, 0u32); 30];
        for line in String::from_utf8(text).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let ts = crate::model::parse_rfc3339(v["ts"].as_str().unwrap().as_bytes()).unwrap();
            let m = ((ts - opts.start) / 60_000_000) as usize;
            per_min[m].1 += 1;
            if v["status"].as_u64().unwrap() >= 500 {
                per_min[m].0 += 1;
            }
        }
        for (m, (bad, all)) in per_min.iter().enumerate() {
            let in_incident = matches!(m % 10, 1 | 2);
            if in_incident {
                assert_eq!(bad, all, "minute {m}: every request fails");
            } else {
                assert!(*bad * 10 < *all, "minute {m}: {bad} of {all}");
            }
        }
    }

    #[test]
    fn same_flags_same_bytes() {
        let opts = GenOptions {
            duration: Span::mins(5),
            incidents: vec![Incident::parse("malformed:api-gateway:1m+1m:0.5").unwrap()],
            ..GenOptions::default()
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let n = generate(&opts, &mut a).unwrap();
        generate(&opts, &mut b).unwrap();
        assert_eq!(a, b);
        assert!(n > 5000, "{n} lines");
    }
}
