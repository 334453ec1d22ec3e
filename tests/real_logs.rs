//! The real captures in `../shared/real-logs/` (beside the clone, as CI
//! has it; never copied into the repository), read as their PROVENANCE.md
//! describes. Each test works out what it expects from the file itself
//! with a few lines of independent reading (no slate decoder), then holds
//! `slate replay` (the real binary) to it.

mod common;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn real(path: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/real-logs")
        .join(path);
    assert!(
        p.exists(),
        "{} is missing: these tests read the real captures in ../shared/real-logs beside the clone",
        p.display()
    );
    p
}

fn replay(args: &[&str], file: &PathBuf) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(["replay", "--no-progress", "-o", "json"])
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Within the histogram's resolution (0.77% at 64 sub-buckets a power of
/// two) of the exact nearest-rank quantile.
fn near(got: f64, exact: f64) -> bool {
    (got - exact).abs() <= 0.01 * exact.abs() + 1e-6
}

/// An AWS load-balancer capture, read independently: `base` is the index
/// of the time field (ALB lines start with the request type), the three
/// processing times follow four fields later and the status after them;
/// the fields before the first quote are plain. Returns the status counts.
fn check_aws(
    file: &PathBuf,
    format: &str,
    base: usize,
    service: &str,
    records: usize,
) -> Vec<(u16, u64)> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), records, "PROVENANCE.md: {records} records");
    let mut latencies_ms = Vec::new();
    let mut errors = 0u64;
    let mut statuses = std::collections::BTreeMap::new();
    for l in &lines {
        let f: Vec<&str> = l.split(' ').take(base + 11).collect();
        let secs: f64 = f[base + 4..base + 7]
            .iter()
            .map(|t| t.parse::<f64>().unwrap())
            .sum();
        latencies_ms.push(secs * 1000.0);
        let status: u16 = f[base + 7].parse().unwrap();
        *statuses.entry(status).or_insert(0u64) += 1;
        errors += (status >= 500) as u64;
    }
    let r = replay(&["--format", format], file);
    assert_eq!(r["events"]["accepted"], records, "{}", r["events"]);
    assert_eq!(r["events"]["rejected"], 0, "{}", r["events"]);
    assert_eq!(
        r["services"].as_object().unwrap().len(),
        1,
        "{}",
        r["services"]
    );
    let s = &r["services"][service];
    assert_eq!(s["requests"], records);
    assert_eq!(s["errors"], errors);
    for (q, key) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
        let exact = common::nearest_rank(latencies_ms.clone(), q);
        let got = s["latency_ms"][key].as_f64().unwrap();
        assert!(near(got, exact), "{key}: {got} ms, exactly {exact} ms");
    }
    // The span is the earliest to the latest (ALB's file is not sorted),
    // to the millisecond as the report gives it.
    let times: Vec<&str> = lines
        .iter()
        .map(|l| l.split(' ').nth(base).unwrap())
        .collect();
    let (first, last) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    assert_eq!(r["span"]["start"], format!("{}Z", &first[..23]));
    assert_eq!(r["span"]["end"], format!("{}Z", &last[..23]));
    statuses.into_iter().collect()
}

/// AWS ALB (a real capture re-dressed as ALB, PROVENANCE.md): 666 records,
/// 16 of them with a user agent holding escaped quotes (`\"`), every one
/// accepted (16 were `format_mismatch` before). Service: the target
/// group's name; latency: the three processing times summed (DESIGN §3);
/// errors: 5xx `elb_status_code`.
#[test]
fn aws_alb_lines_with_escaped_quotes_are_read() {
    let file = real("access/aws-alb-access.coralogix-logstash.log");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().filter(|l| l.contains("\\\"")).count(), 16);
    assert!(text.lines().all(|l| l.contains("targetgroup/my-targets/")));
    let statuses = check_aws(&file, "alb", 1, "my-targets", 666);
    assert_eq!(
        statuses,
        vec![
            (200, 537),
            (206, 6),
            (301, 38),
            (302, 58),
            (304, 26),
            (404, 1)
        ],
        "PROVENANCE.md's status counts"
    );
}

/// AWS Classic ELB: 13 records, service the load balancer's name.
#[test]
fn aws_classic_elb_is_read() {
    let file = real("access/aws-classic-elb-access.coralogix-logstash.log");
    let statuses = check_aws(&file, "elb", 0, "my-clb-1", 13);
    assert_eq!(
        statuses,
        vec![(200, 7), (201, 2), (404, 4)],
        "PROVENANCE.md's status counts"
    );
}
