//! `slate review`: the weekly SLO review, one page to paste into the
//! team's channel or wiki (DESIGN §6), from a replay report or a running
//! slate (`/api/v1/review`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use crate::report::gate::judge;
use crate::report::review::{html, markdown, review, ReportView, Reviewed};
use crate::spec::gate::GatePolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReviewOutput {
    Markdown,
    Html,
    Json,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
slate replay --slo slos.yml --json report.json logs/*.gz && slate review --source report.json\n  \
slate review --source report.json --week 2026-W45 --policy deploy-gate.yml\n  \
slate review --source report.json --month 2026-11 -o json\n  \
slate review --source http://slate:9898 -o html > review.html\n\n\
Per service and SLO: the budget left, the burn this week against last week (a burn of 1\n\
spends the budget exactly over the SLO's period), the week's incidents with what each cost,\n\
the top spenders first, the SLOs at risk with the date their budget runs out at the current\n\
1d burn, the gate's verdict with --policy, and the week's reliability in one number.\n\
Weeks are ISO weeks (Monday to Sunday) and months calendar months, cut in each service's\n\
period_timezone (UTC by default). Without --week or --month, the report's latest week.\n\
Exit codes: 0 success, 2 error.")]
pub struct ReviewArgs {
    /// A replay report (the file of `slate replay --json FILE`) or a running slate (http://HOST:PORT)
    #[arg(long, value_name = "FILE|URL")]
    source: String,
    /// The ISO week to review (2026-W45) [default: the report's latest]
    #[arg(long, value_name = "YYYY-Www", conflicts_with = "month")]
    week: Option<String>,
    /// A calendar month to review instead (2026-11)
    #[arg(long, value_name = "YYYY-MM")]
    month: Option<String>,
    /// A deploy-gate policy: its verdict goes in the review (a running slate gives its own gate.policy's)
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// markdown (CommonMark with tables), html (one self-contained page) or json (the figures)
    #[arg(short, long, value_enum, default_value = "markdown")]
    output: ReviewOutput,
}

pub fn run(a: ReviewArgs) -> Result<ExitCode> {
    let which =
        Reviewed::from_flags(a.week.as_deref(), a.month.as_deref()).map_err(anyhow::Error::msg)?;
    let r = if let Some(rest) = a.source.strip_prefix("http://") {
        if a.policy.is_some() {
            bail!("--policy: a running slate gives the verdict of its own gate.policy; --policy is for a report file");
        }
        let (authority, _) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let query = match &which {
            Some(Reviewed::Week(w)) => format!("?week={w}"),
            Some(Reviewed::Month(m)) => format!("?month={m}"),
            None => String::new(),
        };
        let (status, body) = super::gate::http_get(
            authority,
            &format!("/api/v1/review{query}"),
            std::time::Duration::from_secs(10),
        )
        .map_err(|e| anyhow::anyhow!("--source {}: {e}", a.source))?;
        if status != 200 {
            let why = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(body);
            bail!(
                "--source {}: /api/v1/review answered {status}: {why}",
                a.source
            );
        }
        serde_json::from_str(&body).with_context(|| {
            format!(
                "--source {}: /api/v1/review did not answer a review: is this slate?",
                a.source
            )
        })?
    } else {
        if a.source.starts_with("https://") {
            bail!(
                "--source {}: slate serves plain HTTP: give http://HOST:PORT",
                a.source
            );
        }
        let text = std::fs::read_to_string(&a.source).with_context(|| {
            format!(
                "--source {}: cannot read the report; give the file of `slate replay --json FILE` or http://HOST:PORT of a running slate",
                a.source
            )
        })?;
        let report: ReportView = serde_json::from_str(&text)
            .with_context(|| format!("--source {}: not a slate replay report", a.source))?;
        if report.schema_version != 1 {
            bail!(
                "--source {}: report schema_version {}; this slate reads version 1",
                a.source,
                report.schema_version
            );
        }
        let gate = match &a.policy {
            Some(p) => {
                let policy = GatePolicy::load(p)?;
                Some(judge(&policy, &report.services, None).map_err(anyhow::Error::msg)?)
            }
            None => None,
        };
        review(&report, which, gate).map_err(anyhow::Error::msg)?
    };
    match a.output {
        ReviewOutput::Markdown => print!("{}", markdown(&r)),
        ReviewOutput::Html => print!("{}", html(&r)),
        // UNWRAP: the review is plain values.
        ReviewOutput::Json => println!(
            "{}",
            serde_json::to_string_pretty(&r).expect("the review serializes")
        ),
    }
    Ok(ExitCode::SUCCESS)
}
