//! Command-line interface: one file per command. Arguments are parsed in
//! two stages: clap's raw flags, then validated options for the library.

mod check;
mod gate;
mod gen;
mod replay;
mod review;
mod run;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::spec::{Config, SloSpec};

#[derive(Parser, Debug)]
#[command(
    name = "slate",
    version,
    about = "A streaming SLI engine: SLO attainment, error budgets, burn rates and multi-window multi-burn-rate alerts from access logs",
    long_about = "slate reads access-log events (JSON lines and the common web-server formats), from files or Kafka, keeps per-service latency histograms \
and time-windowed counters, and computes latency p50/p95/p99, error rate, throughput, availability, freshness, \
SLO attainment, error budgets, burn rates and Google SRE multi-window multi-burn-rate alerts.\n\n\
Start with a backtest on the bundled fixture:\n\n  \
slate replay --slo fixtures/service-slos.yml fixtures/incidents.jsonl.gz",
    after_help = "Exit codes: 0 success, 2 error (bad flags, unreadable files, invalid configuration)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// What slate logs on stderr: a level (error, warn, info, debug) or targets (kafka, state,
    /// http, spec, slate), e.g. kafka=debug,info [default: RUST_LOG, else info]
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    /// How slate logs: text lines, or JSON lines (one object each, for Kubernetes and log
    /// shippers). Not --log-format, which names the access-log layout slate reads
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        value_name = "text|json"
    )]
    log_output: crate::logs::LogFormat,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Backtest SLOs over recorded access logs: "how reliable were we?"
    Replay(replay::ReplayArgs),
    /// Run live: consume access logs from Kafka, serve Prometheus metrics and a JSON API
    Run(run::RunArgs),
    /// Deploy gate: judge a policy against a running slate or a report; exit 0 allow, 1 block, 2 error
    Gate(gate::GateArgs),
    /// The weekly SLO review from a report: budgets, this week against last, incidents, at risk
    Review(review::ReviewArgs),
    /// Validate an SLO spec and a config; with an INPUT, also say what its first lines give
    Check(check::CheckArgs),
    /// Write deterministic synthetic traffic with injected incidents
    Gen(gen::GenArgs),
}

/// `-o, --output`: what every result-printing command writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

pub fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    crate::logs::init(cli.log_level.as_deref(), cli.log_output)?;
    let done = match cli.command {
        Command::Replay(a) => replay::run(a),
        Command::Run(a) => run::run(a),
        Command::Gate(a) => gate::run(a),
        Command::Review(a) => review::run(a),
        Command::Check(a) => check::run(a),
        Command::Gen(a) => gen::run(a),
    };
    match done {
        // In JSON, the error that ends slate is a log line like the rest.
        Err(e) if cli.log_output == crate::logs::LogFormat::Json => {
            tracing::error!(target: "slate", "{e:#}");
            Ok(ExitCode::from(2))
        }
        done => done,
    }
}

/// Loads the SLO spec, or an empty one when none is given.
pub(crate) fn load_spec(path: Option<&Path>) -> Result<SloSpec> {
    match path {
        Some(p) => Ok(SloSpec::load(p)?),
        None => Ok(SloSpec {
            services: Vec::new(),
            warnings: Vec::new(),
            corrections: Vec::new(),
        }),
    }
}

pub(crate) fn load_config(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

/// The flags that say how to read an input, shared by `replay` and `check`.
#[derive(clap::Args, Debug)]
pub(crate) struct InputArgs {
    /// Log format: json, nginx-json, envoy-json, ecs, traefik, caddy, nginx, apache,
    /// envoy, haproxy, alb, elb, w3c, or auto (sniffed from the first lines) [default: json]
    #[arg(long, value_name = "F")]
    format: Option<String>,
    /// What wraps each line: none, docker (json-file), cri, filebeat, vector,
    /// fluent-bit, otlp-json, syslog, or auto (sniffed) [default: auto with
    /// --format auto, else none]
    #[arg(long, value_name = "E")]
    envelope: Option<String>,
    /// For nginx/apache/envoy: the log_format/LogFormat/format string from
    /// your server's config, or combined, main (nginx), common (apache),
    /// default, istio (envoy)
    #[arg(long, value_name = "S")]
    log_format: Option<String>,
    /// Zone of times written without one (HAProxy): UTC, an offset such as
    /// +02:00, or a zone name such as Europe/Paris
    #[arg(long, value_name = "TZ")]
    timezone: Option<String>,
    /// Every event belongs to this service (for logs of one service)
    #[arg(long, value_name = "NAME", conflicts_with = "service_field")]
    service: Option<String>,
    /// Read the service from this field: a dotted JSON path, a layout
    /// field of a text format ($http_x_service, %{X-Service}i), or a field
    /// of the envelope (envelope.kubernetes.container_name)
    #[arg(long, value_name = "FIELD")]
    service_field: Option<String>,
}

impl InputArgs {
    /// Lays the flags over `slate.yml`'s input section.
    pub(crate) fn apply(&self, input: &mut crate::spec::config::InputConfig) -> Result<()> {
        use anyhow::bail;
        if let Some(f) = &self.format {
            input.format = crate::spec::config::Format::parse(f)
                .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
        }
        if let Some(e) = &self.envelope {
            input.envelope = Some(
                crate::spec::config::Envelope::parse(e)
                    .map_err(|e| anyhow::anyhow!("--envelope: {e}"))?,
            );
        }
        if let Some(lf) = &self.log_format {
            if !input.format.is_text() {
                bail!("--log-format needs --format nginx, apache or envoy");
            }
            input.log_format = Some(lf.clone());
        }
        if let Some(tz) = &self.timezone {
            input.timezone = crate::spec::config::parse_timezone(tz)
                .map_err(|e| anyhow::anyhow!("--timezone: {e}"))?;
        }
        if let Some(name) = &self.service {
            if !crate::decode::valid_service(name) {
                bail!(
                    "--service `{name}`: a service name is 1–128 bytes without control characters"
                );
            }
            input.constant_service = Some(name.clone());
        }
        if let Some(field) = &self.service_field {
            input.fields.service = Some(field.clone());
        }
        Ok(())
    }
}

/// `--format auto`, `--envelope auto` (or `--format envoy` without a
/// layout): reads the first 64 KiB of `input` (decompressed), picks what
/// reads it, and says which on stderr.
pub(crate) fn resolve_auto(config: &mut Config, input: &Path) -> Result<()> {
    use std::io::Read;
    if !crate::decode::sniff::wanted(&config.input) {
        return Ok(());
    }
    if input.as_os_str() == "-" {
        if config.input.format == crate::spec::config::Format::Envoy {
            return Ok(());
        }
        anyhow::bail!(
            "--format auto and --envelope auto cannot look ahead in stdin: give --format and --envelope"
        );
    }
    let name = crate::source::file::InputName(input.to_path_buf());
    let opened = crate::source::file::open(
        &name,
        std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
    )?;
    let mut sample = Vec::new();
    opened.reader.take(64 << 10).read_to_end(&mut sample)?;
    let sniffed =
        crate::decode::sniff::sniff(&sample, &config.input).map_err(anyhow::Error::msg)?;
    eprintln!("slate: {} ({})", sniffed.why, input.display());
    config.input = sniffed.input;
    Ok(())
}

/// Writes `text` to `path`, saying which file failed.
pub(crate) fn write_file(path: &PathBuf, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
