//! `slate gate`: the deploy gate, for a CI pipeline. A policy judged
//! against a running slate or a replay report; exit 0 allow, 1 block,
//! 2 error. Fails closed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::Output;
use crate::model::Span;
use crate::report::gate::{judge, GateVerdict};
use crate::report::ServiceReport;
use crate::spec::gate::GatePolicy;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
slate gate --policy deploy-gate.yml --source http://slate:9898\n  \
slate gate --policy deploy-gate.yml --source http://slate:9898 --service api-gateway -o json\n  \
slate gate --policy deploy-gate.yml --source http://slate-0:9898 --source http://slate-1:9898 --source http://slate-2:9898\n  \
slate replay --slo slos.yml --json report.json logs/*.gz && slate gate --policy deploy-gate.yml --source report.json\n\n\
A running slate is asked for /readyz, then /api/v1/services, and the policy is judged here.\n\
It fails closed: a source that cannot be reached, answers an error or is not ready (it is\n\
still reading its history) is exit 2, unless --fail-open turns that into an allow with a\n\
warning. A policy with errors, or a service or SLO the source does not know, is always exit 2.\n\n\
Several --source are the instances of one scaled-out group: each service is judged on the\n\
instance that holds it. Every one must answer (one that cannot fails the gate closed, as a\n\
single source does). A service held by two (mid-handover) is judged on the one whose newest\n\
event is later, and the gate says so.\n\
Exit codes: 0 allow (warnings included), 1 block, 2 error.")]
pub struct GateArgs {
    /// Deploy-gate policy (the seed's deploy-gate.yml: deploy_enabled, checks)
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// A running slate (http://HOST:PORT) or a replay report (the file of `slate replay --json`);
    /// repeat it for each instance of a scaled-out group
    #[arg(long, value_name = "URL|FILE", required = true)]
    source: Vec<String>,
    /// Judge only this service's checks
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Allow the deploy (exit 0, with a warning) when the source cannot be reached or is not ready
    #[arg(long)]
    fail_open: bool,
    /// How long to wait for a running slate
    #[arg(long, value_name = "D", default_value = "10s")]
    timeout: String,
    /// table (a line per check) or json (the verdict, as /api/v1/gate gives it)
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
}

/// Why the source gave no `services` object: unavailable (what
/// `--fail-open` forgives) or wrong (always an error).
enum SourceError {
    Unavailable(String),
    Invalid(String),
}

pub fn run(a: GateArgs) -> Result<ExitCode> {
    let policy = GatePolicy::load(&a.policy)?;
    let timeout = Span::parse(&a.timeout)
        .ok()
        .filter(|t| t.0 > 0)
        .with_context(|| format!("--timeout {}: give a duration such as 10s", a.timeout))?;
    let timeout = Duration::from_micros(timeout.0 as u64);
    let mut held = Vec::with_capacity(a.source.len());
    let mut unavailable = Vec::new();
    for source in &a.source {
        match services(source, timeout) {
            Ok(s) => held.push((source.as_str(), s)),
            Err(SourceError::Invalid(e)) => bail!("{source}: {e}"),
            Err(SourceError::Unavailable(e)) => unavailable.push(format!("{source}: {e}")),
        }
    }
    if !unavailable.is_empty() {
        let e = unavailable.join("; ");
        if !a.fail_open {
            bail!(
                "{e}; the gate fails closed (--fail-open allows the deploy when a source is unavailable)"
            );
        }
        eprintln!("slate: warning: {e}; allowing the deploy because of --fail-open");
        if a.output == Output::Json {
            println!(
                "{}",
                serde_json::json!({"allow": true, "fail_open": true, "error": e, "checks": []})
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (services, twice) = merge(held);
    for t in &twice {
        eprintln!("slate: gate: {t}");
    }
    let verdict = judge(&policy, &services, a.service.as_deref()).map_err(anyhow::Error::msg)?;
    match a.output {
        // UNWRAP: a verdict is plain values.
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&verdict).expect("verdict serializes")
        ),
        Output::Table => print!("{}", table(&verdict)),
    }
    Ok(if verdict.allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A line per check, then the verdict.
fn table(v: &GateVerdict) -> String {
    let mut rows: Vec<[String; 4]> = vec![[
        "RESULT".into(),
        "SERVICE".into(),
        "CHECK".into(),
        "WHY".into(),
    ]];
    for c in &v.checks {
        let check = match &c.slo {
            Some(slo) => format!("{} (slo {slo})", c.check),
            None => c.check.clone(),
        };
        rows.push([
            c.result.to_uppercase(),
            c.service.clone(),
            check,
            c.reason.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        for (i, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}  ", r[i], w = *w));
        }
        out.push_str(&r[3]);
        out.push('\n');
    }
    let count = |r: &str| v.checks.iter().filter(|c| c.result == r).count();
    let (blocks, warns) = (count("block"), count("warn"));
    out.push('\n');
    out.push_str(&if !v.deploy_enabled {
        "BLOCK: deploy_enabled is false in the policy\n".to_string()
    } else if blocks > 0 {
        format!(
            "BLOCK: {blocks} check(s) block the deploy{}\n",
            if warns > 0 {
                format!(", {warns} warn")
            } else {
                String::new()
            }
        )
    } else if warns > 0 {
        format!("ALLOW with {warns} warning(s)\n")
    } else if v.checks.is_empty() {
        "ALLOW: no check applies\n".to_string()
    } else {
        format!("ALLOW: {} check(s) pass\n", v.checks.len())
    });
    out
}

/// The services of several sources (the instances of one group), each
/// taken from the source that holds it; a service two hold (a handover in
/// progress) from the one whose newest event is later (the first given on
/// a tie). Returns them with a sentence for each service held twice.
fn merge<'a>(
    held: Vec<(&'a str, BTreeMap<String, ServiceReport>)>,
) -> (BTreeMap<String, ServiceReport>, Vec<String>) {
    let newest = |r: &ServiceReport| {
        r.last_event
            .as_deref()
            .and_then(|t| crate::model::parse_rfc3339(t.as_bytes()))
    };
    let mut out: BTreeMap<String, (&'a str, ServiceReport)> = BTreeMap::new();
    let mut others: BTreeMap<String, Vec<(&'a str, Option<i64>)>> = BTreeMap::new();
    for (source, services) in held {
        for (name, report) in services {
            match out.get_mut(&name) {
                None => {
                    out.insert(name, (source, report));
                }
                Some(kept) => {
                    let loser = if newest(&report) > newest(&kept.1) {
                        std::mem::replace(kept, (source, report))
                    } else {
                        (source, report)
                    };
                    let t = newest(&loser.1);
                    others.entry(name).or_default().push((loser.0, t));
                }
            }
        }
    }
    let twice = others
        .into_iter()
        .map(|(name, losers)| {
            let (source, report) = &out[&name];
            let tied = losers.iter().any(|l| l.1 == newest(report));
            let names: Vec<&str> = losers.iter().map(|l| l.0).collect();
            format!(
                "{name} is held by {source} and {} (a handover in progress?): judged on {source}, {}",
                names.join(" and "),
                match (&report.last_event, tied) {
                    (Some(t), false) => format!("whose newest event is the latest ({t})"),
                    (Some(t), true) => format!("the first given of those whose newest event is {t}"),
                    (None, _) => "the first given (none says when its newest event was)".into(),
                }
            )
        })
        .collect();
    (out.into_iter().map(|(n, (_, r))| (n, r)).collect(), twice)
}

/// The `services` object from a running slate or a report file.
fn services(
    source: &str,
    timeout: Duration,
) -> Result<BTreeMap<String, ServiceReport>, SourceError> {
    if source.starts_with("https://") {
        return Err(SourceError::Invalid(
            "slate serves plain HTTP: give http://HOST:PORT (TLS in front of it is not spoken here)"
                .into(),
        ));
    }
    if let Some(rest) = source.strip_prefix("http://") {
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        // A URL of one of slate's endpoints, or of slate behind a path prefix.
        let mut prefix = path.trim_end_matches('/');
        for known in ["/api/v1/services", "/api/v1/gate", "/metrics", "/readyz"] {
            prefix = prefix.strip_suffix(known).unwrap_or(prefix);
        }
        let get = |endpoint: &str| -> Result<String, SourceError> {
            let (status, body) = http_get(authority, &format!("{prefix}{endpoint}"), timeout)
                .map_err(SourceError::Unavailable)?;
            match status {
                200 => Ok(body),
                _ if endpoint == "/readyz" => Err(SourceError::Unavailable(format!(
                    "slate is not ready ({status}: {})",
                    body.trim()
                ))),
                _ => Err(SourceError::Unavailable(format!(
                    "{endpoint} answered {status}: {}",
                    body.trim()
                ))),
            }
        };
        get("/readyz")?;
        let body = get("/api/v1/services")?;
        return serde_json::from_str(&body).map_err(|e| {
            SourceError::Invalid(format!(
                "/api/v1/services did not answer a services object ({e}): is this slate?"
            ))
        });
    }
    let text = std::fs::read_to_string(source).map_err(|e| {
        SourceError::Invalid(format!(
            "cannot read the report ({e}); give a report file from `slate replay --json FILE` or http://HOST:PORT of a running slate"
        ))
    })?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| SourceError::Invalid(format!("not JSON: {e}")))?;
    let invalid = |e: serde_json::Error| {
        SourceError::Invalid(format!("not a replay report nor a services object ({e})"))
    };
    // A replay report, or a saved /api/v1/services answer. Read typed from
    // the text, not from the `Value`, which would sort the SLOs by name.
    match json.get("schema_version") {
        Some(v) if v != 1 => Err(SourceError::Invalid(format!(
            "report schema_version {v}: this slate reads version 1"
        ))),
        Some(_) => {
            #[derive(serde::Deserialize)]
            struct Report {
                services: BTreeMap<String, ServiceReport>,
            }
            serde_json::from_str::<Report>(&text)
                .map(|r| r.services)
                .map_err(invalid)
        }
        None => serde_json::from_str(&text).map_err(invalid),
    }
}

/// `GET path` over HTTP/1.0 (the answer comes whole, not in chunks).
pub(crate) fn http_get(
    authority: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let with_port = if authority
        .rsplit(':')
        .next()
        .is_some_and(|p| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addrs: Vec<_> = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .collect();
    let mut last = format!("cannot resolve {authority}");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(timeout));
                let _ = s.set_write_timeout(Some(timeout));
                let request = format!(
                    "GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\nUser-Agent: slate-gate/{}\r\n\r\n",
                    env!("CARGO_PKG_VERSION")
                );
                s.write_all(request.as_bytes())
                    .map_err(|e| format!("{addr}: {e}"))?;
                let mut raw = Vec::new();
                s.read_to_end(&mut raw)
                    .map_err(|e| format!("{addr}: no answer within {timeout:?} ({e})"))?;
                let text = String::from_utf8_lossy(&raw);
                let status = text
                    .get(9..12)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("{addr}: not an HTTP answer"))?;
                let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
                return Ok((status, body.to_string()));
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}
