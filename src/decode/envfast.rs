//! A fast path for JSON envelopes (Docker's json-file, Filebeat, Vector,
//! Fluent Bit): a scan of the object for the few keys an envelope needs,
//! the line's string unescaped in one pass, every other value skipped by
//! its structure. It gives up (returns `None`) on anything it does not
//! handle — a key with escapes, a path it cannot follow, bad structure —
//! and the serde_json path decides those records. A differential property
//! test holds the two equal where this one answers.

use super::envelope::Slot;

/// A string's bytes between its quotes, and whether they hold escapes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Raw<'a> {
    pub bytes: &'a [u8],
    pub escaped: bool,
}

impl<'a> Raw<'a> {
    /// The string's value (escapes decoded); `None` when an escape is bad
    /// or the value is not UTF-8.
    pub fn text(&self) -> Option<std::borrow::Cow<'a, str>> {
        use std::borrow::Cow;
        match self.decoded()? {
            Cow::Borrowed(b) => std::str::from_utf8(b).ok().map(Cow::Borrowed),
            Cow::Owned(v) => String::from_utf8(v).ok().map(Cow::Owned),
        }
    }

    /// The string's bytes, escapes decoded (`None` on a bad escape).
    pub fn decoded(&self) -> Option<std::borrow::Cow<'a, [u8]>> {
        let s = self.bytes;
        if !self.escaped {
            return Some(std::borrow::Cow::Borrowed(s));
        }
        let mut out = Vec::new();
        let end = unescape_run(s, 0, &mut out)?;
        (end == s.len()).then_some(std::borrow::Cow::Owned(out))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Time<'a> {
    Str(&'a [u8]),
    /// A number as written (checked by the grammar).
    Num(&'a [u8]),
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct Found<'a> {
    /// The line as written, escapes not decoded.
    pub line: Option<(u8, Raw<'a>)>,
    pub time: Option<(u8, Time<'a>)>,
    pub service: Option<Raw<'a>>,
}

/// A path an envelope needs and the slot its value fills; each key kept
/// with its first eight bytes as a number, compared before the bytes.
#[derive(Debug, Clone)]
pub(super) struct Want {
    keys: Vec<(u64, Box<str>)>,
    slot: Slot,
}

impl Want {
    pub fn new(path: &[Box<str>], slot: Slot) -> Want {
        Want {
            keys: path
                .iter()
                .map(|k| (head(k.as_bytes()), k.clone()))
                .collect(),
            slot,
        }
    }

    #[inline]
    fn matches(&self, depth: usize, head: u64, key: &[u8]) -> bool {
        self.keys.get(depth).is_some_and(|(h, k)| {
            *h == head && k.len() == key.len() && (key.len() <= 8 || k.as_bytes() == key)
        })
    }
}

/// The first eight bytes of `b`, zero-padded.
#[inline]
fn head(b: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = b.len().min(8);
    buf[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(buf)
}

/// Nesting deeper than this is left to serde_json.
const MAX_DEPTH: usize = 32;

#[inline(always)]
fn ws(s: &[u8], mut i: usize) -> usize {
    // Compact JSON has no whitespace between tokens: one comparison.
    if s.get(i).is_some_and(|&c| c > b' ') {
        return i;
    }
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The first byte at or after `j` that is a quote, a backslash or a
/// control character, eight bytes at a time: escapes in a json-file line
/// come every few bytes, too close for a `memchr` call each.
#[inline(always)]
fn special(s: &[u8], mut j: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while j + 8 <= s.len() {
        let x = u64::from_le_bytes(s[j..j + 8].try_into().expect("eight bytes"));
        let q = x ^ (ONES * b'"' as u64);
        let b = x ^ (ONES * b'\\' as u64);
        let hit = (q.wrapping_sub(ONES) & !q)
            | (b.wrapping_sub(ONES) & !b)
            | (x.wrapping_sub(ONES * 0x20) & !x);
        let hit = hit & HIGH;
        if hit != 0 {
            // The lowest flagged byte is exact; bits above it may not be.
            return Some(j + (hit.trailing_zeros() / 8) as usize);
        }
        j += 8;
    }
    s[j..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| j + p)
}

/// The string at `i` (which must be `"`): its raw bytes and the index
/// after its closing quote.
#[inline]
fn string(s: &[u8], i: usize) -> Option<(Raw<'_>, usize)> {
    if s.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let mut j = start;
    let mut escaped = false;
    loop {
        j = special(s, j)?;
        match s[j] {
            b'"' => {
                return Some((
                    Raw {
                        bytes: &s[start..j],
                        escaped,
                    },
                    j + 1,
                ))
            }
            b'\\' => {
                escaped = true;
                // Only JSON's escapes, as serde_json checks them.
                match s.get(j + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => j += 2,
                    b'u' if s.get(j + 2..j + 6)?.iter().all(u8::is_ascii_hexdigit) => j += 6,
                    _ => return None,
                }
            }
            // A control character cannot be inside a JSON string.
            _ => return None,
        }
    }
}

/// Skips any value at `i`; returns the index after it.
fn skip(s: &[u8], i: usize, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    match *s.get(i)? {
        b'"' => string(s, i).map(|(_, n)| n),
        b'{' => {
            let mut i = ws(s, i + 1);
            if s.get(i) == Some(&b'}') {
                return Some(i + 1);
            }
            loop {
                let (_, n) = string(s, i)?;
                i = ws(s, n);
                if s.get(i) != Some(&b':') {
                    return None;
                }
                i = ws(s, skip(s, ws(s, i + 1), depth + 1)?);
                match *s.get(i)? {
                    b',' => i = ws(s, i + 1),
                    b'}' => return Some(i + 1),
                    _ => return None,
                }
            }
        }
        b'[' => {
            let mut i = ws(s, i + 1);
            if s.get(i) == Some(&b']') {
                return Some(i + 1);
            }
            loop {
                i = ws(s, skip(s, i, depth + 1)?);
                match *s.get(i)? {
                    b',' => i = ws(s, i + 1),
                    b']' => return Some(i + 1),
                    _ => return None,
                }
            }
        }
        _ => scalar(s, i).map(|(_, n)| n),
    }
}

/// A number, `true`, `false` or `null` at `i`.
fn scalar(s: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let delimiter = |b: &u8| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r');
    if let Some(b'-' | b'0'..=b'9') = s.get(i) {
        // By the grammar, not by parsing: a time is parsed when needed.
        let (end, float) = super::flat::number_end(s, i)?;
        if !s.get(end).is_none_or(delimiter) {
            return None;
        }
        let tok = &s[i..end];
        if float && tok.iter().any(|&b| b == b'e' || b == b'E') {
            std::str::from_utf8(tok).ok()?.parse::<f64>().ok()?;
        }
        return Some((tok, end));
    }
    let end = s[i..].iter().position(delimiter).map_or(s.len(), |p| i + p);
    let tok = &s[i..end];
    let ok = match tok.first()? {
        b't' => tok == b"true",
        b'f' => tok == b"false",
        b'n' => tok == b"null",
        _ => false,
    };
    ok.then_some((tok, end))
}

/// How the root members of the last envelope read whole were laid out:
/// a shipper writes every record alike, so the next is read by comparing
/// bytes first. Kept per chunk of lines.
#[derive(Debug, Default)]
pub struct Layout {
    members: Vec<Member>,
    /// Whether `members` holds a layout (learnt from an envelope read whole).
    ready: bool,
}

#[derive(Debug)]
struct Member {
    /// The key as written and what follows it up to its value: `"log":`.
    key: Box<[u8]>,
    /// Its first eight bytes (zero-padded) and the mask of those it has.
    head: (u64, u64),
    leaf: Option<Slot>,
    deeper: u32,
    /// The last values of a member none of the wants needs.
    values: Memo,
}

/// Values skipped lately at one place of an envelope (so at one depth):
/// the same bytes again are the same valid value, skipped by a comparison
/// instead of a scan. Only values that end themselves (an object, an
/// array, a string) are kept.
#[derive(Debug, Default)]
pub struct Memo {
    values: Vec<Box<[u8]>>,
    next: usize,
}

/// Values a [`Memo`] keeps, and the longest it keeps.
const MEMOS: usize = 16;
const MEMO_BYTES: usize = 4096;

impl Memo {
    /// Skips the value at `at`, as [`skip`] does.
    #[inline]
    fn skip(&mut self, s: &[u8], at: usize, depth: usize) -> Option<usize> {
        if !matches!(s.get(at), Some(b'{' | b'[' | b'"')) {
            return skip(s, at, depth);
        }
        self.read(s, at, |at| skip(s, at, depth))
    }

    /// The value at `at` read by `read` (which returns where it ends),
    /// unless it is one read before.
    #[inline]
    fn read(
        &mut self,
        s: &[u8],
        at: usize,
        read: impl FnOnce(usize) -> Option<usize>,
    ) -> Option<usize> {
        if let Some(v) = self.values.iter().find(|v| same_at(s, at, v)) {
            return Some(at + v.len());
        }
        let end = read(at)?;
        self.remember(&s[at..end]);
        Some(end)
    }

    fn remember(&mut self, value: &[u8]) {
        if value.len() > MEMO_BYTES || !matches!(value.first(), Some(b'{' | b'[' | b'"')) {
            return;
        }
        if self.values.len() < MEMOS {
            self.values.push(value.into());
        } else {
            self.values[self.next] = value.into();
            self.next = (self.next + 1) % MEMOS;
        }
    }
}

/// Whether `s[at..]` starts with `v`: its last eight bytes first, where
/// values alike at their start (`{"container_name":"svc-…`) differ.
#[inline(always)]
fn same_at(s: &[u8], at: usize, v: &[u8]) -> bool {
    if v.len() >= 8 {
        let last = at + v.len() - 8;
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        match s.get(last..last + 8) {
            Some(w) if word(w) == word(&v[v.len() - 8..]) => {}
            _ => return false,
        }
    }
    starts_with_at(s, at, v)
}

/// Scans the envelope: an object, or (`array`) Fluent Bit's
/// `[time, {…}]`. `wants` are the paths the envelope needs.
///
/// `line(s, i, p)` is offered each line string the scan would take (`i`
/// just after its opening quote, `p` its key's preference): it may read
/// the line there, as it is written, and return the index of its closing
/// quote, which saves a second pass over the longest string of the
/// envelope; `None` leaves the string to this scan.
///
/// `layout`, when given, is tried first and learnt again from an envelope
/// that does not follow it: what it reads is what the full scan reads.
pub(super) fn scan<'a>(
    s: &'a [u8],
    wants: &[Want],
    array: bool,
    line: &mut impl FnMut(&'a [u8], usize, u8) -> Option<usize>,
    mut layout: Option<&mut Layout>,
) -> Option<Found<'a>> {
    if let Some(layout) = layout.as_deref_mut().filter(|l| l.ready) {
        let mut found = Found::default();
        let mut root = |i, found: &mut Found<'a>| by_layout(s, i, wants, layout, found, line);
        if let Some(found) = envelope(s, array, &mut found, &mut root).map(|()| found) {
            return Some(found);
        }
    }
    let mut found = Found::default();
    let mut learnt = layout.is_some().then(Vec::new);
    let mut root =
        |i, found: &mut Found<'a>| object(s, i, wants, u32::MAX, 0, found, line, learnt.as_mut());
    let read = envelope(s, array, &mut found, &mut root);
    if let Some(layout) = layout {
        layout.ready = read.is_some();
        if let Some(members) = learnt.filter(|_| layout.ready) {
            layout.members = members;
        }
    }
    read.map(|()| found)
}

/// The envelope around its root object, read by `root`.
#[inline]
fn envelope<'a>(
    s: &'a [u8],
    array: bool,
    found: &mut Found<'a>,
    root: &mut impl FnMut(usize, &mut Found<'a>) -> Option<usize>,
) -> Option<()> {
    let i = ws(s, 0);
    let end = match *s.get(i)? {
        b'{' => root(i, found)?,
        b'[' if array => {
            let (t, n) = scalar(s, ws(s, i + 1))?;
            if !matches!(t.first(), Some(b'-' | b'0'..=b'9')) {
                return None;
            }
            let mut i = ws(s, n);
            if s.get(i) != Some(&b',') {
                return None;
            }
            i = ws(s, root(ws(s, i + 1), found)?);
            if s.get(i) != Some(&b']') {
                return None;
            }
            if found.time.is_none() {
                found.time = Some((0, Time::Num(t)));
            }
            i + 1
        }
        _ => return None,
    };
    (ws(s, end) == s.len()).then_some(())
}

/// Whether `s[i..]` starts with `lit`, eight bytes at a time: the
/// layout's keys and values are short, too short for a `memcmp` call each.
#[inline(always)]
fn starts_with_at(s: &[u8], i: usize, lit: &[u8]) -> bool {
    let Some(tail) = s.get(i..i + lit.len()) else {
        return false;
    };
    let word = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let mut at = 0;
    while at + 8 <= lit.len() {
        if word(tail, at) != word(lit, at) {
            return false;
        }
        at += 8;
    }
    if at == lit.len() {
        return true;
    }
    if lit.len() >= 8 {
        // The last eight bytes, overlapping those compared.
        let last = lit.len() - 8;
        return word(tail, last) == word(lit, last);
    }
    let mut k = at;
    while k < lit.len() {
        if tail[k] != lit[k] {
            return false;
        }
        k += 1;
    }
    true
}

/// The root object at `i` read by `layout`: `None` when it is laid out
/// otherwise.
fn by_layout<'a>(
    s: &'a [u8],
    i: usize,
    wants: &[Want],
    layout: &mut Layout,
    found: &mut Found<'a>,
    line: &mut impl FnMut(&'a [u8], usize, u8) -> Option<usize>,
) -> Option<usize> {
    if s.get(i) != Some(&b'{') {
        return None;
    }
    let mut i = ws(s, i + 1);
    let n = layout.members.len();
    if n == 0 {
        return (s.get(i) == Some(&b'}')).then_some(i + 1);
    }
    for (k, m) in layout.members.iter_mut().enumerate() {
        let (head, mask) = m.head;
        let fits = match s.get(i..i + 8) {
            Some(w) if m.key.len() <= 8 => {
                u64::from_le_bytes(w.try_into().expect("8 bytes")) & mask == head
            }
            _ => starts_with_at(s, i, &m.key),
        };
        if !fits {
            return None;
        }
        i = ws(s, i + m.key.len());
        i = match (m.leaf, m.deeper) {
            (None, 0) => m.values.skip(s, i, 1)?,
            (leaf, deeper) => value(s, i, wants, leaf, deeper, 0, found, line)?,
        };
        i = ws(s, i);
        match (*s.get(i)?, k + 1 == n) {
            (b',', false) => i = ws(s, i + 1),
            (b'}', true) => return Some(i + 1),
            _ => return None,
        }
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn object<'a>(
    s: &'a [u8],
    i: usize,
    wants: &[Want],
    live: u32,
    depth: usize,
    found: &mut Found<'a>,
    line: &mut impl FnMut(&'a [u8], usize, u8) -> Option<usize>,
    mut learn: Option<&mut Vec<Member>>,
) -> Option<usize> {
    if s.get(i) != Some(&b'{') || depth > MAX_DEPTH {
        return None;
    }
    let mut i = ws(s, i + 1);
    if s.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        let key_at = i;
        let (key, n) = string(s, i)?;
        if key.escaped {
            return None;
        }
        i = ws(s, n);
        if s.get(i) != Some(&b':') {
            return None;
        }
        i = ws(s, i + 1);
        let (mut leaf, mut deeper) = (None, 0u32);
        let h = head(key.bytes);
        for (k, want) in wants.iter().enumerate().take(32) {
            if live & (1 << k) != 0 && want.matches(depth, h, key.bytes) {
                if want.keys.len() == depth + 1 {
                    leaf = Some(want.slot);
                } else {
                    deeper |= 1 << k;
                }
            }
        }
        let at = i;
        i = value(s, i, wants, leaf, deeper, depth, found, line)?;
        if let Some(members) = learn.as_deref_mut() {
            let key = &s[key_at..at];
            let mask = match key.len() {
                n @ 0..=7 => (1u64 << (n * 8)) - 1,
                _ => u64::MAX,
            };
            let mut m = Member {
                key: key.into(),
                head: (head(key), mask),
                leaf,
                deeper,
                values: Memo::default(),
            };
            if leaf.is_none() && deeper == 0 {
                m.values.remember(&s[at..i]);
            }
            members.push(m);
        }
        i = ws(s, i);
        match *s.get(i)? {
            b',' => i = ws(s, i + 1),
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// A member's value at `i`: taken into `found` when `leaf` is one of the
/// wants', read into when `deeper` wants are under it, else skipped.
/// Returns the index after it.
#[allow(clippy::too_many_arguments)]
#[inline]
fn value<'a>(
    s: &'a [u8],
    i: usize,
    wants: &[Want],
    leaf: Option<Slot>,
    deeper: u32,
    depth: usize,
    found: &mut Found<'a>,
    line: &mut impl FnMut(&'a [u8], usize, u8) -> Option<usize>,
) -> Option<usize> {
    Some(match (leaf, s.get(i)) {
        (Some(Slot::Line(p)), Some(b'"')) => {
            let better = found.line.as_ref().is_none_or(|(q, _)| p < *q);
            let (v, _, n) = line_string(s, i, |at| better.then(|| line(s, at, p)).flatten())?;
            if better {
                found.line = Some((p, v));
            }
            n
        }
        (Some(slot), Some(b'"')) => {
            let (v, n) = string(s, i)?;
            take(found, slot, Some(v), None);
            n
        }
        (Some(slot @ Slot::Time(_)), Some(b'-' | b'0'..=b'9')) => {
            let (tok, n) = scalar(s, i)?;
            take(found, slot, None, Some(tok));
            n
        }
        (None, Some(b'{')) if deeper != 0 => {
            object(s, i, wants, deeper, depth + 1, found, line, None)?
        }
        _ => skip(s, i, depth + 1)?,
    })
}

/// The line's string at `i` (its opening quote): read where it is
/// written by `read` (given the index after the quote, it returns that of
/// the closing one) when `read` takes it — then `true` — else scanned.
/// Also the index after the string.
#[inline]
fn line_string<'a>(
    s: &'a [u8],
    i: usize,
    read: impl FnOnce(usize) -> Option<usize>,
) -> Option<(Raw<'a>, bool, usize)> {
    if s.get(i) != Some(&b'"') {
        return None;
    }
    if let Some(end) = read(i + 1) {
        let bytes = &s[i + 1..end];
        return Some((
            Raw {
                bytes,
                escaped: true,
            },
            true,
            end + 1,
        ));
    }
    let (v, n) = string(s, i)?;
    Some((v, false, n))
}

fn take<'a>(found: &mut Found<'a>, slot: Slot, v: Option<Raw<'a>>, n: Option<&'a [u8]>) {
    match (slot, v, n) {
        (Slot::Time(p), Some(v), _)
            if !v.escaped && found.time.as_ref().is_none_or(|(q, _)| p < *q) =>
        {
            found.time = Some((p, Time::Str(v.bytes)));
        }
        (Slot::Time(p), None, Some(n)) if found.time.as_ref().is_none_or(|(q, _)| p < *q) => {
            found.time = Some((p, Time::Num(n)));
        }
        (Slot::Service, Some(v), _) => found.service = Some(v),
        _ => {}
    }
}

/// One log record of an OTLP/JSON logs request, as [`otlp`] finds it.
#[derive(Debug, PartialEq)]
pub struct OtlpRecord<'a> {
    /// `body.stringValue` as written.
    pub(super) line: Raw<'a>,
    /// Whether the line hook read it there.
    pub(super) read: bool,
    /// `timeUnixNano` and `observedTimeUnixNano` as written: a string's
    /// bytes or a number.
    pub(super) time: Option<&'a [u8]>,
    pub(super) observed: Option<&'a [u8]>,
    /// The string value of the attribute `--service-field` names.
    pub(super) service: Option<Raw<'a>>,
}

/// Where `--service-field envelope.PATH` points in an OTLP request.
#[derive(Debug, Clone, Copy)]
pub(super) enum OtlpService<'k> {
    /// `resource.KEY`: an attribute of the record's resource.
    Resource(&'k [u8]),
    /// `attributes.KEY`: an attribute of the record.
    Record(&'k [u8]),
}

/// The members of the object at `i`, each handed to `f(key, at)` (`at`
/// where its value starts), which returns where the value ends. Gives up
/// on an escaped key. Returns the index after the object.
#[inline]
fn members<'a>(
    s: &'a [u8],
    i: usize,
    f: impl FnMut(&'a [u8], usize) -> Option<usize>,
) -> Option<usize> {
    members_with(s, i, None, f)
}

/// The keys of the last object read at one place, as written with their
/// colon (`"body":`), where they were compact.
#[derive(Debug, Default)]
pub struct Keys(Vec<Option<Box<[u8]>>>);

/// [`members`], with the keys of the object before at this place (`keys`,
/// kept up to date): a key written as that one's is taken by comparing
/// its bytes instead of scanning it. Takes `keys` out of its place for the
/// call (`place`), so that `f` may use the rest.
#[inline]
fn members_laid<'a, P>(
    s: &'a [u8],
    i: usize,
    place: &mut P,
    keys: fn(&mut P) -> &mut Keys,
    mut f: impl FnMut(&mut P, &'a [u8], usize) -> Option<usize>,
) -> Option<usize> {
    let mut known = std::mem::take(keys(place));
    let end = members_with(s, i, Some(&mut known), |key, at| f(place, key, at));
    *keys(place) = known;
    end
}

/// [`members`], keys taken by `known`'s bytes where they match, and
/// `known` learnt again from those that do not.
#[inline]
fn members_with<'a>(
    s: &'a [u8],
    i: usize,
    mut known: Option<&mut Keys>,
    mut f: impl FnMut(&'a [u8], usize) -> Option<usize>,
) -> Option<usize> {
    if s.get(i) != Some(&b'{') {
        return None;
    }
    let mut i = ws(s, i + 1);
    if s.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    let mut k = 0;
    loop {
        let (key, value) = match known.as_ref().and_then(|known| known.0.get(k)) {
            // `"key":` as before: the key has no escape, and its colon
            // follows it.
            Some(Some(lit)) if starts_with_at(s, i, lit) => {
                (&s[i + 1..i + lit.len() - 2], i + lit.len())
            }
            _ => {
                let (key, n) = string(s, i)?;
                if key.escaped {
                    return None;
                }
                let colon = ws(s, n);
                if s.get(colon) != Some(&b':') {
                    return None;
                }
                if let Some(known) = known.as_deref_mut() {
                    known.0.truncate(k);
                    known.0.push((colon == n).then(|| s[i..=colon].into()));
                }
                (key.bytes, colon + 1)
            }
        };
        i = ws(s, f(key, ws(s, value))?);
        k += 1;
        match *s.get(i)? {
            b',' => i = ws(s, i + 1),
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// The elements of the array at `i`, each handed to `f(at)`, which
/// returns where it ends. Returns the index after the array.
#[inline]
fn elements(s: &[u8], i: usize, mut f: impl FnMut(usize) -> Option<usize>) -> Option<usize> {
    if s.get(i) != Some(&b'[') {
        return None;
    }
    let mut i = ws(s, i + 1);
    if s.get(i) == Some(&b']') {
        return Some(i + 1);
    }
    loop {
        i = ws(s, f(i)?);
        match *s.get(i)? {
            b',' => i = ws(s, i + 1),
            b']' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// Marks `bit` seen in `seen`; `None` when it was already (serde refuses
/// a field given twice: so does this path, by leaving it to serde).
#[inline]
fn once(seen: &mut u8, bit: u8) -> Option<()> {
    (*seen & bit == 0).then(|| *seen |= bit)
}

/// What an OTLP request repeats from one record to the next (the
/// resource, the scope, attributes, the severity), kept per chunk of
/// records: see [`Memo`].
#[derive(Debug, Default)]
pub struct OtlpMemos {
    resource: Memo,
    resource_other: Memo,
    scope_other: Memo,
    attributes: Memo,
    record_other: Memo,
    request_keys: Keys,
    resource_logs_keys: Keys,
    scope_logs_keys: Keys,
    record_keys: Keys,
    body_keys: Keys,
}

/// An OTLP/JSON `ExportLogsServiceRequest` scanned for its log records,
/// into `out` in order. `line(s, i)` is offered each body string (`i`
/// after its opening quote), as [`scan`] offers a line. `None`: anything
/// this path does not take (a field given twice, a value of another
/// type, an escaped key, bad JSON) — the serde path decides the request.
pub(super) fn otlp<'a>(
    s: &'a [u8],
    service: Option<OtlpService<'_>>,
    line: &mut impl FnMut(&'a [u8], usize) -> Option<usize>,
    memos: &mut OtlpMemos,
    out: &mut Vec<OtlpRecord<'a>>,
) -> Option<()> {
    let mut seen = 0u8;
    let end = members_laid(
        s,
        ws(s, 0),
        memos,
        |m| &mut m.request_keys,
        |memos, key, at| match key {
            b"resourceLogs" => {
                once(&mut seen, 1)?;
                elements(s, at, |at| resource_logs(s, at, service, line, memos, out))
            }
            _ => skip(s, at, 1),
        },
    )?;
    (seen == 1 && ws(s, end) == s.len()).then_some(())
}

#[allow(clippy::too_many_arguments)]
fn resource_logs<'a>(
    s: &'a [u8],
    at: usize,
    service: Option<OtlpService<'_>>,
    line: &mut impl FnMut(&'a [u8], usize) -> Option<usize>,
    memos: &mut OtlpMemos,
    out: &mut Vec<OtlpRecord<'a>>,
) -> Option<usize> {
    let first = out.len();
    let mut resource_service = None;
    let mut seen = 0u8;
    let want = match service {
        Some(OtlpService::Resource(k)) => Some(k),
        _ => None,
    };
    let end = members_laid(
        s,
        at,
        memos,
        |m| &mut m.resource_logs_keys,
        |memos, key, at| match key {
            b"resource" => {
                once(&mut seen, 1)?;
                if s[at..].starts_with(b"null") {
                    return skip(s, at, 2);
                }
                let mut resource = |at| {
                    let mut seen = 0u8;
                    members(s, at, |key, at| match key {
                        b"attributes" => {
                            once(&mut seen, 1)?;
                            attributes(s, at, want, &mut resource_service)
                        }
                        _ => skip(s, at, 3),
                    })
                };
                // Checked as serde would read it, once for the same bytes.
                match want {
                    None => memos.resource.read(s, at, resource),
                    Some(_) => resource(at),
                }
            }
            b"scopeLogs" => {
                once(&mut seen, 2)?;
                elements(s, at, |at| {
                    let mut seen = 0u8;
                    members_laid(
                        s,
                        at,
                        memos,
                        |m| &mut m.scope_logs_keys,
                        |memos, key, at| match key {
                            b"logRecords" => {
                                once(&mut seen, 1)?;
                                elements(s, at, |at| log_record(s, at, service, line, memos, out))
                            }
                            _ => memos.scope_other.skip(s, at, 4),
                        },
                    )
                })
            }
            _ => memos.resource_other.skip(s, at, 2),
        },
    )?;
    if let Some(OtlpService::Resource(_)) = service {
        for r in &mut out[first..] {
            r.service = resource_service;
        }
    }
    Some(end)
}

fn log_record<'a>(
    s: &'a [u8],
    at: usize,
    service: Option<OtlpService<'_>>,
    line: &mut impl FnMut(&'a [u8], usize) -> Option<usize>,
    memos: &mut OtlpMemos,
    out: &mut Vec<OtlpRecord<'a>>,
) -> Option<usize> {
    let mut rec = OtlpRecord {
        line: Raw {
            bytes: b"",
            escaped: false,
        },
        read: false,
        time: None,
        observed: None,
        service: None,
    };
    let mut seen = 0u8;
    let end = members_laid(
        s,
        at,
        memos,
        |m| &mut m.record_keys,
        |memos, key, at| match key {
            b"timeUnixNano" => {
                once(&mut seen, 1)?;
                nanos(s, at, &mut rec.time)
            }
            b"observedTimeUnixNano" => {
                once(&mut seen, 2)?;
                nanos(s, at, &mut rec.observed)
            }
            b"body" => {
                once(&mut seen, 4)?;
                let mut seen = 0u8;
                members_laid(
                    s,
                    at,
                    memos,
                    |m| &mut m.body_keys,
                    |_, key, at| match key {
                        b"stringValue" => {
                            once(&mut seen, 1)?;
                            let (v, read, n) = line_string(s, at, |at| line(s, at))?;
                            (rec.line, rec.read) = (v, read);
                            Some(n)
                        }
                        _ => skip(s, at, 4),
                    },
                )
                .filter(|_| seen == 1)
            }
            b"attributes" => {
                once(&mut seen, 8)?;
                match service {
                    Some(OtlpService::Record(k)) => attributes(s, at, Some(k), &mut rec.service),
                    // Checked as serde would read it, once for the same bytes.
                    _ => (memos.attributes).read(s, at, |at| attributes(s, at, None, &mut None)),
                }
            }
            _ => memos.record_other.skip(s, at, 3),
        },
    )?;
    // Without a string body the serde path says so, record by record.
    if seen & 4 == 0 {
        return None;
    }
    out.push(rec);
    Some(end)
}

/// An array of `{"key": …, "value": {"stringValue": …}}`: the string value
/// of the first whose key is `want` into `found`.
fn attributes<'a>(
    s: &'a [u8],
    at: usize,
    want: Option<&[u8]>,
    found: &mut Option<Raw<'a>>,
) -> Option<usize> {
    let mut matched = false;
    elements(s, at, |at| {
        let (mut key, mut value, mut seen) = (None, None, 0u8);
        let end = members(s, at, |k, at| match k {
            b"key" => {
                once(&mut seen, 1)?;
                let (v, n) = string(s, at)?;
                key = Some(v);
                Some(n)
            }
            b"value" => {
                once(&mut seen, 2)?;
                let mut seen = 0u8;
                members(s, at, |k, at| match k {
                    b"stringValue" => {
                        once(&mut seen, 1)?;
                        let (v, n) = string(s, at)?;
                        value = Some(v);
                        Some(n)
                    }
                    _ => skip(s, at, 6),
                })
            }
            _ => skip(s, at, 5),
        })?;
        let key = key.filter(|_| seen == 3)?;
        if !matched && want.is_some_and(|w| !key.escaped && key.bytes == w) {
            matched = true;
            *found = value;
        } else if key.escaped && want.is_some() {
            // A key with escapes could still be the one wanted.
            return None;
        }
        Some(end)
    })
}

/// A uint64 as OTLP/JSON writes it: a string, a number or null.
fn nanos<'a>(s: &'a [u8], at: usize, into: &mut Option<&'a [u8]>) -> Option<usize> {
    match s.get(at)? {
        b'"' => {
            let (v, n) = string(s, at)?;
            if v.escaped {
                return None;
            }
            *into = Some(v.bytes);
            Some(n)
        }
        b'n' => {
            let (_, n) = scalar(s, at)?;
            Some(n)
        }
        b'-' | b'0'..=b'9' => {
            let (tok, n) = scalar(s, at)?;
            *into = Some(tok);
            Some(n)
        }
        _ => None,
    }
}

/// The string from `at` (after its opening quote) with its escapes
/// decoded into `out`, in one pass: the index of its closing quote, or
/// `None` on a bad escape, a control character or no closing quote.
pub(super) fn unescape_into(s: &[u8], at: usize, out: &mut Vec<u8>) -> Option<usize> {
    let end = unescape_run(s, at, out)?;
    (end < s.len()).then_some(end)
}

/// The bytes from `at` with their escapes decoded into `out`, up to the
/// first unescaped quote or the end of `s`: where it stopped, or `None`
/// on a bad escape or a control character. Runs between escapes are a
/// few bytes (`\"` every word or two of an access line): each word is
/// written whole and kept up to its first special byte, not copied by a
/// `memcpy` call a run.
fn unescape_run(s: &[u8], at: usize, out: &mut Vec<u8>) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    out.clear();
    // Decoded, a string is never longer than written; eight more bytes
    // take the last whole word.
    out.reserve(s.len().saturating_sub(at) + 8);
    let base = out.as_mut_ptr();
    // Written so far; `n <= j - at` throughout.
    let mut n = 0usize;
    let mut j = at;
    loop {
        while j + 8 <= s.len() {
            let x = u64::from_le_bytes(s[j..j + 8].try_into().expect("eight bytes"));
            // SAFETY: n + 8 <= j - at + 8 <= s.len() - at + 8, the capacity
            // reserved above.
            unsafe { base.add(n).cast::<u64>().write_unaligned(x.to_le()) };
            let q = x ^ (ONES * b'"' as u64);
            let b = x ^ (ONES * b'\\' as u64);
            let hit = ((q.wrapping_sub(ONES) & !q)
                | (b.wrapping_sub(ONES) & !b)
                | (x.wrapping_sub(ONES * 0x20) & !x))
                & HIGH;
            if hit != 0 {
                // The lowest flagged byte is exact; bits above it may not be.
                let k = (hit.trailing_zeros() / 8) as usize;
                j += k;
                n += k;
                break;
            }
            j += 8;
            n += 8;
        }
        let Some(&c) = s.get(j) else {
            // SAFETY: the first n bytes were written, n <= capacity.
            unsafe { out.set_len(n) };
            return Some(j);
        };
        if !matches!(c, b'"' | b'\\' | 0..=0x1f) {
            // The tail, shorter than a word.
            // SAFETY: n <= j - at < s.len() - at, within the capacity.
            unsafe { base.add(n).write(c) };
            j += 1;
            n += 1;
            continue;
        }
        match c {
            b'"' => {
                // SAFETY: the first n bytes were written, n <= capacity.
                unsafe { out.set_len(n) };
                return Some(j);
            }
            b'\\' => {
                let e = *s.get(j + 1)?;
                if e == b'u' {
                    let (ch, end) = unicode_escape(s, j)?;
                    let mut buf = [0u8; 4];
                    let text = ch.encode_utf8(&mut buf).as_bytes();
                    // SAFETY: text is at most half of j..end (3 bytes of 6,
                    // 4 of a pair's 12), so n stays <= j - at after it.
                    unsafe {
                        std::ptr::copy_nonoverlapping(text.as_ptr(), base.add(n), text.len())
                    };
                    n += text.len();
                    j = end;
                } else {
                    // SAFETY: n <= j - at < capacity.
                    unsafe { base.add(n).write(simple_escape(e)?) };
                    n += 1;
                    j += 2;
                }
            }
            // A control character cannot be inside a JSON string.
            _ => return None,
        }
    }
}

/// The string at `i` with its escapes decoded, and the index after it.
pub(super) fn string_decoded(s: &[u8], i: usize) -> Option<(std::borrow::Cow<'_, [u8]>, usize)> {
    let (raw, n) = string(s, i)?;
    Some((raw.decoded()?, n))
}

/// The byte a one-letter JSON escape (`\\n`, `\\"`, …) stands for.
#[inline]
fn simple_escape(c: u8) -> Option<u8> {
    Some(match c {
        b'"' | b'\\' | b'/' => c,
        b'n' => b'\n',
        b't' => b'\t',
        b'r' => b'\r',
        b'b' => 8,
        b'f' => 12,
        _ => return None,
    })
}

/// The `\uXXXX` escape at `j` (its backslash), a surrogate pair's two
/// taken together: the character, and the index after the escape.
fn unicode_escape(s: &[u8], j: usize) -> Option<(char, usize)> {
    let hex = |at: usize| -> Option<u32> {
        let h = s.get(at..at + 4)?;
        if !h.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    };
    let code = hex(j + 2)?;
    if (0xD800..0xDC00).contains(&code) {
        // A surrogate pair: `\uD83D\uDE00`.
        if s.get(j + 6..j + 8) != Some(b"\\u") {
            return None;
        }
        let low = hex(j + 8)?;
        if !(0xDC00..0xE000).contains(&low) {
            return None;
        }
        let code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        return Some((char::from_u32(code)?, j + 12));
    }
    // A lone low surrogate is no character.
    Some((char::from_u32(code)?, j + 6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Records alike as a shipper writes them, a few laid out otherwise
    /// or broken: members in one order, values that change or repeat.
    fn records() -> impl Strategy<Value = Vec<String>> {
        let value = prop::sample::select(vec![
            r#""svc-1""#,
            r#""svc-2""#,
            r#""a\"b""#,
            r#"{"container_name":"svc-1"}"#,
            r#"{"container_name":"svc-2"}"#,
            r#"{"container_name":"svc-1","x":[1,{"y":null}]}"#,
            r#"{"container_name":1}"#,
            r#"[1,2]"#,
            "12",
            "123",
            "1.5e3",
            "true",
            r#""2026-11-24T10:00:00Z""#,
            "1795510800.25",
        ]);
        let record = (
            prop::collection::vec(value, 5),
            prop::sample::select(vec![0u8, 0, 0, 0, 1, 2, 3, 4, 5]),
            any::<prop::sample::Index>(),
            any::<bool>(),
        )
            .prop_map(|(v, twist, at, array)| {
                let keys = ["message", "stream", "time", "kubernetes", "x"];
                let mut members: Vec<String> = keys
                    .iter()
                    .zip(&v)
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                members[0] = r#""message":"a line""#.into();
                match twist {
                    1 => members.swap(1, 3),
                    2 => {
                        members.pop();
                    }
                    3 => members.push(r#""extra":{}"#.into()),
                    4 => members[2] = members[2].replace(':', " : "),
                    _ => {}
                }
                let mut text = format!("{{{}}}", members.join(","));
                if twist == 5 {
                    // One byte broken.
                    let i = at.index(text.len());
                    if text.is_char_boundary(i) && text.is_char_boundary(i + 1) {
                        text.replace_range(i..i + 1, "\"");
                    }
                }
                if array {
                    text = format!("[1795510800.5,{text}]");
                }
                text
            });
        prop::collection::vec(record, 1..12)
    }

    #[test]
    fn a_unicode_escape_takes_four_hex_digits_and_pairs_surrogates() {
        let mut out = Vec::new();
        let read = |s: &[u8], out: &mut Vec<u8>| unescape_into(s, 0, out).map(|_| out.clone());
        assert_eq!(read(br#"\u0041\u00e9""#, &mut out), Some("Aé".into()));
        assert_eq!(read(br#"\uD83D\uDE00""#, &mut out), Some("😀".into()));
        for bad in [
            &br#"\u+041""#[..],
            br#"\u004""#,
            br#"\uD83D""#,
            br#"\uDE00""#,
        ] {
            assert_eq!(
                read(bad, &mut out),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert!(serde_json::from_slice::<String>(&[b"\"", bad].concat()).is_err());
        }
    }

    proptest::proptest! {
        /// A string unescaped word by word is serde_json's reading of it,
        /// and refused where serde_json refuses it; the buffer it reuses
        /// holds nothing of the string before.
        #[test]
        fn unescaped_into_a_buffer_as_serde_json_reads_it(
            text in "[ -~é\"\\\\\n\t\u{1F600}\u{7}/]{0,60}",
            raw_tail in "[\"\\\\a-z\u{1}]{0,3}",
            before in "[a-z]{0,80}",
        ) {
            let mut out = before.into_bytes();
            let quoted = serde_json::to_string(&text).unwrap();
            let end = unescape_into(quoted.as_bytes(), 1, &mut out);
            proptest::prop_assert_eq!(end, Some(quoted.len() - 1));
            proptest::prop_assert_eq!(&out[..], text.as_bytes());
            let hand = format!("\"{text}{raw_tail}\"");
            let serde: Result<String, _> = serde_json::from_str(&hand);
            match (unescape_into(hand.as_bytes(), 1, &mut out), serde) {
                (Some(n), Ok(w)) => {
                    proptest::prop_assert_eq!(n, hand.len() - 1);
                    proptest::prop_assert_eq!(&out[..], w.as_bytes());
                }
                (Some(n), Err(_)) => proptest::prop_assert!(n < hand.len() - 1, "took {hand:?}"),
                (None, Ok(w)) => proptest::prop_assert!(false, "refused {hand:?}, serde read {w:?}"),
                (None, Err(_)) => {}
            }
        }

        /// Read by the layout of the records before it, every record reads
        /// as the full scan reads it.
        #[test]
        fn the_layout_reads_as_the_full_scan(records in records(), nested in any::<bool>()) {
            let wants = [
                Want::new(&["message".into()], Slot::Line(0)),
                Want::new(&["time".into()], Slot::Time(0)),
                if nested {
                    Want::new(&["kubernetes".into(), "container_name".into()], Slot::Service)
                } else {
                    Want::new(&["stream".into()], Slot::Service)
                },
            ];
            let mut layout = Layout::default();
            let mut laid_out = 0;
            for r in &records {
                let s = r.as_bytes();
                let ready = layout.ready;
                let with = scan(s, &wants, true, &mut |_, _, _| None, Some(&mut layout));
                let without = scan(s, &wants, true, &mut |_, _, _| None, None);
                laid_out += usize::from(ready && with.is_some());
                prop_assert_eq!(with, without, "{}", r);
            }
            // Alike records after the first are read by the layout.
            if records.windows(2).all(|w| w[0] == w[1]) && records.len() > 1 && scan(records[0].as_bytes(), &wants, true, &mut |_, _, _| None, None).is_some() {
                prop_assert_eq!(laid_out, records.len() - 1);
            }
        }

        /// A JSON string's escapes decoded as serde_json decodes them, and
        /// refused where serde_json refuses it (the string alone, then
        /// with what follows it).
        #[test]
        fn decoded_strings_are_serde_jsons(
            text in "[ -~é\"\\\\\n\t\u{1F600}\u{7}\u{1f}/]{0,60}",
            raw_tail in "[\"\\\\a-z\u{1}]{0,3}",
        ) {
            let quoted = serde_json::to_string(&text).unwrap();
            let (got, end) = string_decoded(quoted.as_bytes(), 0).unwrap();
            proptest::prop_assert_eq!(&got[..], text.as_bytes());
            proptest::prop_assert_eq!(end, quoted.len());
            // Hand-written bytes: what serde_json takes as a string, we
            // take the same; no panic on the rest.
            let hand = format!("\"{text}{raw_tail}\"");
            let serde: Result<String, _> = serde_json::from_str(&hand);
            match (string_decoded(hand.as_bytes(), 0), serde) {
                (Some((g, n)), Ok(w)) => {
                    proptest::prop_assert_eq!(n, hand.len());
                    proptest::prop_assert_eq!(&g[..], w.as_bytes());
                }
                (Some((_, n)), Err(_)) => proptest::prop_assert!(n < hand.len(), "took {hand:?}"),
                (None, Ok(w)) => proptest::prop_assert!(false, "refused {hand:?}, serde read {w:?}"),
                (None, Err(_)) => {}
            }
        }
    }
}
