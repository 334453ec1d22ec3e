//! The state dir (DESIGN §8a): where `slate run` keeps its state between
//! runs, as snapshot files of [`apply::snapshot`](crate::apply::snapshot).
//!
//! ```text
//! DIR/lock                     held (flock) while a slate uses DIR
//! DIR/0000000007-000000.state  generation 7's base: every service
//! DIR/0000000007-000001.state  its first delta: the services changed since
//! DIR/0000000007-000002.state  …
//! ```
//!
//! Each file is written to a temporary name, fsynced, renamed, and the
//! directory fsynced: a file with a final name is whole. A restore reads
//! the newest generation's base and its deltas in order; a base that does
//! not read falls back to the generation before it, a delta that does not
//! read ends the chain there (the state as of the file before it, with the
//! offsets it reflects: the records after them are read again). Either is
//! said and counted, and a new generation is started at once, so that no
//! later file is ever read on top of a gap.
//!
//! When a generation's deltas add up to its base (or there are
//! [`MAX_DELTAS`] of them), the writer folds them into a new base, from the
//! files themselves (not from the engine), and the generation before the
//! previous one is removed: the previous one stays as the fallback.
//!
//! May import `apply` (the snapshot format) and `model`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use crate::apply::snapshot::{Head, PassFile, SnapshotError, Unit};

/// Deltas in a generation before they are folded into a new base (two
/// hours of passes at the default 30 s).
pub const MAX_DELTAS: u32 = 240;

/// A state dir, locked for this process.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    /// Held for the life of the process: two slates on one dir would
    /// write over each other.
    _lock: File,
    /// The generation being written, and its last file (0: the base;
    /// `None`: nothing written in it yet).
    gen: u64,
    seq: Option<u32>,
    base_bytes: u64,
    delta_bytes: u64,
}

/// A head and the latest unit of each of its services.
pub type Saved = (Head, FxHashMap<Box<str>, Vec<u8>>);

/// What a restore found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The head of the newest file read, and each service's latest unit.
    pub state: Option<Saved>,
    /// Files read.
    pub files: usize,
    /// Files that did not read, each with why (already said on stderr).
    pub failures: Vec<String>,
}

fn name(gen: u64, seq: u32) -> String {
    format!("{gen:010}-{seq:06}.state")
}

fn parse_name(n: &str) -> Option<(u64, u32)> {
    let stem = n.strip_suffix(".state")?;
    let (g, s) = stem.split_once('-')?;
    if g.len() != 10 || s.len() != 6 {
        return None;
    }
    Some((g.parse().ok()?, s.parse().ok()?))
}

impl StateDir {
    /// Opens (creating it if need be) and locks `dir`, and checks that a
    /// file can be written in it: an error here says what to fix before
    /// anything is read from Kafka.
    pub fn open(dir: &Path) -> Result<StateDir, String> {
        let shown = dir.display();
        fs::create_dir_all(dir).map_err(|e| {
            format!("cannot create the state dir {shown}: {e} (set --state-dir or state.dir to a writable directory)")
        })?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join("lock"))
            .map_err(|e| {
                format!("cannot write in the state dir {shown}: {e} (set --state-dir or state.dir to a writable directory)")
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "the state dir {shown} is in use by another slate: give each instance a state dir of its own"
                ))
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock the state dir {shown}: {e}"))
            }
        }
        let probe = dir.join(".probe");
        fs::write(&probe, b"slate")
            .and_then(|()| fs::remove_file(&probe))
            .map_err(|e| {
                format!("cannot write in the state dir {shown}: {e} (set --state-dir or state.dir to a writable directory)")
            })?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
            _lock: lock,
            gen: 0,
            seq: None,
            base_bytes: 0,
            delta_bytes: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The snapshot files in the dir, by (generation, sequence).
    fn files(&self) -> io::Result<Vec<(u64, u32)>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)? {
            let e = e?;
            if let Some(k) = e.file_name().to_str().and_then(parse_name) {
                out.push(k);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Reads the newest state that reads whole (see the module's doc). A
    /// dir that cannot be listed is an error; a file that does not read is
    /// a fallback, said on stderr and listed in `failures`.
    pub fn load(&mut self) -> Result<Loaded, String> {
        let files = self
            .files()
            .map_err(|e| format!("cannot read the state dir {}: {e}", self.dir.display()))?;
        self.foreign(&files)?;
        let mut gens: Vec<u64> = files.iter().map(|f| f.0).collect();
        gens.dedup();
        let mut loaded = Loaded::default();
        let newest = gens.last().copied().unwrap_or(0);
        let dir = self.dir.clone();
        // A file that failed is moved aside (kept to look at, never read
        // again), so that it is said and counted once.
        let fail = |loaded: &mut Loaded, file: &str, why: String, then: &str| {
            let path = dir.join(file);
            let msg = format!("{}: {why}", path.display());
            let aside = dir.join(format!("{file}.bad"));
            let moved = match fs::rename(&path, &aside) {
                Ok(()) => format!(" (moved aside as {})", aside.display()),
                Err(_) => String::new(),
            };
            tracing::warn!(target: "state", "{msg}; {then}{moved}");
            loaded.failures.push(msg);
        };
        for &gen in gens.iter().rev() {
            let base = name(gen, 0);
            let head_and_units = match self.read(&base) {
                Ok(f) if f.base => f,
                Ok(_) => {
                    fail(
                        &mut loaded,
                        &base,
                        "a delta where a base belongs".into(),
                        "falling back to the state before it",
                    );
                    self.drop_deltas(&files, gen);
                    continue;
                }
                Err(e) => {
                    fail(&mut loaded, &base, e, "falling back to the state before it");
                    self.drop_deltas(&files, gen);
                    continue;
                }
            };
            loaded.files = 1;
            let mut head = head_and_units.head;
            let mut units: FxHashMap<Box<str>, Vec<u8>> = FxHashMap::default();
            for u in head_and_units.units {
                units.insert(u.name, u.bytes);
            }
            let deltas: Vec<u32> = files
                .iter()
                .filter(|f| f.0 == gen && f.1 > 0)
                .map(|f| f.1)
                .collect();
            let mut cut = false;
            let mut read_deltas = 0;
            for (k, &seq) in deltas.iter().enumerate() {
                read_deltas = k;
                let file = name(gen, seq);
                if seq as usize != k + 1 {
                    fail(
                        &mut loaded,
                        &file,
                        format!("follows a missing delta {}", name(gen, k as u32 + 1)),
                        "the state is the one before the gap",
                    );
                    cut = true;
                    break;
                }
                match self.read(&file) {
                    Ok(f) if !f.base => {
                        head = f.head;
                        for u in f.units {
                            units.insert(u.name, u.bytes);
                        }
                        loaded.files += 1;
                    }
                    Ok(_) => {
                        fail(
                            &mut loaded,
                            &file,
                            "a base where a delta belongs".into(),
                            "the state is the one before it",
                        );
                        cut = true;
                        break;
                    }
                    Err(e) => {
                        fail(
                            &mut loaded,
                            &file,
                            e,
                            "the state is the one before it (its records are read again)",
                        );
                        cut = true;
                        break;
                    }
                }
            }
            if cut {
                // What follows a file that failed cannot be read on top of
                // the state before it.
                for &seq in &deltas[read_deltas + 1..] {
                    let _ = fs::remove_file(self.dir.join(name(gen, seq)));
                }
            }
            loaded.state = Some((head, units));
            if cut || gen != newest {
                // Start a new generation from what was read, so that the
                // next deltas never land on top of a file that failed.
                self.gen = newest + 1;
                self.seq = None;
                if let Some((head, units)) = &loaded.state {
                    let base = PassFile {
                        base: true,
                        head: head.clone(),
                        units: units
                            .iter()
                            .map(|(n, b)| Unit {
                                name: n.clone(),
                                bytes: b.clone(),
                            })
                            .collect(),
                    };
                    if let Err(e) = self.write(&base) {
                        tracing::warn!(target: "state", "writing a new base after the fallback: {e}; the next pass tries again");
                    }
                }
            } else {
                self.gen = gen;
                self.seq = Some(deltas.len() as u32);
                self.base_bytes = self.size(&base);
                self.delta_bytes = deltas.iter().map(|&s| self.size(&name(gen, s))).sum();
            }
            return Ok(loaded);
        }
        self.gen = newest + 1;
        Ok(loaded)
    }

    /// Removes a generation's deltas (its base did not read: they cannot
    /// be read without it).
    fn drop_deltas(&self, files: &[(u64, u32)], gen: u64) {
        for &(g, s) in files {
            if g == gen && s > 0 {
                let _ = fs::remove_file(self.dir.join(name(g, s)));
            }
        }
    }

    fn size(&self, file: &str) -> u64 {
        fs::metadata(self.dir.join(file)).map_or(0, |m| m.len())
    }

    fn read(&self, file: &str) -> Result<PassFile, String> {
        let bytes = fs::read(self.dir.join(file)).map_err(|e| e.to_string())?;
        PassFile::from_bytes(&bytes).map_err(|e| e.to_string())
    }

    /// A file written by a slate of another snapshot format is not a
    /// fallback: it is the whole state of someone's slate, and this one
    /// cannot read it.
    fn foreign(&self, files: &[(u64, u32)]) -> Result<(), String> {
        for &(g, s) in files {
            let file = name(g, s);
            let Ok(bytes) = fs::read(self.dir.join(&file)) else {
                continue;
            };
            if let Err(e @ SnapshotError::Version { .. }) = PassFile::from_bytes(&bytes) {
                return Err(format!("{}: {e}", self.dir.join(&file).display()));
            }
        }
        Ok(())
    }

    /// Whether the next pass must be a base (nothing is written in this
    /// generation yet).
    pub fn wants_base(&self) -> bool {
        self.seq.is_none()
    }

    /// Writes one pass: a base starts a new generation, a delta follows
    /// the last file. Returns the bytes written. On an error nothing is
    /// renamed into place: the caller keeps the pass and writes it again
    /// with the next one.
    pub fn write(&mut self, pass: &PassFile) -> io::Result<u64> {
        let (gen, seq) = match (pass.base, self.seq) {
            (true, None) => (self.gen, 0),
            (true, Some(_)) => (self.gen + 1, 0),
            (false, Some(s)) => (self.gen, s + 1),
            (false, None) => {
                return Err(io::Error::other(
                    "a delta with no base before it in this generation",
                ))
            }
        };
        let bytes = self.put(&name(gen, seq), |w| pass.write_to(w))?;
        if seq == 0 {
            self.gen = gen;
            self.base_bytes = bytes;
            self.delta_bytes = 0;
            self.prune();
        } else {
            self.delta_bytes += bytes;
        }
        self.seq = Some(seq);
        Ok(bytes)
    }

    /// Temporary file (written by `fill`), fsync, rename, fsync the
    /// directory. Returns the bytes `fill` wrote.
    fn put(
        &self,
        file: &str,
        fill: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<u64>,
    ) -> io::Result<u64> {
        let tmp = self.dir.join(format!(".tmp-{file}"));
        let written = (|| {
            let mut w = io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
            let n = fill(&mut w)?;
            let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
            f.sync_all()?;
            Ok(n)
        })();
        let n = match written {
            Ok(n) => n,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        fs::rename(&tmp, self.dir.join(file))?;
        File::open(&self.dir)?.sync_all()?;
        Ok(n)
    }

    /// Whether the deltas are due to be folded into a new base.
    pub fn compaction_due(&self) -> bool {
        self.seq.is_some_and(|s| {
            s >= MAX_DELTAS || (s > 0 && self.delta_bytes >= self.base_bytes.max(1 << 20))
        })
    }

    /// Folds the generation's base and deltas into a new generation's
    /// base, read back from the files. Returns its size.
    pub fn compact(&mut self) -> io::Result<u64> {
        let Some(last) = self.seq else {
            return Ok(0);
        };
        let base = self.read(&name(self.gen, 0)).map_err(io::Error::other)?;
        let mut head = base.head;
        let mut order: Vec<Box<str>> = Vec::with_capacity(base.units.len());
        let mut units: FxHashMap<Box<str>, Vec<u8>> = FxHashMap::default();
        for u in base.units {
            order.push(u.name.clone());
            units.insert(u.name, u.bytes);
        }
        for seq in 1..=last {
            let f = self.read(&name(self.gen, seq)).map_err(io::Error::other)?;
            head = f.head;
            for u in f.units {
                if units.insert(u.name.clone(), u.bytes).is_none() {
                    order.push(u.name);
                }
            }
        }
        let folded = PassFile {
            base: true,
            head,
            units: order
                .into_iter()
                .filter_map(|n| units.remove(&n).map(|bytes| Unit { name: n, bytes }))
                .collect(),
        };
        self.write(&folded)
    }

    /// Removes the generations before the previous one, and temporary
    /// files left by a crash.
    fn prune(&self) {
        let Ok(files) = self.files() else { return };
        for (gen, seq) in files {
            if gen + 1 < self.gen {
                let _ = fs::remove_file(self.dir.join(name(gen, seq)));
            }
        }
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let n = e.file_name();
                let n = n.to_string_lossy();
                if n.starts_with(".tmp-") {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// Total bytes of the snapshot files on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.files()
            .map(|fs| fs.iter().map(|&(g, s)| self.size(&name(g, s))).sum())
            .unwrap_or(0)
    }
}

/// A pass that could not be written, folded into the next one: the next
/// pass's units win, the rest of the failed one's are kept, so that a
/// failed write loses nothing.
pub fn fold(failed: PassFile, next: PassFile) -> PassFile {
    let mut units = next.units;
    let have: rustc_hash::FxHashSet<Box<str>> = units.iter().map(|u| u.name.clone()).collect();
    units.extend(failed.units.into_iter().filter(|u| !have.contains(&u.name)));
    PassFile {
        base: failed.base || next.base,
        head: next.head,
        units,
    }
}

#[cfg(test)]
mod tests;
