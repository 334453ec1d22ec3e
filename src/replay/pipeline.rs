//! Parallel decode with ordered output: a reader thread cuts an input into
//! chunks of whole lines, worker threads decode them, and the consumer
//! takes them back in input order. Bounded channels keep memory bounded.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{bounded, Receiver};
use rustc_hash::FxHashMap;

use crate::decode::{Decoder, LineContext, Reason};
use crate::model::Micros;
use crate::source::file::{self, Chunk, ChunkReader, InputName};

/// One record of a decoded chunk, in input order.
#[derive(Debug, Clone, PartialEq)]
pub enum Rec {
    Event {
        ts: Micros,
        /// Index into the chunk's `names`.
        service: u32,
        error: bool,
        latency_us: Option<u64>,
        line: u64,
        /// Byte range of the line in the chunk's `raw`.
        at: (u32, u32),
    },
    Rejected {
        reason: Reason,
        detail: Box<str>,
        line: u64,
        at: (u32, u32),
    },
}

#[derive(Debug, Default)]
pub struct DecodedChunk {
    pub names: Vec<Box<str>>,
    pub recs: Vec<Rec>,
    pub raw: Vec<u8>,
}

impl DecodedChunk {
    pub fn line_bytes(&self, at: (u32, u32)) -> &[u8] {
        &self.raw[at.0 as usize..at.1 as usize]
    }
}

/// Decodes every line of a chunk. Blank lines, and the format's headers
/// and comments, are not records. `header` is the header line in force
/// where the chunk starts (W3C's `#Fields:`).
pub fn decode_chunk(
    decoder: &Decoder,
    data: Vec<u8>,
    first_line: u64,
    header: Option<&[u8]>,
) -> DecodedChunk {
    decode_lines(decoder, data, first_line, header, true)
}

/// Decodes every line of a batch of records (Kafka messages): a blank
/// line is a record too, and is rejected like any line that says nothing.
/// A record's `line` is its index in the batch.
pub fn decode_records(decoder: &Decoder, data: Vec<u8>) -> DecodedChunk {
    decode_lines(decoder, data, 0, None, false)
}

fn decode_lines(
    decoder: &Decoder,
    data: Vec<u8>,
    first_line: u64,
    header: Option<&[u8]>,
    skip_blank: bool,
) -> DecodedChunk {
    let mut out = DecodedChunk {
        names: Vec::new(),
        recs: Vec::with_capacity(data.len() / 128),
        raw: Vec::new(),
    };
    let mut local: FxHashMap<Box<str>, u32> = FxHashMap::default();
    let mut ctx = LineContext::default();
    if let Some(h) = header {
        decoder.header(h, &mut ctx);
    }
    let mut start = 0usize;
    let mut line = first_line;
    let len = data.len();
    while start < len {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(len, |p| start + p);
        let at = (start as u32, end as u32);
        let text = trim(&data[start..end]);
        if (!skip_blank || !text.is_empty()) && !decoder.header(text, &mut ctx) {
            match decoder.decode_with(text, &mut ctx) {
                Ok(d) => {
                    let service = match local.get(d.service.as_ref()) {
                        Some(&i) => i,
                        None => {
                            let i = out.names.len() as u32;
                            out.names.push(d.service.as_ref().into());
                            local.insert(d.service.as_ref().into(), i);
                            i
                        }
                    };
                    out.recs.push(Rec::Event {
                        ts: d.ts,
                        service,
                        error: d.error,
                        latency_us: d.latency_us,
                        line,
                        at,
                    });
                }
                Err(r) => out.recs.push(Rec::Rejected {
                    reason: r.reason,
                    detail: r.detail.into(),
                    line,
                    at,
                }),
            }
        }
        start = end + 1;
        line += 1;
    }
    out.raw = data;
    out
}

/// Strips a UTF-8 BOM, `\r` and surrounding whitespace.
pub fn trim(mut s: &[u8]) -> &[u8] {
    if s.starts_with(b"\xEF\xBB\xBF") {
        s = &s[3..];
    }
    s.trim_ascii()
}

/// The decoded chunks of one input, in order.
pub struct DecodedStream {
    rx: Receiver<(u64, io::Result<DecodedChunk>)>,
    next: u64,
    waiting: BTreeMap<u64, io::Result<DecodedChunk>>,
}

impl DecodedStream {
    /// Starts the reader and `threads` decode workers for one input.
    pub fn start(
        name: &InputName,
        decoder: Arc<Decoder>,
        threads: usize,
        max_line: usize,
        progress: Arc<AtomicU64>,
    ) -> io::Result<DecodedStream> {
        let input = file::open(name, progress)?;
        let threads = threads.max(1);
        let (work_tx, work_rx) = bounded::<(u64, io::Result<Chunk>)>(threads * 2);
        let (done_tx, done_rx) = bounded(threads * 4);
        let label = name.display();
        let header_prefix = decoder.header_prefix();
        thread::Builder::new()
            .name("slate-read".into())
            .spawn(move || {
                let mut reader = ChunkReader::new(input.reader, max_line)
                    .with_progress(input.progress)
                    .with_header(header_prefix);
                let mut seq = 0;
                loop {
                    let item = match reader.next_chunk() {
                        Ok(Some(c)) => Ok(c),
                        Ok(None) => break,
                        Err(e) => Err(io::Error::new(e.kind(), format!("{label}: {e}"))),
                    };
                    let stop = item.is_err();
                    if work_tx.send((seq, item)).is_err() || stop {
                        break;
                    }
                    seq += 1;
                }
            })?;
        for i in 0..threads {
            let rx = work_rx.clone();
            let tx = done_tx.clone();
            let decoder = decoder.clone();
            thread::Builder::new()
                .name(format!("slate-decode-{i}"))
                .spawn(move || {
                    for (seq, item) in rx {
                        let out = item.map(|c| match c {
                            Chunk::Lines {
                                data,
                                first_line,
                                header,
                            } => decode_chunk(&decoder, data, first_line, header.as_deref()),
                            Chunk::TooLong { line } => DecodedChunk {
                                recs: vec![Rec::Rejected {
                                    reason: Reason::LineTooLong,
                                    detail: "line longer than input.max_line_bytes".into(),
                                    line,
                                    at: (0, 0),
                                }],
                                ..DecodedChunk::default()
                            },
                        });
                        if tx.send((seq, out)).is_err() {
                            break;
                        }
                    }
                })?;
        }
        Ok(DecodedStream {
            rx: done_rx,
            next: 0,
            waiting: BTreeMap::new(),
        })
    }
}

impl Iterator for DecodedStream {
    type Item = io::Result<DecodedChunk>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(c) = self.waiting.remove(&self.next) {
                self.next += 1;
                return Some(c);
            }
            match self.rx.recv() {
                Ok((seq, c)) => {
                    self.waiting.insert(seq, c);
                }
                Err(_) => return None,
            }
        }
    }
}
