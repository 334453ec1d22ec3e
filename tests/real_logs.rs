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

/// `02/Feb/2012:04:05:24.385` (no zone: read as UTC) in the report's form.
fn clf_time(t: &str) -> String {
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (day, rest) = t.split_once('/').unwrap();
    let (mon, rest) = rest.split_once('/').unwrap();
    let (year, clock) = rest.split_once(':').unwrap();
    let m = months.iter().position(|x| *x == mon).unwrap() + 1;
    let clock = if clock.contains('.') {
        clock.to_string()
    } else {
        format!("{clock}.000")
    };
    format!("{year}-{m:02}-{day}T{clock}Z")
}

/// HAProxy `option httplog` through syslog, read independently: after
/// the syslog tag, `client [accept_date] frontend backend/server
/// Tq/Tw/Tc/Tr/Tt status …`; other lines (a server going down, a blank)
/// are not requests. Service: the backend; latency: `Tt` (ms).
fn check_haproxy(file: &PathBuf, requests: usize, not_requests: usize, args: &[&str]) {
    let text = std::fs::read_to_string(file).unwrap();
    let mut per: std::collections::BTreeMap<String, (u64, u64, Vec<f64>)> = Default::default();
    let (mut first, mut last) = (String::from("~"), String::new());
    let mut other = 0;
    for l in text.split('\n').filter(|l| !l.trim().is_empty()) {
        let rest = l.split_once("]: ").map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split(' ').collect();
        let is_request = f.len() > 6
            && f[1].starts_with('[')
            && f[4].matches('/').count() == 4
            && f[5].parse::<u16>().is_ok();
        if !is_request {
            other += 1;
            continue;
        }
        let backend = f[3].split('/').next().unwrap();
        let tt: f64 = f[4].rsplit('/').next().unwrap().parse().unwrap();
        let status: u16 = f[5].parse().unwrap();
        let e = per.entry(backend.to_string()).or_default();
        e.0 += 1;
        e.1 += (status >= 500) as u64;
        e.2.push(tt);
        let t = clf_time(f[1].trim_matches(|c| c == '[' || c == ']'));
        first = first.min(t.clone());
        last = last.max(t);
    }
    assert_eq!(per.values().map(|e| e.0 as usize).sum::<usize>(), requests);
    assert_eq!(other, not_requests);
    let r = replay(&[&["--format", "haproxy"], args].concat(), file);
    assert_eq!(r["events"]["accepted"], requests, "{}", r["events"]);
    assert_eq!(
        r["events"]["rejected_by_reason"]["format_mismatch"],
        not_requests
    );
    assert_eq!(r["services"].as_object().unwrap().len(), per.len());
    for (b, (n, errors, ms)) in &per {
        let s = &r["services"][b];
        assert_eq!(s["requests"], *n, "{b}");
        assert_eq!(s["errors"], *errors, "{b}");
        for (q, key) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
            let exact = common::nearest_rank(ms.clone(), q);
            let got = s["latency_ms"][key].as_f64().unwrap();
            assert!(near(got, exact), "{b} {key}: {got} ms, exactly {exact} ms");
        }
    }
    assert_eq!(r["span"]["start"], first);
    assert_eq!(r["span"]["end"], last);
}

/// HAProxy 1.4-era httplog, 17,211 requests over 15 days; `-1` timers
/// where a phase was never reached (PROVENANCE.md).
#[test]
fn haproxy_httplog_through_syslog_is_read() {
    check_haproxy(
        &real("access/haproxy-httplog-Tq-Tw-Tc-Tr-Tt.haproxylogparser.log"),
        17_211,
        0,
        &[],
    );
}

/// The same layout with 91 lines that are not requests mixed in (blank,
/// `Connect from`, `Server … is DOWN`): each a counted `format_mismatch`.
#[test]
fn haproxy_noise_lines_are_counted_not_read() {
    check_haproxy(
        &real("access/haproxy-httplog-Tq-Tw-Tc-Tr-Tt.no7dw-analysis-script.log"),
        10_102,
        91,
        &[],
    );
}

/// IIS 8.5 W3C with its header block repeated mid-file: 210 records,
/// latency `time-taken` (ms). IIS names no service: `--format auto` says
/// to give one, and with `--service` every line is read, the last one
/// (after a quiet spell) too.
#[test]
fn iis_with_repeated_headers_is_read_with_a_service() {
    let file = real("access/iis-w3c-time-taken.lnav.log");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut fields: Vec<&str> = Vec::new();
    let (mut ms, mut statuses, mut times) =
        (Vec::new(), std::collections::BTreeMap::new(), Vec::new());
    let mut headers = 0;
    for l in text.lines().filter(|l| !l.is_empty()) {
        if let Some(f) = l.strip_prefix("#Fields: ") {
            fields = f.split(' ').collect();
            headers += 1;
            continue;
        }
        if l.starts_with('#') {
            continue;
        }
        let v: Vec<&str> = l.split(' ').collect();
        let col = |n: &str| v[fields.iter().position(|f| *f == n).unwrap()];
        ms.push(col("time-taken").parse::<f64>().unwrap());
        *statuses.entry(col("sc-status").to_string()).or_insert(0) += 1;
        times.push(format!("{}T{}.000Z", col("date"), col("time")));
    }
    assert!(headers > 1, "the header block repeats");
    assert_eq!(ms.len(), 210, "PROVENANCE.md: 210 records");
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        vec![("200".to_string(), 8), ("404".to_string(), 202)]
    );
    let out = Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(["replay", "--no-progress", "--format", "auto"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("they name no service: give --service"),
        "{out:?}"
    );
    let r = replay(&["--format", "w3c", "--service", "site"], &file);
    assert_eq!(r["events"]["accepted"], 210, "{}", r["events"]);
    let s = &r["services"]["site"];
    assert_eq!(s["errors"], 0);
    for (q, key) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
        let exact = common::nearest_rank(ms.clone(), q);
        let got = s["latency_ms"][key].as_f64().unwrap();
        assert!(near(got, exact), "{key}: {got} ms, exactly {exact} ms");
    }
    assert_eq!(r["span"]["start"], *times.iter().min().unwrap());
    assert_eq!(r["span"]["end"], *times.iter().max().unwrap());
}

/// nginx with its own `log_format` (PROVENANCE.md's, with the double space
/// of an empty `$http_x_real_ip`): 200 records, latency `$request_time`
/// (s, the last field), times in +0300.
#[test]
fn nginx_with_its_own_log_format_is_read() {
    let file = real("access/nginx-combined-request_time.otus-nginx-access-ui.log");
    let text = std::fs::read_to_string(&file).unwrap();
    let (mut ms, mut statuses) = (Vec::new(), std::collections::BTreeMap::new());
    for l in text.split('\n').filter(|l| !l.is_empty()) {
        ms.push(l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() * 1000.0);
        // The status follows the quoted request.
        let after = l.split('"').nth(2).unwrap();
        let status: u16 = after.split_whitespace().next().unwrap().parse().unwrap();
        *statuses.entry(status).or_insert(0u64) += 1;
    }
    assert_eq!(ms.len(), 200, "PROVENANCE.md: 200 records");
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        vec![(200, 183), (302, 1), (401, 1), (403, 2), (404, 13)]
    );
    let format = r#"$remote_addr $remote_user $http_x_real_ip [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" "$http_X_REQUEST_ID" "$http_X_RB_USER" $request_time"#;
    let r = replay(
        &[
            "--format",
            "nginx",
            "--log-format",
            format,
            "--service",
            "ui",
        ],
        &file,
    );
    assert_eq!(r["events"]["accepted"], 200, "{}", r["events"]);
    let s = &r["services"]["ui"];
    assert_eq!(s["errors"], 0);
    for (q, key) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
        let exact = common::nearest_rank(ms.clone(), q);
        let got = s["latency_ms"][key].as_f64().unwrap();
        assert!(near(got, exact), "{key}: {got} ms, exactly {exact} ms");
    }
    // 03:50:22 → 03:50:29 at +0300.
    assert_eq!(r["span"]["start"], "2017-06-29T00:50:22.000Z");
    assert_eq!(r["span"]["end"], "2017-06-29T00:50:29.000Z");
}

// ---- envelopes (../shared/real-logs/envelopes) ----

/// The Apache common-log fields an independent reading needs: the time
/// (as RFC 3339) and the status.
fn clf_fields(line: &str) -> (String, u16) {
    let open = line.find('[').unwrap();
    let close = line.find(']').unwrap();
    let t = &line[open + 1..close];
    let (t, zone) = t.split_once(' ').unwrap();
    let utc = clf_time(t);
    // Apply the zone (±hhmm) to the local time.
    let sign = if zone.starts_with('-') { 1 } else { -1 };
    let mins =
        sign * (zone[1..3].parse::<i64>().unwrap() * 60 + zone[3..5].parse::<i64>().unwrap());
    let utc = shift(&utc, mins * 60);
    let after = &line[line[close..].find("\" ").unwrap() + close + 2..];
    (utc, after.split(' ').next().unwrap().parse().unwrap())
}

/// `t` (…Z, from clf_time) moved by `secs`.
fn shift(t: &str, secs: i64) -> String {
    if secs == 0 {
        return t.to_string();
    }
    let ts: jiff::Timestamp = t.parse().unwrap();
    let moved = ts
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap();
    format!("{}", moved.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
}

/// Docker json-file lines around Apache common logs (4 records, one
/// stamped 6 s after its own time by the source): each inner line's own
/// time counts, not the envelope's; statuses 500, 200, 200, 400.
#[test]
fn docker_json_file_around_apache_common_is_read() {
    let file = real("envelopes/docker-json.fluent-bit-k8s-tests.log");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut inner = Vec::new();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        inner.push(clf_fields(v["log"].as_str().unwrap()));
    }
    assert_eq!(inner.len(), 4, "PROVENANCE.md: 4 records");
    let errors = inner.iter().filter(|(_, s)| *s >= 500).count();
    let first = inner.iter().map(|(t, _)| t.clone()).min().unwrap();
    let last = inner.iter().map(|(t, _)| t.clone()).max().unwrap();
    for args in [
        &[
            "--envelope",
            "docker",
            "--format",
            "apache",
            "--log-format",
            "common",
        ][..],
        &["--envelope", "auto", "--format", "auto"][..],
    ] {
        let r = replay(&[args, &["--service", "apache-logs"]].concat(), &file);
        assert_eq!(r["events"]["accepted"], 4, "{args:?} {}", r["events"]);
        assert_eq!(r["events"]["rejected"], 0, "{args:?} {}", r["events"]);
        assert_eq!(r["services"]["apache-logs"]["requests"], 4);
        assert_eq!(r["services"]["apache-logs"]["errors"], errors as u64);
        assert_eq!(r["span"]["start"], first);
        assert_eq!(r["span"]["end"], last);
    }
}

/// Fluent Bit records after `filter_kubernetes`: `[time, {…}]` pairs and
/// one bare object; the service is the container's name in the envelope
/// (not the top-level `host`, which one record sets to a client address).
#[test]
fn fluent_bit_records_name_their_service_in_the_envelope() {
    let file = real("envelopes/fluent-bit-record.fluent-bit-k8s-tests.log");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut want = std::collections::BTreeMap::new();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let rec = if v.is_array() { &v[1] } else { &v };
        let (_, status) = clf_fields(rec["log"].as_str().unwrap());
        let name = rec["kubernetes"]["container_name"]
            .as_str()
            .unwrap()
            .to_string();
        let e = want.entry(name).or_insert((0u64, 0u64));
        e.0 += 1;
        e.1 += (status >= 500) as u64;
    }
    assert_eq!(want.values().map(|e| e.0).sum::<u64>(), 4);
    let r = replay(
        &[
            "--envelope",
            "fluent-bit",
            "--format",
            "apache",
            "--log-format",
            "common",
            "--service-field",
            "envelope.kubernetes.container_name",
        ],
        &file,
    );
    assert_eq!(r["events"]["accepted"], 4, "{}", r["events"]);
    let got: std::collections::BTreeMap<String, (u64, u64)> = r["services"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, s)| {
            (
                k.clone(),
                (
                    s["requests"].as_u64().unwrap(),
                    s["errors"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(got, want);
}

/// Docker json-file around Apache common, all in service `x`.
const DOCKER_COMMON: &[&str] = &[
    "--envelope",
    "docker",
    "--format",
    "apache",
    "--log-format",
    "common",
    "--service",
    "x",
];

/// One Docker record without its trailing newline (Apache combined), and
/// one whose envelope time is two hours before the line's own: the line's
/// time counts. The pretty-printed form of the second is not one record a
/// line: each of its lines is a counted `invalid_envelope`.
#[test]
fn docker_records_without_newline_or_on_one_line_each() {
    let file = real("envelopes/docker-json.grafana-loki-pipeline-test.log");
    let text = std::fs::read_to_string(&file).unwrap();
    let v: Value = serde_json::from_str(text.trim()).unwrap();
    let (t, status) = clf_fields(v["log"].as_str().unwrap());
    let r = replay(
        &[
            "--envelope",
            "docker",
            "--format",
            "apache",
            "--service",
            "x",
        ],
        &file,
    );
    assert_eq!(r["events"]["accepted"], 1, "{}", r["events"]);
    assert_eq!(r["span"]["start"], t);
    assert_eq!(r["services"]["x"]["errors"], (status >= 500) as u64);

    let file = real("envelopes/docker-json.vector-blog-vrl.ndjson");
    let v: Value = serde_json::from_str(std::fs::read_to_string(&file).unwrap().trim()).unwrap();
    let (t, _) = clf_fields(v["log"].as_str().unwrap());
    assert_ne!(
        &t[..13],
        &v["time"].as_str().unwrap()[..13],
        "the two times differ"
    );
    let r = replay(DOCKER_COMMON, &file);
    assert_eq!(r["events"]["accepted"], 1, "{}", r["events"]);
    assert_eq!(r["span"]["start"], t);

    let file = real("envelopes/docker-json.vector-blog-vrl.log");
    let lines = std::fs::read_to_string(&file).unwrap().lines().count();
    let r = replay(DOCKER_COMMON, &file);
    assert_eq!(r["events"]["accepted"], 0);
    assert_eq!(r["events"]["rejected_by_reason"]["invalid_envelope"], lines);
}

/// CRI partial lines, stdout and stderr interleaved: joined per stream,
/// the trailing space of each part kept (PROVENANCE.md gives the joined
/// lines, from the source's expected output). They are not access logs:
/// each joined line is one `format_mismatch`, no part is lost or counted
/// alone.
#[test]
fn cri_partials_are_joined_per_stream() {
    use slate::decode::envelope::{Partials, Unwrapper};
    use slate::spec::config::Envelope;
    let file = real("envelopes/cri-partial.fluent-bit-multiline-tests.log");
    let text = std::fs::read(&file).unwrap();
    let u = Unwrapper::new(Envelope::Cri, None);
    let (mut partials, mut days) = (Partials::default(), Default::default());
    let mut joined = Vec::new();
    for (i, l) in text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        u.unwrap(l, &mut partials, &mut days, (i as u64, (0, 0)), &mut |r| {
            joined.push(String::from_utf8(r.unwrap().line.into_owned()).unwrap())
        });
    }
    assert!(partials.is_empty());
    let want = [
        "1a. some multiline log",
        "1b. some multiline log",
        "2a. another multiline log",
        "2b. another multiline log",
        "3a. non multiline 1",
        "4a. non multiline 2",
        "3b. non multiline 1",
        "4b. non multiline 2",
    ];
    assert_eq!(joined, want);
    let r = replay(
        &["--envelope", "cri", "--format", "apache", "--service", "x"],
        &file,
    );
    assert_eq!(r["events"]["accepted"], 0);
    assert_eq!(r["events"]["rejected"], 8);
    assert_eq!(r["events"]["rejected_by_reason"]["format_mismatch"], 8);
}

/// Vector's CRI cases: a stdout partial never finished (its last part
/// cut inside a UTF-8 sequence) is one `invalid_envelope` at the end; the
/// stderr line between is whole on its own stream.
#[test]
fn a_cri_partial_never_finished_is_counted() {
    let file = real("envelopes/cri-partial.vector-kubernetes-logs-tests.log");
    let text = std::fs::read(&file).unwrap();
    let lines = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(lines, 5);
    assert!(
        std::str::from_utf8(&text).is_err(),
        "line 5 is cut inside UTF-8"
    );
    let dead = tempfile::NamedTempFile::new().unwrap();
    let r = replay(
        &[
            "--envelope",
            "cri",
            "--format",
            "apache",
            "--service",
            "x",
            "--dead-letter",
            dead.path().to_str().unwrap(),
        ],
        &file,
    );
    let by = &r["events"]["rejected_by_reason"];
    // Two whole lines (stdout F, stderr F) and one partial left open.
    assert_eq!(by["format_mismatch"], 2, "{by}");
    assert_eq!(by["invalid_envelope"], 1, "{by}");
    let letters = std::fs::read_to_string(dead.path()).unwrap();
    let last: Value = serde_json::from_str(
        letters
            .lines()
            .find(|l| l.contains("invalid_envelope"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["line"], 5, "the partial's last part: {last}");
}

/// BSD syslog as a daemon writes it to a file (no PRI, no year) around
/// HAProxy 1.7 httplog: with `--envelope syslog` the same requests as the
/// HAProxy reader that skips the prefix itself.
#[test]
fn haproxy_in_a_syslog_file_is_read_through_the_envelope() {
    let file = real("envelopes/syslog-rfc3164-file.lnav-haproxy.log");
    check_haproxy(&file, 13, 4, &[]);
    check_haproxy(&file, 13, 4, &["--envelope", "syslog"]);
}

/// Heroku's logplex: an octet count (267, one more than follows), RFC
/// 5424 without STRUCTURED-DATA, then the router's key=value line. The
/// envelope gives the line and its time; no format of slate's reads the
/// router's layout, so replay counts it as not JSON.
#[test]
fn rfc5424_with_octet_counting_and_no_structured_data_is_unwrapped() {
    use slate::decode::envelope::{Partials, Unwrapper};
    use slate::spec::config::Envelope;
    let file = real("envelopes/syslog-rfc5424-logplex.vector-heroku-tests.log");
    let text = std::fs::read(&file).unwrap();
    let msg = std::str::from_utf8(&text).unwrap();
    let want = &msg[msg.find(" - at=").unwrap() + 3..];
    let u = Unwrapper::new(Envelope::Syslog, Some("app"));
    let mut got = Vec::new();
    u.unwrap(
        &text,
        &mut Partials::default(),
        &mut Default::default(),
        (0, (0, 0)),
        &mut |r| {
            let r = r.unwrap();
            got.push((
                String::from_utf8(r.line.into_owned()).unwrap(),
                r.time.and_then(|t| t.micros(&mut Default::default())),
                r.service.map(|s| s.into_owned()),
            ));
        },
    );
    let t = slate::model::parse_rfc3339(b"2020-01-08T22:33:57.353034+00:00");
    assert_eq!(got, vec![(want.to_string(), t, Some("heroku".to_string()))]);
    let r = replay(&["--envelope", "syslog", "--service", "x"], &file);
    assert_eq!(
        r["events"]["rejected_by_reason"]["invalid_json"], 1,
        "{}",
        r["events"]
    );
}

/// The Docker Engine API's multiplexed log stream (binary frames: an
/// 8-byte header, then `<time> <line>`), which has no envelope of its
/// own in slate: read bare, each frame's header and time are the line's
/// first field, which the common log format does not use; the 100 KB
/// line Docker split over seven frames is one `format_mismatch`. Worked
/// out here by taking the frames apart.
#[test]
fn the_docker_api_stream_reads_as_its_frames_hold() {
    let file = real("envelopes/docker-api-stream.loki-promtail-tests.log");
    let data = std::fs::read(&file).unwrap();
    let (mut i, mut buf, mut frames) = (0, Vec::new(), 0);
    let mut msgs: Vec<Vec<u8>> = Vec::new();
    while i < data.len() {
        assert!(
            data[i] == 1 && data[i + 1..i + 4] == [0, 0, 0],
            "a stdout frame at {i}"
        );
        let n = u32::from_be_bytes(data[i + 4..i + 8].try_into().unwrap()) as usize;
        buf.extend_from_slice(&data[i + 8..i + 8 + n]);
        i += 8 + n;
        frames += 1;
        if buf.ends_with(b"\n") {
            msgs.push(std::mem::take(&mut buf));
        }
    }
    assert_eq!((frames, msgs.len()), (1157, 1151), "PROVENANCE.md");
    let (mut access, mut errors, mut times) = (0u64, 0u64, Vec::new());
    for m in &msgs {
        let text = String::from_utf8_lossy(m);
        let (_, line) = text.split_once(' ').unwrap();
        let Some(q) = line.find("\" ") else { continue };
        if !line.contains(" [") {
            continue;
        }
        let (t, status) = clf_fields(line.trim_end());
        assert!(q > 0);
        access += 1;
        errors += (status >= 500) as u64;
        times.push(t);
    }
    assert_eq!(access, 1150);
    let r = replay(
        &[
            "--format",
            "apache",
            "--log-format",
            "common",
            "--service",
            "flog",
        ],
        &file,
    );
    assert_eq!(r["events"]["accepted"], access, "{}", r["events"]);
    assert_eq!(r["events"]["rejected_by_reason"]["format_mismatch"], 1);
    assert_eq!(r["services"]["flog"]["errors"], errors);
    assert_eq!(r["span"]["start"], *times.iter().min().unwrap());
    assert_eq!(r["span"]["end"], *times.iter().max().unwrap());
}
