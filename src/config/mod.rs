//! Configuration reading: fail2ban's INI dialect, includes, interpolation,
//! jails, filters and actions, producing fail2ban's command stream
//! (what `fail2ban-client -d` prints).

pub mod cli;
mod glob;
pub mod ini;
mod reader;
pub mod tags;
pub mod value;

pub use reader::{filter_file_stream, filter_stream, jail_stream, load, load_for_test, Loaded};
pub use value::{Command, Value};

use std::fmt;

/// A configuration error, worded like fail2ban's, naming the file (and the
/// section/option where known).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub message: String,
    pub file: Option<String>,
    pub section: Option<String>,
    pub option: Option<String>,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
            file: None,
            section: None,
            option: None,
        }
    }

    pub fn at(message: impl Into<String>, file: &str) -> Self {
        ConfigError {
            file: Some(file.to_string()),
            ..ConfigError::new(message)
        }
    }

    pub fn interp(message: String, section: &str, option: &str) -> Self {
        ConfigError {
            section: Some(section.to_string()),
            option: Some(option.to_string()),
            ..ConfigError::new(message)
        }
    }

    /// Attach a file if none is known yet.
    pub fn or_file(mut self, file: Option<&std::path::Path>) -> Self {
        if self.file.is_none() {
            self.file = file.map(|f| f.display().to_string());
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(file) = &self.file {
            if !self.message.contains(file.as_str()) {
                write!(f, " (in file {file}")?;
                if let (Some(s), Some(o)) = (&self.section, &self.option) {
                    write!(f, ", section [{s}], option '{o}'")?;
                }
                f.write_str(")")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
