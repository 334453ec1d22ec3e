//! `slate run` (the real binary) against a real Kafka-protocol broker:
//! Tansu, started here in memory on a free port. These need the `tansu`
//! and `promtool` programs, so plain `cargo test` leaves them out
//! (`#[ignore]`); `scripts/test` installs both and runs them with
//! `--ignored`, where a missing program is a failure, never a skip.
//!
//! - a million events across three partitions: every service's counters
//!   equal what was produced, and `promtool check metrics` finds nothing;
//! - SIGTERM mid-stream, then a restart: every event counted once;
//! - the broker unreachable for 30 s (a loopback proxy this test
//!   controls, which also slows the stream so that the cut falls in the
//!   middle): nothing lost or doubled, `/readyz` not ready, then ready.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use common::{free_port, get, sum, try_get, wait_for, KillOnDrop, INGESTED};

fn program(env: &str, name: &str) -> PathBuf {
    match std::env::var_os(env) {
        Some(p) => PathBuf::from(p),
        None => {
            panic!("{env} is not set: run these tests through scripts/test, which installs {name}")
        }
    }
}

struct Tansu {
    _proc: KillOnDrop,
    port: u16,
}

impl Tansu {
    /// A broker on a free port that advertises `advertised` (its own port
    /// unless a proxy stands in front).
    fn start(port: u16, advertised: u16) -> Tansu {
        Tansu::start_in(port, advertised, None)
    }

    /// A broker on its sqlite engine, its database in `dir` (DESIGN §8:
    /// what resumes from a stored offset needs it).
    fn sqlite(port: u16, dir: &Path) -> Tansu {
        Tansu::start_in(port, port, Some(dir))
    }

    fn start_in(port: u16, advertised: u16, sqlite_dir: Option<&Path>) -> Tansu {
        let tansu = program("SLATE_TANSU", "tansu");
        let log = File::create(std::env::temp_dir().join(format!("tansu-{port}.log"))).unwrap();
        let mut cmd = Command::new(&tansu);
        cmd.args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{port}"),
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{advertised}"),
            "--storage-engine",
        ]);
        match sqlite_dir {
            // A path relative to the working directory.
            Some(dir) => cmd.arg("sqlite://tansu.db").current_dir(dir),
            None => cmd.arg("memory://tansu/"),
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", tansu.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port}");
            thread::sleep(Duration::from_millis(100));
        }
        Tansu {
            _proc: KillOnDrop(child),
            port,
        }
    }

    fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(program("SLATE_TANSU", "tansu"))
            .args([
                "topic",
                "create",
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
                "--partitions",
                &partitions.to_string(),
                name,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "topic create: {out:?}");
    }
}

fn slate_bin() -> &'static str {
    env!("CARGO_BIN_EXE_slate")
}

/// A time `secs` ago, for `--start`.
fn ago(secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    slate::model::format_rfc3339((now - secs) * 1_000_000)
}

/// The `slate gen` flags of a test's traffic: ten services, dated over
/// the last hour.
fn gen_args(events: u64, start: &str) -> Vec<String> {
    let secs = 3000.0;
    // batch-processor sends a tenth of the others' rate: 9.1 full shares.
    let rate = events as f64 / secs / 9.1;
    vec![
        "gen".into(),
        "--services".into(),
        "10".into(),
        "--rate".into(),
        format!("{rate}"),
        "--duration".into(),
        "50m".into(),
        "--start".into(),
        start.into(),
        "--seed".into(),
        "11".into(),
        "--incident".into(),
        "errors:user-service:10m+5m:0.2".into(),
    ]
}

/// Per service: (events, errors), counted from the generated lines
/// directly (serde_json: `status >= 500` or `success: false`), not with
/// slate's decoder.
fn expected(args: &[String], dir: &Path) -> (u64, BTreeMap<String, (u64, u64)>) {
    let file = dir.join("expected.jsonl");
    let out = Command::new(slate_bin())
        .args(args)
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "gen --out: {out:?}");
    let mut per: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut n = 0;
    for line in BufReader::new(File::open(&file).unwrap()).lines() {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let e = per
            .entry(v["service"].as_str().unwrap().to_string())
            .or_default();
        e.0 += 1;
        // Jobs say `success`; requests say `status`.
        let failed = match v["status"].as_u64() {
            Some(status) => status >= 500,
            None => v["success"] == Value::Bool(false),
        };
        e.1 += failed as u64;
        n += 1;
    }
    (n, per)
}

fn produce(args: &[String], brokers: &str, topic: &str) -> Child {
    Command::new(slate_bin())
        .args(args)
        .args(["--kafka", brokers, "--topic", topic])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn produced(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "gen --kafka: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Slate {
    proc: KillOnDrop,
    addr: SocketAddr,
    stderr: PathBuf,
}

impl Slate {
    fn start(brokers: &str, topic: &str, group: &str, dir: &Path, name: &str) -> Slate {
        Slate::start_with(brokers, topic, group, dir, name, &[])
    }

    /// With more flags (`--config FILE`, say).
    fn start_with(
        brokers: &str,
        topic: &str,
        group: &str,
        dir: &Path,
        name: &str,
        extra: &[&str],
    ) -> Slate {
        let port = free_port();
        let stderr = dir.join(format!("{name}.stderr"));
        // Each instance keeps its state in a dir of its own, by name (a
        // restart under the same name restores it), unless told another.
        let state = dir.join(format!("{name}.state"));
        let state_dir: &[&str] = if extra.contains(&"--state-dir") {
            &[]
        } else {
            &["--state-dir", state.to_str().unwrap()]
        };
        let child = Command::new(slate_bin())
            .args([
                "run",
                "--brokers",
                brokers,
                "--topic",
                topic,
                "--group",
                group,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--slo",
                concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/service-slos.yml"),
            ])
            .args(state_dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Slate {
            proc: KillOnDrop(child),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM; returns the exit status and what it said.
    fn terminate(mut self) -> (i32, String) {
        let pid = self.proc.0.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.proc.0.try_wait().unwrap() {
                return (status.code().unwrap_or(-1), self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "slate did not stop after SIGTERM:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// "N events applied" from slate's last words.
fn applied(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or_else(|| panic!("no `stopped:` line in\n{stderr}"));
    line.split("stopped: ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn requests(m: &BTreeMap<String, f64>, svc: &str) -> f64 {
    m.get(&format!(r#"slate_requests_total{{service="{svc}"}}"#))
        .copied()
        .unwrap_or(0.0)
}

/// Every service's counters equal what was produced.
fn assert_counters(m: &BTreeMap<String, f64>, want: &BTreeMap<String, (u64, u64)>) {
    for (svc, (events, errors)) in want {
        assert_eq!(requests(m, svc), *events as f64, "{svc}");
        assert_eq!(
            m[&format!(r#"slate_request_errors_total{{service="{svc}"}}"#)],
            *errors as f64,
            "{svc}"
        );
    }
}

fn api_requests(addr: SocketAddr) -> BTreeMap<String, u64> {
    let (status, body) = get(addr, "/api/v1/services");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, s)| (k.clone(), s["requests"].as_u64().unwrap()))
        .collect()
}

#[test]
#[ignore = "needs tansu and promtool: run by scripts/test"]
fn a_million_events_across_three_partitions_are_all_counted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tansu = Tansu::start(port, port);
    tansu.create_topic("million", 3);
    let args = gen_args(1_000_000, &ago(3300));
    let (n, want) = expected(&args, dir.path());
    assert!(n >= 990_000, "{n} events");
    let brokers = format!("127.0.0.1:{port}");
    produced(produce(&args, &brokers, "million"));

    let slate = Slate::start(&brokers, "million", "g-million", dir.path(), "slate");
    let m = wait_for(
        slate.addr,
        "a million events",
        Duration::from_secs(300),
        |m| m.get(INGESTED) == Some(&(n as f64)),
    );
    assert_counters(&m, &want);
    assert_eq!(sum(&m, "slate_events_rejected_total"), 0.0);
    // The API and the gauges follow at the next tick.
    thread::sleep(Duration::from_millis(1200));
    let api = api_requests(slate.addr);
    for (svc, (events, _)) in &want {
        assert_eq!(api[svc], *events, "{svc} in /api/v1/services");
    }

    // promtool reads a scrape taken after a tick and has nothing to say.
    let (_, text) = get(slate.addr, "/metrics");
    let mut promtool = Command::new(program("SLATE_PROMTOOL", "promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, _) = slate.terminate();
    assert_eq!(code, 0);
}

#[test]
#[ignore = "needs tansu: run by scripts/test"]
fn sigterm_mid_stream_then_a_restart_counts_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // It resumes from a stored offset: the sqlite engine (DESIGN §8).
    let tansu = Tansu::sqlite(port, dir.path());
    tansu.create_topic("restart", 3);
    let args = gen_args(600_000, &ago(3300));
    let (n, want) = expected(&args, dir.path());
    let brokers = format!("127.0.0.1:{port}");

    let first = Slate::start(&brokers, "restart", "g-restart", dir.path(), "first");
    wait_for(first.addr, "partitions", Duration::from_secs(120), |_| {
        try_get(first.addr, "/readyz").is_some_and(|(s, _)| s == 200)
    });
    // Produce while it consumes, and stop it a third of the way in.
    let gen = produce(&args, &brokers, "restart");
    wait_for(
        first.addr,
        "a third of the events",
        Duration::from_secs(120),
        |m| m.get(INGESTED).is_some_and(|&i| i >= n as f64 / 3.0),
    );
    let (code, said) = first.terminate();
    assert_eq!(code, 0, "{said}");
    let before = applied(&said);
    assert!(before < n, "stopped mid-stream: {before} of {n}");
    produced(gen);

    let second = Slate::start(&brokers, "restart", "g-restart", dir.path(), "second");
    let m = wait_for(second.addr, "the rest", Duration::from_secs(300), |m| {
        m.get(INGESTED) == Some(&((n - before) as f64))
    });
    // The process counters of the two runs add up to each event once...
    for svc in want.keys() {
        assert!(requests(&m, svc) <= want[svc].0 as f64);
    }
    assert_eq!(before as f64 + sum(&m, "slate_requests_total"), n as f64);
    // ...and the state, rebuilt from Kafka, holds every event once.
    thread::sleep(Duration::from_millis(1200));
    let api = api_requests(second.addr);
    for (svc, (events, _)) in &want {
        assert_eq!(api[svc], *events, "{svc}: the state after the restart");
    }
    let (code, said) = second.terminate();
    assert_eq!(code, 0, "{said}");
    assert_eq!(applied(&said), n - before);
}

/// A TCP proxy on loopback that can be cut (connections dropped, new ones
/// closed at once) and that limits the broker-to-client rate.
struct Proxy {
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(port: u16, target: u16, bytes_per_sec: f64) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, cs) = (cut.clone(), conns.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut cs = cs.lock().unwrap();
                    cs.push(client.try_clone().unwrap());
                    cs.push(server.try_clone().unwrap());
                }
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    None,
                );
                pump(server, client, Some(bytes_per_sec));
            }
        });
        Proxy { cut, conns }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, rate: Option<f64>) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 16 << 10];
        let start = Instant::now();
        let mut total = 0f64;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            if let Some(rate) = rate {
                total += n as f64;
                let due = Duration::from_secs_f64(total / rate);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    thread::sleep(wait);
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

#[test]
#[ignore = "needs tansu: run by scripts/test"]
fn thirty_seconds_without_the_broker_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (port, front) = (free_port(), free_port());
    // Clients learn the proxy's address from the broker's metadata.
    let tansu = Tansu::start(port, front);
    // 8 MB/s: the stream takes about 20 s, so the cut falls mid-way.
    let proxy = Proxy::start(front, port, 8e6);
    tansu.create_topic("outage", 3);
    let args = gen_args(1_000_000, &ago(3300));
    let (n, want) = expected(&args, dir.path());
    let brokers = format!("127.0.0.1:{front}");
    produced(produce(&args, &brokers, "outage"));

    let slate = Slate::start(&brokers, "outage", "g-outage", dir.path(), "slate");
    wait_for(
        slate.addr,
        "a fifth of the events",
        Duration::from_secs(180),
        |m| m.get(INGESTED).is_some_and(|&i| i >= n as f64 / 5.0),
    );
    proxy.cut();
    let cut_at = Instant::now();
    let mut saw_not_ready = None;
    while cut_at.elapsed() < Duration::from_secs(30) {
        if let Some((503, body)) = try_get(slate.addr, "/readyz") {
            saw_not_ready.get_or_insert(body);
        }
        assert_eq!(get(slate.addr, "/healthz").0, 200, "alive throughout");
        thread::sleep(Duration::from_millis(250));
    }
    let during = sum(
        &common::samples(&get(slate.addr, "/metrics").1),
        "slate_requests_total",
    );
    proxy.restore();
    let not_ready = saw_not_ready.expect("/readyz never said not ready while the broker was away");
    assert!(not_ready.contains("not ready"), "{not_ready}");
    assert!(
        during < n as f64,
        "the cut fell mid-stream: {during} of {n}"
    );

    let m = wait_for(
        slate.addr,
        "every event after the outage",
        Duration::from_secs(300),
        |m| m.get(INGESTED) == Some(&(n as f64)),
    );
    assert_counters(&m, &want);
    let deadline = Instant::now() + Duration::from_secs(60);
    while try_get(slate.addr, "/readyz").is_none_or(|(s, _)| s != 200) {
        assert!(
            Instant::now() < deadline,
            "/readyz did not come back:\n{}",
            slate.stderr()
        );
        thread::sleep(Duration::from_millis(250));
    }
    let (code, said) = slate.terminate();
    assert_eq!(code, 0, "{said}");
    assert_eq!(applied(&said), n);
}

/// `slate replay` of the same lines, as a report.
fn replay_report(files: &[&Path]) -> Value {
    let slo = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/service-slos.yml");
    let out = Command::new(slate_bin())
        .args(["replay", "--no-progress", "-o", "json", "--slo", slo])
        .args(files)
        .output()
        .unwrap();
    assert!(out.status.success(), "replay: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The running slate's `/api/v1/services` holds what the replay report
/// `want` holds: per service requests and errors, per occurrence SLO good
/// and total exactly, per timeslice SLO the bad slices exactly (and as
/// many slices as closed since), the alert episodes that ended a quarter
/// of an hour before the last event, and the coverage of the span.
/// Returns how many episodes were compared.
fn assert_holds_replay(slate: &Slate, want: &Value) -> usize {
    assert_holds(slate, want, want)
}

/// As [`assert_holds_replay`], with the counts (requests, errors, good and
/// total of occurrence SLOs, coverage) from `want` and what only moves
/// with the windows (bad slices of timeslice SLOs, alert episodes) from
/// `judged`: for events delivered more than an hour after their slice
/// closed (DESIGN §5: they count for every occurrence SLO and in the
/// period; a slice is judged again only within an hour of its close, and
/// windows that moved past them are unaffected).
fn assert_holds(slate: &Slate, want: &Value, judged: &Value) -> usize {
    let (_, body) = get(slate.addr, "/api/v1/services");
    let got: Value = serde_json::from_str(&body).unwrap();
    assert_services_hold(&got, want, judged)
}

/// As [`assert_holds`], of a `services` object (one instance's, or the
/// union of several).
fn assert_services_hold(got: &Value, want: &Value, judged: &Value) -> usize {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let parse = |v: &Value| slate::model::parse_rfc3339(v.as_str().unwrap().as_bytes()).unwrap();
    let last = parse(&judged["span"]["end"]);
    let first = parse(&want["span"]["start"]);
    assert_eq!(
        want["events"]["accepted"].as_u64().unwrap(),
        want["services"]
            .as_object()
            .unwrap()
            .values()
            .map(|s| s["requests"].as_u64().unwrap())
            .sum::<u64>()
    );
    // The slices closed between the last event and now.
    let minutes_since = ((now - last) / 60_000_000 + 2) as u64;
    let mut episodes = 0;
    for (svc, w) in want["services"].as_object().unwrap() {
        let g = &got[svc];
        assert_eq!(g["requests"], w["requests"], "{svc} requests");
        assert_eq!(g["errors"], w["errors"], "{svc} errors");
        for (name, ws) in w["slos"].as_object().unwrap() {
            let gs = &g["slos"][name];
            let (wg, wt) = (ws["good"].as_u64().unwrap(), ws["total"].as_u64().unwrap());
            let (gg, gt) = (gs["good"].as_u64().unwrap(), gs["total"].as_u64().unwrap());
            if name == "availability" || name == "freshness" {
                let js = &judged["services"][svc]["slos"][name];
                let (jg, jt) = (js["good"].as_u64().unwrap(), js["total"].as_u64().unwrap());
                assert_eq!(gt - gg, jt - jg, "{svc}/{name}: bad slices");
                assert!(
                    gt >= jt && gt - jt <= minutes_since,
                    "{svc}/{name}: {gt} slices live, {jt} in the replay"
                );
            } else {
                assert_eq!((gg, gt), (wg, wt), "{svc}/{name}: good, total");
            }
            let coverage = gs["coverage"].as_f64().unwrap();
            let held = (now - first) as f64 / (30.0 * 86_400e6);
            assert!(
                (coverage - held).abs() < 0.01,
                "{svc}/{name}: coverage {coverage}, ten days are {held}"
            );
        }
        // The episodes that ended well before the end: the same.
        let ended = |a: &Value| {
            a["end"].as_str().is_some_and(|e| {
                slate::model::parse_rfc3339(e.as_bytes()).unwrap() < last - 15 * 60_000_000
            })
        };
        let key = |a: &Value| {
            format!(
                "{} {} {} {} {}",
                a["slo"], a["severity"], a["long_window"], a["start"], a["end"]
            )
        };
        let episodes_of = |s: &Value| {
            let mut v: Vec<String> = s["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| ended(a))
                .map(key)
                .collect();
            v.sort();
            v
        };
        let (wa, ga) = (episodes_of(&judged["services"][svc]), episodes_of(g));
        assert_eq!(ga, wa, "{svc}: alert episodes");
        episodes += wa.len();
    }
    episodes
}

/// Waits until `/readyz` answers 200; returns the not-ready answers seen
/// on the way (each distinct one once).
fn wait_ready(slate: &Slate, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<String> = Vec::new();
    loop {
        match try_get(slate.addr, "/readyz") {
            Some((200, _)) => return seen,
            Some((_, body)) => {
                let head: String = body.chars().take(60).collect();
                if !seen.iter().any(|s| s.starts_with(&head)) {
                    seen.push(body);
                }
            }
            None => {}
        }
        assert!(
            Instant::now() < deadline,
            "not ready after {timeout:?}; said {seen:?}\n{}",
            slate.stderr()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// DESIGN §8: a first start on a topic that holds days of events reads
/// them in event time, as a replay does. Ten days of keyed traffic with
/// two error incidents on a 3-partition topic (Tansu's sqlite engine);
/// once slate is ready, `/api/v1/services` holds what `slate replay` of
/// the same lines holds: per service requests and errors, per occurrence
/// SLO good and total exactly, per timeslice SLO the bad slices exactly,
/// the alert episodes that ended, and the coverage of ten days.
#[test]
#[ignore = "needs tansu: run by scripts/test"]
fn a_first_start_on_ten_days_of_history_holds_what_a_replay_holds() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tansu = Tansu::sqlite(port, dir.path());
    tansu.create_topic("history", 3);
    let days = 10;
    let args = gen_over(
        300_000.0,
        days as f64 * 86_400.0,
        &ago(days * 86_400 + 120),
        "5",
        &[
            "errors:user-service:4d+3h:0.2",
            "errors:api-gateway:8d+40m:0.5",
        ],
    );
    let file = dir.path().join("history.jsonl");
    gen_file(&args, &file);
    let brokers = format!("127.0.0.1:{}", tansu.port);
    produce_file(&brokers, "history", &file);
    let want = replay_report(&[&file]);

    let slate = Slate::start(&brokers, "history", "g-history", dir.path(), "slate");
    let said = wait_ready(&slate, Duration::from_secs(300));
    assert!(
        said.iter()
            .any(|s| s.contains("catching up: ") && s.contains("behind the clock")),
        "/readyz said how far the catch-up had come: {said:?}"
    );
    let episodes = assert_holds_replay(&slate, &want);
    assert!(
        episodes >= 2,
        "the incidents fire alerts: {episodes} episodes"
    );
    let (_, text) = get(slate.addr, "/metrics");
    let m = common::samples(&text);
    assert_eq!(sum(&m, "slate_catching_up"), 0.0);
    assert_eq!(sum(&m, "slate_events_rejected_total"), 0.0);
    let (code, _) = slate.terminate();
    assert_eq!(code, 0);
}

/// `slate gen` flags for `events` events of ten services over `duration`
/// starting `start`, with `incidents`.
fn gen_over(
    events: f64,
    duration_s: f64,
    start: &str,
    seed: &str,
    incidents: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "gen",
        "--services",
        "10",
        "--rate",
        &format!("{}", events / duration_s / 9.1),
        "--duration",
        &format!("{}s", duration_s as u64),
        "--start",
        start,
        "--seed",
        seed,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in incidents {
        args.push("--incident".into());
        args.push(i.to_string());
    }
    args
}

/// Writes what `args` generates to `file`; returns how many lines. The
/// errors of its last availability slice (the minute of its last line)
/// are made successes: `slate replay` does not judge that slice, which
/// has not ended when the lines do, while a live slate closes it as time
/// passes; with no error in it, both count it up. Produce the file with
/// [`produce_file`].
fn gen_file(args: &[String], file: &Path) -> u64 {
    let out = Command::new(slate_bin())
        .args(args)
        .arg("--out")
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "gen --out: {out:?}");
    let text = std::fs::read_to_string(file).unwrap();
    // Each line's time and status, read once.
    let lines: Vec<(&str, i64, Option<u64>)> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let ts = slate::model::parse_rfc3339(v["ts"].as_str().unwrap().as_bytes()).unwrap();
            (l, ts, v["status"].as_u64())
        })
        .collect();
    let end = lines.iter().map(|&(_, ts, _)| ts).max().unwrap_or(0);
    let last_slice = end.div_euclid(60_000_000) * 60_000_000;
    let mut quiet = String::with_capacity(text.len());
    for &(l, ts, status) in &lines {
        match status {
            Some(s) if s >= 500 && ts >= last_slice => {
                quiet.push_str(&l.replacen(&format!("\"status\":{s}"), "\"status\":200", 1));
            }
            _ => quiet.push_str(l),
        }
        quiet.push('\n');
    }
    std::fs::write(file, quiet).unwrap();
    lines.len() as u64
}

/// Produces the lines of `file`, keyed by service.
fn produce_file(brokers: &str, topic: &str, file: &Path) {
    let lines: Vec<String> = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    produce_lines(brokers, topic, &lines);
}

/// A restart after two hours down: the backlog produced meanwhile is read
/// in event time, not judged against the wall clock (measured before:
/// half of such a backlog was `too_late`). After it, the state holds
/// what `slate replay` of both days holds, and the process counters of
/// the second run count the backlog alone.
#[test]
#[ignore = "needs tansu: run by scripts/test"]
fn a_two_hour_backlog_after_a_restart_is_read_in_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tansu = Tansu::sqlite(port, dir.path());
    tansu.create_topic("backlog", 3);
    let brokers = format!("127.0.0.1:{port}");
    let before = gen_over(
        120_000.0,
        46.0 * 3600.0,
        &ago(48 * 3600),
        "21",
        &["errors:api-gateway:20h+1h:0.3"],
    );
    let first_file = dir.path().join("before.jsonl");
    gen_file(&before, &first_file);
    produce_file(&brokers, "backlog", &first_file);
    // A state dir each: this is the restart that has lost its state (a new
    // volume, say), which reads the topic again from its history. With the
    // state kept, the first run's wall-clock ticks would have moved past
    // the backlog's times, which are dated before them here (a test cannot
    // wait two hours): then the backlog is late data, not history. Restarts
    // that keep the state are tested below (SIGKILLs during a catch-up).
    let first = Slate::start(&brokers, "backlog", "g-backlog", dir.path(), "first");
    wait_ready(&first, Duration::from_secs(300));
    let (code, said) = first.terminate();
    assert_eq!(code, 0, "{said}");

    // Two hours of traffic, an incident among it, while slate is away.
    let backlog = gen_over(
        60_000.0,
        2.0 * 3600.0 - 60.0,
        &ago(2 * 3600),
        "22",
        &["errors:user-service:40m+30m:0.3"],
    );
    let backlog_file = dir.path().join("backlog.jsonl");
    let n = gen_file(&backlog, &backlog_file);
    produce_file(&brokers, "backlog", &backlog_file);

    let second = Slate::start(&brokers, "backlog", "g-backlog", dir.path(), "second");
    wait_ready(&second, Duration::from_secs(300));
    let want = replay_report(&[&first_file, &backlog_file]);
    assert_eq!(want["events"]["rejected"], 0);
    let episodes = assert_holds_replay(&second, &want);
    assert!(
        episodes >= 2,
        "both incidents fire alerts: {episodes} episodes"
    );
    let (_, text) = get(second.addr, "/metrics");
    let m = common::samples(&text);
    assert_eq!(
        sum(&m, "slate_events_rejected_total"),
        0.0,
        "nothing too late"
    );
    assert_eq!(
        sum(&m, "slate_requests_total"),
        n as f64,
        "the backlog, counted once"
    );
    let (code, said) = second.terminate();
    assert_eq!(code, 0, "{said}");
}

/// A restart that keeps its state, after a backlog dated after the first
/// run stopped (the two-hour case above, at the scale a test can wait
/// for): the first run catches up on two days and stops; two minutes of
/// traffic with an error burst is produced, dated after the stop; the
/// restart restores the state, goes on from its offsets, and reads the
/// backlog in event time. Then the state holds what `slate replay` of
/// both holds, nothing is too late, and the backlog alone moves the
/// process counters. Then events delivered three hours late, live: counted
/// as a replay of all of it counts them, judged as late data is (§5).
#[test]
#[ignore = "needs tansu: run by scripts/test"]
fn a_backlog_after_a_restart_that_keeps_its_state_is_read_in_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tansu = Tansu::sqlite(port, dir.path());
    tansu.create_topic("kept", 3);
    let brokers = format!("127.0.0.1:{port}");
    let before = gen_over(
        80_000.0,
        47.0 * 3600.0,
        &ago(48 * 3600),
        "31",
        &["errors:api-gateway:20h+1h:0.3"],
    );
    let first_file = dir.path().join("before.jsonl");
    gen_file(&before, &first_file);
    produce_file(&brokers, "kept", &first_file);
    let first = Slate::start(&brokers, "kept", "g-kept", dir.path(), "kept");
    wait_ready(&first, Duration::from_secs(300));
    let (code, said_first) = first.terminate();
    assert_eq!(code, 0, "{said_first}");
    let stopped = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;

    // Two minutes of traffic dated from 5 s after the stop, produced once
    // it is all in the past (its last event 125 s after the stop; its
    // error burst ends before the minute of that event, whose errors
    // `gen_file` makes successes).
    while SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
        <= stopped + 130_000_000
    {
        thread::sleep(Duration::from_millis(500));
    }
    let backlog = gen_over(
        12_000.0,
        120.0,
        &slate::model::format_rfc3339(stopped + 5_000_000),
        "32",
        &["errors:user-service:10s+30s:0.6"],
    );
    let backlog_file = dir.path().join("backlog.jsonl");
    let n = gen_file(&backlog, &backlog_file);
    produce_file(&brokers, "kept", &backlog_file);

    let second = Slate::start(&brokers, "kept", "g-kept", dir.path(), "kept");
    wait_ready(&second, Duration::from_secs(300));
    let said = second.stderr();
    assert!(
        // Keyed by service, the ten services hash to two of the three
        // partitions: those two go on from the state's offsets.
        said.contains("slate: state: restored 10 service(s)")
            && said.contains("2 go on from the state's offsets"),
        "the restart restores its state and goes on from its offsets:\n{said}\nthe first run said:\n{said_first}"
    );
    let want = replay_report(&[&first_file, &backlog_file]);
    assert_eq!(want["events"]["rejected"], 0);
    let errors = |r: &Value| r["services"]["user-service"]["errors"].as_u64().unwrap();
    assert!(
        errors(&want) > errors(&replay_report(&[&first_file])) + 100,
        "the backlog holds an error burst"
    );
    assert_holds_replay(&second, &want);
    let (_, text) = get(second.addr, "/metrics");
    let m = common::samples(&text);
    assert_eq!(
        sum(&m, "slate_events_rejected_total"),
        0.0,
        "nothing too late"
    );
    assert_eq!(
        sum(&m, "slate_requests_total"),
        n as f64,
        "the backlog, counted once"
    );

    // Then, caught up and live: twenty minutes of events dated three hours
    // ago, with an error burst, delivered now (a shipper that was stuck).
    // They count in the period and for every occurrence SLO, as in a
    // replay of all three files; their slices closed more than an hour
    // ago and are not judged again, and the alert windows moved past
    // them (DESIGN §5): bad slices and episodes stay those of before.
    let late = gen_over(
        2_000.0,
        20.0 * 60.0,
        &ago(3 * 3600),
        "33",
        &["errors:api-gateway:5m+10m:0.5"],
    );
    let late_file = dir.path().join("late.jsonl");
    let late_n = gen_file(&late, &late_file);
    produce_file(&brokers, "kept", &late_file);
    common::wait_for(
        second.addr,
        "the late events",
        Duration::from_secs(60),
        |m| sum(m, "slate_requests_total") == (n + late_n) as f64,
    );
    thread::sleep(Duration::from_millis(1500));
    let with_late = replay_report(&[&first_file, &backlog_file, &late_file]);
    assert_eq!(with_late["events"]["rejected"], 0);
    let bad = |r: &Value| {
        let s = &r["services"]["api-gateway"]["slos"]["availability"];
        s["total"].as_u64().unwrap() - s["good"].as_u64().unwrap()
    };
    assert!(
        bad(&with_late) > bad(&want),
        "the late events hold an error burst that a replay in order judges"
    );
    assert_holds(&second, &with_late, &want);
    let m = common::samples(&get(second.addr, "/metrics").1);
    assert_eq!(
        sum(&m, "slate_events_rejected_total"),
        0.0,
        "three hours late is not too late"
    );
    let (code, said) = second.terminate();
    assert_eq!(code, 0, "{said}");
}

/// `kafka.instance_id` is librdkafka's `group.instance.id`: a SIGKILLed
/// instance restarted with the same id gets its partitions back at once,
/// not after the session timeout (45 s by default; measured on Tansu 0.6
/// by hand: ready 7.1 s after the restart with an id, 46.0 s without).
#[test]
#[ignore = "needs tansu: run by scripts/test"]
fn a_static_member_gets_its_partitions_back_at_once_after_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tansu = Tansu::start(port, port);
    tansu.create_topic("static", 3);
    let brokers = format!("127.0.0.1:{port}");
    let args = gen_over(3_000.0, 600.0, &ago(660), "31", &[]);
    produced(produce(&args, &brokers, "static"));
    let config = dir.path().join("slate.yml");
    std::fs::write(
        &config,
        "kafka:\n  instance_id: slate-0\n  properties:\n    session.timeout.ms: \"45000\"\n",
    )
    .unwrap();
    let flags = ["--config", config.to_str().unwrap()];
    let first = Slate::start_with(&brokers, "static", "g-static", dir.path(), "first", &flags);
    wait_ready(&first, Duration::from_secs(120));
    let mut first = first;
    first.proc.0.kill().unwrap();
    first.proc.0.wait().unwrap();
    let restarted = Instant::now();
    let second = Slate::start_with(&brokers, "static", "g-static", dir.path(), "second", &flags);
    wait_ready(&second, Duration::from_secs(120));
    let took = restarted.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "ready {took:?} after the restart: the session timeout (45 s) was waited out\n{}",
        second.stderr()
    );
    eprintln!("a static member restarted after SIGKILL was ready in {took:?}");
}

/// Waits until slate says its partitions are assigned.
fn wait_assigned(slate: &Slate, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !slate.stderr().contains("slate: kafka: assigned") {
        assert!(
            Instant::now() < deadline,
            "no assignment after {timeout:?}:\n{}",
            slate.stderr()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A sample without labels; it must be there.
fn one(m: &BTreeMap<String, f64>, name: &str) -> f64 {
    *m.get(name)
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

fn sigkill(mut slate: Slate) -> String {
    slate.proc.0.kill().unwrap();
    slate.proc.0.wait().unwrap();
    slate.stderr()
}

/// DESIGN §8a: a SIGKILL at any instant of a catch-up, again and again on
/// the same state dir, and the state once caught up is what `slate replay`
/// of the same lines holds: not one event lost or counted twice. Then a
/// SIGKILL with nothing new to read, and a truncated and a bit-flipped
/// snapshot on disk, each falling back to the one before it.
#[test]
#[ignore = "needs tansu: run by scripts/test"]
fn sigkills_during_a_catch_up_lose_nothing_and_count_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tansu = Tansu::sqlite(port, dir.path());
    tansu.create_topic("crash", 3);
    let brokers = format!("127.0.0.1:{port}");
    let days = 20;
    let args = gen_over(
        1_200_000.0,
        days as f64 * 86_400.0,
        &ago(days * 86_400 + 120),
        "41",
        &[
            "errors:user-service:6d+2h:0.3",
            "errors:api-gateway:15d+1h:0.5",
        ],
    );
    let file = dir.path().join("crash.jsonl");
    gen_file(&args, &file);
    produce_file(&brokers, "crash", &file);
    let want = replay_report(&[&file]);
    let state = dir.path().join("crash.state");
    // Passes every second, so that kills land before, between and during
    // them; a static member, so that each restart gets its partitions back
    // at once.
    let config = dir.path().join("slate.yml");
    std::fs::write(
        &config,
        "kafka:\n  instance_id: slate-crash\nstate:\n  interval: 1s\n",
    )
    .unwrap();
    let flags = [
        "--config",
        config.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let mut x = seed;
    let mut restored = 0;
    for run in 0..4 {
        let slate = Slate::start_with(
            &brokers,
            "crash",
            "g-crash",
            dir.path(),
            &format!("kill{run}"),
            &flags,
        );
        wait_assigned(&slate, Duration::from_secs(60));
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let after = Duration::from_millis(200 + x % 2500);
        thread::sleep(after);
        let ready = try_get(slate.addr, "/readyz").is_some_and(|(s, _)| s == 200);
        let said = sigkill(slate);
        restored += said.contains("slate: state: restored") as usize;
        eprintln!(
            "run {run}: SIGKILL {after:?} after the assignment (seed {seed}; ready: {ready})"
        );
    }
    assert!(
        restored >= 2,
        "later runs restored the state of earlier ones"
    );
    let slate = Slate::start_with(
        &brokers,
        "crash",
        "g-crash",
        dir.path(),
        "caught-up",
        &flags,
    );
    wait_ready(&slate, Duration::from_secs(300));
    let episodes = assert_holds_replay(&slate, &want);
    assert!(
        episodes >= 2,
        "the incidents fire alerts: {episodes} episodes"
    );
    // The pass after the catch-up reaches the gauges at the next tick.
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = common::samples(&get(slate.addr, "/metrics").1);
        if one(&m, "slate_state_last_snapshot_timestamp_seconds") > 0.0 {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no pass on disk after the catch-up:\n{}\n{}",
            slate.stderr(),
            m.iter()
                .filter(|(k, _)| k.starts_with("slate_state"))
                .map(|(k, v)| format!("{k} {v}\n"))
                .collect::<String>()
        );
        thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(sum(&m, "slate_events_rejected_total"), 0.0);
    assert_eq!(one(&m, "slate_state_snapshot_failures_total"), 0.0);
    assert!(one(&m, "slate_state_snapshot_bytes") > 0.0);
    assert!(one(&m, "slate_state_restore_duration_seconds") > 0.0);

    // Nothing new to read: killed once idle, it comes back the same.
    thread::sleep(Duration::from_secs(2));
    sigkill(slate);
    let slate = Slate::start_with(&brokers, "crash", "g-crash", dir.path(), "idle", &flags);
    wait_ready(&slate, Duration::from_secs(120));
    assert_holds_replay(&slate, &want);
    let (code, said) = slate.terminate();
    assert_eq!(code, 0, "{said}");

    // The newest file cut short, then the newest base bit-flipped: each
    // falls back to the state before it, says so, counts it, and reads
    // again from that state's offsets.
    let newest = |base_only: bool| {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&state)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_str().unwrap();
                n.ends_with(".state") && (!base_only || n.ends_with("-000000.state"))
            })
            .collect();
        files.sort();
        files.pop().unwrap()
    };
    for (k, base_only) in [(0, false), (1, true)] {
        let f = newest(base_only);
        let mut bytes = std::fs::read(&f).unwrap();
        if k == 0 {
            bytes.truncate(bytes.len() * 2 / 3);
        } else {
            let i = bytes.len() / 2;
            bytes[i] ^= 0x20;
        }
        std::fs::write(&f, &bytes).unwrap();
        let slate = Slate::start_with(
            &brokers,
            "crash",
            "g-crash",
            dir.path(),
            &format!("corrupt{k}"),
            &flags,
        );
        wait_ready(&slate, Duration::from_secs(300));
        let said = slate.stderr();
        assert!(
            said.contains(if k == 0 { "truncated" } else { "checksum" }) && said.contains("before"),
            "{said}"
        );
        assert_holds_replay(&slate, &want);
        let (_, text) = get(slate.addr, "/metrics");
        let m = common::samples(&text);
        assert_eq!(one(&m, "slate_state_snapshot_failures_total"), 1.0);
        let (code, said) = slate.terminate();
        assert_eq!(code, 0, "{said}");
    }
}

/// Produces `lines` to `topic`, keyed by their `service`, one message each.
fn produce_lines(brokers: &str, topic: &str, lines: &[String]) {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .create()
        .unwrap();
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap();
        let key = v["service"].as_str().unwrap().to_string();
        let mut rec = BaseRecord::to(topic).key(&key).payload(line.as_str());
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(50));
                }
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(60)).unwrap();
}

/// DESIGN §8a, bootstrap from archives: `slate replay --save-state DIR`
/// of the first eight of ten days, then `slate run --state-dir DIR` on a
/// topic that holds the last two days and, again, the archive's last hour
/// (a shipper's overlap): once caught up it holds what `slate replay` of
/// all ten days holds, the overlap counted once.
#[test]
#[ignore = "needs tansu: run by scripts/test"]
fn a_replay_of_the_archives_is_where_the_live_state_starts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tansu = Tansu::sqlite(port, dir.path());
    tansu.create_topic("archived", 3);
    let brokers = format!("127.0.0.1:{port}");
    let days = 10;
    let args = gen_over(
        200_000.0,
        days as f64 * 86_400.0,
        &ago(days * 86_400 + 120),
        "51",
        &[
            "errors:user-service:3d+2h:0.3",
            "errors:api-gateway:9d+1h:0.5",
        ],
    );
    let all = dir.path().join("all.jsonl");
    gen_file(&args, &all);
    let lines: Vec<String> = std::fs::read_to_string(&all)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let ts = |l: &String| {
        let v: Value = serde_json::from_str(l).unwrap();
        slate::model::parse_rfc3339(v["ts"].as_str().unwrap().as_bytes()).unwrap()
    };
    let cut = ts(&lines[0]) + 8 * 86_400_000_000;
    let archive = dir.path().join("archive.jsonl");
    let archived: Vec<&String> = lines.iter().filter(|l| ts(l) < cut).collect();
    std::fs::write(
        &archive,
        archived
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let topic_lines: Vec<String> = lines
        .iter()
        .filter(|l| ts(l) >= cut - 3_600_000_000)
        .cloned()
        .collect();
    let overlap = topic_lines.iter().filter(|l| ts(l) < cut).count();
    assert!(overlap > 100, "{overlap} lines in both");
    produce_lines(&brokers, "archived", &topic_lines);

    let state = dir.path().join("bootstrap.state");
    let slo = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/service-slos.yml");
    let out = Command::new(slate_bin())
        .args([
            "replay",
            "--no-progress",
            "-o",
            "json",
            "--slo",
            slo,
            "--save-state",
        ])
        .arg(&state)
        .arg(&archive)
        .output()
        .unwrap();
    assert!(out.status.success(), "replay --save-state: {out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("state of 10 service(s) written to"), "{said}");

    let flags = ["--state-dir", state.to_str().unwrap()];
    let slate = Slate::start_with(
        &brokers,
        "archived",
        "g-archived",
        dir.path(),
        "live",
        &flags,
    );
    wait_ready(&slate, Duration::from_secs(300));
    assert!(
        slate.stderr().contains("a replay's state, up to"),
        "{}",
        slate.stderr()
    );
    let want = replay_report(&[&all]);
    let episodes = assert_holds_replay(&slate, &want);
    assert!(
        episodes >= 2,
        "both incidents fire alerts: {episodes} episodes"
    );
    let (_, text) = get(slate.addr, "/metrics");
    let m = common::samples(&text);
    assert_eq!(sum(&m, "slate_events_rejected_total"), 0.0);
    let (code, said) = slate.terminate();
    assert_eq!(code, 0, "{said}");
}

/// The union of the instances' `/api/v1/services` once it holds `total`
/// requests with each service on exactly one instance (a rebalance
/// settles meanwhile); panics with what it saw after `timeout`.
fn settled_union(slates: &[&Slate], total: u64, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let mut union = serde_json::Map::new();
        let mut twice = Vec::new();
        let mut answered = true;
        for s in slates {
            match try_get(s.addr, "/api/v1/services") {
                Some((200, body)) => {
                    let v: Value = serde_json::from_str(&body).unwrap();
                    for (k, svc) in v.as_object().unwrap() {
                        if union.insert(k.clone(), svc.clone()).is_some() {
                            twice.push(k.clone());
                        }
                    }
                }
                _ => answered = false,
            }
        }
        let sum: u64 = union
            .values()
            .map(|s| s["requests"].as_u64().unwrap())
            .sum();
        if answered && twice.is_empty() && sum == total {
            return Value::Object(union);
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = slates.iter().map(|s| s.stderr()).collect();
            panic!(
                "after {timeout:?}: {sum} requests of {total}, held twice: {twice:?}, all answered: {answered}\n{}",
                logs.join("\n----\n")
            );
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// `slate gen` flags for `services` services at about `events` events
/// over `secs` seconds from `start`.
fn gen_services(services: u32, events: f64, secs: u64, start: &str, seed: &str) -> Vec<String> {
    // batch-processor sends a tenth of the others' rate.
    let shares = services as f64 - 0.9;
    [
        "gen",
        "--services",
        &services.to_string(),
        "--rate",
        &format!("{}", events / secs as f64 / shares),
        "--duration",
        &format!("{secs}s"),
        "--start",
        start,
        "--seed",
        seed,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Produces the lines of `file` keyed by service, spread over `over`
/// (traffic while instances come and go), on a thread of its own.
fn produce_paced(
    brokers: &str,
    topic: &str,
    file: &Path,
    over: Duration,
) -> thread::JoinHandle<()> {
    let lines: Vec<String> = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    thread::spawn(move || {
        let chunks = 20;
        let per = lines.len().div_ceil(chunks).max(1);
        for chunk in lines.chunks(per) {
            produce_lines(&brokers, &topic, chunk);
            thread::sleep(over / chunks as u32);
        }
    })
}

/// What an instance said of its partitions, in order: (partition, the
/// offset it went on from after restoring it from the state topic) as
/// `true`, (partition, the offset it handed it over at) as `false`.
fn handovers(stderr: &str) -> Vec<(bool, i32, i64)> {
    let mut out = Vec::new();
    for l in stderr.lines() {
        let Some(rest) = l.strip_prefix("slate: state: scale/") else {
            continue;
        };
        let Some((p, what)) = rest.split_once(": ") else {
            continue;
        };
        let p: i32 = p.parse().unwrap();
        let offset_after = |marker: &str| -> Option<i64> {
            let (_, tail) = what.split_once(marker)?;
            tail.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        if what.starts_with("restored") {
            if let Some(o) = offset_after("going on from offset ") {
                out.push((true, p, o));
            }
        } else if let Some(o) = offset_after("handed over at offset ") {
            out.push((false, p, o));
        }
    }
    out
}

/// DESIGN §8a, scale-out: three instances in one group on a 6-partition
/// topic with a state topic (Tansu's sqlite engine, which compacts), the
/// events of 30 services keyed by service. An instance is added, another
/// added, one SIGKILLed and one removed, each under load. After each
/// change the union of the instances' `/api/v1/services` is what `slate
/// replay` of the same lines holds (requests, errors, occurrence SLOs'
/// good and total exactly, timeslice SLOs' bad slices, the alert
/// episodes), each service on exactly one instance; a partition handed
/// over by a revoke is read on from the offset it was handed over at.
#[test]
#[ignore = "needs tansu: run by scripts/test"]
fn instances_hand_partitions_over_through_the_state_topic() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tansu = Tansu::sqlite(port, dir.path());
    tansu.create_topic("scale", 6);
    let brokers = format!("127.0.0.1:{port}");
    let config = dir.path().join("slate.yml");
    // Tansu tells the others of a member that died only at the next join
    // or leave: a short session lets that member expire first.
    std::fs::write(
        &config,
        "kafka:\n  state_topic: scale-state\n  properties:\n    session.timeout.ms: \"10000\"\nstate:\n  interval: 2s\n",
    )
    .unwrap();
    let flags = ["--config", config.to_str().unwrap()];
    let start =
        |name: &str| Slate::start_with(&brokers, "scale", "g-scale", dir.path(), name, &flags);

    // Six hours of history with an incident, read by the first instance.
    let history = dir.path().join("history.jsonl");
    let mut args = gen_services(30, 60_000.0, 6 * 3600, &ago(6 * 3600 + 900), "41");
    args.extend(["--incident".into(), "errors:user-service:2h+20m:0.3".into()]);
    let mut total = gen_file(&args, &history);
    produce_file(&brokers, "scale", &history);
    let a = start("a");
    wait_ready(&a, Duration::from_secs(120));
    let mut files = vec![history.clone()];
    let check = |slates: &[&Slate], files: &[PathBuf], total: u64| {
        let got = settled_union(slates, total, Duration::from_secs(120));
        let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        let want = replay_report(&paths);
        assert_eq!(got.as_object().unwrap().len(), 30, "{got}");
        assert_services_hold(&got, &want, &want)
    };
    let episodes = check(&[&a], &files, total);
    assert!(episodes > 0, "the incident's alert episodes are compared");

    // Traffic dated up to now, produced while the group changes.
    let mut phase = 0;
    let mut load = |files: &mut Vec<PathBuf>, total: &mut u64| {
        phase += 1;
        let f = dir.path().join(format!("load-{phase}.jsonl"));
        let args = gen_services(30, 6_000.0, 60, &ago(75), &format!("5{phase}"));
        *total += gen_file(&args, &f);
        files.push(f.clone());
        produce_paced(&brokers, "scale", &f, Duration::from_secs(15))
    };

    // Add an instance.
    let traffic = load(&mut files, &mut total);
    let b = start("b");
    traffic.join().unwrap();
    check(&[&a, &b], &files, total);

    // Add another.
    let traffic = load(&mut files, &mut total);
    let c = start("c");
    traffic.join().unwrap();
    check(&[&a, &b, &c], &files, total);

    // `slate gate` across the three: each service judged where it lives,
    // against the replay's figures (read here, not by the gate).
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let want = replay_report(&paths);
    let budget = |svc: &str| {
        want["services"][svc]["slos"]["error_rate"]["budget_remaining"]
            .as_f64()
            .unwrap()
    };
    let policy = dir.path().join("gate.yml");
    std::fs::write(
        &policy,
        format!(
            "checks:\n  - service: api-gateway\n    slo: error_rate\n    check: error_budget_remaining > {}\n    action: block_deploy\n  - service: user-service\n    slo: error_rate\n    check: error_budget_remaining > {}\n    action: block_deploy\n",
            budget("api-gateway") - 0.05,
            budget("user-service") + 0.05,
        ),
    )
    .unwrap();
    let urls: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|s| format!("http://{}", s.addr))
        .collect();
    let gate = |service: &str, urls: &[String]| {
        let mut cmd = Command::new(slate_bin());
        cmd.args(["gate", "--policy", policy.to_str().unwrap(), "-o", "json"]);
        for u in urls {
            cmd.args(["--source", u]);
        }
        let out = cmd.args(["--service", service]).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.code(),
            v,
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    for (svc, code) in [("api-gateway", 0), ("user-service", 1)] {
        let (got, v, said) = gate(svc, &urls);
        assert_eq!(got, Some(code), "{svc}: {v} {said}");
        let value = v["checks"][0]["value"].as_f64().unwrap();
        assert!(
            (value - budget(svc)).abs() < 1e-6,
            "{svc}: {value} against {}",
            budget(svc)
        );
    }
    let (got, _, said) = gate("svc-nobody", &urls);
    assert_eq!(got, Some(2), "a service known to none: {said}");

    for s in [&a, &b, &c] {
        assert!(
            s.stderr().contains("restored"),
            "each instance restored partitions from the state topic:\n{}",
            s.stderr()
        );
    }

    // SIGKILL one under load; then remove another (SIGTERM) once the
    // killed one's session has expired: the one left holds everything,
    // the killed one's partitions from its last pass.
    let traffic = load(&mut files, &mut total);
    thread::sleep(Duration::from_secs(3));
    let killed = Instant::now();
    let b_said = sigkill(b);
    // One instance unreachable: the gate fails closed.
    let (got, _, said) = gate("api-gateway", &urls);
    assert_eq!(got, Some(2), "{said}");
    assert!(said.contains(&urls[1]), "{said}");
    traffic.join().unwrap();
    thread::sleep(Duration::from_secs(12).saturating_sub(killed.elapsed()));
    let (code, c_said) = c.terminate();
    assert_eq!(code, 0, "{c_said}");
    check(&[&a], &files, total);
    eprintln!(
        "after the SIGKILL, a held every service again {:?} later (Tansu moves a dead member's partitions at the next leave or join)",
        killed.elapsed()
    );

    // Every partition handed over by a revoke is read on from the offset
    // it was handed over at: nothing older than the last pass is read
    // again.
    let said = [a.stderr(), b_said, c_said];
    let told: Vec<Vec<(bool, i32, i64)>> = said.iter().map(|t| handovers(t)).collect();
    let restores = told.iter().flatten().filter(|e| e.0).count();
    assert!(
        restores >= 6,
        "partitions restored from the state topic: {restores}"
    );
    // Offsets only move forward: each restore goes on from at least the
    // offset the same instance handed that partition over at before.
    for (who, t) in told.iter().enumerate() {
        for (k, &(restore, p, o)) in t.iter().enumerate() {
            let before = t[..k].iter().rev().find(|e| !e.0 && e.1 == p);
            if let (true, Some(&(_, _, last))) = (restore, before) {
                assert!(
                    o >= last,
                    "instance {who}: {p} restored at {o}, handed over at {last} before"
                );
            }
        }
    }
    // The one left went on from exactly the offsets c handed its
    // partitions over at when it left: the handovers after c's last
    // restore, and a's last restore of each.
    let c_last = told[2].iter().rposition(|e| e.0).unwrap();
    let mut compared = 0;
    for &(_, p, at) in told[2][c_last + 1..].iter().filter(|e| !e.0) {
        let &(_, _, from) = told[0]
            .iter()
            .rev()
            .find(|e| e.0 && e.1 == p)
            .unwrap_or_else(|| panic!("a never restored partition {p}"));
        assert_eq!(
            from, at,
            "partition {p}: a went on from {from}, c handed it over at {at}"
        );
        compared += 1;
    }
    assert!(compared > 0, "c handed partitions over: {:?}", told[2]);
    drop(tansu);
}

/// A state topic that exists with another layout than the input's is
/// refused before anything is read, with what to do about it: another
/// partition count, or a cleanup policy that would delete state.
#[test]
#[ignore = "needs tansu: run by scripts/test"]
fn a_state_topic_of_another_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tansu = Tansu::sqlite(port, dir.path());
    tansu.create_topic("lay", 6);
    tansu.create_topic("lay-three", 3);
    let out = Command::new(program("SLATE_TANSU", "tansu"))
        .args([
            "topic",
            "create",
            "--broker",
            &format!("tcp://127.0.0.1:{port}"),
            "--partitions",
            "6",
            "--config",
            "cleanup.policy=delete",
            "lay-deleting",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "topic create: {out:?}");
    let brokers = format!("127.0.0.1:{port}");
    for (state, says) in [
        ("lay-three", "has 3 partition(s) and the input topic lay 6"),
        ("lay-deleting", "cleanup.policy=delete: it must be compact"),
    ] {
        let config = dir.path().join(format!("{state}.yml"));
        std::fs::write(&config, format!("kafka:\n  state_topic: {state}\n")).unwrap();
        let out = Command::new(slate_bin())
            .args([
                "run",
                "--brokers",
                &brokers,
                "--topic",
                "lay",
                "--listen",
                "127.0.0.1:0",
            ])
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    drop(tansu);
}

/// The latest value of `key` in each partition of `topic`, read to its end.
fn latest_of(brokers: &str, topic: &str, partitions: i32, key: &[u8]) -> Vec<Option<Vec<u8>>> {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut out = vec![None; partitions as usize];
    for p in 0..partitions {
        let (_, high) = c
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap();
        if high == 0 {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
        c.assign(&tpl).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "{topic}/{p} not read to {high}");
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                if m.key() == Some(key) {
                    out[p as usize] = m.payload().map(<[u8]>::to_vec);
                }
                if m.offset() + 1 >= high {
                    break;
                }
            }
        }
    }
    out
}

/// A pass cut short (DESIGN §8a): its services' records are on the state
/// topic, its head is not. Made here by writing each partition's head
/// again with an offset 150 records back: the services whose records
/// hold those records must not apply them again, the others must read
/// them. A new owner then holds what `slate replay` of the lines holds.
#[test]
#[ignore = "needs tansu: run by scripts/test"]
fn a_pass_cut_short_before_its_head_counts_nothing_twice() {
    use slate::apply::snapshot::{TopicRecord, HEAD_KEY};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tansu = Tansu::sqlite(port, dir.path());
    tansu.create_topic("cut", 2);
    let brokers = format!("127.0.0.1:{port}");
    let config = dir.path().join("slate.yml");
    std::fs::write(
        &config,
        "kafka:\n  state_topic: cut-state\nstate:\n  interval: 1s\n",
    )
    .unwrap();
    let flags = ["--config", config.to_str().unwrap()];
    let file = dir.path().join("events.jsonl");
    let total = gen_file(&gen_over(20_000.0, 3600.0, &ago(3700), "61", &[]), &file);
    produce_file(&brokers, "cut", &file);
    let first = Slate::start_with(&brokers, "cut", "g-first", dir.path(), "first", &flags);
    wait_ready(&first, Duration::from_secs(120));
    settled_union(&[&first], total, Duration::from_secs(60));
    let (code, said) = first.terminate();
    assert_eq!(code, 0, "{said}");
    // Each partition's head, 150 records back.
    let mut moved = 0;
    for (p, head) in latest_of(&brokers, "cut-state", 2, HEAD_KEY)
        .into_iter()
        .enumerate()
    {
        let Some(head) = head else { continue };
        let TopicRecord::Head {
            next_offset,
            watermark,
            next_tick,
            reading,
            taken_at,
        } = TopicRecord::from_bytes(&head).unwrap()
        else {
            panic!("the head of cut-state/{p} is not a head");
        };
        let back = TopicRecord::Head {
            next_offset: (next_offset - 150).max(0),
            watermark,
            next_tick,
            reading,
            taken_at,
        };
        use rdkafka::config::ClientConfig;
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap();
        let value = back.to_bytes();
        producer
            .send(
                BaseRecord::to("cut-state")
                    .partition(p as i32)
                    .key(HEAD_KEY)
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
        moved += 1;
    }
    assert!(moved > 0, "no head on the state topic");
    // A new group: nothing committed, the state topic is all there is.
    let second = Slate::start_with(&brokers, "cut", "g-second", dir.path(), "second", &flags);
    wait_ready(&second, Duration::from_secs(120));
    let got = settled_union(&[&second], total, Duration::from_secs(60));
    let want = replay_report(&[&file]);
    assert_services_hold(&got, &want, &want);
    let said = second.stderr();
    assert!(
        said.contains("hold later records, which are not applied again"),
        "{said}"
    );
    drop(tansu);
}
