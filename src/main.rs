//! The `sitewarden` binary: parse the command line, run the command from the
//! library, map the outcome to an exit code (0 ok, 1 drift, 2 error).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = sitewarden::cli::Cli::parse();
    match sitewarden::cmd::run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            let text = format!("{err:#}").replace(['\n', '\r'], " ");
            eprintln!("sitewarden: {text}");
            ExitCode::from(2)
        }
    }
}
