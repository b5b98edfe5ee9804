//! The one-shot requests on the sync ALPN: blob fetch and invite
//! redemption.

use std::net::SocketAddr;
use std::sync::Arc;

use iroh::endpoint::SendStream;
use lattice_kernel::{AuthorId, StoreId, now_ms};

use super::{blocking, open};
use crate::JoinGrant;
use crate::endpoint::local_addrs;
use crate::error::{NetError, Result};
use crate::frame;
use crate::invite::Invite;
use crate::net::Inner;
use crate::pb;

/// Blob bytes per frame: small enough to keep frames far under the limit.
const BLOB_CHUNK: usize = 256 * 1024;

/// Fetches a blob and checks its blake3 hash before returning it.
pub(crate) async fn fetch_blob(
    inner: &Arc<Inner>,
    peer: AuthorId,
    hash: [u8; 32],
) -> Result<Vec<u8>> {
    use pb::blob_frame::Kind as BF;
    let (max, io) = (inner.config.max_frame, inner.config.io_timeout);
    let (mut send, mut recv) = open(inner, &peer).await?;
    let req = pb::Request {
        kind: Some(pb::request::Kind::Blob(pb::BlobRequest {
            hash: hash.to_vec(),
        })),
    };
    frame::write(&mut send, &req, io, "blob request").await?;
    let _ = send.finish();
    let hex = |h: &[u8; 32]| lattice_kernel::EntryId(*h).to_hex();
    let (first, _) = frame::read::<pb::BlobFrame>(&mut recv, max, io, "blob header").await?;
    let size = match first.kind {
        Some(BF::Size(s)) => s,
        Some(BF::Error(e)) => {
            return Err(NetError::BlobUnavailable {
                hash: hex(&hash),
                reason: e,
            });
        }
        other => {
            return Err(NetError::Protocol(format!(
                "expected blob size, got {other:?}"
            )));
        }
    };
    if size > inner.config.max_blob {
        return Err(NetError::BlobTooLarge {
            size,
            max: inner.config.max_blob,
        });
    }
    let mut data = Vec::with_capacity(size as usize);
    while (data.len() as u64) < size {
        let (f, _) = frame::read::<pb::BlobFrame>(&mut recv, max, io, "blob chunk").await?;
        match f.kind {
            Some(BF::Chunk(c)) if data.len() as u64 + c.len() as u64 <= size => {
                data.extend_from_slice(&c)
            }
            Some(BF::Chunk(_)) => {
                return Err(NetError::Protocol(
                    "blob chunks exceed the announced size".into(),
                ));
            }
            other => {
                return Err(NetError::Protocol(format!(
                    "expected blob chunk, got {other:?}"
                )));
            }
        }
    }
    let got = *blake3::hash(&data).as_bytes();
    if got != hash {
        return Err(NetError::BlobHashMismatch {
            want: hex(&hash),
            got: hex(&got),
        });
    }
    inner.touch(&peer);
    Ok(data)
}

fn parse_addrs(addrs: &[String]) -> Vec<SocketAddr> {
    addrs.iter().filter_map(|a| a.parse().ok()).collect()
}

/// Redeems an invite with its inviter; members of the grant become peers.
pub(crate) async fn join(inner: &Arc<Inner>, invite: &Invite) -> Result<JoinGrant> {
    use pb::join_response::Kind as JR;
    let now = now_ms();
    if invite.expires_ms != 0 && now > invite.expires_ms {
        return Err(NetError::InviteExpired {
            expires_ms: invite.expires_ms,
            now_ms: now,
        });
    }
    if invite.addrs.is_empty() {
        return Err(NetError::UnknownPeer {
            peer: invite.inviter,
        });
    }
    let (max, io) = (inner.config.max_frame, inner.config.io_timeout);
    inner.add_peer(invite.inviter, &invite.addrs);
    let (mut send, mut recv) = open(inner, &invite.inviter).await?;
    let req = pb::Request {
        kind: Some(pb::request::Kind::Join(pb::JoinRequest {
            secret: invite.secret.to_vec(),
            addrs: local_addrs(&inner.endpoint)
                .iter()
                .map(|a| a.to_string())
                .collect(),
        })),
    };
    frame::write(&mut send, &req, io, "join request").await?;
    let _ = send.finish();
    let (resp, _) = frame::read::<pb::JoinResponse>(&mut recv, max, io, "join response").await?;
    let g = match resp.kind {
        Some(JR::Grant(g)) => g,
        Some(JR::Error(e)) => return Err(NetError::JoinRefused(e)),
        None => return Err(NetError::Protocol("empty join response".into())),
    };
    let mesh_id = StoreId::from_slice(&g.mesh_id)
        .ok_or_else(|| NetError::Protocol("grant mesh id is not 16 bytes".into()))?;
    let mut members = Vec::with_capacity(g.members.len());
    for m in &g.members {
        let id = AuthorId::from_slice(&m.author)
            .ok_or_else(|| NetError::Protocol("grant member id is not 32 bytes".into()))?;
        let addrs = parse_addrs(&m.addrs);
        inner.add_peer(id, &addrs);
        members.push((id, addrs));
    }
    let founder = AuthorId::from_slice(&g.founder)
        .ok_or_else(|| NetError::Protocol("grant founder is not 32 bytes".into()))?;
    let mesh_secret: [u8; 32] = g
        .mesh_secret
        .as_slice()
        .try_into()
        .map_err(|_| NetError::Protocol("grant mesh secret is not 32 bytes".into()))?;
    inner.touch(&invite.inviter);
    Ok(JoinGrant {
        mesh_id,
        founder,
        mesh_secret,
        members,
    })
}

pub(super) async fn serve_blob(
    inner: &Arc<Inner>,
    peer: AuthorId,
    send: &mut SendStream,
    req: pb::BlobRequest,
) -> Result<()> {
    use pb::blob_frame::Kind as BF;
    let io = inner.config.io_timeout;
    let hash: [u8; 32] = req
        .hash
        .as_slice()
        .try_into()
        .map_err(|_| NetError::Protocol("blob hash is not 32 bytes".into()))?;
    // Blobs are served to members of any of our stores only.
    let member = inner.gate.member_of_any(&peer);
    let data = if member {
        let blobs = Arc::clone(&inner.blobs);
        blocking(move || blobs.blob(hash)).await?
    } else {
        tracing::warn!(peer = %peer, "blob refused: not a member of any store");
        None
    };
    match data {
        None => {
            let reason = if member {
                "blob not found"
            } else {
                "not a member"
            };
            let f = pb::BlobFrame {
                kind: Some(BF::Error(reason.into())),
            };
            frame::write(send, &f, io, "blob refusal").await?;
        }
        Some(d) => {
            let f = pb::BlobFrame {
                kind: Some(BF::Size(d.len() as u64)),
            };
            frame::write(send, &f, io, "blob header").await?;
            for c in d.chunks(BLOB_CHUNK) {
                let f = pb::BlobFrame {
                    kind: Some(BF::Chunk(c.to_vec())),
                };
                frame::write(send, &f, io, "blob chunk").await?;
            }
        }
    }
    let _ = send.finish();
    Ok(())
}

pub(super) async fn serve_join(
    inner: &Arc<Inner>,
    peer: AuthorId,
    send: &mut SendStream,
    req: pb::JoinRequest,
) -> Result<()> {
    use pb::join_response::Kind as JR;
    let io = inner.config.io_timeout;
    let secret: [u8; 32] = req
        .secret
        .as_slice()
        .try_into()
        .map_err(|_| NetError::Protocol("invite secret is not 32 bytes".into()))?;
    let invites = Arc::clone(&inner.invites);
    let verdict = blocking(move || invites.redeem(secret, peer)).await?;
    let kind = match verdict {
        Ok(g) => {
            inner.add_peer(peer, &parse_addrs(&req.addrs));
            tracing::info!(joiner = %peer, mesh = %g.mesh_id, "invite redeemed");
            JR::Grant(pb::JoinGrant {
                mesh_id: g.mesh_id.0.to_vec(),
                founder: g.founder.0.to_vec(),
                mesh_secret: g.mesh_secret.to_vec(),
                members: g
                    .members
                    .iter()
                    .map(|(a, addrs)| pb::Member {
                        author: a.0.to_vec(),
                        addrs: addrs.iter().map(|s| s.to_string()).collect(),
                    })
                    .collect(),
            })
        }
        Err(why) => {
            tracing::warn!(joiner = %peer, reason = %why, "invite refused");
            JR::Error(why)
        }
    };
    frame::write(
        send,
        &pb::JoinResponse { kind: Some(kind) },
        io,
        "join response",
    )
    .await?;
    let _ = send.finish();
    Ok(())
}
