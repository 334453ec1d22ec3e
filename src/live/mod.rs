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
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{bounded, Receiver};
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

mod state;

use crate::apply::snapshot::{self, SavedPartition, TopicRecord};
use crate::apply::{ChunkIds, Core, CoreSettings, DeadLetters, Origin, Rejects};
use crate::decode::batch::{decode_records, DecodedChunk, Rec};
use crate::decode::{Decoder, Reason};
use crate::engine::EngineSettings;
use crate::export::http::{
    publish, serve, PageRequest, Published, Readiness, ReloadRequest, ServicesRequest,
};
use crate::export::snapshot::{
    live_services, Counters, KafkaGauges, ReloadState, ServiceCounts, Snapshot, StateGauges,
};
use crate::model::{format_rfc3339, wall_us, Event, Micros, ServiceId, Span};
use crate::report::chart::Charts;
use crate::source::kafka::{
    Batch, KafkaShared, KafkaSource, LineMeta, PassRequest, Restored, StateTopic,
};
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

/// A duration to two units, for people: `6d 12h`, `3h 5m`, `42s`.
fn rough(us: Micros) -> String {
    let s = us / 1_000_000;
    let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {}s", s % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// The status page charts at most this many services (those the spec
/// names first): a chart costs about 40 KB a service.
const LIVE_CHARTED: usize = 200;

/// Events paused this long, the last pass at least `IDLE_PASS` ago: what
/// they changed is written at once (and its offsets committed), not at
/// the next interval.
const IDLE_AFTER: Duration = Duration::from_millis(100);
const IDLE_PASS: Duration = Duration::from_secs(1);

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
}

impl DeadLetters for DeadLetter {
    fn write(
        &mut self,
        raw: &[u8],
        reason: Reason,
        detail: &str,
        origin: Origin<'_>,
    ) -> Result<(), String> {
        let source = match origin {
            Origin::Kafka {
                topic,
                partition,
                offset,
            } => format!("{topic}/{partition}/{offset}"),
            Origin::Line { input, line } => format!("{input}:{line}"),
        };
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
                value: Some(&source),
            });
        let mut record = BaseRecord::<(), [u8]>::to(&self.topic)
            .payload(raw)
            .headers(headers);
        for _ in 0..50 {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
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
        // Counted in slate_events_rejected_total all the same; said at the end.
        self.failed += 1;
        Ok(())
    }

    fn idle(&mut self) {
        self.producer.poll(Duration::ZERO);
    }

    fn flush(&mut self) -> Result<(), String> {
        if let Err(e) = self.producer.flush(Duration::from_secs(10)) {
            tracing::warn!(target: "kafka", "dead-letter topic {}: {e}", self.topic);
        }
        if self.failed > 0 {
            tracing::warn!(
                target: "kafka",
                "dead-letter topic {}: {} rejected record(s) could not be written (they are counted in slate_events_rejected_total)",
                self.topic, self.failed
            );
        }
        Ok(())
    }
}

/// A decoded batch with where each line came from.
struct Decoded {
    chunk: DecodedChunk,
    batch: Batch,
}

struct Applier {
    /// The status page's chart series, sampled at ticks since the start.
    charts: Charts,
    /// The engine, its trackers, and one event-time clock per partition
    /// (by partition index) for the partitions reading their history.
    core: Core,
    counts: Vec<ServiceCounts>,
    names: Arc<[Box<str>]>,
    /// With hidden services: [`Core::homes_moved`] when `names` was built.
    names_at: Option<u64>,
    /// Per service: the partition its last event came from, the first one,
    /// and whether it came on another partition of the same topic.
    last_part: Vec<u32>,
    first_part: Vec<u32>,
    spread: Vec<bool>,
    /// Per partition: `Some(end)` while its history is being read.
    catch_up: Vec<Option<i64>>,
    /// Per partition: the apply side has seen its assignment (in this
    /// process); before that its restored services wait.
    assigned: Vec<bool>,
    summary: LiveSummary,
    rejects: Rejects,
    max_skew: i64,
    published: Arc<Published>,
    kafka: Arc<KafkaShared>,
    last_counters: Instant,
    slo_path: Option<PathBuf>,
    /// slate.yml's `alerting.windows`, given to a re-read spec too.
    alert_windows: Option<crate::spec::config::ConfiguredWindows>,
    /// When the SLO spec in use was loaded (seconds since the epoch).
    loaded_at: f64,
    /// Durable state, when on.
    state: Option<Durable>,
    /// Per service restored from a replay's state: its last archived
    /// event; events at or before it are in the state already.
    skip_until: Vec<Micros>,
    /// Per partition whose records expired while slate was away: the
    /// newest event time the state holds of it and how many records it
    /// lacks, until its first event after the gap dates the gap's end.
    gap_from: Vec<Option<(Option<Micros>, i64)>>,
    /// Per service handed over through the state topic: its record holds
    /// the records of its partition below this offset, which may be past
    /// the partition's head (a pass cut short); those are not applied
    /// again.
    skip_offset: Vec<i64>,
    quiet: crate::logs::Limiter,
}

/// The apply side of the state dir.
struct Durable {
    writer: crossbeam_channel::Sender<state::Job>,
    interval: Duration,
    last: Instant,
    /// Batches applied, and how many of them the last pass holds: when
    /// events pause, what they changed goes to disk (and its offsets to
    /// Kafka) within a second instead of at the next interval.
    applied: u64,
    at_pass: u64,
    last_batch: Instant,
    /// The next pass writes every service (nothing is on disk yet).
    base_next: bool,
    /// Per partition index: what the state on disk says of it (kept for
    /// partitions of a restored state not assigned again yet).
    saved: Vec<Option<SavedPartition>>,
    /// Per partition index: its restored clock goes on (it was reading its
    /// history at the last pass) instead of starting a new schedule.
    keep_clock: Vec<bool>,
    gauges: Arc<std::sync::Mutex<StateGauges>>,
    /// The state is kept in `kafka.state_topic` (not in the dir):
    /// revoked partitions' services are let go, assigned ones' restored.
    topic: bool,
}

impl Applier {
    /// A snapshot pass: what changed since the last one goes to the
    /// writer, with every partition's offset. `wait`: a revoke or a stop
    /// waits for a writer that is busy; an interval pass skips it.
    fn pass(&mut self, wait: bool) {
        let Some(st) = &mut self.state else {
            return;
        };
        if !wait && st.writer.is_full() {
            return;
        }
        let started = Instant::now();
        st.last = started;
        st.at_pass = st.applied;
        let mut taken = self.core.take(st.base_next);
        st.base_next = false;
        let applied = self.kafka.applied();
        let parts = self
            .kafka
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if st.saved.len() < parts.len() {
            st.saved.resize(parts.len(), None);
        }
        for (i, p) in parts.iter().enumerate() {
            if let Some(&next) = applied.get(&(i as u32)) {
                st.saved[i] = Some(SavedPartition {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    next_offset: next,
                    reading: matches!(self.catch_up.get(i), Some(Some(_))),
                });
            }
        }
        taken.head.partitions = st.saved.clone();
        taken.head.taken_at = wall_us();
        let mut heads = Vec::new();
        if st.topic {
            // The partitions this instance holds: only their state-topic
            // partitions are written.
            for (i, p) in parts.iter().enumerate() {
                if !self.assigned.get(i).copied().unwrap_or(false) {
                    continue;
                }
                let Some(&next) = applied.get(&(i as u32)) else {
                    continue;
                };
                let (watermark, next_tick) = self.core.schedule(i);
                heads.push(state::TopicHead {
                    part: i as u32,
                    partition: p.partition,
                    record: TopicRecord::Head {
                        next_offset: next,
                        watermark,
                        next_tick,
                        reading: matches!(self.catch_up.get(i), Some(Some(_))),
                        taken_at: taken.head.taken_at,
                    },
                });
            }
        }
        let job = state::Job {
            taken,
            started,
            heads,
        };
        if st.writer.send(job).is_err() {
            tracing::error!(target: "state", "the state writer stopped; no more snapshot passes");
            self.state = None;
        }
    }

    fn pass_due(&self) -> bool {
        self.state.as_ref().is_some_and(|st| {
            st.last.elapsed() >= st.interval
                || (st.applied > st.at_pass
                    && st.last_batch.elapsed() >= IDLE_AFTER
                    && st.last.elapsed() >= IDLE_PASS)
        })
    }

    fn sync_services(&mut self) {
        let n = self.core.engine.len();
        if self.counts.len() < n {
            self.counts.resize(n, ServiceCounts::default());
            self.last_part.resize(n, u32::MAX);
            self.first_part.resize(n, u32::MAX);
            self.spread.resize(n, false);
            self.skip_offset.resize(n, i64::MIN);
        }
    }

    /// Partition `part`'s state from the state topic: each service's
    /// record is adopted (it follows the partition's clock), and the
    /// head's clock goes on when the partition was reading its history.
    /// Returns whether it does.
    fn adopt_partition(&mut self, part: u32, r: &Restored) -> bool {
        let started = Instant::now();
        let i = part as usize;
        let name = {
            let parts = self
                .kafka
                .partitions
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            parts.get(i).map_or_else(
                || "?".to_string(),
                |p| format!("{}/{}", p.topic, p.partition),
            )
        };
        let head = r
            .records
            .get(snapshot::HEAD_KEY)
            .and_then(|v| TopicRecord::from_bytes(v).ok());
        let (head_offset, reading) = match &head {
            Some(TopicRecord::Head {
                next_offset,
                watermark,
                next_tick,
                reading,
                ..
            }) => {
                if *reading {
                    self.core.set_schedule(i, (*watermark, *next_tick));
                }
                (*next_offset, *reading)
            }
            _ => (i64::MIN, false),
        };
        let (mut adopted, mut ahead, mut failed) = (0usize, 0usize, 0u64);
        for (k, v) in &r.records {
            if k.as_slice() == snapshot::HEAD_KEY {
                continue;
            }
            let service = k
                .strip_prefix(b"s:")
                .and_then(|n| std::str::from_utf8(n).ok());
            let record = TopicRecord::from_bytes(v);
            let (Some(service), Ok(TopicRecord::Service { next_offset, unit })) =
                (service, record.as_ref())
            else {
                failed += 1;
                crate::warn_every!(
                    self.quiet,
                    "state-record",
                    Duration::from_secs(30),
                    target: "state",
                    "{name}: a state-topic record (key {:?}) does not read ({}); it is left out",
                    String::from_utf8_lossy(k),
                    match &record {
                        Err(e) => e.to_string(),
                        Ok(_) => "not a service's state".into(),
                    }
                );
                continue;
            };
            match self.core.adopt(i, service, unit) {
                Ok(Some(id)) => {
                    self.sync_services();
                    adopted += 1;
                    self.skip_offset[id as usize] = if *next_offset > head_offset {
                        ahead += 1;
                        *next_offset
                    } else {
                        i64::MIN
                    };
                }
                Ok(None) => tracing::warn!(
                    target: "state",
                    "{name}: service {service} is held here through another partition (its messages are not keyed by service): its state here is kept, the one handed over dropped"
                ),
                Err(e) => {
                    failed += 1;
                    tracing::warn!(target: "state", "{name}: {e}; its handed-over state is left out");
                }
            }
        }
        let secs = r.seconds + started.elapsed().as_secs_f64();
        if let Some(st) = &self.state {
            let mut g = st.gauges.lock().unwrap_or_else(|p| p.into_inner());
            g.restore_seconds = secs;
            g.failures += failed;
        }
        tracing::info!(
            target: "state",
            "{name}: restored {adopted} service(s) from the state topic in {secs:.2} s, going on from offset {}{}",
            if head.is_some() { head_offset.to_string() } else { "?".into() },
            if ahead > 0 {
                format!(" ({ahead} of them hold later records, which are not applied again)")
            } else {
                String::new()
            }
        );
        reading
    }

    /// Partitions revoked (or lost): their services are let go, since
    /// the instance that takes them restores them from the state topic.
    fn let_go(&mut self, parts: &[u32]) {
        let applied = self.kafka.applied();
        for &part in parts {
            let i = part as usize;
            let n = self.core.park(i);
            if let Some(c) = self.catch_up.get_mut(i) {
                *c = None;
            }
            if let Some(a) = self.assigned.get_mut(i) {
                *a = false;
            }
            if let Some(g) = self.gap_from.get_mut(i) {
                *g = None;
            }
            if let Some(st) = &mut self.state {
                if let Some(s) = st.saved.get_mut(i) {
                    *s = None;
                }
            }
            let name = {
                let parts = self
                    .kafka
                    .partitions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                parts.get(i).map_or_else(
                    || "?".to_string(),
                    |p| format!("{}/{}", p.topic, p.partition),
                )
            };
            let at = applied.get(&part).map_or_else(
                || "before its first record".to_string(),
                |o| format!("at offset {o}"),
            );
            tracing::info!(target: "state", "{name}: handed over {at}; its {n} service(s) are no longer held here");
        }
        // Hidden services leave the counters at once.
        self.publish_counters();
    }

    /// Service names for the counters, rebuilt when services appeared
    /// (at most once per publication, not once per new service).
    fn names(&mut self) -> Arc<[Box<str>]> {
        if self.core.hides() {
            // With several instances: only the services held here, named
            // again when one came or went.
            let moved = self.core.homes_moved();
            if self.names_at != Some(moved) {
                self.names_at = Some(moved);
                self.names = self
                    .core
                    .engine
                    .services()
                    .enumerate()
                    .filter(|&(id, _)| self.core.shown(id as ServiceId))
                    .map(|(_, (n, _))| n.into())
                    .collect();
            }
        } else if self.names.len() < self.core.engine.len() {
            self.names = self.core.engine.services().map(|(n, _)| n.into()).collect();
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
        let loaded = SloSpec::load(&path).and_then(|mut spec| {
            spec.use_alert_windows(self.alert_windows.as_ref())?;
            Ok(spec)
        });
        let spec = match loaded {
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
            tracing::warn!(target: "spec", "{w}");
        }
        let done = self.core.reload(&spec);
        self.sync_services();
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
            "reloaded {}: {} SLO(s) unchanged, their state kept; {} new or changed, counted from now on (error-rate SLOs keep the request counts); {} removed",
            path.display(),
            done.kept,
            done.started,
            done.removed
        ))
    }

    fn reject(&mut self, reason: Reason, detail: &str, raw: &[u8], meta: LineMeta) {
        if meta.rebuild {
            // Counted before the restart.
            return;
        }
        self.summary.rejected += 1;
        let Some(dead) = self.rejects.count(reason) else {
            return;
        };
        let parts = self
            .kafka
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (topic, partition) = parts
            .get(meta.part as usize)
            .map_or(("?", -1), |p| (p.topic.as_str(), p.partition));
        let origin = Origin::Kafka {
            topic,
            partition,
            offset: meta.offset,
        };
        // A dead letter that cannot be sent is counted by the sink.
        let _ = dead.write(raw, reason, detail, origin);
    }

    /// Whether partition `part` is reading its history (its services
    /// follow its events' time, not the wall clock).
    fn reading(&self, part: u32) -> bool {
        matches!(self.catch_up.get(part as usize), Some(Some(_)))
    }

    /// The first event read after partition `part`'s retention gap dates
    /// its end: its services lack the time from the state's newest event
    /// to `to`, which their `coverage` leaves out.
    fn gap_ends(&mut self, part: u32, (from, records): (Option<Micros>, i64), to: Micros) {
        let (topic, partition) = {
            let parts = self
                .kafka
                .partitions
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            parts
                .get(part as usize)
                .map_or(("?".to_string(), -1), |p| (p.topic.clone(), p.partition))
        };
        match from {
            Some(from) if to > from => {
                let n = self.core.lacks(part as usize, from, to);
                tracing::warn!(
                    target: "state",
                    "{topic}/{partition}: its {records} expired record(s) lie between {} (the state's newest event) and {} (the first one left): {} that the coverage of its {n} service(s) leaves out",
                    crate::model::format_rfc3339(from),
                    crate::model::format_rfc3339(to),
                    crate::model::Span(to - from),
                );
            }
            _ => tracing::warn!(
                target: "state",
                "{topic}/{partition}: the state held no event of it before its {records} expired record(s); coverage starts at its first event"
            ),
        }
    }

    /// Partition `part` has read its history: its services follow the
    /// wall clock from the next tick.
    fn caught_up(&mut self, part: u32) {
        if let Some(c) = self.catch_up.get_mut(part as usize) {
            *c = None;
        }
    }

    fn apply(&mut self, seq: u64, d: Decoded) {
        let Decoded { chunk, batch } = d;
        for a in &batch.assigned {
            let i = a.part as usize;
            if self.catch_up.len() <= i {
                self.catch_up.resize(i + 1, None);
                self.assigned.resize(i + 1, false);
            }
            let mut keep_clock = false;
            if self.state.as_ref().is_some_and(|st| st.topic) {
                // Whatever an earlier assignment of it left here is not its
                // state: the state topic's is.
                self.core.park(i);
                if let Some(r) = &a.restored {
                    keep_clock = self.adopt_partition(a.part, r);
                }
            }
            self.catch_up[i] = a.history_end;
            self.assigned[i] = true;
            if a.expired > 0 {
                if self.gap_from.len() <= i {
                    self.gap_from.resize(i + 1, None);
                }
                self.gap_from[i] = Some((self.core.newest(i), a.expired));
            }
            // A history to read starts a new event-time schedule, unless a
            // restored state was reading it already: its clock goes on.
            let keep = keep_clock
                || self
                    .state
                    .as_mut()
                    .and_then(|st| st.keep_clock.get_mut(i))
                    .is_some_and(std::mem::take);
            if !keep {
                self.core.reset_clock(i);
            }
        }
        let now = wall_us();
        let mut ids = ChunkIds::default();
        ids.reset(chunk.names.len());
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
                    self.caught_up(meta.part);
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
                    if let Some(gap) = self
                        .gap_from
                        .get_mut(meta.part as usize)
                        .and_then(Option::take)
                    {
                        self.gap_ends(meta.part, gap, ts);
                    }
                    if ts >= now - self.max_skew {
                        // Live data: whatever history there was is read.
                        self.caught_up(meta.part);
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
                    let id = match ids.resolve(&mut self.core, &chunk.names, *service) {
                        Ok(id) => id,
                        Err(reason) => {
                            self.reject(reason, "service not admitted", chunk.line_bytes(at), meta);
                            continue;
                        }
                    };
                    self.sync_services();
                    if self.skip_until.get(id as usize).is_some_and(|&u| ts <= u) {
                        self.summary.skipped += 1;
                        continue;
                    }
                    if self
                        .skip_offset
                        .get(id as usize)
                        .is_some_and(|&o| meta.offset < o)
                        && self.core.home(id) == Some(meta.part as usize)
                    {
                        // In the service's record already (a pass that
                        // was cut short after writing it).
                        self.summary.skipped += 1;
                        continue;
                    }
                    let ev = Event {
                        ts,
                        service: id,
                        error: *error,
                        latency_us: *latency_us,
                    };
                    let clock = meta.part as usize;
                    // History is read as a replay reads it: the partition's
                    // services tick in its events' time, and an event is
                    // late against that time, not against the wall clock.
                    let judged_at = if self.reading(meta.part) {
                        while let Some(t) = self.core.due_tick(clock, ts) {
                            self.core.tick(clock, t);
                        }
                        self.core.now_at(clock, ts)
                    } else {
                        now
                    };
                    let clamped = self.core.engine.service(id).clamped;
                    match self.core.apply(clock, &ev, judged_at) {
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
                                c.clamped += self.core.engine.service(id).clamped - clamped;
                                self.summary.accepted += 1;
                            }
                        }
                        Err(reason) => self.reject(
                            reason,
                            "older than the longest SLO period before now",
                            chunk.line_bytes(at),
                            meta,
                        ),
                    }
                }
            }
        }
        for part in &batch.caught_up {
            self.caught_up(*part);
        }
        self.kafka.mark_applied(seq, offsets);
        if let Some(st) = &mut self.state {
            st.applied += 1;
            st.last_batch = Instant::now();
        }
        if let Some(d) = &mut self.rejects.dead {
            d.idle();
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
            tracing::warn!(
                target: "kafka",
                "service {} arrives on several partitions of {topic} while this instance holds {held} of its {total}: \
                 the other instances see part of it; key messages by service",
                self.core.engine.name(id)
            );
        }
    }

    /// (topic, partition, reading its history) per assigned partition.
    fn catching_up(&self) -> Vec<(String, i32, bool)> {
        let parts = self
            .kafka
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.assigned)
            .map(|(i, p)| (p.topic.clone(), p.partition, self.reading(i as u32)))
            .collect()
    }

    /// How far the catch-up has come, for `/readyz`: `None` when no
    /// partition is reading its history.
    fn catch_up_progress(&self, now: Micros) -> Option<String> {
        let reading: Vec<usize> = (0..self.catch_up.len())
            .filter(|&i| self.reading(i as u32))
            .collect();
        if reading.is_empty() {
            return None;
        }
        let parts = self
            .kafka
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let applied = self.kafka.applied();
        let mut each = Vec::new();
        for &i in &reading {
            let name = parts.get(i).map_or_else(
                || "?".to_string(),
                |p| format!("{}/{}", p.topic, p.partition),
            );
            let at = match self.core.clock(i).and_then(|c| c.watermark) {
                Some(w) => format!(
                    "at {} ({} behind the clock)",
                    format_rfc3339(w),
                    rough((now - w).max(0))
                ),
                None => "not started".to_string(),
            };
            let left = match (self.catch_up[i], applied.get(&(i as u32))) {
                (Some(end), Some(&next)) => format!(", {} record(s) to go", (end - next).max(0)),
                (Some(end), None) => format!(", reading up to offset {end}"),
                _ => String::new(),
            };
            each.push(format!("{name} {at}{left}"));
        }
        Some(format!(
            "catching up: {} partition(s) reading their history in event time: {}",
            reading.len(),
            each.join("; ")
        ))
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
        let services = if self.core.hides() {
            (0..self.counts.len())
                .filter(|&id| self.core.shown(id as ServiceId))
                .map(|id| self.counts[id])
                .collect()
        } else {
            self.counts.clone()
        };
        publish(
            &self.published.counters,
            Arc::new(Counters {
                names,
                services,
                ingested: vec![("kafka", self.summary.accepted + self.summary.rejected)],
                rejected: self.rejects.counts,
            }),
        );
    }

    /// What the status page draws as of now: the live report and the
    /// charts recorded since the start.
    fn page(&self) -> (crate::report::Report, Charts) {
        let core = &self.core;
        let events = crate::report::EventsReport {
            accepted: self.summary.accepted,
            rejected: self.rejects.counts.total(),
            rejected_by_reason: crate::report::Ordered(
                crate::model::Reason::ALL
                    .iter()
                    .map(|r| (r.as_str().to_string(), self.rejects.counts.get(*r)))
                    .collect(),
            ),
            outside_span: 0,
            input_errors: Vec::new(),
        };
        let report = crate::export::snapshot::live_report(
            &core.engine,
            &core.trackers,
            wall_us(),
            |id| core.shown(id as ServiceId),
            events,
        );
        (report, self.charts.clone())
    }

    /// An evaluation tick at wall-clock now. A service whose partition is
    /// still reading its history is not moved to now (that would put the
    /// rest of its history behind its windows): it ticks in event time.
    fn tick(&mut self) {
        let now = wall_us();
        let catch_up = &self.catch_up;
        // A service moves with the wall clock only while this process holds
        // its partition and has read the partition's history: a restored
        // service whose partition is not assigned again yet (or whose
        // assignment the apply side has not seen yet) waits for its
        // records, which moving it to now would make late.
        let held: Vec<bool> = {
            let parts = self
                .kafka
                .partitions
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            parts
                .iter()
                .enumerate()
                .map(|(i, p)| p.assigned && self.assigned.get(i).copied().unwrap_or(false))
                .collect()
        };
        self.core.tick_wall(now, |c| {
            matches!(catch_up.get(c), Some(Some(_))) || !held.get(c).copied().unwrap_or(false)
        });
        self.charts.tick(&self.core.engine, now);
        let core = &self.core;
        let snapshot = Snapshot::take(&core.engine, &core.trackers, now, |id| {
            core.shown(id as ServiceId)
        });
        publish(&self.published.snapshot, Arc::new(snapshot));
        self.publish_counters();
        publish(
            &self.published.kafka,
            Arc::new(KafkaGauges {
                lag: self.kafka.lag(),
                spread: self.spread_by_topic(),
                catching_up: self.catching_up(),
                state: self.state.as_ref().map(|st| {
                    let mut g = st.gauges.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    g.gaps = self
                        .kafka
                        .gaps
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    g
                }),
            }),
        );
        let status = self
            .kafka
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let readiness = if !status.brokers_up {
            Readiness::NotReady(match status.last_error {
                Some(e) => format!("brokers unreachable ({e})"),
                None => "connecting to the brokers".into(),
            })
        } else if status.assigned == 0 {
            Readiness::NotReady("waiting for partitions of the consumer group".into())
        } else if let Some(progress) = self.catch_up_progress(now) {
            Readiness::NotReady(progress)
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
    pages: Receiver<PageRequest>,
    passes: Receiver<PassRequest>,
    tick: Duration,
) -> Applier {
    let mut waiting: BTreeMap<u64, Decoded> = BTreeMap::new();
    let mut next = 0u64;
    let mut next_tick = Instant::now() + tick;
    a.tick();
    loop {
        let mut wait = next_tick.saturating_duration_since(Instant::now());
        if a.state.as_ref().is_some_and(|st| st.applied > st.at_pass) {
            // Events not on disk yet: look again soon for a pause.
            wait = wait.min(IDLE_AFTER);
        }
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
                    let core = &a.core;
                    let _ = reply.send(live_services(&core.engine, &core.trackers, wall_us(), |id| core.shown(id as ServiceId)));
                }
            },
            recv(pages) -> r => {
                if let Ok(reply) = r {
                    let _ = reply.send(a.page());
                }
            },
            recv(reloads) -> r => {
                if let Ok(reply) = r {
                    let result = a.reload();
                    match &result {
                        Ok(done) => tracing::info!(target: "spec", "{done}"),
                        Err(e) => tracing::error!(target: "spec", "reload refused, the previous SLO spec is kept: {e}"),
                    }
                    let _ = reply.send(result);
                }
            },
            recv(passes) -> r => {
                if let Ok(req) = r {
                    if !req.lost {
                        a.pass(true);
                    }
                    if a.state.as_ref().is_some_and(|st| st.topic) && !req.revoke.is_empty() {
                        a.let_go(&req.revoke);
                    }
                }
            },
            default(wait) => {},
        }
        if a.pass_due() {
            a.pass(false);
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
    a.pass(true);
    // The writer finishes the last pass and stops.
    a.state = None;
    if let Some(d) = &mut a.rejects.dead {
        let _ = d.flush();
    }
    a
}

/// The offset a state-topic head record says its partition goes on from.
fn head_offset(value: &[u8]) -> Option<i64> {
    match TopicRecord::from_bytes(value).ok()? {
        TopicRecord::Head { next_offset, .. } => Some(next_offset),
        TopicRecord::Service { .. } => None,
    }
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
    let mut spec = spec;
    spec.use_alert_windows(config.alerting.windows.as_ref())?;
    if config.kafka.topics.is_empty() {
        return Err(anyhow!("no topic to read: give --topic or kafka.topics"));
    }
    if crate::decode::sniff::wanted(&config.input)
        && (config.input.format == crate::spec::config::Format::Auto
            || config.input.envelope() == crate::spec::config::Envelope::Auto)
    {
        return Err(anyhow!(
            "input.format and input.envelope cannot be auto in slate run: there is no file to look at first. Name them in slate.yml (`slate check --format auto --envelope auto SAMPLE` on a sample of the topic says which)"
        ));
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
    let dead: Option<Box<dyn DeadLetters + Send>> = match &config.kafka.dead_letter_topic {
        Some(t) => Some(Box::new(DeadLetter::new(
            &brokers,
            t,
            &config.kafka.properties,
        )?)),
        None => None,
    };
    let (services_tx, services_rx) = bounded::<ServicesRequest>(16);
    let (reload_tx, reload_rx) = bounded::<ReloadRequest>(4);
    let (page_tx, page_rx) = bounded::<PageRequest>(4);
    let published = Arc::new(Published {
        policy: policy.map(Arc::new),
        services: Some(services_tx),
        reloads: Some(reload_tx),
        pages: Some(page_tx),
        compat: config.export.compat,
        ..Published::default()
    });
    let settings = CoreSettings {
        engine: EngineSettings {
            max_services: config.engine.max_services,
            quantile_windows: config.engine.quantile_windows.clone(),
            span_latency: false,
            // The weeks and months the review compares: this month and
            // the last, a quarter to come, and some slack.
            calendar: true,
            calendar_days: 100,
        },
        min_events: config.alerting.min_events,
        step: config.alerting.replay_step(),
    };
    // The Kafka properties, then the state dir: either one wrong is an
    // error before anything is read or written.
    crate::source::kafka::check_properties(&config.kafka).map_err(anyhow::Error::msg)?;
    config
        .kafka
        .check_state_topic()
        .map_err(anyhow::Error::msg)?;
    // With a state topic the state lives there, and the dir is not used
    // (DESIGN §8a: the single-instance default).
    let topic_mode = config.kafka.state_topic.is_some() && config.state.enabled();
    let mut restored: Option<(Core, Vec<Option<SavedPartition>>)> = None;
    let mut skip_until: Vec<Micros> = Vec::new();
    let mut archived_until: Option<Micros> = None;
    let gauges = Arc::new(std::sync::Mutex::new(StateGauges::default()));
    let mut dir = None;
    if config.state.enabled() && !topic_mode {
        let mut d = crate::state::StateDir::open(&config.state.dir).map_err(anyhow::Error::msg)?;
        let started = Instant::now();
        let loaded = d.load().map_err(anyhow::Error::msg)?;
        if let Some((head, units)) = loaded.state {
            let n = head.names.len();
            let core = snapshot::restore(&head, units, &spec, settings.clone()).map_err(|e| {
                anyhow!(
                    "the state in {} does not restore ({e}); move the dir aside to start with an empty state",
                    config.state.dir.display()
                )
            })?;
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(
                target: "state",
                "restored {n} service(s) from {} ({} file(s), the last pass taken at {}) in {secs:.2} s",
                config.state.dir.display(),
                loaded.files,
                format_rfc3339(head.taken_at),
            );
            let mut core = core;
            // A replay's state (`slate replay --save-state`): its clock
            // follows no partition here. Its services follow the clock of
            // their next event, and events at or before what a service
            // already holds are skipped (DESIGN §8a).
            let mapped = |c: usize| head.partitions.get(c).is_some_and(Option::is_some);
            for id in 0..core.engine.len() {
                let id = id as crate::model::ServiceId;
                if core.home(id).is_some_and(|c| !mapped(c)) {
                    if skip_until.len() <= id as usize {
                        skip_until.resize(id as usize + 1, Micros::MIN);
                    }
                    skip_until[id as usize] =
                        core.engine.service(id).last_ts.unwrap_or(Micros::MIN);
                }
            }
            if core.release_clocks(mapped) > 0 {
                archived_until = head.now;
                tracing::info!(
                    target: "state",
                    "a replay's state, up to {}: each partition is read from there, and each service's events at or before its last archived one are skipped",
                    head.now.map_or_else(|| "?".into(), format_rfc3339)
                );
            }
            restored = Some((core, head.partitions));
            gauges
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .restore_seconds = secs;
        } else {
            tracing::info!(
                target: "state",
                "no state in {} yet; the first pass writes it",
                config.state.dir.display()
            );
        }
        gauges.lock().unwrap_or_else(|p| p.into_inner()).failures = loaded.failures.len() as u64;
        dir = Some(d);
    }
    let (mut core, saved) = match restored {
        Some((core, saved)) => (core, saved),
        None => (Core::new(&spec, settings), Vec::new()),
    };
    // With several instances, each service is shown by the one holding
    // its partition (a service of the spec with no event yet by none).
    core.only_homed = topic_mode;
    // With no state to resume from, history is read as far back as the
    // longest period (the topic's retention permitting).
    let mut history = config.kafka.rebuild_window.unwrap_or(core.horizon());
    if let Some(end) = archived_until {
        // From the replay's end (less the disorder a source may have).
        let since = crate::model::Span((wall_us() - end).max(0) + config.engine.max_skew.0);
        history = history.min(since);
    }
    let state_topic = topic_mode.then(|| StateTopic {
        cfg: config.kafka.clone(),
        brokers: brokers.clone(),
        head_offset,
        head_key: snapshot::HEAD_KEY,
    });
    let source = KafkaSource::new(&config.kafka, &brokers, batch_tx, history, state_topic)
        .map_err(anyhow::Error::msg)?;
    let kafka = source.shared.clone();
    let (pass_tx, mut pass_rx) = bounded::<PassRequest>(4);
    let mut writer = None;
    let durable = match dir {
        Some(d) => {
            let base_next = d.wants_base();
            kafka.use_durable_state(pass_tx);
            source.resume(
                &saved
                    .iter()
                    .map(|p| {
                        p.as_ref()
                            .map(|p| (p.topic.clone(), p.partition, p.next_offset))
                    })
                    .collect::<Vec<_>>(),
            );
            let (tx, handle) = state::spawn(d, kafka.clone(), gauges.clone())?;
            writer = Some(handle);
            Some(Durable {
                writer: tx,
                interval: Duration::from_micros(config.state.interval.0 as u64),
                last: Instant::now(),
                applied: 0,
                at_pass: 0,
                last_batch: Instant::now(),
                base_next,
                keep_clock: saved
                    .iter()
                    .map(|p| p.as_ref().is_some_and(|p| p.reading))
                    .collect(),
                saved,
                gauges,
                topic: false,
            })
        }
        None if topic_mode => {
            kafka.use_durable_state(pass_tx);
            let producer = crate::source::statetopic::StateProducer::new(&config.kafka, &brokers)
                .map_err(anyhow::Error::msg)?;
            let (tx, handle) = state::spawn_topic(producer, kafka.clone(), gauges.clone())?;
            writer = Some(handle);
            tracing::info!(
                target: "state",
                "the state is kept in the state topic {} (state.dir is not used)",
                config.kafka.state_topic.as_deref().unwrap_or("?")
            );
            Some(Durable {
                writer: tx,
                interval: Duration::from_micros(config.state.interval.0 as u64),
                last: Instant::now(),
                applied: 0,
                at_pass: 0,
                last_batch: Instant::now(),
                base_next: false,
                keep_clock: Vec::new(),
                saved: Vec::new(),
                gauges,
                topic: true,
            })
        }
        None => {
            pass_rx = crossbeam_channel::never();
            None
        }
    };
    let mut applier = Applier {
        core,
        counts: Vec::new(),
        names: Arc::from(Vec::new()),
        names_at: None,
        last_part: Vec::new(),
        first_part: Vec::new(),
        spread: Vec::new(),
        catch_up: Vec::new(),
        assigned: Vec::new(),
        gap_from: Vec::new(),
        summary: LiveSummary::default(),
        charts: Charts::new(Span::mins(1)).limited(LIVE_CHARTED),
        rejects: Rejects::new(dead),
        max_skew: config.engine.max_skew.0,
        published: published.clone(),
        kafka: kafka.clone(),
        last_counters: Instant::now(),
        slo_path,
        alert_windows: config.alerting.windows.clone(),
        loaded_at: wall_us() as f64 / 1e6,
        state: durable,
        skip_until,
        skip_offset: Vec::new(),
        quiet: crate::logs::Limiter::default(),
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
        .spawn(move || {
            apply_loop(
                applier,
                done_rx,
                services_rx,
                reload_rx,
                page_rx,
                pass_rx,
                tick,
            )
        })?;

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
        tracing::info!(
            target: "slate",
            "serving http://{addr}/metrics; reading {} from {brokers} as group {}",
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
                tracing::warn!(target: "slate", "cannot handle SIGHUP ({e}); POST /-/reload still works")
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
    if let Some(w) = writer {
        w.join()
            .map_err(|_| anyhow!("the state writer thread panicked"))?;
    }
    if let Some(e) = died {
        return Err(anyhow!("kafka: {e}"));
    }
    consumed.map_err(|e| anyhow!("kafka: {e}"))?;
    Ok(applier.summary)
}
