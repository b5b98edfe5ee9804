//! `lattice`: the command line of a Lattice node.
//!
//! Humans read stderr, programs read stdout; exit 0 on success, 1 on error
//! (2 for a command line clap refuses), 130 when interrupted.

#[macro_use]
mod out;
mod app;
mod backend;
mod bench_irc;
mod chat;
mod commands;
mod plugin_cmd;
mod shell;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    shell::complete_if_asked();
    let args: Vec<String> = std::env::args().collect();
    let global = commands::prescan_globals(&args);
    init_tracing(global.verbose);
    let result = run(args);
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line: the error and its causes, no backtrace.
            let mut msg = format!("error: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            eprintln!("{msg}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn run(args: Vec<String>) -> anyhow::Result<ExitCode> {
    let matches = match app::Cli::command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return commands::clap_exit(e, &args),
    };
    let cli = app::Cli::from_arg_matches(&matches).map_err(|e| anyhow::anyhow!(e.to_string()))?;
    commands::dispatch(cli)
}
