//! `lattice token create|list|revoke`: the HTTP API's access tokens. They
//! go through the daemon's socket like every other command (or the node
//! opened in process without a daemon); only the data dir's owner can make
//! one, never an HTTP client.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use lattice_host::api::{Request, Response, TokenView};
use serde_json::json;

use crate::app::{DaemonArgs, TokenCmd};
use crate::backend::Backend;
use crate::config::DaemonSettings;

/// Where the daemon records the address its HTTP face listens on, so
/// `token create --login` can print a URL that reaches it.
pub const HTTP_ADDR_FILE: &str = "http.addr";
/// The address `--http` without a value listens on.
pub const DEFAULT_HTTP: &str = "127.0.0.1:8384";

/// `90s`, `30m`, `12h`, `7d`, `2w` or plain seconds, as seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}`: expected a number and a unit, e.g. 90s, 30m, 12h, 7d"))?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("`{s}`: unknown unit `{unit}`; use s, m, h, d or w")),
    };
    if n == 0 {
        return Err(format!("`{s}`: a token must live longer than 0 seconds"));
    }
    n.checked_mul(per)
        .ok_or_else(|| format!("`{s}` is too long"))
}

pub fn run(dir: &Path, cmd: TokenCmd, json: bool) -> Result<ExitCode> {
    let mut b = Backend::open(dir)?;
    match cmd {
        TokenCmd::Create {
            store,
            read_only,
            expires,
            login,
        } => {
            let resp = b.call(Request::TokenCreate {
                store,
                read_only,
                expires_secs: expires,
                login,
            })?;
            let Response::Token { token, secret } = resp else {
                anyhow::bail!("unexpected reply from the node: {resp:?}");
            };
            let url = login.then(|| login_url(dir, &secret)).transpose()?;
            if json {
                let mut v = view(&token);
                v["token"] = json!(secret);
                if let Some(u) = &url {
                    v["url"] = json!(u);
                }
                outln!("{v}");
            } else {
                match &url {
                    Some(u) => {
                        outln!("{u}");
                        eprintln!(
                            "open it in a browser within 10 minutes; it works once ({})",
                            scope(&token)
                        );
                    }
                    None => {
                        outln!("{secret}");
                        eprintln!(
                            "token {}: {}; shown this once, only its hash is kept",
                            token.id,
                            scope(&token)
                        );
                    }
                }
            }
        }
        TokenCmd::List => {
            let resp = b.call(Request::TokenList)?;
            let Response::Tokens { tokens } = resp else {
                anyhow::bail!("unexpected reply from the node: {resp:?}");
            };
            if tokens.is_empty() && !json {
                eprintln!("no tokens; make one with `lattice token create`");
            }
            for t in &tokens {
                if json {
                    outln!("{}", view(t));
                } else {
                    outln!("{}  {}", t.id, scope(t));
                }
            }
        }
        TokenCmd::Revoke { id } => {
            let resp = b.call(Request::TokenRevoke { id })?;
            let Response::TokenRevoked { token } = resp else {
                anyhow::bail!("unexpected reply from the node: {resp:?}");
            };
            if json {
                outln!("{}", view(&token));
            } else {
                outln!("{}", token.id);
                eprintln!("revoked token {}: it stops working at once", token.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// "store general, read-only, expires 2026-12-08T10:00:00Z".
fn scope(t: &TokenView) -> String {
    let store = match &t.store {
        Some(s) => format!("store {}", lattice_cli::dynamic::terminal_safe(s)),
        None => "all stores".into(),
    };
    let access = if t.read_only {
        "read-only"
    } else {
        "read-write"
    };
    let expires = match t.expires_ms {
        Some(ms) if ms <= lattice_kernel::now_ms() => format!("EXPIRED {}", rfc3339(ms)),
        Some(ms) => format!("expires {}", rfc3339(ms)),
        None => "never expires".into(),
    };
    let login = if t.login { ", login code" } else { "" };
    format!("{store}, {access}, {expires}{login}")
}

fn view(t: &TokenView) -> serde_json::Value {
    let mut v = serde_json::to_value(t).expect("a token view serializes");
    v["expires"] = json!(t.expires_ms.map(rfc3339));
    v
}

fn rfc3339(ms: u64) -> String {
    crate::chat::time::rfc3339_utc(ms)
}

/// The browser UI's address with the code in the fragment: a fragment is
/// never sent to a server or put in a Referer, so the code reaches only the
/// page's own script, which trades it at `POST /api/login`.
fn login_url(dir: &Path, code: &str) -> Result<String> {
    let recorded = std::fs::read_to_string(dir.join(HTTP_ADDR_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<std::net::SocketAddr>().ok());
    let addr = match recorded {
        Some(a) => a,
        None => DaemonSettings::resolve(&DaemonArgs::default())?
            .http
            .value
            .unwrap_or_else(|| DEFAULT_HTTP.parse().expect("a valid default")),
    };
    let host = if addr.ip().is_unspecified() {
        std::net::SocketAddr::new([127, 0, 0, 1].into(), addr.port())
    } else {
        addr
    };
    Ok(format!("http://{host}/#login={code}"))
}
