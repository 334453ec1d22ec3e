//! The state dir against what was written: fallbacks, compaction, locks.

use super::*;
use crate::apply::snapshot::Head;

fn head(tag: i64) -> Head {
    Head {
        names: vec!["a".into(), "b".into()],
        now: Some(tag),
        ..Head::default()
    }
}

fn pass(base: bool, tag: i64, units: &[(&str, &[u8])]) -> PassFile {
    PassFile {
        base,
        head: head(tag),
        units: units
            .iter()
            .map(|(n, b)| Unit {
                name: (*n).into(),
                bytes: b.to_vec(),
            })
            .collect(),
    }
}

fn state(l: &Loaded) -> (Option<i64>, Vec<(String, Vec<u8>)>) {
    let (h, u) = l.state.as_ref().expect("a state");
    let mut u: Vec<(String, Vec<u8>)> = u.iter().map(|(n, b)| (n.to_string(), b.clone())).collect();
    u.sort();
    (h.now, u)
}

fn units(v: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    v.iter().map(|(n, b)| (n.to_string(), b.to_vec())).collect()
}

#[test]
fn a_base_and_its_deltas_read_back_as_the_latest_of_each_service() {
    let t = tempfile::tempdir().unwrap();
    let mut d = StateDir::open(t.path()).unwrap();
    assert!(d.load().unwrap().state.is_none());
    assert!(d.wants_base());
    d.write(&pass(true, 1, &[("a", b"a1"), ("b", b"b1")]))
        .unwrap();
    d.write(&pass(false, 2, &[("a", b"a2")])).unwrap();
    d.write(&pass(false, 3, &[])).unwrap();
    d.write(&pass(false, 4, &[("b", b"b4")])).unwrap();
    drop(d);
    let mut d = StateDir::open(t.path()).unwrap();
    let l = d.load().unwrap();
    assert_eq!(l.files, 4);
    assert!(l.failures.is_empty());
    assert_eq!(state(&l), (Some(4), units(&[("a", b"a2"), ("b", b"b4")])));
    // The next delta follows the last one.
    assert!(!d.wants_base());
    d.write(&pass(false, 5, &[("a", b"a5")])).unwrap();
    drop(d);
    let l = StateDir::open(t.path()).unwrap().load().unwrap();
    assert_eq!(state(&l), (Some(5), units(&[("a", b"a5"), ("b", b"b4")])));
}

#[test]
fn a_truncated_delta_ends_the_chain_there_and_starts_a_new_generation() {
    let t = tempfile::tempdir().unwrap();
    let mut d = StateDir::open(t.path()).unwrap();
    d.load().unwrap();
    d.write(&pass(true, 1, &[("a", b"a1"), ("b", b"b1")]))
        .unwrap();
    d.write(&pass(false, 2, &[("a", b"a2")])).unwrap();
    d.write(&pass(false, 3, &[("b", b"b3")])).unwrap();
    d.write(&pass(false, 4, &[("a", b"a4")])).unwrap();
    drop(d);
    // The second delta is cut short, as a disk that filled might leave it.
    let f = t.path().join(name(1, 2));
    let bytes = fs::read(&f).unwrap();
    fs::write(&f, &bytes[..bytes.len() - 3]).unwrap();
    let mut d = StateDir::open(t.path()).unwrap();
    let l = d.load().unwrap();
    assert_eq!(l.failures.len(), 1, "{:?}", l.failures);
    assert!(l.failures[0].contains("truncated"), "{}", l.failures[0]);
    assert_eq!(state(&l), (Some(2), units(&[("a", b"a2"), ("b", b"b1")])));
    // The bad file is moved aside; the one after it, unusable, is gone.
    assert!(t.path().join(format!("{}.bad", name(1, 2))).exists());
    assert!(!t.path().join(name(1, 3)).exists());
    // A new generation holds that state: the delta after the bad one is
    // never read on top of it.
    assert!(t.path().join(name(2, 0)).exists());
    assert!(!d.wants_base());
    d.write(&pass(false, 9, &[("b", b"b9")])).unwrap();
    drop(d);
    let l = StateDir::open(t.path()).unwrap().load().unwrap();
    assert!(l.failures.is_empty());
    assert_eq!(state(&l), (Some(9), units(&[("a", b"a2"), ("b", b"b9")])));
}

#[test]
fn a_corrupt_base_falls_back_to_the_generation_before() {
    let t = tempfile::tempdir().unwrap();
    let mut d = StateDir::open(t.path()).unwrap();
    d.load().unwrap();
    d.write(&pass(true, 1, &[("a", b"a1"), ("b", b"b1")]))
        .unwrap();
    d.write(&pass(false, 2, &[("a", b"a2")])).unwrap();
    d.write(&pass(true, 3, &[("a", b"a3"), ("b", b"b3")]))
        .unwrap();
    drop(d);
    let f = t.path().join(name(2, 0));
    let mut bytes = fs::read(&f).unwrap();
    let i = bytes.len() - 2;
    bytes[i] ^= 0x04;
    fs::write(&f, &bytes).unwrap();
    let mut d = StateDir::open(t.path()).unwrap();
    let l = d.load().unwrap();
    assert_eq!(l.failures.len(), 1);
    assert!(l.failures[0].contains("checksum"), "{}", l.failures[0]);
    assert_eq!(state(&l), (Some(2), units(&[("a", b"a2"), ("b", b"b1")])));
    drop(d);
    let mut d = StateDir::open(t.path()).unwrap();
    let again = d.load().unwrap();
    assert!(again.failures.is_empty(), "said once: {:?}", again.failures);
    assert_eq!(state(&again), state(&l));
    // Not a panic either when nothing at all reads.
    for g in [1, 2, 3] {
        let f = t.path().join(name(g, 0));
        if f.exists() {
            fs::write(&f, b"not a snapshot").unwrap();
        }
    }
    drop(d);
    let l = StateDir::open(t.path()).unwrap().load().unwrap();
    assert!(l.state.is_none());
    assert!(!l.failures.is_empty());
}

#[test]
fn deltas_are_folded_into_a_new_base_and_old_generations_go() {
    let t = tempfile::tempdir().unwrap();
    let mut d = StateDir::open(t.path()).unwrap();
    d.load().unwrap();
    d.write(&pass(true, 1, &[("a", b"a1"), ("b", b"b1")]))
        .unwrap();
    let mut k = 1;
    while !d.compaction_due() {
        k += 1;
        d.write(&pass(false, k, &[("a", format!("a{k}").as_bytes())]))
            .unwrap();
    }
    assert_eq!(k as u32, MAX_DELTAS + 1, "small deltas are folded by count");
    d.compact().unwrap();
    d.compact().unwrap();
    let files = d.files().unwrap();
    assert_eq!(
        files
            .iter()
            .filter(|f| f.1 == 0)
            .map(|f| f.0)
            .collect::<Vec<_>>(),
        vec![2, 3],
        "the previous generation stays as the fallback; the one before it goes"
    );
    drop(d);
    let l = StateDir::open(t.path()).unwrap().load().unwrap();
    assert_eq!(l.files, 1);
    let last = format!("a{k}");
    assert_eq!(
        state(&l),
        (Some(k), units(&[("a", last.as_bytes()), ("b", b"b1")]))
    );
}

#[test]
fn a_dir_in_use_or_unwritable_is_a_clear_error() {
    let t = tempfile::tempdir().unwrap();
    let _held = StateDir::open(t.path()).unwrap();
    let e = StateDir::open(t.path()).unwrap_err();
    assert!(e.contains("in use by another slate"), "{e}");
    let file = t.path().join("plain-file");
    fs::write(&file, b"x").unwrap();
    let e = StateDir::open(&file.join("state")).unwrap_err();
    assert!(
        e.contains("cannot create the state dir") && e.contains("state.dir"),
        "{e}"
    );
}

#[test]
fn a_failed_pass_is_folded_into_the_next() {
    let failed = pass(false, 1, &[("a", b"a1"), ("b", b"b1")]);
    let next = pass(false, 2, &[("a", b"a2")]);
    let f = fold(failed, next);
    assert_eq!(f.head.now, Some(2));
    let mut u: Vec<_> = f
        .units
        .iter()
        .map(|u| (u.name.to_string(), u.bytes.clone()))
        .collect();
    u.sort();
    assert_eq!(u, units(&[("a", b"a2"), ("b", b"b1")]));
}

#[test]
fn a_dir_of_another_snapshot_format_is_an_error_not_a_fallback() {
    let t = tempfile::tempdir().unwrap();
    let mut d = StateDir::open(t.path()).unwrap();
    d.load().unwrap();
    d.write(&pass(true, 1, &[("a", b"a1")])).unwrap();
    drop(d);
    let f = t.path().join(name(1, 0));
    let mut bytes = fs::read(&f).unwrap();
    bytes[8] = 9;
    fs::write(&f, &bytes).unwrap();
    let e = StateDir::open(t.path()).unwrap().load().unwrap_err();
    assert!(
        e.contains("format version 9") && e.contains("empty state dir"),
        "{e}"
    );
}
