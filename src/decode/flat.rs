//! A fast path for the common line: one flat JSON object of ASCII strings
//! without escapes, numbers, booleans and nulls. It validates as strictly
//! as serde_json and gives up (returns `None`) on anything else — nesting,
//! escapes, non-ASCII bytes, bad syntax — so that the serde_json path
//! decides those lines. A differential property test holds the two equal.

/// A flat value, as the JSON decoder's `Scalar` needs it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum FlatValue<'a> {
    Str(&'a str),
    U(u64),
    I(i64),
    F(f64),
    Bool(bool),
    Null,
}

impl<'a> FlatValue<'a> {
    pub(super) fn into_cow(self) -> super::json::ScalarOut<'a> {
        use super::json::ScalarOut as S;
        match self {
            FlatValue::Str(s) => S::Str(s),
            FlatValue::U(v) => S::U(v),
            FlatValue::I(v) => S::I(v),
            FlatValue::F(v) => S::F(v),
            FlatValue::Bool(b) => S::Bool(b),
            FlatValue::Null => S::Null,
        }
    }
}

/// Skips whitespace. `ESC`: the object is read as it is written inside
/// a JSON string (an envelope's line, not yet unescaped), where a quote is
/// `\"` and a newline, tab or return is its two-byte escape.
#[inline(always)]
fn skip_ws<const ESC: bool>(s: &[u8], mut i: usize) -> usize {
    // Compact JSON has no whitespace between tokens: one comparison.
    if let Some(&c) = s.get(i) {
        // Escaped, a backslash is a quote's (`\"`) more often than not.
        if c > b' ' && (!ESC || c != b'\\' || s.get(i + 1) == Some(&b'"')) {
            return i;
        }
    }
    loop {
        match s.get(i) {
            Some(b' ' | b'\t' | b'\n' | b'\r') if !ESC => i += 1,
            Some(b' ') => i += 1,
            Some(b'\\') if ESC && matches!(s.get(i + 1), Some(b'n' | b't' | b'r')) => i += 2,
            _ => return i,
        }
    }
}

/// A string without escapes or control characters, ASCII only. `ESC`:
/// quoted by `\"`, as the object reads inside a JSON string.
#[inline(always)]
fn string<const ESC: bool>(s: &[u8], i: usize) -> Option<(&str, usize)> {
    let start = if ESC {
        if s.get(i..i + 2) != Some(b"\\\"") {
            return None;
        }
        i + 2
    } else {
        if s.get(i) != Some(&b'"') {
            return None;
        }
        i + 1
    };
    let mut j = start;
    // Eight bytes at a time (SWAR): the high bit of a byte of `special`
    // flags a quote, a backslash, a control character or non-ASCII. Bits
    // above a flagged byte may be spurious (borrows), the lowest is not:
    // it is where the string ends, or where this path gives up.
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while j + 8 <= s.len() {
        // SAFETY: j + 8 ≤ len, so the eight bytes at j are in the slice;
        // `read_unaligned` has no alignment requirement.
        let v = u64::from_le(unsafe { s.as_ptr().add(j).cast::<u64>().read_unaligned() });
        let quote = v ^ (ONES * b'"' as u64);
        let slash = v ^ (ONES * b'\\' as u64);
        let special = ((quote.wrapping_sub(ONES) & !quote)
            | (slash.wrapping_sub(ONES) & !slash)
            | v.wrapping_sub(ONES * 0x20)
            | v)
            & HIGH;
        if special == 0 {
            j += 8;
            continue;
        }
        j += (special.trailing_zeros() / 8) as usize;
        return string_end::<ESC>(s, start, j);
    }
    loop {
        match *s.get(j)? {
            b'"' | b'\\' => break,
            0..=0x1f | 0x80..=0xff => return None,
            _ => j += 1,
        }
    }
    string_end::<ESC>(s, start, j)
}

/// The string from `start` ended at `j`, where the scan met a quote, a
/// backslash or a byte it does not take: its text and the index after
/// its closing quote.
#[inline(always)]
fn string_end<const ESC: bool>(s: &[u8], start: usize, j: usize) -> Option<(&str, usize)> {
    let end = match (ESC, s[j]) {
        (false, b'"') => j + 1,
        (true, b'\\') if s.get(j + 1) == Some(&b'"') => j + 2,
        _ => return None,
    };
    // SAFETY: every byte in start..j was checked to be ASCII.
    let text = unsafe { std::str::from_utf8_unchecked(&s[start..j]) };
    Some((text, end))
}

/// The end of a run of at least one ASCII digit starting at `j`.
#[inline]
fn digits(s: &[u8], mut j: usize) -> Option<usize> {
    let start = j;
    while j < s.len() && s[j].is_ascii_digit() {
        j += 1;
    }
    (j > start).then_some(j)
}

/// The end of a JSON number per RFC 8259's grammar, and whether it has a
/// fraction or exponent. `None` when the grammar is broken.
#[inline]
pub(super) fn number_end(s: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i;
    if s.get(j) == Some(&b'-') {
        j += 1;
    }
    match s.get(j) {
        Some(b'0') => j += 1,
        Some(b'1'..=b'9') => {
            while j < s.len() && s[j].is_ascii_digit() {
                j += 1;
            }
        }
        _ => return None,
    }
    let mut float = false;
    if s.get(j) == Some(&b'.') {
        float = true;
        j = digits(s, j + 1)?;
    }
    if matches!(s.get(j), Some(b'e' | b'E')) {
        float = true;
        j += 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        j = digits(s, j)?;
    }
    Some((j, float))
}

const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

#[inline(always)]
fn number(s: &[u8], i: usize) -> Option<(FlatValue<'static>, usize)> {
    let neg = s.get(i) == Some(&b'-');
    let mut j = i + neg as usize;
    let mut mantissa = 0u64;
    let mut digits = 0u32;
    match s.get(j) {
        Some(b'0') => {
            j += 1;
            digits = 1;
        }
        Some(b'1'..=b'9') => {
            while let Some(&b @ b'0'..=b'9') = s.get(j) {
                mantissa = mantissa.wrapping_mul(10).wrapping_add((b - b'0') as u64);
                digits += 1;
                j += 1;
            }
        }
        _ => return None,
    }
    let mut frac = 0usize;
    if s.get(j) == Some(&b'.') {
        j += 1;
        let start = j;
        while let Some(&b @ b'0'..=b'9') = s.get(j) {
            mantissa = mantissa.wrapping_mul(10).wrapping_add((b - b'0') as u64);
            digits += 1;
            j += 1;
        }
        frac = j - start;
        if frac == 0 {
            return None;
        }
    }
    if matches!(s.get(j), Some(b'e' | b'E')) {
        return number_slow(s, i);
    }
    let v = if frac > 0 {
        if digits > 15 {
            return number_slow(s, i);
        }
        // Clinger's fast path: both operands exact, one rounding.
        let v = mantissa as f64 / POW10[frac];
        FlatValue::F(if neg { -v } else { v })
    } else if digits > 18 {
        return number_slow(s, i);
    } else if neg {
        FlatValue::I(-(mantissa as i64))
    } else {
        FlatValue::U(mantissa)
    };
    Some((v, j))
}

/// Any JSON number, through `str::parse`.
#[cold]
fn number_slow(s: &[u8], i: usize) -> Option<(FlatValue<'static>, usize)> {
    let (j, float) = number_end(s, i)?;
    let raw = &s[i..j];
    // SAFETY: i..j holds only ASCII digits, signs, `.`, `e` and `E`.
    let text = unsafe { std::str::from_utf8_unchecked(raw) };
    // serde_json rejects numbers out of f64's range; leave those to it.
    let finite = |v: f64| v.is_finite().then_some(v);
    let v = if float {
        FlatValue::F(finite(text.parse().ok()?)?)
    } else if raw[0] == b'-' {
        match text.parse::<i64>() {
            Ok(v) => FlatValue::I(v),
            Err(_) => FlatValue::F(finite(text.parse().ok()?)?),
        }
    } else {
        match text.parse::<u64>() {
            Ok(v) => FlatValue::U(v),
            Err(_) => FlatValue::F(finite(text.parse().ok()?)?),
        }
    };
    Some((v, j))
}

/// The first eight bytes of the key of length `len` at `at`, zero-padded:
/// one unaligned load when the line goes on for eight bytes (it always
/// does but at its very end).
#[inline]
fn key_prefix_at(s: &[u8], at: usize, len: usize) -> u64 {
    match s.get(at..at + 8) {
        Some(b) => {
            let v = u64::from_le_bytes(b.try_into().expect("8 bytes"));
            if len >= 8 {
                v
            } else {
                v & ((1u64 << (len * 8)) - 1)
            }
        }
        None => super::json::key_prefix(&s[at..at + len]),
    }
}

/// Walks a flat object from `s[0]`. `want(key, prefix)` says whether a
/// member matters; the values of those that do are handed to `field`, the
/// others are only validated. It returns where the object and the
/// whitespace after it end (the line's length, when nothing else follows).
/// `None`: not a line this path handles; let serde_json decide.
///
/// `ESC`: `s` is the object as written inside a JSON string, its escapes
/// not decoded (an envelope's line): quotes are `\"`, and any other
/// escape but whitespace's makes it give up. Where it answers, the answer
/// is that of the string unescaped and read without `ESC`.
#[inline]
pub(super) fn scan<'a, T, const ESC: bool>(
    s: &'a [u8],
    mut want: impl FnMut(&str, u64) -> Option<T>,
    mut field: impl FnMut(T, FlatValue<'a>),
) -> Option<usize> {
    let quote = 1 + ESC as usize;
    let mut i = skip_ws::<ESC>(s, 0);
    if s.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws::<ESC>(s, i + 1);
    if s.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let (key, j) = string::<ESC>(s, i)?;
            let prefix = key_prefix_at(s, i + quote, key.len());
            i = skip_ws::<ESC>(s, j);
            if s.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws::<ESC>(s, i + 1);
            let wanted = want(key, prefix);
            let j = match s.get(i)? {
                // A string opens with `"`, or escaped with `\"`.
                &c @ (b'"' | b'\\') if (c == b'\\') == ESC => {
                    let (v, j) = string::<ESC>(s, i)?;
                    if let Some(w) = wanted {
                        field(w, FlatValue::Str(v));
                    }
                    j
                }
                b't' if s[i..].starts_with(b"true") => {
                    if let Some(w) = wanted {
                        field(w, FlatValue::Bool(true));
                    }
                    i + 4
                }
                b'f' if s[i..].starts_with(b"false") => {
                    if let Some(w) = wanted {
                        field(w, FlatValue::Bool(false));
                    }
                    i + 5
                }
                b'n' if s[i..].starts_with(b"null") => {
                    if let Some(w) = wanted {
                        field(w, FlatValue::Null);
                    }
                    i + 4
                }
                b'-' | b'0'..=b'9' => match wanted {
                    Some(w) => {
                        let (v, j) = number(s, i)?;
                        field(w, v);
                        j
                    }
                    None => {
                        let (j, float) = number_end(s, i)?;
                        // An exponent may overflow, which serde_json rejects.
                        if float && s[i..j].iter().any(|&b| b == b'e' || b == b'E') {
                            return None;
                        }
                        j
                    }
                },
                _ => return None,
            };
            i = skip_ws::<ESC>(s, j);
            match s.get(i)? {
                b',' => i = skip_ws::<ESC>(s, i + 1),
                b'}' => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    Some(skip_ws::<ESC>(s, i))
}

#[cfg(test)]
mod tests {
    use crate::decode::JsonDecoder;
    use crate::spec::config::{Format, InputConfig};
    use proptest::prelude::*;

    fn piece() -> impl Strategy<Value = String> {
        let keys = prop::sample::select(vec![
            "ts",
            "service",
            "status",
            "latency_ms",
            "success",
            "outcome",
            "endpoint",
            "x",
            "time_iso8601",
            "request_time",
            "host",
        ]);
        let values = prop::sample::select(vec![
            r#""2026-11-24T10:00:00.123Z""#,
            r#""2026-11-24T10:00:00+02:00""#,
            "1764000000",
            "1764000000123",
            "1764000000.5",
            r#""api""#,
            r#""a\"b""#,
            r#""\u0041pi""#,
            "\"caf\u{e9}\"",
            "\"tab\there\"",
            r#""""#,
            "200",
            "503",
            "-1",
            "1e3",
            "12.5",
            "-0",
            "1e400",
            "01",
            "1.",
            "18446744073709551616",
            r#""200""#,
            r#""12.5""#,
            r#""OK""#,
            "true",
            "false",
            "null",
            r#"{"a":1}"#,
            "[1,2]",
            r#""success""#,
            r#""failure""#,
        ]);
        (keys, values, prop::sample::select(vec!["", " ", "\t"]))
            .prop_map(|(k, v, ws)| format!("{ws}\"{k}\"{ws}:{ws}{v}"))
    }

    /// The fields a valid event needs, in any order, so that most lines
    /// decode and the values themselves are compared.
    fn base() -> impl Strategy<Value = Vec<String>> {
        let ts = prop::sample::select(vec![
            r#""ts":"2026-11-24T10:00:00.123Z""#,
            r#""ts":1764000000"#,
            r#""ts":1764000000123"#,
            r#""ts":1764000000.25"#,
            r#""time_iso8601":"2026-11-24T10:00:00+00:00""#,
            r#""ts":"1764000000""#,
        ]);
        let svc = prop::sample::select(vec![
            r#""service":"api""#,
            r#""host":"web-1""#,
            r#""service":"a b""#,
        ]);
        let outcome = prop::sample::select(vec![
            r#""status":200"#,
            r#""status":503"#,
            r#""status":"404""#,
            r#""success":false"#,
            r#""outcome":"failure""#,
            r#""status":201.0"#,
        ]);
        let lat = prop::sample::select(vec![
            r#""latency_ms":12.5"#,
            r#""latency_ms":0"#,
            r#""latency_ms":3e2"#,
            r#""request_time":"0.250""#,
            r#""request_time":0.001"#,
            r#""latency_ms":7"#,
        ]);
        (ts, svc, outcome, lat)
            .prop_map(|(a, b, c, d)| {
                vec![a.to_string(), b.to_string(), c.to_string(), d.to_string()]
            })
            .prop_shuffle()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// The eight-bytes-at-a-time string scan stops where a byte-by-byte
        /// one does, wherever the special byte falls.
        #[test]
        fn string_scan_equals_a_byte_loop(body in prop::collection::vec(prop::sample::select(vec![b'a', b'Z', b'0', b' ', b'~', b'"', b'\\', 0x1f, 0x7f, 0x80, 0xe9, 0xff]), 0..40), tail in 0usize..12) {
            let mut line = vec![b'"'];
            line.extend(&body);
            line.extend(std::iter::repeat_n(b'x', tail));
            let naive = body
                .iter()
                .chain(std::iter::repeat_n(&b'x', tail))
                .position(|&b| b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b))
                .and_then(|k| (line[k + 1] == b'"').then_some(k + 2));
            prop_assert_eq!(super::string::<false>(&line, 0).map(|(_, end)| end), naive);
        }

        /// The one-pass number gives exactly what `str::parse` gives.
        #[test]
        fn numbers_parse_exactly(int in 0u64..10_000_000_000, frac in 0u64..100_000_000, digits in 0usize..9, neg in any::<bool>(), exp in prop::option::of(-30i32..30)) {
            let frac = format!("{frac:08}");
            let mut text = format!("{}{int}", if neg { "-" } else { "" });
            if digits > 0 {
                text += ".";
                text += &frac[..digits];
            }
            if let Some(e) = exp {
                text += &format!("e{e}");
            }
            let (got, end) = super::number(text.as_bytes(), 0).unwrap();
            prop_assert_eq!(end, text.len());
            let want: f64 = text.parse().unwrap();
            match got {
                super::FlatValue::F(v) => prop_assert_eq!(v.to_bits(), want.to_bits(), "{}", text),
                // Integers compare by value (`-0` is the integer 0).
                super::FlatValue::U(v) => prop_assert_eq!(v as f64, want, "{}", text),
                super::FlatValue::I(v) => prop_assert_eq!(v as f64, want, "{}", text),
                other => panic!("{other:?}"),
            }
        }

        /// The fast path and serde_json decode every line alike.
        #[test]
        fn fast_path_equals_serde(base in base(), extra in prop::collection::vec(piece(), 0..6), cut in any::<prop::sample::Index>(), mutate in any::<Option<(prop::sample::Index, u8)>>(), preset in 0usize..2) {
            let format = [Format::Json, Format::NginxJson][preset];
            let d = JsonDecoder::new(&InputConfig { format, ..InputConfig::default() });
            let mut parts = base;
            parts.extend(extra);
            let line = format!("{{{}}}", parts.join(","));
            let mut variants = vec![line.clone().into_bytes(), line.as_bytes()[..cut.index(line.len() + 1)].to_vec()];
            if let Some((at, byte)) = mutate {
                let mut m = line.clone().into_bytes();
                let i = at.index(m.len());
                m[i] = byte;
                variants.push(m);
            }
            for v in variants {
                let fast = d.decode(&v).map_err(|r| r.reason);
                let slow = d.decode_serde(&v).map_err(|r| r.reason);
                prop_assert_eq!(fast, slow, "line {:?}", String::from_utf8_lossy(&v));
            }
        }
    }
}
