//! Per-service state: slot rings of counters for every window up to the
//! SLO period, latency quantile windows, last-event and last-success
//! timestamps. Time is passed in; the engine never reads the clock.
//!
//! One `Engine` is owned by one thread: replay applies events in input
//! order on one thread after decoding them on all cores, and live state is
//! sharded by service so that no lock is shared by all workers.
//!
//! May import `model` and `spec`.

pub mod calendar;
pub mod hist;
pub mod latency;
pub mod plan;
pub mod ring;
pub mod service;

use rustc_hash::FxHashMap;

use crate::model::{valid_service, Reason};
use crate::model::{Event, Micros, ServiceId, Span};
use crate::spec::SloSpec;
pub use latency::{keeps_for, DEFAULT_QUANTILE_WINDOWS};
pub use plan::ServicePlan;
pub use service::{GoodTotal, ServiceState};

/// How far back the finest ring reaches (every service's SLI windows), and
/// how long a closed availability slice can still be judged again by a
/// late event.
pub const LATE_HORIZON: Span = Span::hours(1);

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub max_services: usize,
    /// Latency quantile windows (`engine.quantile_windows`).
    pub quantile_windows: Vec<Span>,
    /// Keep a whole-span latency histogram per service (replay reports).
    pub span_latency: bool,
    /// Keep per-day counts of each SLO (the weeks and months of reports
    /// and of the review).
    pub calendar: bool,
    /// Live: at most this many days of them (0: every day, a replay's).
    pub calendar_days: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            max_services: 10_000,
            quantile_windows: DEFAULT_QUANTILE_WINDOWS.to_vec(),
            span_latency: false,
            calendar: false,
            calendar_days: 0,
        }
    }
}

/// What a service's state holds from the spec in force and the engine's
/// settings rather than from what it saved: its calendar and its
/// corrections. On every state the engine makes, restores or replans,
/// once its plan is the spec's ([`ServicePlan::new`], or
/// [`unsaved_plan`] before a replan).
fn attach(
    state: &mut ServiceState,
    spec: Option<&crate::spec::ServiceSpec>,
    settings: &EngineSettings,
) {
    attach_calendar(state, spec, settings);
    attach_corrections(state, spec);
}

/// What a plan takes from the spec but does not save (its calendar
/// period and alert pairs), so that a restored plan compares equal to the
/// spec's when nothing saved changed.
fn unsaved_plan(plan: &mut ServicePlan, spec: Option<&crate::spec::ServiceSpec>) {
    plan.calendar = spec.and_then(|s| s.calendar_period);
    plan.alerting = spec.map_or(Vec::new(), |s| s.alerting.clone());
}

/// Per-day counts for a service when the engine keeps them: its own (a
/// restored or reloaded state's) when they were cut in the time zone of
/// the spec in force for its SLOs, else none yet.
fn attach_calendar(
    state: &mut ServiceState,
    spec: Option<&crate::spec::ServiceSpec>,
    settings: &EngineSettings,
) {
    // A calendar period sums its days: kept whatever the settings.
    if !settings.calendar && state.plan.calendar.is_none() {
        state.calendar = None;
        return;
    }
    let tz = spec.map_or(jiff::tz::TimeZone::UTC, |s| s.period_timezone.clone());
    let n = state.plan.slos.len();
    let fits = state
        .calendar
        .as_ref()
        .is_some_and(|c| c.time_zone() == &tz && c.slos() == n);
    match (&mut state.calendar, fits) {
        (Some(c), true) => c.set_keep(settings.calendar_days),
        _ => {
            state.calendar =
                Some(calendar::CalendarDays::new(tz, n).keeping(settings.calendar_days))
        }
    }
}

/// The spec's corrections for a service, on its state (they are not
/// saved with it); what they excluded so far is kept when the SLOs are
/// the same.
fn attach_corrections(state: &mut ServiceState, spec: Option<&crate::spec::ServiceSpec>) {
    let n = state.plan.slos.len();
    let mut c = service::Corrections::new(spec.map_or(Vec::new(), |s| s.corrections.clone()), n);
    if state.corrections.excluded.len() == n {
        c.excluded = std::mem::take(&mut state.corrections.excluded);
    }
    state.corrections = c;
}

#[derive(Debug, Clone)]
pub struct Engine {
    settings: EngineSettings,
    spec: SloSpec,
    names: Vec<Box<str>>,
    index: FxHashMap<Box<str>, ServiceId>,
    services: Vec<ServiceState>,
    /// Services not named in the spec, counted against `max_services`.
    unlisted: usize,
    /// The newest timestamp applied.
    now: Option<Micros>,
}

impl Engine {
    pub fn new(spec: &SloSpec, settings: EngineSettings) -> Engine {
        let mut e = Engine {
            settings,
            spec: spec.clone(),
            names: Vec::new(),
            index: FxHashMap::default(),
            services: Vec::new(),
            unlisted: 0,
            now: None,
        };
        // Services named in the spec always have state.
        for s in &spec.services {
            e.insert(&s.name);
        }
        e
    }

    fn insert(&mut self, name: &str) -> ServiceId {
        let id = self.services.len() as ServiceId;
        let spec = self.spec.service(name);
        let plan = ServicePlan::new(spec);
        let mut state = ServiceState::new(
            plan,
            keeps_for(&self.settings.quantile_windows),
            self.settings.span_latency,
        );
        attach(&mut state, spec, &self.settings);
        self.services.push(state);
        self.names.push(name.into());
        self.index.insert(name.into(), id);
        id
    }

    /// An engine of services restored from a snapshot, in their order (ids
    /// are positions), under the plans they were saved with; call
    /// [`reload`](Self::reload) with the spec in force to move them to it.
    pub fn restore(
        spec: &SloSpec,
        settings: EngineSettings,
        services: Vec<(Box<str>, ServiceState)>,
        now: Option<Micros>,
    ) -> Engine {
        let mut e = Engine {
            settings,
            spec: spec.clone(),
            names: Vec::with_capacity(services.len()),
            index: FxHashMap::default(),
            services: Vec::with_capacity(services.len()),
            unlisted: 0,
            now,
        };
        for (name, mut state) in services {
            unsaved_plan(&mut state.plan, spec.service(&name));
            e.index.insert(name.clone(), e.names.len() as ServiceId);
            e.names.push(name);
            e.services.push(state);
        }
        e
    }

    /// Takes a reloaded SLO spec: every service moves to its new plan,
    /// keeping the state of each SLO whose definition did not change
    /// ([`ServiceState::replanned`]); services the new spec names are
    /// created. Returns, per service id, the old index of each new SLO
    /// (`None`: new or changed), for whoever tracks per-SLO state beside.
    pub fn reload(&mut self, spec: &SloSpec) -> Vec<Vec<Option<usize>>> {
        self.spec = spec.clone();
        let mut maps = Vec::with_capacity(self.services.len());
        for (name, state) in self.names.iter().zip(self.services.iter_mut()) {
            unsaved_plan(&mut state.plan, spec.service(name));
            let re = state.plan.replan(spec.service(name));
            let unchanged =
                re.plan == state.plan && re.slos.iter().enumerate().all(|(j, o)| *o == Some(j));
            maps.push(re.slos.clone());
            if !unchanged {
                let old = std::mem::replace(
                    state,
                    ServiceState::new(ServicePlan::new(None), [0; 3], false),
                );
                *state = old.replanned(re);
            }
            attach(state, spec.service(name), &self.settings);
        }
        for s in &spec.services {
            if !self.index.contains_key(s.name.as_str()) {
                self.insert(&s.name);
            }
        }
        self.unlisted = self
            .names
            .iter()
            .filter(|n| spec.service(n).is_none())
            .count();
        maps
    }

    /// Service `id` takes `state`, saved elsewhere (a partition handed
    /// over), moved to the spec in force as a reload moves it. Returns
    /// the old index of each of its SLOs (`None`: new or changed), as
    /// [`reload`](Self::reload) does per service.
    pub fn adopt(&mut self, id: ServiceId, mut state: ServiceState) -> Vec<Option<usize>> {
        unsaved_plan(&mut state.plan, self.spec.service(&self.names[id as usize]));
        let re = state
            .plan
            .replan(self.spec.service(&self.names[id as usize]));
        let unchanged =
            re.plan == state.plan && re.slos.iter().enumerate().all(|(j, o)| *o == Some(j));
        let map = re.slos.clone();
        self.services[id as usize] = if unchanged {
            state
        } else {
            state.replanned(re)
        };
        let spec = self.spec.service(&self.names[id as usize]);
        attach(&mut self.services[id as usize], spec, &self.settings);
        if let Some(t) = self.services[id as usize].last_ts {
            self.now = Some(self.now.map_or(t, |n| n.max(t)));
        }
        map
    }

    /// Service `id` starts again with no state (its partition moved to
    /// another instance): its name and id stay.
    pub fn forget(&mut self, id: ServiceId) {
        let plan = ServicePlan::new(self.spec.service(&self.names[id as usize]));
        self.services[id as usize] = ServiceState::new(
            plan,
            keeps_for(&self.settings.quantile_windows),
            self.settings.span_latency,
        );
        let spec = self.spec.service(&self.names[id as usize]);
        attach(&mut self.services[id as usize], spec, &self.settings);
    }

    /// The id of a service, created on first sight up to `max_services`.
    pub fn resolve(&mut self, name: &str) -> Result<ServiceId, Reason> {
        if let Some(&id) = self.index.get(name) {
            return Ok(id);
        }
        if !valid_service(name) {
            return Err(Reason::BadService);
        }
        if self.unlisted >= self.settings.max_services {
            return Err(Reason::TooManyServices);
        }
        self.unlisted += 1;
        Ok(self.insert(name))
    }

    /// The id of a known service.
    pub fn index_of(&self, name: &str) -> Option<ServiceId> {
        self.index.get(name).copied()
    }

    pub fn now(&self) -> Option<Micros> {
        self.now
    }

    /// Records one event in its service: in every window that still
    /// covers it (a late event leaves the windows that moved past it
    /// alone). Whether it is too late to count at all is the driver's
    /// call, against its own clock (`apply::Core::apply`).
    pub fn record(&mut self, ev: &Event) {
        self.services[ev.service as usize].record(ev);
        self.now = Some(self.now.map_or(ev.ts, |n| n.max(ev.ts)));
    }

    /// Moves every service's clock to `t` (an evaluation tick).
    pub fn advance_all(&mut self, t: Micros) {
        for s in &mut self.services {
            s.advance(t);
        }
    }

    /// Moves one service's clock to `t`.
    pub fn advance_service(&mut self, id: ServiceId, t: Micros) {
        self.services[id as usize].advance(t);
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
    pub fn name(&self, id: ServiceId) -> &str {
        &self.names[id as usize]
    }
    pub fn service(&self, id: ServiceId) -> &ServiceState {
        &self.services[id as usize]
    }
    pub fn service_mut(&mut self, id: ServiceId) -> &mut ServiceState {
        &mut self.services[id as usize]
    }
    pub fn services(&self) -> impl Iterator<Item = (&str, &ServiceState)> {
        self.names.iter().map(|n| &**n).zip(self.services.iter())
    }
    pub fn spec(&self) -> &SloSpec {
        &self.spec
    }
    /// The latency quantile windows every service keeps.
    pub fn quantile_windows(&self) -> &[Span] {
        &self.settings.quantile_windows
    }

    pub fn heap_bytes(&self) -> usize {
        self.services.iter().map(ServiceState::heap_bytes).sum()
    }
}
