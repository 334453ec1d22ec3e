//! Files and stdin, read in chunks of whole lines. A line longer than the
//! limit is skipped as it streams past, never buffered whole.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

/// Bytes per chunk handed to a decode worker.
pub const CHUNK_BYTES: usize = 1 << 20;

/// A run of whole lines, or the mark of one line that was too long.
#[derive(Debug)]
pub enum Chunk {
    Lines {
        /// Whole lines, each ending in `\n` except perhaps the last one of
        /// the input.
        data: Vec<u8>,
        /// 1-based number of the first line.
        first_line: u64,
        /// The last header line (see [`ChunkReader::with_header`]) before
        /// this chunk: the layout in force where it starts.
        header: Option<Arc<[u8]>>,
    },
    TooLong {
        line: u64,
    },
}

/// An input named on the command line: a path, or `-` for stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputName(pub PathBuf);

impl InputName {
    pub fn is_stdin(&self) -> bool {
        self.0.as_os_str() == "-"
    }
    pub fn display(&self) -> String {
        if self.is_stdin() {
            "<stdin>".into()
        } else {
            self.0.display().to_string()
        }
    }
    /// Size on disk, for progress (`None` for stdin).
    pub fn size(&self) -> Option<u64> {
        if self.is_stdin() {
            None
        } else {
            std::fs::metadata(&self.0).ok().map(|m| m.len())
        }
    }
}

/// Counts bytes as they are read from the underlying file, so progress is
/// measured against the file's size even when it is gzipped.
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An opened input. `progress`, when set, is for the chunk reader to add
/// the bytes it reads to (plain files: a counting wrapper would cost them
/// `read_buf`, and with it a memset of every buffer); gzip and stdin count
/// as they read.
pub struct Opened {
    pub reader: Box<dyn Read + Send>,
    pub progress: Option<Arc<AtomicU64>>,
}

/// Opens an input; files starting with the gzip magic are decompressed,
/// all members.
pub fn open(name: &InputName, progress: Arc<AtomicU64>) -> io::Result<Opened> {
    if name.is_stdin() {
        let reader = BufReader::with_capacity(
            256 << 10,
            Counted {
                inner: io::stdin(),
                read: progress,
            },
        );
        return gz_or_plain(reader);
    }
    let with_name = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", name.0.display()));
    let mut file = File::open(&name.0).map_err(with_name)?;
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(with_name(e)),
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(with_name)?;
    if got == 2 && magic == [0x1f, 0x8b] {
        let counted = BufReader::with_capacity(
            256 << 10,
            Counted {
                inner: file,
                read: progress,
            },
        );
        Ok(Opened {
            reader: Box::new(BufReader::with_capacity(
                256 << 10,
                MultiGzDecoder::new(counted),
            )),
            progress: None,
        })
    } else {
        Ok(Opened {
            reader: Box::new(file),
            progress: Some(progress),
        })
    }
}

fn gz_or_plain<R: io::BufRead + Send + 'static>(mut reader: R) -> io::Result<Opened> {
    let buf = reader.fill_buf()?;
    let gz = buf.len() >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
    let reader: Box<dyn Read + Send> = if gz {
        Box::new(BufReader::with_capacity(
            256 << 10,
            MultiGzDecoder::new(reader),
        ))
    } else {
        Box::new(reader)
    };
    Ok(Opened {
        reader,
        progress: None,
    })
}

/// Splits a byte stream into chunks of whole lines.
pub struct ChunkReader<R> {
    inner: R,
    /// Bytes read, for the progress bar (when the input does not count).
    progress: Option<Arc<AtomicU64>>,
    max_line: usize,
    /// The start of a line whose end has not been read yet (≤ `max_line`).
    carry: Vec<u8>,
    next_line: u64,
    eof: bool,
    ready: VecDeque<Chunk>,
    /// Lines starting with this prefix are headers whose latest one every
    /// chunk must know (W3C's `#Fields:`, which may repeat mid-file).
    header_prefix: Option<&'static [u8]>,
    header: Option<Arc<[u8]>>,
    /// CRI lines: a chunk ends only where no partial line is open, so that
    /// each chunk joins its own partials.
    cri: bool,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(inner: R, max_line: usize) -> Self {
        ChunkReader {
            inner,
            progress: None,
            max_line,
            carry: Vec::new(),
            next_line: 1,
            eof: false,
            ready: VecDeque::new(),
            header_prefix: None,
            header: None,
            cri: false,
        }
    }

    /// Cuts chunks only where no CRI partial line (`P`) is open.
    pub fn with_cri_partials(mut self, cri: bool) -> Self {
        self.cri = cri;
        self
    }

    /// Tracks header lines starting with `prefix`, so that each chunk
    /// carries the one in force at its start.
    pub fn with_header(mut self, prefix: Option<&'static [u8]>) -> Self {
        self.header_prefix = prefix;
        self
    }

    /// Queues a chunk of whole lines with the header in force at its start,
    /// then notes the last header line inside it.
    fn push_lines(&mut self, data: Vec<u8>, first_line: u64) {
        let header = self.header.clone();
        if let Some(prefix) = self.header_prefix {
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', &data).chain(std::iter::once(data.len())) {
                let line = data[start..end].trim_ascii();
                if line.starts_with(prefix) {
                    self.header = Some(line.into());
                }
                start = end + 1;
                if start > data.len() {
                    break;
                }
            }
        }
        self.ready.push_back(Chunk::Lines {
            data,
            first_line,
            header,
        });
    }

    /// Counts the bytes this reader reads into `progress`.
    pub fn with_progress(mut self, progress: Option<Arc<AtomicU64>>) -> Self {
        self.progress = progress;
        self
    }

    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(n) => {
                    if let Some(p) = &self.progress {
                        p.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Discards the rest of a too-long line, keeping what follows its newline.
    fn skip_line(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; 64 << 10];
        while !self.eof {
            let n = self.read_some(&mut buf)?;
            if let Some(p) = memchr::memchr(b'\n', &buf[..n]) {
                self.carry.extend_from_slice(&buf[p + 1..n]);
                return Ok(());
            }
        }
        Ok(())
    }

    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        while self.ready.is_empty() {
            if self.eof && self.carry.is_empty() {
                return Ok(None);
            }
            let mut data = std::mem::take(&mut self.carry);
            let want = CHUNK_BYTES.max(data.len() + self.max_line + 1);
            // `read_to_end` fills spare capacity without zeroing it first.
            data.reserve_exact(want - data.len());
            let limit = (want - data.len()) as u64;
            let got = (&mut self.inner).take(limit).read_to_end(&mut data)?;
            if (got as u64) < limit {
                self.eof = true;
            }
            if let Some(p) = &self.progress {
                p.fetch_add(got as u64, Ordering::Relaxed);
            }
            self.split(data)?;
        }
        Ok(self.ready.pop_front())
    }

    /// Queues the whole lines of `data` as chunks, a too-long line as its
    /// own mark, and keeps an unfinished line as the carry.
    fn split(&mut self, data: Vec<u8>) -> io::Result<()> {
        let mut chunk_start = 0;
        let mut chunk_first = self.next_line;
        let mut line_start = 0;
        let mut long_lines = Vec::new();
        for nl in memchr::memchr_iter(b'\n', &data) {
            if nl - line_start > self.max_line {
                long_lines.push((chunk_start, line_start, chunk_first, self.next_line));
                chunk_start = nl + 1;
                chunk_first = self.next_line + 1;
            }
            self.next_line += 1;
            line_start = nl + 1;
        }
        // An unfinished line already past the limit is too long whatever
        // follows; at end of input, a last line without newline is whole.
        let tail_len = data.len() - line_start;
        let tail_long = tail_len > self.max_line;
        for (cs, ls, first, line) in long_lines {
            if ls > cs {
                self.push_lines(data[cs..ls].to_vec(), first);
            }
            self.ready.push_back(Chunk::TooLong { line });
        }
        let end = if self.eof && !tail_long {
            data.len()
        } else {
            line_start
        };
        let mut end = end;
        if self.cri && !self.eof && !tail_long && end > chunk_start {
            // Lines after the last point where no partial is open wait for
            // the rest of their partial, unless they are more than a line
            // long (then the partial is cut, and counted when rejected).
            let safe = chunk_start + cri_safe_end(&data[chunk_start..end]);
            if end - safe <= self.max_line {
                self.next_line -= memchr::memchr_iter(b'\n', &data[safe..end]).count() as u64;
                self.carry.extend_from_slice(&data[safe..end]);
                end = safe;
            }
        }
        if !self.eof && !tail_long {
            self.carry.extend_from_slice(&data[line_start..]);
        }
        if end > chunk_start {
            let mut data = data;
            data.truncate(end);
            if chunk_start > 0 {
                data.drain(..chunk_start);
            }
            self.push_lines(data, chunk_first);
        }
        if self.eof && !tail_long && tail_len > 0 {
            self.next_line += 1;
        }
        if tail_long {
            self.ready.push_back(Chunk::TooLong {
                line: self.next_line,
            });
            self.next_line += 1;
            if !self.eof {
                self.skip_line()?;
            }
        }
        Ok(())
    }
}

/// The end of the last line of `data` after which no CRI partial line is
/// open on any stream (0 when one is open throughout).
fn cri_safe_end(data: &[u8]) -> usize {
    // Most chunks hold no partial line at all (containerd splits only
    // lines over 16 KiB): with no ` P` tag anywhere, every line ends one.
    let tagged = |t: &[u8]| memchr::memmem::find(data, t).is_some();
    if !tagged(b" P ") && !tagged(b" P\n") && !tagged(b" P\r") && !tagged(b" P:") {
        return memchr::memrchr(b'\n', data).map_or(0, |nl| nl + 1);
    }
    cri_safe_end_scan(data)
}

/// [`cri_safe_end`] line by line.
fn cri_safe_end_scan(data: &[u8]) -> usize {
    let mut open: Vec<&[u8]> = Vec::new();
    let (mut safe, mut start) = (0, 0);
    for nl in memchr::memchr_iter(b'\n', data) {
        let line = crate::decode::batch::trim(&data[start..nl]);
        if let Some((partial, stream)) = crate::decode::envelope::CriLine::peek(line) {
            match (partial, open.iter().position(|s| *s == stream)) {
                (true, None) => open.push(stream),
                (false, Some(i)) => {
                    open.swap_remove(i);
                }
                _ => {}
            }
        }
        start = nl + 1;
        if open.is_empty() {
            safe = start;
        }
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(input: &[u8], max: usize) -> Vec<(String, u64)> {
        let mut r = ChunkReader::new(input, max);
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            match c {
                Chunk::Lines {
                    data, first_line, ..
                } => {
                    for (i, l) in data
                        .split(|&b| b == b'\n')
                        .filter(|l| !l.is_empty())
                        .enumerate()
                    {
                        out.push((
                            String::from_utf8_lossy(l).into_owned(),
                            first_line + i as u64,
                        ));
                    }
                }
                Chunk::TooLong { line } => out.push(("<too long>".into(), line)),
            }
        }
        out
    }

    #[test]
    fn long_lines_are_marked_with_their_numbers() {
        let long = "x".repeat(100);
        let input = format!("a\n{long}\nb\nc\n{long}");
        let got = chunks(input.as_bytes(), 64);
        let want: Vec<(String, u64)> = vec![
            ("a".into(), 1),
            ("<too long>".into(), 2),
            ("b".into(), 3),
            ("c".into(), 4),
            ("<too long>".into(), 5),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn last_line_without_newline_is_kept() {
        assert_eq!(
            chunks(b"a\nb", 64),
            vec![("a".to_string(), 1), ("b".to_string(), 2)]
        );
    }

    #[test]
    fn a_line_longer_than_a_chunk_is_skipped_while_streaming() {
        let mut input = b"first\n".to_vec();
        input.extend(std::iter::repeat_n(b'y', 3 * CHUNK_BYTES));
        input.extend_from_slice(b"\nlast\n");
        let got = chunks(&input, 1000);
        assert_eq!(
            got,
            vec![
                ("first".to_string(), 1),
                ("<too long>".to_string(), 2),
                ("last".to_string(), 3)
            ]
        );
    }

    proptest::proptest! {
        /// The shortcut for chunks without a partial tag is the scan's cut.
        #[test]
        fn the_shortcut_cuts_where_the_scan_does(
            lines in proptest::collection::vec(
                (0u8..2, proptest::sample::select(vec!["F", "P", "F:x", "P:y", "X"]), "[ -~]{0,12}"),
                0..30,
            ),
            tail in proptest::bool::ANY,
        ) {
            let mut data = Vec::new();
            for (stream, tag, text) in &lines {
                let s = if *stream == 0 { "stdout" } else { "stderr" };
                data.extend_from_slice(format!("2026-11-01T00:00:00Z {s} {tag} {text}\n").as_bytes());
            }
            if tail {
                data.extend_from_slice(b"2026-11-01T00:00:00Z stdout F cut");
            }
            proptest::prop_assert_eq!(cri_safe_end(&data), cri_safe_end_scan(&data));
        }
    }

    /// CRI input over several chunks: every chunk ends where no partial
    /// line is open, its lines are numbered on, and decoding chunk by
    /// chunk gives what decoding the whole input at once gives.
    #[test]
    fn cri_chunks_end_only_where_no_partial_is_open() {
        use crate::decode::batch::{decode_chunk, Rec};
        use crate::spec::config::{Envelope, InputConfig};
        let mut input = Vec::new();
        let mut rng = 7u64;
        let mut n = 0;
        while input.len() < 3 * CHUNK_BYTES + 12_345 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let stream = if rng >> 63 == 0 { "stdout" } else { "stderr" };
            // Up to 40 partials before the final part.
            let parts = (rng >> 33) % 40;
            let mut text = format!("{{\"service\":\"s{n}-");
            for i in 0..parts {
                let piece = if i == 0 {
                    text.clone()
                } else {
                    format!("{i}.")
                };
                if i > 0 {
                    text.push_str(&piece);
                }
                input.extend_from_slice(
                    format!("2026-11-24T10:00:00Z {stream} P {piece}\n").as_bytes(),
                );
            }
            let last = "x\",\"ts\":1795514400,\"status\":200}";
            let fin = if parts == 0 {
                format!("{text}{last}")
            } else {
                last.to_string()
            };
            input.extend_from_slice(format!("2026-11-24T10:00:00Z {stream} F {fin}\n").as_bytes());
            n += 1;
        }
        let lines = memchr::memchr_iter(b'\n', &input).count() as u64;
        let decoder = crate::decode::Decoder::new(&InputConfig {
            envelope: Some(Envelope::Cri),
            ..InputConfig::default()
        })
        .unwrap();
        let mut r = ChunkReader::new(&input[..], 1 << 20).with_cri_partials(true);
        let (mut next, mut count, mut names) = (1u64, 0, Vec::new());
        while let Some(c) = r.next_chunk().unwrap() {
            let Chunk::Lines {
                data, first_line, ..
            } = c
            else {
                panic!("no line is too long")
            };
            count += 1;
            assert_eq!(first_line, next);
            assert_eq!(cri_safe_end(&data), data.len());
            next += memchr::memchr_iter(b'\n', &data).count() as u64;
            let d = decode_chunk(&decoder, data, first_line, None);
            for rec in &d.recs {
                match rec {
                    Rec::Event { service, .. } => names.push(d.names[*service as usize].clone()),
                    Rec::Rejected { detail, .. } => panic!("{detail}"),
                }
            }
        }
        assert!(count >= 3, "{count} chunks");
        assert_eq!(next, lines + 1);
        let whole = decode_chunk(&decoder, input.clone(), 1, None);
        let want: Vec<_> = whole
            .recs
            .iter()
            .map(|r| match r {
                Rec::Event { service, .. } => whole.names[*service as usize].clone(),
                Rec::Rejected { detail, .. } => panic!("{detail}"),
            })
            .collect();
        assert_eq!(names, want);
    }
}
