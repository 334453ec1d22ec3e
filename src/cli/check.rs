//! `slate check`: validate the SLO spec and config, reporting every error
//! at once; with an INPUT, decode its first lines and say what they give.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::Output;
use crate::decode::{Decoder, Reason};
use crate::source::file::{self, InputName};
use crate::spec::{Config, SloKind, SloSpec};

/// Lines of an INPUT that `check` samples.
const SAMPLE_LINES: usize = 1000;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
slate check --slo fixtures/service-slos.yml\n  \
slate check --slo slos.yml --config slate.yml access.jsonl.gz\n\n\
Exit codes: 0 valid, 2 invalid (every error is listed with its file, line and key).")]
pub struct CheckArgs {
    /// SLO spec to validate
    #[arg(long, value_name = "FILE")]
    slo: Option<PathBuf>,
    /// slate.yml to validate
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Deploy-gate policy to validate (the seed's deploy-gate.yml)
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    #[command(flatten)]
    input_args: super::InputArgs,
    /// A log file whose first lines to try
    #[arg(value_name = "INPUT")]
    input: Option<PathBuf>,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

pub fn run(a: CheckArgs) -> Result<ExitCode> {
    let mut errors = Vec::new();
    let mut lines = Vec::new();
    let mut spec = match &a.slo {
        Some(p) => match SloSpec::load(p) {
            Ok(s) => {
                let n: usize = s.services.iter().map(|s| s.slos.len()).sum();
                let corrections = match s.corrections.len() {
                    0 => String::new(),
                    1 => ", 1 correction".to_string(),
                    c => format!(", {c} corrections"),
                };
                lines.push(format!(
                    "{}: {} services, {} SLOs{corrections}",
                    p.display(),
                    s.services.len(),
                    n
                ));
                for w in &s.warnings {
                    lines.push(format!("warning: {w}"));
                }
                Some(s)
            }
            Err(e) => {
                errors.extend(e.0.iter().map(|e| e.to_string()));
                None
            }
        },
        None => None,
    };
    let mut config = match &a.config {
        Some(p) => match Config::load(p) {
            Ok(c) => match crate::source::kafka::check_properties(&c.kafka).and_then(|()| {
                // Topics may come from `slate run --topic`: checked there.
                if c.kafka.topics.is_empty() {
                    Ok(())
                } else {
                    c.kafka.check_state_topic()
                }
            }) {
                Ok(()) => {
                    lines.push(format!("{}: valid", p.display()));
                    c
                }
                Err(e) => {
                    errors.push(format!("{}: {e}", p.display()));
                    c
                }
            },
            Err(e) => {
                errors.extend(e.0.iter().map(|e| e.to_string()));
                Config::default()
            }
        },
        None => Config::default(),
    };
    if let Some(spec) = &mut spec {
        if let Err(e) = spec.use_alert_windows(config.alerting.windows.as_ref()) {
            errors.extend(e.0.iter().map(|e| e.to_string()));
        }
    }
    let policy = a.policy.clone().or_else(|| config.gate.policy.clone());
    if let Some(p) = &policy {
        match crate::spec::gate::GatePolicy::load(p) {
            Ok(g) => {
                lines.push(format!(
                    "{}: {} checks{}",
                    p.display(),
                    g.checks.len(),
                    if g.deploy_enabled {
                        ""
                    } else {
                        " (deploy_enabled: false blocks every deploy)"
                    }
                ));
                if let Some(spec) = &spec {
                    for c in &g.checks {
                        if !spec.services.iter().any(|s| s.name == c.service) {
                            lines.push(format!(
                                "warning: {}:{}: service {} is not in the SLO spec; the gate will fail on it",
                                p.display(),
                                c.line,
                                c.service
                            ));
                        }
                    }
                }
            }
            Err(e) => errors.extend(e.0.iter().map(|e| e.to_string())),
        }
    }
    if let Err(e) = a.input_args.apply(&mut config.input) {
        errors.push(format!("{e:#}"));
    }
    if config.input.format.is_text() && a.input.is_none() {
        if let Err(e) = crate::decode::Decoder::new(&config.input) {
            errors.push(e);
        }
    }
    let mut sample = serde_json::Value::Null;
    if let (Some(input), true) = (&a.input, errors.is_empty()) {
        if let Err(e) = super::resolve_auto(&mut config, input) {
            errors.push(e.to_string());
        }
    }
    if let (Some(input), true) = (&a.input, errors.is_empty()) {
        match sample_input(input, &config, spec.as_ref()) {
            Ok((text, js)) => {
                lines.extend(text);
                sample = js;
            }
            Err(e) => errors.push(e),
        }
    }
    if a.slo.is_none() && a.config.is_none() && a.policy.is_none() && a.input.is_none() {
        errors.push(
            "nothing to check: give --slo FILE, --config FILE, --policy FILE and/or an INPUT"
                .into(),
        );
    }
    match a.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "valid": errors.is_empty(),
                "errors": errors,
                "notes": lines,
                "input": sample,
            }))?
        ),
        Output::Table => {
            for l in &lines {
                println!("{l}");
            }
            for e in &errors {
                eprintln!("{e}");
            }
            if errors.is_empty() {
                println!("ok");
            } else {
                eprintln!(
                    "{} error{}",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn sample_input(
    path: &Path,
    config: &Config,
    spec: Option<&SloSpec>,
) -> Result<(Vec<String>, serde_json::Value), String> {
    let name = InputName(path.to_path_buf());
    let reader = file::open(&name, Arc::new(AtomicU64::new(0)))
        .map_err(|e| e.to_string())?
        .reader;
    let decoder = Decoder::new(&config.input)?;
    let mut ctx = crate::decode::LineContext::default();
    let (mut ok, mut with_latency) = (0u64, 0u64);
    let mut rejected: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut services: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_error = None;
    for (i, line) in BufReader::new(reader)
        .split(b'\n')
        .take(SAMPLE_LINES)
        .enumerate()
    {
        let line = line.map_err(|e| format!("{}: {e}", name.display()))?;
        let text = decoder.trim_record(&line);
        if text.is_empty() {
            continue;
        }
        decoder.decode_record(text, &mut ctx, (i as u64 + 1, (0, 0)), &mut |d| match d {
            Ok(d) => {
                ok += 1;
                with_latency += d.latency_us.is_some() as u64;
                *services.entry(d.service.into_owned()).or_default() += 1;
            }
            Err(r) => {
                *rejected.entry(r.reason.as_str()).or_default() += 1;
                first_error.get_or_insert(format!("line {}: {}: {}", i + 1, r.reason, r.detail));
            }
        });
    }
    for (line, _) in ctx.partials.drain() {
        *rejected
            .entry(Reason::InvalidEnvelope.as_str())
            .or_default() += 1;
        first_error.get_or_insert(format!(
            "line {line}: invalid_envelope: a partial line (CRI `P`) not finished within the sample"
        ));
    }
    let format =
        crate::decode::sniff::name(config.input.format, config.input.log_format.as_deref());
    let envelope = config.input.envelope().name();
    let total = ok + rejected.values().sum::<u64>();
    let mut out = vec![format!(
        "{}: {ok} of the first {total} lines decode as {format}{}; {with_latency} carry a latency",
        name.display(),
        match config.input.envelope() {
            crate::spec::config::Envelope::None => String::new(),
            e => format!(" inside {} envelopes", e.name()),
        }
    )];
    if let Some(e) = &first_error {
        out.push(format!("  first rejection: {e}"));
    }
    out.push(format!(
        "  services seen: {}",
        services
            .keys()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if let Some(spec) = spec {
        let latency_slos: Vec<String> = spec
            .services
            .iter()
            .flat_map(|s| {
                s.slos
                    .iter()
                    .filter(|o| matches!(o.kind, SloKind::Latency { .. }))
                    .map(move |o| format!("{}/{}", s.name, o.name))
            })
            .collect();
        if ok > 0 && with_latency == 0 && !latency_slos.is_empty() {
            out.push(format!(
                "warning: no line carries a latency, so these latency SLOs will have no data: {}",
                latency_slos.join(", ")
            ));
        }
        for s in &spec.services {
            if !services.contains_key(&s.name) && ok > 0 {
                out.push(format!(
                    "note: `{}` has SLOs but does not appear in the sampled lines",
                    s.name
                ));
            }
        }
    }
    let js = json!({
        "format": format,
        "envelope": envelope,
        "lines": total,
        "decoded": ok,
        "with_latency": with_latency,
        "rejected_by_reason": rejected,
        "services": services,
    });
    Ok((out, js))
}
