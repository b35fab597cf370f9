//! What the bridge does with bad input, over a real WebSocket and a real `redis-server`: JSON
//! that does not parse, values that are no requests, unknown methods, wrong parameters,
//! batches, notifications, oversize requests and results, a missing or wrong token, a caller
//! that does not answer the bridge's request in time, a session without the bridge. Each gets
//! a JSON-RPC error (or, without the token, nothing), and the bridge keeps answering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Options, PREFIX, ROOM, TOKEN, World, asset_text, code};
use futures_util::{SinkExt, StreamExt};
use molstream_bridge::redis::Channels;
use molstream_bridge::{BridgeClient, ClientError, Limits, rpc};
use redis::AsyncCommands;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const KIB: usize = 1024;

fn small() -> Options {
    Options {
        limits: Limits { max_request_bytes: 256 * KIB, max_response_bytes: 64 * KIB, max_batch: 8 },
        caller_timeout: Duration::from_millis(500),
        ..Options::default()
    }
}

fn err_of(v: &Value) -> i64 {
    v["error"]["code"].as_i64().unwrap_or_else(|| panic!("not an error answer: {v}"))
}

/// The checks both transports share.
async fn malformed(c: &BridgeClient) {
    // Text that is no JSON, JSON that is no request.
    let a = c.send_text("{not json").await.unwrap().unwrap();
    assert_eq!(err_of(&a), rpc::PARSE_ERROR);
    assert_eq!(a["id"], Value::Null);
    for text in ["[]", "42", "\"hello\""] {
        let a = c.send_text(text).await.unwrap().unwrap();
        assert_eq!(err_of(&a), rpc::INVALID_REQUEST, "{text}");
    }
    let a = c.send_text(r#"{"jsonrpc":"1.0","id":11,"method":"session.info"}"#).await.unwrap().unwrap();
    assert_eq!((err_of(&a), a["id"].clone()), (rpc::INVALID_REQUEST, json!(11)));
    let a = c.send_text(r#"{"jsonrpc":"2.0","id":12,"method":"session.info","params":7}"#).await.unwrap().unwrap();
    assert_eq!(err_of(&a), rpc::INVALID_REQUEST);

    // Unknown methods, wrong parameters.
    let e = c.call("complexes.explode", json!({})).await.unwrap_err();
    assert_eq!(code(&e), rpc::METHOD_NOT_FOUND);
    let ClientError::Rpc(r) = &e else { unreachable!() };
    assert!(r.data.as_ref().unwrap()["methods"].as_array().unwrap().iter().any(|m| m == "complexes.list"));
    for (method, params) in [
        ("complexes.get", json!({})),
        ("complexes.get", json!({ "ids": "all" })),
        ("complexes.get", json!([1, 2])),
        ("complexes.get", json!({ "ids": [1], "bogus": true })),
        ("complexes.get", json!({ "ids": [1], "deep": true, "fields": ["colours"] })),
        ("notify", json!({ "text": "x", "level": "loud" })),
        ("shapes.upload", json!({ "shapes": [{ "type": "cube", "anchor": {} }] })),
        ("shapes.upload", json!({ "shapes": [{ "type": "sphere", "radius": -1, "anchor": {} }] })),
        ("shapes.upload", json!({ "shapes": [{ "type": "sphere", "radius": 1, "color": "#zzzzzz", "anchor": {} }] })),
        ("shapes.upload", json!({ "shapes": [{ "type": "sphere", "radius": 1, "anchor": { "atom": 3 } }] })),
        ("streams.create", json!({ "kind": "atom_warp", "target": { "complexes": [1] } })),
        ("streams.create", json!({ "kind": "atom_color", "target": { "complexes": [1], "shapes": [1] } })),
        ("complexes.add", json!({ "complexes": [{ "name": "nothing" }] })),
        ("complexes.update", json!({ "complexes": [{ "id": 1, "rotation": [0, 0, 0, 0] }] })),
        ("structure.load", json!({ "name": "x.pdb", "text": "A", "base64": "QQ==" })),
        ("structure.load", json!({ "name": "x.pdb", "base64": "not base64!" })),
        (
            "menus.update",
            json!({ "menu": { "id": 1, "root": { "content": { "type": "slider", "min": 5, "max": 1, "value": 3 } } } }),
        ),
    ] {
        let e = c.call(method, params.clone()).await.unwrap_err();
        assert_eq!(code(&e), rpc::INVALID_PARAMS, "{method} {params}: {e}");
    }
    let e = c.call("complexes.get", json!({ "ids": [4242], "deep": true })).await.unwrap();
    assert_eq!(e["complexes"][0], Value::Null);
    let e = c.call("complexes.remove", json!({ "ids": [] })).await;
    assert!(e.is_ok());
    let e = c.call("complexes.color_scheme", json!({ "ids": [4242], "scheme": "chain" })).await.unwrap_err();
    assert_eq!(code(&e), rpc::NOT_FOUND);
    let e = c.call("streams.destroy", json!({ "stream": 999 })).await.unwrap_err();
    assert_eq!(code(&e), rpc::NOT_FOUND);

    // Batches: each element answered on its own; notifications not at all; too long refused.
    let a = c
        .send_text(
            r#"[{"jsonrpc":"2.0","id":1,"method":"session.info"},{"jsonrpc":"2.0","id":2},
                {"jsonrpc":"2.0","method":"notify","params":{"text":"quiet"}},5]"#,
        )
        .await
        .unwrap()
        .unwrap();
    let a = a.as_array().unwrap();
    assert_eq!(a.len(), 3, "{a:?}");
    assert_eq!(a[0]["result"]["room"], ROOM);
    assert_eq!((err_of(&a[1]), a[1]["id"].clone()), (rpc::INVALID_REQUEST, json!(2)));
    assert_eq!((err_of(&a[2]), a[2]["id"].clone()), (rpc::INVALID_REQUEST, Value::Null));
    let nine: Vec<Value> = (0..9).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "session.info"})).collect();
    let a = c.send_text(&Value::Array(nine).to_string()).await.unwrap().unwrap();
    assert_eq!(err_of(&a), rpc::INVALID_REQUEST);
    assert_eq!(a["error"]["data"]["limit"], 8);

    // A notification is never answered, even when it fails; the next call gets its own answer.
    c.notify("complexes.explode", json!({})).await.unwrap();
    let a = c.send_text(r#"{"jsonrpc":"2.0","id":"after","method":"session.info"}"#).await.unwrap().unwrap();
    assert_eq!(a["id"], "after");

    // Oversize: a request above the limit, a result above the limit (built, then refused), and
    // one refused before it is built (estimated from the atom count).
    let big =
        format!(r#"{{"jsonrpc":"2.0","id":3,"method":"notify","params":{{"text":"{}"}}}}"#, "x".repeat(300 * KIB));
    let a = c.send_text(&big).await.unwrap().unwrap();
    assert_eq!(err_of(&a), rpc::REQUEST_TOO_LARGE);
    assert_eq!(a["error"]["data"]["limit"], 256 * KIB);
    let hvr = c.call("structure.load", json!({ "name": "1hvr.pdb", "text": asset_text("1hvr.pdb") })).await.unwrap();
    let hvr = hvr["complex"].as_u64().unwrap();
    let e = c.call("complexes.get", json!({ "ids": [hvr], "deep": true })).await.unwrap_err();
    assert_eq!(code(&e), rpc::RESULT_TOO_LARGE, "{e}");
    let ok = c.call("complexes.get", json!({ "ids": [hvr], "deep": true, "fields": ["positions"] })).await.unwrap();
    assert_eq!(ok["complexes"][0]["positions"].as_array().unwrap().len(), 1890);
    c.call("structure.load", json!({ "name": "1hvr.pdb", "text": asset_text("1hvr.pdb") })).await.unwrap();
    let e = c.call("workspace.get", json!({})).await.unwrap_err();
    assert_eq!(code(&e), rpc::RESULT_TOO_LARGE);
    let ClientError::Rpc(r) = &e else { unreachable!() };
    assert_eq!(r.data.as_ref().unwrap()["estimated"], true);

    // Through all of it the bridge kept answering.
    assert_eq!(c.call("session.info", json!({})).await.unwrap()["room"], ROOM);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_over_websocket() {
    let w = World::start(Options { redis: false, ..small() }).await;
    let c = w.ws_client().await;
    malformed(&c).await;

    // Binary frames are no JSON-RPC; a message above the hard cap closes the connection (1009).
    let url = format!("ws://{}/ws?token={TOKEN}", w.ws_addr());
    let (mut raw, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    raw.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    let Some(Ok(Message::Text(t))) = raw.next().await else { panic!("no answer to a binary frame") };
    assert_eq!(err_of(&serde_json::from_str(t.as_str()).unwrap()), rpc::PARSE_ERROR);
    let huge = "y".repeat(1536 * KIB);
    let _ = raw.send(Message::Text(huge.into())).await;
    let closed = loop {
        match raw.next().await {
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break None,
        }
    };
    assert_eq!(closed, Some(1009));
    // Other connections are unaffected.
    assert_eq!(c.call("session.info", json!({})).await.unwrap()["room"], ROOM);

    // A connection naming a room without the bridge.
    let other = BridgeClient::websocket(w.ws_addr(), Some("elsewhere"), TOKEN).await.unwrap();
    let e = other.call("session.info", json!({})).await.unwrap_err();
    assert_eq!(code(&e), rpc::NO_SESSION);
    let ClientError::Rpc(r) = &e else { unreachable!() };
    assert_eq!(r.data.as_ref().unwrap()["sessions"], json!([ROOM]));
    drop((c, other));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_over_redis() {
    let w = World::start(Options { websocket: false, ..small() }).await;
    let c = w.redis_client().await;
    malformed(&c).await;

    // Messages that are no envelope, or whose envelope is wrong, are dropped; the bridge goes on.
    let url = w.redis.as_ref().unwrap().url();
    assert_eq!(c.publish_raw(b"\xff\x00 garbage").await.unwrap(), 1);
    assert_eq!(c.publish_raw(br#"{"token":"x","payload":{},"extra":1}"#).await.unwrap(), 1);
    assert_eq!(c.publish_raw(&vec![b'['; 100_000]).await.unwrap(), 1);
    assert_eq!(c.call("session.info", json!({})).await.unwrap()["room"], ROOM);

    // An envelope whose payload is above the limit gets REQUEST_TOO_LARGE on its channel.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut publisher = client.get_multiplexed_async_connection().await.unwrap();
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe("test:big").await.unwrap();
    let env = json!({ "token": TOKEN, "reply_to": "test:big", "payload": { "jsonrpc": "2.0", "id": 1, "method": "notify",
        "params": { "text": "z".repeat(300 * KIB) } } });
    let _: i64 = publisher.publish(Channels::of(PREFIX, ROOM).rpc, env.to_string()).await.unwrap();
    let msg = tokio::time::timeout(common::T, sub.on_message().next()).await.unwrap().unwrap();
    let a: Value = serde_json::from_slice(msg.get_payload_bytes()).unwrap();
    assert_eq!(err_of(&a), rpc::REQUEST_TOO_LARGE);

    // A session without the bridge: nobody listens, the caller learns it at once.
    let nobody = BridgeClient::redis(&url, PREFIX, "elsewhere", TOKEN).await.unwrap();
    assert!(matches!(nobody.call("session.info", json!({})).await, Err(ClientError::NoBridge(_))));
    drop((c, nobody));
    w.stop().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_nothing_is_answered() {
    let w = World::start(small()).await;
    let addr = w.ws_addr();

    // WebSocket: refused before the upgrade, with a missing or a wrong token.
    assert!(
        matches!(BridgeClient::websocket(addr, Some(ROOM), "wrong").await, Err(ClientError::Refused(r)) if r.contains("401"))
    );
    let e = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?room={ROOM}")).await.unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");
    // The token as a bearer header works too.
    let mut req = format!("ws://{addr}/ws?room={ROOM}").into_client_request().unwrap();
    req.headers_mut().insert("Authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::Text(r#"{"jsonrpc":"2.0","id":1,"method":"session.info"}"#.into())).await.unwrap();
    let Some(Ok(Message::Text(t))) = ws.next().await else { panic!("no answer") };
    assert_eq!(serde_json::from_str::<Value>(t.as_str()).unwrap()["result"]["room"], ROOM);

    // The console page needs the token as well.
    let page = http_get(addr, "/").await;
    assert!(page.starts_with("HTTP/1.1 401"), "{page}");
    assert!(!page.contains("<script"));
    let page = http_get(addr, &format!("/?token={TOKEN}")).await;
    assert!(page.starts_with("HTTP/1.1 200"), "{}", &page[..page.len().min(200)]);
    assert!(page.contains("molstream bridge console"));
    assert!(http_get(addr, "/elsewhere").await.starts_with("HTTP/1.1 404"));

    // Redis: a request without the token, or with a wrong one, is dropped: the caller times out.
    let mut c = w.redis_client().await;
    c.set_timeout(Duration::from_millis(500));
    c.set_token(Some("wrong".into()));
    assert!(matches!(c.call("session.info", json!({})).await, Err(ClientError::Timeout(_))));
    c.set_token(None);
    assert!(matches!(c.call("session.info", json!({})).await, Err(ClientError::Timeout(_))));
    c.set_token(Some(TOKEN.into()));
    assert_eq!(c.call("session.info", json!({})).await.unwrap()["room"], ROOM);
    drop((c, ws));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_does_not_answer_times_out() {
    let w = World::start(small()).await;

    // WebSocket: the bridge asks for the file, nobody answers: TIMEOUT after the caller timeout.
    let url = format!("ws://{}/ws?token={TOKEN}&room={ROOM}", w.ws_addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(Message::Text(
        r#"{"jsonrpc":"2.0","id":"load","method":"structure.load","params":{"name":"a.pdb"}}"#.into(),
    ))
    .await
    .unwrap();
    let mut asked = None;
    let answer = loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else { panic!("the connection ended") };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        if v["method"] == "file.read" {
            asked = Some(v["params"]["name"].clone());
        } else if v["id"] == "load" {
            break v;
        }
    };
    assert_eq!(asked, Some(json!("a.pdb")));
    assert_eq!(err_of(&answer), rpc::TIMEOUT, "{answer}");

    // Redis: a caller subscribed to the calls channel that never answers.
    let url = w.redis.as_ref().unwrap().url();
    let client = redis::Client::open(url.as_str()).unwrap();
    let chans = Channels::of(PREFIX, ROOM);
    let mut silent = client.get_async_pubsub().await.unwrap();
    silent.subscribe(&chans.calls).await.unwrap();
    silent.subscribe("test:reply").await.unwrap();
    let mut publisher = client.get_multiplexed_async_connection().await.unwrap();
    let env = json!({ "token": TOKEN, "reply_to": "test:reply",
        "payload": { "jsonrpc": "2.0", "id": 9, "method": "structure.load", "params": { "name": "b.pdb" } } });
    let _: i64 = publisher.publish(&chans.rpc, env.to_string()).await.unwrap();
    let mut msgs = silent.on_message();
    let mut asked = false;
    let answer = loop {
        let m = tokio::time::timeout(common::T, msgs.next()).await.unwrap().unwrap();
        let v: Value = serde_json::from_slice(m.get_payload_bytes()).unwrap();
        if m.get_channel_name() == chans.calls {
            assert_eq!(v["payload"]["method"], "file.read");
            assert!(v["reply_to"].as_str().unwrap().starts_with(&chans.calls));
            asked = true;
        } else {
            break v;
        }
    };
    assert!(asked);
    assert_eq!((err_of(&answer), answer["id"].clone()), (rpc::TIMEOUT, json!(9)));
    drop(msgs);

    // A caller answering with an error: the bridge reports it as CALLER_ERROR with the error.
    let c = w.ws_client().await;
    c.on_request(|_, _| Err(rpc::RpcError::new(-5, "no such file here")));
    let e = c.call("structure.load", json!({ "name": "c.pdb" })).await.unwrap_err();
    let ClientError::Rpc(r) = &e else { panic!("{e}") };
    assert_eq!(r.code, rpc::CALLER_ERROR);
    assert_eq!(r.data.as_ref().unwrap()["code"], -5);
    drop(c);
    w.stop().await;
}
