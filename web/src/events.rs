//! Live ops as Server-Sent Events: `GET /api/events[?store=NAME]`.
//!
//! A `ready` event says the subscription is in place (an op committed
//! after it is delivered). Each committed op of the store (or of every store the token reaches)
//! is one `op` event whose data is one JSON object: the store, the log
//! entry and the op decoded with the plugin's op type. The token is checked
//! when the stream opens (a bad one gets 401/403 as a status, not a broken
//! stream) and again every half second while it runs: a revoked or expired
//! token ends its streams with one `revoked` event.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use lattice_host::api::access;
use lattice_host::api::{Request, Response, service};
use lattice_kernel::StoreId;
use prost_reflect::MessageDescriptor;
use serde::Deserialize;
use serde_json::json;

use crate::api::{App, bearer, blocking};
use crate::error::ApiError;
use crate::proto;

/// Events a slow subscriber may fall behind by before it is cut off (it
/// reconnects and reads the log for what it missed).
const BACKLOG: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    #[serde(default)]
    store: Option<String>,
}

pub async fn stream(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let auth = bearer(&headers);
    let node = app.node.clone();
    let check = auth.clone();
    let store = blocking(move || {
        let token = access::authenticate(&node, check.as_deref())?;
        let allowed = access::authorize(&node, &token, Request::Watch { store: q.store })?;
        match allowed.req {
            Request::Watch { store } => Ok(store),
            _ => Err(ApiError::internal("watch authorized as something else")),
        }
    })
    .await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(BACKLOG);
    let node = app.node.clone();
    tokio::task::spawn_blocking(move || {
        let mut op_types: HashMap<String, Option<MessageDescriptor>> = HashMap::new();
        let mut ready = false;
        let r = service::watch(&node, store.as_deref(), |resp| match resp {
            Response::Event { store, entry } => {
                let t = op_types.entry(store.id.clone()).or_insert_with(|| {
                    StoreId::from_uuid(&store.id)
                        .and_then(|id| node.registry().get(&id))
                        .map(|h| h.plugin.info().op_type.clone())
                });
                let op = t
                    .as_ref()
                    .map(|t| proto::decode(t, &entry.payload.0))
                    .unwrap_or_default();
                let data = json!({ "store": store, "entry": entry, "op": op });
                // A subscriber that cannot keep up is cut off rather than
                // let the backlog grow without bound.
                tx.try_send(Event::default().event("op").data(data.to_string()))
                    .is_ok()
            }
            Response::Ok => {
                if !ready {
                    // The first heartbeat: subscribed, nothing is missed now.
                    ready = true;
                    return tx
                        .try_send(Event::default().event("ready").data("{}"))
                        .is_ok();
                }
                if tx.is_closed() {
                    return false;
                }
                if access::authenticate(&node, auth.as_deref()).is_err() {
                    let _ = tx.try_send(Event::default().event("revoked").data("{}"));
                    return false;
                }
                true
            }
            _ => true,
        });
        if let Err(e) = r {
            tracing::debug!(error = %e, "web: event stream ended");
        }
    });
    let s = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok)));
    Ok(Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))))
}
