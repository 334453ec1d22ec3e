//! `slate gen --kafka`: the generated lines as Kafka messages, one per
//! line, keyed by service (so that the default partitioner sends each
//! service to one partition, as DESIGN §8 asks of producers).

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::decode::Decoder;
use crate::spec::config::{Envelope, Format, InputConfig};

/// Counts messages the broker did not take.
#[derive(Default)]
pub struct Deliveries {
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A `Write` that produces every complete line as a message.
pub struct KafkaSink {
    producer: BaseProducer<Deliveries>,
    topic: String,
    /// Reads the key; text layouts are sent unkeyed.
    decoder: Option<Decoder>,
    pending: Vec<u8>,
}

impl KafkaSink {
    pub fn new(
        brokers: &str,
        topic: &str,
        format: Format,
        envelope: Envelope,
    ) -> anyhow::Result<KafkaSink> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", "slate-gen")
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "500000")
            .set("message.timeout.ms", "120000")
            .create_with_context(Deliveries::default())
            .map_err(|e| anyhow::anyhow!("kafka producer: {e}"))?;
        // The key is the service the line names, read as slate would.
        let decoder = if format.is_text() {
            None
        } else {
            Some(
                Decoder::new(&InputConfig {
                    format,
                    envelope: Some(envelope),
                    ..InputConfig::default()
                })
                .map_err(anyhow::Error::msg)?,
            )
        };
        Ok(KafkaSink {
            producer,
            topic: topic.to_string(),
            decoder,
            pending: Vec::new(),
        })
    }

    fn send(&self, line: &[u8]) -> io::Result<()> {
        let mut key = None;
        if let Some(d) = &self.decoder {
            let mut ctx = crate::decode::LineContext::default();
            d.decode_record(line, &mut ctx, (0, (0, 0)), &mut |r| {
                if let (None, Ok(r)) = (&key, r) {
                    key = Some(r.service.to_string());
                }
            });
        }
        let mut rec = BaseRecord::<str, [u8]>::to(&self.topic).payload(line);
        if let Some(k) = &key {
            rec = rec.key(k.as_str());
        }
        loop {
            match self.producer.send(rec) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(io::Error::other(e.to_string())),
            }
        }
    }

    /// Waits for every message to be delivered; returns how many failed.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        self.flush()?;
        if !self.pending.is_empty() {
            let last = std::mem::take(&mut self.pending);
            self.send(&last)?;
        }
        self.producer
            .flush(Duration::from_secs(120))
            .map_err(|e| anyhow::anyhow!("kafka: {e}"))?;
        Ok(self.producer.context().failed.load(Ordering::Relaxed))
    }
}

impl Write for KafkaSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let mut start = 0;
        while let Some(p) = memchr::memchr(b'\n', &self.pending[start..]) {
            let line = &self.pending[start..start + p];
            if !line.is_empty() {
                self.send(line)?;
            }
            start += p + 1;
        }
        self.pending.drain(..start);
        self.producer.poll(Duration::ZERO);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
