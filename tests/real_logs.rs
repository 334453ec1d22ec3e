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

/// Caddy v2's JSON access log: 4 records, service `request.host`, latency
/// `duration` (s), time `ts` (epoch seconds). `--format auto` picks caddy
/// (generic JSON reads the lines too, with no service of their own), and
/// the last line, after a 2.5-hour quiet spell, is accepted: nothing
/// follows it, and it is not in this machine's future (DESIGN §5).
#[test]
fn caddy_json_is_picked_and_its_last_line_after_a_quiet_spell_counts() {
    let file = real("access/caddy-json-duration.lnav.log");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut per: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut times = Vec::new();
    for l in text.lines().filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["status"], 200);
        per.entry(v["request"]["host"].as_str().unwrap().to_string())
            .or_default()
            .push(v["duration"].as_f64().unwrap() * 1000.0);
        times.push(v["ts"].as_f64().unwrap());
    }
    assert_eq!(times.len(), 4, "PROVENANCE.md: 4 records");
    let out = Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(["replay", "--no-progress", "-o", "json", "--format", "auto"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("picked caddy"),
        "{out:?}"
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["events"]["accepted"], 4, "{}", r["events"]);
    for (host, ms) in &per {
        let s = &r["services"][host];
        assert_eq!(s["requests"], ms.len(), "{host}");
        assert_eq!(s["errors"], 0, "{host}");
        for (q, key) in [(0.5, "p50"), (0.99, "p99")] {
            let exact = common::nearest_rank(ms.clone(), q);
            let got = s["latency_ms"][key].as_f64().unwrap();
            assert!(
                near(got, exact),
                "{host} {key}: {got} ms, exactly {exact} ms"
            );
        }
    }
    let ms = |t: f64| slate::model::format_rfc3339((t * 1e3).floor() as i64 * 1000);
    let (first, last) = (times[0], times[times.len() - 1]);
    assert!(last - times[2] > 2.0 * 3600.0, "the quiet spell");
    assert_eq!(r["span"]["start"], ms(first));
    assert_eq!(r["span"]["end"], ms(last));
}

/// CloudFront (W3C, tab-separated, two header lines): 34 records, hours
/// out of order, as CloudFront documents; with an SLO spec (a 30-day
/// period) every one counts as late data. Service `x-host-header`, status
/// `sc-status`, latency `time-taken` (s).
#[test]
fn cloudfront_lines_out_of_order_by_hours_all_count() {
    let file = real("access/aws-cloudfront-w3c-time-taken.coralogix-logstash.log");
    let text = std::fs::read_to_string(&file).unwrap();
    let fields: Vec<&str> = text
        .lines()
        .find_map(|l| l.strip_prefix("#Fields: "))
        .unwrap()
        .split(' ')
        .collect();
    let col = |name: &str| fields.iter().position(|f| *f == name).unwrap();
    let (host, status, taken) = (col("x-host-header"), col("sc-status"), col("time-taken"));
    let mut per: std::collections::BTreeMap<String, (u64, u64, Vec<f64>)> = Default::default();
    let mut out_of_order = 0;
    let mut prev = String::new();
    for l in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let f: Vec<&str> = l.split('\t').collect();
        let e = per.entry(f[host].to_string()).or_default();
        e.0 += 1;
        e.1 += (f[status].parse::<u16>().unwrap() >= 500) as u64;
        e.2.push(f[taken].parse::<f64>().unwrap() * 1000.0);
        let t = format!("{}T{}", f[0], f[1]);
        out_of_order += (t < prev) as usize;
        prev = t;
    }
    assert_eq!(
        per.values().map(|e| e.0).sum::<u64>(),
        34,
        "PROVENANCE.md: 34 records"
    );
    assert!(out_of_order > 0, "the file is out of order");
    let slo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/service-slos.yml");
    let r = replay(&["--format", "w3c", "--slo", slo.to_str().unwrap()], &file);
    assert_eq!(r["events"]["accepted"], 34, "{}", r["events"]);
    assert_eq!(r["events"]["rejected"], 0, "{}", r["events"]);
    for (h, (n, errors, ms)) in &per {
        let s = &r["services"][h];
        assert_eq!(s["requests"], *n, "{h}");
        assert_eq!(s["errors"], *errors, "{h}");
        let exact = common::nearest_rank(ms.clone(), 0.5);
        let got = s["latency_ms"]["p50"].as_f64().unwrap();
        assert!(near(got, exact), "{h} p50: {got} ms, exactly {exact} ms");
    }
}
