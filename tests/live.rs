//! `slate run` against librdkafka's in-process MockCluster (the real Kafka
//! protocol): events with known answers and malformed records go in; the
//! values in `/metrics` and `/api/v1/services` are checked against an
//! exact computation written here. Then a restart: the windows are rebuilt
//! from Kafka and no counter moves twice.
//!
//! The mock's consumer is slow (about 2k messages/s), so volumes are small.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, Producer};
use serde_json::Value;

use common::{get, nearest_rank, post, samples, send, INGESTED};

use slate::live::{run, LiveOptions, LiveSummary};
use slate::model::format_rfc3339;
use slate::spec::{Config, SloSpec};

const SLOS: &str = "services:\n  api:\n    slo_latency_p99: 300ms\n    slo_error_rate: 99%\n  web:\n    slo_error_rate: 99.5%\n";

const POLICY: &str = "deploy_enabled: true\nchecks:\n  - service: api\n    check: error_budget_remaining > 0.2\n    action: block_deploy\n  - service: web\n    check: burn_rate_1h < 1\n    action: warn_only\n";

/// One produced event, as the test remembers it.
#[derive(Clone)]
struct Sent {
    service: &'static str,
    status: u16,
    latency_ms: f64,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// SplitMix64: deterministic traffic without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Produces `n` events dated over the last four minutes (keyed by
/// service), plus `bad` malformed records; returns what was sent.
fn produce(brokers: &str, topic: &str, n: usize, bad: &[&[u8]], seed: u64) -> Vec<Sent> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut rng = Rng(seed);
    let start = now_us() - 240_000_000;
    let mut sent = Vec::new();
    for i in 0..n {
        let service = ["api", "web", "worker"][(rng.next() % 3) as usize];
        let status = if rng.unit() < 0.03 { 503 } else { 200 };
        let latency_ms = (1.0 + rng.unit() * 400.0).round();
        let ts = start + (i as i64 * 230_000_000 / n as i64);
        let line = format!(
            r#"{{"ts":"{}","service":"{service}","status":{status},"latency_ms":{latency_ms}}}"#,
            format_rfc3339(ts)
        );
        send(&producer, topic, service, line.as_bytes());
        sent.push(Sent {
            service,
            status,
            latency_ms,
        });
    }
    for b in bad {
        send(&producer, topic, "bad", b);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    sent
}

struct Running {
    addr: SocketAddr,
    /// The SLO spec it reads (rewritten to test reloads).
    slo_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: thread::JoinHandle<anyhow::Result<LiveSummary>>,
}

fn start(brokers: &str, topic: &str) -> Running {
    start_with(brokers, topic, None)
}

fn start_with(brokers: &str, topic: &str, dead_letter: Option<&str>) -> Running {
    start_opts(brokers, topic, dead_letter, SLOS, None, None)
}

/// `slate run` on `topic` with the SLO spec `slos`, its state in `state`
/// (else a state dir of its own).
fn start_opts(
    brokers: &str,
    topic: &str,
    dead_letter: Option<&str>,
    slos: &str,
    state: Option<&Path>,
    input: Option<slate::spec::config::InputConfig>,
) -> Running {
    let spec = SloSpec::parse(Path::new("slos.yml"), slos).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let slo_file = dir.path().join("slos.yml");
    std::fs::write(&slo_file, slos).unwrap();
    let slo_path = Some(slo_file.clone());
    let mut config = Config::default();
    if let Some(input) = input {
        config.input = input;
    }
    config.kafka.topics = vec![topic.to_string()];
    config.kafka.group = "slate-test".into();
    config.kafka.dead_letter_topic = dead_letter.map(str::to_string);
    config.state.dir = state.map_or_else(|| dir.path().join("state"), Path::to_path_buf);
    // The mock coordinator holds a rejoin until the old member's session
    // times out, even after it left: keep that short.
    config.kafka.properties = vec![
        ("session.timeout.ms".into(), "6000".into()),
        ("heartbeat.interval.ms".into(), "500".into()),
    ];
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let brokers = brokers.to_string();
    let handle = thread::spawn(move || {
        run(
            LiveOptions {
                spec,
                slo_path,
                config,
                brokers,
                listener,
                policy: Some(
                    slate::spec::gate::GatePolicy::parse(Path::new("gate.yml"), POLICY).unwrap(),
                ),
            },
            async move {
                let _ = rx.await;
            },
        )
    });
    Running {
        addr,
        slo_file,
        _dir: dir,
        stop,
        handle,
    }
}

fn wait_for(
    addr: SocketAddr,
    what: &str,
    cond: impl Fn(&std::collections::BTreeMap<String, f64>) -> bool,
) {
    common::wait_for(addr, what, Duration::from_secs(90), cond);
}

/// Reads `n` messages of a topic from the start: payloads and headers.
fn read_topic(
    brokers: &str,
    topic: &str,
    n: usize,
) -> Vec<(Vec<u8>, std::collections::BTreeMap<String, String>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "dead-letter-reader")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} dead letters",
            out.len()
        );
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let mut headers = std::collections::BTreeMap::new();
            if let Some(h) = m.headers() {
                for h in h.iter() {
                    headers.insert(
                        h.key.to_string(),
                        String::from_utf8_lossy(h.value.unwrap_or(b"")).into_owned(),
                    );
                }
            }
            out.push((m.payload().unwrap_or(b"").to_vec(), headers));
        }
    }
    out
}

#[test]
fn live_values_equal_an_exact_computation_and_a_restart_counts_nothing_twice() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("logs", 3, 1).unwrap();
    cluster.create_topic("rejected", 1, 1).unwrap();
    let bad: Vec<&[u8]> = vec![
        b"{not json",
        b"",
        br#"{"ts":"2026-11-26T10:00:00Z","service":"api","status":"abc"}"#,
        br#"{"service":"api","status":200}"#,
    ];
    let sent = produce(&brokers, "logs", 1500, &bad, 7);

    let slate = start_with(&brokers, "logs", Some("rejected"));
    let ingested = (sent.len() + bad.len()) as f64;
    wait_for(slate.addr, "every record to be ingested", |m| {
        m.get(INGESTED) == Some(&ingested)
    });
    // Gauges follow at the next tick.
    thread::sleep(Duration::from_millis(1500));
    let (status, text) = get(slate.addr, "/metrics");
    assert_eq!(status, 200);
    let m = samples(&text);
    for svc in ["api", "web", "worker"] {
        let of: Vec<&Sent> = sent.iter().filter(|s| s.service == svc).collect();
        let errors = of.iter().filter(|s| s.status >= 500).count();
        assert_eq!(
            m[&format!(r#"slate_requests_total{{service="{svc}"}}"#)],
            of.len() as f64,
            "{svc}"
        );
        assert_eq!(
            m[&format!(r#"slate_request_errors_total{{service="{svc}"}}"#)],
            errors as f64,
            "{svc}"
        );
        let p99 = nearest_rank(of.iter().map(|s| s.latency_ms).collect(), 0.99) / 1000.0;
        let got =
            m[&format!(r#"slate_latency_seconds{{service="{svc}",window="1h",quantile="0.99"}}"#)];
        assert!((got - p99).abs() <= p99 * 0.01, "{svc} p99 {got} vs {p99}");
    }
    let rejected = |r: &str| m[&format!(r#"slate_events_rejected_total{{reason="{r}"}}"#)];
    assert_eq!(
        rejected("invalid_json"),
        2.0,
        "`{{not json` and the empty record"
    );
    assert_eq!(rejected("bad_status"), 1.0);
    assert_eq!(rejected("missing_field"), 1.0);
    for p in 0..3 {
        let lag = format!(r#"slate_kafka_consumer_lag{{topic="logs",partition="{p}"}}"#);
        assert_eq!(m.get(&lag), Some(&0.0), "{lag}: every message is applied");
    }

    // The API: counts over the state, SLOs against the exact counts.
    let (status, body) = get(slate.addr, "/api/v1/services");
    assert_eq!(status, 200);
    let api: Value = serde_json::from_str(&body).unwrap();
    let api_of: Vec<&Sent> = sent.iter().filter(|s| s.service == "api").collect();
    let fast = api_of.iter().filter(|s| s.latency_ms <= 300.0).count() as u64;
    let ok = api_of.iter().filter(|s| s.status < 500).count() as u64;
    let n = api_of.len() as u64;
    assert_eq!(api["api"]["requests"], n);
    assert_eq!(api["api"]["slos"]["latency_p99"]["good"], fast);
    assert_eq!(api["api"]["slos"]["latency_p99"]["total"], n);
    assert_eq!(api["api"]["slos"]["error_rate"]["good"], ok);
    let attainment = api["api"]["slos"]["error_rate"]["attainment"]
        .as_f64()
        .unwrap();
    assert!((attainment - ok as f64 / n as f64).abs() < 1e-9);
    let coverage = api["api"]["slos"]["error_rate"]["coverage"]
        .as_f64()
        .unwrap();
    assert!(
        coverage > 0.0 && coverage < 0.001,
        "4 minutes of 30 days: {coverage}"
    );
    assert_eq!(
        m[r#"slate_service_partition_spread{topic="logs"}"#], 0.0,
        "keyed by service: each on one partition"
    );
    // The status page at `/`: the report's page from the live state,
    // self-contained, reloaded by the browser every 30 s, its figures the
    // API's (read again: a tick may have passed).
    let (status, page) = get(slate.addr, "/");
    assert_eq!(status, 200);
    let (_, body) = get(slate.addr, "/api/v1/services");
    let api: Value = serde_json::from_str(&body).unwrap();
    assert!(page.contains(r#"<meta http-equiv="refresh" content="30">"#));
    for banned in ["<script", " src=", "href=", "url(", "<link"] {
        assert!(!page.contains(banned), "the status page holds {banned:?}");
    }
    let pct = |v: &Value| match v.as_f64() {
        Some(v) if v * 100.0 != 100.0 && v * 100.0 > 99.0 => format!("{:.3}%", v * 100.0),
        Some(v) => format!("{:.2}%", v * 100.0),
        None => "-".into(),
    };
    let (mut good, mut total) = (0u64, 0u64);
    for (svc, r) in api.as_object().unwrap() {
        for (slo, o) in r["slos"].as_object().unwrap() {
            let row = format!(
                r#"<tr><td>{svc}</td><td>{slo}</td><td class="n">{}</td><td class="n">{}</td>"#,
                pct(&o["objective"]),
                pct(&o["attainment"])
            );
            assert!(page.contains(&row), "{row}");
            let left = format!(
                r#"<td class="n">{}</td><td class="n">"#,
                pct(&o["budget_remaining"])
            );
            let at = page.find(&row).unwrap();
            assert!(
                page[at..].split("</tr>").next().unwrap().contains(&left),
                "{row} {left}"
            );
            good += o["good"].as_u64().unwrap();
            total += o["total"].as_u64().unwrap();
        }
    }
    // The one number: every SLO here is an occurrence SLO.
    let one = pct(&Value::from(good as f64 / total as f64));
    assert!(
        page.contains(&format!(r#"<div class="big">{one}</div>"#)),
        "{one}"
    );
    // Charts for both services, sampled since the start.
    assert_eq!(page.matches("<section class=\"service\">").count(), 2);

    // The gate, from the live state: api's worst budget is its latency
    // SLO's or its error rate's, whichever is lower.
    let (status, body) = get(slate.addr, "/api/v1/gate");
    assert_eq!(status, 200, "{body}");
    let gate: Value = serde_json::from_str(&body).unwrap();
    let remaining = |good: u64| 1.0 - (1.0 - good as f64 / n as f64) / 0.01;
    let worst = remaining(fast).min(remaining(ok));
    assert_eq!(gate["allow"], false, "{body}");
    assert_eq!(gate["checks"][0]["result"], "block");
    assert!(
        (gate["checks"][0]["value"].as_f64().unwrap() - worst).abs() < 1e-6,
        "{body}"
    );
    assert_eq!(
        gate["checks"][1]["result"], "warn",
        "web burns 3% errors / 0.5%"
    );
    let (status, body) = get(slate.addr, "/api/v1/gate?service=web");
    assert_eq!(status, 200);
    let gate: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            gate["allow"].clone(),
            gate["checks"].as_array().unwrap().len()
        ),
        (Value::Bool(true), 1)
    );
    let (status, body) = get(slate.addr, "/api/v1/gate?service=nope");
    assert_eq!(status, 404);
    assert!(body.contains("no such service"), "{body}");
    assert_eq!(get(slate.addr, "/healthz").0, 200);
    assert_eq!(get(slate.addr, "/readyz"), (200, "ready\n".to_string()));
    assert_eq!(get(slate.addr, "/nope").0, 404);

    // A reload: api's error rate loosens (its counts come from the
    // request counts kept anyway), api gains a latency SLO (counted from
    // now), the rest is unchanged and keeps its state.
    let loaded_at = m["slate_config_last_reload_success_timestamp_seconds"];
    std::fs::write(
        &slate.slo_file,
        "services:\n  api:\n    slo_latency_p99: 300ms\n    slo_error_rate: 98%\n    slo_latency_p50: 100ms\n  web:\n    slo_error_rate: 99.5%\n",
    )
    .unwrap();
    let (status, body) = post(slate.addr, "/-/reload");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("2 SLO(s) unchanged") && body.contains("2 new or changed"),
        "{body}"
    );
    assert_eq!(get(slate.addr, "/-/reload").0, 405);
    let m = samples(&get(slate.addr, "/metrics").1);
    assert_eq!(m["slate_config_last_reload_successful"], 1.0);
    assert!(m["slate_config_last_reload_success_timestamp_seconds"] > loaded_at);
    assert_eq!(
        m[r#"slate_slo_objective_ratio{service="api",slo="error_rate"}"#],
        0.98
    );
    let api: Value = serde_json::from_str(&get(slate.addr, "/api/v1/services").1).unwrap();
    let slos = &api["api"]["slos"];
    assert_eq!(
        (&slos["latency_p99"]["good"], &slos["latency_p99"]["total"]),
        (&Value::from(fast), &Value::from(n)),
        "unchanged: kept"
    );
    assert_eq!(
        (&slos["error_rate"]["good"], &slos["error_rate"]["total"]),
        (&Value::from(ok), &Value::from(n)),
        "the request counts are kept"
    );
    assert_eq!(slos["latency_p50"]["total"], 0, "new: nothing judged yet");
    // Events after the reload count for the new SLO.
    let extra = produce(&brokers, "logs", 150, &[], 9);
    let want = ingested + extra.len() as f64;
    wait_for(slate.addr, "the events after the reload", |m| {
        m.get(INGESTED) == Some(&want)
    });
    let api: Value = serde_json::from_str(&get(slate.addr, "/api/v1/services").1).unwrap();
    let extra_api: Vec<&Sent> = extra.iter().filter(|s| s.service == "api").collect();
    let under = extra_api.iter().filter(|s| s.latency_ms <= 100.0).count() as u64;
    let p50 = &api["api"]["slos"]["latency_p50"];
    assert_eq!(
        (&p50["good"], &p50["total"]),
        (&Value::from(under), &Value::from(extra_api.len() as u64)),
    );
    assert_eq!(
        api["api"]["slos"]["latency_p99"]["total"],
        n + extra_api.len() as u64
    );
    let sent: Vec<Sent> = sent.into_iter().chain(extra).collect();
    // An invalid spec is refused and the one in use kept.
    std::fs::write(
        &slate.slo_file,
        "services:\n  api:\n    slo_error_rate: 120%\n",
    )
    .unwrap();
    let (status, body) = post(slate.addr, "/-/reload");
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("previous SLO spec is kept") && body.contains("slo_error_rate"),
        "{body}"
    );
    let m = samples(&get(slate.addr, "/metrics").1);
    assert_eq!(m["slate_config_last_reload_successful"], 0.0);
    assert!(m.contains_key(r#"slate_slo_objective_ratio{service="api",slo="latency_p50"}"#));

    slate.stop.send(()).unwrap();
    let summary = slate.handle.join().unwrap().unwrap();
    assert_eq!(summary.accepted, sent.len() as u64);
    assert_eq!(summary.rejected, bad.len() as u64);

    // The dead-letter topic holds each rejected record as it came, with
    // its reason in a header.
    let mut dead: Vec<(Vec<u8>, String)> = read_topic(&brokers, "rejected", bad.len())
        .into_iter()
        .map(|(payload, headers)| (payload, headers["slate-reason"].clone()))
        .collect();
    dead.sort();
    let mut want: Vec<(Vec<u8>, String)> = bad
        .iter()
        .zip([
            "invalid_json",
            "invalid_json",
            "bad_status",
            "missing_field",
        ])
        .map(|(b, r)| (b.to_vec(), r.to_string()))
        .collect();
    want.sort();
    assert_eq!(dead, want);

    // A restart: the state is rebuilt from Kafka (the mock answers
    // offsets-for-times with the end: the fallback to the earliest offset
    // and the skip by timestamp are what make this work), counters start
    // at zero and move only for new events.
    let more = produce(&brokers, "logs", 300, &[], 8);
    let slate = start(&brokers, "logs");
    wait_for(slate.addr, "the new records", |m| {
        m.get(INGESTED) == Some(&(more.len() as f64))
    });
    thread::sleep(Duration::from_millis(1500));
    let m = samples(&get(slate.addr, "/metrics").1);
    let (_, body) = get(slate.addr, "/api/v1/services");
    let api: Value = serde_json::from_str(&body).unwrap();
    for svc in ["api", "web", "worker"] {
        let new = more.iter().filter(|s| s.service == svc).count();
        let all = new + sent.iter().filter(|s| s.service == svc).count();
        assert_eq!(
            m[&format!(r#"slate_requests_total{{service="{svc}"}}"#)],
            new as f64,
            "{svc}: only the new events move the counter"
        );
        assert_eq!(
            api[svc]["requests"], all as u64,
            "{svc}: the state holds all"
        );
    }
    assert_eq!(
        m[r#"slate_events_rejected_total{reason="invalid_json"}"#], 0.0,
        "rejections were counted before the restart"
    );
    slate.stop.send(()).unwrap();
    let summary = slate.handle.join().unwrap().unwrap();
    assert_eq!(summary.accepted, more.len() as u64);
    assert_eq!(summary.rebuilt, sent.len() as u64);
}

/// Two instances in one group: the second's arrival revokes the first's
/// partitions (it drains and commits), each rebuilds what it is given, and
/// between them every event moves a counter exactly once.
#[test]
fn a_second_instance_takes_partitions_without_counting_twice() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("shared", 3, 1).unwrap();
    // Services keyed over the three partitions.
    let first = produce(&brokers, "shared", 1200, &[], 21);
    let a = start(&brokers, "shared");
    wait_for(a.addr, "the first events on A", |m| {
        m.get(INGESTED) == Some(&(first.len() as f64))
    });
    let b = start(&brokers, "shared");
    // Wait for the rebalance to settle: both hold partitions and are ready.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let ready = |addr| common::try_get(addr, "/readyz").is_some_and(|(s, _)| s == 200);
        let lag_lines = |addr| {
            common::try_get(addr, "/metrics").map_or(0, |(_, t)| {
                t.lines()
                    .filter(|l| l.starts_with("slate_kafka_consumer_lag{"))
                    .count()
            })
        };
        if ready(a.addr) && ready(b.addr) && lag_lines(a.addr) + lag_lines(b.addr) == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the group did not settle"
        );
        thread::sleep(Duration::from_millis(200));
    }
    let second = produce(&brokers, "shared", 600, &[], 22);
    let total = (first.len() + second.len()) as f64;
    let requests = |addr| common::sum(&samples(&get(addr, "/metrics").1), "slate_requests_total");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while requests(a.addr) + requests(b.addr) < total {
        assert!(
            std::time::Instant::now() < deadline,
            "not every event arrived"
        );
        thread::sleep(Duration::from_millis(200));
    }
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        requests(a.addr) + requests(b.addr),
        total,
        "each event counted once"
    );
    // Each instance's state holds every event of the services it was given.
    let (_, body) = get(b.addr, "/api/v1/services");
    let api: Value = serde_json::from_str(&body).unwrap();
    for (svc, v) in api.as_object().unwrap() {
        let all = first
            .iter()
            .chain(&second)
            .filter(|s| s.service == svc)
            .count();
        if v["requests"].as_u64().unwrap() > 0 {
            assert_eq!(v["requests"], all as u64, "{svc} on B, rebuilt");
        }
    }
    a.stop.send(()).unwrap();
    b.stop.send(()).unwrap();
    let (sa, sb) = (
        a.handle.join().unwrap().unwrap(),
        b.handle.join().unwrap().unwrap(),
    );
    assert_eq!(sa.accepted + sb.accepted, total as u64);
}

/// DESIGN §8a, retention: records that expired from the topic while slate
/// was away are counted (`slate_state_gap_records`), and the span they
/// covered is left out of `coverage`; what is left is read as history, and
/// the state equals an exact count of what it saw before and after.
///
/// The mock broker keeps 5 MB of a partition and drops its oldest batches
/// beyond that: a restart after 8 MB were produced finds its state's
/// offset expired.
#[test]
fn records_expired_while_slate_was_away_are_counted_and_left_out_of_coverage() {
    const SLOS_1D: &str = "services:\n  api:\n    slo_error_rate: 99%\n    period: 1d\n";
    const MIN: i64 = 60_000_000;
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("aged", 1, 1).unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let t0 = now_us();
    // (ts, error) of every record, by offset.
    let mut sent: Vec<(i64, bool)> = Vec::new();
    let put = |sent: &mut Vec<(i64, bool)>, ts: i64, error: bool, pad: usize| {
        let ts = ts / 1000 * 1000; // the line carries milliseconds
        let line = format!(
            r#"{{"ts":"{}","service":"api","status":{},"latency_ms":12,"pad":"{}"}}"#,
            format_rfc3339(ts),
            if error { 503 } else { 200 },
            "x".repeat(pad)
        );
        send(&producer, "aged", "api", line.as_bytes());
        sent.push((ts, error));
    };
    // Before the first run: 300 events from 50 to 40 minutes ago.
    for i in 0..300i64 {
        put(&mut sent, t0 - 50 * MIN + i * 2_000_000, i % 23 == 0, 0);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let slate = start_opts(&brokers, "aged", None, SLOS_1D, Some(state.path()), None);
    wait_for(slate.addr, "the first 300 records", |m| {
        m.get(INGESTED) == Some(&300.0)
    });
    slate.stop.send(()).unwrap();
    let first = slate.handle.join().unwrap().unwrap();
    assert_eq!(first.accepted, 300);

    // While slate is away: 8 MB of padded events (40 to 20 minutes ago),
    // then 200 small ones (20 to 10 minutes ago). The broker drops the
    // oldest batches: the first run's and some of the padded ones.
    for i in 0..128i64 {
        put(
            &mut sent,
            t0 - 40 * MIN + i * 9_000_000,
            i % 17 == 0,
            64 << 10,
        );
    }
    for i in 0..200i64 {
        put(&mut sent, t0 - 20 * MIN + i * 3_000_000, i % 29 == 0, 0);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let low = {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap();
        let (low, high) = c
            .fetch_watermarks("aged", 0, Duration::from_secs(10))
            .unwrap();
        assert_eq!(high as usize, sent.len());
        low
    };
    assert!(
        low > 300 && (low as usize) < sent.len() - 200,
        "the mock's retention dropped the first run's records and some padded ones (earliest offset {low})"
    );
    let left = &sent[low as usize..];

    let slate = start_opts(&brokers, "aged", None, SLOS_1D, Some(state.path()), None);
    wait_for(slate.addr, "the records left", |m| {
        m.get(INGESTED) == Some(&(left.len() as f64))
    });
    thread::sleep(Duration::from_millis(1500));
    let m = samples(&get(slate.addr, "/metrics").1);
    assert_eq!(
        m[r#"slate_state_gap_records{topic="aged",partition="0"}"#],
        (low - 300) as f64,
        "the records between the state's offset (300) and the earliest"
    );
    let before = now_us();
    let (_, body) = get(slate.addr, "/api/v1/services");
    let after = now_us();
    let api: Value = serde_json::from_str(&body).unwrap();
    // Exact counts over what the state saw: the first 300 and what was left.
    let seen: Vec<&(i64, bool)> = sent[..300].iter().chain(left).collect();
    let errors = seen.iter().filter(|e| e.1).count() as u64;
    assert_eq!(api["api"]["requests"], seen.len() as u64);
    assert_eq!(api["api"]["errors"], errors);
    let slo = &api["api"]["slos"]["error_rate"];
    assert_eq!(slo["total"], seen.len() as u64);
    assert_eq!(slo["good"], seen.len() as u64 - errors);
    // Coverage: from the oldest event to now, less the span from the
    // state's newest event (the first run's last) to the first one left.
    let lacks = left[0].0 - sent[299].0;
    let cover = |now: i64| ((now - sent[0].0) - lacks) as f64 / (1440.0 * MIN as f64);
    let got = slo["coverage"].as_f64().unwrap();
    assert!(
        got >= cover(before) - 1e-9 && got <= cover(after) + 1e-9,
        "coverage {got}, want {}..{} (a gap of {} s left out)",
        cover(before),
        cover(after),
        lacks / 1_000_000
    );
    slate.stop.send(()).unwrap();
    let second = slate.handle.join().unwrap().unwrap();
    assert_eq!(second.accepted, left.len() as u64);
}

/// DESIGN §8a, a full disk mid-run: the real binary, its state dir a 4 MB
/// tmpfs of its own mount namespace, which the test fills. Passes fail,
/// are said and counted, slate goes on serving, and no offset is
/// committed past what is on disk; once space is freed the next pass
/// writes everything the failed ones held, and a new slate on a copy of
/// that dir holds every event without reading one again.
#[test]
fn a_full_disk_mid_run_is_counted_retried_and_loses_nothing() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    use std::process::{Command, Stdio};
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("full", 1, 1).unwrap();
    let first = produce(&brokers, "full", 200, &[], 11);
    let work = tempfile::tempdir().unwrap();
    let slos = work.path().join("slos.yml");
    std::fs::write(&slos, SLOS).unwrap();
    let state = work.path().join("state");
    std::fs::create_dir(&state).unwrap();
    // A pass every 3 s: a failed one is tried again soon.
    let config = work.path().join("slate.yml");
    std::fs::write(&config, "state:\n  interval: 3s\n").unwrap();
    let port = common::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // A mount namespace of its own (a user namespace too when not root),
    // with a 4 MB tmpfs on the state dir; `unshare` execs slate in it.
    let mut unshare = Command::new("unshare");
    let root = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout)
        .unwrap()
        .trim()
        == "0";
    if !root {
        unshare.args(["--user", "--map-root-user"]);
    }
    let mut slate = unshare
        .args(["--mount", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=4m tmpfs "$0" && exec "$@""#)
        .arg(&state)
        .arg(env!("CARGO_BIN_EXE_slate"))
        .args([
            "run",
            "--brokers",
            &brokers,
            "--topic",
            "full",
            "--group",
            "slate-full",
        ])
        .arg("--config")
        .arg(&config)
        .arg("--slo")
        .arg(&slos)
        .arg("--state-dir")
        .arg(&state)
        .args(["--listen", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) runs slate in a mount namespace of its own");
    let stderr = slate.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let mut l = sink.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    // The tmpfs as the test sees it: through slate's root.
    let inside = Path::new("/proc")
        .join(slate.id().to_string())
        .join("root")
        .join(state.strip_prefix("/").unwrap());
    let committed = || -> i64 {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "slate-full")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition("full", 0);
        match c
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap()
            .find_partition("full", 0)
            .unwrap()
            .offset()
        {
            Offset::Offset(o) => o,
            _ => -1,
        }
    };
    let wait = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}; slate said:\n{}",
                log.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(200));
        }
    };
    let metrics = || samples(&common::try_get(addr, "/metrics").map_or(String::new(), |r| r.1));
    wait("the first 200 records on disk and committed", &|| {
        committed() == 200 && metrics().get(INGESTED) == Some(&200.0)
    });
    let mounted = std::fs::read_to_string(format!("/proc/{}/mounts", slate.id())).unwrap();
    assert!(
        mounted.contains(&format!("tmpfs {} tmpfs", state.display())),
        "the state dir is slate's tmpfs:\n{mounted}"
    );

    // Fill the disk.
    let filler = inside.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).and_then(|()| f.sync_all()).is_ok() {}
    }
    let more = produce(&brokers, "full", 100, &[], 12);
    wait("300 records applied and a failed pass counted", &|| {
        let m = metrics();
        m.get(INGESTED) == Some(&300.0)
            && m.get("slate_state_snapshot_failures_total")
                .is_some_and(|&f| f >= 2.0)
    });
    assert!(
        log.lock().unwrap().contains("No space left on device"),
        "the failure says why:\n{}",
        log.lock().unwrap()
    );
    // Still serving: ready, the API holds all 300, nothing committed past
    // the disk.
    assert_eq!(get(addr, "/readyz").0, 200);
    let (_, body) = get(addr, "/api/v1/services");
    let api: Value = serde_json::from_str(&body).unwrap();
    let all: Vec<&Sent> = first.iter().chain(&more).collect();
    for svc in ["api", "web", "worker"] {
        let n = all.iter().filter(|s| s.service == svc).count();
        assert_eq!(api[svc]["requests"], n as u64, "{svc}");
    }
    thread::sleep(Duration::from_secs(2));
    assert_eq!(committed(), 200, "not committed past the last pass on disk");

    // Space again: the next pass holds what the failed ones did.
    std::fs::remove_file(&filler).unwrap();
    wait("the 300 on disk and committed", &|| committed() == 300);
    assert!(log
        .lock()
        .unwrap()
        .contains("a snapshot pass is on disk again"));
    let failures = metrics()["slate_state_snapshot_failures_total"];
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        metrics()["slate_state_snapshot_failures_total"],
        failures,
        "no failure once there is space"
    );

    // What is on disk holds every event: a copy, restored by a new slate
    // (another group, so nothing but the state's offsets says where to go
    // on from), reads nothing again.
    let copy = work.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(&inside).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
    }
    slate.kill().unwrap();
    slate.wait().unwrap();
    let port = common::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut after = Command::new(env!("CARGO_BIN_EXE_slate"))
        .args([
            "run",
            "--brokers",
            &brokers,
            "--topic",
            "full",
            "--group",
            "slate-after",
        ])
        .arg("--slo")
        .arg(&slos)
        .arg("--state-dir")
        .arg(&copy)
        .args(["--listen", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for(addr, "the restored slate", Duration::from_secs(60), |m| {
        m.get("slate_state_restore_duration_seconds").is_some()
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while get(addr, "/readyz").0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the restored slate is not ready"
        );
        thread::sleep(Duration::from_millis(200));
    }
    let (_, body) = get(addr, "/api/v1/services");
    let api: Value = serde_json::from_str(&body).unwrap();
    for svc in ["api", "web", "worker"] {
        let of: Vec<&&Sent> = all.iter().filter(|s| s.service == svc).collect();
        let errors = of.iter().filter(|s| s.status >= 500).count();
        assert_eq!(api[svc]["requests"], of.len() as u64, "{svc}");
        assert_eq!(api[svc]["errors"], errors as u64, "{svc}");
    }
    assert_eq!(
        samples(&get(addr, "/metrics").1)
            .get(INGESTED)
            .copied()
            .unwrap_or(0.0),
        0.0,
        "nothing read again"
    );
    after.kill().unwrap();
    after.wait().unwrap();
}

/// Envelopes from Kafka (DESIGN §3): OTLP requests of one to eight
/// records a message, the service read from the resource
/// (`envelope.resource.service.name`); then Docker json-file lines, three
/// to a message. The API's counts and quantiles equal an exact
/// computation of what was sent; a body that is not a string and a
/// message that is not an envelope are counted `invalid_envelope`.
#[test]
fn envelopes_from_kafka_several_records_a_message() {
    use slate::spec::config::{Envelope, FieldOverrides, InputConfig};
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("otlp", 2, 1).unwrap();
    cluster.create_topic("docker", 2, 1).unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut rng = Rng(11);
    let start = now_us() - 200_000_000;
    let event = |i: usize, rng: &mut Rng| {
        let service = ["api", "web"][(rng.next() % 2) as usize];
        let status = if rng.unit() < 0.05 { 503 } else { 200 };
        let latency_ms = (1.0 + rng.unit() * 400.0).round();
        let ts = format_rfc3339(start + i as i64 * 150_000);
        let sent = Sent {
            service,
            status,
            latency_ms,
        };
        (sent, ts)
    };
    let mut sent = Vec::new();
    let mut i = 0;
    for m in 0..150 {
        let n = 1 + (rng.next() % 8) as usize;
        let mut resources = Vec::new();
        for _ in 0..n {
            let (s, ts) = event(i, &mut rng);
            i += 1;
            let body = format!(
                r#"{{"ts":"{ts}","status":{},"latency_ms":{}}}"#,
                s.status, s.latency_ms
            );
            resources.push(serde_json::json!({
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": s.service}}]},
                "scopeLogs": [{"logRecords": [{"body": {"stringValue": body}}]}],
            }));
            sent.push(s);
        }
        if m == 70 {
            resources.push(
                serde_json::json!({"scopeLogs": [{"logRecords": [{"body": {"intValue": "7"}}]}]}),
            );
        }
        let msg = serde_json::json!({ "resourceLogs": resources }).to_string();
        send(&producer, "otlp", &m.to_string(), msg.as_bytes());
    }
    send(&producer, "otlp", "bad", b"not an envelope");
    producer.flush(Duration::from_secs(30)).unwrap();

    let check = |addr: SocketAddr, sent: &[Sent], invalid: f64| {
        let records = sent.len() as f64 + invalid;
        wait_for(addr, "every record to be ingested", |m| {
            m.get(INGESTED) == Some(&records)
        });
        // Gauges follow at the next tick (the counters are published as
        // records are applied).
        thread::sleep(Duration::from_millis(1500));
        let (_, text) = get(addr, "/metrics");
        let m = samples(&text);
        assert_eq!(
            m[r#"slate_events_rejected_total{reason="invalid_envelope"}"#],
            invalid
        );
        let (_, body) = get(addr, "/api/v1/services");
        let api: Value = serde_json::from_str(&body).unwrap();
        for svc in ["api", "web"] {
            let of: Vec<&Sent> = sent.iter().filter(|s| s.service == svc).collect();
            assert_eq!(api[svc]["requests"], of.len(), "{svc}");
            let ok = of.iter().filter(|s| s.status < 500).count();
            assert_eq!(api[svc]["slos"]["error_rate"]["good"], ok, "{svc}");
            let p99 = nearest_rank(of.iter().map(|s| s.latency_ms).collect(), 0.99) / 1000.0;
            let got = m[&format!(
                r#"slate_latency_seconds{{service="{svc}",window="1h",quantile="0.99"}}"#
            )];
            assert!((got - p99).abs() <= p99 * 0.01, "{svc} p99 {got} vs {p99}");
        }
    };
    let otlp = InputConfig {
        envelope: Some(Envelope::OtlpJson),
        fields: FieldOverrides {
            service: Some("envelope.resource.service.name".into()),
            ..FieldOverrides::default()
        },
        ..InputConfig::default()
    };
    let slate = start_opts(&brokers, "otlp", None, SLOS, None, Some(otlp));
    check(slate.addr, &sent, 2.0);
    slate.stop.send(()).unwrap();
    slate.handle.join().unwrap().unwrap();

    // Docker json-file lines, three a message, the service in the line.
    let mut sent = Vec::new();
    for m in 0..100 {
        let mut msg = String::new();
        for _ in 0..3 {
            let (s, ts) = event(i, &mut rng);
            i += 1;
            let line = format!(
                r#"{{"ts":"{ts}","service":"{}","status":{},"latency_ms":{}}}"#,
                s.service, s.status, s.latency_ms
            );
            msg.push_str(
                &serde_json::json!({"log": format!("{line}\n"), "stream": "stdout", "time": ts})
                    .to_string(),
            );
            msg.push('\n');
            sent.push(s);
        }
        send(&producer, "docker", &m.to_string(), msg.as_bytes());
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let docker = InputConfig {
        envelope: Some(Envelope::Docker),
        ..InputConfig::default()
    };
    let slate = start_opts(&brokers, "docker", None, SLOS, None, Some(docker));
    check(slate.addr, &sent, 0.0);
    slate.stop.send(()).unwrap();
    slate.handle.join().unwrap().unwrap();
}

/// The weekly review of a running slate (`/api/v1/review`, and `slate
/// review --source URL`): sixteen days of history with an error burst,
/// read from Kafka, give last week's figures exactly as `slate review`
/// of `slate replay`'s report of the same lines does (the one number,
/// each SLO's burn this week and the week before with its counts, the
/// week's incidents); and after a restart on the same state dir the
/// weeks come back from the snapshot, not from Kafka.
#[test]
fn the_live_review_equals_the_review_of_a_replay_and_survives_a_restart() {
    use slate::gen::{generate, GenOptions, Incident};
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    // One partition: a service's events in one order, as keyed traffic
    // gives them (unkeyed, a service's slices are judged on its first
    // partition's clock).
    cluster.create_topic("weeks", 1, 1).unwrap();
    let seed_spec = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/service-slos.yml"
    ))
    .unwrap();
    let now = now_us();
    let start = (now - 16 * 86_400_000_000).div_euclid(60_000_000) * 60_000_000;
    let opts = GenOptions {
        services: 3,
        duration: slate::model::Span((now - 3_600_000_000) - start),
        rate: 0.004,
        seed: 9,
        start,
        incidents: vec![Incident::parse("errors:api-gateway:9d+3h:0.5").unwrap()],
        ..GenOptions::default()
    };
    let mut bytes = Vec::new();
    generate(&opts, &mut bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("weeks.jsonl");
    std::fs::write(&file, &bytes).unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    for (i, l) in lines.iter().enumerate() {
        send(&producer, "weeks", &i.to_string(), l);
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    // Last week, as ISO weeks go.
    let week = {
        let d = jiff::Timestamp::from_microsecond(now - 7 * 86_400_000_000)
            .unwrap()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date()
            .iso_week_date();
        format!("{:04}-W{:02}", d.year(), d.week())
    };
    // The replay's review of the same lines.
    let report = dir.path().join("report.json");
    let slo_file = dir.path().join("slos.yml");
    std::fs::write(&slo_file, &seed_spec).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(["replay", "--slo"])
        .arg(&slo_file)
        .arg("--json")
        .arg(&report)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(["review", "-o", "json", "--week", &week, "--source"])
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let want: Value = serde_json::from_slice(&out.stdout).unwrap();

    let same = |got: &Value| {
        assert_eq!(got["period"], want["period"]);
        for k in ["reliability", "previous_reliability"] {
            let (g, w) = (got[k].as_f64(), want[k].as_f64());
            assert!(
                g.zip(w).is_some_and(|(g, w)| (g - w).abs() < 1e-9) || g == w,
                "{k}: {g:?} vs {w:?}"
            );
        }
        let rows = |v: &Value| -> Vec<(String, String, String, String, u64, u64, u64)> {
            let mut r: Vec<_> = v["slos_reviewed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["service"].as_str().unwrap().to_string(),
                        s["slo"].as_str().unwrap().to_string(),
                        format!("{:.9}", s["burn"].as_f64().unwrap_or(-1.0)),
                        format!("{:.9}", s["previous_burn"].as_f64().unwrap_or(-1.0)),
                        s["good"].as_u64().unwrap(),
                        s["total"].as_u64().unwrap(),
                        s["incidents"].as_u64().unwrap(),
                    )
                })
                .collect();
            r.sort();
            r
        };
        assert_eq!(rows(got), rows(&want));
        let incidents = |v: &Value| -> Vec<(String, String, String, String)> {
            let mut r: Vec<_> = v["incidents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["service"].as_str().unwrap().to_string(),
                        i["slo"].as_str().unwrap().to_string(),
                        i["severity"].as_str().unwrap().to_string(),
                        i["start"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            r.sort();
            r
        };
        assert_eq!(incidents(got), incidents(&want));
    };
    let total = lines.len() as f64;
    let state = dir.path().join("state");
    for round in 0..2 {
        let slate = start_opts(&brokers, "weeks", None, &seed_spec, Some(&state), None);
        wait_for(slate.addr, "every record to be ingested or restored", |m| {
            round == 1 || m.get(INGESTED) == Some(&total)
        });
        common::wait_for(slate.addr, "ready", Duration::from_secs(90), |_| {
            common::try_get(slate.addr, "/readyz").is_some_and(|(s, _)| s == 200)
        });
        let (status, body) = get(slate.addr, &format!("/api/v1/review?week={week}"));
        assert_eq!(status, 200, "{body}");
        same(&serde_json::from_str(&body).unwrap());
        // The CLI reads the same endpoint.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_slate"))
            .args(["review", "--week", &week, "--source"])
            .arg(format!("http://{}", slate.addr))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let md = String::from_utf8(out.stdout).unwrap();
        assert!(
            md.starts_with(&format!("# SLO review: week {week}")),
            "{md}"
        );
        let (status, body) = get(slate.addr, "/api/v1/review?week=1999-W01");
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("no week 1999-W01 to review"), "{body}");
        slate.stop.send(()).unwrap();
        slate.handle.join().unwrap().unwrap();
        // The second run reads nothing again: its weeks come from the
        // state dir (without them this fails: tried).
    }
}
