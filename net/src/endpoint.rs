//! The offline-first Iroh endpoint.
//!
//! Defaults follow `/work/shared/notes/iroh-offline.md`: the `Minimal`
//! preset, relays disabled, no port mapping, a minimal net report and a
//! [`MemoryLookup`] filled from what we know (invites, join grants,
//! `add_peer`). Nothing leaves the machine's chosen interface unless the
//! caller opts in to relays or public lookup: a local-first node must work
//! with no internet and must not leak its presence by default.

use std::net::SocketAddr;

use iroh::address_lookup::{DnsAddressLookup, MemoryLookup, PkarrPublisher};
use iroh::endpoint::{PortmapperConfig, presets};
use iroh::{Endpoint, EndpointAddr, NetReportConfig, RelayMode, SecretKey};
use lattice_kernel::AuthorId;

use crate::NetConfig;
use crate::error::{NetError, Result};

/// Binds an endpoint whose key is the node's signing key, so the Iroh
/// endpoint id and the author id are the same 32 bytes.
pub(crate) async fn bind(
    secret: [u8; 32],
    config: &NetConfig,
    lookup: MemoryLookup,
    gate: crate::admission::GateHook,
) -> Result<Endpoint> {
    let mut builder = Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(&secret))
        .relay_mode(if config.relays {
            RelayMode::Default
        } else {
            RelayMode::Disabled
        })
        .clear_ip_transports()
        .bind_addr(config.bind_addr)
        .map_err(|e| NetError::Bind(format!("bind address {}: {e}", config.bind_addr)))?
        .portmapper_config(PortmapperConfig::Disabled)
        .address_lookup(lookup)
        .hooks(gate)
        .alpns(vec![crate::sync::ALPN.to_vec()]);
    if !config.relays && !config.public_lookup {
        builder = builder.net_report_config(NetReportConfig::minimal());
    }
    if config.public_lookup {
        builder = builder
            .address_lookup(PkarrPublisher::n0_dns())
            .address_lookup(DnsAddressLookup::n0_dns());
    }
    builder
        .bind()
        .await
        .map_err(|e| NetError::Bind(e.to_string()))
}

/// The addresses a peer can dial us at. A wildcard bind (0.0.0.0) is not
/// dialable, so it is replaced by the interface addresses Iroh found.
pub(crate) fn local_addrs(ep: &Endpoint) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = ep
        .bound_sockets()
        .into_iter()
        .filter(|a| !a.ip().is_unspecified())
        .collect();
    for a in ep.addr().ip_addrs() {
        if !a.ip().is_unspecified() && !out.contains(a) {
            out.push(*a);
        }
    }
    out
}

pub(crate) fn endpoint_id(author: &AuthorId) -> Result<iroh::EndpointId> {
    iroh::EndpointId::from_bytes(&author.0).map_err(|e| {
        NetError::Protocol(format!("author {author} is not a valid endpoint key: {e}"))
    })
}

pub(crate) fn author_of(id: &iroh::EndpointId) -> AuthorId {
    AuthorId(*id.as_bytes())
}

pub(crate) fn endpoint_addr(author: &AuthorId, addrs: &[SocketAddr]) -> Result<EndpointAddr> {
    let mut a = EndpointAddr::new(endpoint_id(author)?);
    for s in addrs {
        a = a.with_ip_addr(*s);
    }
    Ok(a)
}
