//! `slate gate`, the real binary: a policy judged against a replay report
//! and against a live `slate run` (the real binary too, reading
//! librdkafka's MockCluster). Exit 0 allow (warnings included), 1 block,
//! 2 error; an unreachable or unready source fails closed unless
//! `--fail-open`; a bad policy names its line and key.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, Producer};
use serde_json::Value;

use common::{free_port, KillOnDrop};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const REPORT: &str = "fixtures/incidents.report.json";

fn gate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slate"))
        .arg("gate")
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("run slate gate")
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn exits(o: &Output, code: i32) -> &Output {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    o
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

/// One SLO's figure from the report, read here, not by the gate.
fn figure(report: &Value, service: &str, slo: &str, key: &str) -> f64 {
    report["services"][service]["slos"][slo][key]
        .as_f64()
        .unwrap()
}

#[test]
fn against_a_report_allow_warn_block_and_disabled() {
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(ROOT).join(REPORT)).unwrap())
            .unwrap();
    // What the policy should see, computed from the report by hand: the
    // lowest budget over a service's SLOs, the highest burn.
    let slos = |svc: &str| -> Vec<String> {
        report["services"][svc]["slos"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let lowest_budget = |svc: &str| {
        slos(svc)
            .iter()
            .map(|s| figure(&report, svc, s, "budget_remaining"))
            .fold(f64::INFINITY, f64::min)
    };
    let highest_burn = |svc: &str, w: &str| {
        slos(svc)
            .iter()
            .map(|s| {
                report["services"][svc]["slos"][s]["burn_rate"][w]
                    .as_f64()
                    .unwrap()
            })
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let user_error_budget = figure(&report, "user-service", "error_rate", "budget_remaining");
    assert!(user_error_budget > 0.5 && lowest_budget("api-gateway") < 0.0);

    let dir = tempfile::tempdir().unwrap();
    // Passes: user-service's error-rate budget, and its 1h burn.
    let pass = write(
        dir.path(),
        "pass.yml",
        "deploy_enabled: true\nchecks:\n  - service: user-service\n    check: error_budget_remaining > 0.5\n    slo: error_rate\n    action: block_deploy\n  - service: user-service\n    check: burn_rate_1h < 1\n    action: block_deploy\n",
    );
    let o = gate(&["--policy", pass.to_str().unwrap(), "--source", REPORT]);
    let out = String::from_utf8_lossy(&exits(&o, 0).stdout).into_owned();
    assert!(out.contains("ALLOW: 2 check(s) pass"), "{out}");
    let v = json(exits(
        &gate(&[
            "--policy",
            pass.to_str().unwrap(),
            "--source",
            REPORT,
            "-o",
            "json",
        ]),
        0,
    ));
    assert_eq!(v["allow"], true);
    assert!(close(
        v["checks"][0]["value"].as_f64().unwrap(),
        user_error_budget
    ));
    assert!(close(
        v["checks"][1]["value"].as_f64().unwrap(),
        highest_burn("user-service", "1h")
    ));

    // Warn only: api-gateway's overspent budget warns, the deploy goes on.
    let warn = write(
        dir.path(),
        "warn.yml",
        "checks:\n  - service: api-gateway\n    check: error_budget_remaining > 0.2\n    action: warn_only\n  - service: user-service\n    check: error_budget_remaining > 0.5\n    slo: error_rate\n    action: block_deploy\n",
    );
    let o = gate(&["--policy", warn.to_str().unwrap(), "--source", REPORT]);
    let out = String::from_utf8_lossy(&exits(&o, 0).stdout).into_owned();
    assert!(out.contains("ALLOW with 1 warning(s)"), "{out}");
    assert!(out.contains("WARN") && out.contains("api-gateway"), "{out}");
    let v = json(exits(
        &gate(&[
            "--policy",
            warn.to_str().unwrap(),
            "--source",
            REPORT,
            "-o",
            "json",
        ]),
        0,
    ));
    assert_eq!(v["checks"][0]["result"], "warn");
    assert!(close(
        v["checks"][0]["value"].as_f64().unwrap(),
        lowest_budget("api-gateway")
    ));
    // ...and names the SLO it came from.
    let worst = slos("api-gateway")
        .into_iter()
        .find(|s| {
            figure(&report, "api-gateway", s, "budget_remaining") == lowest_budget("api-gateway")
        })
        .unwrap();
    assert_eq!(v["checks"][0]["value_slo"], worst.as_str());

    // Block: the seed's policy as-is (api-gateway's budget is overspent).
    let seed = write(
        dir.path(),
        "deploy-gate.yml",
        "deploy_enabled: true\nchecks:\n  - service: api-gateway\n    check: error_budget_remaining > 0.2\n    action: block_deploy\n  - service: user-service\n    check: error_budget_remaining > 0.1\n    action: warn_only\n",
    );
    let o = gate(&["--policy", seed.to_str().unwrap(), "--source", REPORT]);
    let out = String::from_utf8_lossy(&exits(&o, 1).stdout).into_owned();
    assert!(
        out.contains("BLOCK: 1 check(s) block the deploy, 1 warn"),
        "{out}"
    );
    // --service judges that service's checks only.
    let o = gate(&[
        "--policy",
        seed.to_str().unwrap(),
        "--source",
        REPORT,
        "--service",
        "user-service",
        "-o",
        "json",
    ]);
    let v = json(exits(&o, 0));
    assert_eq!(v["checks"].as_array().unwrap().len(), 1);
    assert_eq!(v["checks"][0]["service"], "user-service");
    assert!(close(
        v["checks"][0]["value"].as_f64().unwrap(),
        lowest_budget("user-service")
    ));

    // Deploys disabled: a passing policy blocks.
    let off = write(
        dir.path(),
        "off.yml",
        &std::fs::read_to_string(&pass)
            .unwrap()
            .replace("deploy_enabled: true", "deploy_enabled: false"),
    );
    let o = gate(&["--policy", off.to_str().unwrap(), "--source", REPORT]);
    let out = String::from_utf8_lossy(&exits(&o, 1).stdout).into_owned();
    assert!(out.contains("deploy_enabled is false"), "{out}");

    // A saved /api/v1/services answer reads like the report.
    let services = write(dir.path(), "services.json", &report["services"].to_string());
    exits(
        &gate(&[
            "--policy",
            pass.to_str().unwrap(),
            "--source",
            services.to_str().unwrap(),
        ]),
        0,
    );
}

fn fails_with(args: &[&str], want: &[&str]) {
    let o = gate(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    for w in want {
        assert!(err.contains(w), "{args:?}: want {w:?} in\n{err}");
    }
}

#[test]
fn errors_exit_2_and_unreachable_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.yml",
        "checks:\n  - service: api-gateway\n    check: burn_rate_1h < 14.4\n    action: block_deploy\n",
    );
    let good = good.to_str().unwrap();
    // A bad policy: the line and the key, with the closest valid one.
    let bad = write(
        dir.path(),
        "bad.yml",
        "deploy_enabled: true\nchecks:\n  - service: api-gateway\n    check: error_budget_left > 0.2\n    action: block_deploy\n  - service: user-service\n    chek: attainment > 0.9\n    action: warn_only\n",
    );
    fails_with(
        &["--policy", bad.to_str().unwrap(), "--source", REPORT],
        &[
            "bad.yml:4",
            "error_budget_left",
            "error_budget_remaining",
            "bad.yml:7",
            "chek",
            "did you mean `check`",
        ],
    );
    fails_with(
        &["--policy", "nowhere.yml", "--source", REPORT],
        &["nowhere.yml", "cannot read"],
    );
    // A service the source does not know, an SLO it does not have.
    let unknown = write(
        dir.path(),
        "unknown.yml",
        "checks:\n  - service: checkout\n    check: attainment > 0.9\n    action: warn_only\n",
    );
    fails_with(
        &["--policy", unknown.to_str().unwrap(), "--source", REPORT],
        &["checkout", "no such service"],
    );
    let no_slo = write(
        dir.path(),
        "no-slo.yml",
        "checks:\n  - service: api-gateway\n    check: attainment > 0.9\n    slo: freshness\n    action: warn_only\n",
    );
    fails_with(
        &["--policy", no_slo.to_str().unwrap(), "--source", REPORT],
        &[
            "no SLO `freshness`",
            "latency_p99, error_rate, availability",
        ],
    );
    fails_with(
        &["--policy", good, "--source", REPORT, "--service", "nope"],
        &["nope", "no such service"],
    );
    // Sources that are not reports.
    let not_json = write(dir.path(), "notes.txt", "hello\n");
    fails_with(
        &["--policy", good, "--source", not_json.to_str().unwrap()],
        &["not JSON"],
    );
    fails_with(
        &["--policy", good, "--source", "missing.json"],
        &["missing.json", "cannot read the report"],
    );
    let v2 = write(
        dir.path(),
        "v2.json",
        r#"{"schema_version":2,"services":{}}"#,
    );
    fails_with(
        &["--policy", good, "--source", v2.to_str().unwrap()],
        &["schema_version 2"],
    );

    // Nothing listens: fail closed, and --fail-open allows with a warning.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    fails_with(
        &["--policy", good, "--source", &url],
        &["cannot connect", "fails closed", "--fail-open"],
    );
    let o = gate(&[
        "--policy",
        good,
        "--source",
        &url,
        "--fail-open",
        "-o",
        "json",
    ]);
    let v = json(exits(&o, 0));
    assert_eq!(
        (v["allow"].clone(), v["fail_open"].clone()),
        (true.into(), true.into())
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--fail-open"));
    // A slate that is up but not ready (its broker is not there) fails
    // closed too.
    let listen = format!("127.0.0.1:{}", free_port());
    let _slate = slate_run(dir.path(), &format!("127.0.0.1:{port}"), &listen);
    let addr = listen.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::try_get(addr, "/readyz").map(|r| r.0) != Some(503) {
        assert!(
            Instant::now() < deadline,
            "slate run never answered /readyz"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let live = format!("http://{listen}");
    fails_with(
        &["--policy", good, "--source", &live],
        &["slate is not ready (503: not ready", "fails closed"],
    );
    exits(
        &gate(&["--policy", good, "--source", &live, "--fail-open"]),
        0,
    );
    // --fail-open does not forgive a bad policy.
    fails_with(
        &[
            "--policy",
            bad.to_str().unwrap(),
            "--source",
            &url,
            "--fail-open",
        ],
        &["bad.yml:4"],
    );
}

fn slate_run(dir: &Path, brokers: &str, listen: &str) -> KillOnDrop {
    let slos = write(
        dir,
        "slos.yml",
        "services:\n  api:\n    slo_error_rate: 99%\n  web:\n    slo_error_rate: 99.5%\n",
    );
    let cfg = write(
        dir,
        "slate.yml",
        "kafka:\n  group: gate-test\n  properties:\n    session.timeout.ms: 6000\n    heartbeat.interval.ms: 500\nexport:\n  compat: [sloth, pyrra]\n",
    );
    KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_slate"))
            .args(["run", "--config", cfg.to_str().unwrap()])
            .args(["--slo", slos.to_str().unwrap()])
            .args(["--state-dir", dir.join("state").to_str().unwrap()])
            .args(["--brokers", brokers, "--topic", "logs", "--listen", listen])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn against_a_live_slate_run() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("logs", 3, 1).unwrap();

    // api: 1000 events, 5 errors → 99.5% at 99%: half its budget left.
    // web: 400 events, 4 errors → 99% at 99.5%: its budget spent twice.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let mut n = 0;
    for (service, total, errors) in [("api", 1000, 5), ("web", 400, 4)] {
        for i in 0..total {
            let status = if i % (total / errors) == 0 { 500 } else { 200 };
            let ts = now_us - 120_000_000 + i as i64 * 100_000;
            let line = format!(
                r#"{{"ts":"{}","service":"{service}","status":{status},"latency_ms":5}}"#,
                slate::model::format_rfc3339(ts)
            );
            common::send(&producer, "logs", service, line.as_bytes());
            n += 1;
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("http://{listen}");
    let policy = write(
        dir.path(),
        "deploy-gate.yml",
        "deploy_enabled: true\nchecks:\n  - service: api\n    check: error_budget_remaining > 0.2\n    action: block_deploy\n  - service: web\n    check: error_budget_remaining > 0\n    action: warn_only\n",
    );
    let policy = policy.to_str().unwrap();
    let _slate = slate_run(dir.path(), &brokers, &listen);
    let addr = listen.parse().unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    while common::try_get(addr, "/readyz").map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "slate run never got ready");
        thread::sleep(Duration::from_millis(100));
    }
    common::wait_for(addr, "every event applied", Duration::from_secs(90), |m| {
        common::sum(m, "slate_requests_total") == n as f64
    });

    // With export.compat, Pyrra's and Sloth's series hold the same figures.
    let text = common::get(addr, "/metrics").1;
    let m = common::samples(&text);
    let v = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in\n{text}"));
    assert!(close(
        v(r#"pyrra_availability{slo="api-error_rate"}"#),
        0.995
    ));
    assert!(close(
        v(
            r#"slo:period_error_budget_remaining:ratio{sloth_id="web-error_rate",sloth_service="web",sloth_slo="error_rate"}"#
        ),
        -1.0
    ));

    // Each service says when its newest event was (what several sources
    // are told apart by).
    let api: Value = serde_json::from_str(&common::get(addr, "/api/v1/services").1).unwrap();
    for (service, total) in [("api", 1000), ("web", 400)] {
        assert_eq!(
            api[service]["last_event"],
            slate::model::format_rfc3339(now_us - 120_000_000 + (total - 1) * 100_000),
            "{api}"
        );
    }

    // api's budget: 1 − (5/1000)/0.01 = 0.5; web's: 1 − (4/400)/0.005 = −1.
    let o = gate(&["--policy", policy, "--source", &url, "-o", "json"]);
    let v = json(exits(&o, 0));
    assert_eq!(v["allow"], true);
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks[0]["result"], "pass");
    assert!(close(checks[0]["value"].as_f64().unwrap(), 0.5), "{v}");
    assert_eq!(checks[1]["result"], "warn");
    assert!(close(checks[1]["value"].as_f64().unwrap(), -1.0), "{v}");
    // The same verdict as the live slate's own /api/v1/gate would give,
    // and a URL naming an endpoint works too.
    exits(
        &gate(&[
            "--policy",
            policy,
            "--source",
            &format!("{url}/api/v1/services"),
        ]),
        0,
    );

    // web's check blocking: exit 1, the table says why.
    let strict = write(
        dir.path(),
        "strict.yml",
        "checks:\n  - service: web\n    check: error_budget_remaining > 0\n    action: block_deploy\n",
    );
    let o = gate(&["--policy", strict.to_str().unwrap(), "--source", &url]);
    let out = String::from_utf8_lossy(&exits(&o, 1).stdout).into_owned();
    assert!(out.contains("BLOCK") && out.contains("web"), "{out}");
}

/// Several `--source`s, the instances of one scaled-out group, here as
/// saved `/api/v1/services` answers: each service judged where it lives,
/// one held by two (a handover) judged on the newer state and said, one
/// known to none an error, one instance unreachable failing closed.
#[test]
fn several_sources_are_the_instances_of_one_group() {
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(ROOT).join(REPORT)).unwrap())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = report["services"].as_object().unwrap();
    // Instance a holds api-gateway and batch-processor, instance b
    // user-service; both hold batch-processor mid-handover: a's copy is
    // older (and spent), b's is newer (and healthy).
    let mut a = serde_json::Map::new();
    let mut b = serde_json::Map::new();
    let mut stale = services["batch-processor"].clone();
    stale["slos"]["success_rate"]["budget_remaining"] = (-3.0).into();
    stale["last_event"] = "2026-12-01T10:00:00Z".into();
    let mut fresh = services["batch-processor"].clone();
    fresh["last_event"] = "2026-12-01T10:00:05Z".into();
    a.insert("api-gateway".into(), services["api-gateway"].clone());
    a.insert("batch-processor".into(), stale);
    b.insert("user-service".into(), services["user-service"].clone());
    b.insert("batch-processor".into(), fresh);
    let a = write(dir.path(), "a.json", &Value::Object(a).to_string());
    let b = write(dir.path(), "b.json", &Value::Object(b).to_string());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let budget = |svc: &str, slo: &str| figure(&report, svc, slo, "budget_remaining");

    // One check per instance's service; batch-processor's passes only on
    // b's (newer) copy.
    let policy = write(
        dir.path(),
        "policy.yml",
        "checks:\n  - service: api-gateway\n    slo: latency_p99\n    check: error_budget_remaining > 0.5\n    action: block_deploy\n  - service: user-service\n    slo: error_rate\n    check: error_budget_remaining > 0.5\n    action: block_deploy\n  - service: batch-processor\n    slo: success_rate\n    check: error_budget_remaining > 0.5\n    action: block_deploy\n",
    );
    let policy = policy.to_str().unwrap();
    for order in [[a, b], [b, a]] {
        let o = gate(&[
            "--policy", policy, "--source", order[0], "--source", order[1], "-o", "json",
        ]);
        let v = json(exits(&o, 0));
        let checks = v["checks"].as_array().unwrap();
        let value = |i: usize| checks[i]["value"].as_f64().unwrap();
        assert!(close(value(0), budget("api-gateway", "latency_p99")), "{v}");
        assert!(close(value(1), budget("user-service", "error_rate")), "{v}");
        assert!(
            close(value(2), budget("batch-processor", "success_rate")),
            "{v}"
        );
        let said = String::from_utf8_lossy(&o.stderr);
        assert!(
            said.contains(&format!("batch-processor is held by {b} and {a}"))
                && said.contains(&format!("judged on {b}"))
                && said.contains("2026-12-01T10:00:05Z"),
            "{said}"
        );
    }
    // Only a, whose batch-processor copy is spent: blocked on it.
    let o = gate(&[
        "--policy",
        policy,
        "--source",
        a,
        "--service",
        "batch-processor",
    ]);
    let out = String::from_utf8_lossy(&exits(&o, 1).stdout).into_owned();
    assert!(
        out.contains("BLOCK") && out.contains("batch-processor"),
        "{out}"
    );
    // user-service is on b alone: with a alone it is known to none.
    let o = gate(&["--policy", policy, "--source", a]);
    let said = String::from_utf8_lossy(&exits(&o, 2).stderr).into_owned();
    assert!(said.contains("user-service"), "{said}");
    // One instance unreachable: closed, naming it; open with --fail-open.
    let gone = format!("http://127.0.0.1:{}", free_port());
    let o = gate(&[
        "--policy", policy, "--source", a, "--source", &gone, "--source", b,
    ]);
    let said = String::from_utf8_lossy(&exits(&o, 2).stderr).into_owned();
    assert!(
        said.contains(&gone) && said.contains("fails closed"),
        "{said}"
    );
    let o = gate(&[
        "--policy",
        policy,
        "--source",
        a,
        "--source",
        &gone,
        "--fail-open",
        "-o",
        "json",
    ]);
    let v = json(exits(&o, 0));
    assert_eq!(v["fail_open"], true, "{v}");
}
