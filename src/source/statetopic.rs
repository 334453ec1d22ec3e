//! The state topic (`kafka.state_topic`, DESIGN §8a): a compacted topic
//! beside the input that holds the live state, input partition p's in its
//! partition p, keyed by service, as Kafka Streams keeps a changelog.
//! This module moves the records: it makes sure the topic is there and
//! laid out as the input is, reads a partition's latest record per key on
//! assignment, and writes passes. What the records say is the snapshot
//! format's (`apply::snapshot::TopicRecord`).
//!
//! May import `model` and `spec` (the `kafka` section).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use rustc_hash::FxHashMap;

use crate::spec::config::KafkaConfig;

/// A client config for the state topic: the brokers and the user's
/// properties (SASL, TLS), less the consumer group's.
fn client(cfg: &KafkaConfig, brokers: &str, id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers).set("client.id", id);
    for (k, v) in &cfg.properties {
        let consumer_only = k.starts_with("fetch.")
            || k.starts_with("queued.")
            || k.starts_with("group.")
            || k.starts_with("partition.assignment")
            || k.starts_with("session.")
            || k.starts_with("heartbeat.")
            || k.starts_with("max.poll");
        if !consumer_only {
            c.set(k, v);
        }
    }
    c
}

/// Why the state topic cannot be used yet.
#[derive(Debug)]
pub enum Unready {
    /// The brokers cannot say yet (down, or the input topic not created
    /// yet): try again.
    Retry(String),
    /// It exists with another layout: only the user can fix that.
    Fatal(String),
}

/// Makes sure the state topic exists, compacted, with as many partitions
/// as the input topic (created so if it is missing). Returns that count.
pub fn ensure(cfg: &KafkaConfig, brokers: &str) -> Result<usize, Unready> {
    let (Some(state), Some(input)) = (cfg.state_topic.as_deref(), cfg.topics.first()) else {
        return Err(Unready::Fatal("no state topic".into()));
    };
    let timeout = Duration::from_secs(10);
    let admin: AdminClient<DefaultClientContext> = client(cfg, brokers, "slate-state-admin")
        .create()
        .map_err(|e| Unready::Fatal(format!("state topic admin client: {e}")))?;
    let partitions = |topic: &str| -> Result<Option<usize>, Unready> {
        let md = admin
            .inner()
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| Unready::Retry(format!("metadata of {topic}: {e}")))?;
        Ok(md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len())
            .filter(|&n| n > 0))
    };
    let Some(want) = partitions(input)? else {
        return Err(Unready::Retry(format!(
            "the input topic {input} does not exist yet (the state topic {state} is created with its partition count)"
        )));
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Unready::Fatal(format!("state topic admin: {e}")))?;
    let opts = AdminOptions::new().request_timeout(Some(timeout));
    match partitions(state)? {
        Some(have) if have != want => {
            return Err(Unready::Fatal(format!(
            "the state topic {state} has {have} partition(s) and the input topic {input} {want}: \
                 input partition p's state is kept in {state}'s partition p, so they must be equal \
                 (delete {state} to have slate create it, or name another kafka.state_topic)"
        )))
        }
        Some(_) => {
            let described = rt
                .block_on(admin.describe_configs(&[ResourceSpecifier::Topic(state)], &opts))
                .map_err(|e| Unready::Retry(format!("describing {state}: {e}")))?;
            if let Some(Ok(res)) = described.first() {
                let policy = res
                    .get("cleanup.policy")
                    .and_then(|e| e.value.clone())
                    .unwrap_or_else(|| "delete".into());
                if !policy.contains("compact") {
                    return Err(Unready::Fatal(format!(
                        "the state topic {state} has cleanup.policy={policy}: it must be compact, \
                         or the broker deletes the state of services that have not changed for \
                         its retention (kafka-configs --alter --entity-type topics --entity-name {state} \
                         --add-config cleanup.policy=compact)"
                    )));
                }
            }
        }
        None => {
            let n = i32::try_from(want).unwrap_or(i32::MAX);
            let topic = NewTopic::new(state, n, TopicReplication::Fixed(-1))
                .set("cleanup.policy", "compact");
            let made = rt
                .block_on(admin.create_topics(&[topic], &opts))
                .map_err(|e| Unready::Retry(format!("creating {state}: {e}")))?;
            match made.first() {
                Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | Some(Ok(_)) | None => {}
                Some(Err((_, code))) => {
                    return Err(Unready::Retry(format!("creating {state}: {code}")));
                }
            }
            tracing::info!(
                target: "state",
                "created the state topic {state}: {want} partition(s) as {input} has, cleanup.policy=compact"
            );
        }
    }
    Ok(want)
}

/// The latest record of each key of a state-topic partition.
pub type Latest = FxHashMap<Vec<u8>, Vec<u8>>;

/// Reads each of `partitions` of the state topic from its start to its
/// end, keeping the latest value of each key.
pub fn read(
    cfg: &KafkaConfig,
    brokers: &str,
    partitions: &[i32],
    timeout: Duration,
) -> Result<Vec<(i32, Latest)>, String> {
    let Some(state) = cfg.state_topic.as_deref() else {
        return Ok(Vec::new());
    };
    // librdkafka assigns only with a group id; this consumer never joins
    // the group nor commits.
    let consumer: BaseConsumer = client(cfg, brokers, "slate-state-restore")
        .set("group.id", format!("{}-state-restore", cfg.group))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()
        .map_err(|e| format!("state topic consumer: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut tpl = TopicPartitionList::new();
    // Per partition: the end to read up to, and what was read.
    let mut todo: FxHashMap<i32, i64> = FxHashMap::default();
    let mut out: FxHashMap<i32, Latest> = FxHashMap::default();
    for &p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(state, p, deadline.saturating_duration_since(Instant::now()))
            .map_err(|e| format!("the end of {state}/{p}: {e}"))?;
        out.insert(p, Latest::default());
        if high > low {
            todo.insert(p, high);
            tpl.add_partition_offset(state, p, Offset::Beginning)
                .map_err(|e| format!("{state}/{p}: {e}"))?;
        }
    }
    if !todo.is_empty() {
        consumer
            .assign(&tpl)
            .map_err(|e| format!("reading {state}: {e}"))?;
    }
    while !todo.is_empty() {
        if Instant::now() >= deadline {
            let left: Vec<String> = todo.keys().map(|p| format!("{state}/{p}")).collect();
            return Err(format!(
                "reading the state topic took more than {} s ({} not read to its end)",
                timeout.as_secs(),
                left.join(", ")
            ));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let p = m.partition();
                if let (Some(k), Some(latest)) = (m.key(), out.get_mut(&p)) {
                    match m.payload() {
                        Some(v) => {
                            latest.insert(k.to_vec(), v.to_vec());
                        }
                        // A tombstone.
                        None => {
                            latest.remove(k);
                        }
                    }
                }
                if todo.get(&p).is_some_and(|&end| m.offset() + 1 >= end) {
                    todo.remove(&p);
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                todo.remove(&p);
            }
            Some(Err(e)) => {
                tracing::warn!(target: "state", "reading the state topic {state}: {e}; retrying");
            }
            None => {
                // Compaction may have removed the last records: the
                // position says whether the end is reached.
                if let Ok(pos) = consumer.position() {
                    for e in pos.elements() {
                        if let (Some(o), Some(&end)) =
                            (e.offset().to_raw(), todo.get(&e.partition()))
                        {
                            if o >= end {
                                todo.remove(&e.partition());
                            }
                        }
                    }
                }
            }
        }
    }
    let mut v: Vec<(i32, Latest)> = out.into_iter().collect();
    v.sort_unstable_by_key(|(p, _)| *p);
    Ok(v)
}

/// Counts deliveries that failed.
#[derive(Clone, Default)]
pub struct Deliveries {
    failed: Arc<AtomicU64>,
    last_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
    }
}

/// Writes passes to the state topic.
pub struct StateProducer {
    producer: ThreadedProducer<Deliveries>,
    topic: String,
}

impl StateProducer {
    pub fn new(cfg: &KafkaConfig, brokers: &str) -> Result<StateProducer, String> {
        let Some(topic) = cfg.state_topic.clone() else {
            return Err("no state topic".into());
        };
        let producer = client(cfg, brokers, "slate-state")
            // In order and once per partition, acknowledged by every
            // in-sync replica: a pass is on the topic or it failed.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.max.bytes", "16000000")
            .set("compression.type", "none")
            .create_with_context(Deliveries::default())
            .map_err(|e| format!("state topic producer: {e}"))?;
        Ok(StateProducer { producer, topic })
    }

    /// Queues one record for state-topic partition `partition`.
    pub fn send(&self, partition: i32, key: &[u8], value: &[u8]) -> Result<(), String> {
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic)
            .partition(partition)
            .key(key)
            .payload(value);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((e, r))
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull)
                        && Instant::now() < deadline =>
                {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(format!("{}/{partition}: {e}", self.topic)),
            }
        }
    }

    /// Waits until every queued record is delivered: an error if one was
    /// not (the pass is written again with the next).
    pub fn flush(&self, timeout: Duration) -> Result<(), String> {
        let ctx = self.producer.context();
        let flushed = self.producer.flush(timeout);
        let failed = ctx.failed.swap(0, Ordering::Relaxed);
        if failed > 0 {
            let why = ctx
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_default();
            return Err(format!(
                "{failed} record(s) of the pass not delivered to {}: {why}",
                self.topic
            ));
        }
        flushed.map_err(|e| format!("{}: {e}", self.topic))
    }
}
