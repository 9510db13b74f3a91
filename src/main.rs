//! The `sitewarden` binary: parse the command line, set up logging, run the
//! command from the library, map the outcome to an exit code (0 ok, 1 drift,
//! 2 error).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = sitewarden::cli::Cli::parse();
    init_logging();
    match sitewarden::cmd::run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            let text = format!("{err:#}").replace(['\n', '\r'], " ");
            eprintln!("sitewarden: {text}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr (the journal, under systemd, which adds its own
/// timestamps). `SITEWARDEN_LOG` takes a filter such as `debug`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SITEWARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().init();
    } else {
        builder.init();
    }
}
