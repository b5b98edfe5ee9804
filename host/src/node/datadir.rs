//! The data directory: where a node keeps its key, its log database, plugin
//! blobs and compiled-plugin cache. Files inside it are reached through a
//! cap-std `Dir` handle, so nothing the node does with a blob name can
//! escape the directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

use super::NodeError;

pub const LOG_FILE: &str = "lattice.redb";
pub const SOCKET_FILE: &str = "lattice.sock";
const BLOB_DIR: &str = "plugins";
const CACHE_DIR: &str = "cache";

/// The data directory in force: `--data-dir`, else `$LATTICE_HOME`, else
/// `$XDG_DATA_HOME/lattice`, else `~/.local/share/lattice`.
pub fn resolve(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("LATTICE_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_DATA_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("lattice");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/lattice")
}

pub struct DataDir {
    path: PathBuf,
    dir: Dir,
}

impl DataDir {
    /// Opens (creating with mode 0700 if needed) the directory at `path`.
    pub fn open(path: &Path) -> Result<DataDir, NodeError> {
        let err = |source| NodeError::DataDir {
            path: path.to_path_buf(),
            source,
        };
        if !path.exists() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            b.create(path).map_err(err)?;
        }
        let dir = Dir::open_ambient_dir(path, ambient_authority()).map_err(err)?;
        // Fail early and clearly on a read-only or foreign-owned directory.
        let probe = ".write-probe";
        dir.write(probe, b"").map_err(err)?;
        let _ = dir.remove_file(probe);
        dir.create_dir_all(BLOB_DIR).map_err(err)?;
        dir.create_dir_all(CACHE_DIR).map_err(err)?;
        Ok(DataDir {
            path: path.to_path_buf(),
            dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn log_path(&self) -> PathBuf {
        self.path.join(LOG_FILE)
    }

    pub fn socket_path(&self) -> PathBuf {
        self.path.join(SOCKET_FILE)
    }

    pub fn cache_path(&self) -> PathBuf {
        self.path.join(CACHE_DIR)
    }

    fn blob_name(hash: &[u8; 32]) -> String {
        format!(
            "{BLOB_DIR}/{}.wasm",
            lattice_kernel::EntryId(*hash).to_hex()
        )
    }

    /// Stores a plugin blob under its blake3 hash (write to a temp name,
    /// fsync, rename: a crash never leaves a truncated blob under the real name).
    pub fn put_blob(&self, hash: &[u8; 32], wasm: &[u8]) -> Result<(), NodeError> {
        let name = Self::blob_name(hash);
        let err = |source| NodeError::DataDir {
            path: self.path.join(&name),
            source,
        };
        if self.dir.exists(&name) {
            return Ok(());
        }
        let tmp = format!("{name}.tmp");
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        let mut f = self.dir.open_with(&tmp, &opts).map_err(err)?;
        f.write_all(wasm).map_err(err)?;
        f.sync_all().map_err(err)?;
        self.dir.rename(&tmp, &self.dir, &name).map_err(err)?;
        Ok(())
    }

    /// A stored blob, verified against its hash (a corrupted file is
    /// treated as missing rather than run).
    pub fn get_blob(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, NodeError> {
        let name = Self::blob_name(hash);
        match self.dir.read(&name) {
            Ok(bytes) if blake3::hash(&bytes).as_bytes() == hash => Ok(Some(bytes)),
            Ok(_) => {
                tracing::warn!(blob = %name, "plugin blob does not match its hash; ignoring it");
                Ok(None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(NodeError::DataDir {
                path: self.path.join(name),
                source,
            }),
        }
    }
}
