//! Criterion benches of the hot path: decode one line, record one event,
//! evaluate one service at a tick.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

use slate::decode::batch::decode_chunk;
use slate::decode::{Decoder, JsonDecoder};
use slate::engine::{Engine, EngineSettings};
use slate::evaluate::{evaluate_slos, AlertTracker};
use slate::model::{Event, MICROS_PER_SEC};
use slate::spec::config::InputConfig;
use slate::spec::SloSpec;

const LINE: &[u8] = br#"{"ts":"2026-11-24T10:00:00.123Z","service":"api-gateway","endpoint":"/v1/users","method":"GET","status":200,"latency_ms":12.5}"#;

fn spec() -> SloSpec {
    SloSpec::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/service-slos.yml"
    )))
    .unwrap()
}

fn decode(c: &mut Criterion) {
    let d = JsonDecoder::new(&InputConfig::default());
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("json_line", |b| {
        b.iter(|| d.decode(black_box(LINE)).unwrap().ts)
    });
    let mut chunk = Vec::new();
    for i in 0..10_000 {
        chunk.extend_from_slice(&LINE[..LINE.len()]);
        chunk.push(b'\n');
        let _ = i;
    }
    let d = Decoder::new(&InputConfig::default()).unwrap();
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("chunk_10k_lines_with_interning", |b| {
        b.iter(|| {
            decode_chunk(&d, black_box(chunk.clone()), 1, None)
                .recs
                .len()
        })
    });
    let nginx = Decoder::new(&InputConfig {
        format: slate::spec::config::Format::Nginx,
        log_format: Some(r#"$host $remote_addr - [$time_local] "$request" $status $body_bytes_sent $request_time"#.into()),
        ..InputConfig::default()
    })
    .unwrap();
    let line: &[u8] = br#"api-gateway 10.0.0.1 - [24/Nov/2026:10:00:00 +0000] "GET /v1/users HTTP/1.1" 200 512 0.013"#;
    g.throughput(Throughput::Elements(1));
    g.bench_function("nginx_line", |b| {
        b.iter(|| nginx.decode(black_box(line)).unwrap().ts)
    });
    g.finish();
}

fn record(c: &mut Criterion) {
    let mut engine = Engine::new(&spec(), EngineSettings::default());
    let id = engine.resolve("api-gateway").unwrap();
    let mut ts = 1_790_000_000 * MICROS_PER_SEC;
    let mut i = 0u64;
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(1));
    g.bench_function("event_seed_slos_1000rps", |b| {
        b.iter(|| {
            ts += 1000; // 1000 events a second
            i = i
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let ev = Event {
                ts,
                service: id,
                error: i >> 60 == 0,
                latency_us: Some(5_000 + (i >> 44)),
            };
            engine.record(black_box(&ev));
        })
    });
    g.finish();
}

fn evaluate(c: &mut Criterion) {
    let mut engine = Engine::new(&spec(), EngineSettings::default());
    let id = engine.resolve("api-gateway").unwrap();
    let start = 1_790_000_000 * MICROS_PER_SEC;
    // Two hours at 50 events/s.
    for k in 0..360_000u64 {
        let ev = Event {
            ts: start + (k * 20_000) as i64,
            service: id,
            error: k % 997 == 0,
            latency_us: Some(1_000 + (k * 7919) % 300_000),
        };
        engine.record(&ev);
    }
    let mut now = start + 2 * 3600 * MICROS_PER_SEC;
    let mut tracker = AlertTracker::new(engine.service(id));
    let mut g = c.benchmark_group("evaluate");
    g.throughput(Throughput::Elements(1));
    g.bench_function("alert_tick_one_service", |b| {
        b.iter(|| {
            now += 60 * MICROS_PER_SEC;
            engine.advance_service(id, now);
            tracker.tick(engine.service(id), now, 0);
        })
    });
    g.bench_function("slo_report_one_service", |b| {
        b.iter(|| evaluate_slos(black_box(engine.service(id)), now).len())
    });
    g.finish();
}

/// `/metrics` at 1k and 10k services (targets ≤ 10 ms and ≤ 100 ms; DESIGN
/// §9), each with the seed's three SLOs and ten minutes of traffic: the
/// scrape (text from a snapshot) and the tick that takes the snapshot.
fn render_metrics(c: &mut Criterion) {
    use slate::decode::RejectCounts;
    use slate::export::prometheus::{render, render_chunks, Exposition, SCRAPE_CHUNK};
    use slate::export::snapshot::{Counters, KafkaGauges, Snapshot};
    let mut g = c.benchmark_group("export");
    g.sample_size(10);
    for services in [1000u32, 10_000] {
        let yaml: String = std::iter::once("services:\n".to_string())
            .chain((0..services).map(|i| format!("  s{i}:\n    slo_latency_p99: 200ms\n    slo_error_rate: 99.9%\n    slo_availability: 99.95%\n")))
            .collect();
        let spec = SloSpec::parse(Path::new("bench.yml"), &yaml).unwrap();
        let mut engine = Engine::new(&spec, EngineSettings::default());
        let start = 1_790_000_000 * MICROS_PER_SEC;
        for sec in 0..600i64 {
            for s in 0..services {
                let ev = Event {
                    ts: start + sec * MICROS_PER_SEC,
                    service: s,
                    error: sec % 97 == 0,
                    latency_us: Some(1_000 + (sec as u64 * 7919 + s as u64) % 300_000),
                };
                engine.record(&ev);
            }
        }
        let now = start + 600 * MICROS_PER_SEC;
        engine.advance_all(now);
        let trackers: Vec<_> = (0..services)
            .map(|s| Some(AlertTracker::new(engine.service(s))))
            .collect();
        let snapshot = Snapshot::take(&engine, &trackers, now, |_| true);
        let counters = Counters::from_engine(&engine, vec![("kafka", 1)], RejectCounts::default());
        let kafka = KafkaGauges {
            lag: vec![("logs".into(), 0, 12)],
            spread: Vec::new(),
            catching_up: vec![("logs".into(), 0, false)],
            state: Some(Default::default()),
        };
        let k = services / 1000;
        g.bench_function(format!("render_{k}k_services"), |b| {
            b.iter(|| {
                render(&Exposition {
                    snapshot: &snapshot,
                    counters: &counters,
                    kafka: Some(&kafka),
                    reload: None,
                    compat: Default::default(),
                })
                .len()
            })
        });
        // What a scrape does: the same text in chunks, each sent and
        // dropped as it fills.
        g.bench_function(format!("scrape_{k}k_services"), |b| {
            b.iter(|| {
                let mut len = 0;
                render_chunks(
                    &Exposition {
                        snapshot: &snapshot,
                        counters: &counters,
                        kafka: Some(&kafka),
                        reload: None,
                        compat: Default::default(),
                    },
                    SCRAPE_CHUNK,
                    &mut |c: String| {
                        len += c.len();
                        true
                    },
                );
                len
            })
        });
        g.bench_function(format!("snapshot_{k}k_services"), |b| {
            b.iter(|| {
                Snapshot::take(&engine, &trackers, now, |_| true)
                    .services
                    .len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decode, record, evaluate, render_metrics);
criterion_main!(benches);
