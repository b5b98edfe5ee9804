//! `lattice plugin new NAME`: a ready plugin crate for an outside author.
//!
//! The crate it writes is the smallest thing that is a real plugin: a
//! to-do list CRDT with unit tests, its `.proto`, a one-line `build.rs`,
//! the release profile and wasm target plugins need, and a `[workspace]`
//! of its own, so `cargo build --release` in that directory is the whole
//! build, wherever the directory is.
//!
//! The SDK dependency is the one decision the template cannot make alone.
//! Default: a `path` to the SDK sources this binary was built from (a
//! checkout is what a plugin author who built `lattice` has); `--sdk-path`
//! names another checkout, `--sdk-git` a git repository.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use lattice_host::api::ErrorKind;

use crate::fail::Failure;

/// Where the SDK is at build time of this binary: `<repo>/plugins`.
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins");

/// The template, with `{{name}}` (the plugin and CLI command name),
/// `{{crate}}` (its Rust and proto package name), `{{Service}}` (its proto
/// service), `{{sdk}}` and `{{sdk_build}}` (dependency specs) to fill in.
const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/plugin/Cargo.toml.in"),
    ),
    (
        "build.rs",
        include_str!("../../templates/plugin/build.rs.in"),
    ),
    (
        ".cargo/config.toml",
        include_str!("../../templates/plugin/cargo-config.toml"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/plugin/gitignore"),
    ),
    (
        "README.md",
        include_str!("../../templates/plugin/README.md.in"),
    ),
    (
        "proto/{{crate}}.proto",
        include_str!("../../templates/plugin/proto.in"),
    ),
    (
        "src/lib.rs",
        include_str!("../../templates/plugin/lib.rs.in"),
    ),
    // The versions the SDK is built and tested with in this repository;
    // cargo drops the entries the new crate does not use.
    ("Cargo.lock", include_str!("../../../plugins/Cargo.lock")),
];

/// Names the static command tree (or a shipped plugin) already uses: a
/// plugin called `store` could never be reached as `lattice store …`.
const RESERVED: &[&str] = &[
    "node",
    "mesh",
    "store",
    "plugin",
    "config",
    "watch",
    "daemon",
    "demo",
    "bench",
    "completions",
    "man",
    "help",
    "token",
    "kv",
    "log",
    "chat",
];

/// Message names of the template's .proto, which the service must not
/// shadow.
const TEMPLATE_MESSAGES: &[&str] = &[
    "AddRequest",
    "AddReply",
    "DoneRequest",
    "DoneReply",
    "ListRequest",
    "ListReply",
    "Item",
    "TodoOp",
];

/// Where the new crate gets the SDK from.
pub enum SdkSource {
    /// The default: the sources this binary was built from.
    BuiltFrom,
    /// A Lattice checkout, or its `plugins/` folder.
    Path(PathBuf),
    /// A git repository holding the SDK crates, optionally at a revision.
    Git { url: String, rev: Option<String> },
}

pub struct NewPlugin<'a> {
    pub name: &'a str,
    pub dir: Option<&'a Path>,
    pub sdk: SdkSource,
}

pub fn run(p: NewPlugin<'_>, json: bool) -> Result<ExitCode> {
    let names = Names::new(p.name)?;
    let (sdk, sdk_build) = dependencies(&p.sdk)?;
    let dir = p
        .dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(p.name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Failure::new(
            ErrorKind::Refused,
            format!(
                "{} exists and is not empty: pick another --dir",
                dir.display()
            ),
        ));
    }
    let fill = |s: &str| {
        s.replace("{{name}}", names.name)
            .replace("{{crate}}", &names.krate)
            .replace("{{Service}}", &names.service)
            .replace("{{sdk}}", &sdk)
            .replace("{{sdk_build}}", &sdk_build)
    };
    let mut written = Vec::new();
    for (path, text) in FILES {
        let path = dir.join(fill(path));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, fill(text))
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    let wasm = format!("target/wasm32-wasip2/release/{}.wasm", names.krate);
    if json {
        let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        outln!(
            "{}",
            serde_json::json!({ "name": names.name, "dir": dir.display().to_string(), "files": files, "wasm": wasm, "sdk": sdk })
        );
    } else {
        for f in &written {
            outln!("{}", f.display());
        }
        eprintln!(
            "created plugin `{}` in {}; build it with\n  cd {} && cargo build --release\nthen: lattice plugin check {wasm}",
            names.name,
            dir.display(),
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The plugin's names in each of the forms the template needs.
struct Names<'a> {
    name: &'a str,
    krate: String,
    service: String,
}

impl<'a> Names<'a> {
    /// `todo-list` → crate `todo_list`, service `TodoList`. Lowercase
    /// letters and digits in dash-separated words that start with a letter:
    /// valid as a cargo package, a Rust crate, a proto package and a CLI
    /// command alike.
    fn new(name: &'a str) -> Result<Self> {
        let word_ok = |w: &str| {
            w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        };
        if name.is_empty() || name.len() > 40 || !name.split('-').all(word_ok) {
            usage!(
                "plugin name `{name}` is not usable: lowercase words of letters and digits joined by `-`, starting with a letter, at most 40 characters (e.g. `todo` or `task-board`)"
            );
        }
        if RESERVED.contains(&name) {
            usage!(
                "plugin name `{name}` is taken by `lattice {name}`; pick another (e.g. `my-{name}`)"
            );
        }
        let service: String = name
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        if TEMPLATE_MESSAGES.contains(&service.as_str()) {
            usage!(
                "plugin name `{name}` would name its service like one of the template's messages ({service}); pick another"
            );
        }
        Ok(Names {
            name,
            krate: name.replace('-', "_"),
            service,
        })
    }
}

/// A TOML basic string (the crate's toml has no serializer enabled, and
/// a path may hold `"` or `\\`).
fn quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The two dependency specs (TOML inline tables) for the SDK crates.
fn dependencies(sdk: &SdkSource) -> Result<(String, String)> {
    let paths = |plugins: PathBuf| (plugins.join("sdk"), plugins.join("sdk-build"));
    let (sdk, build) = match sdk {
        SdkSource::Git { url, rev } => {
            let rev = rev
                .as_deref()
                .map(|r| format!(", rev = {}", quote(r)))
                .unwrap_or_default();
            let spec = format!("{{ git = {}{rev} }}", quote(url));
            return Ok((spec.clone(), spec));
        }
        SdkSource::Path(dir) => {
            let plugins = if dir.join("plugins/sdk/Cargo.toml").is_file() {
                dir.join("plugins")
            } else {
                dir.clone()
            };
            let (sdk, build) = paths(plugins);
            if !sdk.join("Cargo.toml").is_file() || !build.join("Cargo.toml").is_file() {
                return Err(Failure::new(
                    ErrorKind::NotFound,
                    format!(
                        "--sdk-path {}: no lattice-plugin-sdk there (give a Lattice checkout or its plugins/ folder)",
                        dir.display()
                    ),
                ));
            }
            (sdk, build)
        }
        SdkSource::BuiltFrom => {
            let (sdk, build) = paths(PathBuf::from(BUILT_FROM));
            if !sdk.join("Cargo.toml").is_file() || !build.join("Cargo.toml").is_file() {
                return Err(Failure::new(
                    ErrorKind::NotFound,
                    format!(
                        "the SDK sources this lattice was built from are gone ({}); pass --sdk-path CHECKOUT or --sdk-git URL",
                        sdk.display()
                    ),
                ));
            }
            (sdk, build)
        }
    };
    let abs = |p: PathBuf| -> Result<String> {
        let p = p
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", p.display()))?;
        let s = p
            .to_str()
            .with_context(|| format!("SDK path {} is not UTF-8", p.display()))?;
        Ok(format!("{{ path = {} }}", quote(s)))
    };
    Ok((abs(sdk)?, abs(build)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_every_form_or_are_refused() {
        let n = Names::new("task-board2").unwrap();
        assert_eq!(
            (n.krate.as_str(), n.service.as_str()),
            ("task_board2", "TaskBoard2")
        );
        for bad in [
            "", "Todo", "2do", "to_do", "to--do", "-todo", "todo-", "t-2", "store", "item",
        ] {
            assert!(Names::new(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn git_specs_are_quoted_toml() {
        let (sdk, _) = dependencies(&SdkSource::Git {
            url: "https://h/x\"y\\z".into(),
            rev: Some("abc".into()),
        })
        .unwrap();
        let t: toml::Table = toml::from_str(&format!("d = {sdk}")).unwrap();
        assert_eq!(t["d"]["git"].as_str(), Some("https://h/x\"y\\z"));
        assert_eq!(t["d"]["rev"].as_str(), Some("abc"));
    }
}
