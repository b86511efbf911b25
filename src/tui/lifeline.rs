//! Why the console ends besides `:q`: a quit signal (SIGTERM, SIGHUP, SIGINT) or its terminal
//! going away (the pty closed: tmux killed the session, the ssh connection dropped).
//!
//! Both are watched on threads of their own, not on the runtime: crossterm's input reader
//! (0.29, mio source) loops forever inside a read once its tty is gone (every read returns EOF
//! or EIO and it only leaves on `WouldBlock`), and when that happens on the console's thread the
//! current-thread runtime never runs again, so a runtime signal handler would swallow SIGTERM.
//! So: an ending is sent to the event loop, which stops polling the terminal and returns; and
//! if the process is still alive `GRACE` later, the watchdog gives the terminal back (when
//! there is one), runs the cleanup it was given and exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long an ending may take before the process is ended from the watchdog.
pub const GRACE: Duration = Duration::from_secs(3);

/// What ended the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Signal(&'static str),
    TerminalGone,
}

impl Ending {
    /// The exit status of a process ended from the watchdog (the shell's 128 + signal number).
    fn status(self) -> i32 {
        match self {
            Ending::Signal("SIGHUP") | Ending::TerminalGone => 129,
            Ending::Signal("SIGINT") => 130,
            Ending::Signal(_) => 143,
        }
    }
}

/// Cleanup run before a forced exit (the address record, which must not outlive the process).
pub type OnForcedExit = Box<dyn FnOnce() + Send>;

pub struct Lifeline {
    rx: mpsc::UnboundedReceiver<Ending>,
    gone: Arc<AtomicBool>,
}

impl Lifeline {
    /// Starts watching the signals and the terminal on stdin; `on_forced` runs if the process
    /// has to be ended from the watchdog.
    pub fn start(on_forced: OnForcedExit) -> Lifeline {
        let (tx, rx) = mpsc::unbounded_channel();
        let gone = Arc::new(AtomicBool::new(false));
        let watchdog = Watchdog::new(on_forced, gone.clone());
        #[cfg(unix)]
        {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            match signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT]) {
                Ok(mut signals) => {
                    let (tx, watchdog) = (tx.clone(), watchdog.clone());
                    let _ = std::thread::Builder::new()
                        .name("epoxy-signals".into())
                        .spawn(move || {
                            for s in signals.forever() {
                                let name = match s {
                                    SIGTERM => "SIGTERM",
                                    SIGHUP => "SIGHUP",
                                    _ => "SIGINT",
                                };
                                watchdog.arm(Ending::Signal(name));
                                let _ = tx.send(Ending::Signal(name));
                            }
                        });
                }
                Err(e) => tracing::warn!(error = %e, "cannot watch SIGTERM/SIGHUP/SIGINT"),
            }
            let gone2 = gone.clone();
            let _ = std::thread::Builder::new()
                .name("epoxy-tty-watch".into())
                .spawn(move || {
                    if wait_hangup(0) {
                        gone2.store(true, Ordering::SeqCst);
                        watchdog.arm(Ending::TerminalGone);
                        let _ = tx.send(Ending::TerminalGone);
                    }
                });
        }
        #[cfg(not(unix))]
        drop((tx, watchdog));
        Lifeline { rx, gone }
    }

    /// The next ending (waits forever if none comes).
    pub async fn recv(&mut self) -> Ending {
        match self.rx.recv().await {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }

    /// An ending that has arrived, if any (checked before the terminal is polled).
    pub fn try_recv(&mut self) -> Option<Ending> {
        self.rx.try_recv().ok()
    }

    /// Whether the terminal is gone (nothing may be read from it any more).
    pub fn terminal_gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst)
    }
}

/// Ends the process `GRACE` after the first ending, if it is still running then.
#[derive(Clone)]
struct Watchdog {
    armed: Arc<AtomicBool>,
    gone: Arc<AtomicBool>,
    on_forced: Arc<std::sync::Mutex<Option<OnForcedExit>>>,
}

impl Watchdog {
    fn new(on_forced: OnForcedExit, gone: Arc<AtomicBool>) -> Watchdog {
        Watchdog {
            armed: Arc::new(AtomicBool::new(false)),
            gone,
            on_forced: Arc::new(std::sync::Mutex::new(Some(on_forced))),
        }
    }

    fn arm(&self, why: Ending) {
        if self.armed.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        let _ = std::thread::Builder::new()
            .name("epoxy-watchdog".into())
            .spawn(move || {
                std::thread::sleep(GRACE);
                tracing::warn!(?why, "the console did not end in time; exiting");
                if !me.gone.load(Ordering::SeqCst) {
                    super::restore_terminal();
                }
                if let Some(f) = me.on_forced.lock().ok().and_then(|mut f| f.take()) {
                    f();
                }
                std::process::exit(why.status());
            });
    }
}

/// Blocks until `fd` (a terminal) hangs up; false if it cannot be watched.
#[cfg(unix)]
#[allow(unsafe_code)]
fn wait_hangup(fd: i32) -> bool {
    loop {
        // No events asked: poll returns only for POLLHUP, POLLERR or POLLNVAL.
        let mut p = libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd, its count, an infinite timeout.
        let n = unsafe { libc::poll(&mut p, 1, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        if n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return true;
        }
    }
}
