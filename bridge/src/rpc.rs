//! JSON-RPC 2.0, transport-free: parsing and validating requests (single and batch), building
//! responses and errors, the error codes, and the size limits.
//!
//! Every message is checked before anything acts on it: a text that is not JSON gets
//! [`PARSE_ERROR`], a value that is not a request object [`INVALID_REQUEST`], an unknown method
//! [`METHOD_NOT_FOUND`], parameters of the wrong shape [`INVALID_PARAMS`]. Notifications (no
//! `id`) are never answered, not even with an error, as the specification says.

use serde_json::{Map, Value, json};

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error of the bridge.
pub const INTERNAL_ERROR: i64 = -32603;

/// The session failed (the instance is no longer connected, the presenter changed mid-call).
pub const SESSION_ERROR: i64 = -32000;
/// No session of that name has the bridge active (`data.sessions` lists those that do).
pub const NO_SESSION: i64 = -32001;
/// A complex, atom, shape, stream or menu named in the parameters does not exist
/// (`data.kind`, `data.id`).
pub const NOT_FOUND: i64 = -32002;
/// The presenter, or the caller asked by the bridge, did not answer in time.
pub const TIMEOUT: i64 = -32003;
/// A structure file could not be loaded (`message` is the loader's error, with file and line).
pub const LOAD_FAILED: i64 = -32004;
/// The session does not support the request (e.g. a stream kind on the wrong target).
pub const UNSUPPORTED: i64 = -32005;
/// The stream was interrupted (`data.reason`): its complex was removed or replaced, its shape
/// destroyed, or the presenter changed.
pub const STREAM_INTERRUPTED: i64 = -32006;
/// The request is larger than the bridge accepts (`data.limit`, `data.size`, in bytes).
pub const REQUEST_TOO_LARGE: i64 = -32010;
/// The result is larger than the bridge sends (`data.limit`, `data.size`, in bytes): ask for
/// fewer complexes or fields (`complexes.get` `fields`), or export the structure instead.
pub const RESULT_TOO_LARGE: i64 = -32011;
/// The caller answered the bridge's own request with an error (`data` is that error).
pub const CALLER_ERROR: i64 = -32020;
/// Asking the plugin list or activating a plugin failed (the relay refused it).
pub const PLUGIN_ERROR: i64 = -32030;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The code (the standard ones above, or an application code in -32000..-32099).
    pub code: i64,
    /// A short description.
    pub message: String,
    /// More about it, if anything.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    /// The same error with `data`.
    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// [`INVALID_PARAMS`] with a message.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    /// [`NOT_FOUND`] for `kind` (complex, atom, shape, stream, menu, plugin) `id`.
    pub fn not_found(kind: &str, id: Value) -> Self {
        let message = format!("no {kind} {id}");
        let mut data = Map::new();
        data.insert("kind".into(), kind.into());
        data.insert("id".into(), id);
        Self::new(NOT_FOUND, message).with_data(Value::Object(data))
    }

    /// The error as a JSON object.
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), self.code.into());
        m.insert("message".into(), self.message.clone().into());
        if let Some(d) = &self.data {
            m.insert("data".into(), d.clone());
        }
        Value::Object(m)
    }

    /// Reads an error object (as a caller's answer carries it).
    #[must_use]
    pub fn from_value(v: &Value) -> Option<Self> {
        let o = v.as_object()?;
        Some(Self {
            code: o.get("code")?.as_i64()?,
            message: o.get("message")?.as_str()?.to_owned(),
            data: o.get("data").cloned(),
        })
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JSON-RPC error {}: {}", self.code, self.message)?;
        if let Some(d) = &self.data {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

/// Size limits of the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request (one message: a request or a batch), bytes. Larger ones get
    /// [`REQUEST_TOO_LARGE`].
    pub max_request_bytes: usize,
    /// Largest response message, bytes. A result that would pass it is replaced by
    /// [`RESULT_TOO_LARGE`].
    pub max_response_bytes: usize,
    /// Most requests in one batch.
    pub max_batch: usize,
}

/// 16 MiB: a deep complex of about 100,000 atoms with every field is ≈ 12 MB of JSON, so it
/// passes; a million-atom one does not and is refused with a clear error.
pub const DEFAULT_MAX_MESSAGE: usize = 16 << 20;

impl Default for Limits {
    fn default() -> Self {
        Self { max_request_bytes: DEFAULT_MAX_MESSAGE, max_response_bytes: DEFAULT_MAX_MESSAGE, max_batch: 256 }
    }
}

/// A request id: a string, a number or null.
pub type Id = Value;

/// One valid request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `None` for a notification (not answered).
    pub id: Option<Id>,
    /// The method.
    pub method: String,
    /// The parameters (an object or an array), if any.
    pub params: Option<Value>,
}

/// One element of a message: a valid request, or the error answering an invalid one.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A valid request.
    Call(Request),
    /// An invalid request: the answer (`id` as far as it could be read, else null).
    Invalid {
        /// The id to answer with.
        id: Id,
        /// Why.
        error: RpcError,
    },
}

/// A message received: one item, or a batch of them.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A single request.
    Single(Item),
    /// A batch (not empty).
    Batch(Vec<Item>),
}

/// A valid id: a string, a number or null (fractions are allowed but discouraged).
fn valid_id(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Null)
}

/// Validates one element of a message.
#[must_use]
pub fn item(v: Value) -> Item {
    let Value::Object(mut o) = v else {
        return Item::Invalid { id: Value::Null, error: RpcError::new(INVALID_REQUEST, "a request must be an object") };
    };
    let id = o.remove("id");
    let answer_id = id.clone().filter(valid_id).unwrap_or(Value::Null);
    let invalid = |msg: &str| Item::Invalid { id: answer_id.clone(), error: RpcError::new(INVALID_REQUEST, msg) };
    if o.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return invalid("\"jsonrpc\" must be \"2.0\"");
    }
    if let Some(id) = &id
        && !valid_id(id)
    {
        return invalid("\"id\" must be a string, a number or null");
    }
    let method = match o.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => return invalid("\"method\" must be a string"),
        None => return invalid("\"method\" is missing"),
    };
    let params = o.remove("params");
    if let Some(p) = &params
        && !p.is_object()
        && !p.is_array()
    {
        return invalid("\"params\" must be an object or an array");
    }
    if let Some(k) = o.keys().find(|k| k.as_str() != "jsonrpc") {
        return invalid(&format!("unknown member {k:?} in a request"));
    }
    Item::Call(Request { id, method, params })
}

/// Parses a message, checking its size first.
///
/// # Errors
/// The error to answer the whole message with (id null): [`REQUEST_TOO_LARGE`],
/// [`PARSE_ERROR`], or [`INVALID_REQUEST`] for an empty or oversized batch or a value that is
/// neither an object nor an array.
pub fn parse(text: &str, limits: &Limits) -> Result<Incoming, RpcError> {
    if text.len() > limits.max_request_bytes {
        return Err(too_large(REQUEST_TOO_LARGE, "request", text.len(), limits.max_request_bytes));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| RpcError::new(PARSE_ERROR, format!("parse error: {e}")))?;
    parse_value(v, limits)
}

/// Validates a message already parsed.
///
/// # Errors
/// As [`parse`], without the size and syntax checks.
pub fn parse_value(v: Value, limits: &Limits) -> Result<Incoming, RpcError> {
    match v {
        Value::Array(items) if items.is_empty() => Err(RpcError::new(INVALID_REQUEST, "an empty batch")),
        Value::Array(items) if items.len() > limits.max_batch => Err(RpcError::new(
            INVALID_REQUEST,
            format!("a batch of {} requests; at most {} are taken", items.len(), limits.max_batch),
        )
        .with_data(json!({ "limit": limits.max_batch, "size": items.len() }))),
        Value::Array(items) => Ok(Incoming::Batch(items.into_iter().map(item).collect())),
        Value::Object(_) => Ok(Incoming::Single(item(v))),
        _ => Err(RpcError::new(INVALID_REQUEST, "a message must be a request object or a batch array")),
    }
}

/// The error for a message or result of `size` bytes above `limit`.
#[must_use]
pub fn too_large(code: i64, what: &str, size: usize, limit: usize) -> RpcError {
    let hint = if code == RESULT_TOO_LARGE {
        "; ask for fewer complexes or fields (complexes.get \"fields\"), or use structure.export"
    } else {
        ""
    };
    RpcError::new(code, format!("the {what} is {size} bytes; this bridge takes at most {limit}{hint}"))
        .with_data(json!({ "limit": limit, "size": size }))
}

/// A success response.
#[must_use]
pub fn success(id: Id, result: Value) -> Value {
    let mut m = Map::new();
    m.insert("jsonrpc".into(), "2.0".into());
    m.insert("id".into(), id);
    m.insert("result".into(), result);
    Value::Object(m)
}

/// An error response.
#[must_use]
pub fn failure(id: Id, error: &RpcError) -> Value {
    let mut m = Map::new();
    m.insert("jsonrpc".into(), "2.0".into());
    m.insert("id".into(), id);
    m.insert("error".into(), error.to_value());
    Value::Object(m)
}

/// A request (with `id`) or a notification (`id` `None`).
#[must_use]
pub fn request(id: Option<Id>, method: &str, params: Value) -> Value {
    let mut m = Map::new();
    m.insert("jsonrpc".into(), "2.0".into());
    if let Some(id) = id {
        m.insert("id".into(), id);
    }
    m.insert("method".into(), method.into());
    m.insert("params".into(), params);
    Value::Object(m)
}

/// An answer received to one of the bridge's own requests (or a caller's): its id and outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The id it answers.
    pub id: Id,
    /// `result`, or `error`.
    pub outcome: Result<Value, RpcError>,
}

/// Reads `v` as a response object, if it is one (`result` or `error`, no `method`).
#[must_use]
pub fn as_answer(v: &Value) -> Option<Answer> {
    let o = v.as_object()?;
    if o.contains_key("method") || o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return None;
    }
    let id = o.get("id")?.clone();
    match (o.get("result"), o.get("error")) {
        (Some(r), None) => Some(Answer { id, outcome: Ok(r.clone()) }),
        (None, Some(e)) => Some(Answer {
            id,
            outcome: Err(
                RpcError::from_value(e).unwrap_or_else(|| RpcError::new(INVALID_REQUEST, "a malformed error object"))
            ),
        }),
        _ => None,
    }
}

/// Serializes `response`; if it is above `limit` bytes, the error [`RESULT_TOO_LARGE`] for the
/// same id instead.
#[must_use]
pub fn bounded(response: &Value, limit: usize) -> String {
    let text = response.to_string();
    if text.len() <= limit {
        return text;
    }
    let id = response.get("id").cloned().unwrap_or(Value::Null);
    failure(id, &too_large(RESULT_TOO_LARGE, "result", text.len(), limit)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> Limits {
        Limits { max_request_bytes: 1000, max_response_bytes: 100, max_batch: 3 }
    }

    fn single(text: &str) -> Item {
        match parse(text, &lim()).unwrap() {
            Incoming::Single(i) => i,
            Incoming::Batch(_) => panic!("a batch"),
        }
    }

    fn code(i: &Item) -> i64 {
        match i {
            Item::Invalid { error, .. } => error.code,
            Item::Call(_) => 0,
        }
    }

    #[test]
    fn requests_and_notifications() {
        let i = single(r#"{"jsonrpc":"2.0","id":7,"method":"complexes.list"}"#);
        assert_eq!(i, Item::Call(Request { id: Some(json!(7)), method: "complexes.list".into(), params: None }));
        let i = single(r#"{"jsonrpc":"2.0","method":"notify","params":{"text":"hi"}}"#);
        assert!(matches!(i, Item::Call(Request { id: None, .. })));
        let i = single(r#"{"jsonrpc":"2.0","id":null,"method":"m","params":[1]}"#);
        assert!(matches!(i, Item::Call(Request { id: Some(Value::Null), .. })));
    }

    #[test]
    fn invalid_requests_keep_their_id_when_valid() {
        for (text, id) in [
            (r#"{"jsonrpc":"1.0","id":1,"method":"m"}"#, json!(1)),
            (r#"{"id":"a","method":"m"}"#, json!("a")),
            (r#"{"jsonrpc":"2.0","id":2,"method":5}"#, json!(2)),
            (r#"{"jsonrpc":"2.0","id":3}"#, json!(3)),
            (r#"{"jsonrpc":"2.0","id":4,"method":"m","params":"x"}"#, json!(4)),
            (r#"{"jsonrpc":"2.0","id":{"x":1},"method":"m"}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":5,"method":"m","extra":1}"#, json!(5)),
        ] {
            match single(text) {
                Item::Invalid { id: got, error } => {
                    assert_eq!(got, id, "{text}");
                    assert_eq!(error.code, INVALID_REQUEST, "{text}");
                }
                Item::Call(c) => panic!("{text} accepted as {c:?}"),
            }
        }
    }

    #[test]
    fn messages_that_are_no_requests() {
        assert_eq!(parse("{not json", &lim()).unwrap_err().code, PARSE_ERROR);
        assert_eq!(parse("", &lim()).unwrap_err().code, PARSE_ERROR);
        assert_eq!(parse("[]", &lim()).unwrap_err().code, INVALID_REQUEST);
        assert_eq!(parse("42", &lim()).unwrap_err().code, INVALID_REQUEST);
        assert_eq!(parse("[1,2,3,4]", &lim()).unwrap_err().code, INVALID_REQUEST);
        let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{}"}}"#, "x".repeat(1000));
        let e = parse(&big, &lim()).unwrap_err();
        assert_eq!(e.code, REQUEST_TOO_LARGE);
        assert_eq!(e.data.unwrap()["limit"], 1000);
        // Nesting beyond serde_json's recursion limit is a parse error, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        let l = Limits { max_request_bytes: 10_000, ..lim() };
        assert_eq!(parse(&deep, &l).unwrap_err().code, PARSE_ERROR);
    }

    #[test]
    fn batches_validate_each_element() {
        let Incoming::Batch(items) =
            parse(r#"[{"jsonrpc":"2.0","id":1,"method":"a"}, 1, {"jsonrpc":"2.0","method":"b"}]"#, &lim()).unwrap()
        else {
            panic!("not a batch")
        };
        assert_eq!(items.iter().map(code).collect::<Vec<_>>(), vec![0, INVALID_REQUEST, 0]);
    }

    #[test]
    fn answers_are_recognised() {
        let a = as_answer(&json!({"jsonrpc":"2.0","id":3,"result":{"x":1}})).unwrap();
        assert_eq!(a.outcome, Ok(json!({"x":1})));
        let a = as_answer(&json!({"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"no"}})).unwrap();
        assert_eq!(a.outcome.unwrap_err().code, -1);
        assert!(as_answer(&json!({"jsonrpc":"2.0","id":3,"method":"m"})).is_none());
        assert!(as_answer(&json!({"jsonrpc":"2.0","id":3})).is_none());
    }

    #[test]
    fn oversized_results_become_errors() {
        let small = success(json!(1), json!("ok"));
        assert_eq!(bounded(&small, 100), small.to_string());
        let big = success(json!(2), json!("y".repeat(200)));
        let v: Value = serde_json::from_str(&bounded(&big, 100)).unwrap();
        assert_eq!(v["id"], 2);
        assert_eq!(v["error"]["code"], RESULT_TOO_LARGE);
        assert!(v["error"]["data"]["size"].as_u64().unwrap() > 200);
    }
}
