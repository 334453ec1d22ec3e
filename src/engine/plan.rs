//! What state a service needs, decided once from its SLO spec: counter
//! columns, the slot tiers and the windows each tier serves.

use crate::model::Span;
use crate::spec::{ServiceSpec, SloKind};

/// Counter columns every service has.
pub const COL_TOTAL: usize = 0;
pub const COL_ERRORS: usize = 1;
pub const COL_LATENCY_TOTAL: usize = 2;
const BASE_COLS: usize = 3;

/// Windows of the SLIs every service reports (error ratio, throughput).
pub const SLI_WINDOWS: [Span; 3] = [Span::mins(1), Span::mins(5), Span::hours(1)];
/// Burn-rate windows, as in the report and `slate_burn_rate`.
pub use crate::model::BURN_WINDOWS;

pub use crate::model::resolution_for;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SloPlan {
    pub name: String,
    pub kind: SloKind,
    pub objective: f64,
    /// Column counting bad events (or bad slices).
    pub bad_col: usize,
    /// Occurrence SLOs: the column counting the events it judges (shared
    /// by every SLO of its kind, or its own when a correction covers it or
    /// a reload added it). Timeslice SLOs, whose totals follow from the
    /// slice clock: `None`, or with a correction the column counting the
    /// slices it excluded, which the clock's count leaves out.
    pub total_col: Option<usize>,
}

impl SloPlan {
    pub fn budget(&self) -> f64 {
        1.0 - self.objective
    }
}

/// A reloaded plan and how the old state maps onto it ([`ServicePlan::replan`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Replan {
    pub plan: ServicePlan,
    pub cols: Vec<(usize, usize)>,
    pub slos: Vec<Option<usize>>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TierPlan {
    pub res: Span,
    pub windows: Vec<Span>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServicePlan {
    /// A rolling period, or the longest calendar period of its kind.
    pub period: Span,
    /// A calendar period (`week`, `month`, `quarter`), from the spec in
    /// force (not saved: a restored state is planned again).
    #[serde(skip)]
    pub calendar: Option<crate::spec::slo::CalendarPeriod>,
    /// Its alert pairs (from the spec in force, not saved).
    #[serde(skip)]
    pub alerting: Vec<crate::spec::alerting::AlertWindow>,
    pub slice: Span,
    pub cols: usize,
    pub slos: Vec<SloPlan>,
    pub tiers: Vec<TierPlan>,
}

impl ServicePlan {
    pub fn new(spec: Option<&ServiceSpec>) -> ServicePlan {
        let mut cols = BASE_COLS;
        let mut slos = Vec::new();
        let mut windows: Vec<Span> = SLI_WINDOWS.to_vec();
        let (period, slice) = spec.map_or(
            (
                crate::spec::slo::DEFAULT_PERIOD,
                crate::spec::slo::DEFAULT_SLICE,
            ),
            |s| (s.period, s.availability_slice),
        );
        if let Some(spec) = spec {
            for (i, slo) in spec.slos.iter().enumerate() {
                // A corrected SLO leaves some events (slices) out: it
                // counts in columns of its own.
                let corrected = spec.corrected(i);
                let mut own = || {
                    cols += 1;
                    cols - 1
                };
                let (bad_col, total_col) = match (slo.kind, corrected) {
                    (SloKind::Success, false) => (COL_ERRORS, Some(COL_TOTAL)),
                    (SloKind::Success, true) => (own(), Some(own())),
                    (SloKind::Latency { .. }, false) => (own(), Some(COL_LATENCY_TOTAL)),
                    (SloKind::Latency { .. }, true) => (own(), Some(own())),
                    (_, false) => (own(), None),
                    (_, true) => (own(), Some(own())),
                };
                slos.push(SloPlan {
                    name: slo.name.clone(),
                    kind: slo.kind,
                    objective: slo.objective,
                    bad_col,
                    total_col,
                });
            }
            if !slos.is_empty() {
                windows.extend(BURN_WINDOWS);
                windows.extend(spec.alerting.iter().flat_map(|w| [w.long, w.short]));
                windows.push(period);
            }
        }
        let mut tiers: Vec<TierPlan> = Vec::new();
        windows.sort();
        windows.dedup();
        for w in windows {
            let res = resolution_for(w);
            match tiers.iter_mut().find(|t| t.res == res) {
                Some(t) => t.windows.push(w),
                None => tiers.push(TierPlan {
                    res,
                    windows: vec![w],
                }),
            }
        }
        // Columns are bits of a u64 mask on the hot path.
        assert!(cols <= 64, "at most 61 SLOs per service");
        ServicePlan {
            period,
            calendar: spec.and_then(|s| s.calendar_period),
            alerting: spec.map_or(Vec::new(), |s| s.alerting.clone()),
            slice,
            cols,
            slos,
            tiers,
        }
    }

    /// The plan for `spec` replacing `self` on a reload, and how state
    /// moves across: `cols` maps old columns to new ones, `slos[j]` is the
    /// old index of new SLO `j` when its definition did not change (same
    /// name, kind and objective, same period and slice), else `None`.
    ///
    /// An SLO that is new or changed starts from nothing, except where its
    /// counts follow from what every service keeps anyway (an error-rate
    /// SLO reads the total and error columns). A new latency SLO gets a
    /// total column of its own, so that its events before the reload (which
    /// were never judged against its threshold) do not count as good.
    pub fn replan(&self, spec: Option<&ServiceSpec>) -> Replan {
        let mut plan = ServicePlan::new(spec);
        let same_clock = plan.period == self.period && plan.slice == self.slice;
        let mut cols: Vec<(usize, usize)> = (0..BASE_COLS).map(|c| (c, c)).collect();
        let mut slos = Vec::with_capacity(plan.slos.len());
        for j in 0..plan.slos.len() {
            let new = &plan.slos[j];
            let old = self.slos.iter().position(|o| {
                same_clock
                    && o.name == new.name
                    && o.kind == new.kind
                    && o.objective == new.objective
            });
            slos.push(old);
            // A total column of its own (a correction): from the old one,
            // shared or own; a timeslice SLO that had none excluded none.
            let own_total = new.total_col.filter(|&c| c >= BASE_COLS);
            if let (Some(i), Some(c)) = (old, own_total) {
                if let Some(o) = self.slos[i].total_col {
                    cols.push((o, c));
                }
            }
            if !matches!(new.kind, SloKind::Latency { .. }) || own_total.is_some() {
                if let Some(i) = old {
                    if new.bad_col >= BASE_COLS {
                        cols.push((self.slos[i].bad_col, new.bad_col));
                    }
                }
                continue;
            }
            let own_total = match old {
                None => true,
                Some(i) => self.slos[i].total_col != Some(COL_LATENCY_TOTAL),
            };
            if own_total {
                plan.cols += 1;
                plan.slos[j].total_col = Some(plan.cols - 1);
            }
            if let Some(i) = old {
                cols.push((self.slos[i].bad_col, plan.slos[j].bad_col));
                if let (true, Some(c)) = (own_total, self.slos[i].total_col) {
                    cols.push((c, plan.cols - 1));
                }
            }
        }
        if plan.cols > 64 {
            // Columns are bits of a u64: too many new latency SLOs at once
            // for columns of their own. The service starts afresh.
            return Replan {
                plan: ServicePlan::new(spec),
                cols: Vec::new(),
                slos: vec![None; slos.len()],
            };
        }
        Replan { plan, cols, slos }
    }

    /// Tier and window index serving `w`.
    pub fn locate(&self, w: Span) -> Option<(usize, usize)> {
        self.tiers
            .iter()
            .enumerate()
            .find_map(|(ti, t)| t.windows.iter().position(|&x| x == w).map(|wi| (ti, wi)))
    }
}
