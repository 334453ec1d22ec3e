//! User-written configuration, in two stages: a YAML tree that keeps line
//! numbers (`yaml`) → `validate`, which collects every error with its file,
//! line, key and closest valid key, and returns types that cannot hold bad
//! values. `slate check` runs only this stage.
//!
//! May import `model` only.

pub mod alerting;
pub mod config;
pub mod correction;
pub mod gate;
pub mod slo;
pub mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};

pub use config::Config;
pub use slo::{ServiceSpec, Slo, SloKind, SloSpec};

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub file: PathBuf,
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: ", self.file.display(), self.line)?;
        } else {
            write!(f, "{}: ", self.file.display())?;
        }
        if !self.key.is_empty() {
            write!(f, "`{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Every error found in one file, reported together.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Collects errors while a file is validated.
pub(crate) struct Errors<'a> {
    file: &'a Path,
    pub list: Vec<SpecError>,
}

impl<'a> Errors<'a> {
    pub fn new(file: &'a Path) -> Self {
        Errors {
            file,
            list: Vec::new(),
        }
    }
    pub fn add(&mut self, line: usize, key: &str, message: impl Into<String>) {
        self.list.push(SpecError {
            file: self.file.to_path_buf(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }
    pub fn file(&self) -> &Path {
        self.file
    }
    /// An unknown key, with the closest valid one as a hint.
    pub fn unknown_key(&mut self, line: usize, key: &str, valid: &[&str], what: &str) {
        let hint = match yaml::closest(key, valid.iter().copied()) {
            Some(c) => format!("; did you mean `{c}`?"),
            None => format!("; valid keys: {}", valid.join(", ")),
        };
        self.add(line, key, format!("unknown {what} key{hint}"));
    }
    pub fn finish<T>(self, value: T) -> Result<T, SpecErrors> {
        if self.list.is_empty() {
            Ok(value)
        } else {
            Err(SpecErrors(self.list))
        }
    }
}

/// Reads a file for validation, turning a missing file into a `SpecError`.
pub(crate) fn read_file(path: &Path) -> Result<String, SpecErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        SpecErrors(vec![SpecError {
            file: path.to_path_buf(),
            line: 0,
            key: String::new(),
            message: format!("cannot read: {e}"),
        }])
    })
}

/// Parses YAML text, turning a syntax error into a `SpecError` with its line.
pub(crate) fn parse_yaml(path: &Path, text: &str) -> Result<yaml::Located, SpecErrors> {
    yaml::parse(text).map_err(|msg| {
        let line = msg
            .strip_prefix("line ")
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        SpecErrors(vec![SpecError {
            file: path.to_path_buf(),
            line,
            key: String::new(),
            message: format!("not valid YAML: {msg}"),
        }])
    })
}

/// Parses an objective written as `"99.9%"` or `0.999`.
pub(crate) fn parse_ratio(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let value = if let Some(p) = t.strip_suffix('%') {
        p.trim()
            .parse::<f64>()
            .map_err(|_| format!("`{t}` is not a percentage: write e.g. \"99.9%\" or 0.999"))?
            / 100.0
    } else {
        t.parse::<f64>()
            .map_err(|_| format!("`{t}` is not a ratio: write e.g. \"99.9%\" or 0.999"))?
    };
    if !value.is_finite() {
        return Err(format!("`{t}` is not a finite number"));
    }
    Ok(value)
}
