//! The config file: defaults for what would otherwise be typed on every
//! command line. Precedence, highest first: a flag, its environment
//! variable, the file, the built-in default (as git and tailscale do), so a
//! file can never override what a user typed.
//!
//! The file is `$LATTICE_CONFIG`, else `$XDG_CONFIG_HOME/lattice/config.toml`,
//! else `~/.config/lattice/config.toml`; it need not exist. Unknown keys are
//! errors: a misspelt `sync_intervall` must not be silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::fail::{ErrorKind, Failure};

/// What the file may say. Field names are the file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// The node's data directory (`--data-dir`, `LATTICE_HOME`).
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub daemon: DaemonFile,
    #[serde(default)]
    pub irc: IrcFile,
    #[serde(default)]
    pub web: WebFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebFile {
    pub listen: Option<SocketAddr>,
}

/// `[daemon]`: `lattice daemon`'s settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonFile {
    /// QUIC listen address (`--listen`, `LATTICE_LISTEN`).
    pub listen: Option<SocketAddr>,
    /// Seconds between background syncs (`--sync-interval`, `LATTICE_SYNC_INTERVAL`).
    pub sync_interval: Option<u64>,
}

/// `[irc]`: the IRC gateway (`lattice daemon --irc …`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrcFile {
    /// Address to serve IRC on; setting it turns the gateway on (`--irc`, `LATTICE_IRC`).
    pub listen: Option<SocketAddr>,
    pub server_name: Option<String>,
    pub info: Option<String>,
    pub motd: Option<PathBuf>,
    /// `NAME:PASSWORD` entries.
    pub opers: Option<Vec<String>>,
    pub password: Option<String>,
    pub history: Option<u32>,
    pub max_clients: Option<usize>,
}

/// The loaded file and where it was looked for.
pub struct Config {
    pub path: PathBuf,
    pub found: bool,
    pub file: File,
}

static LOADED: OnceLock<Result<Config, String>> = OnceLock::new();

/// The config, read once per process. A file that does not parse is an
/// error for every command (one line naming the file, line and key).
pub fn get() -> anyhow::Result<&'static Config> {
    LOADED
        .get_or_init(load)
        .as_ref()
        .map_err(|e| Failure::new(ErrorKind::Invalid, e.clone()))
}

/// Where the file is looked for.
pub fn path() -> PathBuf {
    if let Some(p) = std::env::var_os("LATTICE_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".config"));
    base.join("lattice").join("config.toml")
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn load() -> Result<Config, String> {
    let path = path();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Config {
                path,
                found: false,
                file: File::default(),
            });
        }
        Err(e) => return Err(format!("config file {}: {e}", path.display())),
    };
    let mut file: File = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!(" (line {line})")
            })
            .unwrap_or_default();
        format!(
            "config file {}{at}: {}",
            path.display(),
            e.message().trim().replace('\n', "; ")
        )
    })?;
    // `~/` in paths, as a shell would expand it, relative to $HOME.
    let expand = |p: &mut Option<PathBuf>| {
        if let Some(rest) = p.as_ref().and_then(|p| p.strip_prefix("~").ok()) {
            *p = Some(home().join(rest));
        }
    };
    expand(&mut file.data_dir);
    expand(&mut file.irc.motd);
    Ok(Config {
        path,
        found: true,
        file,
    })
}

/// Where a setting's value came from, for `lattice config show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(&'static str),
    File,
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => f.write_str("flag"),
            Source::Env(v) => write!(f, "env {v}"),
            Source::File => f.write_str("file"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// The data dir and where it came from: `--data-dir`, `LATTICE_HOME`, the
/// file, then `$XDG_DATA_HOME/lattice` or `~/.local/share/lattice`.
pub fn data_dir(flag: Option<&Path>) -> anyhow::Result<(PathBuf, Source)> {
    if let Some(p) = flag {
        return Ok((p.to_path_buf(), Source::Flag));
    }
    if std::env::var_os("LATTICE_HOME").is_some_and(|p| !p.is_empty()) {
        return Ok((
            lattice_host::node::resolve_data_dir(None),
            Source::Env("LATTICE_HOME"),
        ));
    }
    if let Some(p) = &get()?.file.data_dir {
        return Ok((p.clone(), Source::File));
    }
    Ok((lattice_host::node::resolve_data_dir(None), Source::Default))
}

/// One setting's value and where it came from.
#[derive(Clone, Debug)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Setting<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Setting<U> {
        Setting {
            value: f(self.value),
            source: self.source,
        }
    }
}

/// A flag, else its environment variable (parsed like the flag), else the
/// file's value; `None` when all three are absent.
fn pick<T: std::str::FromStr>(
    flag: Option<T>,
    env: &'static str,
    file: Option<T>,
) -> anyhow::Result<Option<Setting<T>>> {
    if let Some(value) = flag {
        return Ok(Some(Setting {
            value,
            source: Source::Flag,
        }));
    }
    if let Some(raw) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        let raw = raw.to_string_lossy();
        let value = raw.parse().map_err(|_| {
            Failure::new(
                ErrorKind::Invalid,
                format!("environment variable {env}: `{raw}` is not a valid value"),
            )
        })?;
        return Ok(Some(Setting {
            value,
            source: Source::Env(env),
        }));
    }
    Ok(file.map(|value| Setting {
        value,
        source: Source::File,
    }))
}

fn or_default<T>(s: Option<Setting<T>>, value: T) -> Setting<T> {
    s.unwrap_or(Setting {
        value,
        source: Source::Default,
    })
}

/// What `lattice daemon` runs with: its flags over env over file over defaults.
#[derive(Clone, Debug)]
pub struct DaemonSettings {
    /// `None`: the address used last time, else 127.0.0.1 on any port.
    pub listen: Setting<Option<SocketAddr>>,
    pub sync_interval: Setting<u64>,
    /// `None`: no IRC gateway.
    pub http: Setting<Option<SocketAddr>>,
    pub irc: Setting<Option<SocketAddr>>,
    pub irc_server_name: Setting<String>,
    pub irc_info: Setting<String>,
    pub irc_motd: Setting<Option<PathBuf>>,
    pub irc_opers: Setting<Vec<String>>,
    pub irc_password: Setting<Option<String>>,
    pub irc_history: Setting<u32>,
    pub irc_max_clients: Setting<usize>,
}

impl DaemonSettings {
    pub fn resolve(a: &crate::app::DaemonArgs) -> anyhow::Result<DaemonSettings> {
        let f = &get()?.file;
        let some = |s: Option<Setting<SocketAddr>>| s.map(|s| s.map(Some));
        let irc = &a.irc;
        let opers = if !irc.irc_oper.is_empty() {
            Setting {
                value: irc.irc_oper.clone(),
                source: Source::Flag,
            }
        } else {
            or_default(
                f.irc.opers.clone().map(|value| Setting {
                    value,
                    source: Source::File,
                }),
                Vec::new(),
            )
        };
        Ok(DaemonSettings {
            listen: or_default(
                some(pick(a.listen, "LATTICE_LISTEN", f.daemon.listen)?),
                None,
            ),
            sync_interval: or_default(
                pick(
                    a.sync_interval,
                    "LATTICE_SYNC_INTERVAL",
                    f.daemon.sync_interval,
                )?,
                30,
            ),
            http: or_default(some(pick(a.http, "LATTICE_HTTP", f.web.listen)?), None),
            irc: or_default(some(pick(irc.irc, "LATTICE_IRC", f.irc.listen)?), None),
            irc_server_name: or_default(
                pick(
                    irc.irc_server_name.clone(),
                    "LATTICE_IRC_SERVER_NAME",
                    f.irc.server_name.clone(),
                )?,
                "lattice.local".into(),
            ),
            irc_info: or_default(
                pick(irc.irc_info.clone(), "LATTICE_IRC_INFO", f.irc.info.clone())?,
                "Lattice IRC gateway".into(),
            ),
            irc_motd: {
                let m = pick(irc.irc_motd.clone(), "LATTICE_IRC_MOTD", f.irc.motd.clone())?;
                or_default(m.map(|s| s.map(Some)), None)
            },
            irc_opers: opers,
            irc_password: {
                let p = pick(
                    irc.irc_password.clone(),
                    "LATTICE_IRC_PASSWORD",
                    f.irc.password.clone(),
                )?;
                or_default(
                    p.map(|s| s.map(|v| Some(v).filter(|v: &String| !v.is_empty()))),
                    None,
                )
            },
            irc_history: or_default(
                pick(irc.irc_history, "LATTICE_IRC_HISTORY", f.irc.history)?,
                20,
            ),
            irc_max_clients: or_default(
                pick(
                    irc.irc_max_clients,
                    "LATTICE_IRC_MAX_CLIENTS",
                    f.irc.max_clients,
                )?,
                4096,
            ),
        })
    }
}
