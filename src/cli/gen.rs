//! `slate gen`: deterministic synthetic traffic with injected incidents.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use flate2::write::GzEncoder;

use crate::decode::TextDecoder;
use crate::gen::{generate, service_name, GenOptions, Incident, Writer, DEFAULT_START};
use crate::model::{parse_instant, Span};
use crate::spec::config::{Envelope, Format, InputConfig};

#[derive(Args, Debug)]
#[command(
    after_help = "Incidents are KIND:SERVICE:START+DURATION[:PARAM], START counted from --start:\n  \
errors:api-gateway:2h+20m:0.3     30% of requests fail for 20 minutes\n  \
slow:user-service:1h+10m:8        latency ×8\n  \
stall:batch-processor:3h+2h       no events at all (freshness)\n  \
malformed:api-gateway:0s+1h:0.01  1% of lines are bad, of every rejection kind\n  \
disorder:user-service:0s+1h:1m    timestamps jittered by up to ±30s\n\
SERVICE may be `*` for all services. Services are named api-gateway, user-service, batch-processor,\n\
then svc-0003, svc-0004, ...\n\n\
Examples:\n  slate gen --duration 1d --rate 20 --incident errors:api-gateway:6h+30m:0.2 --out day.jsonl.gz\n\n\
A live load for a demo, sent as the clock goes, with an incident every 30 minutes:\n  \
slate gen --kafka localhost:9092 --topic access-logs --follow \\\n      \
--incident errors:api-gateway:2m+5m:0.3 --repeat-incidents 30m"
)]
pub struct GenArgs {
    /// Number of services
    #[arg(long, default_value_t = 3)]
    services: usize,
    /// Length of the traffic (e.g. 1h, 1d, 30d) [default: 1h; with --follow, forever]
    #[arg(long, value_name = "D")]
    duration: Option<String>,
    /// Events per second per service (batch-processor sends a tenth)
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Inject an incident (repeatable)
    #[arg(long, value_name = "SPEC")]
    incident: Vec<String>,
    /// Every incident recurs with this period, from its own start (e.g. 30m)
    #[arg(long, value_name = "D")]
    repeat_incidents: Option<String>,
    /// Live load: send each event when the clock reaches its time, starting
    /// now, until --duration (or forever)
    #[arg(long)]
    follow: bool,
    /// Random seed: the same flags and seed give the same bytes
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First timestamp: RFC 3339, `now` or `now-1h` [default: 2026-11-01T00:00:00Z; with --follow, now]
    #[arg(long, value_name = "T")]
    start: Option<String>,
    /// Log format to write: any that replay reads but auto
    #[arg(long, default_value = "json")]
    format: String,
    /// For nginx/apache: the layout to write (log_format / LogFormat string,
    /// or combined, main, common); replay it with the same --log-format
    #[arg(long, value_name = "S")]
    log_format: Option<String>,
    /// Wrap each line as a pipeline delivers it: none, docker, cri, filebeat,
    /// vector, fluent-bit, otlp-json (eight records a request) or syslog;
    /// replay it with the same --envelope
    #[arg(long, value_name = "E", default_value = "none")]
    envelope: String,
    /// Write to FILE (gzip when it ends in .gz) instead of stdout
    #[arg(long, value_name = "FILE", conflicts_with = "kafka")]
    out: Option<PathBuf>,
    /// Produce to Kafka instead (host:port,...), one message per line,
    /// keyed by service
    #[arg(long, value_name = "BROKERS", requires = "topic")]
    kafka: Option<String>,
    /// The topic to produce to (with --kafka)
    #[arg(long, value_name = "T", requires = "kafka")]
    topic: Option<String>,
}

/// `--start`: an instant, `now`, or `now-DURATION`.
fn start_at(text: &str) -> Result<crate::model::Micros> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("now") {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        let now = now - now % 1000;
        return match rest.strip_prefix('-') {
            None if rest.is_empty() => Ok(now),
            Some(d) => Ok(now
                - Span::parse(d)
                    .map_err(|e| anyhow::anyhow!("--start: {e}"))?
                    .0),
            None => bail!("--start `{t}`: write now, now-1h, or an RFC 3339 time"),
        };
    }
    parse_instant(t).map_err(|e| anyhow::anyhow!("--start: {e}"))
}

pub fn run(a: GenArgs) -> Result<ExitCode> {
    let format = Format::parse(&a.format).map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    let envelope = match Envelope::parse(&a.envelope) {
        Ok(Envelope::Auto) => bail!("--envelope auto: gen writes one envelope; name it"),
        Ok(e) => e,
        Err(e) => bail!("--envelope: {e}"),
    };
    let writer = match format {
        Format::Json => Writer::Json,
        Format::Haproxy => Writer::Haproxy,
        Format::Alb => Writer::Alb,
        Format::Elb => Writer::Elb,
        Format::W3c => Writer::W3c,
        Format::NginxJson => Writer::NginxJson,
        Format::EnvoyJson => Writer::EnvoyJson,
        Format::Ecs => Writer::Ecs,
        Format::Traefik => Writer::Traefik,
        Format::Caddy => Writer::Caddy,
        f if f.is_text() => {
            let cfg = InputConfig {
                format: f,
                log_format: a.log_format.clone(),
                // A layout without a service is fine to write; replaying it
                // needs --service.
                default_service: Some("-".into()),
                ..InputConfig::default()
            };
            Writer::Layout(
                TextDecoder::new(&cfg).map_err(|e| anyhow::anyhow!("--log-format: {e}"))?,
            )
        }
        other => bail!(
            "--format {other:?}: gen writes json, nginx, apache, envoy, haproxy, alb, elb or w3c"
        ),
    };
    if a.log_format.is_some() && !matches!(writer, Writer::Layout(_)) {
        bail!("--log-format needs --format nginx, apache or envoy");
    }
    let duration = match (&a.duration, a.follow) {
        (Some(d), _) => Span::parse(d).map_err(|e| anyhow::anyhow!("--duration: {e}"))?,
        // Forever, as far as anyone will run it (about 290 years).
        (None, true) => Span(i64::MAX / 1000),
        (None, false) => Span::hours(1),
    };
    if duration.0 <= 0 {
        bail!("--duration must be above zero");
    }
    let repeat = match &a.repeat_incidents {
        None => None,
        Some(r) => match Span::parse(r) {
            Ok(s) if s.0 > 0 => Some(s),
            Ok(_) => bail!("--repeat-incidents must be above zero"),
            Err(e) => bail!("--repeat-incidents: {e}"),
        },
    };
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        bail!("--rate must be a positive number of events per second");
    }
    let start = match (&a.start, a.follow) {
        (Some(s), false) => start_at(s)?,
        (None, false) => start_at(DEFAULT_START)?,
        (None, true) => start_at("now")?,
        (Some(s), true) => {
            let t = start_at(s)?;
            // Past events would all go at once; future ones wait.
            if t < start_at("now-1m")? {
                bail!("--follow sends events as the clock reaches them: give --start now (the default) or a later time");
            }
            t
        }
    };
    let names: Vec<String> = (0..a.services).map(service_name).collect();
    let mut incidents = Vec::new();
    for spec in &a.incident {
        let inc = Incident::parse(spec).map_err(|e| anyhow::anyhow!("--incident {e}"))?;
        if inc.service != "*" && !names.contains(&inc.service) {
            bail!(
                "--incident `{spec}`: no service `{}` among the {} generated ({}{})",
                inc.service,
                a.services,
                names.iter().take(4).cloned().collect::<Vec<_>>().join(", "),
                if names.len() > 4 { ", ..." } else { "" }
            );
        }
        incidents.push(inc);
    }
    let opts = GenOptions {
        services: a.services,
        duration,
        rate: a.rate,
        incidents,
        seed: a.seed,
        start,
        writer,
        repeat,
        follow: a.follow,
        envelope,
    };
    if let (Some(brokers), Some(topic)) = (&a.kafka, &a.topic) {
        let brokers = crate::spec::config::parse_brokers(brokers)
            .map_err(|e| anyhow::anyhow!("--kafka: {e}"))?;
        crate::spec::config::check_topic(topic).map_err(|e| anyhow::anyhow!("--topic: {e}"))?;
        let mut sink = crate::gen::kafka::KafkaSink::new(&brokers, topic, format, envelope)?;
        let n = generate(&opts, &mut sink)?;
        let failed = sink.finish()?;
        if failed > 0 {
            bail!("{failed} of {n} messages could not be delivered to {topic} at {brokers}");
        }
        eprintln!("slate: produced {n} messages to {topic} at {brokers}");
        return Ok(ExitCode::SUCCESS);
    }
    match &a.out {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let gz = path.extension().is_some_and(|e| e == "gz");
            let n = if gz {
                let mut w = GzEncoder::new(BufWriter::new(file), flate2::Compression::new(6));
                let n = generate(&opts, &mut w)?;
                w.finish()?.flush()?;
                n
            } else {
                let mut w = BufWriter::new(file);
                let n = generate(&opts, &mut w)?;
                w.flush()?;
                n
            };
            eprintln!("slate: wrote {n} lines to {}", path.display());
        }
        None => {
            let stdout = io::stdout();
            let mut w = BufWriter::new(stdout.lock());
            match generate(&opts, &mut w).and_then(|_| w.flush()) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
