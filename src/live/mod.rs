//! `slate run`: the live service. Kafka in, HTTP out.
//!
//! ```text
//! consumer thread ─► decode workers ─► apply thread ─► published snapshot ◄─ HTTP (tokio)
//!   (rdkafka)          (all cores)      (owns the engine,    and counters
//!      ▲                                 ticks every 1 s)
//!      └──────── offsets applied ◄───────────┘  (committed by the consumer)
//! ```
//!
//! The apply thread owns the engine: no lock on the hot path. It applies
//! batches in the order they were fetched, tells the consumer which
//! offsets are in the state (only those are committed), publishes the
//! process counters every few milliseconds while events flow, and at every
//! tick of wall-clock time evaluates every service into a [`Snapshot`]
//! that scrapes read without touching the engine.
//!
//! The one place that sees everything: sources, decode, engine, evaluate,
//! export.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{bounded, Receiver};
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::decode::{Decoder, Reason, RejectCounts};
use crate::engine::{Engine, EngineSettings};
use crate::evaluate::AlertTracker;
use crate::export::http::{publish, serve, Published, Readiness, ReloadRequest, ServicesRequest};
use crate::export::snapshot::{
    live_services, Counters, KafkaGauges, ReloadState, ServiceCounts, Snapshot,
};
use crate::model::{Event, Micros, ServiceId};
use crate::replay::pipeline::{decode_records, DecodedChunk, Rec};
use crate::source::kafka::{Batch, KafkaShared, KafkaSource, LineMeta};
use crate::spec::{Config, SloSpec};

pub struct LiveOptions {
    pub spec: SloSpec,
    /// Where `spec` came from: re-read on SIGHUP and `POST /-/reload`.
    pub slo_path: Option<PathBuf>,
    pub config: Config,
    /// `kafka.brokers` or `--brokers`.
    pub brokers: String,
    /// Bound already, so that the caller knows the address (port 0 in tests).
    pub listener: StdListener,
    /// Served at `/api/v1/gate`.
    pub policy: Option<crate::spec::gate::GatePolicy>,
}

/// What a run did, said when it stops.
#[derive(Debug, Clone, Default)]
pub struct LiveSummary {
    pub accepted: u64,
    pub rejected: u64,
    pub rebuilt: u64,
    pub skipped: u64,
}

fn wall_us() -> Micros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as Micros)
}

/// Counters are published at most this often while events flow.
const COUNTER_EVERY: Duration = Duration::from_millis(20);

/// Records the dead-letter topic could not take, and why.
struct DeadLetter {
    producer: BaseProducer,
    topic: String,
    failed: u64,
}

impl DeadLetter {
    fn new(brokers: &str, topic: &str, props: &[(String, String)]) -> Result<DeadLetter> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", brokers)
            .set("client.id", "slate-dead-letter")
            .set("linger.ms", "50");
        for (k, v) in props {
            // Consumer-only properties would only draw warnings here.
            if !k.starts_with("fetch.") && !k.starts_with("queued.") && !k.starts_with("group.") {
                c.set(k, v);
            }
        }
        Ok(DeadLetter {
            producer: c.create().context("dead-letter producer")?,
            topic: topic.to_string(),
            failed: 0,
        })
    }

    fn send(&mut self, raw: &[u8], reason: Reason, detail: &str, source: (&str, i32, i64)) {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "slate-reason",
                value: Some(reason.as_str()),
            })
            .insert(Header {
                key: "slate-detail",
                value: Some(detail),
            })
            .insert(Header {
                key: "slate-source",
                value: Some(&format!("{}/{}/{}", source.0, source.1, source.2)),
            });
        let mut record = BaseRecord::<(), [u8]>::to(&self.topic)
            .payload(raw)
            .headers(headers);
        for _ in 0..50 {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((e, r)) => {
                    record = r;
                    if !matches!(
                        e.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ) {
                        break;
                    }
                    self.producer.poll(Duration::from_millis(100));
                }
            }
        }
        self.failed += 1;
    }

    fn finish(&mut self) {
        if let Err(e) = self.producer.flush(Duration::from_secs(10)) {
            eprintln!("slate: dead-letter topic {}: {e}", self.topic);
        }
        if self.failed > 0 {
            eprintln!(
                "slate: dead-letter topic {}: {} rejected record(s) could not be written (they are counted in slate_events_rejected_total)",
                self.topic, self.failed
            );
        }
    }
}

/// A decoded batch with where each line came from.
struct Decoded {
    chunk: DecodedChunk,
    batch: Batch,
}

struct Applier {
    engine: Engine,
    trackers: Vec<Option<AlertTracker>>,
    counts: Vec<ServiceCounts>,
    names: Arc<[Box<str>]>,
    /// Per service: the partition its last event came from, the first one,
    /// and whether it came on another partition of the same topic.
    last_part: Vec<u32>,
    first_part: Vec<u32>,
    spread: Vec<bool>,
    /// Per partition: `Some(end)` while its history is being read.
    catch_up: Vec<Option<i64>>,
    summary: LiveSummary,
    rejected: RejectCounts,
    max_skew: i64,
    min_events: u64,
    published: Arc<Published>,
    kafka: Arc<KafkaShared>,
    dead: Option<DeadLetter>,
    last_counters: Instant,
    slo_path: Option<PathBuf>,
    /// When the SLO spec in use was loaded (seconds since the epoch).
    loaded_at: f64,
}

impl Applier {
    fn sync_services(&mut self) {
        let n = self.engine.len();
        while self.trackers.len() < n {
            let s = self.engine.service(self.trackers.len() as ServiceId);
            self.trackers
                .push((!s.plan.slos.is_empty()).then(|| AlertTracker::new(s)));
        }
        if self.counts.len() < n {
            self.counts.resize(n, ServiceCounts::default());
            self.last_part.resize(n, u32::MAX);
            self.first_part.resize(n, u32::MAX);
            self.spread.resize(n, false);
        }
    }

    /// Service names for the counters, rebuilt when services appeared
    /// (at most once per publication, not once per new service).
    fn names(&mut self) -> Arc<[Box<str>]> {
        if self.names.len() < self.engine.len() {
            self.names = self.engine.services().map(|(n, _)| n.into()).collect();
        }
        self.names.clone()
    }

    /// Re-reads the SLO spec: a valid one replaces the old, keeping the
    /// state of every SLO whose definition did not change; an invalid one
    /// is refused and the old one kept.
    fn reload(&mut self) -> Result<String, String> {
        let Some(path) = self.slo_path.clone() else {
            return Err("slate run was started without an SLO spec (--slo FILE): there is nothing to re-read".into());
        };
        let spec = match SloSpec::load(&path) {
            Ok(spec) => spec,
            Err(e) => {
                publish(
                    &self.published.reload,
                    Some(ReloadState {
                        successful: false,
                        at: self.loaded_at,
                    }),
                );
                return Err(e.to_string());
            }
        };
        for w in &spec.warnings {
            eprintln!("slate: warning: {w}");
        }
        let before: usize = self.engine.services().map(|(_, s)| s.plan.slos.len()).sum();
        let known = self.engine.len();
        let maps = self.engine.reload(&spec);
        for (id, map) in maps.iter().enumerate() {
            let s = self.engine.service(id as ServiceId);
            self.trackers[id] = match (self.trackers[id].take(), s.plan.slos.is_empty()) {
                (_, true) => None,
                (Some(t), false) => Some(t.replanned(s, map)),
                (None, false) => Some(AlertTracker::new(s)),
            };
        }
        self.sync_services();
        let kept = maps.iter().flatten().filter(|o| o.is_some()).count();
        let started: usize = maps.iter().flatten().filter(|o| o.is_none()).count()
            + (known..self.engine.len())
                .map(|id| self.engine.service(id as ServiceId).plan.slos.len())
                .sum::<usize>();
        self.loaded_at = wall_us() as f64 / 1e6;
        publish(
            &self.published.reload,
            Some(ReloadState {
                successful: true,
                at: self.loaded_at,
            }),
        );
        self.tick();
        Ok(format!(
            "reloaded {}: {kept} SLO(s) unchanged, their state kept; {started} new or changed, counted from now on (error-rate SLOs keep the request counts); {} removed",
            path.display(),
            before - kept
        ))
    }

    fn catching_up(&self, part: u32) -> bool {
        matches!(self.catch_up.get(part as usize), Some(Some(_)))
    }

    fn reject(&mut self, reason: Reason, detail: &str, raw: &[u8], meta: LineMeta) {
        if meta.rebuild {
            // Counted before the restart.
            return;
        }
        self.rejected.add(reason);
        self.summary.rejected += 1;
        if let Some(d) = &mut self.dead {
            let parts = self
                .kafka
                .partitions
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let (topic, partition) = parts
                .get(meta.part as usize)
                .map_or(("?".to_string(), -1), |p| (p.topic.clone(), p.partition));
            drop(parts);
            d.send(raw, reason, detail, (&topic, partition, meta.offset));
        }
    }

    fn apply(&mut self, seq: u64, d: Decoded) {
        let Decoded { chunk, batch } = d;
        for &(part, end) in &batch.assigned {
            let i = part as usize;
            if self.catch_up.len() <= i {
                self.catch_up.resize(i + 1, None);
            }
            self.catch_up[i] = end;
        }
        let now = wall_us();
        let mut ids: Vec<Option<Result<ServiceId, Reason>>> = vec![None; chunk.names.len()];
        let mut offsets: Vec<(u32, i64)> = Vec::new();
        for rec in &chunk.recs {
            let (line, at) = match rec {
                Rec::Event { line, at, .. } | Rec::Rejected { line, at, .. } => (*line, *at),
            };
            let Some(&meta) = batch.lines.get(line as usize) else {
                continue;
            };
            match offsets.iter_mut().find(|(p, _)| *p == meta.part) {
                Some(o) => o.1 = o.1.max(meta.offset + 1),
                None => offsets.push((meta.part, meta.offset + 1)),
            }
            if let Some(Some(end)) = self.catch_up.get(meta.part as usize) {
                if meta.offset + 1 >= *end {
                    self.catch_up[meta.part as usize] = None;
                }
            }
            match rec {
                Rec::Rejected { reason, detail, .. } => {
                    self.reject(*reason, detail, chunk.line_bytes(at), meta);
                }
                Rec::Event {
                    ts,
                    service,
                    error,
                    latency_us,
                    ..
                } => {
                    let ts = *ts;
                    if ts < meta.skip_before {
                        self.summary.skipped += 1;
                        continue;
                    }
                    if ts >= now - self.max_skew {
                        // Live data: whatever history there was is read.
                        if let Some(c) = self.catch_up.get_mut(meta.part as usize) {
                            *c = None;
                        }
                    }
                    if ts > now + self.max_skew {
                        self.reject(
                            Reason::Future,
                            "dated ahead of this machine's clock by more than engine.max_skew",
                            chunk.line_bytes(at),
                            meta,
                        );
                        continue;
                    }
                    let id = match ids[*service as usize] {
                        Some(r) => r,
                        None => {
                            let r = self.engine.resolve(&chunk.names[*service as usize]);
                            ids[*service as usize] = Some(r);
                            self.sync_services();
                            r
                        }
                    };
                    let id = match id {
                        Ok(id) => id,
                        Err(reason) => {
                            self.reject(reason, "service not admitted", chunk.line_bytes(at), meta);
                            continue;
                        }
                    };
                    let ev = Event {
                        ts,
                        service: id,
                        error: *error,
                        latency_us: *latency_us,
                    };
                    let clamped = self.engine.service(id).clamped;
                    match self.engine.apply_to_service(&ev) {
                        Ok(()) => {
                            self.last_part[id as usize] = meta.part;
                            let first = self.first_part[id as usize];
                            if first == u32::MAX {
                                self.first_part[id as usize] = meta.part;
                            } else if first != meta.part && !self.spread[id as usize] {
                                self.spread_seen(id, first, meta.part);
                            }
                            if meta.rebuild {
                                self.summary.rebuilt += 1;
                            } else {
                                let c = &mut self.counts[id as usize];
                                c.requests += 1;
                                c.errors += *error as u64;
                                c.clamped += self.engine.service(id).clamped - clamped;
                                self.summary.accepted += 1;
                            }
                        }
                        Err(reason) => self.reject(
                            reason,
                            "older than the state its service holds",
                            chunk.line_bytes(at),
                            meta,
                        ),
                    }
                }
            }
        }
        for part in &batch.caught_up {
            if let Some(c) = self.catch_up.get_mut(*part as usize) {
                *c = None;
            }
        }
        self.kafka.mark_applied(seq, offsets);
        if let Some(d) = &mut self.dead {
            d.producer.poll(Duration::ZERO);
        }
        if self.last_counters.elapsed() >= COUNTER_EVERY {
            self.publish_counters();
        }
    }

    /// A service seen on two partitions: of the same topic, it is spread
    /// (unkeyed traffic); said once, and a problem only when another
    /// instance holds the topic's other partitions.
    fn spread_seen(&mut self, id: ServiceId, a: u32, b: u32) {
        let parts = self
            .kafka
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (Some(pa), Some(pb)) = (parts.get(a as usize), parts.get(b as usize)) else {
            return;
        };
        if pa.topic != pb.topic {
            return;
        }
        self.spread[id as usize] = true;
        let topic = pa.topic.clone();
        let held = parts
            .iter()
            .filter(|p| p.assigned && p.topic == topic)
            .count();
        drop(parts);
        let total = self
            .kafka
            .topic_partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&topic)
            .copied()
            .unwrap_or(held);
        if held < total {
            eprintln!(
                "slate: warning: service {} arrives on several partitions of {topic} while this instance holds {held} of its {total}: \
                 the other instances see part of it; key messages by service",
                self.engine.name(id)
            );
        }
    }

    /// Per topic: services seen on more than one of its partitions.
    fn spread_by_topic(&self) -> Vec<(String, u64)> {
        let parts = self
            .kafka
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, u64)> = Vec::new();
        for p in parts.iter() {
            if !out.iter().any(|(t, _)| *t == p.topic) {
                out.push((p.topic.clone(), 0));
            }
        }
        for (id, &spread) in self.spread.iter().enumerate() {
            if spread {
                if let Some(p) = parts.get(self.first_part[id] as usize) {
                    if let Some(e) = out.iter_mut().find(|(t, _)| *t == p.topic) {
                        e.1 += 1;
                    }
                }
            }
        }
        out
    }

    fn publish_counters(&mut self) {
        self.last_counters = Instant::now();
        let names = self.names();
        publish(
            &self.published.counters,
            Arc::new(Counters {
                names,
                services: self.counts.clone(),
                ingested: vec![("kafka", self.summary.accepted + self.summary.rejected)],
                rejected: self.rejected,
            }),
        );
    }

    /// An evaluation tick at wall-clock now. A service whose partition is
    /// still reading its history is not moved to now (that would make the
    /// rest of its history too late): it is evaluated as of its last event.
    fn tick(&mut self) {
        let now = wall_us();
        for id in 0..self.engine.len() {
            let part = self.last_part[id];
            if part != u32::MAX && self.catching_up(part) {
                continue;
            }
            let id = id as ServiceId;
            self.engine.advance_service(id, now);
            if let Some(tr) = &mut self.trackers[id as usize] {
                let s = self.engine.service(id);
                tr.tick(s, now, self.min_events);
                tr.forget_before(now - s.plan.period.0);
            }
        }
        let snapshot = Snapshot::take(&self.engine, &self.trackers, now);
        publish(&self.published.snapshot, Arc::new(snapshot));
        self.publish_counters();
        publish(
            &self.published.kafka,
            Arc::new(KafkaGauges {
                lag: self.kafka.lag(),
                spread: self.spread_by_topic(),
            }),
        );
        let status = self
            .kafka
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let rebuilding = self.catch_up.iter().filter(|c| c.is_some()).count();
        let readiness = if !status.brokers_up {
            Readiness::NotReady(match status.last_error {
                Some(e) => format!("brokers unreachable ({e})"),
                None => "connecting to the brokers".into(),
            })
        } else if status.assigned == 0 {
            Readiness::NotReady("waiting for partitions of the consumer group".into())
        } else if rebuilding > 0 {
            Readiness::NotReady(format!(
                "rebuilding the windows: {rebuilding} partition(s) still reading their history"
            ))
        } else {
            Readiness::Ready
        };
        publish(&self.published.readiness, readiness);
    }
}

/// Applies decoded batches in fetch order, ticks every `tick`, and
/// answers requests for the live `services` object between batches.
fn apply_loop(
    mut a: Applier,
    rx: Receiver<(u64, Decoded)>,
    requests: Receiver<ServicesRequest>,
    reloads: Receiver<ReloadRequest>,
    tick: Duration,
) -> Applier {
    let mut waiting: BTreeMap<u64, Decoded> = BTreeMap::new();
    let mut next = 0u64;
    let mut next_tick = Instant::now() + tick;
    a.tick();
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        crossbeam_channel::select! {
            recv(rx) -> msg => match msg {
                Ok((seq, d)) => {
                    waiting.insert(seq, d);
                    while let Some(d) = waiting.remove(&next) {
                        a.apply(next, d);
                        next += 1;
                    }
                }
                Err(_) => break,
            },
            recv(requests) -> r => {
                if let Ok(reply) = r {
                    let _ = reply.send(live_services(&a.engine, &a.trackers, wall_us()));
                }
            },
            recv(reloads) -> r => {
                if let Ok(reply) = r {
                    let result = a.reload();
                    match &result {
                        Ok(done) => eprintln!("slate: {done}"),
                        Err(e) => eprintln!("slate: reload refused, the previous SLO spec is kept: {e}"),
                    }
                    let _ = reply.send(result);
                }
            },
            default(wait) => {},
        }
        if Instant::now() >= next_tick {
            a.tick();
            next_tick += tick;
            if next_tick < Instant::now() {
                next_tick = Instant::now() + tick;
            }
        }
    }
    a.tick();
    if let Some(d) = &mut a.dead {
        d.finish();
    }
    a
}

/// SIGHUP re-reads the SLO spec, as Prometheus does (the apply thread
/// says what happened on stderr).
#[cfg(unix)]
async fn reload_on_sighup(mut hup: tokio::signal::unix::Signal, published: Arc<Published>) {
    while hup.recv().await.is_some() {
        let _ = published.reload().await;
    }
}

/// Runs until `stop` resolves (or the consumer fails), then stops
/// fetching, applies what was fetched, commits, and returns.
pub fn run(opts: LiveOptions, stop: impl Future<Output = ()>) -> Result<LiveSummary> {
    let LiveOptions {
        spec,
        slo_path,
        config,
        brokers,
        listener,
        policy,
    } = opts;
    if config.kafka.topics.is_empty() {
        return Err(anyhow!("no topic to read: give --topic or kafka.topics"));
    }
    let decoder = Arc::new(Decoder::new(&config.input).map_err(anyhow::Error::msg)?);
    // One decode worker keeps up with far more than one consumer thread
    // delivers (~5M lines/s against ~1M messages/s): more would only take
    // cores from librdkafka's threads. Half the cores, up to 4.
    let threads = match config.engine.threads {
        0 => thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4)),
        n => n,
    };
    let (batch_tx, batch_rx) = bounded::<Batch>(threads * 2);
    let (done_tx, done_rx) = bounded::<(u64, Decoded)>(threads * 2);
    let source = KafkaSource::new(&config.kafka, &brokers, batch_tx).map_err(anyhow::Error::msg)?;
    let kafka = source.shared.clone();
    let dead = match &config.kafka.dead_letter_topic {
        Some(t) => Some(DeadLetter::new(&brokers, t, &config.kafka.properties)?),
        None => None,
    };
    let (services_tx, services_rx) = bounded::<ServicesRequest>(16);
    let (reload_tx, reload_rx) = bounded::<ReloadRequest>(4);
    let published = Arc::new(Published {
        policy: policy.map(Arc::new),
        services: Some(services_tx),
        reloads: Some(reload_tx),
        compat: config.export.compat,
        ..Published::default()
    });
    let engine = Engine::new(
        &spec,
        EngineSettings {
            max_services: config.engine.max_services,
            quantile_windows: config.engine.quantile_windows.clone(),
            span_latency: false,
        },
    );
    let mut applier = Applier {
        engine,
        trackers: Vec::new(),
        counts: Vec::new(),
        names: Arc::from(Vec::new()),
        last_part: Vec::new(),
        first_part: Vec::new(),
        spread: Vec::new(),
        catch_up: Vec::new(),
        summary: LiveSummary::default(),
        rejected: RejectCounts::default(),
        max_skew: config.engine.max_skew.0,
        min_events: config.alerting.min_events,
        published: published.clone(),
        kafka: kafka.clone(),
        dead,
        last_counters: Instant::now(),
        slo_path,
        loaded_at: wall_us() as f64 / 1e6,
    };
    publish(
        &published.reload,
        Some(ReloadState {
            successful: true,
            at: applier.loaded_at,
        }),
    );
    applier.sync_services();

    for i in 0..threads {
        let rx = batch_rx.clone();
        let tx = done_tx.clone();
        let decoder = decoder.clone();
        thread::Builder::new()
            .name(format!("slate-decode-{i}"))
            .spawn(move || {
                for mut batch in rx {
                    let data = std::mem::take(&mut batch.data);
                    let chunk = decode_records(&decoder, data);
                    if tx.send((batch.seq, Decoded { chunk, batch })).is_err() {
                        break;
                    }
                }
            })?;
    }
    drop(batch_rx);
    drop(done_tx);
    let tick = Duration::from_micros(config.alerting.live_tick().0 as u64);
    let apply = thread::Builder::new()
        .name("slate-apply".into())
        .spawn(move || apply_loop(applier, done_rx, services_rx, reload_rx, tick))?;

    let stopping = Arc::new(AtomicBool::new(false));
    let (died_tx, died_rx) = tokio::sync::oneshot::channel::<String>();
    let consumer = {
        let stopping = stopping.clone();
        thread::Builder::new()
            .name("slate-kafka".into())
            .spawn(move || {
                let r = source.run(stopping);
                if let Err(e) = &r {
                    let _ = died_tx.send(e.clone());
                }
                r
            })?
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let died = rt.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        eprintln!(
            "slate: serving http://{addr}/metrics; reading {} from {brokers} as group {}",
            config.kafka.topics.join(", "),
            config.kafka.group
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<Option<String>>();
        let watch = async move {
            tokio::select! {
                _ = stop => { let _ = tx.send(None); }
                e = died_rx => { let _ = tx.send(e.ok()); }
            }
        };
        // Registered before the first request is served: until then
        // SIGHUP would end the process.
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hup) => {
                tokio::spawn(reload_on_sighup(hup, published.clone()));
            }
            Err(e) => {
                eprintln!("slate: warning: cannot handle SIGHUP ({e}); POST /-/reload still works")
            }
        }
        serve(listener, published, watch).await;
        Ok::<_, std::io::Error>(rx.await.ok().flatten())
    })?;
    stopping.store(true, Ordering::Relaxed);
    let consumed = consumer
        .join()
        .map_err(|_| anyhow!("the Kafka consumer thread panicked"))?;
    let applier = apply
        .join()
        .map_err(|_| anyhow!("the apply thread panicked"))?;
    if let Some(e) = died {
        return Err(anyhow!("kafka: {e}"));
    }
    consumed.map_err(|e| anyhow!("kafka: {e}"))?;
    Ok(applier.summary)
}
