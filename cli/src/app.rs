//! The static command line. Plugin commands (`lattice chat post …`) are not
//! listed here: they are built at run time from each plugin's descriptor
//! (see `dynamic`), and reach us as an external subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "lattice",
    version = crate::shell::version(),
    about = "Local-first replicated state machines: signed op logs, wasm plugins, peer-to-peer sync",
    after_help = "Plugin commands: `lattice TYPE-OR-STORE METHOD --field value`, e.g. `lattice chat post --text hi`.\n`lattice chat` with no method (or `lattice chat '#room'`, `--room NAME`) opens the interactive chat client.\nRun `lattice demo` for a guided first session."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// Data directory (default: $LATTICE_HOME, else $XDG_DATA_HOME/lattice, else ~/.local/share/lattice).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print results as JSON (one object per line).
    #[arg(long, global = true)]
    pub json: bool,
    /// More logging on stderr (-v info, -vv debug); RUST_LOG also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The store a store command acts on: positional or `--store`, as plugin
/// commands take it; with neither, the mesh's only store or the one
/// `lattice store use` picked.
#[derive(Args, Debug, Clone, Default)]
pub struct StoreSel {
    /// Store name or uuid (default: the only store, else the one `store use` picked).
    #[arg(value_name = "STORE")]
    pub store: Option<String>,
    /// The same, as a flag.
    #[arg(long = "store", value_name = "STORE", conflicts_with = "store")]
    pub store_flag: Option<String>,
}

impl StoreSel {
    pub fn get(&self) -> Option<String> {
        self.store.clone().or_else(|| self.store_flag.clone())
    }
}

/// The mesh a mesh command acts on: positional or `--mesh`; with neither,
/// the one `lattice mesh use` picked (or the only one).
#[derive(Args, Debug, Clone, Default)]
pub struct MeshSel {
    /// Mesh name or id (default: the one `mesh use` picked, or the only one).
    #[arg(value_name = "MESH")]
    pub mesh: Option<String>,
    /// The same, as a flag.
    #[arg(long = "mesh", value_name = "MESH", conflicts_with = "mesh")]
    pub mesh_flag: Option<String>,
}

impl MeshSel {
    pub fn get(&self) -> Option<String> {
        self.mesh.clone().or_else(|| self.mesh_flag.clone())
    }
}

/// `lattice daemon`'s flags. Each is optional here: a flag not given falls
/// back to its environment variable, then the config file, then the
/// default (`config`, `commands::daemon::Settings`).
#[derive(Args, Debug, Clone, Default)]
pub struct DaemonArgs {
    /// QUIC listen address [env LATTICE_LISTEN; default: the last one used,
    /// else 127.0.0.1 on any port]. Use e.g. 0.0.0.0:7400 to be reachable
    /// from other machines.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Seconds between background syncs with every member [env LATTICE_SYNC_INTERVAL; default 30].
    #[arg(long, value_name = "SECS")]
    pub sync_interval: Option<u64>,
    /// Serve the HTTP API and browser UI on this address [env LATTICE_HTTP;
    /// without a value 127.0.0.1:8384]. Every request needs a token
    /// (`lattice token create`).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8384")]
    pub http: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub irc: IrcArgs,
}

/// The IRC gateway's flags (`lattice daemon --irc ADDR …`).
#[derive(Args, Debug, Clone, Default)]
pub struct IrcArgs {
    /// Serve the mesh's chat rooms as IRC channels on this address, e.g.
    /// 127.0.0.1:6667 [env LATTICE_IRC].
    #[arg(long, value_name = "ADDR")]
    pub irc: Option<std::net::SocketAddr>,
    /// The IRC server name, the prefix of its replies [default lattice.local].
    #[arg(long, value_name = "NAME")]
    pub irc_server_name: Option<String>,
    /// Free text shown by LINKS, WHOIS and INFO.
    #[arg(long, value_name = "TEXT")]
    pub irc_info: Option<String>,
    /// A file whose lines are the message of the day.
    #[arg(long, value_name = "FILE")]
    pub irc_motd: Option<PathBuf>,
    /// IRC operator credentials, NAME:PASSWORD (repeat for more).
    #[arg(long, value_name = "NAME:PASSWORD")]
    pub irc_oper: Vec<String>,
    /// Password IRC clients must give with PASS [env LATTICE_IRC_PASSWORD; empty: none].
    #[arg(long, value_name = "PASSWORD")]
    pub irc_password: Option<String>,
    /// Messages a JOIN replays from the room's history, 0 for none [default 20].
    #[arg(long, value_name = "N")]
    pub irc_history: Option<u32>,
    /// Most IRC connections served at once [default 4096].
    #[arg(long, value_name = "N")]
    pub irc_max_clients: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run a node in the foreground: storage, sync and gossip, and the local API socket.
    Daemon {
        #[command(flatten)]
        args: DaemonArgs,
    },
    /// The config file and the settings in effect, with where each came from.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// This node.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Meshes: a root store plus the stores it declares.
    #[command(subcommand)]
    Mesh(MeshCmd),
    /// Stores: replicated state machines, each run by a plugin.
    #[command(subcommand)]
    Store(StoreCmd),
    /// State machine plugins (wasm components).
    #[command(subcommand)]
    Plugin(PluginCmd),
    /// Print ops as they are applied, decoded, until Ctrl-C.
    Watch {
        /// Only this store (name, uuid or type); every store without it.
        #[command(flatten)]
        store: StoreSel,
    },
    /// Access tokens for the HTTP API and browser UI (`lattice daemon --http`).
    #[command(subcommand)]
    Token(TokenCmd),
    /// A guided first session: a mesh, a chat room and a kv store, used end to end.
    Demo,
    /// Measure the local API: command latency and pipelined chat posts through the daemon socket.
    Bench {
        /// Number of chat posts to pipeline.
        #[arg(long, default_value_t = 10_000)]
        posts: u32,
        /// Measure the IRC gateway instead: fan-out across 3 daemons, many connections on one.
        #[arg(long)]
        irc: bool,
        /// IRC connections on one daemon for `--irc`.
        #[arg(long, default_value_t = 500)]
        irc_clients: usize,
        /// Measure the HTTP API instead: request latency and SSE fan-out.
        #[arg(long, conflicts_with = "irc")]
        http: bool,
        /// SSE subscribers for `--http`.
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
    },
    /// Print a shell completion script: `source <(lattice completions bash)`.
    Completions {
        #[arg(value_enum)]
        shell: crate::shell::Shell,
    },
    /// Print the lattice(1) man page (roff), or write one page per command.
    Man {
        /// Write lattice.1, lattice-store.1, ... into DIR instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// A plugin command: `lattice TYPE-OR-STORE METHOD [--field value]...`.
    #[command(external_subcommand)]
    Plugin_(Vec<String>),
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Every setting, its value and its source (flag, env, file, default).
    Show,
    /// Where the config file is looked for.
    Path,
}

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// Identity, data dir, meshes and stores of this node.
    Status,
    /// Print this node's display name, or set it in every mesh (and for meshes joined later).
    Name {
        /// The new name: 1 to 64 characters, no control characters.
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum MeshCmd {
    /// Create a mesh with this node as its first member.
    Create {
        /// A local name for the mesh.
        #[arg(long)]
        name: Option<String>,
    },
    /// Meshes this node belongs to.
    List,
    /// Select the mesh other commands act on.
    Use {
        #[command(flatten)]
        mesh: MeshSel,
    },
    /// Members and stores of a mesh.
    Status {
        #[command(flatten)]
        mesh: MeshSel,
    },
    /// Print a one-time token that lets another node join this mesh (needs the daemon).
    Invite {
        /// How long the token stays valid, in seconds.
        #[arg(long, default_value_t = 3600)]
        expires: u64,
        /// The mesh to invite to (default: the current one).
        #[arg(long, value_name = "MESH")]
        mesh: Option<String>,
    },
    /// Join a mesh with a token from `lattice mesh invite` (needs the daemon).
    Join { token: String },
    /// Known peers: connected now, last seen, last sync per store.
    Peers,
    /// Stop running MESH on this node and free its state (the founder revokes you to cut you off).
    Leave {
        #[command(flatten)]
        mesh: MeshSel,
    },
    /// Cut a member off: its new entries are refused by every member.
    Revoke {
        /// The member's node id (64 hex digits, see `mesh status`).
        member: String,
        /// The mesh to revoke it from (default: the current one).
        #[arg(long, value_name = "MESH")]
        mesh: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum StoreCmd {
    /// Create a store run by a shipped plugin (kv, log, chat) or a .wasm plugin file.
    Create {
        /// Store name (default: the plugin's name).
        #[arg(long)]
        name: Option<String>,
        /// kv, log, chat, or a path to a plugin .wasm.
        #[arg(long = "type", value_name = "TYPE")]
        kind: String,
    },
    /// Stores of the current mesh.
    List,
    /// Make STORE the default: for its type name (`lattice chat …`) and for
    /// store commands that name no store.
    Use {
        #[command(flatten)]
        store: StoreSel,
    },
    /// Delete STORE for every member (its creator or the mesh founder): every replica closes it.
    Delete {
        #[command(flatten)]
        store: StoreSel,
    },
    /// Re-pin STORE to another plugin (its creator only): every replica
    /// migrates the state at the same point of the store's log.
    Upgrade {
        #[command(flatten)]
        store: StoreSel,
        /// kv, log, chat, or a path to a plugin .wasm.
        #[arg(long = "type", value_name = "TYPE")]
        kind: String,
    },
    /// Entry count, heads, state digest, plugin of a store.
    Status {
        #[command(flatten)]
        store: StoreSel,
    },
    /// The store's ops in commit order, decoded.
    Log {
        #[command(flatten)]
        store: StoreSel,
        /// First position (0-based).
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// The store's log and state digests (equal on replicas with the same ops).
    Digest {
        #[command(flatten)]
        store: StoreSel,
    },
    /// Sync now with every reachable member (needs the daemon); every store without STORE.
    Sync {
        #[command(flatten)]
        store: StoreSel,
    },
    /// Authors proven to have forked the store (signed two entries where an
    /// honest chain has one), with the proof; their entries from the fork on
    /// are void on every member.
    Forks {
        #[command(flatten)]
        store: StoreSel,
    },
    /// Check the store against storage: every entry's hash and signature,
    /// the log and state digests recomputed. Exit 1 if anything differs.
    Verify {
        #[command(flatten)]
        store: StoreSel,
    },
}

#[derive(Subcommand, Debug)]
pub enum PluginCmd {
    /// Shipped plugins and plugins used by stores.
    List,
    /// Validate a .wasm plugin and show its service, methods and op type.
    Inspect { path: PathBuf },
    /// Check a .wasm plugin as the host will (imports, exports, limits,
    /// describe) and dry-run every method; exit 1 naming each problem and its fix.
    Check { path: PathBuf },
    /// Write a new plugin crate (a small tested to-do list CRDT) that builds with `cargo build --release`.
    New {
        /// The plugin's name: its CLI command, crate and proto package (e.g. `todo`, `task-board`).
        name: String,
        /// The crate's directory [default: ./NAME]; it must not exist or be empty.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Depend on the SDK in this Lattice checkout (or its plugins/ folder)
        /// [default: the sources this binary was built from].
        #[arg(long, value_name = "DIR", conflicts_with = "sdk_git")]
        sdk_path: Option<PathBuf>,
        /// Depend on the SDK from this git repository instead.
        #[arg(long, value_name = "URL")]
        sdk_git: Option<String>,
        /// The git revision (commit, tag) for --sdk-git.
        #[arg(long, value_name = "REV", requires = "sdk_git")]
        sdk_rev: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Make a token; it is printed once and only its hash is kept.
    Create {
        /// Limit it to this store (name or uuid).
        #[arg(long, value_name = "STORE")]
        store: Option<String>,
        /// Only reads and queries, no ops.
        #[arg(long)]
        read_only: bool,
        /// Lifetime: 90s, 30m, 12h, 7d (default: until revoked; with --login, of the session).
        #[arg(long, value_name = "DURATION", value_parser = crate::commands::parse_duration)]
        expires: Option<u64>,
        /// Print a one-time login URL for the browser UI instead (valid 10 minutes).
        #[arg(long)]
        login: bool,
    },
    /// Tokens of this node: id, scope, expiry (never the secret).
    List,
    /// Revoke a token: it stops working at once.
    Revoke {
        /// The token's id (see `token list`).
        id: String,
    },
}
