//! End-to-end Kafka harness: starts a Tansu broker in memory, fills a
//! 3-partition topic, and reads it, in the same run, with a bare rdkafka
//! consumer and with `slate run` (the real binary, a fresh consumer group
//! each time, alternating). Prints both rates, their ratio, slate's CPU
//! time and peak RSS; then the produce-to-visible latency in `/metrics` at
//! half of slate's measured rate. slate keeps its state in a state dir of
//! its own per run (snapshot passes on); with `--state-off-too` each round
//! also runs slate with `state.interval: 0s`, alternating, and prints the
//! on/off ratios (DESIGN §9: ingest with snapshots on ≥ 90% of off).
//!
//!     SLATE_TANSU=~/.cache/slate/tools/bin/tansu cargo bench --bench kafka_e2e
//!     ... -- --events 5000000 --services 10 --rounds 3
//!     ... -- --services 10000 --events 3000000 --rounds 1   # RSS at 10k services
//!     ... -- --state-off-too --rounds 5 --no-latency        # snapshots on against off
//!
//! Run by hand; CI only compiles it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn producer(brokers: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "10")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .unwrap()
}

fn send(p: &BaseProducer, topic: &str, key: &str, payload: &[u8]) {
    let mut rec = BaseRecord::to(topic).key(key).payload(payload);
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((_, r)) => {
                rec = r;
                p.poll(Duration::from_millis(2));
            }
        }
    }
}

fn line(ts: i64, service: usize, i: u64) -> String {
    let status = if i.is_multiple_of(97) { 503 } else { 200 };
    let latency = 1.0 + (i.wrapping_mul(7919) % 400_000) as f64 / 1000.0;
    format!(
        r#"{{"ts":"{}","service":"svc-{service:05}","endpoint":"/v1/items","method":"GET","status":{status},"latency_ms":{latency}}}"#,
        slate::model::format_rfc3339(ts)
    )
}

/// `n` events over the last 50 minutes, round-robin over `services`,
/// keyed by service.
fn fill(brokers: &str, topic: &str, n: u64, services: usize) {
    let p = producer(brokers);
    let start = now_us() - 55 * 60 * 1_000_000;
    let span = 50 * 60 * 1_000_000i64;
    for i in 0..n {
        let svc = (i % services as u64) as usize;
        let ts = start + (i as i64 * span / n as i64);
        send(
            &p,
            topic,
            &format!("svc-{svc:05}"),
            line(ts, svc, i).as_bytes(),
        );
        if i % 10_000 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
}

/// Messages per second a bare consumer reads the whole topic at (from the
/// first message to the last), with slate's fetch settings (librdkafka's
/// defaults hold every fetch 500 ms on Tansu: about 140k msg/s) and any
/// `BARE_PROPS=k=v,...` on top.
fn bare(brokers: &str, topic: &str, n: u64, group: &str) -> f64 {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    for (k, v) in slate::source::kafka::FETCH_PROPERTIES {
        cfg.set(k, v);
    }
    for kv in std::env::var("BARE_PROPS")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let (k, v) = kv.split_once('=').unwrap();
        cfg.set(k, v);
    }
    let c: BaseConsumer = cfg.create().unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut seen = 0u64;
    let mut bytes = 0usize;
    let mut first = None;
    while seen < n {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            bytes += m.payload().map_or(0, |p| p.len());
            seen += 1;
        }
    }
    std::hint::black_box(bytes);
    n as f64 / first.unwrap().elapsed().as_secs_f64()
}

/// HTTP/1.0: the body comes whole (close-delimited), not in chunks.
fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: b\r\n\r\n").ok()?;
    let mut t = String::new();
    s.read_to_string(&mut t).ok()?;
    Some(t.split_once("\r\n\r\n")?.1.to_string())
}

fn ingested(addr: SocketAddr) -> Option<u64> {
    let text = get(addr, "/metrics")?;
    text.lines()
        .find(|l| l.starts_with("slate_events_ingested_total{source=\"kafka\"}"))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

struct Slate {
    child: Killed,
    addr: SocketAddr,
}

fn slate(brokers: &str, topic: &str, group: &str, state_on: bool) -> Slate {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slate"));
    cmd.arg("run");
    let config = std::env::var("SLATE_BENCH_CONFIG").ok();
    if state_on {
        if let Some(config) = &config {
            cmd.args(["--config", config]);
        }
    } else {
        // SLATE_BENCH_CONFIG's settings (it must have no `state:` section)
        // with snapshots off.
        let mut text = config
            .map(|c| std::fs::read_to_string(c).unwrap())
            .unwrap_or_default();
        text.push_str("\nstate:\n  interval: 0s\n");
        let off = std::env::temp_dir().join(format!("slate-bench-off-{}.yml", std::process::id()));
        std::fs::write(&off, text).unwrap();
        cmd.arg("--config").arg(off);
    }
    // A state dir of its own per run (kept until the process ends).
    let state =
        std::env::temp_dir().join(format!("slate-bench-state-{group}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    cmd.arg("--state-dir").arg(&state);
    let child = cmd
        .args([
            "--brokers",
            brokers,
            "--topic",
            topic,
            "--group",
            group,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Slate {
        child: Killed(child),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

fn proc_status(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// slate's rate over the whole topic (first ingested to last), its CPU
/// seconds over that stretch, and its peak RSS in KiB.
fn slate_rate(
    brokers: &str,
    topic: &str,
    n: u64,
    group: &str,
    services: usize,
    state_on: bool,
) -> (f64, f64, u64) {
    // A scrape of 10k services is ~50 MB of text: scrape seldom then.
    let every = Duration::from_millis(if services > 100 { 500 } else { 5 });
    let s = slate(brokers, topic, group, state_on);
    let pid = s.child.0.id();
    let (mut first, mut cpu0) = (None, 0.0);
    let mut s = s;
    loop {
        if let Ok(Some(status)) = s.child.0.try_wait() {
            panic!("slate exited: {status}");
        }
        let got = ingested(s.addr).unwrap_or(0);
        if got > 0 && first.is_none() {
            first = Some((Instant::now(), got));
            cpu0 = cpu_secs(pid);
        }
        if got >= n {
            break;
        }
        thread::sleep(every);
    }
    let (t0, n0) = first.unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid) - cpu0;
    ((n - n0) as f64 / secs, cpu, proc_status(pid, "VmHWM:"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Produces at `rate` for `secs` and samples, for each batch produced, how
/// long until `/metrics` counts it.
fn latency(brokers: &str, topic: &str, rate: f64, secs: f64) -> Vec<f64> {
    let s = slate(brokers, topic, "latency", true);
    while get(s.addr, "/readyz").is_none_or(|r| r != "ready\n") {
        thread::sleep(Duration::from_millis(100));
    }
    let base = ingested(s.addr).unwrap();
    let produced: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let seen = Arc::new(AtomicU64::new(base));
    let done = Arc::new(AtomicBool::new(false));
    let visible: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let scraper = {
        let (done, visible, seen) = (done.clone(), visible.clone(), seen.clone());
        let addr = s.addr;
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(n) = ingested(addr) {
                    seen.store(n, Ordering::Relaxed);
                    visible.lock().unwrap().push((Instant::now(), n - base));
                }
                thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let p = producer(brokers);
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        while sent < due {
            send(
                &p,
                topic,
                &format!("svc-{:05}", sent % 10),
                line(now_us(), (sent % 10) as usize, sent).as_bytes(),
            );
            sent += 1;
        }
        p.poll(Duration::ZERO);
        // librdkafka batches for linger.ms; a sample is taken when the
        // batch is handed over, i.e. after the flush of this step.
        p.flush(Duration::from_secs(10)).unwrap();
        produced.lock().unwrap().push((Instant::now(), sent));
        thread::sleep(Duration::from_millis(10));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.load(Ordering::Relaxed) < base + sent && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    done.store(true, Ordering::Relaxed);
    scraper.join().unwrap();
    let visible = visible.lock().unwrap();
    let produced = produced.lock().unwrap();
    let out = produced
        .iter()
        .filter_map(|&(t, n)| {
            visible
                .iter()
                .find(|(_, v)| *v >= n)
                .map(|(tv, _)| tv.saturating_duration_since(t).as_secs_f64())
        })
        .collect();
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("kafka_e2e: run it with `cargo bench --bench kafka_e2e` (needs SLATE_TANSU)");
        return;
    }
    let tansu = std::env::var("SLATE_TANSU").expect(
        "SLATE_TANSU: the tansu binary (scripts/test installs it in ~/.cache/slate/tools/bin)",
    );
    let n: u64 = arg(&args, "--events").map_or(3_000_000, |v| v.parse().unwrap());
    let services: usize = arg(&args, "--services").map_or(10, |v| v.parse().unwrap());
    let rounds: usize = arg(&args, "--rounds").map_or(3, |v| v.parse().unwrap());
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let _broker = Killed(
        Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        thread::sleep(Duration::from_millis(100));
    }
    let brokers = format!("127.0.0.1:{port}");
    let ok = Command::new(&tansu)
        .args([
            "topic",
            "create",
            "--broker",
            &url,
            "--partitions",
            "3",
            "bench",
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let t = Instant::now();
    fill(&brokers, "bench", n, services);
    println!(
        "topic: {n} events, {services} services, 3 partitions, produced in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    println!(
        "bare consumer: slate's fetch settings ({}){}",
        slate::source::kafka::FETCH_PROPERTIES
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", "),
        std::env::var("BARE_PROPS")
            .map(|p| format!(", then BARE_PROPS {p}"))
            .unwrap_or_default()
    );
    let (mut bare_rates, mut slate_rates, mut ratios, mut per_cpu) =
        (vec![], vec![], vec![], vec![]);
    let mut rss = 0;
    let off_too = args.iter().any(|a| a == "--state-off-too");
    let (mut on_off_rate, mut on_off_cpu) = (vec![], vec![]);
    for r in 0..rounds {
        // Off first in odd rounds, after in even ones.
        let off = |when: usize| {
            (off_too && r % 2 == when).then(|| {
                let (s, cpu, peak) =
                    slate_rate(&brokers, "bench", n, &format!("off-{r}"), services, false);
                println!(
                    "round {r}: slate, snapshots off: {s:.0} events/s, {cpu:.2} CPU-s, {:.0} events per CPU-s, peak RSS {} MiB",
                    n as f64 / cpu,
                    peak / 1024
                );
                (s, cpu)
            })
        };
        let off_before = off(1);
        let b = bare(&brokers, "bench", n, &format!("bare-{r}"));
        let (s, cpu, peak) =
            slate_rate(&brokers, "bench", n, &format!("slate-{r}"), services, true);
        if let Some((off_rate, off_cpu)) = off_before.or_else(|| off(0)) {
            on_off_rate.push(s / off_rate);
            on_off_cpu.push(cpu / off_cpu);
        }
        println!(
            "round {r}: bare rdkafka {:.0} msg/s, slate {:.0} events/s ({:.0}%), slate {:.2} CPU-s, {:.0} events per CPU-s, peak RSS {} MiB",
            b,
            s,
            100.0 * s / b,
            cpu,
            n as f64 / cpu,
            peak / 1024
        );
        bare_rates.push(b);
        slate_rates.push(s);
        ratios.push(s / b);
        per_cpu.push(n as f64 / cpu);
        rss = rss.max(peak);
    }
    println!(
        "median: bare {:.0} msg/s, slate {:.0} events/s, ratio {:.2}, {:.0} events per CPU-s; peak RSS {} MiB",
        median(&mut bare_rates),
        median(&mut slate_rates),
        median(&mut ratios),
        median(&mut per_cpu),
        rss / 1024
    );
    if off_too {
        println!(
            "snapshots on against off: events/s ratio {:.2} (rounds {}), CPU-s ratio {:.2}",
            median(&mut on_off_rate.clone()),
            on_off_rate
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            median(&mut on_off_cpu)
        );
    }
    if !args.iter().any(|a| a == "--no-latency") {
        let rate = (median(&mut slate_rates) / 2.0).min(400_000.0);
        let mut l = latency(&brokers, "bench", rate, 15.0);
        let n = l.len();
        l.sort_by(f64::total_cmp);
        println!(
            "produce-to-visible at {:.0} events/s: {} samples, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            rate,
            n,
            l[n / 2] * 1e3,
            l[(n * 99 / 100).min(n - 1)] * 1e3,
            l[n - 1] * 1e3
        );
    }
}
