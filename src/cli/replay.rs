//! `slate replay`: backtest SLOs over recorded logs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use super::{load_config, load_spec, write_file, Output};
use crate::model::{parse_instant, Micros};
use crate::replay::{replay_with_charts, ReplayOptions};
use crate::source::file::InputName;
use crate::spec::config::parse_eval_every;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
slate replay --slo fixtures/service-slos.yml fixtures/incidents.jsonl.gz\n  \
slate replay --slo slos.yml --from 2026-10-01 --to 2026-11-01 -o json logs/*.jsonl.gz\n  \
zcat access.log.gz | slate replay --slo slos.yml --format nginx-json -\n  \
slate replay --slo slos.yml --html report.html --json report.json logs/*.jsonl.gz\n  \
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
    #[command(flatten)]
    input: super::InputArgs,
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
    /// Also write the report as one self-contained HTML page with charts to FILE
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Do not draw a progress bar
    #[arg(long)]
    no_progress: bool,
    /// Also write the state at the end to this state dir: `slate run --state-dir DIR` continues from it
    #[arg(long, value_name = "DIR")]
    save_state: Option<PathBuf>,
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
    a.input.apply(&mut config.input)?;
    if let Some(e) = &a.eval_every {
        config.alerting.eval_every =
            Some(parse_eval_every(e).map_err(|e| anyhow::anyhow!("--eval-every: {e}"))?);
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
    if let Some(dir) = &a.save_state {
        // Before hours of replay: a dir that cannot take the state says so now.
        crate::state::StateDir::open(dir).map_err(|e| anyhow::anyhow!("--save-state: {e}"))?;
    }
    let threads = a.threads.unwrap_or(config.engine.threads);
    let opts = ReplayOptions {
        inputs: a.inputs.into_iter().map(InputName).collect(),
        spec,
        config,
        from,
        to,
        incidents,
        threads,
        dead_letter: a.dead_letter,
        progress: !a.no_progress,
        charts: a.html.is_some(),
        save_state: a.save_state.clone(),
    };
    let (report, charts) = replay_with_charts(opts)?;
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
    if let (Some(p), Some(c)) = (&a.html, &charts) {
        write_file(p, &crate::report::html::render(&report, c))?;
    }
    match a.output {
        Output::Json => print!("{json}"),
        Output::Table => print!("{}", crate::report::table::render(&report)),
    }
    Ok(ExitCode::SUCCESS)
}
