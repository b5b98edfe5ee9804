//! `lattice config show|path`: the settings a command would run with and
//! where each came from, so "why is it listening there?" has an answer
//! (as `git config --show-origin` does). Passwords are never printed.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::{Value, json};

use crate::app::{ConfigCmd, DaemonArgs, Global};
use crate::config::{self, DaemonSettings, Setting, Source};

pub fn run(cmd: ConfigCmd, g: &Global) -> Result<ExitCode> {
    let path = config::path();
    if let ConfigCmd::Path = cmd {
        if g.json {
            outln!("{}", json!({ "config_file": path.display().to_string() }));
        } else {
            outln!("{}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let c = config::get()?;
    let (dir, dir_source) = config::data_dir(g.data_dir.as_deref())?;
    // What a bare `lattice daemon` would use: no daemon flags on this line.
    let d = DaemonSettings::resolve(&DaemonArgs::default())?;
    let addr = |a: &Option<std::net::SocketAddr>| a.map(|a| a.to_string());
    let rows: Vec<(&str, Option<String>, Source, &str)> = vec![
        ("data_dir", Some(dir.display().to_string()), dir_source, ""),
        (
            "daemon.listen",
            addr(&d.listen.value),
            d.listen.source,
            "last used, else 127.0.0.1 on any port",
        ),
        row_of(&d.sync_interval, "daemon.sync_interval"),
        ("web.listen", addr(&d.http.value), d.http.source, "off"),
        ("irc.listen", addr(&d.irc.value), d.irc.source, "off"),
        row_of(&d.irc_server_name, "irc.server_name"),
        row_of(&d.irc_info, "irc.info"),
        (
            "irc.motd",
            d.irc_motd.value.as_ref().map(|p| p.display().to_string()),
            d.irc_motd.source,
            "none",
        ),
        (
            "irc.opers",
            Some(
                d.irc_opers
                    .value
                    .iter()
                    .map(|o| o.split(':').next().unwrap_or_default().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .filter(|s| !s.is_empty()),
            d.irc_opers.source,
            "none",
        ),
        (
            "irc.password",
            d.irc_password.value.as_ref().map(|_| "(set)".to_string()),
            d.irc_password.source,
            "none",
        ),
        row_of(&d.irc_history, "irc.history"),
        row_of(&d.irc_max_clients, "irc.max_clients"),
    ];
    if g.json {
        let settings: serde_json::Map<String, Value> = rows
            .iter()
            .map(|(k, v, s, _)| {
                (
                    k.to_string(),
                    json!({ "value": v, "source": s.to_string() }),
                )
            })
            .collect();
        outln!(
            "{}",
            json!({
                "config_file": c.path.display().to_string(),
                "found": c.found,
                "settings": settings,
            })
        );
    } else {
        outln!(
            "{:<22} {}{}",
            "config file",
            c.path.display(),
            if c.found { "" } else { " (not found)" }
        );
        for (k, v, s, none) in &rows {
            let v = v.clone().unwrap_or_else(|| format!("({none})"));
            outln!("{k:<22} {v:<40} {s}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn row_of<'a, T: std::fmt::Display>(
    s: &Setting<T>,
    key: &'a str,
) -> (&'a str, Option<String>, Source, &'static str) {
    (key, Some(s.value.to_string()), s.source, "")
}
