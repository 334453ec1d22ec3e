//! Parallel decode with ordered output: a reader thread cuts an input into
//! chunks of whole lines, worker threads decode them, and the consumer
//! takes them back in input order. Bounded channels keep memory bounded.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{bounded, Receiver};

use crate::decode::batch::{decode_chunk, DecodedChunk, Rec};
use crate::decode::{Decoder, Reason};
use crate::source::file::{self, Chunk, ChunkReader, InputName};

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
        let cri = decoder.envelope() == Some(crate::spec::config::Envelope::Cri);
        thread::Builder::new()
            .name("slate-read".into())
            .spawn(move || {
                let mut reader = ChunkReader::new(input.reader, max_line)
                    .with_progress(input.progress)
                    .with_header(header_prefix)
                    .with_cri_partials(cri);
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
