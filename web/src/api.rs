//! The routes. Every API route is one request through the same three
//! steps, on a blocking thread (the node's calls block): the token is
//! checked and the request authorized (`api::access`, in the host), the
//! service answers it exactly as it answers the socket, and the answer is
//! returned as JSON (the socket API's own JSON, plus decoded plugin
//! messages where the socket carries bytes).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use axum::{Json, Router};
use lattice_host::api::access::{self, Allowed};
use lattice_host::api::{Hex, Request, Response, service};
use lattice_host::node::{Node, StoreHandle, TokenInfo};
use lattice_host::runtime::MethodInfo;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::{assets, events, guard, openapi, proto};

#[derive(Clone)]
pub struct App {
    pub node: Arc<Node>,
}

pub fn router(node: Arc<Node>) -> Router {
    let api = Router::new()
        .route("/login", post(login))
        .route("/whoami", get(whoami))
        .route("/node", get(node_status))
        .route("/meshes", get(meshes))
        .route("/meshes/{mesh}", get(mesh_status))
        .route("/invite", post(invite))
        .route("/join", post(join))
        .route("/peers", get(peers))
        .route("/stores", get(stores).post(store_create))
        .route("/stores/{store}", get(store_status))
        .route("/stores/{store}/digest", get(digest))
        .route("/stores/{store}/log", get(store_log))
        .route("/stores/{store}/presence", get(presence))
        .route("/stores/{store}/schema", get(schema))
        .route("/stores/{store}/sync", post(store_sync))
        .route("/stores/{store}/call/{method}", post(call))
        .route("/events", get(events::stream))
        .route("/openapi.json", get(openapi_doc))
        .fallback(|| async { ApiError::not_found("no such API route; see docs/web.md") });
    Router::new()
        .nest("/api", api)
        .merge(assets::routes())
        .layer(axum::middleware::from_fn(guard::guard))
        .with_state(App { node })
}

/// What one authorized request was served with.
pub struct Served {
    pub resp: Response,
    pub store: Option<StoreHandle>,
    pub method: Option<MethodInfo>,
}

pub fn bearer(h: &HeaderMap) -> Option<String> {
    h.get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Runs blocking node work off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("request worker failed: {e}")))?
}

/// The token this request carries, checked.
pub fn authenticate(node: &Node, h: &HeaderMap) -> Result<TokenInfo, ApiError> {
    Ok(access::authenticate(node, bearer(h).as_deref())?)
}

/// Authenticate, authorize, then `prepare` may fill in the request (a
/// call's body needs the method the access check resolved), then serve.
async fn serve_with(
    app: &App,
    headers: &HeaderMap,
    req: Request,
    prepare: impl FnOnce(&mut Allowed) -> Result<(), ApiError> + Send + 'static,
) -> Result<Served, ApiError> {
    let node = app.node.clone();
    let auth = bearer(headers);
    blocking(move || {
        let token = access::authenticate(&node, auth.as_deref())?;
        let mut allowed = access::authorize(&node, &token, req)?;
        prepare(&mut allowed)?;
        let resp = service::handle(&node, allowed.req, true);
        if let Response::Error { message, kind } = resp {
            return Err(ApiError::node(kind, message));
        }
        Ok(Served {
            resp,
            store: allowed.store,
            method: allowed.method,
        })
    })
    .await
}

async fn serve(app: &App, headers: &HeaderMap, req: Request) -> Result<Served, ApiError> {
    serve_with(app, headers, req, |_| Ok(())).await
}

fn json_of(resp: &Response) -> Json<Value> {
    Json(serde_json::to_value(resp).unwrap_or(Value::Null))
}

async fn plain(app: App, headers: HeaderMap, req: Request) -> Result<Json<Value>, ApiError> {
    Ok(json_of(&serve(&app, &headers, req).await?.resp))
}

/// A JSON body, with the API's error shape when it is not one.
fn body<T: for<'de> Deserialize<'de>>(b: &Bytes) -> Result<T, ApiError> {
    let b = if b.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        b
    };
    serde_json::from_slice(b).map_err(|e| ApiError::invalid(format!("request body: {e}")))
}

// ---- tokens ----

async fn login(State(app): State<App>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let node = app.node.clone();
    let auth = bearer(&headers);
    blocking(move || {
        let code = auth
            .as_deref()
            .and_then(|h| h.split_once(' '))
            .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
            .map(|(_, c)| c.trim().to_string())
            .ok_or_else(|| ApiError::unauthorized("POST /api/login takes Bearer <login code>"))?;
        let (info, secret) = node
            .token_redeem(&code)
            .map_err(|e| ApiError::unauthorized(e.to_string()))?;
        let mut v = serde_json::to_value(service::token_view(&info)).unwrap_or(Value::Null);
        v["token"] = json!(secret);
        Ok(Json(v))
    })
    .await
}

async fn whoami(State(app): State<App>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let node = app.node.clone();
    blocking(move || {
        let t = authenticate(&node, &headers)?;
        Ok(Json(
            serde_json::to_value(service::token_view(&t)).unwrap_or(Value::Null),
        ))
    })
    .await
}

// ---- node and meshes ----

async fn node_status(State(app): State<App>, h: HeaderMap) -> Result<Json<Value>, ApiError> {
    plain(app, h, Request::NodeStatus).await
}

async fn meshes(State(app): State<App>, h: HeaderMap) -> Result<Json<Value>, ApiError> {
    plain(app, h, Request::MeshList).await
}

/// `current` names the mesh `lattice mesh use` picked.
async fn mesh_status(
    State(app): State<App>,
    h: HeaderMap,
    Path(mesh): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mesh = Some(mesh).filter(|m| m != "current");
    plain(app, h, Request::MeshStatus { mesh }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    #[serde(default)]
    expires_secs: Option<u64>,
    #[serde(default)]
    mesh: Option<String>,
}

async fn invite(State(app): State<App>, h: HeaderMap, b: Bytes) -> Result<Json<Value>, ApiError> {
    let b: InviteBody = body(&b)?;
    let req = Request::MeshInvite {
        expires_secs: b.expires_secs.unwrap_or(3600),
        mesh: b.mesh,
    };
    plain(app, h, req).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    token: String,
}

async fn join(State(app): State<App>, h: HeaderMap, b: Bytes) -> Result<Json<Value>, ApiError> {
    let b: JoinBody = body(&b)?;
    let req = Request::MeshJoin {
        token: b.token,
        progress: false,
    };
    plain(app, h, req).await
}

async fn peers(State(app): State<App>, h: HeaderMap) -> Result<Json<Value>, ApiError> {
    plain(app, h, Request::MeshPeers).await
}

// ---- stores ----

/// The catalog, without descriptor bytes (`/schema` describes a store's
/// methods), and only the token's own store for a store-limited token.
async fn stores(State(app): State<App>, h: HeaderMap) -> Result<Json<Value>, ApiError> {
    let node = app.node.clone();
    let own = {
        let headers = h.clone();
        blocking(move || Ok(authenticate(&node, &headers)?.record.store)).await?
    };
    let served = serve(&app, &h, Request::Catalog).await?;
    let Response::Catalog { stores, plugins } = served.resp else {
        return Err(ApiError::internal("unexpected reply to Catalog"));
    };
    let stores: Vec<Value> = stores
        .into_iter()
        .filter(|s| own.as_ref().is_none_or(|o| *o == s.store.id))
        .map(|s| {
            let mut v = serde_json::to_value(&s.store).unwrap_or(Value::Null);
            v["selected"] = json!(s.selected);
            v
        })
        .collect();
    let plugins: Vec<Value> = plugins
        .into_iter()
        .filter(|p| own.is_none() || stores.iter().any(|s| s["plugin_hash"] == json!(p.hash)))
        .map(|p| {
            json!({
                "name": p.name, "version": p.version, "hash": p.hash, "builtin": p.builtin,
                "service": p.service, "op_type": p.op_type,
                "methods": p.methods.iter().map(|(m, q)| json!({"name": m, "query": q})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "stores": stores, "plugins": plugins })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "type")]
    kind: String,
}

/// Shipped plugins only: a plugin blob is uploaded with the CLI.
async fn store_create(
    State(app): State<App>,
    h: HeaderMap,
    b: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: CreateBody = body(&b)?;
    let req = Request::StoreCreate {
        name: b.name,
        kind: Some(b.kind),
        wasm: None,
    };
    plain(app, h, req).await
}

async fn store_status(
    State(app): State<App>,
    h: HeaderMap,
    Path(store): Path<String>,
) -> Result<Json<Value>, ApiError> {
    plain(app, h, Request::StoreStatus { store: Some(store) }).await
}

async fn digest(
    State(app): State<App>,
    h: HeaderMap,
    Path(store): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let served = serve(&app, &h, Request::StoreStatus { store: Some(store) }).await?;
    let Response::StoreStatus { status } = served.resp else {
        return Err(ApiError::internal("unexpected reply to StoreStatus"));
    };
    Ok(Json(json!({
        "store": status.store,
        "entries": status.entries.to_string(),
        "log_digest": status.log_digest,
        "state_digest": status.state_digest,
        "sync": status.sync,
    })))
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    from: u64,
    #[serde(default = "hundred")]
    limit: u32,
}

fn hundred() -> u32 {
    100
}

/// The store's log, each op decoded with the plugin's op type.
async fn store_log(
    State(app): State<App>,
    h: HeaderMap,
    Path(store): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    let req = Request::StoreLog {
        store: Some(store),
        from: q.from,
        limit: q.limit,
    };
    let served = serve(&app, &h, req).await?;
    let Response::Log { store, entries } = &served.resp else {
        return Err(ApiError::internal("unexpected reply to StoreLog"));
    };
    let op_type = served
        .store
        .as_ref()
        .map(|s| s.plugin.info().op_type.clone());
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
            if let Some(t) = &op_type {
                v["op"] = proto::decode(t, &e.payload.0);
            }
            v
        })
        .collect();
    Ok(Json(json!({ "store": store, "entries": entries })))
}

async fn presence(
    State(app): State<App>,
    h: HeaderMap,
    Path(store): Path<String>,
) -> Result<Json<Value>, ApiError> {
    plain(app, h, Request::Presence { store: Some(store) }).await
}

/// The store's methods and their fields: what the UI builds forms from.
async fn schema(
    State(app): State<App>,
    h: HeaderMap,
    Path(store): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let node = app.node.clone();
    blocking(move || {
        let token = authenticate(&node, &h)?;
        let allowed =
            access::authorize(&node, &token, Request::StoreStatus { store: Some(store) })?;
        let s = allowed
            .store
            .ok_or_else(|| ApiError::internal("store status resolved no store"))?;
        let mut v = proto::schema(s.plugin.info());
        v["store"] = serde_json::to_value(service::store_info(&s)).unwrap_or(Value::Null);
        Ok(Json(v))
    })
    .await
}

async fn store_sync(
    State(app): State<App>,
    h: HeaderMap,
    Path(store): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let req = Request::StoreSync {
        store: Some(store),
        progress: false,
    };
    plain(app, h, req).await
}

/// Any plugin method by name: the body is its request message in protobuf
/// JSON, the answer carries the reply message the same way (and for a
/// command, the op's log entry).
async fn call(
    State(app): State<App>,
    h: HeaderMap,
    Path((store, method)): Path<(String, String)>,
    b: Bytes,
) -> Result<HttpResponse, ApiError> {
    let req = Request::Call {
        selector: store,
        explicit: None,
        method,
        request: Hex(Vec::new()),
    };
    let served = serve_with(&app, &h, req, move |allowed| {
        let m = allowed
            .method
            .as_ref()
            .ok_or_else(|| ApiError::internal("call resolved no method"))?;
        let bytes = proto::encode_request(m, &b)?;
        if let Request::Call { request, .. } = &mut allowed.req {
            request.0 = bytes;
        }
        Ok(())
    })
    .await?;
    let Response::Called {
        store,
        entry,
        reply,
    } = &served.resp
    else {
        return Err(ApiError::internal("unexpected reply to Call"));
    };
    let reply = match &served.method {
        Some(m) => proto::decode(&m.output, &reply.0),
        None => Value::Null,
    };
    let op = match (&served.store, entry) {
        (Some(s), Some(e)) => proto::decode(&s.plugin.info().op_type, &e.payload.0),
        _ => Value::Null,
    };
    Ok(Json(json!({ "store": store, "entry": entry, "op": op, "reply": reply })).into_response())
}

/// The stores this token reaches, described as OpenAPI: the catalog, then
/// each store as the access check resolves it (its handle carries the
/// plugin's descriptors).
async fn openapi_doc(State(app): State<App>, h: HeaderMap) -> Result<Json<Value>, ApiError> {
    let node = app.node.clone();
    blocking(move || {
        let token = authenticate(&node, &h)?;
        let catalog = access::authorize(&node, &token, Request::Catalog)?;
        let Response::Catalog { stores, .. } = service::handle(&node, catalog.req, true) else {
            return Err(ApiError::internal("unexpected reply to Catalog"));
        };
        let mut handles = Vec::new();
        for s in stores {
            let req = Request::StoreStatus {
                store: Some(s.store.id),
            };
            // Stores outside a limited token's scope are left out.
            if let Ok(a) = access::authorize(&node, &token, req)
                && let Some(h) = a.store
            {
                handles.push(h);
            }
        }
        Ok(Json(openapi::document(&handles)))
    })
    .await
}
