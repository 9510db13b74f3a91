//! The `sitewarden` binary: parse the command line, set up logging, run the
//! command from the library, map the outcome to an exit code (0 ok, 1 drift,
//! 2 error).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = parse();
    init_logging();
    raise_fd_limit();
    match sitewarden::cmd::run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            let text = format!("{err:#}").replace(['\n', '\r'], " ");
            eprintln!("sitewarden: {text}");
            ExitCode::from(2)
        }
    }
}

/// Parses the command line; a usage error is one line and exit code 2
/// (help and version print as usual).
fn parse() -> sitewarden::cli::Cli {
    use clap::error::ErrorKind;
    match sitewarden::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            eprintln!("sitewarden: {first} (see sitewarden --help)");
            std::process::exit(2);
        }
    }
}

/// The walker keeps a directory descriptor per level and the daemon one
/// inotify instance per site: take the whole hard limit.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Logs go to stderr (the journal under systemd, with `<N>` priorities).
fn init_logging() {
    sitewarden::util::logging::init();
}
