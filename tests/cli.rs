//! The real binary: exit codes, error messages, inputs (stdin, gzip with
//! several members, BOM and CRLF), rejections and their dead letters, the
//! watermark rule, `--from/--to`, `--incident`, `check`, `gen`, and the
//! golden report of the bundled fixture.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn slate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("run slate")
}

fn slate_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(args)
        .current_dir(ROOT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // slate may refuse stdin and exit before reading it all (a broken
    // pipe here): what it said and its exit are what the tests judge.
    if let Err(e) = child.stdin.take().unwrap().write_all(input) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> &Output {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
    o
}

fn report(args: &[&str]) -> Value {
    let mut a = vec!["replay", "-o", "json", "--no-progress"];
    a.extend_from_slice(args);
    serde_json::from_str(&stdout(ok(&slate(&a)))).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// 2026-11-01 plus `secs` seconds, in RFC 3339.
fn at(secs: u32) -> String {
    format!(
        "2026-11-01T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn line(ts: &str, service: &str, status: u16, latency: f64) -> String {
    format!(r#"{{"ts":"{ts}","service":"{service}","status":{status},"latency_ms":{latency}}}"#)
}

fn reason(r: &Value, name: &str) -> u64 {
    r["events"]["rejected_by_reason"][name].as_u64().unwrap()
}

/// Each bundled fixture's report, frozen after the reference test
/// (tests/reference.rs) checked it. `SLATE_BLESS=1` rewrites them.
#[test]
fn golden_reports_of_the_bundled_fixtures() {
    for name in ["incidents", "slow-burn", "quiet-weekend"] {
        let input = format!("fixtures/{name}.jsonl.gz");
        let o = ok(&slate(&[
            "replay",
            "--slo",
            "fixtures/service-slos.yml",
            &input,
            "-o",
            "json",
        ]))
        .clone();
        let golden = Path::new(ROOT).join(format!("fixtures/{name}.report.json"));
        if std::env::var_os("SLATE_BLESS").is_some() {
            std::fs::write(&golden, &o.stdout).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap();
        let got = stdout(&o);
        if got != want {
            let diff: Vec<String> = want
                .lines()
                .zip(got.lines())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .take(10)
                .map(|(i, (a, b))| format!("line {}:\n  want {a}\n   got {b}", i + 1))
                .collect();
            panic!(
                "report differs from {} (SLATE_BLESS=1 to accept):\n{}",
                golden.display(),
                diff.join("\n")
            );
        }
    }
}

#[test]
fn table_output_leads_with_the_one_number() {
    let o = stdout(ok(&slate(&[
        "replay",
        "--slo",
        "fixtures/service-slos.yml",
        "fixtures/incidents.jsonl.gz",
    ])));
    assert!(o.contains("reliability 99.280%"), "{o}");
    assert!(o.contains("api-gateway      error_rate    99.900%"), "{o}");
    // Incidents lead, each pair's episode folded under its incident: the
    // fixture's error burst fires all four pairs of api-gateway's
    // error_rate, one incident.
    let incidents = o.find("incidents (").expect("an incident section");
    assert!(incidents < o.find("OBJECTIVE").unwrap(), "{o}");
    let burst = o
        .lines()
        .position(|l| l.starts_with("api-gateway      error_rate      page"))
        .unwrap_or_else(|| panic!("{o}"));
    let pairs: Vec<&str> = o
        .lines()
        .skip(burst + 1)
        .take_while(|l| l.contains('└'))
        .collect();
    assert_eq!(pairs.len(), 4, "{o}");
}

/// Runs slate, expecting exit 2 and `text` in what it printed on stderr.
fn fails_with(args: &[&str], text: &str) {
    let o = slate(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    assert!(
        stderr(&o).contains(text),
        "{args:?}: want {text:?} in\n{}",
        stderr(&o)
    );
}

#[test]
fn errors_exit_2_and_say_what_to_fix() {
    let fixture = "fixtures/incidents.jsonl.gz";
    fails_with(&["replay", "missing.jsonl"], "missing.jsonl: no such file");
    fails_with(
        &["replay", "--format", "nginx-jsn", fixture],
        "did you mean `nginx-json`",
    );
    fails_with(&["replay", "--eval-every", "7s", fixture], "divide an hour");
    fails_with(
        &["replay", "--slo", "nope.yml", fixture],
        "nope.yml: cannot read",
    );
    fails_with(
        &["replay", "--incident", "2026-11-01T02:00:00Z", fixture],
        "FROM..TO",
    );
    fails_with(&["replay", "--service", "", fixture], "--service");
    fails_with(
        &[
            "replay",
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-01",
            fixture,
        ],
        "--from must be before --to",
    );
}

#[test]
fn check_lists_every_error_with_file_line_and_key() {
    ok(&slate(&["check", "--slo", "fixtures/service-slos.yml"]));
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yml",
        "services:\n  api:\n    slo_eror_rate: \"99.9%\"\n    slo_latency_p99: fast\n    slo_availability: \"0.1%\"\n",
    );
    let o = slate(&["check", "--slo", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("bad.yml:3: `slo_eror_rate`: unknown SLO key; did you mean `slo_error_rate`?"),
        "{e}"
    );
    assert!(e.contains("bad.yml:4: `api.slo_latency_p99`"), "{e}");
    assert!(e.contains("bad.yml:5: `api.slo_availability`"), "{e}");
    assert!(e.contains("3 errors"), "{e}");
    // The same errors stop a replay.
    let o = slate(&[
        "replay",
        "--slo",
        bad.to_str().unwrap(),
        "fixtures/incidents.jsonl.gz",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.yml:3:"));
}

#[test]
fn check_samples_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "nolat.jsonl",
        r#"{"ts":"2026-11-01T00:00:00Z","service":"api-gateway","status":200}"#,
    );
    let o = stdout(ok(&slate(&[
        "check",
        "--slo",
        "fixtures/service-slos.yml",
        input.to_str().unwrap(),
    ])));
    assert!(o.contains("1 of the first 1 lines decode"), "{o}");
    assert!(o.contains("no line carries a latency"), "{o}");
    assert!(o.contains("api-gateway/latency_p99"), "{o}");
}

#[test]
fn stdin_gzip_members_bom_and_crlf_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..200)
        .map(|i| {
            line(
                &at(i),
                "a",
                if i % 10 == 0 { 503 } else { 200 },
                1.0 + i as f64,
            )
        })
        .collect();
    let plain = lines.join("\n") + "\n";
    let path = write(dir.path(), "plain.jsonl", &plain);
    let base = report(&[path.to_str().unwrap()]);
    assert_eq!(base["events"]["accepted"], 200);
    assert_eq!(base["services"]["a"]["errors"], 20);

    // Two gzip members, as rotated files concatenated.
    let gz = dir.path().join("two.jsonl.gz");
    let mut bytes = Vec::new();
    for half in [&lines[..100], &lines[100..]] {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all((half.join("\n") + "\n").as_bytes()).unwrap();
        bytes.extend(e.finish().unwrap());
    }
    std::fs::write(&gz, bytes).unwrap();
    assert_eq!(
        report(&[gz.to_str().unwrap()])["services"],
        base["services"]
    );

    // BOM, CRLF, blank lines and surrounding blanks; no final newline.
    let messy = format!(
        "\u{feff}{}\r\n\r\n  {}",
        lines[..199].join("\r\n"),
        lines[199]
    );
    let messy = write(dir.path(), "messy.jsonl", &messy);
    let r = report(&[messy.to_str().unwrap()]);
    assert_eq!(r["events"], base["events"]);
    assert_eq!(r["services"], base["services"]);

    let o = slate_stdin(&["replay", "-o", "json", "-"], plain.as_bytes());
    let r: Value = serde_json::from_str(&stdout(ok(&o))).unwrap();
    assert_eq!(r["services"], base["services"]);
}

#[test]
fn every_rejection_is_counted_and_dead_lettered_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!(
        r#"{{"ts":"2026-11-01T00:00:02Z","service":"a","status":200,"pad":"{}"}}"#,
        "x".repeat(300)
    );
    let text = [
        line("2026-11-01T00:00:00Z", "a", 200, 5.0),
        "{broken".into(),
        "[1]".into(),
        r#"{"ts":"2026-11-01T00:00:01Z","status":200}"#.into(),
        r#"{"ts":"2026-11-01T00:00:01Z","service":"a","status":true}"#.into(),
        r#"{"ts":"noon","service":"a","status":200}"#.into(),
        r#"{"ts":"2026-11-01T00:00:01Z","service":"a","status":200,"latency_ms":-1}"#.into(),
        r#"{"ts":"2026-11-01T00:00:01Z","service":"a","status":"OK"}"#.into(),
        r#"{"ts":"2026-11-01T00:00:01Z","service":"","status":200}"#.into(),
        line("2026-11-01T00:00:01Z", "b", 200, 1.0),
        line("2026-11-01T00:00:01Z", "c", 200, 1.0),
        long,
        line("2026-11-01T00:00:03Z", "a", 200, 5.0),
    ]
    .join("\n");
    let input = write(dir.path(), "bad.jsonl", &text);
    let cfg = write(
        dir.path(),
        "slate.yml",
        "input:\n  max_line_bytes: 200\nengine:\n  max_services: 2\n",
    );
    let dead = dir.path().join("dead.jsonl");
    let r = report(&[
        "--config",
        cfg.to_str().unwrap(),
        "--dead-letter",
        dead.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    for (name, n) in [
        ("invalid_json", 1),
        ("not_an_object", 1),
        ("missing_field", 1),
        ("wrong_type", 1),
        ("bad_timestamp", 1),
        ("bad_latency", 1),
        ("bad_status", 1),
        ("bad_service", 1),
        ("too_many_services", 1),
        ("line_too_long", 1),
    ] {
        assert_eq!(reason(&r, name), n, "{name}");
    }
    assert_eq!(r["events"]["accepted"], 3);
    assert_eq!(r["events"]["rejected"], 10);
    let dead: Vec<Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 10);
    assert_eq!(dead[0]["line"], 2);
    assert_eq!(dead[0]["reason"], "invalid_json");
    assert_eq!(dead[0]["record"], "{broken");
    assert_eq!(dead[9]["line"], 12);
    assert_eq!(dead[9]["reason"], "line_too_long");
    let too_many = dead
        .iter()
        .find(|d| d["reason"] == "too_many_services")
        .unwrap();
    assert_eq!(too_many["line"], 11);
    assert!(too_many["input"].as_str().unwrap().ends_with("bad.jsonl"));
}

#[test]
fn one_line_from_2099_neither_counts_nor_blocks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = vec![line("2099-01-01T00:00:00Z", "a", 200, 1.0)];
    for i in 0..30 {
        lines.push(line(&at(i), "a", 200, 1.0));
        if i == 10 {
            lines.push(line("2099-06-01T00:00:00Z", "a", 200, 1.0));
        }
    }
    // A quiet weekend: the next line confirms the jump, and it is crossed.
    lines.push(line("2026-11-03T00:00:00Z", "a", 200, 1.0));
    lines.push(line("2026-11-03T00:00:01Z", "a", 200, 1.0));
    // Three hours late: without SLOs, beyond the hour the state reaches.
    lines.push(line("2026-11-02T21:00:00Z", "a", 200, 1.0));
    let input = write(dir.path(), "jump.jsonl", &lines.join("\n"));
    let r = report(&[input.to_str().unwrap()]);
    assert_eq!(reason(&r, "future"), 2);
    assert_eq!(reason(&r, "too_late"), 1);
    assert_eq!(r["events"]["accepted"], 32);
    assert_eq!(r["span"]["start"], "2026-11-01T00:00:00.000Z");
    assert_eq!(r["span"]["end"], "2026-11-03T00:00:01.000Z");
}

/// DESIGN §5: a jump that nothing follows (the last line after a quiet
/// spell) is accepted unless it lies after this machine's clock; a file
/// sorted by time whose lines are years apart is read whole, and a line
/// dated 2099 among them is still `future`, wherever it is.
#[test]
fn a_final_jump_and_lines_years_apart_are_read_and_2099_is_not() {
    let dir = tempfile::tempdir().unwrap();
    // Half an hour of lines, then one after a 45-minute quiet spell (an
    // IIS log's last line), then one from 2099.
    let mut lines: Vec<String> = (0..30).map(|i| line(&at(i * 60), "a", 200, 1.0)).collect();
    lines.push(line(&at(30 * 60 + 45 * 60), "a", 500, 1.0));
    let quiet = write(dir.path(), "quiet.jsonl", &lines.join("\n"));
    let r = report(&[quiet.to_str().unwrap()]);
    assert_eq!(r["events"]["accepted"], 31, "{}", r["events"]);
    assert_eq!(r["services"]["a"]["errors"], 1);
    assert_eq!(r["span"]["end"], at(75 * 60).replace('Z', ".000Z"));
    lines.push(line("2099-01-01T00:00:00Z", "a", 200, 1.0));
    let stray = write(dir.path(), "stray.jsonl", &lines.join("\n"));
    let r = report(&[stray.to_str().unwrap()]);
    assert_eq!(r["events"]["accepted"], 31, "{}", r["events"]);
    assert_eq!(reason(&r, "future"), 1);
    // A test suite's samples: seven lines, sorted, years apart; a 2099 line
    // first, and again in the middle.
    let years = ["2009", "2012", "2015", "2018", "2020", "2023", "2025"];
    let mut sorted = vec![line("2099-03-01T00:00:00Z", "b", 200, 1.0)];
    for (k, y) in years.iter().enumerate() {
        sorted.push(line(&format!("{y}-05-01T12:00:00Z"), "b", 200, 1.0));
        if k == 3 {
            sorted.push(line("2099-04-01T00:00:00Z", "b", 200, 1.0));
        }
    }
    let apart = write(dir.path(), "apart.jsonl", &sorted.join("\n"));
    let r = report(&[apart.to_str().unwrap()]);
    assert_eq!(r["events"]["accepted"], 7, "{}", r["events"]);
    assert_eq!(reason(&r, "future"), 2);
    assert_eq!(reason(&r, "too_late"), 0);
    assert_eq!(r["span"]["start"], "2009-05-01T12:00:00.000Z");
    assert_eq!(r["span"]["end"], "2025-05-01T12:00:00.000Z");
}

/// DESIGN §5: a late event counts while its period still holds it, in
/// every window that covers it; only beyond the longest period is it
/// `too_late`. Worked out by hand: `a` has a 30-day error-rate SLO at 99%;
/// 20 on-time successes, then 3 failures 2 hours, 5 days and 29 days late,
/// and one success 31 days late.
#[test]
fn late_events_count_within_the_longest_period() {
    let dir = tempfile::tempdir().unwrap();
    let slo = write(
        dir.path(),
        "slo.yml",
        "services:\n  a:\n    slo_error_rate: 99%\n",
    );
    let mut lines: Vec<String> = (0..20)
        .map(|i| line(&format!("2026-11-30T12:00:{i:02}Z"), "a", 200, 1.0))
        .collect();
    lines.push(line("2026-11-30T10:00:00Z", "a", 500, 1.0));
    lines.push(line("2026-11-25T12:00:00Z", "a", 500, 1.0));
    lines.push(line("2026-11-01T13:00:00Z", "a", 500, 1.0));
    lines.push(line("2026-10-30T12:00:00Z", "a", 200, 1.0));
    let input = write(dir.path(), "late.jsonl", &lines.join("\n"));
    let r = report(&["--slo", slo.to_str().unwrap(), input.to_str().unwrap()]);
    assert_eq!(r["events"]["accepted"], 23);
    assert_eq!(reason(&r, "too_late"), 1);
    let a = &r["services"]["a"];
    assert_eq!(a["requests"], 23);
    assert_eq!(a["errors"], 3);
    assert_eq!(r["span"]["start"], "2026-11-01T13:00:00.000Z");
    // Over the period: 3 bad of 23.
    let attainment = a["slos"]["error_rate"]["attainment"].as_f64().unwrap();
    assert!((attainment - 20.0 / 23.0).abs() < 1e-6, "{attainment}");
    // The 1h burn window moved past every late one; the 6h window covers
    // the 2-hour-late failure: 1 bad of 21, burn (1/21)/0.01.
    let burn = &a["slos"]["error_rate"]["burn_rate"];
    assert_eq!(burn["1h"].as_f64().unwrap(), 0.0);
    assert!(
        (burn["6h"].as_f64().unwrap() - 100.0 / 21.0).abs() < 1e-3,
        "{burn}"
    );
    // The 3d window holds the 2-hour-late failure, not the 5-day one.
    assert!(
        (burn["3d"].as_f64().unwrap() - 100.0 / 21.0).abs() < 1e-3,
        "{burn}"
    );
}

#[test]
fn stray_first_lines_do_not_set_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        line("2026-11-01T00:00:00Z", "a", 200, 1.0),
        line("1999-01-01T00:00:00Z", "a", 200, 1.0), // a broken clock, in the past
        line("2998-12-31T23:59:59Z", "a", 200, 1.0), // and in the future
        line("2026-11-01T00:00:01Z", "a", 200, 1.0),
        line("2026-11-01T00:00:02Z", "a", 200, 1.0),
    ];
    let input = write(dir.path(), "stray.jsonl", &lines.join("\n"));
    let r = report(&[input.to_str().unwrap()]);
    assert_eq!(r["events"]["accepted"], 3);
    assert_eq!(reason(&r, "too_late"), 1);
    assert_eq!(reason(&r, "future"), 1);
    assert_eq!(r["span"]["start"], "2026-11-01T00:00:00.000Z");
    // A single line is its own clock.
    let one = write(dir.path(), "one.jsonl", &lines[1]);
    assert_eq!(report(&[one.to_str().unwrap()])["events"]["accepted"], 1);
}

#[test]
fn from_to_and_incidents() {
    let r = report(&[
        "--slo",
        "fixtures/service-slos.yml",
        "--from",
        "2026-11-01T01:00:00Z",
        "--to",
        "2026-11-01T06:00:00Z",
        "--incident",
        "2026-11-01T02:00:00Z..2026-11-01T02:30:00Z",
        "--incident",
        "2026-11-01T04:00:00Z..2026-11-01T04:30:00Z",
        "fixtures/incidents.jsonl.gz",
    ]);
    let accepted = r["events"]["accepted"].as_u64().unwrap();
    let outside = r["events"]["outside_span"].as_u64().unwrap();
    assert_eq!(
        accepted + outside + r["events"]["rejected"].as_u64().unwrap(),
        107_798
    );
    assert!(r["span"]["start"].as_str().unwrap() >= "2026-11-01T01:00:00");
    assert!(r["span"]["end"].as_str().unwrap() < "2026-11-01T06:00:00");
    let inc = r["incidents"].as_array().unwrap();
    assert_eq!(inc.len(), 2);
    let during = inc[0]["budget_consumed"]["api-gateway"]["error_rate"]
        .as_f64()
        .unwrap();
    let after = inc[1]["budget_consumed"]["api-gateway"]["error_rate"]
        .as_f64()
        .unwrap();
    // The error burst (02:00–02:25) spent far more than a quiet half hour.
    assert!(
        during > 0.05 && after < 0.01,
        "during {during}, after {after}"
    );
}

#[test]
fn several_inputs_merge_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut all) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..300 {
        let l = line(
            &at(i),
            if i % 2 == 0 { "x" } else { "y" },
            if i % 7 == 0 { 500 } else { 200 },
            i as f64,
        );
        if i % 3 == 0 {
            a.push(l.clone())
        } else {
            b.push(l.clone())
        }
        all.push(l);
    }
    let pa = write(dir.path(), "a.jsonl", &a.join("\n"));
    let pb = write(dir.path(), "b.jsonl", &b.join("\n"));
    let pall = write(dir.path(), "all.jsonl", &all.join("\n"));
    let merged = report(&[
        "--eval-every",
        "10s",
        pa.to_str().unwrap(),
        pb.to_str().unwrap(),
    ]);
    let single = report(&["--eval-every", "10s", pall.to_str().unwrap()]);
    assert_eq!(merged["services"], single["services"]);
    assert_eq!(merged["events"]["accepted"], 300);
}

#[test]
fn gen_is_deterministic_and_checks_its_flags() {
    let a = ok(&slate(&[
        "gen",
        "--duration",
        "10m",
        "--incident",
        "errors:api-gateway:1m+2m:0.5",
    ]))
    .stdout
    .clone();
    let b = ok(&slate(&[
        "gen",
        "--duration",
        "10m",
        "--incident",
        "errors:api-gateway:1m+2m:0.5",
    ]))
    .stdout
    .clone();
    assert_eq!(a, b);
    let c = ok(&slate(&["gen", "--duration", "10m", "--seed", "2"]))
        .stdout
        .clone();
    assert_ne!(a, c);
    let o = slate(&["gen", "--incident", "errors:api:1m+2m"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no service `api`"), "{}", stderr(&o));
    let o = slate(&["gen", "--incident", "boom:api-gateway:1m+2m"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown incident kind"));
}

#[test]
fn help_teaches() {
    let o = stdout(ok(&slate(&["replay", "--help"])));
    assert!(
        o.contains("--slo <FILE>") && o.contains("Examples:") && o.contains("Exit codes"),
        "{o}"
    );
}

#[test]
fn a_latency_slo_without_latencies_is_called_out() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "nolat.jsonl",
        r#"{"ts":"2026-11-01T00:00:00Z","service":"api-gateway","status":200}"#,
    );
    let o = ok(&slate(&[
        "replay",
        "--slo",
        "fixtures/service-slos.yml",
        input.to_str().unwrap(),
    ]))
    .clone();
    assert!(
        stderr(&o).contains("api-gateway/latency_p99: none of its 1 events carries a latency"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn service_flags_name_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        r#"{"ts":"2026-11-01T00:00:00Z","app":{"name":"shop"},"status":200}"#,
        r#"{"ts":"2026-11-01T00:00:01Z","app":{"name":"cart"},"status":500}"#,
    ]
    .join("\n");
    let input = write(dir.path(), "apps.jsonl", &text);
    let r = report(&["--service-field", "app.name", input.to_str().unwrap()]);
    assert_eq!(r["services"]["shop"]["requests"], 1);
    assert_eq!(r["services"]["cart"]["errors"], 1);
    let r = report(&["--service", "web", input.to_str().unwrap()]);
    assert_eq!(r["services"]["web"]["requests"], 2);
    assert_eq!(r["services"].as_object().unwrap().len(), 1);
}

#[test]
fn min_events_keeps_thin_traffic_from_paging() {
    let dir = tempfile::tempdir().unwrap();
    // One request a minute, every fifth one failing: a burn of 200 at 99.9%.
    let text: Vec<String> = (0..120)
        .map(|i| {
            line(
                &at(i * 60),
                "api-gateway",
                if i % 5 == 0 { 500 } else { 200 },
                5.0,
            )
        })
        .collect();
    let input = write(dir.path(), "thin.jsonl", &text.join("\n"));
    let alerts = |r: &Value| {
        r["services"]["api-gateway"]["alerts"]
            .as_array()
            .unwrap()
            .len()
    };
    let loud = report(&[
        "--slo",
        "fixtures/service-slos.yml",
        input.to_str().unwrap(),
    ]);
    assert!(alerts(&loud) > 0);
    let cfg = write(dir.path(), "slate.yml", "alerting:\n  min_events: 10\n");
    let quiet = report(&[
        "--slo",
        "fixtures/service-slos.yml",
        "--config",
        cfg.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    // The 5-minute short window never holds 10 events, so the 1h/5m pair
    // stays quiet; the longer pairs (30 events in 30 minutes) may fire.
    let shorts: Vec<&str> = quiet["services"]["api-gateway"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["short_window"].as_str().unwrap())
        .collect();
    assert!(!shorts.contains(&"5m"), "{shorts:?}");
    let loud_shorts: Vec<&str> = loud["services"]["api-gateway"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["short_window"].as_str().unwrap())
        .collect();
    assert!(loud_shorts.contains(&"5m"), "{loud_shorts:?}");
    assert!(alerts(&quiet) < alerts(&loud));
}

#[test]
fn json_file_beside_the_table_and_check_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let table = ok(&slate(&[
        "replay",
        "--slo",
        "fixtures/service-slos.yml",
        "--json",
        out.to_str().unwrap(),
        "fixtures/incidents.jsonl.gz",
    ]))
    .clone();
    assert!(stdout(&table).starts_with("span "));
    let golden =
        std::fs::read_to_string(Path::new(ROOT).join("fixtures/incidents.report.json")).unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), golden);

    let o = stdout(ok(&slate(&[
        "check",
        "--slo",
        "fixtures/service-slos.yml",
        "-o",
        "json",
    ])));
    let v: Value = serde_json::from_str(&o).unwrap();
    assert_eq!(v["valid"], true);
    let bad = write(
        dir.path(),
        "bad.yml",
        "services:\n  a:\n    slo_error_rate: 100%\n",
    );
    let o = slate(&["check", "--slo", bad.to_str().unwrap(), "-o", "json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["valid"], false);
    assert!(
        v["errors"][0].as_str().unwrap().contains("bad.yml:3"),
        "{v}"
    );
}

#[test]
fn a_truncated_gzip_reports_what_was_read_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(Path::new(ROOT).join("fixtures/incidents.jsonl.gz")).unwrap();
    let cut = write_bytes(dir.path(), "cut.jsonl.gz", &whole[..whole.len() / 3]);
    let o = ok(&slate(&[
        "replay",
        "-o",
        "json",
        "--no-progress",
        cut.to_str().unwrap(),
    ]))
    .clone();
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(r["events"]["accepted"].as_u64().unwrap() > 10_000);
    let errors = r["events"]["input_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].as_str().unwrap().contains("cut.jsonl.gz"),
        "{errors:?}"
    );
    assert!(
        stderr(&o).contains("input not read to the end"),
        "{}",
        stderr(&o)
    );
    // The error is said once, not twice.
    let e = errors[0].as_str().unwrap();
    assert_eq!(e.matches("cut.jsonl.gz").count(), 1, "{e}");
}

fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// `2026-11-01T10:00:00.123Z` → `01/Nov/2026:10:00:00 +0000` (CLF keeps
/// whole seconds).
fn clf(rfc3339: &str) -> String {
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m: usize = rfc3339[5..7].parse().unwrap();
    format!(
        "{}/{}/{}:{} +0000",
        &rfc3339[8..10],
        months[m - 1],
        &rfc3339[0..4],
        &rfc3339[11..19]
    )
}

/// The same traffic as JSON and as an nginx access log with
/// `$request_time` gives the same report, within the text format's
/// resolution (whole seconds, milliseconds).
#[test]
fn nginx_text_logs_replay_like_their_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = ok(&slate(&[
        "gen",
        "--duration",
        "30m",
        "--rate",
        "5",
        "--seed",
        "9",
    ]))
    .stdout
    .clone();
    let mut nginx = String::new();
    for l in String::from_utf8(json.clone()).unwrap().lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let status = v.get("status").map_or_else(
            || if v["success"] == true { 200 } else { 500 },
            |s| s.as_u64().unwrap(),
        );
        nginx += &format!(
            "{} 10.0.0.1 - [{}] \"{} {} HTTP/1.1\" {} 512 {:.3}\n",
            v["service"].as_str().unwrap(),
            clf(v["ts"].as_str().unwrap()),
            v.get("method").and_then(Value::as_str).unwrap_or("POST"),
            v.get("endpoint")
                .and_then(Value::as_str)
                .unwrap_or("/batch"),
            status,
            v["latency_ms"].as_f64().unwrap() / 1000.0,
        );
    }
    let pj = dir.path().join("gen.jsonl");
    std::fs::write(&pj, &json).unwrap();
    let pn = write(dir.path(), "access.log", &nginx);
    let fmt =
        r#"$host $remote_addr - [$time_local] "$request" $status $body_bytes_sent $request_time"#;
    let a = report(&[pj.to_str().unwrap()]);
    let b = report(&[
        "--format",
        "nginx",
        "--log-format",
        fmt,
        pn.to_str().unwrap(),
    ]);
    assert_eq!(a["events"]["accepted"], b["events"]["accepted"]);
    for (name, sa) in a["services"].as_object().unwrap() {
        let sb = &b["services"][name];
        assert_eq!(sa["requests"], sb["requests"], "{name}");
        assert_eq!(sa["errors"], sb["errors"], "{name}");
        for q in ["p50", "p95", "p99"] {
            let (x, y) = (
                sa["latency_ms"][q].as_f64().unwrap(),
                sb["latency_ms"][q].as_f64().unwrap(),
            );
            assert!((x - y).abs() <= 0.5 + x * 0.01, "{name} {q}: {x} vs {y}");
        }
    }
    // A layout with no service needs --service, and says so.
    fails_with(
        &["replay", "--format", "nginx", pn.to_str().unwrap()],
        "give --service NAME",
    );
    // Lines that do not follow the layout are counted, not fatal.
    let r = report(&[
        "--format",
        "nginx",
        "--service",
        "web",
        pn.to_str().unwrap(),
    ]);
    assert_eq!(r["events"]["accepted"], 0);
    assert_eq!(
        reason(&r, "format_mismatch"),
        a["events"]["accepted"].as_u64().unwrap()
    );
}

/// `slate gen --format F` → `slate replay --format F` gives the report of
/// the same events in slate's JSON: counts equal, quantiles within the
/// format's resolution — for every format gen writes.
#[test]
fn gen_in_text_layouts_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "gen",
        "--duration",
        "20m",
        "--rate",
        "4",
        "--seed",
        "3",
        "--incident",
        "errors:api-gateway:5m+5m:0.3",
    ];
    let json = ok(&slate(&common)).stdout.clone();
    let pj = dir.path().join("gen.jsonl");
    std::fs::write(&pj, &json).unwrap();
    let base = report(&["--slo", "fixtures/service-slos.yml", pj.to_str().unwrap()]);
    for (format, layout, tolerance_ms) in [
        (
            "nginx",
            r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent $host $request_time"#,
            0.5,
        ),
        ("apache", r#"%v %h %l %u %t "%r" %>s %b %D"#, 0.001),
        ("envoy", "default", 1.0),
        ("envoy", "istio", 1.0),
        ("haproxy", "", 1.0),
        ("alb", "", 0.001),
        ("elb", "", 0.001),
        ("w3c", "", 1.0),
        ("nginx-json", "", 0.5),
        ("envoy-json", "", 1.0),
        ("ecs", "", 0.001),
        ("traefik", "", 0.001),
        ("caddy", "", 0.001),
    ] {
        let mut args = common.to_vec();
        args.extend(["--format", format]);
        if !layout.is_empty() {
            args.extend(["--log-format", layout]);
        }
        let text = ok(&slate(&args)).stdout.clone();
        let pt = dir.path().join(format!("gen.{format}.log"));
        std::fs::write(&pt, &text).unwrap();
        let mut replay_args = vec!["--slo", "fixtures/service-slos.yml", "--format", format];
        if !layout.is_empty() {
            replay_args.extend(["--log-format", layout]);
        }
        replay_args.push(pt.to_str().unwrap());
        let r = report(&replay_args);
        assert_eq!(
            r["events"]["accepted"], base["events"]["accepted"],
            "{format}"
        );
        assert_eq!(r["events"]["rejected"], 0, "{format}");
        for (name, s) in base["services"].as_object().unwrap() {
            let t = &r["services"][name];
            assert_eq!(
                (&s["requests"], &s["errors"]),
                (&t["requests"], &t["errors"]),
                "{format} {name}"
            );
            for q in ["p50", "p95", "p99"] {
                let (x, y) = (
                    s["latency_ms"][q].as_f64().unwrap(),
                    t["latency_ms"][q].as_f64().unwrap(),
                );
                assert!(
                    (x - y).abs() <= tolerance_ms + x * 0.01,
                    "{format} {name} {q}: {x} vs {y}"
                );
            }
        }
    }
}

#[test]
fn alb_logs_replay() {
    let dir = tempfile::tempdir().unwrap();
    let line = |t: &str, times: &str, code: u16| {
        format!(
            r#"https {t} app/lb/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 {times} {code} {code} 34 366 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/shop/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "www.example.com" "-" 0 {t} "forward" "-" "-" "10.0.0.1:80" "{code}" "-" "-""#
        )
    };
    let text = [
        line("2026-11-01T00:00:00.100000Z", "0.001 0.020 0.000", 200),
        line("2026-11-01T00:00:01.100000Z", "-1 -1 -1", 502),
        line("2026-11-01T00:00:02.100000Z", "0.001 0.040 0.001", 200),
    ]
    .join("\n");
    let input = write(dir.path(), "alb.log", &text);
    let r = report(&["--format", "alb", input.to_str().unwrap()]);
    let s = &r["services"]["shop"];
    assert_eq!(
        (s["requests"].as_u64(), s["errors"].as_u64()),
        (Some(3), Some(1))
    );
    // The request that reached no target has no latency: p99 is the 42 ms one.
    let p99 = s["latency_ms"]["p99"].as_f64().unwrap();
    assert!((p99 - 42.0).abs() <= 0.42, "{p99}");
}

#[test]
fn haproxy_logs_replay_in_their_zone() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        r#"Feb  6 12:14:14 lb haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1""#,
        r#"Feb  6 12:14:15 lb haproxy[14389]: 10.0.1.2:33318 [06/Feb/2009:12:14:15.001] http-in static/srv1 9/0/-1/-1/-1 503 0 - - sC-- 1/1/1/1/0 0/0 {1wt.eu} {} "GET / HTTP/1.1""#,
    ]
    .join("\n");
    let input = write(dir.path(), "haproxy.log", &text);
    let r = report(&[
        "--format",
        "haproxy",
        "--timezone",
        "+01:00",
        input.to_str().unwrap(),
    ]);
    assert_eq!(r["span"]["start"], "2009-02-06T11:14:14.655Z");
    let s = &r["services"]["static"];
    assert_eq!(
        (s["requests"].as_u64(), s["errors"].as_u64()),
        (Some(2), Some(1))
    );
    // A zone name follows daylight saving: Paris was UTC+1 in February.
    let paris = report(&[
        "--format",
        "haproxy",
        "--timezone",
        "Europe/Paris",
        input.to_str().unwrap(),
    ]);
    assert_eq!(paris["span"]["start"], "2009-02-06T11:14:14.655Z");
    fails_with(
        &[
            "replay",
            "--format",
            "haproxy",
            "--timezone",
            "Mars/Olympus",
            input.to_str().unwrap(),
        ],
        "a zone name such as Europe/Paris",
    );
}

/// IIS restarts write a new `#Fields:` header mid-file; comment lines are
/// not records; the header in force reaches every chunk (this file is
/// cut in two 1-MiB chunks, and the second starts after the new header).
#[test]
fn w3c_headers_repeat_mid_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: 2026-11-01 00:00:00\n#Fields: date time s-sitename cs-method cs-uri-stem sc-status time-taken\n");
    let mut expected_errors = 0;
    for i in 0..30_000u32 {
        if i == 15_000 {
            // A restart: new header, columns in another order, and a comment.
            text += "#Software: Microsoft Internet Information Services 10.0\n#Fields: date time sc-status time-taken s-sitename\n";
        }
        let status = if i % 50 == 0 { 500 } else { 200 };
        expected_errors += (status == 500) as u64;
        let t = at(i / 10);
        let (date, time) = (&t[..10], &t[11..19]);
        if i < 15_000 {
            text += &format!(
                "{date} {time} W3SVC1 GET /default.htm {status} {}\n",
                10 + i % 90
            );
        } else {
            text += &format!("{date} {time} {status} {} W3SVC1\n", 10 + i % 90);
        }
    }
    let input = write(dir.path(), "u_ex261101.log", &text);
    assert!(text.len() > 1 << 20);
    let r = report(&["--format", "w3c", "--threads", "2", input.to_str().unwrap()]);
    assert_eq!(r["events"]["accepted"], 30_000, "{}", r["events"]);
    assert_eq!(r["events"]["rejected"], 0);
    assert_eq!(r["services"]["W3SVC1"]["errors"], expected_errors);
    let p99 = r["services"]["W3SVC1"]["latency_ms"]["p99"]
        .as_f64()
        .unwrap();
    assert!((p99 - 99.0).abs() <= 1.0, "{p99}");
}

#[test]
fn auto_says_what_it_picked_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "gen",
        "--duration",
        "5m",
        "--format",
        "nginx",
        "--log-format",
        "combined",
    ];
    let log = ok(&slate(&args)).stdout.clone();
    let input = write_bytes(dir.path(), "access.log", &log);
    let o = ok(&slate(&[
        "replay",
        "--format",
        "auto",
        "--service",
        "web",
        "-o",
        "json",
        input.to_str().unwrap(),
    ]))
    .clone();
    assert!(
        stderr(&o).contains("picked nginx (combined)"),
        "{}",
        stderr(&o)
    );
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["events"]["rejected"], 0);
    assert!(r["services"]["web"]["requests"].as_u64().unwrap() > 1000);

    let o = ok(&slate(&[
        "check",
        "--format",
        "auto",
        "fixtures/incidents.jsonl.gz",
    ]))
    .clone();
    assert!(stderr(&o).contains("picked json"), "{}", stderr(&o));

    let garbage = write(dir.path(), "notes.txt", "hello\nworld\n");
    fails_with(
        &["replay", "--format", "auto", garbage.to_str().unwrap()],
        "give --format",
    );
    let o = slate_stdin(&["replay", "--format", "auto", "-"], b"{}\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot look ahead in stdin"),
        "{}",
        stderr(&o)
    );
}

/// `input.service_map`: the first rule that matches the host (the service
/// the format gives) and/or the path prefix names the service.
#[test]
fn service_map_names_services_by_host_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "slate.yml",
        "input:\n  service_map:\n    - {path: /v1/users, service: users}\n    - {host: '*.shop.example', service: shop}\n",
    );
    let nginx = [
        r#"eu.shop.example [24/Nov/2026:10:00:00 +0000] "GET /cart HTTP/1.1" 200 0.010"#,
        r#"us.shop.example [24/Nov/2026:10:00:01 +0000] "GET /v1/users/7 HTTP/1.1" 500 0.020"#,
        r#"blog.example [24/Nov/2026:10:00:02 +0000] "GET / HTTP/1.1" 200 0.030"#,
    ]
    .join("\n");
    let input = write(dir.path(), "access.log", &nginx);
    let r = report(&[
        "--config",
        cfg.to_str().unwrap(),
        "--format",
        "nginx",
        "--log-format",
        r#"$host [$time_local] "$request" $status $request_time"#,
        input.to_str().unwrap(),
    ]);
    let s = r["services"].as_object().unwrap();
    assert_eq!(s["shop"]["requests"], 1);
    assert_eq!(s["users"]["errors"], 1, "the path rule comes first");
    assert_eq!(s["blog.example"]["requests"], 1, "no rule: the host stays");

    let json = [
        line(&at(0), "api", 200, 1.0)
            .replace(r#""status""#, r#""endpoint":"/v1/users/1","status""#),
        line(&at(1), "api", 200, 1.0).replace(r#""status""#, r#""endpoint":"/v1/orders","status""#),
    ]
    .join("\n");
    let input = write(dir.path(), "events.jsonl", &json);
    let r = report(&["--config", cfg.to_str().unwrap(), input.to_str().unwrap()]);
    assert_eq!(r["services"]["users"]["requests"], 1);
    assert_eq!(r["services"]["api"]["requests"], 1);
}

#[test]
fn check_validates_a_gate_policy_with_lines_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "gate.yml",
        "deploy_enabled: true\nchecks:\n  - service: api-gateway\n    check: error_budget_remaining > 0.2\n    action: block_deploy\n",
    );
    let o = ok(&slate(&["check", "--policy", good.to_str().unwrap()])).clone();
    assert!(stdout(&o).contains("1 checks"), "{}", stdout(&o));
    let bad = write(
        dir.path(),
        "bad.yml",
        "checks:\n  - service: api-gateway\n    check: error_budget_remaning > 0.2\n    action: block\n",
    );
    let o = slate(&["check", "--policy", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("bad.yml:3: `checks.check`: `error_budget_remaning` is not a gate metric")
            && err.contains("did you mean `error_budget_remaining`?"),
        "{err}"
    );
    assert!(
        err.contains("bad.yml:4: `checks.action`: `block` is not an action"),
        "{err}"
    );
}

#[test]
fn gen_follow_sends_events_as_the_clock_reaches_them() {
    let now_us = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64
    };
    let before = now_us();
    let o = ok(&slate(&[
        "gen",
        "--follow",
        "--duration",
        "2s",
        "--rate",
        "20",
        "--services",
        "2",
    ]))
    .clone();
    let after = now_us();
    let ts: Vec<i64> = stdout(&o)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            slate::model::parse_rfc3339(v["ts"].as_str().unwrap().as_bytes()).unwrap()
        })
        .collect();
    // About 2 s × 20/s × 2 services, every one dated within the run, and
    // the run lasted as long as the traffic (it waited for the clock).
    assert!(ts.len() > 40 && ts.len() < 160, "{}", ts.len());
    assert!(
        ts.iter().all(|&t| t >= before - 1_000 && t <= after),
        "{before}..{after}"
    );
    assert!(after - before >= 1_500_000, "took {} µs", after - before);
    assert!(ts.iter().max().unwrap() - ts.iter().min().unwrap() > 1_000_000);
    // A start in the past would send everything at once.
    let e = slate(&["gen", "--follow", "--start", "2020-01-01T00:00:00Z"]);
    assert_eq!(e.status.code(), Some(2));
    assert!(stderr(&e).contains("--follow sends events as the clock reaches them"));
}

/// Generated traffic in every envelope (`slate gen --envelope E`) reads
/// back to the report of the same lines bare: the same records accepted
/// and rejected (malformed lines included), the same services, counts and
/// quantiles; `--envelope auto --format auto` finds the envelope and says
/// so. CRI splits one line in five into partials; OTLP holds eight
/// records a request.
#[test]
fn every_envelope_reads_back_to_the_bare_report() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["json", "haproxy"] {
        let gen = |envelope: &str, out: &Path| {
            ok(&slate(&[
                "gen",
                "--services",
                "3",
                "--duration",
                "40m",
                "--rate",
                "3",
                "--seed",
                "5",
                "--format",
                format,
                "--incident",
                "errors:api-gateway:5m+5m:0.4",
                "--incident",
                "malformed:user-service:10m+10m:0.2",
                "--envelope",
                envelope,
                "--out",
                out.to_str().unwrap(),
            ]));
        };
        let bare = dir.path().join(format!("bare.{format}"));
        gen("none", &bare);
        let want = report(&["--format", format, bare.to_str().unwrap()]);
        assert!(want["events"]["accepted"].as_u64().unwrap() > 10_000);
        assert!(want["events"]["rejected"].as_u64().unwrap() > 50);
        for envelope in [
            "docker",
            "cri",
            "filebeat",
            "vector",
            "fluent-bit",
            "otlp-json",
            "syslog",
        ] {
            let file = dir.path().join(format!("{envelope}.{format}"));
            gen(envelope, &file);
            let file = file.to_str().unwrap();
            let got = report(&["--envelope", envelope, "--format", format, file]);
            assert_eq!(got["events"], want["events"], "{envelope} {format}");
            assert_eq!(got["services"], want["services"], "{envelope} {format}");
            assert_eq!(got["span"], want["span"], "{envelope} {format}");
            let o = slate(&[
                "replay",
                "-o",
                "json",
                "--no-progress",
                "--envelope",
                "auto",
                "--format",
                "auto",
                file,
            ]);
            let said = stderr(ok(&o));
            assert!(
                said.contains(&format!("--envelope auto: found {envelope};")),
                "{said}"
            );
            let auto: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(auto["events"], want["events"], "auto {envelope} {format}");
            // `slate check` says what it read the lines with.
            let o = slate(&[
                "check",
                "-o",
                "json",
                "--envelope",
                "auto",
                "--format",
                "auto",
                file,
            ]);
            let checked: Value = serde_json::from_slice(&ok(&o).stdout).unwrap();
            assert_eq!(checked["input"]["envelope"], envelope, "{checked}");
            assert_eq!(checked["input"]["format"], format, "{checked}");
        }
    }
}

/// `--format envoy` without `--log-format` reads Istio's layout as well
/// as Envoy's default, and says which it used; a layout given is used as
/// given (Istio's lines then do not read as the default).
#[test]
fn envoy_without_a_layout_finds_istio_or_the_default() {
    let dir = tempfile::tempdir().unwrap();
    for layout in ["istio", "default"] {
        let file = dir.path().join(format!("{layout}.log"));
        let f = file.to_str().unwrap();
        ok(&slate(&[
            "gen",
            "--format",
            "envoy",
            "--log-format",
            layout,
            "--duration",
            "20m",
            "--out",
            f,
        ]));
        let lines = std::fs::read_to_string(&file).unwrap().lines().count() as u64;
        let o = slate(&[
            "replay",
            "-o",
            "json",
            "--no-progress",
            "--format",
            "envoy",
            f,
        ]);
        let said = stderr(ok(&o));
        assert!(
            said.contains(&format!("--format envoy: picked envoy ({layout})")),
            "{said}"
        );
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["events"]["accepted"], lines, "{layout}: {}", r["events"]);
    }
    let istio = dir.path().join("istio.log");
    let r = report(&[
        "--format",
        "envoy",
        "--log-format",
        "default",
        "--service",
        "x",
        istio.to_str().unwrap(),
    ]);
    assert_eq!(r["events"]["accepted"], 0, "{}", r["events"]);
}
