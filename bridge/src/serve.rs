//! Answering a message, whatever the transport: size check, parse, validation, each request
//! run in a task of its own (so that even a panic becomes an [`INTERNAL_ERROR`] answer, never a
//! crash), batches in order, notifications unanswered, results bounded in size.
//!
//! [`INTERNAL_ERROR`]: crate::rpc::INTERNAL_ERROR

use std::sync::Arc;

use serde_json::Value;

use crate::hub::{Caller, Hub};
use crate::methods;
use crate::rpc::{self, Incoming, Item, RpcError};

/// Answers a message given as text; `None` when nothing is to be answered (notifications).
pub(crate) async fn handle_text(hub: &Arc<Hub>, room: Option<&str>, caller: &Caller, text: &str) -> Option<String> {
    match rpc::parse(text, &hub.cfg.limits) {
        Ok(incoming) => handle(hub, room, caller, incoming).await,
        Err(e) => Some(rpc::failure(Value::Null, &e).to_string()),
    }
}

/// Answers a message already parsed.
pub(crate) async fn handle_value(hub: &Arc<Hub>, room: Option<&str>, caller: &Caller, v: Value) -> Option<String> {
    match rpc::parse_value(v, &hub.cfg.limits) {
        Ok(incoming) => handle(hub, room, caller, incoming).await,
        Err(e) => Some(rpc::failure(Value::Null, &e).to_string()),
    }
}

async fn handle(hub: &Arc<Hub>, room: Option<&str>, caller: &Caller, incoming: Incoming) -> Option<String> {
    let limit = hub.cfg.limits.max_response_bytes;
    match incoming {
        Incoming::Single(item) => one(hub, room, caller, item).await.map(|r| rpc::bounded(&r, limit)),
        Incoming::Batch(items) => {
            let mut out: Vec<String> = Vec::new();
            let mut total = 2usize;
            for item in items {
                let Some(r) = one(hub, room, caller, item).await else { continue };
                let mut text = rpc::bounded(&r, limit);
                if total + text.len() + 1 > limit {
                    // The batch's answer as a whole stays within the limit too.
                    let id = r.get("id").cloned().unwrap_or(Value::Null);
                    let e = rpc::too_large(rpc::RESULT_TOO_LARGE, "batch's answer", total + text.len(), limit);
                    text = rpc::failure(id, &e).to_string();
                }
                total += text.len() + 1;
                out.push(text);
            }
            (!out.is_empty()).then(|| format!("[{}]", out.join(",")))
        }
    }
}

async fn one(hub: &Arc<Hub>, room: Option<&str>, caller: &Caller, item: Item) -> Option<Value> {
    let req = match item {
        Item::Invalid { id, error } => return Some(rpc::failure(id, &error)),
        Item::Call(req) => req,
    };
    let id = req.id.clone();
    let method = req.method.clone();
    let (h, r, c) = (hub.clone(), room.map(str::to_owned), caller.clone());
    let task = tokio::spawn(async move { methods::call(&h, r.as_deref(), &c, req).await });
    let outcome = match task.await {
        Ok(r) => r,
        Err(e) if e.is_panic() => {
            tracing::error!(%method, "a request panicked");
            Err(RpcError::new(rpc::INTERNAL_ERROR, format!("internal error while serving {method}")))
        }
        Err(_) => Err(RpcError::new(rpc::INTERNAL_ERROR, "the request was cancelled")),
    };
    match (id, outcome) {
        (Some(id), Ok(v)) => Some(rpc::success(id, v)),
        (Some(id), Err(e)) => Some(rpc::failure(id, &e)),
        (None, Err(e)) => {
            tracing::debug!(%method, error = %e, "a notification failed (not answered)");
            None
        }
        (None, Ok(_)) => None,
    }
}
