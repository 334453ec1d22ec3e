//! The report as a human reads it: the one number first, then one row per
//! SLO, per service, and per alert episode.

use std::fmt::Write;

use super::Report;

pub(super) fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) => {
            let p = v * 100.0;
            if p != 100.0 && p > 99.0 {
                format!("{p:.3}%")
            } else {
                format!("{p:.2}%")
            }
        }
        None => "-".into(),
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

pub(super) fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Lays out rows as columns padded to their widest cell.
fn columns(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(out, header.to_vec());
    for row in rows {
        line(out, row.iter().map(String::as_str).collect());
    }
}

/// The incidents, per service in time order, each pair's episode folded
/// under its incident.
fn incidents(out: &mut String, report: &Report) {
    let mut rows = Vec::new();
    for (name, s) in &report.services {
        for inc in &s.incidents {
            rows.push(vec![
                name.clone(),
                inc.slo.clone(),
                inc.severity.clone(),
                inc.start.clone(),
                inc.end.clone().unwrap_or_else(|| "firing".into()),
                pct(Some(inc.budget_consumed)),
            ]);
            for a in &inc.pairs {
                rows.push(vec![
                    String::new(),
                    format!(
                        "└ {}/{} ≥ {}",
                        a.long_window,
                        a.short_window,
                        threshold(a.burn_rate_threshold)
                    ),
                    a.severity.clone(),
                    a.start.clone(),
                    a.end.clone().unwrap_or_else(|| "firing".into()),
                    pct(Some(a.budget_consumed)),
                ]);
            }
        }
    }
    if rows.is_empty() {
        out.push_str("incidents   none: no alert fired\n\n");
        return;
    }
    out.push_str("incidents (alert episodes of one SLO within 5 minutes of each other; each pair's episode below)\n");
    columns(
        out,
        &["SERVICE", "SLO", "SEVERITY", "START", "END", "BUDGET SPENT"],
        &rows,
    );
    out.push('\n');
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    match &report.span {
        Some(s) => {
            let _ = writeln!(out, "span        {} → {}", s.start, s.end);
        }
        None => out.push_str("span        no accepted events\n"),
    }
    let ev = &report.events;
    let reasons: Vec<String> = ev
        .rejected_by_reason
        .0
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{r} {}", grouped(*n)))
        .collect();
    let _ = write!(
        out,
        "events      {} accepted, {} rejected",
        grouped(ev.accepted),
        grouped(ev.rejected)
    );
    if !reasons.is_empty() {
        let _ = write!(out, " ({})", reasons.join(", "));
    }
    for e in &ev.input_errors {
        let _ = write!(out, "\nWARNING     input not read to the end: {e}");
    }
    if ev.outside_span > 0 {
        let _ = write!(out, ", {} outside --from/--to", grouped(ev.outside_span));
    }
    out.push('\n');
    let sm = &report.summary;
    let _ = writeln!(
        out,
        "reliability {}   ({} of {} SLOs met)",
        pct(sm.reliability),
        sm.slos_met,
        sm.slos
    );
    // The one number per month and per week, when the span has several.
    for (what, periods) in [("by month", &sm.months), ("by week", &sm.weeks)] {
        if periods.0.len() > 1 {
            let each: Vec<String> = periods
                .0
                .iter()
                .map(|(k, r)| format!("{k} {}", pct(r.reliability)))
                .collect();
            let _ = writeln!(out, "{what:<11} {}", each.join(", "));
        }
    }
    out.push('\n');

    incidents(&mut out, report);

    let mut rows = Vec::new();
    for (name, s) in &report.services {
        for (slo, r) in &s.slos.0 {
            let burn = |w: &str| {
                num(
                    r.burn_rate
                        .0
                        .iter()
                        .find(|(k, _)| k == w)
                        .and_then(|(_, v)| *v),
                    2,
                )
            };
            rows.push(vec![
                name.clone(),
                slo.clone(),
                pct(Some(r.objective)),
                pct(r.attainment),
                match r.met {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "-".into(),
                },
                pct(r.budget_remaining),
                burn("1h"),
                burn("6h"),
                burn("3d"),
                s.incidents
                    .iter()
                    .filter(|a| &a.slo == slo)
                    .count()
                    .to_string(),
            ]);
        }
    }
    if rows.is_empty() {
        out.push_str("no SLOs (give --slo FILE to judge services against objectives)\n");
    } else {
        columns(
            &mut out,
            &[
                "SERVICE",
                "SLO",
                "OBJECTIVE",
                "ATTAINMENT",
                "MET",
                "BUDGET LEFT",
                "BURN 1h",
                "BURN 6h",
                "BURN 3d",
                "INCIDENTS",
            ],
            &rows,
        );
    }
    out.push('\n');

    let rows: Vec<Vec<String>> = report
        .services
        .iter()
        .map(|(name, s)| {
            vec![
                name.clone(),
                grouped(s.requests),
                pct(s.error_rate),
                num(s.throughput_rps, 2),
                num(s.latency_ms.p50, 2),
                num(s.latency_ms.p95, 2),
                num(s.latency_ms.p99, 2),
                s.freshness_s.map_or("-".into(), |f| format!("{f:.0}s")),
            ]
        })
        .collect();
    columns(
        &mut out,
        &[
            "SERVICE",
            "REQUESTS",
            "ERRORS",
            "REQ/S",
            "P50 ms",
            "P95 ms",
            "P99 ms",
            "FRESHNESS",
        ],
        &rows,
    );

    for inc in &report.incidents {
        let _ = writeln!(out, "\nincident {} → {}: budget spent", inc.from, inc.to);
        let rows: Vec<Vec<String>> = inc
            .budget_consumed
            .iter()
            .flat_map(|(svc, per)| {
                per.0
                    .iter()
                    .map(move |(slo, v)| vec![svc.clone(), slo.clone(), pct(Some(*v))])
            })
            .collect();
        columns(&mut out, &["SERVICE", "SLO", "BUDGET SPENT"], &rows);
    }
    out
}

/// A burn-rate threshold to three decimals at most: `14.4`, `0.233`.
fn threshold(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
