//! What a gossip message says, checked before anything acts on it.
//!
//! Every topic message comes from a member's gossip actor, which relays what
//! others broadcast, so its bytes are as hostile as a sync frame. [`parse`]
//! is the one decoder the receive loop uses; it is public so the fuzz
//! target (`fuzz/fuzz_targets/net_frames.rs`) drives the same function.

use lattice_kernel::{EntryId, StoreId};
use prost::Message;

use crate::pb;
use crate::presence::{Beacon, BeaconError, check_beacon};

/// A gossip message that passed its checks.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A new entry `id` of the topic's store; `entry` holds its wire bytes
    /// when they fitted in the message (the envelope decodes and names the
    /// store), else the receiver fetches it by sync.
    Announce { id: EntryId, entry: Option<Vec<u8>> },
    /// A presence beacon whose signature checks out for its author.
    Presence(Beacon),
}

/// Why a gossip message was dropped; each names the broken rule.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GossipReject {
    #[error("gossip message does not decode: {0}")]
    Undecodable(String),
    #[error("gossip message of no known kind")]
    UnknownKind,
    #[error("announcement for another store on this topic")]
    OtherStore,
    #[error("announced entry id is {0} bytes, not 32")]
    BadEntryId(usize),
    #[error("announced entry is malformed or of another store: {0}")]
    BadEntry(String),
    #[error("presence beacon dropped: {0}")]
    Beacon(#[from] BeaconError),
}

/// Decodes and checks one message received on `store`'s topic.
pub fn parse(content: &[u8], store: &StoreId) -> Result<Inbound, GossipReject> {
    let msg = pb::Gossip::decode(content).map_err(|e| GossipReject::Undecodable(e.to_string()))?;
    match msg.kind.ok_or(GossipReject::UnknownKind)? {
        pb::gossip::Kind::Announce(a) => {
            if a.store_id != store.0 {
                return Err(GossipReject::OtherStore);
            }
            let id = EntryId::from_slice(&a.entry_id)
                .ok_or(GossipReject::BadEntryId(a.entry_id.len()))?;
            if a.entry.is_empty() {
                return Ok(Inbound::Announce { id, entry: None });
            }
            crate::sync::check_store(&a.entry, store)
                .map_err(|e| GossipReject::BadEntry(e.to_string()))?;
            Ok(Inbound::Announce {
                id,
                entry: Some(a.entry),
            })
        }
        pb::gossip::Kind::Presence(p) => Ok(Inbound::Presence(check_beacon(&p, store)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce(store: StoreId, id: Vec<u8>, entry: Vec<u8>) -> Vec<u8> {
        pb::Gossip {
            kind: Some(pb::gossip::Kind::Announce(pb::Announce {
                store_id: store.0.to_vec(),
                entry_id: id,
                entry,
                ..Default::default()
            })),
        }
        .encode_to_vec()
    }

    #[test]
    fn each_broken_rule_has_its_reject() {
        let s = StoreId([1; 16]);
        assert_eq!(
            parse(&announce(s, vec![2; 32], vec![]), &s),
            Ok(Inbound::Announce {
                id: EntryId([2; 32]),
                entry: None
            })
        );
        assert_eq!(
            parse(&announce(StoreId([9; 16]), vec![2; 32], vec![]), &s),
            Err(GossipReject::OtherStore)
        );
        assert_eq!(
            parse(&announce(s, vec![2; 5], vec![]), &s),
            Err(GossipReject::BadEntryId(5))
        );
        assert!(matches!(
            parse(&announce(s, vec![2; 32], vec![0xff; 3]), &s),
            Err(GossipReject::BadEntry(_))
        ));
        assert!(matches!(
            parse(&[0xff; 4], &s),
            Err(GossipReject::Undecodable(_))
        ));
        assert_eq!(parse(&[], &s), Err(GossipReject::UnknownKind));
        let beacon = pb::Gossip {
            kind: Some(pb::gossip::Kind::Presence(pb::Presence::default())),
        };
        assert_eq!(
            parse(&beacon.encode_to_vec(), &s),
            Err(GossipReject::Beacon(BeaconError::Malformed))
        );
    }
}
