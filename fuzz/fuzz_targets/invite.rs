//! Invite tokens (`lattice1…`, base32 of a protobuf) as typed by a user or
//! pasted from anywhere: parsing never panics, every refusal is an
//! `InviteParseError`, and a token that parses prints back to a token that
//! parses to the same invite (and prints the same again).
#![no_main]

use lattice_fuzz::seed;
use lattice_kernel::{AuthorId, StoreId};
use lattice_net::Invite;
use libfuzzer_sys::fuzz_target;

fn seeds() -> Vec<Vec<u8>> {
    let invite = |addrs: &[&str], expires_ms| Invite {
        mesh_id: StoreId([3; 16]),
        inviter: AuthorId([9; 32]),
        addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        secret: [5; 32],
        expires_ms,
    };
    let tokens = [
        invite(&["127.0.0.1:4433"], 0),
        invite(&["127.0.0.1:4433", "[::1]:9"], 1_764_000_000_000),
        invite(&[], u64::MAX),
    ];
    let mut out: Vec<Vec<u8>> = tokens.iter().map(|t| t.to_text().into_bytes()).collect();
    out.push(tokens[0].to_text().to_uppercase().into_bytes());
    out.push(format!("  {}\n", tokens[1]).into_bytes());
    out
}

fuzz_target!(init: seed(seeds), |data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(invite) = Invite::parse(&text) else {
        return;
    };
    let printed = invite.to_text();
    let again = Invite::parse(&printed).expect("a printed token parses");
    assert_eq!(again, invite, "a token round-trips");
    assert_eq!(again.to_text(), printed, "printing is canonical");
});
