//! The state both drivers apply events to: the engine, the alert trackers
//! beside it, the event-time clocks that tick them, the late rule, the
//! per-chunk service-id cache and the reject path. `slate replay` and
//! `slate run` each only feed it: records in, `now` passed in, ticks asked
//! for. So the catch-up, the late rule and (next) snapshots are written
//! once, here, and tested with a mock clock.
//!
//! Clocks: each [`EventClock`] follows the events applied through it (a
//! replay has one; `slate run` has one per partition while it reads the
//! partition's history). A service belongs to the clock of its first
//! event, and is ticked in event time, every `step`, as the clock's
//! watermark passes each tick: as a replay ticks, with no look-ahead.
//!
//! May import `model`, `spec`, `decode`, `engine`, `evaluate` and `report`.

pub mod snapshot;

use crate::engine::{Engine, EngineSettings, LATE_HORIZON};
use crate::evaluate::AlertTracker;
use crate::model::{Event, Micros, Reason, RejectCounts, ServiceId, Span};
use crate::spec::SloSpec;

/// A clock that follows event time.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EventClock {
    /// The newest event time applied through it.
    pub watermark: Option<Micros>,
    /// The next tick to run (set by the first event).
    next_tick: Option<Micros>,
    /// Services whose first event came through this clock.
    members: Vec<ServiceId>,
}

/// What the core is built with.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    pub engine: EngineSettings,
    /// `alerting.min_events`.
    pub min_events: u64,
    /// The event-time tick step (`--eval-every`, replay's default 1m).
    pub step: Span,
}

/// Service ids resolved for one chunk's names, each looked up once.
#[derive(Debug, Default)]
pub struct ChunkIds(Vec<Option<Result<ServiceId, Reason>>>);

impl ChunkIds {
    /// Starts a chunk of `names` names.
    pub fn reset(&mut self, names: usize) {
        self.0.clear();
        self.0.resize(names, None);
    }

    /// The id of the chunk's name `i` (created on first sight, up to the cap).
    pub fn resolve(
        &mut self,
        core: &mut Core,
        names: &[Box<str>],
        i: u32,
    ) -> Result<ServiceId, Reason> {
        let i = i as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, None);
        }
        match self.0[i] {
            Some(r) => r,
            None => {
                let r = core.resolve(&names[i]);
                self.0[i] = Some(r);
                r
            }
        }
    }
}

/// Where a rejected record came from, for the dead letters.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// Line `line` (from 1) of an input file.
    Line { input: &'a str, line: u64 },
    /// A Kafka record.
    Kafka {
        topic: &'a str,
        partition: i32,
        offset: i64,
    },
}

/// Where rejected records go besides their count: a file (replay's
/// `--dead-letter`) or a topic (`kafka.dead_letter_topic`).
pub trait DeadLetters {
    fn write(
        &mut self,
        raw: &[u8],
        reason: Reason,
        detail: &str,
        origin: Origin<'_>,
    ) -> Result<(), String>;
    /// Between batches: a producer serves its callbacks.
    fn idle(&mut self) {}
    /// At the end: everything written is out.
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// Rejections: counted by reason, and written to the dead letters if any.
#[derive(Default)]
pub struct Rejects {
    pub counts: RejectCounts,
    pub dead: Option<Box<dyn DeadLetters + Send>>,
}

impl Rejects {
    pub fn new(dead: Option<Box<dyn DeadLetters + Send>>) -> Rejects {
        Rejects {
            counts: RejectCounts::default(),
            dead,
        }
    }

    /// Counts one rejection and hands back the dead letters to write it
    /// to, if there are any (so that a caller works out the record's origin
    /// only then).
    pub fn count(&mut self, reason: Reason) -> Option<&mut (dyn DeadLetters + Send + 'static)> {
        self.counts.add(reason);
        self.dead.as_deref_mut()
    }

    /// Counts one rejection and writes its dead letter; an error only when
    /// that could not be written.
    pub fn reject(
        &mut self,
        reason: Reason,
        detail: &str,
        raw: &[u8],
        origin: Origin<'_>,
    ) -> Result<(), String> {
        match self.count(reason) {
            Some(d) => d.write(raw, reason, detail, origin),
            None => Ok(()),
        }
    }
}

/// What a reloaded spec changed ([`Core::reload`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    /// SLOs whose definition did not change: their state is kept.
    pub kept: usize,
    /// New or changed SLOs, counted from now on.
    pub started: usize,
    pub removed: usize,
}

/// The engine, its alert trackers and its clocks.
#[derive(Debug, Clone)]
pub struct Core {
    pub engine: Engine,
    /// Per service: its alert state (`None` for a service without SLOs).
    pub trackers: Vec<Option<AlertTracker>>,
    min_events: u64,
    step: Micros,
    /// An event older than this before now is `too_late` (DESIGN §5).
    horizon: Micros,
    clocks: Vec<EventClock>,
    /// Per service: the clock of its first event (`u32::MAX`: none yet).
    home: Vec<u32>,
    /// Per service: changed since the last snapshot pass took it (an
    /// event, an episode started, ended or forgotten, a new plan). A
    /// service's windows moving with time alone do not count: a restore
    /// moves them as far itself (`snapshot`).
    dirty: Vec<bool>,
    /// Per service: its partition moved to another instance, which holds
    /// it now ([`park`](Self::park)); not shown until it is back.
    parked: Vec<bool>,
    /// Show only services with a clock here: with several instances, a
    /// service is shown by the one that holds its partition.
    pub only_homed: bool,
    /// Moves whenever a service gains or loses its clock: what is shown
    /// may have changed.
    homes_moved: u64,
}

/// Services with no clock yet.
const NO_CLOCK: u32 = u32::MAX;

impl Core {
    pub fn new(spec: &SloSpec, settings: CoreSettings) -> Core {
        let mut core = Core {
            engine: Engine::new(spec, settings.engine),
            trackers: Vec::new(),
            min_events: settings.min_events,
            step: settings.step.0.max(1),
            horizon: 0,
            clocks: Vec::new(),
            home: Vec::new(),
            dirty: Vec::new(),
            parked: Vec::new(),
            only_homed: false,
            homes_moved: 0,
        };
        core.sync();
        core.horizon = core.longest_period();
        core
    }

    /// The longest period of the spec's SLOs (at least the hour every
    /// service's SLI windows reach): how far back a late event still counts.
    fn longest_period(&self) -> Micros {
        self.engine
            .services()
            .filter(|(_, s)| !s.plan.slos.is_empty())
            .map(|(_, s)| s.plan.period.0)
            .max()
            .unwrap_or(0)
            .max(LATE_HORIZON.0)
    }

    /// How far back a late event still counts.
    pub fn horizon(&self) -> Span {
        Span(self.horizon)
    }

    /// Trackers and clock slots for services the engine created.
    fn sync(&mut self) {
        let n = self.engine.len();
        while self.trackers.len() < n {
            let s = self.engine.service(self.trackers.len() as ServiceId);
            self.trackers
                .push((!s.plan.slos.is_empty()).then(|| AlertTracker::new(s)));
        }
        self.home.resize(n, NO_CLOCK);
        self.parked.resize(n, false);
        // A new service is written by the next pass.
        self.dirty.resize(n, true);
    }

    /// The id of a service, created on first sight up to `max_services`.
    pub fn resolve(&mut self, name: &str) -> Result<ServiceId, Reason> {
        let r = self.engine.resolve(name);
        if self.trackers.len() < self.engine.len() {
            self.sync();
        }
        r
    }

    fn clock_mut(&mut self, c: usize) -> &mut EventClock {
        if self.clocks.len() <= c {
            self.clocks.resize_with(c + 1, EventClock::default);
        }
        &mut self.clocks[c]
    }

    pub fn clock(&self, c: usize) -> Option<&EventClock> {
        self.clocks.get(c)
    }

    /// The clock a service follows, once it has had an event.
    pub fn home(&self, id: ServiceId) -> Option<usize> {
        self.home
            .get(id as usize)
            .filter(|&&h| h != NO_CLOCK)
            .map(|&h| h as usize)
    }

    /// The next tick of clock `c` that an event at `ts` passes, if any:
    /// call until `None`, running [`tick`](Self::tick) (or
    /// [`tick_all`](Self::tick_all)) for each, before applying the event.
    pub fn due_tick(&mut self, c: usize, ts: Micros) -> Option<Micros> {
        let step = self.step;
        let clock = self.clock_mut(c);
        let next = *clock
            .next_tick
            .get_or_insert_with(|| ts.div_euclid(step) * step + step);
        if ts >= next {
            clock.next_tick = Some(next + step);
            Some(next)
        } else {
            None
        }
    }

    /// Clock `c`'s now as an event at `ts` arrives through it: its
    /// watermark, or `ts` if that is later (what [`apply`](Self::apply)
    /// judges the event against while the clock leads).
    pub fn now_at(&self, c: usize, ts: Micros) -> Micros {
        self.clocks
            .get(c)
            .and_then(|k| k.watermark)
            .map_or(ts, |w| w.max(ts))
    }

    /// Forgets clock `c`'s tick schedule and watermark (its partition
    /// went live, or was given up): its next event starts a new schedule.
    /// Its services stay its members.
    pub fn reset_clock(&mut self, c: usize) {
        let clock = self.clock_mut(c);
        clock.next_tick = None;
        clock.watermark = None;
    }

    /// Clock `c`'s services lack event time `[from, to)`: records of its
    /// partition expired before they were read (a retention gap). Their
    /// `coverage` leaves the span out until it leaves their period.
    /// Returns how many services it marked.
    pub fn lacks(&mut self, c: usize, from: Micros, to: Micros) -> usize {
        let Some(clock) = self.clocks.get(c) else {
            return 0;
        };
        let members = clock.members.clone();
        for &m in &members {
            self.engine.service_mut(m).lacks(from, to);
            self.dirty[m as usize] = true;
        }
        members.len()
    }

    /// The newest event time the state holds of clock `c`'s services: its
    /// watermark, or (a reset clock) their newest event.
    pub fn newest(&self, c: usize) -> Option<Micros> {
        let clock = self.clocks.get(c)?;
        clock.watermark.or_else(|| {
            clock
                .members
                .iter()
                .filter_map(|&m| self.engine.service(m).last_ts)
                .max()
        })
    }

    /// Clocks that follow no input here (a replay's, in a state a replay
    /// saved): their services follow the clock of their next event
    /// instead, as services seen for the first time do. Returns how many
    /// services moved.
    pub fn release_clocks(&mut self, keep: impl Fn(usize) -> bool) -> usize {
        let mut moved = 0;
        for c in 0..self.clocks.len() {
            if keep(c) {
                continue;
            }
            for m in std::mem::take(&mut self.clocks[c].members) {
                self.home[m as usize] = NO_CLOCK;
                self.dirty[m as usize] = true;
                moved += 1;
            }
            self.reset_clock(c);
        }
        moved
    }

    /// Applies one event through clock `c`, judged against `now` (the
    /// driver's: a replay's watermark, a partition's while it reads its
    /// history, else the wall clock). Older than the horizon before now is
    /// `too_late`; anything newer counts in every window that still covers
    /// it (DESIGN §5).
    pub fn apply(&mut self, c: usize, ev: &Event, now: Micros) -> Result<(), Reason> {
        if ev.ts < now.saturating_sub(self.horizon) {
            return Err(Reason::TooLate);
        }
        self.engine.record(ev);
        self.dirty[ev.service as usize] = true;
        let clock = self.clock_mut(c);
        clock.watermark = Some(clock.watermark.map_or(ev.ts, |w| w.max(ev.ts)));
        let id = ev.service as usize;
        if self.home[id] == NO_CLOCK {
            self.home[id] = c as u32;
            self.clocks[c].members.push(ev.service);
            self.parked[id] = false;
            self.homes_moved += 1;
        }
        Ok(())
    }

    /// Whether service `id` is shown (exported, served, judged) here.
    pub fn shown(&self, id: ServiceId) -> bool {
        let id = id as usize;
        if self.home.get(id).is_some_and(|&h| h != NO_CLOCK) {
            return true;
        }
        !self.only_homed && !self.parked.get(id).copied().unwrap_or(false)
    }

    /// A count that moves whenever a service gains or loses its clock
    /// (what [`shown`](Self::shown) says may have changed).
    pub fn homes_moved(&self) -> u64 {
        self.homes_moved
    }

    /// Whether any service is hidden ([`shown`](Self::shown) is false).
    pub fn hides(&self) -> bool {
        self.only_homed || self.parked.iter().any(|&p| p)
    }

    /// Clock `c`'s partition moved to another instance: its services
    /// start again with no state, follow no clock and are not shown
    /// until they are handed back ([`adopt`](Self::adopt)) or have an
    /// event here. Returns how many services it let go.
    pub fn park(&mut self, c: usize) -> usize {
        let Some(clock) = self.clocks.get_mut(c) else {
            return 0;
        };
        let members = std::mem::take(&mut clock.members);
        for &m in &members {
            self.engine.forget(m);
            let s = self.engine.service(m);
            self.trackers[m as usize] = (!s.plan.slos.is_empty()).then(|| AlertTracker::new(s));
            self.home[m as usize] = NO_CLOCK;
            self.parked[m as usize] = true;
            self.dirty[m as usize] = false;
        }
        self.homes_moved += 1;
        self.reset_clock(c);
        members.len()
    }

    /// Clock `c`'s tick schedule: its watermark and next tick.
    pub fn schedule(&self, c: usize) -> (Option<Micros>, Option<Micros>) {
        self.clocks
            .get(c)
            .map_or((None, None), |k| (k.watermark, k.next_tick))
    }

    /// Sets clock `c`'s tick schedule (a partition handed over, whose
    /// catch-up goes on where its last owner was).
    pub fn set_schedule(
        &mut self,
        c: usize,
        (watermark, next_tick): (Option<Micros>, Option<Micros>),
    ) {
        let clock = self.clock_mut(c);
        clock.watermark = watermark;
        clock.next_tick = next_tick;
    }

    /// Evaluates one service at `t`: its windows move to `t`, then its
    /// alert pairs are judged.
    fn tick_service(&mut self, id: ServiceId, t: Micros) {
        if let Some(tr) = &mut self.trackers[id as usize] {
            self.engine.advance_service(id, t);
            if tr.tick(self.engine.service(id), t, self.min_events) {
                self.dirty[id as usize] = true;
            }
        }
    }

    /// A tick of clock `c`: its services at `t`.
    pub fn tick(&mut self, c: usize, t: Micros) {
        let Some(clock) = self.clocks.get(c) else {
            return;
        };
        for k in 0..clock.members.len() {
            let id = self.clocks[c].members[k];
            self.tick_service(id, t);
        }
    }

    /// A tick of every service at `t` (a replay's single clock, which
    /// also ticks the spec's services that have had no event).
    pub fn tick_all(&mut self, t: Micros) {
        for id in 0..self.engine.len() {
            self.tick_service(id as ServiceId, t);
        }
    }

    /// A wall-clock tick (`slate run`): every service whose clock is not
    /// `reading` history moves to `now` and is judged, and episodes older
    /// than its period are forgotten. A service with no event yet is left
    /// where it is: its first events may be history, which a wall-clock
    /// tick would put behind its windows.
    pub fn tick_wall(&mut self, now: Micros, reading: impl Fn(usize) -> bool) {
        for id in 0..self.engine.len() {
            if self.home(id as ServiceId).is_none_or(&reading) {
                continue;
            }
            let id = id as ServiceId;
            self.engine.advance_service(id, now);
            if let Some(tr) = &mut self.trackers[id as usize] {
                let s = self.engine.service(id);
                let started_or_ended = tr.tick(s, now, self.min_events);
                if tr.forget_before(now - s.plan.period.0) || started_or_ended {
                    self.dirty[id as usize] = true;
                }
            }
        }
    }

    /// The end of a replay: every service moves past `last`, and open
    /// episodes get their bad counts.
    pub fn finish(&mut self, last: Option<Micros>) {
        if let Some(last) = last {
            self.engine.advance_all(last + 1);
        }
        for (id, tr) in self.trackers.iter_mut().enumerate() {
            if let Some(tr) = tr {
                tr.finish(self.engine.service(id as ServiceId));
            }
        }
    }

    /// Takes a reloaded SLO spec: every SLO whose definition did not change
    /// keeps its windows, budget and alert state; the others start now.
    pub fn reload(&mut self, spec: &SloSpec) -> Reloaded {
        let before: usize = self.engine.services().map(|(_, s)| s.plan.slos.len()).sum();
        let known = self.engine.len();
        let maps = self.engine.reload(spec);
        for (id, map) in maps.iter().enumerate() {
            let s = self.engine.service(id as ServiceId);
            self.trackers[id] = match (self.trackers[id].take(), s.plan.slos.is_empty()) {
                (_, true) => None,
                (Some(t), false) => Some(t.replanned(s, map)),
                (None, false) => Some(AlertTracker::new(s)),
            };
        }
        self.sync();
        self.dirty.fill(true);
        self.horizon = self.longest_period();
        let kept = maps.iter().flatten().filter(|o| o.is_some()).count();
        let started = maps.iter().flatten().filter(|o| o.is_none()).count()
            + (known..self.engine.len())
                .map(|id| self.engine.service(id as ServiceId).plan.slos.len())
                .sum::<usize>();
        Reloaded {
            kept,
            started,
            removed: before - kept,
        }
    }
}

#[cfg(test)]
mod tests;
