//! `slate run`, the real binary, without a broker: what it says about bad
//! flags and configuration, and that a broker that is not there keeps it
//! alive and not ready until SIGTERM stops it cleanly.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{free_port, try_get};

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_slate"))
        .arg("run")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn fails_with(args: &[&str], text: &str) {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(text), "{args:?}: want {text:?} in\n{err}");
}

#[test]
fn bad_flags_and_config_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    for key in ["envelope", "format"] {
        let cfg = dir.path().join(format!("{key}.yml"));
        std::fs::write(&cfg, format!("input:\n  {key}: auto\n")).unwrap();
        fails_with(
            &[
                "--config",
                cfg.to_str().unwrap(),
                "--brokers",
                "localhost:9092",
                "--topic",
                "t",
            ],
            "cannot be auto in slate run",
        );
    }
    fails_with(
        &["--topic", "logs"],
        "no Kafka brokers: give --brokers HOST:PORT or kafka.brokers",
    );
    fails_with(
        &["--brokers", "localhost:9092"],
        "no topic to read: give --topic T or kafka.topics",
    );
    fails_with(
        &["--brokers", "localhost", "--topic", "t"],
        "--brokers: `localhost` is not host:port",
    );
    fails_with(
        &["--brokers", "localhost:9092", "--topic", "a b"],
        "--topic: `a b` is not a Kafka topic name",
    );
    fails_with(
        &[
            "--brokers",
            "localhost:9092",
            "--topic",
            "t",
            "--instance-id",
            "slate 0",
        ],
        "--instance-id \"slate 0\": an instance id is 1–249 characters",
    );
    fails_with(
        &[
            "--brokers",
            "localhost:9092",
            "--topic",
            "t",
            "--listen",
            "nowhere",
        ],
        "--listen: `nowhere` is not an address to listen on",
    );
    fails_with(
        &[
            "--brokers",
            "localhost:9092",
            "--topic",
            "t",
            "--policy",
            "missing-gate.yml",
        ],
        "missing-gate.yml: cannot read",
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("slate.yml");
    std::fs::write(
        &cfg,
        "kafka:\n  brokers: localhost:9092\n  topics: [logs]\n  properties:\n    enable.auto.commit: true\n",
    )
    .unwrap();
    fails_with(
        &["--config", cfg.to_str().unwrap()],
        "slate.yml:5: `kafka.properties.enable.auto.commit`: slate sets this itself",
    );
    // librdkafka's own properties are checked, by `check` too.
    std::fs::write(
        &cfg,
        "kafka:\n  brokers: localhost:9092\n  topics: [logs]\n  properties:\n    fetch.wait.max.mss: 5\n",
    )
    .unwrap();
    fails_with(
        &["--config", cfg.to_str().unwrap()],
        "kafka.properties.fetch.wait.max.mss: Client config error: No such configuration property",
    );
    let o = Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(["check", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such configuration property"));
    // A state dir that cannot be made (its parent is a file).
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let state = file.join("state");
    fails_with(
        &[
            "--brokers",
            "localhost:9092",
            "--topic",
            "t",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            state.to_str().unwrap(),
        ],
        "cannot create the state dir",
    );
    // A port taken by someone else.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    fails_with(
        &[
            "--brokers",
            "localhost:9092",
            "--topic",
            "t",
            "--listen",
            &addr,
        ],
        &format!("cannot listen on {addr}"),
    );
}

#[test]
fn no_broker_keeps_it_alive_and_not_ready_until_sigterm() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let slos = dir.path().join("slos.yml");
    std::fs::write(&slos, "services:\n  api:\n    slo_error_rate: 99%\n").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_slate"))
        .args([
            "run",
            "--slo",
            slos.to_str().unwrap(),
            "--brokers",
            &format!("127.0.0.1:{}", free_port()),
            "--topic",
            "logs",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state-dir",
            dir.path().join("state").to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    let readyz = loop {
        assert!(Instant::now() < deadline, "slate did not answer on {addr}");
        if let Some(r) = try_get(addr, "/readyz") {
            if r.1.contains("brokers unreachable") {
                break r;
            }
        }
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(readyz.0, 503, "{readyz:?}");
    assert_eq!(try_get(addr, "/healthz").unwrap().0, 200);
    let (status, metrics) = try_get(addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("slate_build_info{version="), "{metrics}");
    let (status, body) = try_get(addr, "/api/v1/gate").unwrap();
    assert_eq!(status, 404, "no policy: {body}");
    assert!(body.contains("no deploy-gate policy"), "{body}");

    // SIGHUP re-reads the SLO spec; an invalid one is refused.
    let objective = r#"slate_slo_objective_ratio{service="web",slo="error_rate"} 0.995"#;
    assert!(!metrics.contains(objective));
    std::fs::write(
        &slos,
        "services:\n  api:\n    slo_error_rate: 99%\n  web:\n    slo_error_rate: 99.5%\n",
    )
    .unwrap();
    let hup = |child: &std::process::Child| {
        assert!(Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap()
            .success())
    };
    let scrape_until = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = try_get(addr, "/metrics").unwrap().1;
            if m.contains(what) {
                return m;
            }
            assert!(Instant::now() < deadline, "no {what} in {m}");
            thread::sleep(Duration::from_millis(50));
        }
    };
    hup(&child);
    scrape_until(objective);
    std::fs::write(&slos, "services:\n  api:\n    slo_errors: 99%\n").unwrap();
    hup(&child);
    let m = scrape_until("slate_config_last_reload_successful 0");
    assert!(m.contains(objective), "the previous spec is kept");

    let out = common::sigterm(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("stopped: 0 events applied"), "{err}");
    assert!(err.contains("retrying"), "says it retries: {err}");
    assert!(
        err.contains("1 SLO(s) unchanged, their state kept; 1 new or changed"),
        "{err}"
    );
    assert!(
        err.contains("reload refused, the previous SLO spec is kept") && err.contains("slo_errors"),
        "{err}"
    );
}

/// `--log-output json`: every line slate logs is one JSON object with its
/// level, target and message (for Kubernetes); `--log-level` filters them;
/// a bad filter is an error that says what to give.
#[test]
fn logs_are_json_lines_with_levels_and_targets() {
    let dir = tempfile::tempdir().unwrap();
    let started = |extra: &[&str]| -> String {
        let child = Command::new(env!("CARGO_BIN_EXE_slate"))
            .args(["run", "--brokers"])
            .arg(format!("127.0.0.1:{}", free_port()))
            .args(["--topic", "t", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(dir.path().join(extra.join("-")))
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(1500));
        let out = common::sigterm(child);
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{said}");
        said
    };
    let said = started(&["--log-output", "json"]);
    let lines: Vec<serde_json::Value> = said
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    let find = |level: &str, target: &str, text: &str| {
        lines.iter().any(|l| {
            l["level"] == level
                && l["target"] == target
                && l["message"].as_str().is_some_and(|m| m.contains(text))
                && l["timestamp"].is_string()
        })
    };
    assert!(find("INFO", "slate", "serving http://"), "{said}");
    assert!(find("WARN", "kafka", "retrying"), "{said}");
    assert!(find("INFO", "slate", "stopped:"), "{said}");
    // Warnings only: no info line, the broker's trouble still said.
    let said = started(&["--log-level", "warn"]);
    assert!(!said.contains("serving http://"), "{said}");
    assert!(said.contains("slate: warning: kafka: "), "{said}");
    // One target up, the rest at warn.
    let said = started(&["--log-level", "warn,slate=info"]);
    assert!(said.contains("slate: serving http://"), "{said}");
    assert!(!said.contains("slate: state: no state"), "{said}");
    fails_with(
        &[
            "--log-level",
            "kafka=loud",
            "--brokers",
            "x:1",
            "--topic",
            "t",
        ],
        "--log-level \"kafka=loud\"",
    );
}
