//! The node's ed25519 key. It signs every entry the node authors and is also
//! the node's Iroh identity, so "node id" and "author" are one thing.
//!
//! The key file is created once with mode 0600. A key that exists but cannot
//! be read, is malformed, or is readable by others is an error: silently
//! minting a new identity would fork the node's history.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::ids::AuthorId;

pub const KEY_FILE: &str = "node.key";
const KEY_HEADER: &str = "lattice-ed25519-secret-v1";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} is corrupt ({why}); refusing to create a new identity over it")]
    Corrupt { path: PathBuf, why: &'static str },
    #[error("key file {path} has mode {mode:o}; it must be readable by its owner only (chmod 600)")]
    LoosePermissions { path: PathBuf, mode: u32 },
}

/// A node identity: its signing key.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.author())
    }
}

impl Identity {
    /// A fresh random identity (tests, benchmarks, throwaway nodes).
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the OS random source must be available");
        Identity {
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub fn from_secret_bytes(seed: [u8; 32]) -> Self {
        Identity {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Loads `dir/node.key`, creating it (0600) if it does not exist.
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        let path = dir.join(KEY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                check_permissions(&path)?;
                Self::parse(&path, &text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Self::generate();
                id.write_new(&path)?;
                Ok(id)
            }
            Err(e) => Err(IdentityError::Read { path, source: e }),
        }
    }

    fn parse(path: &Path, text: &str) -> Result<Self, IdentityError> {
        let corrupt = |why| IdentityError::Corrupt {
            path: path.to_path_buf(),
            why,
        };
        let mut lines = text.lines();
        if lines.next() != Some(KEY_HEADER) {
            return Err(corrupt("missing header line"));
        }
        let hex = lines
            .next()
            .ok_or_else(|| corrupt("missing key line"))?
            .trim();
        let bytes = crate::ids::unhex(hex).ok_or_else(|| corrupt("key is not hex"))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| corrupt("key is not 32 bytes"))?;
        Ok(Self::from_secret_bytes(seed))
    }

    fn write_new(&self, path: &Path) -> Result<(), IdentityError> {
        let err = |source| IdentityError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(err)?;
        let text = format!("{KEY_HEADER}\n{}\n", crate::ids::hex(&self.key.to_bytes()));
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        Ok(())
    }

    pub fn author(&self) -> AuthorId {
        AuthorId(self.key.verifying_key().to_bytes())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The raw signing key, for handing the same identity to Iroh.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    pub fn secret_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|e| IdentityError::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::LoosePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), IdentityError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(dir.path()).unwrap();
        let b = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.author(), b.author());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn corrupt_key_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        Identity::load_or_create(dir.path()).unwrap();
        let mut opts = fs::OpenOptions::new();
        opts.write(true).truncate(true);
        opts.open(&path)
            .unwrap()
            .write_all(b"lattice-ed25519-secret-v1\nzz\n")
            .unwrap();
        let err = Identity::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                IdentityError::Corrupt {
                    why: "key is not hex",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn loose_permissions_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identity::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(err, IdentityError::LoosePermissions { mode: 0o644, .. }),
            "{err}"
        );
    }
}
