//! molstream-bridge (in progress)
pub mod json;
pub mod rpc;
