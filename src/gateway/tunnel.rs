//! An upgraded connection (a WebSocket, say) relayed byte for byte once the upstream answered
//! `101 Switching Protocols`: both ways until either side closes or nothing moves for the idle
//! timeout. What it carried is counted in `/metrics` and reported for the access log.

use super::telemetry::Registry;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// What an upgraded connection carried, reported when it ends.
#[derive(Debug, Clone)]
pub struct Tunneled {
    pub duration: Duration,
    pub from_client: u64,
    pub to_client: u64,
    /// Why it ended, when not by a side closing.
    pub error: Option<String>,
}

/// The report of a tunnel, put in the 101 response's extensions for the request's event
/// (extensions must be `Clone`: the receiver is taken out once).
#[derive(Clone)]
pub struct TunnelReport(Arc<std::sync::Mutex<Option<oneshot::Receiver<Tunneled>>>>);

impl TunnelReport {
    pub fn new(rx: oneshot::Receiver<Tunneled>) -> Self {
        TunnelReport(Arc::new(std::sync::Mutex::new(Some(rx))))
    }

    pub fn take(&self) -> Option<oneshot::Receiver<Tunneled>> {
        self.0.lock().ok()?.take()
    }
}

/// Relays between the client's and the upstream's upgraded connections; reports on `done`.
pub async fn relay(
    client: OnUpgrade,
    upstream: OnUpgrade,
    idle: Duration,
    registry: Arc<Registry>,
    done: oneshot::Sender<Tunneled>,
) {
    let started = Instant::now();
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => {
            let _ = done.send(Tunneled {
                duration: started.elapsed(),
                from_client: 0,
                to_client: 0,
                error: Some(format!("the upgrade failed: {e}")),
            });
            return;
        }
    };
    registry.tunnels.opened.fetch_add(1, Relaxed);
    registry.tunnels.active.fetch_add(1, Relaxed);
    let activity = Arc::new(AtomicU64::new(0));
    let from_client = Arc::new(AtomicU64::new(0));
    let to_client = Arc::new(AtomicU64::new(0));
    let mut client = Counted {
        io: TokioIo::new(client),
        read: from_client.clone(),
        activity: activity.clone(),
        started,
    };
    let mut upstream = Counted {
        io: TokioIo::new(upstream),
        read: to_client.clone(),
        activity: activity.clone(),
        started,
    };
    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    let watch_idle = async {
        loop {
            let last = Duration::from_millis(activity.load(Relaxed));
            let quiet = started.elapsed().saturating_sub(last);
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    };
    let error = tokio::select! {
        r = copy => r.err().map(|e| e.to_string()),
        _ = watch_idle => Some(format!("idle for {idle:?}")),
    };
    let (up, down) = (from_client.load(Relaxed), to_client.load(Relaxed));
    registry.tunnels.active.fetch_sub(1, Relaxed);
    registry.tunnels.from_client.fetch_add(up, Relaxed);
    registry.tunnels.to_client.fetch_add(down, Relaxed);
    registry
        .tunnels
        .millis
        .fetch_add(started.elapsed().as_millis() as u64, Relaxed);
    let _ = done.send(Tunneled {
        duration: started.elapsed(),
        from_client: up,
        to_client: down,
        error,
    });
}

/// Counters of every tunnel, for `/metrics`.
#[derive(Debug, Default)]
pub struct TunnelCounters {
    pub opened: AtomicU64,
    pub active: AtomicU64,
    pub from_client: AtomicU64,
    pub to_client: AtomicU64,
    pub millis: AtomicU64,
}

/// One side of a tunnel: counts what is read from it and when anything last moved.
struct Counted<T> {
    io: T,
    read: Arc<AtomicU64>,
    /// Milliseconds from `started` to the last read or write on either side.
    activity: Arc<AtomicU64>,
    started: Instant,
}

impl<T> Counted<T> {
    fn touch(&self) {
        self.activity
            .store(self.started.elapsed().as_millis() as u64, Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.read.fetch_add(n as u64, Relaxed);
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
