//! `slate run`: the live service.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::{load_config, load_spec};
use crate::live::{run as run_live, LiveOptions};
use crate::spec::config::{check_instance_id, check_topic, parse_brokers, parse_listen};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
slate run --brokers localhost:9092 --topic access-logs --slo slos.yml\n  \
slate run --config slate.yml --slo slos.yml --listen 0.0.0.0:9898\n  \
slate run --config slate.yml --slo slos.yml --instance-id \"$POD_NAME\" --state-dir /var/lib/slate/state\n\n\
Serves /metrics (Prometheus; with export.compat, Sloth's and Pyrra's series too), /healthz,\n\
/readyz, /api/v1/services and, with a deploy-gate policy, /api/v1/gate?service=NAME.\n\
On start (and on each partition assignment) each partition's history is read from\n\
now minus the longest SLO period (kafka.rebuild_window to read less), in event time, as\n\
a replay reads it: its services tick at --eval-every of their events' time, and no event\n\
is too late while its period still holds it. /readyz says not ready, and how far the\n\
catch-up has come, until every partition has caught up (slate_catching_up).\n\
State: every state.interval (30s), on SIGTERM and when partitions are revoked, what\n\
changed is written to --state-dir (a base and deltas, each written atomically, versioned\n\
and checksummed); a restart restores it and each partition goes on from the offset the\n\
state reflects, then reads the rest in event time. Offsets are committed only once the\n\
state that holds their events is on disk. A snapshot that does not read falls back to\n\
the one before it (logged, slate_state_snapshot_failures_total).\n\
Several instances: with kafka.state_topic the state is kept in that compacted topic instead\n\
(input partition p's in its partition p, keyed by service); a revoked partition's last\n\
pass is written there before it is let go, and its new owner restores it and reads on from\n\
the offset it reflects. Each service is exported by the instance that holds it.\n\
SIGINT/SIGTERM: stop fetching, apply what was fetched, write the state, commit, exit 0.\n\
SIGHUP or POST /-/reload: re-read the SLO spec; SLOs whose definition did not change\n\
keep their state, an invalid spec is refused and the old one kept.\n\
Exit codes: 0 after a clean stop, 2 on error.")]
pub struct RunArgs {
    /// slate.yml: input, kafka, http, gate, engine, alerting and export settings (flags override it)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// SLO spec (the seed's service-slos.yml format); without it, SLIs only
    #[arg(long, value_name = "FILE")]
    slo: Option<PathBuf>,
    /// Deploy-gate policy served at /api/v1/gate (gate.policy)
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Kafka bootstrap brokers, host:port,... (kafka.brokers)
    #[arg(long, value_name = "HOST:PORT,...")]
    brokers: Option<String>,
    /// Topic to consume; repeat for several (kafka.topics)
    #[arg(long, value_name = "T")]
    topic: Vec<String>,
    /// Consumer group (kafka.group) [default: slate]
    #[arg(long, value_name = "G")]
    group: Option<String>,
    /// This instance's static group membership (kafka.instance_id): a restart
    /// with the same id gets its partitions back at once; in Kubernetes, the pod name
    #[arg(long, value_name = "ID")]
    instance_id: Option<String>,
    /// Address to serve HTTP on (http.listen) [default: 127.0.0.1:9898]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Where the state is kept between runs (state.dir) [default: slate-data]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

pub fn run(a: RunArgs) -> Result<ExitCode> {
    let spec = load_spec(a.slo.as_deref())?;
    let mut config = load_config(a.config.as_deref())?;
    if let Some(b) = &a.brokers {
        config.kafka.brokers =
            Some(parse_brokers(b).map_err(|e| anyhow::anyhow!("--brokers: {e}"))?);
    }
    if !a.topic.is_empty() {
        for t in &a.topic {
            check_topic(t).map_err(|e| anyhow::anyhow!("--topic: {e}"))?;
        }
        config.kafka.topics = a.topic.clone();
    }
    if let Some(g) = &a.group {
        if g.trim().is_empty() {
            bail!("--group: the consumer group cannot be empty");
        }
        config.kafka.group = g.clone();
    }
    if let Some(id) = &a.instance_id {
        check_instance_id(id).map_err(|e| anyhow::anyhow!("--instance-id {id:?}: {e}"))?;
        config.kafka.instance_id = Some(id.clone());
    }
    if let Some(l) = &a.listen {
        config.http.listen = parse_listen(l).map_err(|e| anyhow::anyhow!("--listen: {e}"))?;
    }
    if let Some(p) = &a.policy {
        config.gate.policy = Some(p.clone());
    }
    if let Some(d) = &a.state_dir {
        if d.as_os_str().is_empty() {
            bail!("--state-dir: the state dir cannot be empty (to turn durable state off, set state.interval: 0s)");
        }
        config.state.dir = d.clone();
    }
    let policy = match &config.gate.policy {
        Some(p) => Some(crate::spec::gate::GatePolicy::load(p)?),
        None => None,
    };
    let Some(brokers) = config.kafka.brokers.clone() else {
        bail!("no Kafka brokers: give --brokers HOST:PORT or kafka.brokers in slate.yml");
    };
    if config.kafka.topics.is_empty() {
        bail!("no topic to read: give --topic T or kafka.topics in slate.yml");
    }
    for w in &spec.warnings {
        tracing::warn!(target: "spec", "{w}");
    }
    let listener = std::net::TcpListener::bind(&config.http.listen)
        .with_context(|| format!("cannot listen on {}", config.http.listen))?;
    let summary = run_live(
        LiveOptions {
            spec,
            slo_path: a.slo.clone(),
            config,
            brokers,
            listener,
            policy,
        },
        shutdown_signal(),
    )?;
    tracing::info!(
        target: "slate",
        "stopped: {} events applied, {} rejected, {} re-read to rebuild the windows; offsets committed",
        summary.accepted, summary.rejected, summary.rebuilt
    );
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!(target: "slate", "stopping: applying what was fetched, committing offsets");
}
