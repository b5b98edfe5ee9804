//! Signed entries: building and signing local ones, decoding and checking the
//! stateless rules of received ones. Everything here runs *before* a write
//! transaction, so the expensive part (signatures) never holds the log lock.

use ed25519_dalek::{Signature, VerifyingKey};
use prost::Message;

use crate::error::ValidationError;
use crate::hlc::{Hlc, HlcTime};
use crate::identity::Identity;
use crate::ids::{AuthorId, EntryId, StoreId};
use crate::pb;

/// Prefix of the signed message: keeps an entry signature from ever being
/// valid as a signature over anything else the same key signs.
pub const SIGNING_DOMAIN: &[u8] = b"lattice/entry/v1\0";

/// Limits checked at ingest, cheapest first.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest encoded entry accepted (envelope included).
    pub max_entry_bytes: usize,
    /// Most causal deps one entry may name.
    pub max_deps: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entry_bytes: 1 << 20,
            max_deps: 1024,
        }
    }
}

/// A decoded entry whose body bytes are kept exactly as signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedEntry {
    pub id: EntryId,
    pub store: StoreId,
    pub author: AuthorId,
    pub seq: u64,
    pub prev: EntryId,
    pub hlc: HlcTime,
    pub deps: Vec<EntryId>,
    pub payload: Vec<u8>,
    /// The encoded `EntryBody`, byte for byte as signed.
    pub body: Vec<u8>,
    pub signature: [u8; 64],
}

/// What a caller supplies to author a new entry; seq, prev and deps come
/// from the log at commit time.
#[derive(Clone, Debug)]
pub struct Draft {
    pub store: StoreId,
    pub seq: u64,
    pub prev: EntryId,
    pub hlc: HlcTime,
    pub deps: Vec<EntryId>,
    pub payload: Vec<u8>,
}

impl SignedEntry {
    /// Signs a draft. The body is encoded once; its bytes are the identity.
    pub fn sign(identity: &Identity, d: Draft) -> SignedEntry {
        let author = identity.author();
        let body = pb::EntryBody {
            store_id: d.store.0.to_vec(),
            author: author.0.to_vec(),
            seq: d.seq,
            prev_hash: d.prev.0.to_vec(),
            hlc: d.hlc,
            causal_deps: d.deps.iter().map(|x| x.0.to_vec()).collect(),
            payload: d.payload.clone(),
        }
        .encode_to_vec();
        let signature = identity.sign(&signed_message(&body));
        SignedEntry {
            id: EntryId(*blake3::hash(&body).as_bytes()),
            store: d.store,
            author,
            seq: d.seq,
            prev: d.prev,
            hlc: d.hlc,
            deps: d.deps,
            payload: d.payload,
            body,
            signature,
        }
    }

    /// The envelope bytes that travel and are stored.
    pub fn to_wire(&self) -> Vec<u8> {
        pb::Entry {
            body: self.body.clone(),
            signature: self.signature.to_vec(),
        }
        .encode_to_vec()
    }

    /// Decodes an envelope and checks every rule that needs no log state and
    /// no signature check: size, shape, deps cap, chain-start rules, HLC bound.
    pub fn decode(
        wire: &[u8],
        limits: &Limits,
        clock: &Hlc,
    ) -> Result<SignedEntry, ValidationError> {
        let e = Self::decode_shape(wire, limits)?;
        clock.check_drift(e.hlc)?;
        Ok(e)
    }

    /// The rules of [`decode`](Self::decode) that do not depend on when the
    /// entry arrives: for entries already in the log, whose HLC may be far
    /// behind or (after a clock correction) ahead of ours.
    pub fn decode_shape(wire: &[u8], limits: &Limits) -> Result<SignedEntry, ValidationError> {
        if wire.len() > limits.max_entry_bytes {
            return Err(ValidationError::TooLarge {
                size: wire.len(),
                max: limits.max_entry_bytes,
            });
        }
        let env = pb::Entry::decode(wire).map_err(|e| ValidationError::Malformed(e.to_string()))?;
        let b = pb::EntryBody::decode(env.body.as_slice())
            .map_err(|e| ValidationError::Malformed(e.to_string()))?;
        if b.causal_deps.len() > limits.max_deps {
            return Err(ValidationError::TooManyDeps {
                count: b.causal_deps.len(),
                max: limits.max_deps,
            });
        }
        let field = |name: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(ValidationError::BadField(name))
            }
        };
        let store =
            StoreId::from_slice(&b.store_id).ok_or(ValidationError::BadField("store_id"))?;
        let author = AuthorId::from_slice(&b.author).ok_or(ValidationError::BadField("author"))?;
        let prev =
            EntryId::from_slice(&b.prev_hash).ok_or(ValidationError::BadField("prev_hash"))?;
        let signature: [u8; 64] = env
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| ValidationError::BadField("signature"))?;
        let mut deps = Vec::with_capacity(b.causal_deps.len());
        for d in &b.causal_deps {
            deps.push(EntryId::from_slice(d).ok_or(ValidationError::BadField("causal_deps"))?);
        }
        let mut sorted = deps.clone();
        sorted.sort_unstable();
        sorted.dedup();
        field("causal_deps (duplicate id)", sorted.len() == deps.len())?;
        if b.seq == 0 {
            return Err(ValidationError::SeqZero);
        }
        if (b.seq == 1) != (prev == EntryId::ZERO) {
            return Err(ValidationError::ChainStart { seq: b.seq });
        }
        Ok(SignedEntry {
            id: EntryId(*blake3::hash(&env.body).as_bytes()),
            store,
            author,
            seq: b.seq,
            prev,
            hlc: b.hlc,
            deps,
            payload: b.payload,
            body: env.body,
            signature,
        })
    }

    /// Strict single verification (`verify_strict`).
    pub fn verify(&self) -> Result<(), ValidationError> {
        let key = verifying_key(&self.author)?;
        key.verify_strict(
            &signed_message(&self.body),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| ValidationError::BadSignature)
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_DOMAIN.len() + body.len());
    m.extend_from_slice(SIGNING_DOMAIN);
    m.extend_from_slice(body);
    m
}

fn verifying_key(author: &AuthorId) -> Result<VerifyingKey, ValidationError> {
    let key = VerifyingKey::from_bytes(&author.0).map_err(|_| ValidationError::BadSignature)?;
    if key.is_weak() {
        return Err(ValidationError::WeakKey);
    }
    Ok(key)
}

/// Verifies many signatures using ed25519 batch verification, split across
/// the available cores. A batch that fails is re-checked one by one, so each
/// entry gets its own verdict and one forged entry cannot sink its batch.
pub fn verify_all(entries: &[SignedEntry]) -> Vec<Result<(), ValidationError>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    if entries.len() < 64 || threads == 1 {
        return verify_chunk(entries);
    }
    let chunk = entries.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|c| s.spawn(move || verify_chunk(c)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signature verification thread panicked"))
            .collect()
    })
}

fn verify_chunk(entries: &[SignedEntry]) -> Vec<Result<(), ValidationError>> {
    const BATCH: usize = 64;
    let mut out = Vec::with_capacity(entries.len());
    // Decompressing a key is a square root on the curve, a tenth of a
    // verification: an author's key is decompressed once per chunk, not
    // once per entry (a catch-up carries many entries per author).
    let mut known: std::collections::HashMap<AuthorId, VerifyingKey> =
        std::collections::HashMap::new();
    for group in entries.chunks(BATCH) {
        let keys: Result<Vec<VerifyingKey>, _> = group
            .iter()
            .map(|e| match known.get(&e.author) {
                Some(k) => Ok(*k),
                None => {
                    let k = verifying_key(&e.author)?;
                    known.insert(e.author, k);
                    Ok::<_, ValidationError>(k)
                }
            })
            .collect();
        if let Ok(keys) = keys {
            let msgs: Vec<Vec<u8>> = group.iter().map(|e| signed_message(&e.body)).collect();
            let msg_refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
            let sigs: Vec<Signature> = group
                .iter()
                .map(|e| Signature::from_bytes(&e.signature))
                .collect();
            if ed25519_dalek::verify_batch(&msg_refs, &sigs, &keys).is_ok() {
                out.extend(group.iter().map(|_| Ok(())));
                continue;
            }
        }
        out.extend(group.iter().map(SignedEntry::verify));
    }
    out
}
