//! `slate review` (DESIGN §6) from a replay report, run as the real
//! binary: the figures it gives are the report's (the week's one number,
//! each SLO's burn this week and last, the budget left), the incidents of
//! the week are those overlapping it by their own times, the date a
//! budget runs out follows from the 1d burn, and the Markdown is
//! CommonMark whose tables hold the same rows.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use slate::gen::{generate, GenOptions, Incident};
use slate::model::{parse_rfc3339, Span};

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/service-slos.yml");

fn slate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(args)
        .output()
        .unwrap()
}

/// Three weeks from Monday 2026-11-02, with an error burst in the second
/// and a stalled batch job in the third; the replay's JSON report.
fn three_weeks(dir: &Path) -> (PathBuf, Value) {
    let opts = GenOptions {
        services: 3,
        duration: Span::days(21),
        rate: 0.02,
        seed: 5,
        start: parse_rfc3339(b"2026-11-02T00:00:00Z").unwrap(),
        incidents: [
            "errors:api-gateway:8d+2h:0.5",
            "stall:batch-processor:16d+3h",
        ]
        .iter()
        .map(|s| Incident::parse(s).unwrap())
        .collect(),
        ..GenOptions::default()
    };
    let input = dir.join("weeks.jsonl");
    let mut bytes = Vec::new();
    generate(&opts, &mut bytes).unwrap();
    std::fs::write(&input, bytes).unwrap();
    let report = dir.join("report.json");
    let out = slate(&[
        "replay",
        "--slo",
        SPEC,
        "--json",
        report.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let v = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (report, v)
}

/// A deploy-gate policy that blocks on api-gateway's budget.
fn gate_policy(dir: &Path) -> PathBuf {
    let policy = dir.join("gate.yml");
    std::fs::write(
        &policy,
        "checks:\n  - service: api-gateway\n    check: error_budget_remaining > 0.2\n    action: block_deploy\n",
    )
    .unwrap();
    policy
}

fn review_json(report: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["review", "--source", report.to_str().unwrap(), "-o", "json"];
    args.extend_from_slice(extra);
    let out = slate(&args);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * y.abs().max(1.0),
        _ => a.is_null() && b.is_null(),
    }
}

#[test]
fn the_review_gives_the_reports_figures_for_the_week() {
    let dir = tempfile::tempdir().unwrap();
    let (report, rep) = three_weeks(dir.path());
    let r = review_json(&report, &["--week", "2026-W46"]);
    assert_eq!(r["period"], "2026-W46");
    assert_eq!(r["previous"], "2026-W45");
    let weeks = &rep["summary"]["weeks"];
    assert!(close(&r["reliability"], &weeks["2026-W46"]["reliability"]));
    assert!(close(
        &r["previous_reliability"],
        &weeks["2026-W45"]["reliability"]
    ));
    assert!(r["reliability"].as_f64().unwrap() < r["previous_reliability"].as_f64().unwrap());

    let rows = r["slos_reviewed"].as_array().unwrap();
    let n_slos: usize = rep["services"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["slos"].as_object().unwrap().len())
        .sum();
    assert_eq!(rows.len(), n_slos);
    for row in rows {
        let svc = &rep["services"][row["service"].as_str().unwrap()];
        let slo = row["slo"].as_str().unwrap();
        let cal = &svc["calendar"][slo]["weeks"];
        assert!(
            close(&row["burn"], &cal["2026-W46"]["budget_consumed"]),
            "{row}"
        );
        assert!(
            close(&row["previous_burn"], &cal["2026-W45"]["budget_consumed"]),
            "{row}"
        );
        assert_eq!(row["total"], cal["2026-W46"]["total"]);
        assert!(close(
            &row["budget_remaining"],
            &svc["slos"][slo]["budget_remaining"]
        ));
    }
    // The top spenders first.
    let burns: Vec<f64> = rows
        .iter()
        .map(|r| r["burn"].as_f64().unwrap_or(-1.0))
        .collect();
    assert!(burns.windows(2).all(|w| w[0] >= w[1]), "{burns:?}");
    assert_eq!(
        rows[0]["service"], "api-gateway",
        "the error burst spends most"
    );

    // The week's incidents: those of the report overlapping 2026-11-09 to
    // 2026-11-16 (UTC), by their own times.
    let (from, to) = (
        parse_rfc3339(b"2026-11-09T00:00:00Z").unwrap(),
        parse_rfc3339(b"2026-11-16T00:00:00Z").unwrap(),
    );
    let mut want = Vec::new();
    for (name, s) in rep["services"].as_object().unwrap() {
        for i in s["incidents"].as_array().unwrap() {
            let start = parse_rfc3339(i["start"].as_str().unwrap().as_bytes()).unwrap();
            let end = i["end"]
                .as_str()
                .map_or(i64::MAX, |e| parse_rfc3339(e.as_bytes()).unwrap());
            if start < to && end >= from {
                want.push((
                    name.clone(),
                    i["slo"].as_str().unwrap().to_string(),
                    i["start"].clone(),
                ));
            }
        }
    }
    let mut got: Vec<(String, String, Value)> = r["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["service"].as_str().unwrap().into(),
                i["slo"].as_str().unwrap().into(),
                i["start"].clone(),
            )
        })
        .collect();
    assert!(!want.is_empty(), "the error burst fires in the week");
    want.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    got.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(got, want);

    // At risk: the budget gone, or a 1d burn above 1 with the date the
    // budget left runs out at it.
    let end = parse_rfc3339(rep["span"]["end"].as_str().unwrap().as_bytes()).unwrap();
    let mut expected_at_risk = 0;
    for (name, s) in rep["services"].as_object().unwrap() {
        for (slo, o) in s["slos"].as_object().unwrap() {
            let left = o["budget_remaining"].as_f64();
            let b1d = o["burn_rate"]["1d"].as_f64();
            if left.is_some_and(|l| l <= 0.0) || b1d.is_some_and(|b| b > 1.0) {
                expected_at_risk += 1;
                let a = r["at_risk"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|a| a["service"] == name.as_str() && a["slo"] == slo.as_str())
                    .unwrap_or_else(|| panic!("{name}/{slo} at risk: {r}"));
                if let (Some(l), Some(b)) = (left.filter(|l| *l > 0.0), b1d) {
                    let days = l * 30.0 / b;
                    let want = end + (days * 86_400e6) as i64;
                    let got = parse_rfc3339(a["runs_out"].as_str().unwrap().as_bytes()).unwrap();
                    assert!((got - want).abs() < 1_000, "{a}: {want}");
                } else {
                    assert!(a["runs_out"].is_null());
                }
            }
        }
    }
    assert_eq!(r["at_risk"].as_array().unwrap().len(), expected_at_risk);
}

/// The Markdown parses as CommonMark with tables, and each table holds the
/// rows the JSON has: the budgets, the incidents, those at risk, the gate.
#[test]
fn the_markdown_is_commonmark_with_a_table_per_section() {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = three_weeks(dir.path());
    let policy = gate_policy(dir.path());
    let args = ["--week", "2026-W46", "--policy", policy.to_str().unwrap()];
    let r = review_json(&report, &args);
    let out = slate(&[
        "review",
        "--source",
        report.to_str().unwrap(),
        "--week",
        "2026-W46",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let md = String::from_utf8(out.stdout).unwrap();
    // Tables: rows (header included) of cells' text.
    let mut tables: Vec<Vec<Vec<String>>> = Vec::new();
    let mut headings = Vec::new();
    let (mut in_cell, mut in_heading) = (false, false);
    for ev in Parser::new_ext(&md, Options::ENABLE_TABLES) {
        match ev {
            Event::Start(Tag::Table(_)) => tables.push(Vec::new()),
            Event::Start(Tag::TableHead) | Event::Start(Tag::TableRow) => {
                tables.last_mut().unwrap().push(Vec::new())
            }
            Event::Start(Tag::TableCell) => {
                tables
                    .last_mut()
                    .unwrap()
                    .last_mut()
                    .unwrap()
                    .push(String::new());
                in_cell = true;
            }
            Event::End(TagEnd::TableCell) => in_cell = false,
            Event::Start(Tag::Heading { .. }) => {
                headings.push(String::new());
                in_heading = true;
            }
            Event::End(TagEnd::Heading(_)) => in_heading = false,
            Event::Text(t) | Event::Code(t) => {
                if in_cell {
                    let row = tables.last_mut().unwrap().last_mut().unwrap();
                    row.last_mut().unwrap().push_str(&t);
                } else if in_heading {
                    headings.last_mut().unwrap().push_str(&t);
                }
            }
            _ => {}
        }
    }
    assert_eq!(headings[0], "SLO review: week 2026-W46");
    assert_eq!(tables.len(), 4, "budgets, incidents, at risk, gate: {md}");
    let len = |k: &str| r[k].as_array().unwrap().len();
    assert_eq!(tables[0].len() - 1, len("slos_reviewed"));
    assert_eq!(tables[1].len() - 1, len("incidents"));
    assert_eq!(tables[2].len() - 1, len("at_risk"));
    assert_eq!(
        tables[3].len() - 1,
        r["gate"]["checks"].as_array().unwrap().len()
    );
    // The rows in the JSON's order, with its figures as written.
    for (row, j) in tables[0][1..]
        .iter()
        .zip(r["slos_reviewed"].as_array().unwrap())
    {
        assert_eq!(row[0], j["service"].as_str().unwrap());
        assert_eq!(row[1], j["slo"].as_str().unwrap());
        match j["burn"].as_f64() {
            Some(b) => assert_eq!(row[4], format!("{b:.2}×")),
            None => assert_eq!(row[4], "–"),
        }
    }
    assert!(
        headings.iter().any(|h| h.starts_with("Deploy gate: block")),
        "{headings:?}"
    );
    let one = r["reliability"].as_f64().unwrap() * 100.0;
    assert!(
        md.contains(&format!("**Reliability this week: {one:.3}%**")),
        "{md}"
    );
}

#[test]
fn a_week_the_report_does_not_hold_and_bad_flags_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = three_weeks(dir.path());
    let src = report.to_str().unwrap();
    for (args, says) in [
        (
            vec!["--week", "2027-W02"],
            "no week 2027-W02 to review: the weeks held are 2026-W45, 2026-W46",
        ),
        (vec!["--week", "46"], "give an ISO week such as 2026-W45"),
        (vec!["--month", "2026-13"], "give a month such as 2026-11"),
    ] {
        let mut a = vec!["review", "--source", src];
        a.extend(args);
        let out = slate(&a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }
    let out = slate(&["review", "--source", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http://127.0.0.1:9"));
    // A month reads the same way.
    let m = review_json(&report, &["--month", "2026-11"]);
    assert_eq!(
        (m["kind"].as_str(), m["period"].as_str()),
        (Some("month"), Some("2026-11"))
    );
    assert_eq!(m["previous"], "2026-10");
    assert!(m["previous_reliability"].is_null());
}

/// `-o html` is one self-contained page with the Markdown's sections; the
/// replay's own table and page give the one number per week and month.
#[test]
fn the_html_review_and_the_replays_weeks_and_months() {
    let dir = tempfile::tempdir().unwrap();
    let (report, rep) = three_weeks(dir.path());
    let policy = gate_policy(dir.path());
    let r = review_json(&report, &["--week", "2026-W46"]);
    let out = slate(&[
        "review",
        "--source",
        report.to_str().unwrap(),
        "--week",
        "2026-W46",
        "--policy",
        policy.to_str().unwrap(),
        "-o",
        "html",
    ]);
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    for banned in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!page.contains(banned), "{banned}");
    }
    assert_eq!(page.matches("<table>").count(), 4);
    let rows = page.matches("<tr><td>").count();
    let want = ["slos_reviewed", "incidents", "at_risk"]
        .iter()
        .map(|k| r[k].as_array().unwrap().len())
        .sum::<usize>()
        + 1;
    assert_eq!(rows, want);
    let one = r["reliability"].as_f64().unwrap() * 100.0;
    assert!(page.contains(&format!(">{one:.3}%<")), "{one}");

    // The replay's table: a line of the one number per week.
    let input = dir.path().join("weeks.jsonl");
    let out = slate(&["replay", "--slo", SPEC, input.to_str().unwrap()]);
    let table = String::from_utf8(out.stdout).unwrap();
    let weeks = table
        .lines()
        .find(|l| l.starts_with("by week"))
        .unwrap_or_else(|| panic!("{table}"));
    for (k, v) in rep["summary"]["weeks"].as_object().unwrap() {
        let p = v["reliability"].as_f64().unwrap() * 100.0;
        assert!(weeks.contains(&format!("{k} {p:.3}%")), "{weeks}: {k} {p}");
    }
    // The HTML report: a row per month and per week.
    let html = dir.path().join("r.html");
    let out = slate(&[
        "replay",
        "--slo",
        SPEC,
        "--html",
        html.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let page = std::fs::read_to_string(&html).unwrap();
    let cal = &page[page.find("<table class=\"calendar\">").unwrap()..];
    let cal = &cal[..cal.find("</table>").unwrap()];
    let n = rep["summary"]["weeks"].as_object().unwrap().len()
        + rep["summary"]["months"].as_object().unwrap().len();
    assert_eq!(cal.matches("<tr><td>").count(), n);
}
