//! `slate run`'s durable state (DESIGN §8a): the apply thread takes a
//! pass (what changed, encoded: about 0.2 ms a service), this writer
//! thread writes it to the state dir, and only then tells the consumer
//! that its offsets may be committed.

use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, Sender};

use crate::apply::snapshot::{PassFile, Taken};
use crate::export::snapshot::StateGauges;
use crate::source::kafka::KafkaShared;
use crate::state::{fold, StateDir};

/// A pass on its way to disk.
pub struct Job {
    pub taken: Taken,
    /// When the apply thread started taking it.
    pub started: Instant,
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
