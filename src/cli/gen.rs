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
use crate::spec::config::{Format, InputConfig};

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
Example:\n  slate gen --duration 1d --rate 20 --incident errors:api-gateway:6h+30m:0.2 --out day.jsonl.gz"
)]
pub struct GenArgs {
    /// Number of services
    #[arg(long, default_value_t = 3)]
    services: usize,
    /// Length of the traffic (e.g. 1h, 1d, 30d)
    #[arg(long, default_value = "1h")]
    duration: String,
    /// Events per second per service (batch-processor sends a tenth)
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Inject an incident (repeatable)
    #[arg(long, value_name = "SPEC")]
    incident: Vec<String>,
    /// Random seed: the same flags and seed give the same bytes
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First timestamp: RFC 3339, `now` or `now-1h`
    #[arg(long, default_value = DEFAULT_START)]
    start: String,
    /// Log format to write: any that replay reads but auto
    #[arg(long, default_value = "json")]
    format: String,
    /// For nginx/apache: the layout to write (log_format / LogFormat string,
    /// or combined, main, common); replay it with the same --log-format
    #[arg(long, value_name = "S")]
    log_format: Option<String>,
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
    let duration = Span::parse(&a.duration).map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
    if duration.0 <= 0 {
        bail!("--duration must be above zero");
    }
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        bail!("--rate must be a positive number of events per second");
    }
    let start = start_at(&a.start)?;
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
    };
    if let (Some(brokers), Some(topic)) = (&a.kafka, &a.topic) {
        let brokers = crate::spec::config::parse_brokers(brokers)
            .map_err(|e| anyhow::anyhow!("--kafka: {e}"))?;
        crate::spec::config::check_topic(topic).map_err(|e| anyhow::anyhow!("--topic: {e}"))?;
        let mut sink = crate::gen::kafka::KafkaSink::new(&brokers, topic, format)?;
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
