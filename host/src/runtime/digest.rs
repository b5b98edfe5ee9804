//! The order-independent state digest.
//!
//! Two replicas that applied the same set of ops must be able to compare their
//! plugin state cheaply, whatever order the ops arrived in. A *sum* of
//! per-pair hashes (as 256-bit little-endian integers, mod 2^256) is
//! commutative, so the digest depends only on the final set of pairs, and it
//! can be maintained incrementally: add a pair's hash on insert, subtract the
//! old pair's hash on overwrite or remove. A plain hash over the sorted table
//! would need a full scan per op.

/// The hash of one `(key, value)` pair: `blake3(u32_le(len(key)) ‖ key ‖ value)`.
///
/// The length prefix keeps `("ab", "c")` and `("a", "bc")` apart.
pub fn pair_hash(key: &[u8], value: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&(key.len() as u32).to_le_bytes());
    h.update(key);
    h.update(value);
    *h.finalize().as_bytes()
}

fn limbs(x: &[u8; 32]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (i, limb) in out.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&x[i * 8..i * 8 + 8]);
        *limb = u64::from_le_bytes(b);
    }
    out
}

fn bytes(l: [u64; 4]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, limb) in l.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&limb.to_le_bytes());
    }
    out
}

/// `a + b mod 2^256`, both little-endian.
pub fn add(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let (x, y) = (limbs(a), limbs(b));
    let mut out = [0u64; 4];
    let mut carry = false;
    for i in 0..4 {
        let (s1, c1) = x[i].overflowing_add(y[i]);
        let (s2, c2) = s1.overflowing_add(carry as u64);
        out[i] = s2;
        carry = c1 || c2;
    }
    bytes(out)
}

/// `a - b mod 2^256`, both little-endian.
pub fn sub(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let (x, y) = (limbs(a), limbs(b));
    let mut out = [0u64; 4];
    let mut borrow = false;
    for i in 0..4 {
        let (d1, b1) = x[i].overflowing_sub(y[i]);
        let (d2, b2) = d1.overflowing_sub(borrow as u64);
        out[i] = d2;
        borrow = b1 || b2;
    }
    bytes(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_then_sub_is_identity_with_carries() {
        let a = [0xffu8; 32];
        let mut one = [0u8; 32];
        one[0] = 1;
        // 2^256 - 1 + 1 wraps to zero, carrying through every limb.
        assert_eq!(add(&a, &one), [0u8; 32]);
        assert_eq!(sub(&[0u8; 32], &one), a);
        let h = pair_hash(b"k", b"v");
        assert_eq!(sub(&add(&a, &h), &h), a);
    }

    #[test]
    fn sum_is_commutative_and_length_prefixed() {
        let (x, y, z) = (
            pair_hash(b"a", b"1"),
            pair_hash(b"b", b"2"),
            pair_hash(b"c", b"3"),
        );
        let zero = [0u8; 32];
        let s1 = add(&add(&add(&zero, &x), &y), &z);
        let s2 = add(&add(&add(&zero, &z), &x), &y);
        assert_eq!(s1, s2);
        assert_ne!(pair_hash(b"ab", b"c"), pair_hash(b"a", b"bc"));
    }
}
