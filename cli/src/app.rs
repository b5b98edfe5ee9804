//! The static command line. Plugin commands (`lattice chat post …`) are not
//! listed here: they are built at run time from each plugin's descriptor
//! (see `dynamic`), and reach us as an external subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "lattice",
    version,
    about = "Local-first replicated state machines: signed op logs, wasm plugins, peer-to-peer sync",
    after_help = "Plugin commands: `lattice TYPE-OR-STORE METHOD --field value`, e.g. `lattice chat post --text hi`.\nRun `lattice demo` for a guided first session."
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

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run a node in the foreground: storage and the local API socket for other commands.
    Daemon,
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
        /// Only this store (name, uuid or type).
        store: Option<String>,
    },
    /// A guided first session: a mesh, a chat room and a kv store, used end to end.
    Demo,
    /// Measure the local API: command latency and pipelined chat posts through the daemon socket.
    Bench {
        /// Number of chat posts to pipeline.
        #[arg(long, default_value_t = 10_000)]
        posts: u32,
    },
    /// A plugin command: `lattice TYPE-OR-STORE METHOD [--field value]...`.
    #[command(external_subcommand)]
    Plugin_(Vec<String>),
}

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// Identity, data dir, meshes and stores of this node.
    Status,
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
    Use { mesh: String },
    /// Members and stores of a mesh.
    Status { mesh: Option<String> },
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
    /// Make STORE the one its type name refers to (`lattice chat …`).
    Use { store: String },
    /// Entry count, heads, state digest, plugin of a store.
    Status { store: Option<String> },
    /// The store's ops in commit order, decoded.
    Log {
        store: Option<String>,
        /// First position (0-based).
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// The store's log and state digests (equal on replicas with the same ops).
    Digest { store: Option<String> },
}

#[derive(Subcommand, Debug)]
pub enum PluginCmd {
    /// Shipped plugins and plugins used by stores.
    List,
    /// Validate a .wasm plugin and show its methods.
    Inspect { path: PathBuf },
}
