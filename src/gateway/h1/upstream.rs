//! The fast path's connections to upstreams: plain TCP streams with their read buffers, kept
//! per worker (one worker's connections are used by that worker only) by `host:port`.
//!
//! There is no task per connection watching it while idle, so a connection is checked when it
//! is taken: the runtime has already seen an upstream's FIN as readiness, and `try_read` on a
//! live idle connection returns `WouldBlock` without a system call.

use super::super::dial::CONNECT_TIMEOUT;
use super::super::pool::MAX_IDLE_PER_HOST;
use bytes::BytesMut;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpStream;

/// Bytes read from an upstream at a time.
pub const READ_SIZE: usize = 16 * 1024;

/// A connection to an upstream and what has been read from it and not used yet.
pub struct UpConn {
    pub stream: TcpStream,
    pub buf: BytesMut,
    /// Where the headers of the last response head lie in `buf` (kept with the connection so
    /// that parsing a head allocates nothing).
    pub headers: Vec<HeaderAt>,
}

/// Where a header's name and value lie in a response head (byte ranges).
#[derive(Debug, Clone, Copy)]
pub struct HeaderAt {
    pub name: (u32, u32),
    pub value: (u32, u32),
}

impl UpConn {
    /// Whether an idle connection is still open with nothing unexpected to read.
    fn idle_and_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// Keyed by the configured `host:port` (not by anything a client sends): a fast hash will do.
type Idle = HashMap<Arc<str>, Vec<(UpConn, Instant)>, foldhash::fast::RandomState>;

/// One worker's idle upstream connections.
pub struct UpstreamConns {
    idle: Mutex<Idle>,
    /// Connections opened, for the metrics (shared by every worker).
    opened: Arc<AtomicU64>,
}

impl UpstreamConns {
    /// A pool counting its new connections in `opened`, and (on a tokio runtime) a task that
    /// closes connections idle longer than `super::super::pool::IDLE_TIMEOUT`.
    pub fn counting(opened: Arc<AtomicU64>) -> Arc<UpstreamConns> {
        let conns = Arc::new(UpstreamConns {
            idle: Mutex::default(),
            opened,
        });
        super::super::pool::close_idle_regularly(&conns, UpstreamConns::close_idle_since);
        conns
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes connections idle since before `cutoff` and those the upstream closed.
    pub fn close_idle_since(&self, cutoff: Instant) {
        self.lock().retain(|_, list| {
            list.retain(|(c, since)| *since >= cutoff && c.idle_and_open());
            !list.is_empty()
        });
    }

    /// Idle connections, all hosts together.
    pub fn idle_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// An idle connection to `host` that is still open, most recently used first.
    pub fn take(&self, host: &str) -> Option<UpConn> {
        let mut idle = self.lock();
        let list = idle.get_mut(host)?;
        while let Some((c, _)) = list.pop() {
            if c.idle_and_open() {
                return Some(c);
            }
        }
        None
    }

    /// Keeps a connection whose last response was read to its end; `now` need not be exact
    /// (the time the request came will do): it only ages the connection for the idle reaper.
    pub fn put(&self, host: &Arc<str>, mut conn: UpConn, now: Instant) {
        conn.buf.clear();
        let mut idle = self.lock();
        match idle.get_mut(&**host) {
            Some(list) if list.len() < MAX_IDLE_PER_HOST => list.push((conn, now)),
            Some(_) => {}
            None => {
                idle.insert(host.clone(), vec![(conn, now)]);
            }
        }
    }

    /// A new connection to `host`.
    pub async fn connect(&self, host: &str) -> io::Result<UpConn> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(host)).await {
            Ok(s) => s?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no connection within {CONNECT_TIMEOUT:?}"),
                ));
            }
        };
        let _ = stream.set_nodelay(true);
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(UpConn {
            stream,
            buf: BytesMut::with_capacity(READ_SIZE),
            headers: Vec::with_capacity(16),
        })
    }
}
