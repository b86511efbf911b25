//! The terminal console: one async event loop over the terminal's events, the store's listing,
//! the control loop's reports, discovery and the gateway's request events. Components follow
//! ratatui's template: keys become `Action`s, `App::update` changes state, `App::draw` renders.
//! The state needs no terminal: tests drive `App` through `harness::Harness`.

pub mod action;
pub mod app;
pub mod data;
pub mod feeds;
pub mod harness;
pub mod host;
pub mod keymap;
pub mod logfile;
pub mod target;
pub mod theme;
pub mod views;
pub mod widgets;

use app::{App, Msg};
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    EventStream,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use feeds::Feeds;
use futures_util::{FutureExt, StreamExt};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::Write;
use std::time::Duration;

/// How often the loop ticks while something animates (rates, fading messages). Idle: never.
pub const TICK: Duration = Duration::from_millis(500);
/// The most inputs of one kind handled between two frames (a bound, so that a flood still draws).
const BURST: usize = 4096;

/// Why the console cannot run on a terminal of type `term` (`$TERM`), if it cannot: a `dumb`
/// terminal (Emacs' shell, some CI logs) has no cursor addressing or alternate screen, and the
/// frame would be a stream of escape codes.
pub fn unusable_term(term: Option<&str>) -> Option<String> {
    match term {
        Some("dumb") => Some(
            "the console needs a terminal with cursor addressing, and TERM=dumb has none; \
             run it in a terminal emulator (or tmux), or use `epoxy demo --headless` and the CLI"
                .into(),
        ),
        _ => None,
    }
}

/// Gives the terminal back: raw mode off, main screen, mouse released, cursor shown.
pub fn restore_terminal() {
    let _ = disable_raw_mode();
    let mut out = std::io::stdout();
    let _ = execute!(
        out,
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = out.flush();
}

/// Runs the console on the terminal until it quits; the terminal is restored on every exit
/// path, panics included.
pub async fn run(mut app: App, mut feeds: Feeds) -> anyhow::Result<()> {
    enable_raw_mode()?;
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        prev(info);
    }));
    let result = async {
        execute!(
            std::io::stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste
        )?;
        let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
        term.clear()?;
        event_loop(&mut app, &mut feeds, &mut term).await
    }
    .await;
    restore_terminal();
    let _ = std::panic::take_hook();
    result
}

/// SIGTERM, SIGHUP and SIGINT: each ends the console as `:q` does, so that the terminal is
/// given back (a killed console would leave it in the alternate screen, reporting the mouse).
struct QuitSignals {
    #[cfg(unix)]
    signals: Vec<(&'static str, tokio::signal::unix::Signal)>,
}

impl QuitSignals {
    fn new() -> QuitSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = [
                ("SIGTERM", SignalKind::terminate()),
                ("SIGHUP", SignalKind::hangup()),
                ("SIGINT", SignalKind::interrupt()),
            ]
            .into_iter()
            .filter_map(|(n, k)| signal(k).ok().map(|s| (n, s)))
            .collect();
            QuitSignals { signals }
        }
        #[cfg(not(unix))]
        QuitSignals {}
    }

    /// The name of the next signal that arrives.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            if self.signals.is_empty() {
                return std::future::pending().await;
            }
            let waits = self.signals.iter_mut().map(|(n, s)| {
                Box::pin(async move {
                    s.recv().await;
                    *n
                })
            });
            futures_util::future::select_all(waits).await.0
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "ctrl-c"
        }
    }
}

async fn event_loop(
    app: &mut App,
    feeds: &mut Feeds,
    term: &mut Terminal<CrosstermBackend<std::io::Stdout>>,
) -> anyhow::Result<()> {
    let mut events = EventStream::new();
    let mut signals = QuitSignals::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for m in feeds.initial() {
        app.update(m);
    }
    // Inputs handled since the last frame (traced with each frame: a burst is one frame).
    let mut inputs = 0usize;
    loop {
        if app.dirty {
            term.draw(|f| app.draw(f))?;
            app.dirty = false;
            tracing::trace!(inputs, "frame");
            inputs = 0;
            if let Some(seq) = app.osc52.take() {
                let mut out = std::io::stdout();
                let _ = out.write_all(seq.as_bytes());
                let _ = out.flush();
            }
        }
        if app.quit {
            return Ok(());
        }
        let animating = app.animating();
        let msg = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(e)) => Msg::Term(e),
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            m = feeds.next() => m,
            _ = tick.tick(), if animating => Msg::Tick,
            name = signals.recv() => {
                tracing::info!(signal = name, "quitting on a signal");
                return Ok(());
            }
        };
        app.update(msg);
        inputs += 1;
        // Whatever else is ready goes into the same frame: a burst of keys (typing fast, a
        // paste without bracketing, a held key) is handled whole before the next draw, not one
        // key per frame.
        for _ in 0..BURST {
            match events.next().now_or_never() {
                Some(Some(Ok(e))) => {
                    app.update(Msg::Term(e));
                    inputs += 1;
                }
                Some(Some(Err(e))) => return Err(e.into()),
                Some(None) => return Ok(()),
                None => break,
            }
            if app.quit {
                break;
            }
        }
        for _ in 0..BURST {
            match feeds.try_next() {
                Some(m) => app.update(m),
                None => break,
            }
        }
    }
}
