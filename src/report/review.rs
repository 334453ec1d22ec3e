//! The weekly SLO review (`slate review`, DESIGN §6): one page for the
//! team's Monday half hour — per service and SLO the budget left, the
//! week's burn against the week before, the week's incidents and what
//! each cost, the top spenders first, the SLOs at risk with the date their
//! budget runs out at the current 1d burn, the gate's verdict, and the
//! week's (or month's) one number. Worked out from a replay report's
//! figures (its `calendar`, `incidents` and burn rates); written as
//! Markdown to paste into a channel or a wiki, as one self-contained HTML
//! page, or as JSON.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::gate::GateVerdict;
use super::html::{end_text, short_time};
use super::table::pct;
use super::{Ordered, Reliability, ServiceReport};
use crate::engine::calendar::{month_label, week_label};
use crate::model::{format_rfc3339, parse_rfc3339, Micros, Span};

/// What the review reads of a report (a replay report's JSON).
#[derive(Debug, Clone, Deserialize)]
pub struct ReportView {
    pub schema_version: u32,
    pub span: Option<SpanView>,
    pub summary: SummaryView,
    pub services: BTreeMap<String, ServiceReport>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SpanView {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SummaryView {
    pub slos: usize,
    pub slos_met: usize,
    #[serde(default)]
    pub weeks: Ordered<Reliability>,
    #[serde(default)]
    pub months: Ordered<Reliability>,
}

/// Which calendar period the review covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reviewed {
    /// An ISO week, `2026-W45`.
    Week(String),
    /// A month, `2026-11`.
    Month(String),
}

impl Reviewed {
    pub fn label(&self) -> &str {
        match self {
            Reviewed::Week(l) | Reviewed::Month(l) => l,
        }
    }

    /// `--week 2026-W45` or `--month 2026-11`, checked.
    pub fn parse_week(s: &str) -> Result<Reviewed, String> {
        week_monday(s)
            .map(|_| Reviewed::Week(s.to_string()))
            .ok_or_else(|| format!("--week {s}: give an ISO week such as 2026-W45"))
    }

    pub fn parse_month(s: &str) -> Result<Reviewed, String> {
        month_first(s)
            .map(|_| Reviewed::Month(s.to_string()))
            .ok_or_else(|| format!("--month {s}: give a month such as 2026-11"))
    }

    /// What `--week` / `--month` (or `?week=` / `?month=`) ask for; the
    /// week wins when both are given. `None`: the latest week.
    pub fn from_flags(week: Option<&str>, month: Option<&str>) -> Result<Option<Reviewed>, String> {
        match (week, month) {
            (Some(w), _) => Reviewed::parse_week(w).map(Some),
            (_, Some(m)) => Reviewed::parse_month(m).map(Some),
            _ => Ok(None),
        }
    }

    /// The week (month) before.
    fn previous(&self) -> Option<String> {
        match self {
            Reviewed::Week(l) => week_monday(l)
                .and_then(|d| d.checked_sub(jiff::Span::new().days(7)).ok())
                .map(week_label),
            Reviewed::Month(l) => month_first(l)
                .and_then(|d| d.checked_sub(jiff::Span::new().months(1)).ok())
                .map(month_label),
        }
    }

    fn noun(&self) -> &'static str {
        match self {
            Reviewed::Week(_) => "week",
            Reviewed::Month(_) => "month",
        }
    }
}

fn week_monday(s: &str) -> Option<jiff::civil::Date> {
    let (y, w) = s.split_once("-W")?;
    if y.len() != 4 || w.len() != 2 {
        return None;
    }
    jiff::civil::ISOWeekDate::new(
        y.parse().ok()?,
        w.parse().ok()?,
        jiff::civil::Weekday::Monday,
    )
    .ok()
    .map(|d| d.date())
}

fn month_first(s: &str) -> Option<jiff::civil::Date> {
    let (y, m) = s.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    jiff::civil::Date::new(y.parse().ok()?, m.parse().ok()?, 1).ok()
}

/// The review's figures (its JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Review {
    /// `week` or `month`.
    pub kind: String,
    pub period: String,
    pub previous: Option<String>,
    /// The one number over the period, and over the one before.
    pub reliability: Option<f64>,
    pub previous_reliability: Option<f64>,
    /// SLOs met over their own period, as of the report's end.
    pub slos: usize,
    pub slos_met: usize,
    /// Every SLO, the top spenders of the period first.
    pub slos_reviewed: Vec<SloReview>,
    /// Incidents that overlap the period, the costliest first.
    pub incidents: Vec<IncidentReview>,
    /// SLOs with their budget gone or going faster than it lasts.
    pub at_risk: Vec<AtRisk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateSummary>,
}

/// The gate's verdict as the review shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GateSummary {
    pub allow: bool,
    pub checks: Vec<GateRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GateRow {
    pub service: String,
    pub check: String,
    pub value: Option<f64>,
    /// `pass`, `warn` or `block`.
    pub result: String,
}

impl From<GateVerdict> for GateSummary {
    fn from(v: GateVerdict) -> GateSummary {
        GateSummary {
            allow: v.allow,
            checks: v
                .checks
                .into_iter()
                .map(|c| GateRow {
                    service: c.service,
                    check: c.check,
                    value: c.value,
                    result: c.result.to_string(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SloReview {
    pub service: String,
    pub slo: String,
    pub objective: f64,
    /// Over the SLO's period, as of the report's end.
    pub budget_remaining: Option<f64>,
    /// The average burn rate over the period reviewed and the one before:
    /// its bad share over the budget (1 spends the budget exactly over
    /// the SLO's period).
    pub burn: Option<f64>,
    pub previous_burn: Option<f64>,
    pub good: u64,
    pub total: u64,
    pub incidents: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IncidentReview {
    pub service: String,
    pub slo: String,
    pub severity: String,
    pub start: String,
    pub end: Option<String>,
    pub budget_consumed: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AtRisk {
    pub service: String,
    pub slo: String,
    pub budget_remaining: Option<f64>,
    pub burn_rate_1d: Option<f64>,
    /// When the budget left runs out at the current 1d burn (`null`: it is
    /// gone already).
    pub runs_out: Option<String>,
}

/// The review of a running slate (`/api/v1/review`): its `services`
/// object as of `now`, summarized as a report is ([`super::Summary::of`]).
pub fn live_review(
    services: BTreeMap<String, ServiceReport>,
    now: Micros,
    which: Option<Reviewed>,
    gate: Option<GateVerdict>,
) -> Result<Review, String> {
    let summary = super::Summary::of(&services);
    let now = format_rfc3339(now);
    let view = ReportView {
        schema_version: 1,
        span: Some(SpanView {
            start: now.clone(),
            end: now,
        }),
        summary: SummaryView {
            slos: summary.slos,
            slos_met: summary.slos_met,
            weeks: summary.weeks,
            months: summary.months,
        },
        services,
    };
    review(&view, which, gate)
}

/// A calendar's weeks or its months.
type Periods = fn(&super::SloCalendar) -> &Ordered<super::CalendarFigures>;

/// The review of `which` (default: the latest week of the report).
pub fn review(
    report: &ReportView,
    which: Option<Reviewed>,
    gate: Option<GateVerdict>,
) -> Result<Review, String> {
    let which = match which {
        Some(w) => w,
        None => Reviewed::Week(
            report
                .summary
                .weeks
                .0
                .last()
                .map(|(k, _)| k.clone())
                .or_else(|| latest_calendar_week(report))
                .ok_or("the report has no calendar weeks: make it with this slate's `slate replay --slo FILE --json FILE`")?,
        ),
    };
    let (one, calendar_of): (&Ordered<Reliability>, Periods) = match which {
        Reviewed::Week(_) => (&report.summary.weeks, |c| &c.weeks),
        Reviewed::Month(_) => (&report.summary.months, |c| &c.months),
    };
    let label = which.label().to_string();
    let known: Vec<&str> = report
        .services
        .values()
        .flat_map(|s| s.calendar.0.iter())
        .flat_map(|(_, c)| calendar_of(c).0.iter().map(|(k, _)| k.as_str()))
        .collect();
    if !known.contains(&label.as_str()) {
        let mut all: Vec<&str> = known;
        all.sort_unstable();
        all.dedup();
        return Err(format!(
            "no {0} {label} to review: the {0}s held are {1}",
            which.noun(),
            if all.is_empty() {
                "none".to_string()
            } else {
                all.join(", ")
            }
        ));
    }
    let previous = which.previous();
    let find = |o: &Ordered<Reliability>, k: &str| {
        o.0.iter()
            .find(|(l, _)| l == k)
            .and_then(|(_, r)| r.reliability)
    };
    let end = report
        .span
        .as_ref()
        .and_then(|s| parse_rfc3339(s.end.as_bytes()));

    let mut slos_reviewed = Vec::new();
    let mut incidents = Vec::new();
    let mut at_risk = Vec::new();
    for (name, s) in &report.services {
        let tz = s
            .period_timezone
            .as_deref()
            .and_then(|z| jiff::tz::TimeZone::get(z).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC);
        // The week (month) a time falls in, in the service's zone.
        let label_at = |us: Micros| -> Option<String> {
            let d = jiff::Timestamp::from_microsecond(us)
                .ok()?
                .to_zoned_datetime(tz.clone())
                .date();
            Some(match which {
                Reviewed::Week(_) => week_label(d),
                Reviewed::Month(_) => month_label(d),
            })
        };
        let label_of = |t: &str| parse_rfc3339(t.as_bytes()).and_then(label_at);
        let end_label = end.and_then(label_at);
        let in_period = |start: &str, stop: Option<&str>| -> bool {
            let a = label_of(start);
            let b = stop.and_then(label_of).or(end_label.clone());
            a.as_deref().is_some_and(|a| a <= label.as_str())
                && b.as_deref().is_none_or(|b| b >= label.as_str())
        };
        for (slo, r) in &s.slos.0 {
            let cal = s
                .calendar
                .0
                .iter()
                .find(|(n, _)| n == slo)
                .map(|(_, c)| calendar_of(c));
            let at = |k: Option<&str>| {
                k.and_then(|k| cal.and_then(|c| c.0.iter().find(|(l, _)| l == k)))
                    .map(|(_, f)| f)
            };
            let this = at(Some(&label));
            let before = at(previous.as_deref());
            let mine: Vec<&super::IncidentSummary> = s
                .incidents
                .iter()
                .filter(|i| &i.slo == slo && in_period(&i.start, i.end.as_deref()))
                .collect();
            for i in &mine {
                incidents.push(IncidentReview {
                    service: name.clone(),
                    slo: slo.clone(),
                    severity: i.severity.clone(),
                    start: i.start.clone(),
                    end: i.end.clone(),
                    budget_consumed: i.budget_consumed,
                });
            }
            slos_reviewed.push(SloReview {
                service: name.clone(),
                slo: slo.clone(),
                objective: r.objective,
                budget_remaining: r.budget_remaining,
                burn: this.and_then(|f| f.budget_consumed),
                previous_burn: before.and_then(|f| f.budget_consumed),
                good: this.map_or(0, |f| f.good),
                total: this.map_or(0, |f| f.total),
                incidents: mine.len(),
            });
            let burn_1d = r
                .burn_rate
                .0
                .iter()
                .find(|(w, _)| w == "1d")
                .and_then(|(_, b)| *b);
            let left = r.budget_remaining;
            let gone = left.is_some_and(|l| l <= 0.0);
            // A calendar period's budget starts whole at its end: a budget
            // that would run out after it does not.
            let (period, resets) = match s.period.as_deref() {
                Some(p) => match crate::spec::slo::CalendarPeriod::parse(p) {
                    Some(c) => end
                        .and_then(|e| crate::engine::calendar::period_bounds(c, &tz, e))
                        .map_or((None, None), |b| (Some(b.length()), Some(b.end))),
                    None => (Span::parse(p).ok(), None),
                },
                None => (None, None),
            };
            let runs_out_at = match (left, burn_1d, period, end) {
                (Some(l), Some(b), Some(p), Some(e)) if l > 0.0 && b > 0.0 => {
                    Some(e.saturating_add((l * p.0 as f64 / b) as Micros))
                }
                _ => None,
            };
            let fast = burn_1d.is_some_and(|b| b > 1.0)
                && resets.is_none_or(|r| runs_out_at.is_some_and(|t| t < r));
            if gone || fast {
                let runs_out = runs_out_at
                    .filter(|&t| resets.is_none_or(|r| t < r))
                    .map(format_rfc3339);
                at_risk.push(AtRisk {
                    service: name.clone(),
                    slo: slo.clone(),
                    budget_remaining: left,
                    burn_rate_1d: burn_1d,
                    runs_out,
                });
            }
        }
    }
    // The top spenders first: the highest burn over the period.
    slos_reviewed.sort_by(|a, b| {
        b.burn
            .unwrap_or(-1.0)
            .total_cmp(&a.burn.unwrap_or(-1.0))
            .then_with(|| (&a.service, &a.slo).cmp(&(&b.service, &b.slo)))
    });
    incidents.sort_by(|a, b| {
        b.budget_consumed
            .total_cmp(&a.budget_consumed)
            .then_with(|| a.start.cmp(&b.start))
    });
    // The soonest to run out first; those already gone before them.
    at_risk.sort_by(|a, b| {
        (a.runs_out.is_some(), &a.runs_out, &a.service, &a.slo).cmp(&(
            b.runs_out.is_some(),
            &b.runs_out,
            &b.service,
            &b.slo,
        ))
    });
    Ok(Review {
        kind: which.noun().to_string(),
        reliability: find(one, &label),
        previous_reliability: previous.as_deref().and_then(|p| find(one, p)),
        period: label,
        previous,
        slos: report.summary.slos,
        slos_met: report.summary.slos_met,
        slos_reviewed,
        incidents,
        at_risk,
        gate: gate.map(GateSummary::from),
    })
}

/// A report without `summary.weeks` (no occurrence SLO) may still have
/// calendar weeks of its timeslice SLOs.
fn latest_calendar_week(report: &ReportView) -> Option<String> {
    report
        .services
        .values()
        .flat_map(|s| s.calendar.0.iter())
        .flat_map(|(_, c)| c.weeks.0.iter().map(|(k, _)| k.clone()))
        .max()
}

fn burn(v: Option<f64>) -> String {
    v.map_or("–".into(), |b| format!("{b:.2}×"))
}

/// A cell's text, with the characters Markdown tables give meaning to
/// escaped.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|")
}

/// One section of the review as both renderers lay it out: a title, the
/// columns (numbers right-aligned), the rows, and what to say when it has
/// none.
struct Section {
    title: String,
    head: Vec<(String, bool)>,
    rows: Vec<Vec<String>>,
    empty: String,
}

/// The review's sections, in order: budgets, incidents, at risk, gate.
fn sections(r: &Review) -> Vec<Section> {
    let cols = |c: &[(&str, bool)]| c.iter().map(|&(n, right)| (n.to_string(), right)).collect();
    let mut out = vec![
        Section {
            title: "Error budgets, top spenders first".into(),
            head: cols(&[
                ("Service", false),
                ("SLO", false),
                ("Objective", true),
                ("Budget left", true),
                (&format!("Burn this {}", r.kind), true),
                (&format!("Burn last {}", r.kind), true),
                ("Incidents", true),
            ]),
            rows: r
                .slos_reviewed
                .iter()
                .map(|s| {
                    vec![
                        s.service.clone(),
                        s.slo.clone(),
                        pct(Some(s.objective)),
                        pct(s.budget_remaining),
                        burn(s.burn),
                        burn(s.previous_burn),
                        s.incidents.to_string(),
                    ]
                })
                .collect(),
            empty: "No SLO.".into(),
        },
        Section {
            title: format!("Incidents this {}", r.kind),
            head: cols(&[
                ("Service", false),
                ("SLO", false),
                ("Severity", false),
                ("Start", false),
                ("End", false),
                ("Budget spent", true),
            ]),
            rows: r
                .incidents
                .iter()
                .map(|i| {
                    vec![
                        i.service.clone(),
                        i.slo.clone(),
                        i.severity.clone(),
                        short_time(&i.start),
                        end_text(i.end.as_deref()),
                        pct(Some(i.budget_consumed)),
                    ]
                })
                .collect(),
            empty: format!("No alert fired this {}.", r.kind),
        },
        Section {
            title: "At risk".into(),
            head: cols(&[
                ("Service", false),
                ("SLO", false),
                ("Budget left", true),
                ("1d burn", true),
                ("Budget runs out", false),
            ]),
            rows: r
                .at_risk
                .iter()
                .map(|a| {
                    vec![
                        a.service.clone(),
                        a.slo.clone(),
                        pct(a.budget_remaining),
                        burn(a.burn_rate_1d),
                        a.runs_out
                            .as_deref()
                            .map_or("spent already".into(), short_time),
                    ]
                })
                .collect(),
            empty:
                "No SLO has spent its budget or burns it faster than it lasts (1d burn above 1×)."
                    .into(),
        },
    ];
    if let Some(g) = &r.gate {
        out.push(Section {
            title: format!("Deploy gate: {}", if g.allow { "allow" } else { "block" }),
            head: cols(&[
                ("Service", false),
                ("Check", false),
                ("Value", true),
                ("Result", false),
            ]),
            rows: g
                .checks
                .iter()
                .map(|c| {
                    vec![
                        c.service.clone(),
                        c.check.clone(),
                        c.value.map_or("no data".into(), |v| format!("{v:.4}")),
                        c.result.clone(),
                    ]
                })
                .collect(),
            empty: "No check.".into(),
        });
    }
    out
}

/// The review as Markdown (CommonMark with GitHub's tables).
pub fn markdown(r: &Review) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# SLO review: {} {}\n", r.kind, r.period);
    let _ = write!(m, "**Reliability this {}: {}**", r.kind, pct(r.reliability));
    match (&r.previous, r.previous_reliability) {
        (Some(p), Some(v)) => {
            let _ = write!(m, " (last {}, {p}: {})", r.kind, pct(Some(v)));
        }
        (Some(p), None) => {
            let _ = write!(m, " ({p}: no data)");
        }
        _ => {}
    }
    let _ = writeln!(
        m,
        " · {} of {} SLOs met over their period\n",
        r.slos_met, r.slos
    );
    m.push_str("Reliability is all good events over all events judged by the latency and error-rate SLOs. ");
    m.push_str("A burn of 1.00× spends an SLO's budget exactly over its period; more, faster.\n");
    for sec in sections(r) {
        let _ = writeln!(m, "\n## {}\n", sec.title);
        if sec.rows.is_empty() {
            let _ = writeln!(m, "{}", sec.empty);
            continue;
        }
        let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        m.push_str(&line(sec.head.iter().map(|(n, _)| cell(n)).collect()));
        m.push_str(&line(
            sec.head
                .iter()
                .map(|&(_, right)| if right { "---:" } else { "---" }.to_string())
                .collect(),
        ));
        for row in &sec.rows {
            m.push_str(&line(row.iter().map(|c| cell(c)).collect()));
        }
    }
    m
}

/// The review as one self-contained HTML page (the report's style, no
/// script, no request), the same sections as the Markdown.
pub fn html(r: &Review) -> String {
    use super::html::{esc, STYLE};
    let mut h = String::with_capacity(16 << 10);
    let title = format!("SLO review: {} {}", r.kind, r.period);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    let before = match (&r.previous, r.previous_reliability) {
        (Some(p), Some(v)) => format!("last {} ({p}): {}", r.kind, pct(Some(v))),
        (Some(p), None) => format!("{p}: no data"),
        _ => String::new(),
    };
    let met = if r.slos_met == r.slos { "good" } else { "bad" };
    let _ = writeln!(
        h,
        "<div class=\"hero\"><div><div class=\"big\">{}</div><div class=\"muted\">reliability this {}; {}</div></div><div><div class=\"big {met}\">{} of {}</div><div class=\"muted\">SLOs met over their period</div></div></div>",
        pct(r.reliability),
        r.kind,
        esc(&before),
        r.slos_met,
        r.slos
    );
    for sec in sections(r) {
        let _ = writeln!(h, "<h2>{}</h2>", esc(&sec.title));
        if sec.rows.is_empty() {
            let _ = writeln!(h, "<p class=\"muted\">{}</p>", esc(&sec.empty));
            continue;
        }
        let class = |right: bool| if right { " class=\"n\"" } else { "" };
        h.push_str("<table><tr>");
        for (name, right) in &sec.head {
            let _ = write!(h, "<th{}>{}</th>", class(*right), esc(name));
        }
        h.push_str("</tr>\n");
        for row in &sec.rows {
            h.push_str("<tr>");
            for (c, (_, right)) in row.iter().zip(&sec.head) {
                let _ = write!(h, "<td{}>{}</td>", class(*right), esc(c));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
    let _ = writeln!(
        h,
        "<footer>slate {} · a burn of 1.00× spends an SLO's budget exactly over its period · reliability is all good events over all events judged by the latency and error-rate SLOs</footer>\n</body></html>",
        env!("CARGO_PKG_VERSION")
    );
    h
}
