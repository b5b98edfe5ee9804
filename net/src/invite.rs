//! Invite tokens: everything a new node needs to join a mesh with no
//! discovery service, including *dialable addresses* of the inviter (an
//! invite without them cannot work offline; see lessons-from-peers).
//!
//! Text form: `lattice1` followed by unpadded lowercase RFC 4648 base32 of
//! the `InviteToken` protobuf. Base32 survives copy-paste, URLs and case
//! folding, and the prefix makes a token recognisable and versioned.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use lattice_kernel::{AuthorId, StoreId};
use prost::Message;

use crate::pb;

pub const INVITE_PREFIX: &str = "lattice1";
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// An invitation to join the mesh whose root store is `mesh_id`.
#[derive(Clone, PartialEq, Eq)]
pub struct Invite {
    pub mesh_id: StoreId,
    pub inviter: AuthorId,
    pub addrs: Vec<SocketAddr>,
    /// Proof of the invitation; whoever holds the token can redeem it once.
    pub secret: [u8; 32],
    /// Unix ms after which the inviter refuses it; 0 = no expiry.
    pub expires_ms: u64,
}

impl fmt::Debug for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("Invite")
            .field("mesh_id", &self.mesh_id)
            .field("inviter", &self.inviter)
            .field("addrs", &self.addrs)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

/// Why a token's text does not parse; each names the broken rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteParseError {
    #[error("an invite token starts with \"{INVITE_PREFIX}\"")]
    MissingPrefix,
    #[error("character {0:?} is not in the base32 alphabet a-z 2-7")]
    BadChar(char),
    #[error("the base32 text has a length no encoder produces (truncated?)")]
    BadLength,
    #[error("the token's payload does not decode: {0}")]
    Malformed(String),
    #[error("the token's {0} field has the wrong length or shape")]
    BadField(&'static str),
}

impl Invite {
    /// A fresh random 32-byte secret for a new invite.
    pub fn new_secret() -> [u8; 32] {
        let mut s = [0u8; 32];
        getrandom::fill(&mut s).expect("the OS random source must be available");
        s
    }

    pub fn to_text(&self) -> String {
        let msg = pb::InviteToken {
            mesh_id: self.mesh_id.0.to_vec(),
            inviter: self.inviter.0.to_vec(),
            addrs: self.addrs.iter().map(|a| a.to_string()).collect(),
            secret: self.secret.to_vec(),
            expires_ms: self.expires_ms,
        };
        format!("{INVITE_PREFIX}{}", base32_encode(&msg.encode_to_vec()))
    }

    pub fn parse(text: &str) -> Result<Invite, InviteParseError> {
        let text = text.trim();
        let body = text
            .strip_prefix(INVITE_PREFIX)
            .ok_or(InviteParseError::MissingPrefix)?;
        let bytes = base32_decode(body)?;
        let t = pb::InviteToken::decode(bytes.as_slice())
            .map_err(|e| InviteParseError::Malformed(e.to_string()))?;
        let mut addrs = Vec::with_capacity(t.addrs.len());
        for a in &t.addrs {
            addrs.push(
                a.parse()
                    .map_err(|_| InviteParseError::BadField("address"))?,
            );
        }
        Ok(Invite {
            mesh_id: StoreId::from_slice(&t.mesh_id)
                .ok_or(InviteParseError::BadField("mesh_id"))?,
            inviter: AuthorId::from_slice(&t.inviter)
                .ok_or(InviteParseError::BadField("inviter"))?,
            addrs,
            secret: t
                .secret
                .as_slice()
                .try_into()
                .map_err(|_| InviteParseError::BadField("secret"))?,
            expires_ms: t.expires_ms,
        })
    }
}

impl fmt::Display for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl FromStr for Invite {
    type Err = InviteParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Invite::parse(s)
    }
}

fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn base32_decode(text: &str) -> Result<Vec<u8>, InviteParseError> {
    // Lengths mod 8 of 1, 3 or 6 characters never come out of the encoder.
    if matches!(text.len() % 8, 1 | 3 | 6) {
        return Err(InviteParseError::BadLength);
    }
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.chars() {
        let v = match c.to_ascii_lowercase() {
            l @ 'a'..='z' => l as u32 - 'a' as u32,
            d @ '2'..='7' => d as u32 - '2' as u32 + 26,
            other => return Err(InviteParseError::BadChar(other)),
        };
        acc = ((acc << 5) | v) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_roundtrips_every_length() {
        for n in 0..40usize {
            let data: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
            assert_eq!(
                base32_decode(&base32_encode(&data)).unwrap(),
                data,
                "len {n}"
            );
        }
    }

    #[test]
    fn token_roundtrip_and_errors() {
        let inv = Invite {
            mesh_id: StoreId::random(),
            inviter: AuthorId([7; 32]),
            addrs: vec![
                "127.0.0.1:4000".parse().unwrap(),
                "[::1]:5".parse().unwrap(),
            ],
            secret: Invite::new_secret(),
            expires_ms: 1234,
        };
        let text = inv.to_text();
        assert!(text.starts_with("lattice1"));
        assert_eq!(Invite::parse(&text).unwrap(), inv);
        assert_eq!(
            Invite::parse(&text.to_uppercase().replacen("LATTICE1", "lattice1", 1)).unwrap(),
            inv
        );
        assert_eq!(Invite::parse("nope"), Err(InviteParseError::MissingPrefix));
        assert_eq!(
            Invite::parse("lattice1ab!c"),
            Err(InviteParseError::BadChar('!'))
        );
        assert!(matches!(
            Invite::parse(&text[..text.len() - 9]),
            Err(InviteParseError::Malformed(_) | InviteParseError::BadLength)
        ));
        // A well-formed message with a short secret names the field.
        let bad = pb::InviteToken {
            mesh_id: inv.mesh_id.0.to_vec(),
            inviter: inv.inviter.0.to_vec(),
            addrs: vec![],
            secret: vec![1, 2, 3],
            expires_ms: 0,
        };
        let t = format!("lattice1{}", base32_encode(&bad.encode_to_vec()));
        assert_eq!(Invite::parse(&t), Err(InviteParseError::BadField("secret")));
    }
}
