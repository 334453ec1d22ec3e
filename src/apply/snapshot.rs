//! The core's state as bytes, and back (DESIGN §8a): every service's
//! whole state (rings, latency tiers, slices, alert trackers and episodes,
//! last events) and the event-time clocks, so that a restore continues as
//! a run that was never interrupted.
//!
//! The payload is postcard 1.x (a stable, documented format: serde's data
//! model, varints, no schema); around it slate's own envelope:
//!
//! ```text
//! offset  size  field
//! 0       8     magic  "SLATEST\0"
//! 8       2     format version, little-endian (this is 1)
//! 10      2     flags (0)
//! 12      8     payload length in bytes, little-endian
//! 20      4     CRC-32 (IEEE) of the payload, little-endian
//! 24      n     payload
//! ```
//!
//! A truncated, corrupt or foreign file is an error that says which, never
//! a panic: the caller falls back to the snapshot before it.

use serde::{Deserialize, Serialize};

use super::{Core, CoreSettings, EventClock, NO_CLOCK};
use crate::engine::{Engine, ServiceState};
use crate::evaluate::AlertTracker;
use crate::model::Micros;
use crate::spec::SloSpec;

pub const MAGIC: &[u8; 8] = b"SLATEST\0";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;
const HEADER: usize = 24;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("not a slate state snapshot (no `SLATEST` magic at the start)")]
    NotASnapshot,
    #[error("truncated: {got} bytes where the header says {want}")]
    Truncated { got: usize, want: usize },
    #[error("snapshot format version {found}; this slate reads version {VERSION} (start with an empty state dir, or run the slate that wrote it)")]
    Version { found: u16 },
    #[error("checksum mismatch: the snapshot is corrupt")]
    Checksum,
    #[error("the snapshot does not decode: {0}")]
    Decode(String),
}

/// One service as saved.
#[derive(Serialize, Deserialize)]
struct SavedService {
    name: Box<str>,
    state: ServiceState,
    tracker: Option<AlertTracker>,
    /// Its clock (`u32::MAX`: none yet).
    home: u32,
}

#[derive(Serialize, Deserialize)]
struct SavedCore {
    services: Vec<SavedService>,
    clocks: Vec<EventClock>,
    now: Option<Micros>,
}

/// The core's state, enveloped.
pub fn encode(core: &Core) -> Vec<u8> {
    let saved = SavedCore {
        services: core
            .engine
            .services()
            .enumerate()
            .map(|(id, (name, s))| SavedService {
                name: name.into(),
                state: s.clone(),
                tracker: core.trackers[id].clone(),
                home: core.home[id],
            })
            .collect(),
        clocks: core.clocks.clone(),
        now: core.engine.now(),
    };
    // UNWRAP: postcard fails only on a writer error or a sequence of
    // unknown length, neither of which a Vec and derived types produce.
    let payload = postcard::to_allocvec(&saved).expect("postcard encodes plain data");
    envelope(&payload)
}

fn envelope(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of an enveloped snapshot, checked.
fn open(bytes: &[u8]) -> Result<&[u8], SnapshotError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    if bytes.len() < HEADER {
        return Err(SnapshotError::Truncated {
            got: bytes.len(),
            want: HEADER,
        });
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let found = u16_at(8);
    if found != VERSION {
        return Err(SnapshotError::Version { found });
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[12..20]);
    let len = u64::from_le_bytes(len);
    let want = (HEADER as u64).saturating_add(len);
    if (bytes.len() as u64) != want {
        return Err(SnapshotError::Truncated {
            got: bytes.len(),
            want: usize::try_from(want).unwrap_or(usize::MAX),
        });
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[20..24]);
    let payload = &bytes[HEADER..];
    if crc32fast::hash(payload) != u32::from_le_bytes(crc) {
        return Err(SnapshotError::Checksum);
    }
    Ok(payload)
}

/// A core restored from `bytes`, moved to `spec` (what still matches it
/// keeps its state, as a reload keeps it).
pub fn decode(bytes: &[u8], spec: &SloSpec, settings: CoreSettings) -> Result<Core, SnapshotError> {
    let payload = open(bytes)?;
    let saved: SavedCore =
        postcard::from_bytes(payload).map_err(|e| SnapshotError::Decode(e.to_string()))?;
    let n = saved.services.len();
    if saved
        .services
        .iter()
        .any(|s| s.home != NO_CLOCK && s.home as usize >= saved.clocks.len())
    {
        return Err(SnapshotError::Decode(
            "a service names a clock the snapshot does not have".into(),
        ));
    }
    let mut trackers = Vec::with_capacity(n);
    let mut home = Vec::with_capacity(n);
    let mut services = Vec::with_capacity(n);
    for s in saved.services {
        trackers.push(s.tracker);
        home.push(s.home);
        services.push((s.name, s.state));
    }
    let mut core = Core {
        engine: Engine::restore(spec, settings.engine, services, saved.now),
        trackers,
        min_events: settings.min_events,
        step: settings.step.0.max(1),
        horizon: 0,
        clocks: saved.clocks,
        home,
    };
    core.reload(spec);
    Ok(core)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_refuses_what_it_did_not_write() {
        let good = envelope(b"payload");
        assert_eq!(open(&good), Ok(&b"payload"[..]));
        assert_eq!(open(b"{\"json\": 1}"), Err(SnapshotError::NotASnapshot));
        assert!(matches!(
            open(&good[..good.len() - 1]),
            Err(SnapshotError::Truncated { .. })
        ));
        assert!(matches!(
            open(&good[..10]),
            Err(SnapshotError::Truncated { .. })
        ));
        let mut flipped = good.clone();
        flipped[HEADER + 2] ^= 0x10;
        assert_eq!(open(&flipped), Err(SnapshotError::Checksum));
        let mut v2 = good.clone();
        v2[8] = 2;
        assert_eq!(open(&v2), Err(SnapshotError::Version { found: 2 }));
        let mut long = good;
        long.push(0);
        assert!(matches!(open(&long), Err(SnapshotError::Truncated { .. })));
    }
}
