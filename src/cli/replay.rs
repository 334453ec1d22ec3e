//! `slate replay`: backtest SLOs over recorded logs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use super::{load_config, load_spec, write_file, Output};
use crate::model::{parse_instant, Micros};
use crate::replay::{replay, ReplayOptions};
use crate::source::file::InputName;
use crate::spec::config::{parse_eval_every, Format};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
slate replay --slo fixtures/service-slos.yml fixtures/incidents.jsonl.gz\n  \
slate replay --slo slos.yml --from 2026-10-01 --to 2026-11-01 -o json logs/*.jsonl.gz\n  \
zcat access.log.gz | slate replay --slo slos.yml --format nginx-json -\n  \
slate replay --format nginx --log-format combined --service web /var/log/nginx/access.log\n  \
slate replay --format nginx --log-format '$host [$time_local] \"$request\" $status $request_time' access.log\n\n\
Inputs are plain or gzip (several members are fine); several inputs are merged by time.\n\
Exit codes: 0 whether or not SLOs were met, 2 on error.")]
pub struct ReplayArgs {
    /// Log files to replay (plain or gzip; `-` for stdin)
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// SLO spec (the seed's service-slos.yml format); without it, SLIs only
    #[arg(long, value_name = "FILE")]
    slo: Option<PathBuf>,
    /// slate.yml: input, engine and alerting settings (flags override it)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format: json, nginx-json, envoy-json, ecs, traefik, caddy, nginx, apache,
    /// envoy, haproxy, alb, elb, w3c, or auto (sniffed from the first lines) [default: json]
    #[arg(long, value_name = "F")]
    format: Option<String>,
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
    /// Read the service from this field: a dotted JSON path, or a layout
    /// field of a text format ($http_x_service, %{X-Service}i)
    #[arg(long, value_name = "FIELD")]
    service_field: Option<String>,
    /// Only events at or after this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// Only events before this time
    #[arg(long, value_name = "T")]
    to: Option<String>,
    /// Report the budget each interval spent, for a postmortem (FROM..TO, RFC 3339)
    #[arg(long, value_name = "FROM..TO")]
    incident: Vec<String>,
    /// Evaluation step in event time; 1s evaluates as live does [default: 1m]
    #[arg(long, value_name = "D")]
    eval_every: Option<String>,
    /// Decode threads (default: one per core); the report does not depend on it
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Write every rejected record, with its input, line and reason, as JSON lines
    #[arg(long, value_name = "FILE")]
    dead_letter: Option<PathBuf>,
    /// How to print the report
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Also write the JSON report to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Do not draw a progress bar
    #[arg(long)]
    no_progress: bool,
}

fn instant(flag: &str, v: &Option<String>) -> Result<Option<Micros>> {
    match v {
        None => Ok(None),
        Some(s) => match parse_instant(s) {
            Ok(t) => Ok(Some(t)),
            Err(e) => bail!("--{flag}: {e}"),
        },
    }
}

pub fn run(a: ReplayArgs) -> Result<ExitCode> {
    let spec = load_spec(a.slo.as_deref())?;
    let mut config = load_config(a.config.as_deref())?;
    if let Some(f) = &a.format {
        config.input.format = Format::parse(f).map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    }
    if let Some(lf) = &a.log_format {
        if !config.input.format.is_text() {
            bail!("--log-format needs --format nginx or --format apache");
        }
        config.input.log_format = Some(lf.clone());
    }
    if let Some(tz) = &a.timezone {
        config.input.timezone = crate::spec::config::parse_timezone(tz)
            .map_err(|e| anyhow::anyhow!("--timezone: {e}"))?;
    }
    if let Some(name) = &a.service {
        if !crate::decode::valid_service(name) {
            bail!("--service `{name}`: a service name is 1–128 bytes without control characters");
        }
        config.input.constant_service = Some(name.clone());
    }
    if let Some(field) = &a.service_field {
        config.input.fields.service = Some(field.clone());
    }
    if let Some(e) = &a.eval_every {
        config.alerting.eval_every =
            parse_eval_every(e).map_err(|e| anyhow::anyhow!("--eval-every: {e}"))?;
    }
    let from = instant("from", &a.from)?;
    let to = instant("to", &a.to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            bail!("--from must be before --to");
        }
    }
    let mut incidents = Vec::new();
    for i in &a.incident {
        let Some((f, t)) = i.split_once("..") else {
            bail!(
                "--incident `{i}`: write FROM..TO, e.g. 2026-11-03T14:00:00Z..2026-11-03T15:30:00Z"
            );
        };
        let (f, t) = (
            parse_instant(f).map_err(|e| anyhow::anyhow!("--incident: {e}"))?,
            parse_instant(t).map_err(|e| anyhow::anyhow!("--incident: {e}"))?,
        );
        if f >= t {
            bail!("--incident `{i}`: FROM must be before TO");
        }
        incidents.push((f, t));
    }
    let stdin_count = a.inputs.iter().filter(|p| p.as_os_str() == "-").count();
    if stdin_count > 1 {
        bail!("`-` (stdin) can be given only once");
    }
    for p in &a.inputs {
        if p.as_os_str() != "-" && !p.is_file() {
            bail!("{}: no such file", p.display());
        }
    }
    for w in &spec.warnings {
        eprintln!("slate: warning: {w}");
    }
    if let Some(first) = a.inputs.first() {
        super::resolve_auto(&mut config, first)?;
    }
    let threads = a.threads.unwrap_or(config.engine.threads);
    let report = replay(ReplayOptions {
        inputs: a.inputs.into_iter().map(InputName).collect(),
        spec,
        config,
        from,
        to,
        incidents,
        threads,
        dead_letter: a.dead_letter,
        progress: !a.no_progress,
    })?;
    for e in &report.events.input_errors {
        eprintln!("slate: warning: input not read to the end ({e}); the report covers what was read before");
    }
    // A latency SLO over events that carry no latency judges nothing: say
    // so once, rather than let "no data" pass unnoticed.
    for (name, svc) in &report.services {
        for (slo, r) in &svc.slos.0 {
            if slo.starts_with("latency_") && r.total == 0 && svc.requests > 0 {
                eprintln!(
                    "slate: warning: {name}/{slo}: none of its {} events carries a latency (check the latency field and unit)",
                    svc.requests
                );
            }
        }
    }
    let json = serde_json::to_string_pretty(&report)? + "\n";
    if let Some(p) = &a.json {
        write_file(p, &json)?;
    }
    match a.output {
        Output::Json => print!("{json}"),
        Output::Table => print!("{}", crate::report::table::render(&report)),
    }
    Ok(ExitCode::SUCCESS)
}
