//! End-to-end replay harness: generates a file of synthetic events (≥ 1M),
//! replays it with 1 and with all decode threads, each in a fresh child
//! process, and prints events/s and peak RSS. Also measures engine memory
//! at many services fed straight into the engine.
//!
//!     cargo bench --bench replay_e2e                 # replay, 1.2M events
//!     cargo bench --bench replay_e2e -- --events 5000000
//!     cargo bench --bench replay_e2e -- --memory 10000   # services, in process
//!     cargo bench --bench replay_e2e -- --baseline --rounds 5
//!     cargo bench --bench replay_e2e -- --envelopes --rounds 3
//!
//! `--envelopes` writes the same events in every envelope (DESIGN §3),
//! and nginx `combined` lines in Docker's and CRI's, and times,
//! alternating, `slate replay` of each against the same lines bare:
//! unwrapping must cost ≤ 30% over the inner format read bare (DESIGN §9).
//!
//! `--baseline` (DESIGN §9) times, alternating, `slate replay` on one
//! decode thread and a bare serde_json reader of the same file (split
//! lines with memchr, borrow-decode `ts`/`service`/`status`/`latency_ms`,
//! parse the time with jiff, count per service in an Fx map: about what
//! any straightforward Rust reader costs), each in a fresh child process, and
//! prints the medians of their CPU seconds and slate's ratio to the bare
//! reader's.
//!
//! Run by hand; CI only compiles it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use slate::engine::{Engine, EngineSettings};
use slate::gen::{generate, GenOptions, Incident};
use slate::model::{Event, Span, MICROS_PER_SEC};
use slate::replay::{replay, ReplayOptions};
use slate::source::file::InputName;
use slate::spec::{Config, SloSpec};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) this process has used, all threads.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`: state is the 3rd; utime and stime the 14th and 15th.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn spec_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/service-slos.yml")
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(threads) = arg(&args, "--child-threads") {
        let envelope = arg(&args, "--child-envelope")
            .map(|e| slate::spec::config::Envelope::parse(&e).unwrap());
        child(
            &arg(&args, "--child-input").unwrap(),
            threads.parse().unwrap(),
            envelope,
            args.iter().any(|a| a == "--child-nginx"),
        );
        return;
    }
    if let Some(input) = arg(&args, "--child-bare") {
        bare(&input);
        return;
    }
    if let Some(n) = arg(&args, "--memory") {
        memory(
            n.parse().unwrap(),
            arg(&args, "--minutes").map_or(70, |m| m.parse().unwrap()),
        );
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs bench targets once without
        // `--bench`: the harness is for `cargo bench` only.
        println!("replay_e2e: run it with `cargo bench --bench replay_e2e`");
        return;
    }
    let events: u64 = arg(&args, "--events").map_or(1_200_000, |e| e.parse().unwrap());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let input = generated(dir, events, slate::spec::config::Envelope::None, false);
    let size = std::fs::metadata(&input).unwrap().len();
    println!("input: {} ({:.0} MB)", input.display(), size as f64 / 1e6);
    if args.iter().any(|a| a == "--envelopes") {
        let rounds: usize = arg(&args, "--rounds").map_or(3, |r| r.parse().unwrap());
        envelopes(dir, events, &input, rounds);
        return;
    }
    if args.iter().any(|a| a == "--baseline") {
        let rounds: usize = arg(&args, "--rounds").map_or(5, |r| r.parse().unwrap());
        baseline(&input, rounds);
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = vec![1];
    if cores > 1 {
        threads.push(cores);
    }
    for t in threads {
        let mut rates = Vec::new();
        let mut per_cpu = Vec::new();
        let mut rss = 0;
        for _ in 0..3 {
            let out = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--child-threads",
                    &t.to_string(),
                    "--child-input",
                    input.to_str().unwrap(),
                ])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let mut f = text.split_whitespace();
            let (events, secs, peak, cpu): (f64, f64, u64, f64) = (
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap().parse().unwrap(),
            );
            rates.push(events / secs);
            per_cpu.push(events / cpu);
            rss = rss.max(peak);
        }
        rates.sort_by(f64::total_cmp);
        per_cpu.sort_by(f64::total_cmp);
        println!(
            "replay threads={t}: median {:.2}M events/s (min {:.2}M, max {:.2}M); {:.2}M events per CPU-second; peak RSS {} MiB",
            rates[1] / 1e6,
            rates[0] / 1e6,
            rates[2] / 1e6,
            per_cpu[1] / 1e6,
            rss / 1024
        );
    }
}

/// The generated input of `events` events in `envelope` (made once):
/// JSON lines, or (`nginx`) nginx's `combined`.
fn generated(
    dir: &Path,
    events: u64,
    envelope: slate::spec::config::Envelope,
    nginx: bool,
) -> PathBuf {
    let kind = if nginx { "nginx-" } else { "" };
    let input = match envelope {
        slate::spec::config::Envelope::None if !nginx => {
            dir.join(format!("replay-e2e-{events}.jsonl"))
        }
        e => dir.join(format!("replay-e2e-{events}.{kind}{}.log", e.name())),
    };
    if !input.exists() {
        // 10 services at 20 events/s: `events` lines over the needed span.
        let secs = events as f64 / (10.0 * 20.0 * 0.91);
        let opts = GenOptions {
            services: 10,
            rate: 20.0,
            duration: Span::secs(secs.ceil() as i64),
            incidents: vec![
                Incident::parse("errors:api-gateway:1h+20m:0.2").unwrap(),
                Incident::parse("disorder:user-service:0s+3h:30s").unwrap(),
            ],
            envelope,
            writer: if nginx {
                let cfg = slate::spec::config::InputConfig {
                    format: slate::spec::config::Format::Nginx,
                    default_service: Some("-".into()),
                    ..Default::default()
                };
                slate::gen::Writer::Layout(slate::decode::TextDecoder::new(&cfg).unwrap())
            } else {
                slate::gen::Writer::Json
            },
            ..GenOptions::default()
        };
        let mut out = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        let n = generate(&opts, &mut out).unwrap();
        eprintln!("generated {n} lines in {}", input.display());
    }
    input
}

/// Each envelope against the bare file, alternating, one decode thread.
fn envelopes(dir: &Path, events: u64, bare_input: &Path, rounds: usize) {
    use slate::spec::config::Envelope;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut cases: Vec<(String, Envelope, PathBuf)> = Vec::new();
    for e in Envelope::CONCRETE.into_iter().skip(1) {
        let wrapped = generated(dir, events, e, false);
        if e == Envelope::Cri {
            // gen splits one line in five into three partials (to test
            // the joining); containerd splits only lines over 16 KiB, so
            // the usual case is whole lines: both are timed.
            cases.push(("cri-whole".into(), e, cri_whole(&wrapped)));
            cases.push(("cri-split".into(), e, wrapped));
        } else {
            cases.push((e.name().into(), e, wrapped));
        }
    }
    // nginx's `combined` as Kubernetes keeps it: a text line in each
    // container runtime's envelope, against the same lines bare.
    let nginx_bare = generated(dir, events, Envelope::None, true);
    for e in [Envelope::Docker, Envelope::Cri] {
        let wrapped = generated(dir, events, e, true);
        let wrapped = match e {
            Envelope::Cri => cri_whole(&wrapped),
            _ => wrapped,
        };
        cases.push((format!("nginx-{}", e.name()), e, wrapped));
    }
    for (name, e, wrapped) in cases {
        let nginx = name.starts_with("nginx-");
        let bare_input = if nginx { &nginx_bare } else { bare_input };
        let (mut bare, mut env) = (Vec::new(), Vec::new());
        let mut counts = (0.0, 0.0);
        for _ in 0..rounds {
            let mut flags = vec![
                "--child-threads",
                "1",
                "--child-input",
                bare_input.to_str().unwrap(),
            ];
            if nginx {
                flags.push("--child-nginx");
            }
            let b = run_child(&flags);
            flags[3] = wrapped.to_str().unwrap();
            flags.extend(["--child-envelope", e.name()]);
            let w = run_child(&flags);
            counts = (b.0, w.0);
            bare.push(b.3);
            env.push(w.3);
        }
        let (b, w) = (median(bare), median(env));
        assert_eq!(counts.0, counts.1, "{name}: the same records");
        println!(
            "{name:<10} CPU seconds, medians of {rounds} alternating runs: bare {b:.3} s, in the envelope {w:.3} s: +{:.0}% ({:.0} events)",
            (w / b - 1.0) * 100.0,
            counts.1
        );
    }
}

/// The CRI file with every partial line joined to its `F` line: each
/// event in one whole line, as containerd writes lines under 16 KiB.
fn cri_whole(split: &Path) -> PathBuf {
    let out = split.with_extension("whole.log");
    if !out.exists() {
        let text = std::fs::read(split).unwrap();
        let mut w = Vec::with_capacity(text.len());
        let mut pending: Vec<u8> = Vec::new();
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let mut parts = line.splitn(4, |&b| b == b' ');
            let (ts, stream, tag) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            let body = parts.next().unwrap_or_default();
            if tag == b"P" {
                pending.extend_from_slice(body);
                continue;
            }
            for part in [ts, b" ", stream, b" F ", &pending, body, b"\n"] {
                w.extend_from_slice(part);
            }
            pending.clear();
        }
        std::fs::write(&out, w).unwrap();
    }
    out
}

fn child(
    input: &str,
    threads: usize,
    envelope: Option<slate::spec::config::Envelope>,
    nginx: bool,
) {
    let start = Instant::now();
    let mut config = Config::default();
    config.input.envelope = envelope;
    if nginx {
        config.input.format = slate::spec::config::Format::Nginx;
        config.input.constant_service = Some("web".into());
    }
    let report = replay(ReplayOptions {
        inputs: vec![InputName(input.into())],
        spec: SloSpec::load(&spec_path()).unwrap(),
        config,
        from: None,
        to: None,
        incidents: Vec::new(),
        threads,
        dead_letter: None,
        progress: false,
        charts: false,
        save_state: None,
    })
    .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let events = report.events.accepted + report.events.rejected;
    println!("{events} {secs} {} {}", peak_rss_kib(), cpu_secs());
}

/// `services` services, each with the seed's three SLOs (api-gateway's),
/// at 100 events/s for `minutes` of event time, fed straight into the
/// engine: the state a live slate holds, without files or Kafka.
fn memory(services: usize, minutes: i64) {
    let yaml: String = std::iter::once("services:\n".to_string())
        .chain((0..services).map(|i| {
            format!("  s{i}:\n    slo_latency_p99: 200ms\n    slo_error_rate: 99.9%\n    slo_availability: 99.95%\n")
        }))
        .collect();
    let spec = SloSpec::parse(Path::new("memory.yml"), &yaml).unwrap();
    let before = peak_rss_kib();
    let mut engine = Engine::new(
        &spec,
        EngineSettings {
            max_services: services,
            span_latency: false,
            calendar: false,
            calendar_days: 0,
            ..EngineSettings::default()
        },
    );
    let start = 1_790_000_000 * MICROS_PER_SEC;
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let t0 = Instant::now();
    let per_second = 100;
    let mut applied = 0u64;
    // Slot by slot, service by service: the same state as interleaved
    // traffic (each service's events stay in time order), fed cache-friendly.
    let per_slot = per_second * 10;
    for slot in 0..minutes * 6 {
        let slot_start = start + slot * 10 * MICROS_PER_SEC;
        for s in 0..services as u32 {
            for k in 0..per_slot {
                let ts = slot_start + k * (10 * MICROS_PER_SEC / per_slot);
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly 2–62 ms, with a tail to 400 ms.
                let lat = 2_000
                    + (x >> 40) % 60_000
                    + if x.is_multiple_of(100) {
                        (x >> 20) % 400_000
                    } else {
                        0
                    };
                engine.record(&Event {
                    ts,
                    service: s,
                    error: x.is_multiple_of(1000),
                    latency_us: Some(lat),
                });
                applied += 1;
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let after = peak_rss_kib();
    println!(
        "memory: {services} services × 100 ev/s × {minutes} min = {applied} events in {secs:.1}s ({:.2}M/s); \
         peak RSS {} MiB (+{} MiB for state, {:.1} KiB per service); engine's own count {:.1} KiB per service",
        applied as f64 / secs / 1e6,
        after / 1024,
        (after - before) / 1024,
        (after - before) as f64 / services as f64,
        engine.heap_bytes() as f64 / 1024.0 / services as f64,
    );
}

/// One child's figures: events, wall seconds, peak RSS (KiB), CPU seconds.
fn run_child(flags: &[&str]) -> (f64, f64, u64, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(flags)
        .output()
        .unwrap();
    assert!(out.status.success(), "{flags:?}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text.split_whitespace();
    (
        f.next().unwrap().parse().unwrap(),
        f.next().unwrap().parse().unwrap(),
        f.next().unwrap().parse().unwrap(),
        f.next().unwrap().parse().unwrap(),
    )
}

/// `slate replay` (one decode thread) against the bare reader, alternating.
fn baseline(input: &Path, rounds: usize) {
    let input = input.to_str().unwrap();
    let (mut slate, mut bare) = (Vec::new(), Vec::new());
    let mut events = (0.0, 0.0);
    for _ in 0..rounds {
        let s = run_child(&["--child-threads", "1", "--child-input", input]);
        let b = run_child(&["--child-bare", input]);
        events = (s.0, b.0);
        slate.push(s.3);
        bare.push(b.3);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (s, b) = (median(slate), median(bare));
    println!(
        "CPU seconds, medians of {rounds} alternating runs: slate replay {s:.3} s ({:.0} events), bare serde_json reader {b:.3} s ({:.0} lines); ratio {:.2}",
        events.0,
        events.1,
        s / b
    );
}

/// The bare reader DESIGN §9 measures slate against.
fn bare(input: &str) {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        ts: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        service: std::borrow::Cow<'a, str>,
        status: Option<u16>,
        latency_ms: Option<f64>,
    }
    let start = Instant::now();
    let data = std::fs::read(input).unwrap();
    let mut per: rustc_hash::FxHashMap<String, (u64, u64, f64)> = rustc_hash::FxHashMap::default();
    let mut n = 0u64;
    let mut newest = i64::MIN;
    let mut at = 0;
    for end in memchr::memchr_iter(b'\n', &data) {
        let line = &data[at..end];
        at = end + 1;
        if line.is_empty() {
            continue;
        }
        n += 1;
        let Ok(l) = serde_json::from_slice::<Line>(line) else {
            continue;
        };
        let Ok(ts) = l.ts.parse::<jiff::Timestamp>() else {
            continue;
        };
        newest = newest.max(ts.as_microsecond());
        let e = match per.get_mut(l.service.as_ref()) {
            Some(e) => e,
            None => per.entry(l.service.into_owned()).or_default(),
        };
        e.0 += 1;
        e.1 += l.status.is_some_and(|s| s >= 500) as u64;
        e.2 += l.latency_ms.unwrap_or(0.0);
    }
    let secs = start.elapsed().as_secs_f64();
    assert!(!per.is_empty() && newest > i64::MIN);
    println!("{n} {secs} {} {}", peak_rss_kib(), cpu_secs());
}
