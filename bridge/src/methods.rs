//! The JSON-RPC methods: each maps onto a call of the instance API on the session's
//! [`Session`](molstream_net::host::Session), or onto the bridge's plugin client for the
//! plugin list. `bridge/README.md` lists them with their parameters and results.

use std::sync::Arc;

use molstream_engine::shape::ShapeId;
use molstream_engine::{AtomId, Complex, ComplexId};
use molstream_net::api::{ApiError, ComplexInfo};
use molstream_net::host::menus::MenuError;
use molstream_net::host::{SessionError, StreamData, StreamError, StreamKind, StreamTarget};
use molstream_net::menu::{ItemId, MenuId, MenuUpdate};
use molstream_net::proto::{InstanceId, PluginId};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::hub::{Attached, Caller, Hub, PluginCmd, Writing};
use crate::json::{self, ColorIn, ComplexIn, ElementIn, MenuIn, ShallowIn, ShapeIn, TargetIn, params};
use crate::rpc::{self, Request, RpcError};

type R<T> = Result<T, RpcError>;

/// Every method the bridge answers, in the order `bridge/README.md` documents them.
pub const METHODS: &[&str] = &[
    "bridge.sessions",
    "session.info",
    "workspace.get",
    "workspace.update",
    "workspace.focus",
    "complexes.list",
    "complexes.get",
    "complexes.add",
    "complexes.update",
    "complexes.remove",
    "complexes.color_scheme",
    "shapes.upload",
    "shapes.update",
    "shapes.destroy",
    "shapes.list",
    "streams.create",
    "streams.update",
    "streams.destroy",
    "streams.read",
    "menus.update",
    "menus.update_content",
    "menus.get",
    "menus.remove",
    "notify",
    "presenter.info",
    "session.open_url",
    "structure.load",
    "structure.export",
    "plugins.list",
    "plugins.activate",
    "plugins.run",
];

/// The method the bridge sends its caller to read a file by name.
pub const FILE_READ: &str = "file.read";

/// The error of a session call.
#[must_use]
pub fn session_error(e: SessionError) -> RpcError {
    match e {
        SessionError::Api(ApiError::UnknownComplex(c)) => RpcError::not_found("complex", json!(c.0)),
        SessionError::Api(ApiError::UnknownAtom(c, a)) => {
            RpcError::not_found("atom", json!(a)).with_data(json!({ "kind": "atom", "complex": c.0, "id": a }))
        }
        SessionError::Api(ApiError::Unsupported(why)) => RpcError::new(rpc::UNSUPPORTED, why),
        SessionError::Timeout(what) => RpcError::new(rpc::TIMEOUT, format!("timed out waiting for {what}")),
        SessionError::Load(e) => RpcError::new(rpc::LOAD_FAILED, e.to_string()),
        SessionError::Codec(e) => RpcError::invalid_params(e.to_string()),
        e @ (SessionError::Disconnected | SessionError::PresenterChanged) => {
            RpcError::new(rpc::SESSION_ERROR, e.to_string())
        }
        e => RpcError::new(rpc::INTERNAL_ERROR, e.to_string()),
    }
}

fn stream_error(e: StreamError) -> RpcError {
    match e {
        StreamError::UnknownComplex(c) => RpcError::not_found("complex", json!(c.0)),
        StreamError::UnknownAtom(c, a) => {
            RpcError::not_found("atom", json!(a.0)).with_data(json!({ "kind": "atom", "complex": c.0, "id": a.0 }))
        }
        StreamError::UnknownShape(s) => RpcError::not_found("shape", json!(s.0)),
        StreamError::Unsupported(why) => RpcError::new(rpc::UNSUPPORTED, why),
        e @ StreamError::WrongData { .. } => RpcError::invalid_params(e.to_string()),
        StreamError::Interrupted(i) => {
            RpcError::new(rpc::STREAM_INTERRUPTED, format!("stream interrupted: {i:?}")).with_data(json::interrupt(&i))
        }
        StreamError::Session(e) => session_error(e),
    }
}

fn menu_error(e: MenuError) -> RpcError {
    match e {
        MenuError::Apply(e) => RpcError::invalid_params(e.to_string()),
        MenuError::TooLarge(_) => RpcError::invalid_params(e.to_string()),
        MenuError::Session(e) => session_error(e),
    }
}

fn ids(v: &[u32]) -> Vec<ComplexId> {
    v.iter().copied().map(ComplexId).collect()
}

/// Runs one request. `room` is the session the transport addresses (`None`: the only one).
///
/// # Errors
/// The JSON-RPC error to answer with.
pub(crate) async fn call(hub: &Arc<Hub>, room: Option<&str>, caller: &Caller, req: Request) -> R<Value> {
    let Request { method, params: p, .. } = req;
    if method == "bridge.sessions" {
        let _: Empty = params(p)?;
        let list: Vec<Value> = hub
            .sessions()
            .iter()
            .map(|a| {
                json!({ "room": a.session.room(), "instance": a.session.instance().0, "plugin": a.session.plugin().0 })
            })
            .collect();
        return Ok(json!({ "sessions": list }));
    }
    if !METHODS.contains(&method.as_str()) {
        return Err(RpcError::new(rpc::METHOD_NOT_FOUND, format!("method {method:?} not found"))
            .with_data(json!({ "methods": METHODS })));
    }
    let a = hub.attached(room)?;
    let s = &a.session;
    match method.as_str() {
        "session.info" => {
            let _: Empty = params(p)?;
            Ok(json!({
                "room": s.room(), "instance": s.instance().0, "plugin": s.plugin().0, "presenter": s.presenter().0,
            }))
        }
        "workspace.get" => {
            let p: Fields = params(p)?;
            let f = p.fields()?;
            let list = s.request_complex_list().await.map_err(session_error)?;
            let wanted: Vec<ComplexId> = list.iter().map(|c| c.id).collect();
            check_estimate(hub, list.iter().map(|c| c.atoms as usize).sum(), f)?;
            let got = s.request_complexes(&wanted).await.map_err(session_error)?;
            let complexes: Vec<Value> = got.iter().flatten().map(|c| json::complex_deep(c, f)).collect();
            Ok(json!({ "complexes": complexes }))
        }
        "workspace.update" => {
            let p: Complexes = params(p)?;
            workspace_update(&a, caller, hub, p.complexes).await
        }
        "workspace.focus" => {
            let p: Focus = params(p)?;
            let ids = ids(&p.ids);
            let r = if p.zoom.unwrap_or(true) { s.zoom_on(&ids).await } else { s.center_on(&ids).await };
            r.map_err(session_error)?;
            Ok(json!({}))
        }
        "complexes.list" => {
            let _: Empty = params(p)?;
            let list = s.request_complex_list().await.map_err(session_error)?;
            Ok(json!({ "complexes": list.iter().map(json::complex_info).collect::<Vec<_>>() }))
        }
        "complexes.get" => {
            let p: Get = params(p)?;
            let wanted = ids(&p.ids);
            if !p.deep {
                if p.fields.is_some() {
                    return Err(RpcError::invalid_params("\"fields\" applies to deep requests"));
                }
                let got = s.request_complexes_shallow(&wanted).await.map_err(session_error)?;
                let out: Vec<Value> = got.iter().map(|c| c.as_ref().map_or(Value::Null, json::complex_info)).collect();
                return Ok(json!({ "complexes": out }));
            }
            let f = Fields { fields: p.fields }.checked()?;
            let shallow = s.request_complexes_shallow(&wanted).await.map_err(session_error)?;
            check_estimate(hub, shallow.iter().flatten().map(|c| c.atoms as usize).sum(), f.as_deref())?;
            let got = s.request_complexes(&wanted).await.map_err(session_error)?;
            let out: Vec<Value> =
                got.iter().map(|c| c.as_ref().map_or(Value::Null, |c| json::complex_deep(c, f.as_deref()))).collect();
            Ok(json!({ "complexes": out }))
        }
        "complexes.add" => {
            let p: Complexes = params(p)?;
            if let Some(c) = p.complexes.iter().find(|c| !c.is_new()) {
                return Err(RpcError::invalid_params(format!(
                    "complexes.add takes new complexes (no id); {} is given (use complexes.update)",
                    c.id
                )));
            }
            let mut built = Vec::with_capacity(p.complexes.len());
            for c in p.complexes {
                built.push(build(&a, caller, hub, c).await?);
            }
            let ids = s.add_complexes(built).await.map_err(session_error)?;
            Ok(json!({ "ids": ids.iter().map(|c| c.0).collect::<Vec<_>>() }))
        }
        "complexes.update" => {
            let p: Update = params(p)?;
            if p.deep {
                let items: Vec<ComplexIn> = serde_json::from_value(Value::Array(p.complexes))
                    .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))?;
                let mut built = Vec::with_capacity(items.len());
                for c in items {
                    if c.is_new() {
                        return Err(RpcError::invalid_params("complexes.update needs each complex's \"id\""));
                    }
                    built.push(build(&a, caller, hub, c).await?);
                }
                s.update_structures_deep(&built).await.map_err(session_error)?;
            } else {
                let items: Vec<ShallowIn> = serde_json::from_value(Value::Array(p.complexes))
                    .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))?;
                for item in &items {
                    item.validate()?;
                }
                let wanted: Vec<ComplexId> = items.iter().map(|c| ComplexId(c.id)).collect();
                let current = s.request_complexes_shallow(&wanted).await.map_err(session_error)?;
                let mut infos: Vec<ComplexInfo> = Vec::with_capacity(items.len());
                for (item, info) in items.iter().zip(current) {
                    let mut info = info.ok_or_else(|| RpcError::not_found("complex", json!(item.id)))?;
                    item.apply(&mut info)?;
                    infos.push(info);
                }
                s.update_structures_shallow(&infos).await.map_err(session_error)?;
            }
            Ok(json!({}))
        }
        "complexes.remove" => {
            let p: Ids = params(p)?;
            s.remove_complexes(&ids(&p.ids)).await.map_err(session_error)?;
            Ok(json!({}))
        }
        "complexes.color_scheme" => {
            let p: Scheme = params(p)?;
            let scheme = json::color_scheme(&p.scheme)?;
            s.apply_color_scheme(scheme, &ids(&p.ids)).await.map_err(session_error)?;
            Ok(json!({}))
        }
        "shapes.upload" | "shapes.update" => {
            let p: Shapes = params(p)?;
            if method == "shapes.update" {
                let held = s.shapes().await;
                for sh in &p.shapes {
                    if sh.id() == 0 || !held.iter().any(|h| h.id.0 == sh.id()) {
                        return Err(RpcError::not_found("shape", json!(sh.id())));
                    }
                }
            }
            let mut shapes = p.shapes.iter().map(ShapeIn::shape).collect::<R<Vec<_>>>()?;
            let ids = s.upload_shapes(&mut shapes).await.map_err(session_error)?;
            Ok(json!({ "ids": ids.iter().map(|i| i.0).collect::<Vec<_>>() }))
        }
        "shapes.destroy" => {
            let p: Ids = params(p)?;
            let held = s.shapes().await;
            if let Some(missing) = p.ids.iter().find(|i| !held.iter().any(|h| h.id.0 == **i)) {
                return Err(RpcError::not_found("shape", json!(missing)));
            }
            let ids: Vec<ShapeId> = p.ids.iter().copied().map(ShapeId).collect();
            s.destroy_shapes(&ids).await.map_err(session_error)?;
            let hit: Vec<(u32, u32)> = a
                .writing
                .lock()
                .map(|m| {
                    m.iter()
                        .filter_map(|(id, w)| w.shapes.iter().find(|s| p.ids.contains(s)).map(|s| (*id, *s)))
                        .collect()
                })
                .unwrap_or_default();
            for (stream, shape) in hit {
                let why = json!({ "stream": stream, "reason": "shape_destroyed", "shape": shape });
                hub.emit(s.room(), "event.stream_interrupted", why);
            }
            Ok(json!({}))
        }
        "shapes.list" => {
            let _: Empty = params(p)?;
            let shapes = s.shapes().await;
            Ok(json!({ "shapes": shapes.iter().map(json::shape).collect::<Vec<_>>() }))
        }
        "streams.create" => {
            let p: CreateStream = params(p)?;
            let kind = json::stream_kind(&p.kind)?;
            let target = p.target.target()?;
            let shapes = match &target {
                StreamTarget::Shapes(s) => s.iter().map(|s| s.0).collect(),
                _ => Vec::new(),
            };
            let w = s.create_writing_stream(kind, target).await.map_err(stream_error)?;
            let id = w.id().0;
            if let Ok(mut m) = a.writing.lock() {
                m.insert(id, Writing { stream: w, shapes });
            }
            Ok(json!({ "stream": id, "kind": p.kind }))
        }
        "streams.update" => {
            let p: UpdateStream = params(p)?;
            let w = a.writing.lock().ok().and_then(|m| m.get(&p.stream).map(|w| w.stream.clone()));
            let w = w.ok_or_else(|| RpcError::not_found("stream", json!(p.stream)))?;
            stream_update(&w, w.kind(), p.data).await?;
            Ok(json!({}))
        }
        "streams.destroy" => {
            let p: StreamRef = params(p)?;
            let w = a.writing.lock().ok().and_then(|mut m| m.remove(&p.stream));
            if let Some(w) = w {
                w.stream.destroy();
                return Ok(json!({}));
            }
            let r = a.reading.lock().ok().and_then(|mut m| m.remove(&p.stream));
            match r {
                Some(stop) => {
                    let _ = stop.send(());
                    Ok(json!({}))
                }
                None => Err(RpcError::not_found("stream", json!(p.stream))),
            }
        }
        "streams.read" => {
            let p: ReadStream = params(p)?;
            let atoms: Vec<AtomId> = p.atoms.iter().copied().map(AtomId).collect();
            let stream = s.create_reading_stream(ComplexId(p.complex), &atoms).await.map_err(stream_error)?;
            let id = stream.id().0;
            let (stop, stopped) = oneshot::channel();
            if let Ok(mut m) = a.reading.lock() {
                m.insert(id, stop);
            }
            tokio::spawn(forward_positions(hub.clone(), a.clone(), stream, stopped));
            Ok(json!({ "stream": id }))
        }
        "menus.update" => {
            let p: MenuParams = params(p)?;
            let menu = p.menu.menu()?;
            check_menu(MenuUpdate::Set(menu.clone()))?;
            s.update_menu(&menu).await.map_err(menu_error)?;
            Ok(json!({}))
        }
        "menus.update_content" => {
            let p: Content = params(p)?;
            let mut menu = s.menu(MenuId(p.menu)).await.ok_or_else(|| RpcError::not_found("menu", json!(p.menu)))?;
            let content = p.content.as_ref().map(ElementIn::element).transpose()?;
            let item = ItemId(p.item);
            let node = menu.node_mut(item).ok_or_else(|| RpcError::not_found("menu item", json!(p.item)))?;
            node.content.clone_from(&content);
            check_menu(MenuUpdate::Content { menu: MenuId(p.menu), item, content })?;
            s.update_content(&menu, item).await.map_err(menu_error)?;
            Ok(json!({}))
        }
        "menus.get" => {
            let p: MenuRef = params(p)?;
            Ok(s.menu(MenuId(p.menu)).await.map_or(Value::Null, |m| json::menu_json(&m)))
        }
        "menus.remove" => {
            let p: MenuRef = params(p)?;
            if s.menu(MenuId(p.menu)).await.is_none() {
                return Err(RpcError::not_found("menu", json!(p.menu)));
            }
            s.remove_menu(MenuId(p.menu)).await.map_err(menu_error)?;
            Ok(json!({}))
        }
        "notify" => {
            let p: Notify = params(p)?;
            let level = json::level(p.level.as_deref().unwrap_or("info"))?;
            s.notify(level, p.text).await.map_err(session_error)?;
            Ok(json!({}))
        }
        "presenter.info" => {
            let _: Empty = params(p)?;
            let info = s.presenter_info().await.map_err(session_error)?;
            Ok(json::presenter(&info))
        }
        "session.open_url" => {
            let p: Url = params(p)?;
            if p.url.is_empty() || p.url.len() > 8192 || p.url.chars().any(char::is_control) {
                return Err(RpcError::invalid_params("a url of 1 to 8192 bytes without control characters"));
            }
            s.open_url(p.url).await.map_err(session_error)?;
            Ok(json!({}))
        }
        "structure.load" => {
            let p: Load = params(p)?;
            let bytes = match json::file_bytes(p.text, p.base64.as_deref())? {
                Some(b) => b,
                None => ask_file(caller, hub, &p.name).await?,
            };
            let id = s.load_file(&p.name, &bytes).await.map_err(session_error)?;
            Ok(json!({ "complex": id.0 }))
        }
        "structure.export" => {
            let p: Export = params(p)?;
            if p.format.as_deref().is_some_and(|f| f != "pdb") {
                return Err(RpcError::new(rpc::UNSUPPORTED, "structures are exported as PDB (\"format\": \"pdb\")"));
            }
            let wanted = ids(&p.ids);
            let texts = s.export_pdb(&wanted).await.map_err(session_error)?;
            let files: Vec<Value> =
                wanted.iter().zip(texts).map(|(id, text)| json!({ "id": id.0, "text": text })).collect();
            Ok(json!({ "files": files }))
        }
        "plugins.list" => {
            let _: Empty = params(p)?;
            let list = plugin_list(&a, hub).await?;
            let out: Vec<Value> = list
                .iter()
                .map(|p| {
                    json!({
                        "id": p.id.0, "name": p.meta.name, "description": p.meta.description,
                        "category": p.meta.category, "tags": p.meta.tags, "host": p.host,
                        "integrations": p.meta.integrations,
                    })
                })
                .collect();
            Ok(json!({ "plugins": out }))
        }
        "plugins.activate" => {
            let p: Activate = params(p)?;
            let id = match p.plugin {
                PluginRef::Id(id) => PluginId(id),
                PluginRef::Name(name) => {
                    let list = plugin_list(&a, hub).await?;
                    list.iter()
                        .find(|x| x.meta.name == name)
                        .map(|x| x.id)
                        .ok_or_else(|| RpcError::not_found("plugin", json!(name)))?
                }
            };
            let cmd = a.plugins(hub).await?;
            let (tx, rx) = oneshot::channel();
            send_cmd(&cmd, PluginCmd::Activate(id, tx)).await?;
            let instance = rx
                .await
                .map_err(|_| RpcError::new(rpc::PLUGIN_ERROR, "the plugin client stopped"))?
                .map_err(|e| RpcError::new(rpc::PLUGIN_ERROR, e))?;
            Ok(json!({ "instance": instance.0 }))
        }
        "plugins.run" => {
            let p: Run = params(p)?;
            let cmd = a.plugins(hub).await?;
            let (tx, rx) = oneshot::channel();
            send_cmd(&cmd, PluginCmd::Run(InstanceId(p.instance), tx)).await?;
            rx.await
                .map_err(|_| RpcError::new(rpc::PLUGIN_ERROR, "the plugin client stopped"))?
                .map_err(|e| RpcError::new(rpc::PLUGIN_ERROR, e))?;
            Ok(json!({}))
        }
        _ => Err(RpcError::new(rpc::METHOD_NOT_FOUND, format!("method {method:?} not found"))),
    }
}

async fn send_cmd(cmd: &tokio::sync::mpsc::Sender<PluginCmd>, c: PluginCmd) -> R<()> {
    cmd.send(c).await.map_err(|_| RpcError::new(rpc::PLUGIN_ERROR, "the plugin client stopped"))
}

async fn plugin_list(a: &Attached, hub: &Hub) -> R<Vec<molstream_net::proto::PluginInfo>> {
    let cmd = a.plugins(hub).await?;
    let (tx, rx) = oneshot::channel();
    send_cmd(&cmd, PluginCmd::List(tx)).await?;
    rx.await.map_err(|_| RpcError::new(rpc::PLUGIN_ERROR, "the plugin client stopped"))
}

/// Checks an update by the wire's own rules (it is encoded and decoded as every client will),
/// so a menu clients would refuse is refused here with the reason.
fn check_menu(update: MenuUpdate) -> R<()> {
    use molstream_net::api::ToSession;
    ToSession::decode(&ToSession::Menu(update).encode())
        .map(|_| ())
        .map_err(|e| RpcError::invalid_params(format!("invalid menu: {e}")))
}

/// Refuses a deep result before building it when even its smallest JSON form (at least 8 bytes
/// per atom for positions, 18 for the atom columns, 6 for display) is above the limit.
fn check_estimate(hub: &Hub, atoms: usize, fields: Option<&[String]>) -> R<()> {
    let want = |s: &str| fields.is_none_or(|f| f.iter().any(|x| x == s));
    let per_atom = [("positions", 8), ("atoms", 18), ("display", 6)]
        .iter()
        .filter(|(s, _)| want(s))
        .map(|(_, b)| b)
        .sum::<usize>();
    let lower = atoms.saturating_mul(per_atom);
    let limit = hub.cfg.limits.max_response_bytes;
    if lower > limit {
        let mut e = rpc::too_large(rpc::RESULT_TOO_LARGE, "result", lower, limit);
        if let Some(d) = e.data.as_mut() {
            d["estimated"] = true.into();
        }
        return Err(e);
    }
    Ok(())
}

/// Asks the caller for a file's contents (`file.read`), as a remote file source answers.
async fn ask_file(caller: &Caller, hub: &Hub, name: &str) -> R<Vec<u8>> {
    let link = caller.as_ref().ok_or_else(|| {
        RpcError::new(rpc::UNSUPPORTED, "no contents given, and this transport cannot ask the caller for them")
    })?;
    let answer = link.request(FILE_READ, json!({ "name": name }), hub.cfg.caller_timeout).await?;
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Contents {
        text: Option<String>,
        base64: Option<String>,
    }
    let c: Contents = serde_json::from_value(answer).map_err(|e| {
        RpcError::new(rpc::CALLER_ERROR, format!("the caller's answer to file.read is not {{text}} or {{base64}}: {e}"))
    })?;
    json::file_bytes(c.text, c.base64.as_deref())?
        .ok_or_else(|| RpcError::new(rpc::CALLER_ERROR, "the caller's answer to file.read has no contents"))
}

/// Builds one complex of a request (new, replaced, or changed), reading its file from the
/// caller if it names one without contents. Parsing runs off the async threads.
async fn build(a: &Attached, caller: &Caller, hub: &Hub, c: ComplexIn) -> R<Complex> {
    let bytes = match c.file() {
        Some(f) => match json::file_bytes(f.text.clone(), f.base64.as_deref())? {
            Some(b) => Some(b),
            None => Some(ask_file(caller, hub, &f.name).await?),
        },
        None => None,
    };
    let base = if !c.is_new() && c.file().is_none() {
        Some(a.session.request_complex(ComplexId(c.id)).await.map_err(session_error)?)
    } else {
        None
    };
    tokio::task::spawn_blocking(move || c.into_complex(base, bytes.as_deref()))
        .await
        .map_err(|_| RpcError::new(rpc::INTERNAL_ERROR, "the builder task failed"))?
}

/// `workspace.update`: the session's workspace becomes the complexes given: new ones are
/// added, the others replaced or changed, and complexes not listed removed (as
/// `Session::update_workspace`, which takes a `Workspace` and so cannot hold several new
/// complexes at once).
async fn workspace_update(a: &Attached, caller: &Caller, hub: &Hub, complexes: Vec<ComplexIn>) -> R<Value> {
    let s = &a.session;
    let present = s.request_complex_list().await.map_err(session_error)?;
    let kept: Vec<u32> = complexes.iter().filter(|c| !c.is_new()).map(|c| c.id).collect();
    if let Some(c) = kept.iter().find(|id| !present.iter().any(|p| p.id.0 == **id)) {
        return Err(RpcError::not_found("complex", json!(c)));
    }
    let mut new = Vec::new();
    let mut old = Vec::new();
    for c in complexes {
        let is_new = c.is_new();
        let built = build(a, caller, hub, c).await?;
        if is_new { new.push(built) } else { old.push(built) }
    }
    let gone: Vec<ComplexId> = present.iter().map(|c| c.id).filter(|id| !kept.contains(&id.0)).collect();
    if !gone.is_empty() {
        s.remove_complexes(&gone).await.map_err(session_error)?;
    }
    s.update_structures_deep(&old).await.map_err(session_error)?;
    let added = s.add_complexes(new).await.map_err(session_error)?;
    Ok(
        json!({ "added": added.iter().map(|c| c.0).collect::<Vec<_>>(), "removed": gone.iter().map(|c| c.0).collect::<Vec<_>>() }),
    )
}

async fn stream_update(w: &molstream_net::host::WritingStream, kind: StreamKind, data: Value) -> R<()> {
    let bad = |e: serde_json::Error| {
        RpcError::invalid_params(format!("data of a {} stream: {e}", json::stream_kind_name(kind)))
    };
    use StreamKind as K;
    let r = match kind {
        K::AtomPosition | K::ComplexPosition | K::ShapePosition => {
            let v: Vec<[f32; 3]> = serde_json::from_value(data).map_err(bad)?;
            let v = v.into_iter().map(|p| json::vec3("a position", p)).collect::<R<Vec<_>>>()?;
            w.update(StreamData::Positions(&v)).await
        }
        K::AtomColor | K::ShapeColor => {
            let v: Vec<ColorIn> = serde_json::from_value(data).map_err(bad)?;
            let v = v.iter().map(ColorIn::packed).collect::<R<Vec<_>>>()?;
            w.update(StreamData::Colors(&v)).await
        }
        K::AtomScale | K::SphereRadius => {
            let v: Vec<f32> = serde_json::from_value(data).map_err(bad)?;
            if v.iter().any(|x| !x.is_finite() || *x < 0.0) {
                return Err(RpcError::invalid_params("scales must be finite and ≥ 0"));
            }
            w.update(StreamData::Scales(&v)).await
        }
        K::AtomLabel => {
            let v: Vec<String> = serde_json::from_value(data).map_err(bad)?;
            w.update(StreamData::Labels(&v)).await
        }
        K::ComplexRotation => {
            let v: Vec<[f32; 4]> = serde_json::from_value(data).map_err(bad)?;
            let v = v.into_iter().map(|q| json::quat("a rotation", q)).collect::<R<Vec<_>>>()?;
            w.update(StreamData::Rotations(&v)).await
        }
    };
    r.map_err(stream_error)
}

/// Pushes a reading stream's positions to the room's callers as `event.stream_positions`.
async fn forward_positions(
    hub: Arc<Hub>,
    a: Arc<Attached>,
    mut stream: molstream_net::host::ReadingStream,
    mut stop: oneshot::Receiver<()>,
) {
    let id = stream.id().0;
    let room = a.session.room().to_owned();
    loop {
        tokio::select! {
            next = stream.next() => match next {
                Some(positions) => {
                    let p = json::vecs(&positions);
                    hub.emit(&room, "event.stream_positions", json!({ "stream": id, "positions": p }));
                }
                None => {
                    hub.emit(&room, "event.stream_ended", json!({ "stream": id }));
                    break;
                }
            },
            _ = &mut stop => {
                if let Err(e) = stream.destroy().await {
                    tracing::debug!(error = %e, "destroying a reading stream");
                }
                return;
            }
        }
    }
    if let Ok(mut m) = a.reading.lock() {
        m.remove(&id);
    }
}

// ------------------------------------------------------------------ parameter shapes

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    fields: Option<Vec<String>>,
}

impl Fields {
    fn fields(&self) -> R<Option<&[String]>> {
        if let Some(f) = &self.fields {
            json::check_fields(f)?;
        }
        Ok(self.fields.as_deref())
    }

    fn checked(self) -> R<Option<Vec<String>>> {
        self.fields()?;
        Ok(self.fields)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ids {
    ids: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Focus {
    ids: Vec<u32>,
    zoom: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Get {
    ids: Vec<u32>,
    #[serde(default)]
    deep: bool,
    fields: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Complexes {
    complexes: Vec<ComplexIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    complexes: Vec<Value>,
    #[serde(default)]
    deep: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scheme {
    ids: Vec<u32>,
    scheme: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Shapes {
    shapes: Vec<ShapeIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateStream {
    kind: String,
    target: TargetIn,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateStream {
    stream: u32,
    data: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamRef {
    stream: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadStream {
    complex: u32,
    #[serde(default)]
    atoms: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MenuParams {
    menu: MenuIn,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Content {
    menu: u16,
    item: u32,
    content: Option<ElementIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MenuRef {
    menu: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Notify {
    level: Option<String>,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Url {
    url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Load {
    name: String,
    text: Option<String>,
    base64: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Export {
    ids: Vec<u32>,
    format: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PluginRef {
    Id(u32),
    Name(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Activate {
    plugin: PluginRef,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Run {
    instance: u32,
}
