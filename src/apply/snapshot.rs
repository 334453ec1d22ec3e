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
//! 8       2     format version, little-endian (this is 2; 1 is read)
//! 10      2     flags (0)
//! 12      8     payload length in bytes, little-endian
//! 20      4     CRC-32 (IEEE) of the payload, little-endian
//! 24      n     payload
//! ```
//!
//! A truncated, corrupt or foreign file is an error that says which, never
//! a panic: the caller falls back to the snapshot before it.
//!
//! Versions: 2 added each service's lacking spans (a retention gap) at the
//! end of its unit. A version-1 file is read as version 2 with none, so a
//! state dir written by the slate before is kept across the upgrade.
//!
//! A version-2 unit may end with more fields, each optional in turn: per
//! alert episode, the SLO's cumulative bad count when it started
//! (`Option<u64>` each), by which an incident's cost is taken over the
//! union of its episodes; then the service's per-day counts (the time
//! zone's name, and per day its bounds and each SLO's total and bad), the
//! weeks and months of the review. A unit without them reads with none
//! (an incident then costs at least its costliest episode; the calendar
//! starts again); a slate that predates them reads the unit and ignores
//! them. So they need no new version either way.

use serde::{Deserialize, Serialize};

use rustc_hash::FxHashMap;

use super::{Core, CoreSettings, EventClock, NO_CLOCK};
use crate::engine::{Engine, ServiceState};
use crate::evaluate::AlertTracker;
use crate::model::{Micros, ServiceId};
use crate::spec::SloSpec;

pub const MAGIC: &[u8; 8] = b"SLATEST\0";
/// The format version this build writes (it reads this one and 1).
pub const VERSION: u16 = 2;
/// The oldest version this build reads.
pub const OLDEST: u16 = 1;
const HEADER: usize = 24;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("not a slate state snapshot (no `SLATEST` magic at the start)")]
    NotASnapshot,
    #[error("truncated: {got} bytes where the header says {want}")]
    Truncated { got: usize, want: usize },
    #[error("snapshot format version {found}; this slate reads versions {OLDEST} to {VERSION} (start with an empty state dir, or run the slate that wrote it)")]
    Version { found: u16 },
    #[error("checksum mismatch: the snapshot is corrupt")]
    Checksum,
    #[error("the snapshot does not decode: {0}")]
    Decode(String),
}

/// One service as saved: the unit a pass writes when the service changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedService {
    state: ServiceState,
    tracker: Option<AlertTracker>,
    /// Its clock (`u32::MAX`: none yet).
    home: u32,
    /// [`ServiceState::missing`] (version 2).
    missing: Vec<(Micros, Micros)>,
}

/// [`SavedService`] by reference: what a pass encodes, without a copy;
/// then the trailing fields (the module's header).
#[derive(Serialize)]
struct SavedServiceRef<'a> {
    state: &'a ServiceState,
    tracker: &'a Option<AlertTracker>,
    home: u32,
    missing: &'a [(Micros, Micros)],
    bad_before: EpisodeStarts<'a>,
    /// Read back as [`crate::engine::calendar::SavedDays`].
    days: Option<&'a crate::engine::calendar::CalendarDays>,
}

/// The trailing field of a unit: [`crate::evaluate::Episode::bad_before`]
/// of each of the tracker's episodes, in order.
struct EpisodeStarts<'a>(&'a Option<AlertTracker>);

impl Serialize for EpisodeStarts<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let episodes = self.0.as_ref().map_or(&[][..], |t| &t.episodes[..]);
        s.collect_seq(episodes.iter().map(|e| e.bad_before))
    }
}

/// A saved service from its unit, with the trailing fields that are there.
fn decode_unit(bytes: &[u8]) -> Result<SavedService, postcard::Error> {
    let (mut saved, rest): (SavedService, &[u8]) = postcard::take_from_bytes(bytes)?;
    if rest.is_empty() {
        return Ok(saved);
    }
    let (starts, rest): (Vec<Option<u64>>, &[u8]) = postcard::take_from_bytes(rest)?;
    if let Some(t) = &mut saved.tracker {
        for (e, b) in t.episodes.iter_mut().zip(starts) {
            e.bad_before = b;
        }
    }
    if rest.is_empty() {
        return Ok(saved);
    }
    let days: Option<crate::engine::calendar::SavedDays> = postcard::from_bytes(rest)?;
    if let Some(days) = days {
        // Kept if the spec in force cuts days in the same zone
        // (`Engine::reload`); an unknown zone's days are dropped.
        if let Ok(tz) = jiff::tz::TimeZone::get(&days.0) {
            let mut c = crate::engine::calendar::CalendarDays::new(tz, saved.state.plan.slos.len());
            c.restore(days);
            saved.state.calendar = Some(c);
        }
    }
    Ok(saved)
}

/// A service as version 1 saved it.
#[derive(Deserialize)]
struct SavedServiceV1 {
    state: ServiceState,
    tracker: Option<AlertTracker>,
    home: u32,
}

impl From<SavedServiceV1> for SavedService {
    fn from(v: SavedServiceV1) -> SavedService {
        SavedService {
            state: v.state,
            tracker: v.tracker,
            home: v.home,
            missing: Vec::new(),
        }
    }
}

/// What the driver saves beside the core, per clock: the input partition
/// that clock follows and the offset the state reflects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPartition {
    pub topic: String,
    pub partition: i32,
    /// The next offset to apply: every record below it is in the state.
    pub next_offset: i64,
    /// The partition was reading its history: its clock goes on from
    /// where it was, not from the first record read after the restore.
    pub reading: bool,
}

/// What every pass writes whole (it is small): the services in id order,
/// the clocks, and the driver's partitions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub names: Vec<Box<str>>,
    pub clocks: Vec<EventClock>,
    pub now: Option<Micros>,
    /// By clock index (`None`: a clock of no partition, a replay's).
    pub partitions: Vec<Option<SavedPartition>>,
    /// When the pass was taken (wall clock).
    pub taken_at: Micros,
}

/// A pass as taken from the core on the apply thread: what changed,
/// encoded there (encoding a service costs about what cloning it does, and
/// holds a fifth of its memory), to be written elsewhere.
#[derive(Debug, Clone)]
pub struct Taken {
    /// Every service (a base), or those changed since the last pass.
    pub base: bool,
    pub head: Head,
    pub units: Vec<Unit>,
    /// Per unit: the clock its service follows (`u32::MAX`: none), which
    /// is the partition whose state-topic partition holds it.
    pub homes: Vec<u32>,
}

/// One service's encoded state, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub name: Box<str>,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// A record of the state topic (DESIGN §8a). Input partition p's state
/// is in the state topic's partition p: a record per service, keyed
/// [`service_key`], and the partition's head, keyed [`HEAD_KEY`], written
/// after its services' records by every pass that changed them. The
/// value is the payload in the snapshot files' envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TopicRecord {
    /// A service's whole state, as of input offset `next_offset` (every
    /// record of its partition below it is in it).
    Service {
        next_offset: i64,
        #[serde(with = "serde_bytes")]
        unit: Vec<u8>,
    },
    /// The partition's head: every service's record holds at least the
    /// records below `next_offset`; the clock's tick schedule; whether it
    /// was reading its history.
    Head {
        next_offset: i64,
        watermark: Option<Micros>,
        next_tick: Option<Micros>,
        reading: bool,
        /// When the pass was taken (wall clock).
        taken_at: Micros,
    },
}

/// The key of the head record of a state-topic partition.
pub const HEAD_KEY: &[u8] = b"h";

/// The key of a service's record: `s:` and its name.
pub fn service_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 2);
    k.extend_from_slice(b"s:");
    k.extend_from_slice(name.as_bytes());
    k
}

impl TopicRecord {
    pub fn to_bytes(&self) -> Vec<u8> {
        // UNWRAP: as in `Core::take`.
        let payload = postcard::to_allocvec(self).expect("postcard encodes plain data");
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.extend_from_slice(&header(
            VERSION,
            payload.len() as u64,
            crc32fast::hash(&payload),
        ));
        out.extend_from_slice(&payload);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<TopicRecord, SnapshotError> {
        let (_, payload) = open(bytes)?;
        postcard::from_bytes(payload).map_err(|e| SnapshotError::Decode(e.to_string()))
    }
}

/// A snapshot file's payload: a base (every service) or a delta (the
/// services changed since the file before it), with the whole head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassFile {
    pub base: bool,
    pub head: Head,
    pub units: Vec<Unit>,
}

impl Core {
    /// Takes a snapshot pass: the head, and every service (`all`) or
    /// those changed since the last pass, encoded; they count as unchanged
    /// from here on.
    pub fn take(&mut self, all: bool) -> Taken {
        let mut units = Vec::new();
        let mut homes = Vec::new();
        for (id, (name, s)) in self.engine.services().enumerate() {
            if all || self.dirty[id] {
                let saved = SavedServiceRef {
                    state: s,
                    tracker: &self.trackers[id],
                    home: self.home[id],
                    missing: &s.missing,
                    bad_before: EpisodeStarts(&self.trackers[id]),
                    days: s.calendar.as_ref(),
                };
                units.push(Unit {
                    name: Box::from(name),
                    // UNWRAP: postcard fails only on a writer error or a
                    // sequence of unknown length, neither of which derived
                    // types produce.
                    bytes: postcard::to_allocvec(&saved).expect("postcard encodes plain data"),
                });
                homes.push(self.home[id]);
            }
        }
        self.dirty.fill(false);
        Taken {
            base: all,
            head: Head {
                names: self.engine.services().map(|(n, _)| n.into()).collect(),
                clocks: self.clocks.clone(),
                now: self.engine.now(),
                partitions: Vec::new(),
                taken_at: 0,
            },
            units,
            homes,
        }
    }

    /// Service `name` takes the state its last owner saved of it (a
    /// partition handed over through the state topic) and follows clock
    /// `c`, moved to the spec in force. `None` when this instance holds
    /// the service already through another partition (unkeyed traffic):
    /// its state here is kept.
    pub fn adopt(
        &mut self,
        c: usize,
        name: &str,
        unit: &[u8],
    ) -> Result<Option<ServiceId>, String> {
        let saved = decode_unit(unit).map_err(|e| format!("service {name}: {e}"))?;
        let id = self
            .resolve(name)
            .map_err(|r| format!("service {name}: {}", r.as_str()))?;
        let i = id as usize;
        if self.home[i] != NO_CLOCK && self.home[i] != c as u32 {
            return Ok(None);
        }
        let mut state = saved.state;
        state.missing = saved.missing;
        let map = self.engine.adopt(id, state);
        let s = self.engine.service(id);
        self.trackers[i] = match (saved.tracker, s.plan.slos.is_empty()) {
            (_, true) => None,
            (Some(t), false) => Some(t.replanned(s, &map)),
            (None, false) => Some(AlertTracker::new(s)),
        };
        if self.home[i] == NO_CLOCK {
            self.home[i] = c as u32;
            self.clock_mut(c).members.push(id);
        }
        self.parked[i] = false;
        self.homes_moved += 1;
        // As saved, it is on the topic already; moved to another spec, the
        // next pass writes it.
        self.dirty[i] = map.iter().enumerate().any(|(j, o)| *o != Some(j));
        Ok(Some(id))
    }

    /// Services changed since the last pass.
    pub fn changed(&self) -> usize {
        self.dirty.iter().filter(|&&d| d).count()
    }
}

impl Taken {
    /// The pass as a file's payload.
    pub fn encode(self) -> PassFile {
        PassFile {
            base: self.base,
            head: self.head,
            units: self.units,
        }
    }
}

impl PassFile {
    /// The file's bytes: the payload in slate's envelope.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // UNWRAP: writing to a Vec does not fail, nor does postcard (as in
        // `Core::take`).
        self.write_to(&mut out).expect("writing to memory");
        out
    }

    /// Writes the file to `w` without building it in memory first: the
    /// payload is encoded twice, once to learn its length and checksum
    /// for the header and once into `w` (a pass of 10,000 services would
    /// otherwise be held three times over). Returns the bytes written.
    pub fn write_to(&self, w: &mut impl std::io::Write) -> std::io::Result<u64> {
        let sized = postcard::to_io(self, Summing::default()).map_err(std::io::Error::other)?;
        w.write_all(&header(VERSION, sized.len, sized.crc.finalize()))?;
        // postcard reports a failed write as "buffer full": keep the
        // writer's own error (a full disk must say so).
        let mut keeping = Keeping { w, error: None };
        if let Err(e) = postcard::to_io(self, &mut keeping) {
            return Err(keeping.error.unwrap_or_else(|| std::io::Error::other(e)));
        }
        Ok(HEADER as u64 + sized.len)
    }

    /// A file's payload, checked (magic, version, length, checksum); the
    /// units of a version-1 file are brought to this version.
    pub fn from_bytes(bytes: &[u8]) -> Result<PassFile, SnapshotError> {
        let (version, payload) = open(bytes)?;
        let mut file: PassFile =
            postcard::from_bytes(payload).map_err(|e| SnapshotError::Decode(e.to_string()))?;
        if version == 1 {
            for u in &mut file.units {
                let old: SavedServiceV1 = postcard::from_bytes(&u.bytes)
                    .map_err(|e| SnapshotError::Decode(format!("service {}: {e}", u.name)))?;
                // UNWRAP: as in `Taken::encode`.
                u.bytes = postcard::to_allocvec(&SavedService::from(old))
                    .expect("postcard encodes plain data");
            }
        }
        Ok(file)
    }
}

/// The core's whole state as one file (a base), for tests and
/// `slate replay --save-state`.
pub fn encode(core: &Core) -> Vec<u8> {
    let mut core = core.clone();
    core.take(true).encode().to_bytes()
}

/// Writes the core's whole state to the state dir `dir` as a new base, as
/// `slate replay --save-state` does at the end of a replay: `slate run
/// --state-dir DIR` continues from it. Returns the bytes written.
pub fn save(core: &mut Core, dir: &std::path::Path) -> Result<u64, String> {
    let mut d = crate::state::StateDir::open(dir)?;
    d.load()?;
    let mut taken = core.take(true);
    taken.head.taken_at = crate::model::wall_us();
    d.write(&taken.encode())
        .map_err(|e| format!("writing the state to {}: {e}", dir.display()))
}

/// The core's whole state as a version-1 file (what the slate before
/// wrote), to test that this one reads it.
#[cfg(test)]
pub fn encode_v1(core: &Core) -> Vec<u8> {
    let mut core = core.clone();
    let taken = core.take(true);
    let units = taken
        .units
        .into_iter()
        .map(|u| {
            let s: SavedService = postcard::from_bytes(&u.bytes).unwrap();
            Unit {
                name: u.name,
                bytes: postcard::to_allocvec(&(&s.state, &s.tracker, s.home)).unwrap(),
            }
        })
        .collect();
    let file = PassFile {
        base: true,
        head: taken.head,
        units,
    };
    envelope_v(1, &postcard::to_allocvec(&file).unwrap())
}

/// A core restored from one base file, moved to `spec`.
pub fn decode(bytes: &[u8], spec: &SloSpec, settings: CoreSettings) -> Result<Core, SnapshotError> {
    let file = PassFile::from_bytes(bytes)?;
    if !file.base {
        return Err(SnapshotError::Decode(
            "a delta, not a whole state: restore it on its base".into(),
        ));
    }
    let units = file.units.into_iter().map(|u| (u.name, u.bytes)).collect();
    restore(&file.head, units, spec, settings)
}

#[cfg(test)]
fn envelope(payload: &[u8]) -> Vec<u8> {
    envelope_v(VERSION, payload)
}

#[cfg(test)]
fn envelope_v(version: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&header(
        version,
        payload.len() as u64,
        crc32fast::hash(payload),
    ));
    out.extend_from_slice(payload);
    out
}

fn header(version: u16, len: u64, crc: u32) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&version.to_le_bytes());
    // 10..12: flags, 0.
    h[12..20].copy_from_slice(&len.to_le_bytes());
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A writer that keeps only the length and checksum of what it is given.
#[derive(Default)]
struct Summing {
    len: u64,
    crc: crc32fast::Hasher,
}

impl std::io::Write for Summing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.len += buf.len() as u64;
        self.crc.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer that keeps the first error of the writer it wraps.
struct Keeping<'a, W> {
    w: &'a mut W,
    error: Option<std::io::Error>,
}

impl<W> Keeping<'_, W> {
    /// Keeps `e` (the first one) and hands back a stand-in of its kind.
    fn keep(&mut self, e: std::io::Error) -> std::io::Error {
        let kind = e.kind();
        self.error.get_or_insert(e);
        kind.into()
    }
}

impl<W: std::io::Write> std::io::Write for Keeping<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w.write(buf).map_err(|e| self.keep(e))
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.w.write_all(buf).map_err(|e| self.keep(e))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush().map_err(|e| self.keep(e))
    }
}

/// The version and payload of an enveloped snapshot, checked.
fn open(bytes: &[u8]) -> Result<(u16, &[u8]), SnapshotError> {
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
    if !(OLDEST..=VERSION).contains(&found) {
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
    Ok((found, payload))
}

/// A core restored from a head and the latest unit of each of its
/// services, moved to `spec` (what still matches it keeps its state, as a
/// reload keeps it). Windows that did not change since their unit was
/// written move with time at the next tick, as they would have.
pub fn restore(
    head: &Head,
    mut units: FxHashMap<Box<str>, Vec<u8>>,
    spec: &SloSpec,
    settings: CoreSettings,
) -> Result<Core, SnapshotError> {
    let n = head.names.len();
    let mut trackers = Vec::with_capacity(n);
    let mut home = Vec::with_capacity(n);
    let mut services = Vec::with_capacity(n);
    for name in &head.names {
        let bytes = units.remove(name).ok_or_else(|| {
            SnapshotError::Decode(format!("service {name} is named but not saved"))
        })?;
        let s = decode_unit(&bytes)
            .map_err(|e| SnapshotError::Decode(format!("service {name}: {e}")))?;
        if s.home != NO_CLOCK && s.home as usize >= head.clocks.len() {
            return Err(SnapshotError::Decode(format!(
                "service {name} names a clock the snapshot does not have"
            )));
        }
        trackers.push(s.tracker);
        home.push(s.home);
        let mut state = s.state;
        state.missing = s.missing;
        if !settings.engine.span_latency {
            // A replay's whole-span histogram: live has no use for it.
            state.span_latency = None;
        }
        services.push((name.clone(), state));
    }
    if head
        .clocks
        .iter()
        .flat_map(|c| c.members.iter())
        .any(|&m| m as usize >= n)
    {
        return Err(SnapshotError::Decode(
            "a clock names a service the snapshot does not have".into(),
        ));
    }
    let mut core = Core {
        engine: Engine::restore(spec, settings.engine, services, head.now),
        trackers,
        min_events: settings.min_events,
        step: settings.step.0.max(1),
        horizon: 0,
        clocks: head.clocks.clone(),
        home,
        dirty: vec![false; n],
        parked: vec![false; n],
        only_homed: false,
        homes_moved: 0,
    };
    let saved_plans: Vec<_> = core
        .engine
        .services()
        .map(|(_, s)| s.plan.clone())
        .collect();
    core.reload(spec);
    // What the restore changed (a new spec's plans, the spec's new
    // services) is written by the next pass; the rest is on disk already.
    for (id, (_, s)) in core.engine.services().enumerate() {
        core.dirty[id] = saved_plans.get(id) != Some(&s.plan);
    }
    Ok(core)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed file is the payload in its envelope, byte for byte.
    #[test]
    fn a_file_written_as_a_stream_is_its_payload_in_the_envelope() {
        let file = PassFile {
            base: true,
            head: Head {
                names: vec!["a".into(), "b".into()],
                taken_at: 17,
                ..Head::default()
            },
            units: vec![
                Unit {
                    name: "a".into(),
                    bytes: vec![1, 2, 3],
                },
                Unit {
                    name: "b".into(),
                    bytes: vec![0; 300],
                },
            ],
        };
        let streamed = file.to_bytes();
        assert_eq!(streamed, envelope(&postcard::to_allocvec(&file).unwrap()));
        assert_eq!(PassFile::from_bytes(&streamed), Ok(file));
    }

    /// A writer that fails says why, not postcard's "buffer full".
    #[test]
    fn a_failed_write_keeps_the_writers_own_error() {
        struct Full(usize);
        impl std::io::Write for Full {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(std::io::Error::from_raw_os_error(28));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let file = PassFile {
            base: true,
            head: Head::default(),
            units: vec![Unit {
                name: "a".into(),
                bytes: vec![7; 1000],
            }],
        };
        let e = file.write_to(&mut Full(500)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28), "{e}");
        assert_eq!(
            file.write_to(&mut Full(2000)).unwrap(),
            file.to_bytes().len() as u64
        );
    }

    /// A state-topic record reads back as written; a damaged one is an
    /// error that says why.
    #[test]
    fn a_state_topic_record_reads_back_and_refuses_damage() {
        for r in [
            TopicRecord::Service {
                next_offset: 42,
                unit: vec![1, 2, 3, 250],
            },
            TopicRecord::Head {
                next_offset: 7,
                watermark: Some(1_000),
                next_tick: None,
                reading: true,
                taken_at: 99,
            },
        ] {
            let bytes = r.to_bytes();
            assert_eq!(TopicRecord::from_bytes(&bytes), Ok(r));
            let mut flipped = bytes.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            assert_eq!(
                TopicRecord::from_bytes(&flipped),
                Err(SnapshotError::Checksum)
            );
            assert!(matches!(
                TopicRecord::from_bytes(&bytes[..bytes.len() - 1]),
                Err(SnapshotError::Truncated { .. })
            ));
        }
        assert_eq!(
            TopicRecord::from_bytes(b"{}"),
            Err(SnapshotError::NotASnapshot)
        );
        assert_eq!(service_key("api"), b"s:api");
        assert_ne!(service_key("h"), HEAD_KEY);
    }

    #[test]
    fn the_envelope_refuses_what_it_did_not_write() {
        let good = envelope(b"payload");
        assert_eq!(open(&good), Ok((VERSION, &b"payload"[..])));
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
        let mut v3 = good.clone();
        v3[8] = 3;
        assert_eq!(open(&v3), Err(SnapshotError::Version { found: 3 }));
        let mut v0 = good.clone();
        v0[8] = 0;
        assert_eq!(open(&v0), Err(SnapshotError::Version { found: 0 }));
        let mut long = good;
        long.push(0);
        assert!(matches!(open(&long), Err(SnapshotError::Truncated { .. })));
    }
}
