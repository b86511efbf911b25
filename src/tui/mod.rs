//! The terminal console: one async event loop over the terminal's events, the store's listing,
//! the control loop's reports, discovery and the gateway's request events. Components follow
//! ratatui's template: keys become `Action`s, `App::update` changes state, `App::draw` renders.
//! The state needs no terminal: tests drive `App` through `harness::Harness`.

pub mod action;
pub mod app;
pub mod commands;
pub mod data;
pub mod feeds;
pub mod frame;
pub mod harness;
pub mod host;
pub mod keymap;
pub mod lifeline;
pub mod logfile;
pub mod nav;
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
use lifeline::{Ending, Lifeline};
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

/// Runs the console on the terminal until it quits, a quit signal arrives or the terminal goes
/// away (see `lifeline`); the terminal is restored on every exit path, panics included.
pub async fn run(mut app: App, mut feeds: Feeds, mut lifeline: Lifeline) -> anyhow::Result<()> {
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
        let result = event_loop(&mut app, &mut feeds, &mut lifeline, &mut term).await;
        // Not dropped: its drop shows the cursor (`restore_terminal` does) and reports a failure
        // with `eprintln!`, which panics when stderr is a terminal that went away.
        std::mem::forget(term);
        result
    }
    .await;
    if !lifeline.terminal_gone() {
        restore_terminal();
    }
    let _ = std::panic::take_hook();
    result
}

async fn event_loop(
    app: &mut App,
    feeds: &mut Feeds,
    lifeline: &mut Lifeline,
    term: &mut Terminal<CrosstermBackend<std::io::Stdout>>,
) -> anyhow::Result<()> {
    let mut events = EventStream::new();
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
        // An ending is looked at before the terminal is read: a gone terminal must not be
        // polled again (see `lifeline`).
        if let Some(why) = lifeline.try_recv() {
            return ended(why);
        }
        let msg = tokio::select! {
            biased;
            why = lifeline.recv() => return ended(why),
            ev = events.next() => match ev {
                Some(Ok(e)) => Msg::Term(e),
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            m = feeds.next() => m,
            _ = tick.tick(), if animating => Msg::Tick,
        };
        app.update(msg);
        inputs += 1;
        // Whatever else is ready goes into the same frame: a burst of keys (typing fast, a
        // paste without bracketing, a held key) is handled whole before the next draw, not one
        // key per frame.
        for _ in 0..BURST {
            if lifeline.terminal_gone() {
                break;
            }
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

/// The loop's result when `why` ends it: a signal is a normal quit; a gone terminal is not.
fn ended(why: Ending) -> anyhow::Result<()> {
    tracing::info!(?why, "the console ends");
    match why {
        Ending::Signal(_) => Ok(()),
        Ending::TerminalGone => Err(anyhow::anyhow!("the terminal went away")),
    }
}
