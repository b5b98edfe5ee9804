//! The data directory: where a node keeps its key, its log database, plugin
//! blobs and compiled-plugin cache. Files inside it are reached through a
//! cap-std `Dir` handle, so nothing the node does with a blob name can
//! escape the directory.
//!
//! Local trust follows ssh: whoever can write the data dir can make the node
//! sign what they like and run native code as its user, so a directory (or
//! key, or log file) owned by someone else or writable by group or world is
//! refused with a clear error rather than used. Everything the node creates
//! is created private: directories 0700, files 0600.

use std::io::Write;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

use super::NodeError;

pub const LOG_FILE: &str = "lattice.redb";
pub const SOCKET_FILE: &str = "lattice.sock";
const BLOB_DIR: &str = "plugins";
const CACHE_DIR: &str = "cache";

/// Why a data dir or a file in it is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(
        "{path} is owned by uid {owner}, not by the user running lattice (uid {me}); refusing to use it"
    )]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error(
        "{path} has mode {mode:o}: group or others can write it; refusing to use it (chmod go-w)"
    )]
    Writable { path: PathBuf, mode: u32 },
    #[error(
        "{path} has mode {mode:o}: group or others can read it; it must be private to its owner (chmod 600)"
    )]
    Readable { path: PathBuf, mode: u32 },
    #[error("{path} is not a {expected}")]
    WrongKind {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("cannot inspect {path}: {source}")]
    Inspect {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The effective uid: what the kernel checks file access against, and the
/// owner of every file this process creates.
#[cfg(unix)]
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// The rule, apart from the file system so it can be tested for any uid:
/// `owner` must be `me`, and no bit of `forbidden` may be set in `mode`.
pub(crate) fn check_owner_mode(
    path: &Path,
    owner: u32,
    mode: u32,
    me: u32,
    forbidden: u32,
) -> Result<(), TrustError> {
    let mode = mode & 0o7777;
    if owner != me {
        return Err(TrustError::NotOwned {
            path: path.to_path_buf(),
            owner,
            me,
        });
    }
    if mode & forbidden & 0o022 != 0 {
        return Err(TrustError::Writable {
            path: path.to_path_buf(),
            mode,
        });
    }
    if mode & forbidden != 0 {
        return Err(TrustError::Readable {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// What may not be set on each kind of path: a directory or the log must
/// not be writable by others; the key must not be readable either.
const DIR_RULE: u32 = 0o022;
const LOG_RULE: u32 = 0o022;
const KEY_RULE: u32 = 0o077;

/// Checks an existing path (`Ok(false)` if there is none). Symlinks are
/// judged by what they point to, like ssh does.
#[cfg(unix)]
fn check_path(path: &Path, dir: bool, forbidden: u32) -> Result<bool, TrustError> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(TrustError::Inspect {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if meta.is_dir() != dir {
        return Err(TrustError::WrongKind {
            path: path.to_path_buf(),
            expected: if dir { "directory" } else { "regular file" },
        });
    }
    check_owner_mode(path, meta.uid(), meta.mode(), euid(), forbidden)?;
    Ok(true)
}

#[cfg(not(unix))]
fn check_path(path: &Path, _dir: bool, _forbidden: u32) -> Result<bool, TrustError> {
    Ok(path.exists())
}

/// Refuses a data dir (or its key, log, blob and cache dirs) that is not
/// the current user's or that others can write.
pub fn check_trust(path: &Path) -> Result<(), TrustError> {
    check_path(path, true, DIR_RULE)?;
    check_path(&path.join(lattice_kernel::KEY_FILE), false, KEY_RULE)?;
    check_path(&path.join(LOG_FILE), false, LOG_RULE)?;
    check_path(&path.join(BLOB_DIR), true, DIR_RULE)?;
    check_path(&path.join(CACHE_DIR), true, DIR_RULE)?;
    Ok(())
}

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
    /// Opens (creating with mode 0700 if needed) the directory at `path`,
    /// after checking that it and the files in it are the user's own
    /// ([`check_trust`]).
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
        check_trust(path)?;
        let dir = Dir::open_ambient_dir(path, ambient_authority()).map_err(err)?;
        // Fail early and clearly on a read-only directory.
        let probe = ".write-probe";
        dir.write(probe, b"").map_err(err)?;
        let _ = dir.remove_file(probe);
        let mut private = cap_std::fs::DirBuilder::new();
        private.recursive(true);
        #[cfg(unix)]
        {
            use cap_std::fs::DirBuilderExt;
            private.mode(0o700);
        }
        dir.create_dir_with(BLOB_DIR, &private).map_err(err)?;
        dir.create_dir_with(CACHE_DIR, &private).map_err(err)?;
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
        #[cfg(unix)]
        {
            use cap_std::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_and_mode_rules() {
        let p = Path::new("/d");
        assert!(check_owner_mode(p, 1000, 0o40700, 1000, DIR_RULE).is_ok());
        assert!(check_owner_mode(p, 1000, 0o40755, 1000, DIR_RULE).is_ok());
        assert!(matches!(
            check_owner_mode(p, 1001, 0o40700, 1000, DIR_RULE),
            Err(TrustError::NotOwned {
                owner: 1001,
                me: 1000,
                ..
            })
        ));
        // Root is held to the same rule: a data dir must be its user's own.
        assert!(check_owner_mode(p, 0, 0o700, 1000, DIR_RULE).is_err());
        for loose in [0o40770, 0o40707, 0o40777, 0o41777] {
            assert!(matches!(
                check_owner_mode(p, 1000, loose, 1000, DIR_RULE),
                Err(TrustError::Writable { .. })
            ));
        }
        assert!(check_owner_mode(p, 1000, 0o100600, 1000, KEY_RULE).is_ok());
        assert!(matches!(
            check_owner_mode(p, 1000, 0o100640, 1000, KEY_RULE),
            Err(TrustError::Readable { mode: 0o640, .. })
        ));
        assert!(matches!(
            check_owner_mode(p, 1000, 0o100620, 1000, KEY_RULE),
            Err(TrustError::Writable { .. })
        ));
        assert!(check_owner_mode(p, 1000, 0o100644, 1000, LOG_RULE).is_ok());
        assert!(matches!(
            check_owner_mode(p, 1000, 0o100664, 1000, LOG_RULE),
            Err(TrustError::Writable { .. })
        ));
    }
}
