//! `slate run`'s durable state (DESIGN §8a): the apply thread takes a
//! pass (what changed, encoded: about 0.2 ms a service), this writer
//! thread writes it to the state dir or the state topic, and only then
//! tells the consumer that its offsets may be committed.

use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, Sender};

use rustc_hash::FxHashMap;

use crate::apply::snapshot::{service_key, PassFile, Taken, TopicRecord, HEAD_KEY};
use crate::export::snapshot::StateGauges;
use crate::source::kafka::KafkaShared;
use crate::source::statetopic::StateProducer;
use crate::state::{fold, StateDir};

/// A pass on its way to disk.
pub struct Job {
    pub taken: Taken,
    /// When the apply thread started taking it.
    pub started: Instant,
    /// With a state topic: the head of each partition this instance
    /// holds; only their units are written.
    pub heads: Vec<TopicHead>,
}

/// A partition's head, for the state topic.
pub struct TopicHead {
    /// Its index (the clock its services follow).
    pub part: u32,
    /// Its number: the state topic's partition it is written to.
    pub partition: i32,
    pub record: TopicRecord,
}

fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Starts the writer: one pass at a time, and one waiting at most (the
/// apply thread skips an interval pass while one waits).
pub fn spawn(
    mut dir: StateDir,
    kafka: Arc<KafkaShared>,
    gauges: Arc<Mutex<StateGauges>>,
) -> std::io::Result<(Sender<Job>, JoinHandle<()>)> {
    let (tx, rx) = bounded::<Job>(1);
    let handle = thread::Builder::new()
        .name("slate-state".into())
        .spawn(move || {
            let mut pending: Option<PassFile> = None;
            let mut failed_in_a_row = 0u64;
            for job in rx {
                let mut file = job.taken.encode();
                if let Some(p) = pending.take() {
                    file = fold(p, file);
                }
                match dir.write(&file) {
                    Ok(bytes) => {
                        if failed_in_a_row > 0 {
                            tracing::info!(
                                target: "state",
                                "a snapshot pass is on disk again in {} after {failed_in_a_row} failed",
                                dir.path().display()
                            );
                        }
                        failed_in_a_row = 0;
                        kafka.mark_durable(file.head.partitions.iter().enumerate().filter_map(
                            |(i, p)| p.as_ref().map(|p| (i as u32, p.next_offset)),
                        ));
                        let mut g = gauges.lock().unwrap_or_else(|p| p.into_inner());
                        g.snapshot_seconds = job.started.elapsed().as_secs_f64();
                        g.snapshot_bytes = bytes;
                        g.last_snapshot = epoch_seconds();
                        drop(g);
                        if dir.compaction_due() {
                            if let Err(e) = dir.compact() {
                                tracing::warn!(
                                    target: "state",
                                    "folding the deltas in {} into a new base failed: {e}; the deltas stay, and it is tried again after the next pass",
                                    dir.path().display()
                                );
                            }
                        }
                    }
                    Err(e) => {
                        failed_in_a_row += 1;
                        gauges.lock().unwrap_or_else(|p| p.into_inner()).failures += 1;
                        // Said the first time, then every tenth: a full disk
                        // fails every pass until someone frees it.
                        if failed_in_a_row == 1 || failed_in_a_row.is_multiple_of(10) {
                            tracing::warn!(
                                target: "state",
                                "writing a snapshot pass to {} failed ({failed_in_a_row} in a row): {e}; nothing is lost, the next pass writes it too, and offsets are not committed past the last pass on disk",
                                dir.path().display()
                            );
                        }
                        pending = Some(file);
                    }
                }
            }
        })?;
    Ok((tx, handle))
}

/// The head without its time: what says whether it changed.
fn head_key(r: &TopicRecord) -> Option<(i64, Option<i64>, Option<i64>, bool)> {
    match r {
        TopicRecord::Head {
            next_offset,
            watermark,
            next_tick,
            reading,
            ..
        } => Some((*next_offset, *watermark, *next_tick, *reading)),
        TopicRecord::Service { .. } => None,
    }
}

/// Starts the state-topic writer: each pass's units go to the state-topic
/// partition of the partition their service follows, then each changed
/// head; once the broker has them all, the offsets may be committed. A
/// pass that fails is kept and written with the next one (the units of a
/// partition no longer held are dropped: its new owner reads it from the
/// last head that was written).
pub fn spawn_topic(
    producer: StateProducer,
    kafka: Arc<KafkaShared>,
    gauges: Arc<Mutex<StateGauges>>,
) -> std::io::Result<(Sender<Job>, JoinHandle<()>)> {
    let (tx, rx) = bounded::<Job>(1);
    let handle = thread::Builder::new()
        .name("slate-state".into())
        .spawn(move || {
            // (partition index, service) → its unit, not yet on the topic.
            let mut pending: FxHashMap<(u32, Box<str>), Vec<u8>> = FxHashMap::default();
            let mut written: FxHashMap<u32, (i64, Option<i64>, Option<i64>, bool)> =
                FxHashMap::default();
            let mut failed_in_a_row = 0u64;
            for job in rx {
                let held: FxHashMap<u32, &TopicHead> =
                    job.heads.iter().map(|h| (h.part, h)).collect();
                written.retain(|p, _| held.contains_key(p));
                pending.retain(|(p, _), _| held.contains_key(p));
                for (u, &home) in job.taken.units.into_iter().zip(&job.taken.homes) {
                    if held.contains_key(&home) {
                        pending.insert((home, u.name), u.bytes);
                    }
                }
                let mut bytes = 0u64;
                let mut sent: Result<(), String> = Ok(());
                let mut touched: FxHashMap<u32, ()> = FxHashMap::default();
                for ((part, name), unit) in &pending {
                    let h = held[part];
                    let TopicRecord::Head { next_offset, .. } = h.record else {
                        continue;
                    };
                    let value = TopicRecord::Service {
                        next_offset,
                        unit: unit.clone(),
                    }
                    .to_bytes();
                    bytes += value.len() as u64;
                    touched.insert(*part, ());
                    if let Err(e) = producer.send(h.partition, &service_key(name), &value) {
                        sent = Err(e);
                        break;
                    }
                }
                if sent.is_ok() {
                    for h in &job.heads {
                        let k = head_key(&h.record);
                        if !touched.contains_key(&h.part) && written.get(&h.part) == k.as_ref() {
                            continue;
                        }
                        let value = h.record.to_bytes();
                        bytes += value.len() as u64;
                        if let Err(e) = producer.send(h.partition, HEAD_KEY, &value) {
                            sent = Err(e);
                            break;
                        }
                    }
                }
                let done = sent.and_then(|()| producer.flush(std::time::Duration::from_secs(60)));
                match done {
                    Ok(()) => {
                        if failed_in_a_row > 0 {
                            tracing::info!(
                                target: "state",
                                "a pass is on the state topic again after {failed_in_a_row} failed"
                            );
                        }
                        failed_in_a_row = 0;
                        pending.clear();
                        for h in &job.heads {
                            if let Some(k) = head_key(&h.record) {
                                written.insert(h.part, k);
                            }
                        }
                        kafka.mark_durable(job.heads.iter().filter_map(|h| {
                            head_key(&h.record).map(|(next, ..)| (h.part, next))
                        }));
                        let mut g = gauges.lock().unwrap_or_else(|p| p.into_inner());
                        g.snapshot_seconds = job.started.elapsed().as_secs_f64();
                        g.snapshot_bytes = bytes;
                        g.last_snapshot = epoch_seconds();
                    }
                    Err(e) => {
                        failed_in_a_row += 1;
                        // Heads may or may not have landed: write them again.
                        written.clear();
                        gauges.lock().unwrap_or_else(|p| p.into_inner()).failures += 1;
                        if failed_in_a_row == 1 || failed_in_a_row.is_multiple_of(10) {
                            tracing::warn!(
                                target: "state",
                                "writing a pass to the state topic failed ({failed_in_a_row} in a row): {e}; nothing is lost, the next pass writes it too, and offsets are not committed past the last pass on the topic"
                            );
                        }
                    }
                }
            }
        })?;
    Ok((tx, handle))
}
