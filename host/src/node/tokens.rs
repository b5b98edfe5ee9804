//! Access tokens for the HTTP API: node-local, never replicated.
//!
//! A token is `lat_{id}_{secret}`: the id (8 random bytes, hex) names the
//! row, the secret (32 random bytes, hex) proves possession. Only
//! blake3(token) is stored, so a copy of the data dir does not hand out
//! working tokens, and the check compares `blake3::Hash` values, whose
//! equality is constant-time: the time a wrong guess takes says nothing
//! about how close it was. Looking the row up by id leaks only whether an id
//! exists, and ids are not secret.
//!
//! A *login* token is a one-time code for a browser: it lives minutes,
//! works only at `POST /api/login`, and redeeming it deletes it in the same
//! write transaction that creates the session token it is traded for, so
//! two racing redemptions cannot both succeed.

use lattice_kernel::{StoreId, now_ms};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Node, NodeError, read_table};

/// token id (hex) → JSON [`TokenRecord`].
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("host_tokens");

/// How long a login code stays redeemable.
pub const LOGIN_TTL_MS: u64 = 10 * 60 * 1000;
/// Lifetime of the session a login code is traded for, unless the code was
/// created with its own `--expires`.
pub const SESSION_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

const PREFIX: &str = "lat_";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("not a lattice token (expected lat_<id>_<secret>)")]
    Malformed,
    /// Unknown id, wrong secret, or revoked: one answer for all three, so a
    /// caller cannot tell which ids exist.
    #[error("unknown or revoked token")]
    Invalid,
    #[error("token {0} has expired")]
    Expired(String),
    #[error("token {0} is a one-time login code: trade it at POST /api/login")]
    LoginOnly(String),
    #[error("token {0} is not a login code")]
    NotLogin(String),
    #[error("no token with id `{0}`")]
    UnknownId(String),
}

/// What a token may do, as stored.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TokenRecord {
    /// blake3 of the whole token string, hex.
    hash: String,
    /// The one store it is limited to (uuid), none for every store.
    pub store: Option<String>,
    /// The store's name when the token was made, for `token list`.
    pub store_name: Option<String>,
    pub read_only: bool,
    /// A one-time browser login code (see the module docs).
    #[serde(default)]
    pub login: bool,
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
}

/// A token's row as shown and checked: everything but the secret.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    pub id: String,
    pub record: TokenRecord,
}

impl TokenInfo {
    /// The store this token is limited to, if any.
    pub fn store_id(&self) -> Option<StoreId> {
        self.record.store.as_deref().and_then(StoreId::from_uuid)
    }
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("the OS random source must be available");
    hex::encode(b)
}

/// Splits `lat_{16 hex}_{64 hex}` into its id; anything else is malformed.
fn parse(token: &str) -> Result<&str, TokenError> {
    let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
    let (id, secret) = rest.split_once('_').ok_or(TokenError::Malformed)?;
    let hexy = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hexy(id, 16) || !hexy(secret, 64) {
        return Err(TokenError::Malformed);
    }
    Ok(id)
}

fn hash(token: &str) -> blake3::Hash {
    blake3::hash(token.as_bytes())
}

impl Node {
    /// Makes a token limited to `store` (a name or uuid of the current mesh)
    /// if given, read-only if asked, expiring after `expires_ms` from now if
    /// given. Returns its row and the token itself, which is never stored
    /// and cannot be shown again.
    pub fn token_create(
        &self,
        store: Option<&str>,
        read_only: bool,
        expires_ms: Option<u64>,
        login: bool,
    ) -> Result<(TokenInfo, String), NodeError> {
        let store = match store {
            Some(s) => Some(self.resolve(s, Some(s))?),
            None => None,
        };
        let now = now_ms();
        let record = TokenRecord {
            hash: String::new(),
            store: store.as_ref().map(|h| h.id.to_uuid()),
            store_name: store.as_ref().map(|h| h.name.clone()),
            read_only,
            login,
            created_ms: now,
            expires_ms: match (login, expires_ms) {
                (true, _) => Some(now + LOGIN_TTL_MS),
                (false, e) => e.map(|e| now.saturating_add(e)),
            },
        };
        // A login code carries its own short TTL; the lifetime asked for
        // is the session's, granted when it is redeemed.
        let session_ms = expires_ms.filter(|_| login);
        let tx = self.kernel.db().begin_write()?;
        let (info, token) = {
            let mut t = tx.open_table(TOKENS)?;
            self.insert_token(&mut t, record, session_ms)?
        };
        tx.commit()?;
        Ok((info, token))
    }

    /// Inserts a fresh token for `record` (its hash filled in). A login
    /// record stores the session lifetime to grant in `session_ms`.
    fn insert_token(
        &self,
        t: &mut redb::Table<&str, &[u8]>,
        mut record: TokenRecord,
        session_ms: Option<u64>,
    ) -> Result<(TokenInfo, String), NodeError> {
        let id = loop {
            let id = random_hex(8);
            if t.get(id.as_str())?.is_none() {
                break id;
            }
        };
        let token = format!("{PREFIX}{id}_{}", random_hex(32));
        record.hash = hash(&token).to_hex().to_string();
        // The session lifetime a login code grants rides beside the record.
        let stored =
            serde_json::to_vec(&(&record, session_ms)).expect("a token record always serializes");
        t.insert(id.as_str(), stored.as_slice())?;
        Ok((TokenInfo { id, record }, token))
    }

    /// Every token, oldest first, without secrets.
    pub fn token_list(&self) -> Result<Vec<TokenInfo>, NodeError> {
        let tx = self.kernel.db().begin_read()?;
        let Some(t) = read_table(&tx, TOKENS)? else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let id = k.value().to_string();
            let (record, _) = decode_row(&id, v.value())?;
            out.push(TokenInfo { id, record });
        }
        out.sort_by_key(|t| t.record.created_ms);
        Ok(out)
    }

    /// Deletes the token with this id; it stops working at once.
    pub fn token_revoke(&self, id: &str) -> Result<TokenInfo, NodeError> {
        let tx = self.kernel.db().begin_write()?;
        let info = {
            let mut t = tx.open_table(TOKENS)?;
            let Some(v) = t.remove(id)? else {
                return Err(TokenError::UnknownId(id.to_string()).into());
            };
            let (record, _) = decode_row(id, v.value())?;
            TokenInfo {
                id: id.to_string(),
                record,
            }
        };
        tx.commit()?;
        Ok(info)
    }

    /// The token's row if `token` is a valid, unexpired API token.
    pub fn token_check(&self, token: &str) -> Result<TokenInfo, NodeError> {
        let (info, _) = self.token_lookup(token)?;
        if info.record.login {
            return Err(TokenError::LoginOnly(info.id).into());
        }
        Ok(info)
    }

    /// Trades a valid login code for a session token with the same scope.
    /// The code is deleted in the same transaction, so it works once.
    pub fn token_redeem(&self, code: &str) -> Result<(TokenInfo, String), NodeError> {
        let id = parse(code)?;
        let tx = self.kernel.db().begin_write()?;
        let out = {
            let mut t = tx.open_table(TOKENS)?;
            let (record, session_ms) = match t.get(id)? {
                Some(v) => decode_row(id, v.value())?,
                None => return Err(TokenError::Invalid.into()),
            };
            check_secret(id, code, &record)?;
            if !record.login {
                return Err(TokenError::NotLogin(id.to_string()).into());
            }
            t.remove(id)?;
            let now = now_ms();
            let session = TokenRecord {
                hash: String::new(),
                login: false,
                created_ms: now,
                expires_ms: Some(now.saturating_add(session_ms.unwrap_or(SESSION_TTL_MS))),
                ..record
            };
            self.insert_token(&mut t, session, None)?
        };
        tx.commit()?;
        Ok(out)
    }

    fn token_lookup(&self, token: &str) -> Result<(TokenInfo, Option<u64>), NodeError> {
        let id = parse(token)?;
        let tx = self.kernel.db().begin_read()?;
        let Some(t) = read_table(&tx, TOKENS)? else {
            return Err(TokenError::Invalid.into());
        };
        let Some(v) = t.get(id)? else {
            return Err(TokenError::Invalid.into());
        };
        let (record, session_ms) = decode_row(id, v.value())?;
        check_secret(id, token, &record)?;
        Ok((
            TokenInfo {
                id: id.to_string(),
                record,
            },
            session_ms,
        ))
    }
}

/// The hash comparison (constant-time: `blake3::Hash`'s `==`) and expiry.
fn check_secret(id: &str, token: &str, record: &TokenRecord) -> Result<(), NodeError> {
    let stored = blake3::Hash::from_hex(&record.hash).map_err(|_| TokenError::Invalid)?;
    if hash(token) != stored {
        return Err(TokenError::Invalid.into());
    }
    if record.expires_ms.is_some_and(|e| now_ms() >= e) {
        return Err(TokenError::Expired(id.to_string()).into());
    }
    Ok(())
}

/// A stored row: the record and the session lifetime a login code grants.
fn decode_row(id: &str, v: &[u8]) -> Result<(TokenRecord, Option<u64>), NodeError> {
    serde_json::from_slice(v)
        .map_err(|e| NodeError::RootSchema(format!("token {id}: stored record unreadable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_takes_only_the_documented_shape() {
        let id = "0123456789abcdef";
        let secret = "a".repeat(64);
        assert_eq!(parse(&format!("lat_{id}_{secret}")).unwrap(), id);
        for bad in [
            "",
            "lat_",
            "Bearer lat_x",
            &format!("lat_{id}{secret}"),
            &format!("lat_{id}_{}", "a".repeat(63)),
            &format!("lat_{}_{secret}", "g".repeat(16)),
            &format!("xat_{id}_{secret}"),
            &format!("lat_{id}_{secret}_"),
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    fn node() -> (tempfile::TempDir, Node) {
        let d = tempfile::tempdir().unwrap();
        let n = Node::open(d.path()).unwrap();
        (d, n)
    }

    #[test]
    fn a_token_checks_and_a_changed_one_does_not() {
        let (_d, n) = node();
        let (info, token) = n.token_create(None, true, None, false).unwrap();
        assert!(!info.record.hash.contains(&token));
        assert_eq!(n.token_check(&token).unwrap().id, info.id);
        // Flip the last secret digit: same id, wrong secret.
        let mut bad = token.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(
            n.token_check(&bad),
            Err(NodeError::Token(TokenError::Invalid))
        ));
        n.token_revoke(&info.id).unwrap();
        assert!(matches!(
            n.token_check(&token),
            Err(NodeError::Token(TokenError::Invalid))
        ));
        assert!(n.token_list().unwrap().is_empty());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let (_d, n) = node();
        let (_, token) = n.token_create(None, false, Some(0), false).unwrap();
        assert!(matches!(
            n.token_check(&token),
            Err(NodeError::Token(TokenError::Expired(_)))
        ));
    }

    #[test]
    fn a_login_code_works_once_and_only_at_login() {
        let (_d, n) = node();
        let (_, code) = n.token_create(None, true, None, true).unwrap();
        assert!(matches!(
            n.token_check(&code),
            Err(NodeError::Token(TokenError::LoginOnly(_)))
        ));
        let (session, token) = n.token_redeem(&code).unwrap();
        assert!(session.record.read_only && !session.record.login);
        assert!(n.token_check(&token).is_ok());
        assert!(n.token_redeem(&code).is_err(), "redeemed twice");
        // A session token is not a login code.
        assert!(matches!(
            n.token_redeem(&token),
            Err(NodeError::Token(TokenError::NotLogin(_)))
        ));
    }
}
