use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Usage errors exit 2 (clap's own code); refused requests exit 1 with the reason.
    let cli = epoxy::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EPOXY_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(epoxy::tui::logfile::writer)
        .init();
    match epoxy::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not `eprintln!`: it panics when stderr is gone (a console whose terminal closed).
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::from(1)
        }
    }
}
