//! Where `tracing` writes: standard error, except while the console owns the terminal, when the
//! lines go to a file (next to the store) instead of over the screen.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

static FILE: Mutex<Option<File>> = Mutex::new(None);

/// Sends log lines to `path` (appending) until `to_stderr`.
pub fn to_file(path: &Path) -> io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    *FILE.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    Ok(())
}

pub fn to_stderr() {
    *FILE.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// A writer for `tracing_subscriber::fmt().with_writer(epoxy::tui::logfile::writer)`.
pub fn writer() -> LogWriter {
    LogWriter
}

pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut g = FILE.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_mut() {
            Some(f) => f.write(buf),
            // A line for a gone stderr (a console whose terminal closed) is dropped: an error
            // here would be reported with `eprintln!`, which panics.
            None => Ok(io::stderr().write(buf).unwrap_or(buf.len())),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut g = FILE.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_mut() {
            Some(f) => f.flush(),
            None => {
                let _ = io::stderr().flush();
                Ok(())
            }
        }
    }
}
