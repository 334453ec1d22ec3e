//! The Kafka source of `slate run`: a consumer-group member (rdkafka's
//! `BaseConsumer` on one thread) that cuts what it fetches into batches of
//! lines with each line's partition and offset, rebuilds the windows on
//! assignment, and commits an offset only after the apply side says the
//! events before it are in the state.
//!
//! On assignment each partition starts at the offset of `now −
//! rebuild_window` (offsets-for-times; where a broker cannot answer, the
//! earliest offset, with lines older than the window skipped by their own
//! timestamps). Lines below the group's committed offset are *rebuild*:
//! they fill state and move no counter. On revocation and at shutdown the
//! batch in hand is sent, the apply side drained, and the offsets
//! committed synchronously.
//!
//! May import `model` and `spec` (the `kafka` section).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::ClientContext;
use rustc_hash::FxHashMap;

use crate::model::{wall_us, Micros};
use crate::spec::config::KafkaConfig;

/// Where a line came from, and how to treat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineMeta {
    /// Index into [`KafkaShared::partitions`].
    pub part: u32,
    pub offset: i64,
    /// Below the group's committed offset: fills state, moves no counter.
    pub rebuild: bool,
    /// Lines dated before this are older than the rebuild window: skipped
    /// (`Micros::MIN` when the line is past the history read at assignment).
    pub skip_before: Micros,
}

/// Lines as fetched, in order within each partition: one per line of
/// `data` (a message may carry several records, one per line).
#[derive(Debug, Default)]
pub struct Batch {
    pub seq: u64,
    pub data: Vec<u8>,
    pub lines: Vec<LineMeta>,
    /// Partitions assigned before the lines of this batch.
    pub assigned: Vec<Assigned>,
    /// Partitions that reached their end after the lines of this batch:
    /// their history is read.
    pub caught_up: Vec<u32>,
}

/// A partition assigned before a batch's lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Assigned {
    /// Its index.
    pub part: u32,
    /// The offset its history ends at (`None`: no history to read).
    pub history_end: Option<i64>,
    /// Records between the state's offset and the partition's earliest
    /// that expired while slate was away (0: none).
    pub expired: i64,
    /// With a state topic: the partition's state as its last owner left
    /// it (the latest record of each key), to restore before its lines.
    pub restored: Option<Arc<Restored>>,
}

/// A partition's state read from the state topic on assignment.
#[derive(Debug, PartialEq)]
pub struct Restored {
    pub records: crate::source::statetopic::Latest,
    /// How long reading it took.
    pub seconds: f64,
}

/// What the apply side is asked for besides an interval pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassRequest {
    /// Partitions (by index) being revoked: with a state topic, their
    /// services are let go once the pass holds them.
    pub revoke: Vec<u32>,
    /// They were lost (another member may hold them already): let go
    /// without writing them.
    pub lost: bool,
}

/// The state topic, as the consumer thread uses it.
#[derive(Clone)]
pub struct StateTopic {
    pub cfg: KafkaConfig,
    pub brokers: String,
    /// The offset a head record's value says its partition goes on from
    /// (the format is the apply side's).
    pub head_offset: fn(&[u8]) -> Option<i64>,
    pub head_key: &'static [u8],
}

/// A partition this consumer has held, by a stable index.
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub topic: String,
    pub partition: i32,
    pub assigned: bool,
    /// Offsets below this are rebuild (the group's committed offset).
    rebuild_until: i64,
    /// Lines below this offset and dated before `skip_before` are skipped.
    skip_until: i64,
    skip_before: Micros,
}

impl PartitionInfo {
    /// A slot for a partition of a restored state, not yet assigned.
    fn restored(topic: &str, partition: i32) -> PartitionInfo {
        PartitionInfo {
            topic: topic.to_string(),
            partition,
            assigned: false,
            rebuild_until: -1,
            skip_until: -1,
            skip_before: Micros::MIN,
        }
    }
}

/// What the consumer thread and the apply side share.
#[derive(Debug, Default)]
pub struct KafkaShared {
    pub partitions: Mutex<Vec<PartitionInfo>>,
    /// Per partition index: the next offset to commit (every event before
    /// it is applied).
    applied: Mutex<FxHashMap<u32, i64>>,
    /// How many batches the apply side has finished.
    done: Mutex<u64>,
    done_cv: Condvar,
    pub status: Mutex<KafkaStatus>,
    /// Per topic: how many partitions it has (from the metadata at
    /// assignment), to tell whether this instance holds all of them.
    pub topic_partitions: Mutex<FxHashMap<String, usize>>,
    /// With a state dir: per partition index, the next offset of the state
    /// on disk. Only these are committed, so that the committed offset is
    /// never ahead of what a restart restores (DESIGN §8a).
    durable: Mutex<Option<FxHashMap<u32, i64>>>,
    durable_cv: Condvar,
    /// Asks the apply side for a snapshot pass now (a revoke, a stop).
    pass_now: OnceLock<Sender<PassRequest>>,
    /// Per partition: records that expired from the topic while slate was
    /// away (its state's offset was below the partition's earliest).
    pub gaps: Mutex<Vec<(String, i32, i64)>>,
}

/// What the consumer knows of the cluster, for `/readyz` and the lag gauge.
#[derive(Debug, Clone, Default)]
pub struct KafkaStatus {
    /// Every known broker is up (from librdkafka's statistics and errors).
    pub brokers_up: bool,
    /// The last broker-level error, for `/readyz`.
    pub last_error: Option<String>,
    /// (topic, partition) → the partition's end offset.
    pub high: FxHashMap<(String, i32), i64>,
    pub assigned: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits on `cv` until `done` holds for what `m` guards; false on timeout.
fn wait_until<T>(m: &Mutex<T>, cv: &Condvar, timeout: Duration, done: impl Fn(&T) -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut guard = lock(m);
    while !done(&guard) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        guard = cv
            .wait_timeout(guard, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    true
}

impl KafkaShared {
    /// Called by the apply side once batch `seq` is in the state.
    pub fn mark_applied(&self, seq: u64, offsets: impl IntoIterator<Item = (u32, i64)>) {
        {
            let mut applied = lock(&self.applied);
            for (part, next) in offsets {
                let e = applied.entry(part).or_insert(next);
                *e = (*e).max(next);
            }
        }
        let mut done = lock(&self.done);
        *done = (*done).max(seq + 1);
        self.done_cv.notify_all();
    }

    /// Waits until `n` batches are applied; false on timeout.
    fn wait_applied(&self, n: u64, timeout: Duration) -> bool {
        wait_until(&self.done, &self.done_cv, timeout, |done| *done >= n)
    }

    /// Per partition index: the next offset to apply, where one is known.
    pub fn applied(&self) -> FxHashMap<u32, i64> {
        lock(&self.applied).clone()
    }

    /// Durable state on: offsets are committed only once on disk, and the
    /// apply side is asked for a pass through `pass_now`.
    pub fn use_durable_state(&self, pass_now: Sender<PassRequest>) {
        *lock(&self.durable) = Some(FxHashMap::default());
        let _ = self.pass_now.set(pass_now);
    }

    /// Called by the state writer once a pass is on disk.
    pub fn mark_durable(&self, offsets: impl IntoIterator<Item = (u32, i64)>) {
        if let Some(d) = lock(&self.durable).as_mut() {
            for (part, next) in offsets {
                let e = d.entry(part).or_insert(next);
                *e = (*e).max(next);
            }
        }
        self.durable_cv.notify_all();
    }

    /// With durable state: asks for a pass and waits until every applied
    /// offset of `parts` (or of every partition) is on disk; false on
    /// timeout. Without: true at once.
    fn wait_durable(&self, parts: Option<&[u32]>, lost: bool, timeout: Duration) -> bool {
        let Some(tx) = self.pass_now.get() else {
            return true;
        };
        let want: Vec<(u32, i64)> = if lost {
            Vec::new()
        } else {
            lock(&self.applied)
                .iter()
                .filter(|(i, _)| parts.is_none_or(|p| p.contains(i)))
                .map(|(&i, &n)| (i, n))
                .collect()
        };
        let req = PassRequest {
            revoke: parts.map(<[u32]>::to_vec).unwrap_or_default(),
            lost,
        };
        if tx.send(req).is_err() {
            return false;
        }
        wait_until(&self.durable, &self.durable_cv, timeout, |durable| {
            durable.as_ref().is_none_or(|d| {
                want.iter()
                    .all(|(i, n)| d.get(i).is_some_and(|have| have >= n))
            })
        })
    }

    /// What may be committed: with durable state, what is on disk; else
    /// what is applied.
    fn committable(&self) -> FxHashMap<u32, i64> {
        match lock(&self.durable).as_ref() {
            Some(d) => d.clone(),
            None => lock(&self.applied).clone(),
        }
    }

    /// Lag per assigned partition: its end offset minus the next offset
    /// to apply (approximate where the broker's end offset is).
    pub fn lag(&self) -> Vec<(String, i32, i64)> {
        let parts = lock(&self.partitions).clone();
        let applied = lock(&self.applied).clone();
        let status = lock(&self.status);
        parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.assigned)
            .filter_map(|(i, p)| {
                let high = *status.high.get(&(p.topic.clone(), p.partition))?;
                let next = applied
                    .get(&(i as u32))
                    .copied()
                    .unwrap_or(p.rebuild_until.max(0));
                Some((p.topic.clone(), p.partition, (high - next).max(0)))
            })
            .collect()
    }
}

/// Accumulates fetched messages into batches for the decode workers.
struct Batcher {
    seq: u64,
    cur: Batch,
    tx: Option<Sender<Batch>>,
    /// (topic, partition) → partition index, with the last one cached.
    index: FxHashMap<(String, i32), u32>,
    last: Option<(String, i32, u32)>,
    /// Copied from `PartitionInfo` for the hot path.
    rules: Vec<(i64, i64, Micros)>,
}

/// Lines per batch, and bytes: big enough to amortize the hand-offs,
/// small enough that a batch is applied within milliseconds.
const BATCH_LINES: usize = 4096;
const BATCH_BYTES: usize = 1 << 20;

impl Batcher {
    fn part(&mut self, topic: &str, partition: i32) -> Option<u32> {
        if let Some((t, p, i)) = &self.last {
            if *p == partition && t == topic {
                return Some(*i);
            }
        }
        let i = *self.index.get(&(topic.to_string(), partition))?;
        self.last = Some((topic.to_string(), partition, i));
        Some(i)
    }

    fn push(&mut self, topic: &str, partition: i32, offset: i64, payload: &[u8]) {
        let Some(part) = self.part(topic, partition) else {
            // A message of a partition never assigned cannot happen; if it
            // does, it is not lost: it is read again after the next commit.
            return;
        };
        let (rebuild_until, skip_until, skip_before) = self.rules[part as usize];
        let meta = LineMeta {
            part,
            offset,
            rebuild: offset < rebuild_until,
            skip_before: if offset < skip_until {
                skip_before
            } else {
                Micros::MIN
            },
        };
        let payload = payload.strip_suffix(b"\n").unwrap_or(payload);
        self.cur.data.extend_from_slice(payload);
        self.cur.data.push(b'\n');
        self.cur.lines.push(meta);
        // Usually one record a message; a message of several lines is
        // several records.
        for _ in memchr::memchr_iter(b'\n', payload) {
            self.cur.lines.push(meta);
        }
    }

    fn full(&self) -> bool {
        self.cur.lines.len() >= BATCH_LINES || self.cur.data.len() >= BATCH_BYTES
    }

    /// Sends the batch in hand; returns how many batches were sent so far.
    fn flush(&mut self) -> u64 {
        if !self.cur.lines.is_empty()
            || !self.cur.caught_up.is_empty()
            || !self.cur.assigned.is_empty()
        {
            let mut b = std::mem::take(&mut self.cur);
            b.seq = self.seq;
            if let Some(tx) = &self.tx {
                if tx.send(b).is_ok() {
                    self.seq += 1;
                }
            }
        }
        self.seq
    }
}

/// When the last asynchronous commit was sent, and its offsets.
type LastCommit = (Option<Instant>, Vec<(u32, i64)>);

/// The consumer's context: rebalances, statistics and errors.
pub struct SlateContext {
    shared: Arc<KafkaShared>,
    batcher: Mutex<Batcher>,
    rebuild_window: Micros,
    quiet: crate::logs::Limiter,
    /// The user set librdkafka's `debug` property: pass its log through.
    debug: bool,
    /// The last asynchronous commit (partition index, next offset): an
    /// idle consumer commits only what changed.
    last_committed: Mutex<LastCommit>,
    /// With `kafka.state_topic`: where assigned partitions' state is read.
    state_topic: Option<StateTopic>,
}

impl ClientContext for SlateContext {
    /// librdkafka's own log: errors (at most once per 30 s each), and
    /// everything when the `debug` property asks for it.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if self.debug {
            tracing::info!(target: "kafka", "librdkafka {fac}: {message}");
        } else if (level as i32) <= (RDKafkaLogLevel::Error as i32) {
            // Warnings (a broker connection failing, say) come again through
            // the error callback, with their code.
            crate::warn_every!(self.quiet, fac, Duration::from_secs(30), target: "kafka", "librdkafka {fac}: {message}");
        }
    }

    fn stats(&self, s: Statistics) {
        let brokers: Vec<_> = s.brokers.values().filter(|b| b.nodeid >= 0).collect();
        let up = !brokers.is_empty() && brokers.iter().all(|b| b.state == "UP");
        let mut st = lock(&self.shared.status);
        st.brokers_up = up;
        if up {
            st.last_error = None;
        }
        for (topic, t) in &s.topics {
            for (p, part) in &t.partitions {
                if *p >= 0 && part.hi_offset >= 0 {
                    st.high.insert((topic.clone(), *p), part.hi_offset);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        if code == Some(RDKafkaErrorCode::PartitionEOF) {
            // The end of a partition is news, not an error.
            return;
        }
        if matches!(
            code,
            Some(RDKafkaErrorCode::AllBrokersDown) | Some(RDKafkaErrorCode::BrokerTransportFailure)
        ) {
            let mut st = lock(&self.shared.status);
            if code == Some(RDKafkaErrorCode::AllBrokersDown) {
                st.brokers_up = false;
            }
            st.last_error = Some(reason.to_string());
        }
        crate::warn_every!(
            self.quiet,
            &format!("{code:?}"),
            Duration::from_secs(30),
            target: "kafka",
            "{error}: {reason}; retrying"
        );
    }
}

impl ConsumerContext for SlateContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let starts = self.plan_assignment(consumer, tpl);
                let r = if cooperative {
                    consumer.incremental_assign(&starts)
                } else {
                    consumer.assign(&starts)
                };
                if let Err(e) = r {
                    tracing::error!(target: "kafka", "assigning partitions failed: {e}");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let revoked: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                let lost = consumer.assignment_lost();
                if lost {
                    tracing::warn!(
                        target: "kafka",
                        "{} partition(s) lost (this member's session expired): let go without writing their state, which another member may hold by now",
                        revoked.len()
                    );
                }
                self.drain_and_commit(consumer, Some((&revoked, lost)));
                let r = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = r {
                    tracing::error!(target: "kafka", "giving partitions back failed: {e}");
                }
            }
            other => {
                tracing::error!(target: "kafka", "rebalance failed: {other:?}; partitions unassigned");
                let _ = consumer.unassign();
            }
        }
    }
}

/// An offset, if it is one.
fn real(o: Offset) -> Option<i64> {
    match o {
        Offset::Offset(n) if n >= 0 => Some(n),
        _ => None,
    }
}

impl SlateContext {
    /// Where each newly assigned partition starts, and which of its lines
    /// are rebuild. Records the partitions in the shared table.
    fn plan_assignment(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &TopicPartitionList,
    ) -> TopicPartitionList {
        let timeout = Duration::from_secs(10);
        let now = wall_us();
        let from = now - self.rebuild_window;
        let committed = consumer.committed_offsets(tpl.clone(), timeout).ok();
        let mut times = TopicPartitionList::new();
        for e in tpl.elements() {
            let _ =
                times.add_partition_offset(e.topic(), e.partition(), Offset::Offset(from / 1000));
        }
        let found = if self.rebuild_window > 0 {
            consumer.offsets_for_times(times, timeout).ok()
        } else {
            None
        };
        let mut topics: Vec<String> = tpl
            .elements()
            .iter()
            .map(|e| e.topic().to_string())
            .collect();
        topics.dedup();
        for topic in &topics {
            if let Ok(md) = consumer.fetch_metadata(Some(topic), timeout) {
                if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                    lock(&self.shared.topic_partitions).insert(topic.clone(), t.partitions().len());
                }
            }
        }
        // With a state topic, each partition's state as its last owner
        // left it, read before the partition is (DESIGN §8a).
        let mut from_topic: Option<FxHashMap<i32, Arc<Restored>>> = None;
        if let Some(st) = self.state_topic.as_ref().filter(|_| tpl.count() > 0) {
            let started = Instant::now();
            let wanted: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            match crate::source::statetopic::read(
                &st.cfg,
                &st.brokers,
                &wanted,
                Duration::from_secs(120),
            ) {
                Ok(read) => {
                    let seconds = started.elapsed().as_secs_f64();
                    let records: usize = read.iter().map(|(_, l)| l.len()).sum();
                    tracing::info!(
                        target: "state",
                        "read the state of {} partition(s) from {} in {seconds:.2} s: {records} record(s)",
                        wanted.len(),
                        st.cfg.state_topic.as_deref().unwrap_or("?"),
                    );
                    from_topic = Some(
                        read.into_iter()
                            .map(|(p, records)| (p, Arc::new(Restored { records, seconds })))
                            .collect(),
                    );
                }
                Err(e) => tracing::error!(
                    target: "state",
                    "cannot read the state topic: {e}; these partitions are read from their history instead"
                ),
            }
        }
        let mut starts = TopicPartitionList::new();
        let mut parts = lock(&self.shared.partitions);
        let mut batcher = lock(&self.batcher);
        let (mut rebuilding, mut resumed) = (0usize, 0usize);
        for e in tpl.elements() {
            let (topic, partition) = (e.topic(), e.partition());
            let committed = committed
                .as_ref()
                .and_then(|c| c.find_partition(topic, partition))
                .and_then(|p| real(p.offset()));
            let known = batcher.index.get(&(topic.to_string(), partition)).copied();
            // With a state topic: the partition's state and the offset its
            // head says it holds.
            let restored = from_topic
                .as_ref()
                .and_then(|m| m.get(&partition))
                .filter(|r| !r.records.is_empty())
                .cloned();
            let head = self.state_topic.as_ref().and_then(|st| {
                restored
                    .as_ref()
                    .and_then(|r| r.records.get(st.head_key))
                    .and_then(|v| (st.head_offset)(v))
            });
            // The state already holds this partition up to an offset (a
            // restored snapshot, an earlier assignment in this process, or
            // the state topic): go on from there, skipping nothing.
            let resume = if self.state_topic.is_some() {
                head
            } else {
                known.and_then(|i| lock(&self.shared.applied).get(&i).copied())
            };
            // MockCluster answers -1 (the end) and Tansu the earliest
            // offset whatever the time: where the answer is not an offset,
            // read from the earliest and skip by timestamp.
            let start = if let Some(r) = resume {
                Offset::Offset(r)
            } else if self.rebuild_window == 0 {
                committed.map_or(Offset::End, Offset::Offset)
            } else {
                found
                    .as_ref()
                    .and_then(|f| f.find_partition(topic, partition))
                    .and_then(|p| real(p.offset()))
                    .map_or(Offset::Beginning, Offset::Offset)
            };
            let watermarks = consumer.fetch_watermarks(topic, partition, timeout);
            if let Ok((_, high)) = watermarks {
                lock(&self.shared.status)
                    .high
                    .insert((topic.to_string(), partition), high);
            }
            let known_low = watermarks.is_ok();
            let (low, high) = watermarks.unwrap_or((0, 0));
            let mut start = start;
            let mut expired = 0;
            if let (Some(r), true) = (resume, known_low) {
                if r < low {
                    // Expired while slate was away: said, counted, and the
                    // partition read from its earliest record.
                    let gap = low - r;
                    tracing::warn!(
                        target: "state",
                        "{topic}/{partition}: {gap} record(s) between the state's offset {r} and the partition's earliest {low} expired from the topic while slate was away; the state lacks them"
                    );
                    lock(&self.shared.gaps).push((topic.to_string(), partition, gap));
                    start = Offset::Offset(low);
                    expired = gap;
                }
            }
            let info = PartitionInfo {
                topic: topic.to_string(),
                partition,
                assigned: true,
                rebuild_until: committed.unwrap_or(-1),
                skip_until: if resume.is_some() {
                    -1
                } else {
                    committed.unwrap_or(high)
                },
                skip_before: from,
            };
            if resume.is_some() {
                resumed += 1;
            } else if committed.is_some_and(|c| real(start).is_none_or(|s| s < c)) {
                rebuilding += 1;
            }
            let idx = match known {
                Some(i) => {
                    parts[i as usize] = info.clone();
                    i
                }
                None => {
                    parts.push(info.clone());
                    (parts.len() - 1) as u32
                }
            };
            batcher.index.insert((topic.to_string(), partition), idx);
            if self.state_topic.is_some() {
                // What an earlier assignment of it here applied is not what
                // its state holds now: the state topic's head is.
                let mut applied = lock(&self.shared.applied);
                let mut durable = lock(&self.shared.durable);
                match head {
                    Some(h) => {
                        applied.insert(idx, h);
                        if let Some(d) = durable.as_mut() {
                            d.insert(idx, h);
                        }
                    }
                    None => {
                        applied.remove(&idx);
                        if let Some(d) = durable.as_mut() {
                            d.remove(&idx);
                        }
                    }
                }
            }
            if batcher.rules.len() <= idx as usize {
                batcher.rules.resize(idx as usize + 1, (0, 0, Micros::MIN));
            }
            batcher.rules[idx as usize] = (info.rebuild_until, info.skip_until, info.skip_before);
            // The history ends at the end offset as of now; nothing to read
            // when the partition is empty or the start is at its end.
            let history = high > low && real(start).is_none_or(|s| s < high);
            batcher.cur.assigned.push(Assigned {
                part: idx,
                history_end: history.then_some(high),
                expired,
                restored,
            });
            let _ = starts.add_partition_offset(topic, partition, start);
        }
        batcher.last = None;
        let assigned = parts.iter().filter(|p| p.assigned).count();
        drop(batcher);
        drop(parts);
        lock(&self.shared.status).assigned = assigned;
        tracing::info!(
            target: "kafka",
            "assigned {} partition(s): {resumed} go on from the state's offsets; the last {} read again for {rebuilding}",
            tpl.count(),
            crate::model::Span(self.rebuild_window),
        );
        starts
    }

    /// Sends the batch in hand, waits until the apply side has it in the
    /// state, and commits what is applied (for `only`, or every partition).
    fn drain_and_commit(
        &self,
        consumer: &BaseConsumer<Self>,
        revoked: Option<(&[(String, i32)], bool)>,
    ) {
        let only = revoked.map(|r| r.0);
        let lost = revoked.is_some_and(|r| r.1);
        let sent = lock(&self.batcher).flush();
        if !self.shared.wait_applied(sent, Duration::from_secs(60)) {
            tracing::warn!(
                target: "kafka",
                "events still being applied after 60 s; committing what is applied"
            );
        }
        // The state of these partitions goes to disk before their offsets
        // are committed (and before another instance may take them).
        let idx: Option<Vec<u32>> = only.map(|only| {
            let parts = lock(&self.shared.partitions);
            parts
                .iter()
                .enumerate()
                .filter(|(_, p)| only.iter().any(|(t, n)| *t == p.topic && *n == p.partition))
                .map(|(i, _)| i as u32)
                .collect()
        });
        if !self
            .shared
            .wait_durable(idx.as_deref(), lost, Duration::from_secs(60))
        {
            tracing::warn!(
                target: "state",
                "the snapshot pass is not on disk after 60 s; committing what is"
            );
        }
        if !lost {
            self.commit(consumer, CommitMode::Sync, only);
        }
        if let Some(only) = only {
            let mut parts = lock(&self.shared.partitions);
            for p in parts.iter_mut() {
                if only.iter().any(|(t, n)| *t == p.topic && *n == p.partition) {
                    p.assigned = false;
                }
            }
            let assigned = parts.iter().filter(|p| p.assigned).count();
            drop(parts);
            lock(&self.shared.status).assigned = assigned;
        }
    }

    fn commit(
        &self,
        consumer: &BaseConsumer<Self>,
        mode: CommitMode,
        only: Option<&[(String, i32)]>,
    ) {
        let parts = lock(&self.shared.partitions).clone();
        let applied = self.shared.committable();
        if matches!(mode, CommitMode::Async) {
            let mut last = lock(&self.last_committed);
            let mut now: Vec<(u32, i64)> = applied.iter().map(|(&i, &n)| (i, n)).collect();
            now.sort_unstable();
            // The same offsets again within 10 s: nothing to say (a commit
            // that failed is tried again after that).
            if last.1 == now
                && last
                    .0
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
            {
                return;
            }
            *last = (Some(Instant::now()), now);
        }
        let mut tpl = TopicPartitionList::new();
        for (i, next) in applied {
            let Some(p) = parts.get(i as usize) else {
                continue;
            };
            let wanted = match only {
                Some(only) => only.iter().any(|(t, n)| *t == p.topic && *n == p.partition),
                None => p.assigned,
            };
            if wanted {
                let _ = tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(next));
            }
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = consumer.commit(&tpl, mode) {
            // Nothing to commit yet, or the group is rebalancing: the
            // events are in the state; at worst they are read again as
            // rebuild after a restart, which counts nothing twice.
            if !matches!(
                e.rdkafka_error_code(),
                Some(RDKafkaErrorCode::NoOffset) | Some(RDKafkaErrorCode::RebalanceInProgress)
            ) {
                crate::warn_every!(
                    self.quiet,
                    "commit",
                    Duration::from_secs(30),
                    target: "kafka",
                    "committing offsets failed: {e}"
                );
            }
        }
    }
}

/// A consumer ready to run on its own thread.
pub struct KafkaSource {
    consumer: BaseConsumer<SlateContext>,
    topics: Vec<String>,
    pub shared: Arc<KafkaShared>,
}

/// How slate fetches: bounded memory under lag (at most this much fetched
/// and not yet handed over, per partition), and an event visible within a
/// second of being produced (some brokers, Tansu, hold every fetch for
/// `fetch.wait.max.ms`). The end-to-end bench gives a bare consumer the same.
pub const FETCH_PROPERTIES: [(&str, &str); 4] = [
    ("queued.max.messages.kbytes", "16384"),
    ("queued.min.messages", "20000"),
    ("fetch.queue.backoff.ms", "10"),
    ("fetch.wait.max.ms", "10"),
];

/// librdkafka properties slate sets, before the user's (which win, except
/// for the ones `slate.yml` refuses).
fn base_properties(brokers: &str, group: &str) -> Vec<(&'static str, String)> {
    let mut props = vec![
        ("bootstrap.servers", brokers.to_string()),
        ("group.id", group.to_string()),
        ("client.id", "slate".into()),
        ("enable.auto.commit", "false".into()),
        ("enable.auto.offset.store", "false".into()),
        ("auto.offset.reset", "earliest".into()),
        ("enable.partition.eof", "true".into()),
        ("statistics.interval.ms", "1000".into()),
        ("reconnect.backoff.ms", "100".into()),
        ("reconnect.backoff.max.ms", "5000".into()),
    ];
    props.extend(FETCH_PROPERTIES.iter().map(|&(k, v)| (k, v.to_string())));
    props
}

/// Checks `kafka.properties` against librdkafka without connecting (for
/// `slate check --config` and before starting): an unknown property or a
/// bad value is named with librdkafka's reason.
pub fn check_properties(cfg: &KafkaConfig) -> Result<(), String> {
    for (k, v) in &cfg.properties {
        let mut c = ClientConfig::new();
        c.set(k, v);
        if let Err(e) = c.create_native_config() {
            return Err(format!(
                "kafka.properties.{k}: {e} (librdkafka's properties: https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md)"
            ));
        }
    }
    Ok(())
}

impl KafkaSource {
    /// Builds the consumer (not yet connected: a broker that is down is
    /// retried, not an error). Batches go to `tx`.
    /// `history`: how far back to read a partition on assignment
    /// (`kafka.rebuild_window`, else the longest SLO period).
    pub fn new(
        cfg: &KafkaConfig,
        brokers: &str,
        tx: Sender<Batch>,
        history: crate::model::Span,
        state_topic: Option<StateTopic>,
    ) -> Result<KafkaSource, String> {
        check_properties(cfg)?;
        let mut client = ClientConfig::new();
        for (k, v) in base_properties(brokers, &cfg.group) {
            client.set(k, v);
        }
        if let Some(id) = &cfg.instance_id {
            client.set("group.instance.id", id);
        }
        for (k, v) in &cfg.properties {
            client.set(k, v);
        }
        // rdkafka takes the log level from the `log` crate, which slate does
        // not use: without this librdkafka would say nothing.
        let debug = cfg.properties.iter().any(|(k, _)| k == "debug");
        client.set_log_level(if debug {
            RDKafkaLogLevel::Debug
        } else {
            RDKafkaLogLevel::Warning
        });
        let shared = Arc::new(KafkaShared::default());
        let ctx = SlateContext {
            shared: shared.clone(),
            batcher: Mutex::new(Batcher {
                seq: 0,
                cur: Batch::default(),
                tx: Some(tx),
                index: FxHashMap::default(),
                last: None,
                rules: Vec::new(),
            }),
            rebuild_window: history.0,
            quiet: crate::logs::Limiter::default(),
            debug,
            last_committed: Mutex::default(),
            state_topic,
        };
        let consumer: BaseConsumer<SlateContext> = client
            .create_with_context(ctx)
            .map_err(|e| format!("kafka consumer: {e}"))?;
        Ok(KafkaSource {
            consumer,
            topics: cfg.topics.clone(),
            shared,
        })
    }

    /// With a state topic: makes sure it is there (created, or checked),
    /// retrying while the brokers cannot say; an error when it exists
    /// with another layout.
    fn ensure_state_topic(&self, stop: &AtomicBool) -> Result<(), String> {
        let Some(st) = &self.consumer.context().state_topic else {
            return Ok(());
        };
        let mut said = false;
        while !stop.load(Ordering::Relaxed) {
            match crate::source::statetopic::ensure(&st.cfg, &st.brokers) {
                Ok(_) => return Ok(()),
                Err(crate::source::statetopic::Unready::Fatal(e)) => return Err(e),
                Err(crate::source::statetopic::Unready::Retry(e)) => {
                    if !said {
                        tracing::warn!(target: "state", "the state topic is not ready: {e}; retrying every 2 s");
                        said = true;
                    }
                    std::thread::sleep(Duration::from_secs(2));
                }
            }
        }
        Ok(())
    }

    /// The partitions of a restored state, by the index their clocks have
    /// in it, each with the offset the state reflects: on assignment each
    /// goes on from there (DESIGN §8a).
    pub fn resume(&self, parts: &[Option<(String, i32, i64)>]) {
        let ctx = self.consumer.context();
        let mut infos = lock(&ctx.shared.partitions);
        let mut batcher = lock(&ctx.batcher);
        let mut applied = lock(&ctx.shared.applied);
        let mut durable = lock(&ctx.shared.durable);
        for (i, p) in parts.iter().enumerate() {
            let Some((topic, partition, next)) = p else {
                // A clock of no partition (a replay's): its slot stays.
                infos.push(PartitionInfo::restored("", -1));
                continue;
            };
            infos.push(PartitionInfo::restored(topic, *partition));
            batcher.index.insert((topic.clone(), *partition), i as u32);
            applied.insert(i as u32, *next);
            if let Some(d) = durable.as_mut() {
                d.insert(i as u32, *next);
            }
        }
        batcher.rules.resize(infos.len(), (-1, -1, Micros::MIN));
    }

    /// Fetches until `stop` is set, then sends what is in hand, waits for
    /// it to be applied, commits, and leaves the group.
    pub fn run(self, stop: Arc<AtomicBool>) -> Result<(), String> {
        self.ensure_state_topic(&stop)?;
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        self.consumer
            .subscribe(&topics)
            .map_err(|e| format!("subscribing to {}: {e}", topics.join(", ")))?;
        let ctx = self.consumer.context().clone();
        let mut last_commit = Instant::now();
        // Lines in hand (the rebalance callback may have sent them: then
        // the next poll finds nothing and the flush is a no-op).
        let mut pending = false;
        let mut since_check = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let timeout = if pending {
                Duration::ZERO
            } else {
                Duration::from_millis(100)
            };
            let (mut check, mut idle) = (false, false);
            match self.consumer.poll(timeout) {
                Some(Ok(m)) => {
                    let mut b = lock(&ctx.batcher);
                    b.push(
                        m.topic(),
                        m.partition(),
                        m.offset(),
                        m.payload().unwrap_or(b""),
                    );
                    if b.full() {
                        b.flush();
                    }
                    pending = !b.cur.lines.is_empty();
                    since_check += 1;
                    // The clock is read once per thousand messages, not
                    // per message.
                    check = since_check >= 1024;
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    // The end of a partition: its history is read. The
                    // error names only the partition's number, so it is
                    // taken only when one assigned partition has it.
                    let parts = lock(&ctx.shared.partitions);
                    let mut with_p = parts
                        .iter()
                        .enumerate()
                        .filter(|(_, info)| info.assigned && info.partition == p);
                    if let (Some((i, _)), None) = (with_p.next(), with_p.next()) {
                        let mut b = lock(&ctx.batcher);
                        if !b.cur.caught_up.contains(&(i as u32)) {
                            b.cur.caught_up.push(i as u32);
                        }
                        b.flush();
                        pending = false;
                    }
                }
                // The same trouble reaches the error callback: one line per
                // kind of error per 30 s between them.
                Some(Err(e)) => crate::warn_every!(
                    ctx.quiet,
                    &format!("{:?}", e.rdkafka_error_code()),
                    Duration::from_secs(30),
                    target: "kafka",
                    "fetching: {e}; retrying"
                ),
                None => {
                    lock(&ctx.batcher).flush();
                    pending = false;
                    check = true;
                    idle = true;
                }
            }
            if check {
                since_check = 0;
                // Every second while events flow, and as soon as the
                // consumer is idle: offsets applied and not committed are
                // what another instance would count again if the
                // partitions moved to it (a commit in the middle of a
                // rebalance can be refused).
                if idle || last_commit.elapsed() >= Duration::from_secs(1) {
                    last_commit = Instant::now();
                    ctx.commit(&self.consumer, CommitMode::Async, None);
                }
            }
        }
        ctx.drain_and_commit(&self.consumer, None);
        // Leaving the group revokes the partitions (drained already); then
        // the batch channel closes and the apply side finishes.
        self.consumer.unsubscribe();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && lock(&ctx.shared.status).assigned > 0 {
            let _ = self.consumer.poll(Duration::from_millis(50));
        }
        lock(&ctx.batcher).tx = None;
        Ok(())
    }
}
