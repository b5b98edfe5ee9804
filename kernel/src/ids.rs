//! Fixed-size identifiers. Newtypes so a store id can never be passed where an
//! entry id is expected, and so every boundary checks lengths once.

use std::fmt;

macro_rules! fixed_id {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            /// Parses exactly `LEN` bytes; `None` for any other length.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(bytes).ok().map(Self)
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            pub fn to_hex(&self) -> String {
                hex(&self.0)
            }

            /// Parses lowercase or uppercase hex of exactly `LEN` bytes.
            pub fn from_hex(s: &str) -> Option<Self> {
                let bytes = unhex(s)?;
                Self::from_slice(&bytes)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.to_hex()[..12.min(2 * $len)])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

fixed_id!(
    /// blake3 of an entry's body bytes.
    EntryId,
    32
);
fixed_id!(
    /// An author's ed25519 public key; the same key is the node's Iroh id.
    AuthorId,
    32
);
fixed_id!(
    /// A store (one replicated state machine instance), a random UUID.
    StoreId,
    16
);

impl EntryId {
    /// The all-zero id used as `prev_hash` of an author's first entry.
    pub const ZERO: EntryId = EntryId([0; 32]);
}

impl StoreId {
    /// A fresh random store id (UUID v4 layout).
    pub fn random() -> Self {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).expect("the OS random source must be available");
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        StoreId(b)
    }

    /// Canonical UUID text form (8-4-4-4-12).
    pub fn to_uuid(&self) -> String {
        let h = self.to_hex();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// Parses the UUID text form, with or without dashes.
    pub fn from_uuid(s: &str) -> Option<Self> {
        Self::from_hex(&s.replace('-', ""))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// An order-independent digest of a set: the sum of members' 32-byte hashes as
/// 256-bit little-endian integers, mod 2^256. Adding the same members in any
/// order gives the same value, and removal is subtraction, so it can be kept
/// incrementally in one row instead of rehashing the whole set.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct SetDigest(pub [u8; 32]);

impl SetDigest {
    pub fn add(&mut self, member: &[u8; 32]) {
        let mut carry = 0u16;
        for i in 0..32 {
            let s = self.0[i] as u16 + member[i] as u16 + carry;
            self.0[i] = s as u8;
            carry = s >> 8;
        }
    }

    pub fn sub(&mut self, member: &[u8; 32]) {
        let mut borrow = 0i16;
        for i in 0..32 {
            let mut d = self.0[i] as i16 - member[i] as i16 - borrow;
            borrow = if d < 0 {
                d += 256;
                1
            } else {
                0
            };
            self.0[i] = d as u8;
        }
    }

    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_add_sub_is_order_independent() {
        let a = *blake3::hash(b"a").as_bytes();
        let b = *blake3::hash(b"b").as_bytes();
        let mut x = SetDigest::default();
        x.add(&a);
        x.add(&b);
        let mut y = SetDigest::default();
        y.add(&b);
        y.add(&a);
        assert_eq!(x, y);
        y.sub(&a);
        let mut z = SetDigest::default();
        z.add(&b);
        assert_eq!(y, z);
        z.sub(&b);
        assert_eq!(z, SetDigest::default());
    }

    #[test]
    fn uuid_roundtrip() {
        let s = StoreId::random();
        assert_eq!(StoreId::from_uuid(&s.to_uuid()), Some(s));
        assert_eq!(s.to_uuid().len(), 36);
    }
}
