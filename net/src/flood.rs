//! Flood control on the sync ALPN: a bound, per peer, on the requests we
//! serve at once and on those we let wait.
//!
//! QUIC caps the streams one connection may have open (100), but a peer
//! may open many connections, and every stream we accept costs a task, a
//! kernel snapshot and, for a sync, a plan of what to send. So each peer
//! (by endpoint id, across all its connections) gets
//! [`NetConfig::peer_streams`](crate::NetConfig::peer_streams) requests
//! served at once and as many again waiting for one of those slots, for at
//! most the I/O deadline. A stream past both is reset at once with
//! [`BUSY`], and so is one whose wait runs out: the peer learns it asked
//! too much, our tasks stay bounded, and other peers' slots are untouched.
//! Honest nodes stay far below the bound (one sync per store at a time
//! per peer, debounced); a refused request is retried by anti-entropy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lattice_kernel::AuthorId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// QUIC application error code of a stream reset because its peer has too
/// many requests in flight (protocol violations close the connection with
/// code 1).
pub const BUSY: u32 = 2;

struct Slots {
    serving: Arc<Semaphore>,
    /// Streams admitted: served plus waiting; at most twice the bound.
    admitted: usize,
}

/// Per-peer slots; a peer's entry lives while it has admitted streams.
pub(crate) struct PeerSlots {
    bound: usize,
    peers: Mutex<HashMap<AuthorId, Slots>>,
}

/// A stream's place: held while it is served, frees the slot on drop.
pub(crate) struct Slot<'a> {
    owner: &'a PeerSlots,
    peer: AuthorId,
    _permit: OwnedSemaphorePermit,
}

impl PeerSlots {
    pub(crate) fn new(bound: usize) -> Self {
        PeerSlots {
            bound: bound.max(1),
            peers: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AuthorId, Slots>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A serving slot for one stream of `peer`, waiting at most `wait`;
    /// `None`: the peer is over its bound (reset the stream with [`BUSY`]).
    pub(crate) async fn enter(&self, peer: AuthorId, wait: Duration) -> Option<Slot<'_>> {
        let serving = {
            let mut peers = self.lock();
            let s = peers.entry(peer).or_insert_with(|| Slots {
                serving: Arc::new(Semaphore::new(self.bound)),
                admitted: 0,
            });
            if s.admitted >= 2 * self.bound {
                return None;
            }
            s.admitted += 1;
            Arc::clone(&s.serving)
        };
        match tokio::time::timeout(wait, serving.acquire_owned()).await {
            Ok(Ok(permit)) => Some(Slot {
                owner: self,
                peer,
                _permit: permit,
            }),
            _ => {
                self.leave(&peer);
                None
            }
        }
    }

    fn leave(&self, peer: &AuthorId) {
        let mut peers = self.lock();
        if let Some(s) = peers.get_mut(peer) {
            s.admitted -= 1;
            if s.admitted == 0 {
                peers.remove(peer);
            }
        }
    }

    /// Streams of `peer` admitted now (served or waiting).
    #[cfg(test)]
    fn admitted(&self, peer: &AuthorId) -> usize {
        self.lock().get(peer).map_or(0, |s| s.admitted)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.owner.leave(&self.peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_peer_gets_its_bound_and_others_are_untouched() {
        let slots = PeerSlots::new(2);
        let (x, y) = (AuthorId([1; 32]), AuthorId([2; 32]));
        let wait = Duration::from_millis(20);
        let a = slots.enter(x, wait).await.unwrap();
        let b = slots.enter(x, wait).await.unwrap();
        // Both serving slots are taken: a third waits, then gives up.
        assert!(slots.enter(x, wait).await.is_none());
        assert_eq!(slots.admitted(&x), 2);
        // Another peer is served at once.
        let c = slots.enter(y, wait).await.unwrap();
        drop((a, b, c));
        assert_eq!(slots.admitted(&x), 0);
        assert!(slots.lock().is_empty(), "idle peers leave no entry");
    }
}
