//! `lattice`: the command line of a Lattice node.
//!
//! Results go to stdout, hints and errors to stderr; `--json` makes both
//! machine-readable. Exit codes: see `fail`.

#[macro_use]
mod out;
#[macro_use]
mod fail;
mod app;
mod backend;
mod bench;
mod chat;
mod commands;
mod config;
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
        Err(e) => fail::report(&e, global.json),
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
    // Colour only for a person at a terminal: a log file or a journal
    // gets plain text. NO_COLOR (no-color.org) turns it off anywhere.
    use std::io::IsTerminal as _;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
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
