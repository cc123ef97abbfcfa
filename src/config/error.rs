//! Errors from reading and validating milter.toml. Messages follow the house style: lowercase,
//! no final period, the dotted key first.

use std::fmt;
use std::path::PathBuf;

/// One problem with one key.
#[derive(Clone, Debug, PartialEq)]
pub struct Issue {
    /// Dotted key, e.g. `policy.reject_at` or `brand[2].domains`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl Issue {
    /// An issue for `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has keys of the wrong type or name.
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// The file parsed, but values are invalid; every issue is listed.
    #[error("{}", render_issues(path, issues))]
    Invalid { path: PathBuf, issues: Vec<Issue> },
}

fn render_issues(path: &std::path::Path, issues: &[Issue]) -> String {
    let mut out = String::new();
    for (i, issue) in issues.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{}: {issue}", path.display()));
    }
    out
}

impl ConfigError {
    /// Every issue as a line of text, in file order where known.
    pub fn lines(&self) -> Vec<String> {
        self.to_string().lines().map(str::to_owned).collect()
    }
}
