//! Batch decode: a buffer of whole lines (a file chunk, a batch of Kafka
//! messages) into records in input order, with the chunk's service names
//! interned once. Pure, like the rest of `decode`: the replay and live
//! drivers both hand buffers to it from their decode workers.

use rustc_hash::FxHashMap;

use super::{Decoder, LineContext, Reason};
use crate::model::Micros;

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
    let bare = decoder.envelope().is_none();
    let mut start = 0usize;
    let mut line = first_line;
    let len = data.len();
    while start < len {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(len, |p| start + p);
        let at = (start as u32, end as u32);
        let text = decoder.trim_record(&data[start..end]);
        if !skip_blank || !text.is_empty() {
            if bare {
                // No envelope: the line is the record, decoded inline.
                if !decoder.header(text, &mut ctx) {
                    push(
                        &mut out,
                        &mut local,
                        decoder.decode_with(text, &mut ctx),
                        line,
                        at,
                    );
                }
            } else {
                decoder.decode_record(text, &mut ctx, (line, at), &mut |d| {
                    push(&mut out, &mut local, d, line, at)
                });
            }
        }
        start = end + 1;
        line += 1;
    }
    // A partial line (CRI `P`) whose end never came: the file reader cuts
    // chunks only where none is open, so this is the end of the input (or
    // of a batch of Kafka messages).
    for (line, at) in ctx.partials.drain() {
        out.recs.push(Rec::Rejected {
            reason: Reason::InvalidEnvelope,
            detail: "a partial line (CRI `P`) never finished by an `F`".into(),
            line,
            at,
        });
    }
    out.raw = data;
    out
}

/// One decoded record (or its rejection) onto the chunk, its service
/// interned.
#[inline(always)]
fn push(
    out: &mut DecodedChunk,
    local: &mut FxHashMap<Box<str>, u32>,
    d: Result<super::Decoded<'_>, super::Rejection>,
    line: u64,
    at: (u32, u32),
) {
    match d {
        Ok(d) => {
            // Runs of one service (a constant --service, a host's log): the
            // last name seen, before the map.
            let last = match out.recs.last() {
                Some(Rec::Event { service, .. }) => Some(*service),
                _ => None,
            };
            let service = match last.filter(|&i| *out.names[i as usize] == *d.service.as_ref()) {
                Some(i) => i,
                None => match local.get(d.service.as_ref()) {
                    Some(&i) => i,
                    None => {
                        let i = out.names.len() as u32;
                        out.names.push(d.service.as_ref().into());
                        local.insert(d.service.as_ref().into(), i);
                        i
                    }
                },
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

/// Strips a UTF-8 BOM, `\r` and surrounding whitespace.
pub fn trim(mut s: &[u8]) -> &[u8] {
    if s.starts_with(b"\xEF\xBB\xBF") {
        s = &s[3..];
    }
    s.trim_ascii()
}
