//! Criterion benches of durable state (DESIGN §9): a snapshot pass at
//! 10,000 services with a tenth of them changed (what the apply thread
//! spends taking it, encoded; what the writer spends putting it in its
//! envelope; its bytes), the base pass, and a restore of 10,000 services
//! from a base; and the same passes as state-topic records (their bytes,
//! keys included) with a new owner's adoption of 10,000 services from
//! them (what an assignment costs beside reading the topic).

use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

use slate::apply::snapshot::{self, service_key, PassFile, TopicRecord};
use slate::apply::{Core, CoreSettings};
use slate::engine::EngineSettings;
use slate::model::{Event, Micros, Span, MICROS_PER_SEC};
use slate::spec::SloSpec;

const SERVICES: usize = 10_000;
const T0: Micros = 1_794_999_960 * MICROS_PER_SEC;

/// 10,000 services, each with an error-rate, a latency and an
/// availability SLO over 30 days.
fn spec() -> SloSpec {
    let mut text = String::from("services:\n");
    for i in 0..SERVICES {
        text.push_str(&format!(
            "  svc-{i}:\n    slo_error_rate: 99.9%\n    slo_latency_p99: 300ms\n    slo_availability: 99.5%\n"
        ));
    }
    SloSpec::parse(Path::new("bench.yml"), &text).unwrap()
}

fn settings() -> CoreSettings {
    CoreSettings {
        engine: EngineSettings {
            max_services: SERVICES,
            ..EngineSettings::default()
        },
        min_events: 0,
        step: Span::mins(1),
    }
}

/// A day of traffic for every service (one event every 30 s each, a
/// latency spread over two decades), ticked every minute.
fn core() -> (Core, Micros) {
    let spec = spec();
    let mut c = Core::new(&spec, settings());
    let ids: Vec<_> = (0..SERVICES)
        .map(|i| c.resolve(&format!("svc-{i}")).unwrap())
        .collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let end = T0 + 86_400 * MICROS_PER_SEC;
    let mut ts = T0;
    while ts < end {
        for &id in &ids {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ev = Event {
                ts: ts + (x % 30_000_000) as Micros,
                service: id,
                error: x.is_multiple_of(211),
                latency_us: Some(2_000 + (x >> 20) % 400_000),
            };
            while let Some(t) = c.due_tick(0, ev.ts) {
                c.tick(0, t);
            }
            let now = c.now_at(0, ev.ts);
            c.apply(0, &ev, now).unwrap();
        }
        ts += 30 * MICROS_PER_SEC;
    }
    (c, end)
}

/// One event each for a tenth of the services: what a pass then writes.
fn touch_a_tenth(c: &mut Core, at: Micros) {
    for i in (0..SERVICES).step_by(10) {
        let id = c.resolve(&format!("svc-{i}")).unwrap();
        let ev = Event {
            ts: at,
            service: id,
            error: false,
            latency_us: Some(20_000),
        };
        c.apply(0, &ev, at).unwrap();
    }
}

fn state(c: &mut Criterion) {
    let (mut core, end) = core();
    let base = core.take(true).encode();
    let base_bytes = base.to_bytes();
    touch_a_tenth(&mut core, end);
    let delta = core.take(false).encode().to_bytes();
    eprintln!(
        "state at {SERVICES} services: base {:.1} MB, a pass with a tenth changed {:.1} MB ({} B a service)",
        base_bytes.len() as f64 / 1e6,
        delta.len() as f64 / 1e6,
        delta.len() / (SERVICES / 10)
    );
    // The same as state-topic records: key and value of each service.
    let records = |t: &snapshot::Taken| -> Vec<(Box<str>, Vec<u8>)> {
        t.units
            .iter()
            .map(|u| {
                let v = TopicRecord::Service {
                    next_offset: 1 << 40,
                    unit: u.bytes.clone(),
                }
                .to_bytes();
                (u.name.clone(), v)
            })
            .collect()
    };
    let topic_bytes = |r: &[(Box<str>, Vec<u8>)]| -> usize {
        r.iter().map(|(n, v)| service_key(n).len() + v.len()).sum()
    };
    let base_records = records(&core.clone().take(true));
    let tenth_records = {
        let mut c = core.clone();
        touch_a_tenth(&mut c, end);
        records(&c.take(false))
    };
    eprintln!(
        "state topic at {SERVICES} services: a base {:.1} MB in {} records, a pass with a tenth changed {:.1} MB in {} records (keys and values; a head record a partition besides)",
        topic_bytes(&base_records) as f64 / 1e6,
        base_records.len(),
        topic_bytes(&tenth_records) as f64 / 1e6,
        tenth_records.len(),
    );
    let mut g = c.benchmark_group("state");
    g.sample_size(10);
    g.bench_function("take_a_pass_10k_services_1k_changed", |b| {
        b.iter_batched(
            || {
                let mut c = core.clone();
                touch_a_tenth(&mut c, end);
                c
            },
            |mut c| c.take(false).units.len(),
            BatchSize::LargeInput,
        )
    });
    let taken = {
        let mut c = core.clone();
        touch_a_tenth(&mut c, end);
        c.take(false)
    };
    g.bench_function("envelope_a_pass_10k_services_1k_changed", |b| {
        b.iter_batched(
            || taken.clone(),
            |t| t.encode().to_bytes().len(),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("take_a_base_10k_services", |b| {
        b.iter_batched(
            || core.clone(),
            |mut c| c.take(true).units.len(),
            BatchSize::LargeInput,
        )
    });
    let sp = spec();
    g.bench_function("restore_10k_services", |b| {
        b.iter(|| {
            let f = PassFile::from_bytes(&base_bytes).unwrap();
            let units = f.units.into_iter().map(|u| (u.name, u.bytes)).collect();
            snapshot::restore(&f.head, units, &sp, settings())
                .unwrap()
                .engine
                .len()
        })
    });
    g.bench_function("adopt_10k_services_from_state_topic_records", |b| {
        b.iter(|| {
            let mut c = Core::new(&sp, settings());
            for (name, v) in &base_records {
                let TopicRecord::Service { unit, .. } = TopicRecord::from_bytes(v).unwrap() else {
                    unreachable!()
                };
                c.adopt(0, name, &unit).unwrap();
            }
            c.engine.len()
        })
    });
    g.finish();
}

criterion_group!(benches, state);
criterion_main!(benches);
