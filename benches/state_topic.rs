//! State-topic harness (DESIGN §8a, §9): starts Tansu on its sqlite engine
//! (the one that compacts), and through slate's own state-topic code
//! writes passes of 10,000 services' records of the size `benches/state.rs`
//! measures (20.5 kB a service at 100 requests/s), then reads them back as
//! a new owner does on assignment. Prints, as medians of `--rounds`, the
//! time to write a base (every service) and a pass with a tenth changed,
//! and the time to read all six partitions' latest records (what an
//! assignment of every partition waits for before it adopts them; the
//! adoption itself is `state/adopt_10k_services_from_state_topic_records`
//! in `benches/state.rs`).
//!
//!     SLATE_TANSU=~/.cache/slate/tools/bin/tansu cargo bench --bench state_topic
//!     ... -- --services 10000 --unit-bytes 20500 --rounds 3
//!
//! Run by hand; CI only compiles it.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use slate::apply::snapshot::{service_key, TopicRecord, HEAD_KEY};
use slate::source::statetopic::{self, StateProducer};
use slate::spec::config::KafkaConfig;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Writes `services` records (those with `i % every == 0`) spread over
/// six partitions, then a head per partition, and waits for the broker
/// to have them all. Returns (seconds, bytes).
fn pass(p: &StateProducer, services: usize, every: usize, unit: &[u8], offset: i64) -> (f64, u64) {
    let t = Instant::now();
    let mut bytes = 0u64;
    for i in (0..services).step_by(every) {
        let value = TopicRecord::Service {
            next_offset: offset,
            unit: unit.to_vec(),
        }
        .to_bytes();
        let key = service_key(&format!("svc-{i:05}"));
        bytes += (key.len() + value.len()) as u64;
        p.send((i % 6) as i32, &key, &value).unwrap();
    }
    for part in 0..6 {
        let head = TopicRecord::Head {
            next_offset: offset,
            watermark: None,
            next_tick: None,
            reading: false,
            taken_at: 0,
        }
        .to_bytes();
        bytes += (HEAD_KEY.len() + head.len()) as u64;
        p.send(part, HEAD_KEY, &head).unwrap();
    }
    p.flush(Duration::from_secs(600)).unwrap();
    (t.elapsed().as_secs_f64(), bytes)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("state_topic: run it with `cargo bench --bench state_topic` (needs SLATE_TANSU)");
        return;
    }
    let tansu = std::env::var("SLATE_TANSU").expect(
        "SLATE_TANSU: the tansu binary (scripts/test installs it in ~/.cache/slate/tools/bin)",
    );
    let services: usize = arg(&args, "--services").map_or(10_000, |v| v.parse().unwrap());
    let unit_bytes: usize = arg(&args, "--unit-bytes").map_or(20_500, |v| v.parse().unwrap());
    let rounds: usize = arg(&args, "--rounds").map_or(3, |v| v.parse().unwrap());
    let dir = std::env::temp_dir().join(format!("slate-state-topic-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let _broker = Killed(
        Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "sqlite://tansu.db",
            ])
            .current_dir(&dir)
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
            "6",
            "input",
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let cfg = KafkaConfig {
        topics: vec!["input".into()],
        state_topic: Some("input-state".into()),
        ..KafkaConfig::default()
    };
    // Created as slate creates it: compacted, six partitions.
    statetopic::ensure(&cfg, &brokers)
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    let producer = StateProducer::new(&cfg, &brokers).unwrap();
    // Incompressible, as encoded histograms nearly are.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let unit: Vec<u8> = (0..unit_bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let (base_s, base_bytes) = pass(&producer, services, 1, &unit, 1);
    println!(
        "a base: {services} services, {:.1} MB, written in {base_s:.2} s",
        base_bytes as f64 / 1e6
    );
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    let mut tenth_bytes = 0;
    let parts: Vec<i32> = (0..6).collect();
    for round in 0..rounds {
        let (s, b) = pass(&producer, services, 10, &unit, 2 + round as i64);
        writes.push(s);
        tenth_bytes = b;
        let t = Instant::now();
        let read = statetopic::read(&cfg, &brokers, &parts, Duration::from_secs(600)).unwrap();
        reads.push(t.elapsed().as_secs_f64());
        let keys: usize = read.iter().map(|(_, l)| l.len()).sum();
        assert_eq!(keys, services + 6, "latest record per key");
    }
    println!(
        "a pass with a tenth changed: {:.1} MB, written in {:.2} s (median of {rounds})",
        tenth_bytes as f64 / 1e6,
        median(writes)
    );
    println!(
        "reading every partition's latest records ({services} services, {:.1} MB and what compaction has not removed yet): {:.2} s (median of {rounds})",
        base_bytes as f64 / 1e6,
        median(reads)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
