//! The report as one self-contained HTML file (`slate replay --html`): the
//! one number and the incidents first (each with its alert pairs folded), then per service and SLO the
//! error budget over the span, the burn rates of the alert pairs' long
//! windows against their thresholds with the alert episodes as bands, and
//! latency p50/p95/p99. Inline SVG and CSS only — no script, no font, no
//! request — so it opens on an air-gapped laptop; light or dark as the
//! reader's system is.
//!
//! Charts for the services with SLOs that spent the most budget, at most
//! [`MAX_CHARTED`]; every SLO of every service is in the table.

use std::fmt::Write;

use super::chart::{Charts, ServiceSeries};
use super::table::{grouped, pct};
use super::{IncidentSummary, Report, ServiceReport};
use crate::model::{format_rfc3339, parse_rfc3339, Micros};

/// At most this many services get charts.
pub const MAX_CHARTED: usize = 50;
/// Incident rows shown before the rest is folded.
const SHOWN_INCIDENTS: usize = 15;

const W: f64 = 760.0;
const H: f64 = 190.0;
/// Plot area inside the SVG: left, right, top, bottom margins.
const ML: f64 = 64.0;
const MR: f64 = 12.0;
const MT: f64 = 10.0;
const MB: f64 = 24.0;

pub(super) const STYLE: &str = r#"
:root { color-scheme: light dark;
  --bg: #ffffff; --fg: #1d2330; --muted: #5d6675; --grid: #e3e6eb; --card: #f6f7f9;
  --c0: #2f6fde; --c1: #d9822b; --c2: #c23a6b; --c3: #2a9d6f;
  --page: rgba(214, 48, 49, 0.16); --ticket: rgba(230, 145, 30, 0.16);
  --good: #1e8a4c; --bad: #c62f2f; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #14171c; --fg: #e4e7ec; --muted: #9aa3b0; --grid: #2c313a; --card: #1c2027;
    --c0: #6ea1ff; --c1: #f0a35e; --c2: #ef6f9c; --c3: #4fcf97;
    --page: rgba(255, 90, 90, 0.22); --ticket: rgba(255, 170, 60, 0.2);
    --good: #4fcf7f; --bad: #ff6b6b; } }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 24px; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px; }
h3 { font-size: 15px; margin: 18px 0 4px; }
.muted { color: var(--muted); }
.hero { display: flex; gap: 32px; align-items: baseline; flex-wrap: wrap; background: var(--card);
  border-radius: 10px; padding: 18px 22px; margin: 16px 0; }
.big { font-size: 44px; font-weight: 650; letter-spacing: -0.5px; }
.good { color: var(--good); } .bad { color: var(--bad); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid var(--grid); white-space: nowrap; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: 0.3px; }
td.n, th.n { text-align: right; }
.service { border-top: 2px solid var(--grid); margin-top: 28px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 8px 20px; }
figure { margin: 0; } figcaption { font-size: 12px; color: var(--muted); margin: 2px 0; }
svg { width: 100%; height: auto; display: block; }
svg text { fill: var(--muted); font-size: 11px; }
svg .grid { stroke: var(--grid); stroke-width: 1; }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg .line { fill: none; stroke-width: 1.6; stroke-linejoin: round; }
svg .s0 { stroke: var(--c0); } svg .s1 { stroke: var(--c1); } svg .s2 { stroke: var(--c2); } svg .s3 { stroke: var(--c3); }
svg .thr { stroke-dasharray: 5 4; stroke-width: 1.2; fill: none; }
svg .page { fill: var(--page); } svg .ticket { fill: var(--ticket); }
.key { display: inline-flex; gap: 12px; font-size: 12px; color: var(--muted); }
.key i { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 4px; }
.k0 { background: var(--c0); } .k1 { background: var(--c1); } .k2 { background: var(--c2); } .k3 { background: var(--c3); }
.kp { background: var(--page); height: 10px !important; } .kt { background: var(--ticket); height: 10px !important; }
details summary { cursor: pointer; color: var(--muted); margin: 4px 0 8px; }
details.pairs summary { margin: 0; } details.pairs div { font-size: 12px; color: var(--muted); }
footer { margin-top: 40px; font-size: 12px; color: var(--muted); }
"#;

pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-11-01T10:20:00.123Z` → `2026-11-01 10:20`.
pub(super) fn short_time(rfc3339: &str) -> String {
    rfc3339.get(..16).unwrap_or(rfc3339).replace('T', " ")
}

fn duration(us: i64) -> String {
    let m = us / 60_000_000;
    match m {
        0 => format!("{}s", us / 1_000_000),
        1..=59 => format!("{m}m"),
        60..=1439 => format!("{}h {:02}m", m / 60, m % 60),
        _ => format!("{}d {}h", m / 1440, (m % 1440) / 60),
    }
}

/// An episode's (an incident's) start and end; one still firing ends at
/// `open_end`.
fn span_of(start: &str, end: Option<&str>, open_end: Option<Micros>) -> Option<(Micros, Micros)> {
    let start = parse_rfc3339(start.as_bytes())?;
    let end = end.and_then(|e| parse_rfc3339(e.as_bytes())).or(open_end)?;
    Some((start, end))
}

/// When an episode (an incident) ended, as the page writes it.
pub(super) fn end_text(end: Option<&str>) -> String {
    end.map_or("still firing".into(), short_time)
}

/// "Nice" tick values covering [lo, hi].
fn ticks(lo: f64, hi: f64, want: usize) -> Vec<f64> {
    if hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return vec![lo];
    }
    let raw = (hi - lo) / want as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= hi + step * 1e-9 {
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    out
}

/// A number for an axis label; milliseconds of a second or more are
/// written in seconds.
fn label(v: f64, unit: &str) -> String {
    if unit == " ms" && v.abs() >= 1000.0 {
        return label(v / 1000.0, " s");
    }
    let s = if v.abs() >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    format!("{s}{unit}")
}

/// The y axis: a linear scale, or log(1 + v) for burn rates (the
/// thresholds 1 … 14.4 stay apart whatever the peak).
#[derive(Clone, Copy)]
enum Scale {
    Linear { lo: f64, hi: f64 },
    Log1p { hi: f64 },
}

impl Scale {
    fn y(self, v: f64) -> f64 {
        let frac = match self {
            Scale::Linear { lo, hi } => (v - lo) / (hi - lo),
            Scale::Log1p { hi } => v.max(0.0).ln_1p() / hi.ln_1p(),
        };
        MT + (H - MT - MB) * (1.0 - frac.clamp(0.0, 1.0))
    }
}

struct Line<'a> {
    values: &'a [f32],
    name: String,
}

struct Chart<'a> {
    times: &'a [Micros],
    from: Micros,
    to: Micros,
    lines: Vec<Line<'a>>,
    scale: Scale,
    unit: &'static str,
    y_ticks: Vec<f64>,
    /// Dashed horizontal lines: (value, label, series class index).
    thresholds: Vec<(f64, String, usize)>,
    /// Shaded spans: (from, to, class, tooltip).
    bands: Vec<(Micros, Micros, &'static str, String)>,
}

impl Chart<'_> {
    fn x(&self, t: Micros) -> f64 {
        let span = (self.to - self.from).max(1) as f64;
        ML + (W - ML - MR) * ((t - self.from) as f64 / span).clamp(0.0, 1.0)
    }

    fn svg(&self, title: &str) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg viewBox="0 0 {W} {H}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
            esc(title)
        );
        let _ = write!(s, "<title>{}</title>", esc(title));
        for (a, b, class, tip) in &self.bands {
            let (x0, x1) = (self.x(*a), self.x(*b));
            let _ = write!(
                s,
                r#"<rect class="{class}" x="{x0:.1}" y="{MT}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
                (x1 - x0).max(1.5),
                H - MT - MB,
                esc(tip)
            );
        }
        for v in &self.y_ticks {
            let y = self.scale.y(*v);
            let _ = write!(
                s,
                r#"<line class="grid" x1="{ML}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                W - MR,
                ML - 6.0,
                y + 4.0,
                esc(&label(*v, self.unit))
            );
        }
        for t in time_ticks(self.from, self.to) {
            let x = self.x(t);
            let _ = write!(
                s,
                r#"<line class="grid" x1="{x:.1}" x2="{x:.1}" y1="{MT}" y2="{:.1}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                H - MB,
                H - MB + 15.0,
                esc(&time_label(t, self.to - self.from))
            );
        }
        let _ = write!(
            s,
            r#"<line class="axis" x1="{ML}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/>"#,
            W - MR,
            H - MB,
            H - MB
        );
        for (v, name, k) in &self.thresholds {
            let y = self.scale.y(*v);
            let _ = write!(
                s,
                r#"<line class="thr s{k}" x1="{ML}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"><title>{}</title></line>"#,
                W - MR,
                esc(name)
            );
        }
        for (k, line) in self.lines.iter().enumerate() {
            let mut d = String::new();
            let mut pen_down = false;
            for (t, v) in self.times.iter().zip(line.values) {
                if v.is_nan() {
                    pen_down = false;
                    continue;
                }
                let _ = write!(
                    d,
                    "{}{:.1},{:.1}",
                    if pen_down { " L" } else { " M" },
                    self.x(*t),
                    self.scale.y(f64::from(*v))
                );
                pen_down = true;
            }
            if !d.is_empty() {
                let _ = write!(
                    s,
                    r#"<path class="line s{}" d="{}"><title>{}</title></path>"#,
                    k % 4,
                    d.trim_start(),
                    esc(&line.name)
                );
            }
        }
        s.push_str("</svg>");
        s
    }
}

/// Round instants for the x axis: about six of them.
fn time_ticks(from: Micros, to: Micros) -> Vec<Micros> {
    const MIN: i64 = 60_000_000;
    let span = (to - from).max(1);
    let steps = [
        MIN,
        5 * MIN,
        15 * MIN,
        30 * MIN,
        60 * MIN,
        3 * 60 * MIN,
        6 * 60 * MIN,
        12 * 60 * MIN,
        24 * 60 * MIN,
        2 * 24 * 60 * MIN,
        7 * 24 * 60 * MIN,
    ];
    let step = steps
        .iter()
        .copied()
        .find(|s| span / s <= 7)
        .unwrap_or(7 * 24 * 60 * MIN);
    let mut t = from.div_euclid(step) * step + step;
    let mut out = Vec::new();
    while t < to {
        out.push(t);
        t += step;
    }
    out
}

fn time_label(t: Micros, span: i64) -> String {
    let s = format_rfc3339(t);
    if span > 2 * 86_400_000_000 {
        // `11-03 00:00`
        s.get(5..16).unwrap_or(&s).replace('T', " ")
    } else {
        s.get(11..16).unwrap_or(&s).to_string()
    }
}

fn finite_range<'a>(cols: impl Iterator<Item = &'a [f32]>) -> Option<(f64, f64)> {
    let mut r: Option<(f64, f64)> = None;
    for c in cols {
        for v in c.iter().filter(|v| v.is_finite()) {
            let v = f64::from(*v);
            r = Some(r.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
        }
    }
    r
}

/// The services to chart: those with SLOs and series, the most budget
/// spent first (the highest `budget_consumed` over their SLOs).
fn charted<'a>(
    report: &'a Report,
    charts: &'a Charts,
) -> Vec<(&'a ServiceSeries, &'a ServiceReport)> {
    let mut out: Vec<_> = charts
        .services
        .iter()
        .flatten()
        .filter_map(|s| report.services.get(&s.name).map(|r| (s, r)))
        .collect();
    let spent = |r: &ServiceReport| {
        r.slos
            .0
            .iter()
            .filter_map(|(_, s)| s.budget_consumed)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    out.sort_by(|a, b| {
        spent(b.1)
            .total_cmp(&spent(a.1))
            .then(a.0.name.cmp(&b.0.name))
    });
    out.truncate(MAX_CHARTED);
    out
}

pub fn render(report: &Report, charts: &Charts) -> String {
    render_page(report, charts, Page::Backtest)
}

/// The live status page (`/` of `slate run`): the report's page drawn
/// from the live state, which the browser reloads every 30 s.
pub fn render_live(report: &Report, charts: &Charts) -> String {
    render_page(report, charts, Page::Live)
}

#[derive(Clone, Copy, PartialEq)]
enum Page {
    Backtest,
    Live,
}

/// What a page says that depends on which page it is.
struct Words {
    kind: &'static str,
    head: &'static str,
    heading: &'static str,
    /// What the service's p99 is over.
    latency: &'static str,
    footer: &'static str,
}

impl Page {
    fn words(self) -> Words {
        match self {
            Page::Backtest => Words {
                kind: "slate backtest",
                head: "",
                heading: "How reliable were we?",
                latency: "over the span",
                footer: "burn rates and budgets are as a live slate would have shown them at each point; a budget over a span shorter than the period is over the span.",
            },
            Page::Live => Words {
                kind: "slate live",
                head: "<meta http-equiv=\"refresh\" content=\"30\">",
                heading: "How reliable are we?",
                latency: "over the last 5 minutes",
                footer: "the charts run from this process's start (they are not kept across a restart); budgets are over the state held, whose coverage of each period /api/v1/services gives.",
            },
        }
    }
}

fn render_page(report: &Report, charts: &Charts, page: Page) -> String {
    let mut h = String::with_capacity(256 << 10);
    let span_text = match &report.span {
        Some(s) => format!("{} → {}", short_time(&s.start), short_time(&s.end)),
        None => "no accepted events".to_string(),
    };
    let words = page.words();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{}\
         <title>{} · {}</title><style>{STYLE}</style></head><body>\n",
        words.head,
        words.kind,
        esc(&span_text)
    );
    let read = match page {
        Page::Backtest => format!(
            "{} events read, {} rejected",
            grouped(report.events.accepted + report.events.rejected),
            grouped(report.events.rejected)
        ),
        Page::Live => format!(
            "{} events applied by this process, {} rejected · refreshed every 30 s",
            grouped(report.events.accepted),
            grouped(report.events.rejected)
        ),
    };
    let _ = writeln!(
        h,
        "<h1>{}</h1><div class=\"muted\">{} · {} · {read}</div>",
        words.heading,
        words.kind,
        esc(&span_text),
    );
    let s = &report.summary;
    let met_class = if s.slos_met == s.slos { "good" } else { "bad" };
    let _ = writeln!(
        h,
        "<div class=\"hero\"><div><div class=\"big\">{}</div><div class=\"muted\">reliability: all good events over all events judged by the latency and error-rate SLOs</div></div>\
         <div><div class=\"big {met_class}\">{} of {}</div><div class=\"muted\">SLOs met over their period</div></div></div>",
        pct(s.reliability),
        s.slos_met,
        s.slos
    );

    calendar_table(&mut h, report);
    incident_table(&mut h, report);

    h.push_str("<h2>SLOs</h2>\n<table class=\"slos\"><tr><th>Service</th><th>SLO</th><th class=\"n\">Objective</th><th class=\"n\">Attainment</th><th>Met</th><th class=\"n\">Budget left</th><th class=\"n\">Incidents</th></tr>\n");
    for (name, r) in &report.services {
        for (slo, o) in &r.slos.0 {
            let (class, met) = match o.met {
                Some(true) => ("good", "yes"),
                Some(false) => ("bad", "NO"),
                None => ("muted", "no data"),
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"{class}\">{met}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(name),
                esc(slo),
                pct(Some(o.objective)),
                pct(o.attainment),
                pct(o.budget_remaining),
                r.incidents.iter().filter(|a| &a.slo == slo).count()
            );
        }
    }
    h.push_str("</table>\n");

    let (Some(&from), Some(&to)) = (charts.times.first(), charts.times.last()) else {
        h.push_str("<p class=\"muted\">No data to chart.</p></body></html>\n");
        return h;
    };
    let shown = charted(report, charts);
    let with_slos = charts.services.iter().flatten().count();
    if with_slos > shown.len() {
        let _ = writeln!(
            h,
            "<p class=\"muted\">Charts for the {} services that spent the most budget, of {with_slos} with SLOs; the table above has them all.</p>",
            shown.len()
        );
    }
    for (series, r) in shown {
        service_section(&mut h, charts, series, r, (from, to), page);
    }
    let _ = writeln!(
        h,
        "<footer>slate {} · windows align to slots; {}</footer>\n</body></html>",
        env!("CARGO_PKG_VERSION"),
        words.footer
    );
    h
}

/// The one number per month and per week of the span, when it has more
/// than one: "how reliable were we last month?".
fn calendar_table(h: &mut String, report: &Report) {
    let s = &report.summary;
    if s.weeks.0.len() < 2 && s.months.0.len() < 2 {
        return;
    }
    h.push_str("<h2>By month and week</h2>\n<table class=\"calendar\"><tr><th>Period</th><th class=\"n\">Reliability</th><th class=\"n\">Good events</th><th class=\"n\">Events judged</th></tr>\n");
    for (k, r) in s.months.0.iter().chain(&s.weeks.0) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(k),
            pct(r.reliability),
            grouped(r.good),
            grouped(r.total)
        );
    }
    h.push_str("</table>\n");
}

/// Every incident, the costliest first, each with its alert pairs'
/// episodes folded in its last cell (a `<details>` needs no script).
fn incident_table(h: &mut String, report: &Report) {
    let mut incidents: Vec<(&str, &IncidentSummary)> = report
        .services
        .iter()
        .flat_map(|(n, r)| r.incidents.iter().map(move |i| (n.as_str(), i)))
        .collect();
    incidents.sort_by(|a, b| {
        b.1.budget_consumed
            .total_cmp(&a.1.budget_consumed)
            .then(a.1.start.cmp(&b.1.start))
    });
    h.push_str("<h2>Incidents</h2>\n");
    if incidents.is_empty() {
        h.push_str("<p class=\"muted\">No alert fired.</p>\n");
        return;
    }
    let header = "<table class=\"incidents\"><tr><th>Service</th><th>SLO</th><th>Severity</th><th>Start</th><th>End</th><th class=\"n\">Duration</th><th class=\"n\">Budget spent</th><th>Alert pairs</th></tr>\n";
    h.push_str(header);
    let end_us = report
        .span
        .as_ref()
        .and_then(|s| parse_rfc3339(s.end.as_bytes()));
    for (i, (svc, inc)) in incidents.iter().enumerate() {
        if i == SHOWN_INCIDENTS {
            // The cheaper rest, folded.
            let _ = write!(
                h,
                "</table>\n<details><summary>{} more incidents, each {} of the budget or less</summary>\n{header}",
                incidents.len() - i,
                pct(Some(inc.budget_consumed))
            );
        }
        let span = span_of(&inc.start, inc.end.as_deref(), end_us);
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><details class=\"pairs\"><summary>{} {}</summary>",
            esc(svc),
            esc(&inc.slo),
            esc(&inc.severity),
            short_time(&inc.start),
            end_text(inc.end.as_deref()),
            span.map_or("-".into(), |(s, e)| duration(e - s)),
            pct(Some(inc.budget_consumed)),
            inc.pairs.len(),
            if inc.pairs.len() == 1 { "pair" } else { "pairs" },
        );
        for a in &inc.pairs {
            let _ = write!(
                h,
                "<div>{} {}/{} ≥ {} · {} → {} · {}</div>",
                esc(&a.severity),
                esc(&a.long_window),
                esc(&a.short_window),
                label(a.burn_rate_threshold, ""),
                short_time(&a.start),
                end_text(a.end.as_deref()),
                pct(Some(a.budget_consumed))
            );
        }
        h.push_str("</details></td></tr>\n");
    }
    if incidents.len() > SHOWN_INCIDENTS {
        h.push_str("</table></details>\n");
    } else {
        h.push_str("</table>\n");
    }
}

fn service_section(
    h: &mut String,
    charts: &Charts,
    series: &ServiceSeries,
    r: &ServiceReport,
    (from, to): (Micros, Micros),
    page: Page,
) {
    let over = page.words().latency;
    let _ = writeln!(
        h,
        "<section class=\"service\"><h2>{}</h2><div class=\"muted\">{} requests, {} errors ({}){}</div>",
        esc(&series.name),
        grouped(r.requests),
        grouped(r.errors),
        pct(r.error_rate),
        r.latency_ms
            .p99
            .map_or(String::new(), |p| format!(" · p99 {} {over}", label(p, " ms")))
    );
    for ((slo, o), s) in r.slos.0.iter().zip(&series.slos) {
        let _ = write!(
            h,
            "<h3>{} <span class=\"muted\">objective {} · attainment {} · budget left {}</span></h3><div class=\"charts\">",
            esc(slo),
            pct(Some(o.objective)),
            pct(o.attainment),
            pct(o.budget_remaining)
        );
        let bands: Vec<_> = r
            .alerts
            .iter()
            .filter(|a| &a.slo == slo)
            .filter_map(|a| {
                let (s, e) = span_of(&a.start, a.end.as_deref(), Some(to))?;
                let class = if a.severity == "page" {
                    "page"
                } else {
                    "ticket"
                };
                let tip = format!(
                    "{} {}/{} ≥ {}: {} → {}, {} of the budget",
                    a.severity,
                    a.long_window,
                    a.short_window,
                    label(a.burn_rate_threshold, ""),
                    short_time(&a.start),
                    end_text(a.end.as_deref()),
                    pct(Some(a.budget_consumed))
                );
                Some((s, e, class, tip))
            })
            .collect();

        // Budget remaining, with 0 (spent) and 100% marked.
        let (lo, hi) = finite_range(std::iter::once(&s.budget_remaining[..])).unwrap_or((0.0, 1.0));
        let (lo, hi) = (lo.min(0.0), hi.max(1.0));
        let budget = Chart {
            times: &charts.times,
            from,
            to,
            lines: vec![Line {
                values: &s.budget_remaining,
                name: "budget remaining".into(),
            }],
            scale: Scale::Linear { lo, hi },
            unit: "",
            y_ticks: ticks(lo, hi, 4),
            thresholds: vec![(0.0, "budget spent".into(), 2)],
            bands: bands.clone(),
        };
        // Burn rates of the pairs' long windows, each with its threshold.
        let thresholds: Vec<(f64, String, usize)> = series
            .windows
            .iter()
            .zip(series.thresholds.iter().copied())
            .enumerate()
            .filter_map(|(k, (w, t))| Some((t?, format!("{w} threshold {}", label(t?, "")), k)))
            .collect();
        let peak = finite_range(s.burn.iter().map(|c| &c[..]))
            .map_or(1.0, |r| r.1)
            .max(16.0);
        let burn_ticks: Vec<f64> = [0.0, 1.0, 3.0, 6.0, 14.4, 30.0, 100.0, 300.0, 1000.0]
            .into_iter()
            .filter(|v| *v <= peak)
            .collect();
        let burn = Chart {
            times: &charts.times,
            from,
            to,
            lines: series
                .windows
                .iter()
                .zip(&s.burn)
                .map(|(w, v)| Line {
                    values: v,
                    name: format!("burn rate {w}"),
                })
                .collect(),
            scale: Scale::Log1p { hi: peak },
            unit: "",
            y_ticks: burn_ticks,
            thresholds,
            bands,
        };
        let _ = write!(
            h,
            "<figure>{}<figcaption>Error budget remaining (1 = untouched, below 0 = overspent) <span class=\"key\"><span><i class=\"k0\"></i>remaining</span><span><i class=\"kp\"></i>page</span><span><i class=\"kt\"></i>ticket</span></span></figcaption></figure>",
            budget.svg(&format!("{} {slo}: error budget remaining", series.name))
        );
        let _ = writeln!(
            h,
            "<figure>{}<figcaption>Burn rate (log scale), dashed: each window's alert threshold <span class=\"key\">{}</span></figcaption></figure></div>",
            burn.svg(&format!("{} {slo}: burn rates", series.name)),
            series
                .windows
                .iter()
                .enumerate()
                .map(|(k, w)| format!("<span><i class=\"k{k}\"></i>{w}</span>"))
                .collect::<String>()
        );
    }
    if let Some((_, hi)) = finite_range(series.latency_ms.iter().map(|c| &c[..])) {
        let hi = hi.max(1e-3);
        let lat = Chart {
            times: &charts.times,
            from,
            to,
            lines: ["p50", "p95", "p99"]
                .iter()
                .zip(&series.latency_ms)
                .map(|(q, v)| Line {
                    values: v,
                    name: format!("latency {q}"),
                })
                .collect(),
            scale: Scale::Linear { lo: 0.0, hi },
            unit: " ms",
            y_ticks: ticks(0.0, hi, 4),
            thresholds: Vec::new(),
            bands: Vec::new(),
        };
        let _ = writeln!(
            h,
            "<div class=\"charts\"><figure>{}<figcaption>Latency over {} <span class=\"key\"><span><i class=\"k0\"></i>p50</span><span><i class=\"k1\"></i>p95</span><span><i class=\"k2\"></i>p99</span></span></figcaption></figure></div>",
            lat.svg(&format!("{}: latency", series.name)),
            charts
                .latency_window
                .map_or("-".into(), |w| format!("{w} windows"))
        );
    }
    h.push_str("</section>\n");
}
