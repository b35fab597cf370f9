//! The plugin API layer: what the opaque `body` of `ToInstance` / `InstanceInput` (session →
//! instance, [`ToPlugin`]) and of `ToRoom` / `ToUser` / `FromInstance` (instance → session,
//! [`ToSession`]) carries. Same encoding as the control messages ([`crate::proto::wire`]).
//!
//! This first set covers the instance lifecycle (run, advanced settings), notifications and
//! integration hooks with request/response. Workspace, shapes, menus and streams extend it
//! with new tags.

use bytes::Bytes;

use crate::menu::{MENU_TAG_LAST, MenuEvent, MenuUpdate, UPDATE_TAG_FIRST};
use crate::proto::wire::{DecodeError, Reader, Writer};
use crate::proto::{MAX_BODY, MAX_NAME, MAX_TEXT};

/// Severity of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Information.
    Info,
    /// Something succeeded.
    Success,
    /// A warning.
    Warning,
    /// An error.
    Error,
}

/// Session → instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToPlugin {
    /// Tag 1. The user pressed run.
    Run,
    /// Tag 2. The user opened the advanced settings.
    AdvancedSettings,
    /// Tag 3. An integration hook the plugin declared, with a request id for the answer.
    Integration {
        /// Request id, echoed in [`ToSession::IntegrationResult`].
        req: u32,
        /// Hook name (one of the plugin's `integrations`).
        name: String,
        /// Arguments (hook-specific).
        args: Bytes,
    },
    /// Tag 60 (60–79 are reserved for menus). A user's action in one of the instance's menus.
    Menu(MenuEvent),
}

/// Instance → session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToSession {
    /// Tag 1. A notification for the users.
    Notify {
        /// Severity.
        level: Level,
        /// Text.
        text: String,
    },
    /// Tag 2. The answer to an integration request.
    IntegrationResult {
        /// The request.
        req: u32,
        /// The hook's result, or why it failed.
        result: Result<Bytes, String>,
    },
    /// Tags 60–65 (60–79 are reserved for menus). A change to one of the instance's menus.
    Menu(MenuUpdate),
}

fn level_tag(l: Level) -> u8 {
    match l {
        Level::Info => 0,
        Level::Success => 1,
        Level::Warning => 2,
        Level::Error => 3,
    }
}

impl ToPlugin {
    /// Encodes the body.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        match self {
            Self::Run => w.u8(1),
            Self::AdvancedSettings => w.u8(2),
            Self::Integration { req, name, args } => {
                w.u8(3);
                w.u32(*req);
                w.str(name);
                w.bytes(args);
            }
            Self::Menu(e) => e.encode_into(&mut w),
        }
        Bytes::from(w.buf)
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// Unknown tags, truncation, limits, trailing bytes.
    pub fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let m = match r.u8("plugin api tag")? {
            1 => Self::Run,
            2 => Self::AdvancedSettings,
            3 => Self::Integration {
                req: r.u32("req")?,
                name: r.name("integration", MAX_NAME)?,
                args: r.bytes("args", MAX_BODY)?,
            },
            tag @ UPDATE_TAG_FIRST..=MENU_TAG_LAST => Self::Menu(MenuEvent::decode_fields(tag, &mut r)?),
            tag => return Err(DecodeError::UnknownTag { what: "plugin api message", tag }),
        };
        r.finish()?;
        Ok(m)
    }
}

impl ToSession {
    /// Encodes the body.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        match self {
            Self::Notify { level, text } => {
                w.u8(1);
                w.u8(level_tag(*level));
                w.str(text);
            }
            Self::IntegrationResult { req, result } => {
                w.u8(2);
                w.u32(*req);
                match result {
                    Ok(b) => {
                        w.u8(0);
                        w.bytes(b);
                    }
                    Err(e) => {
                        w.u8(1);
                        w.str(e);
                    }
                }
            }
            Self::Menu(u) => u.encode_into(&mut w),
        }
        Bytes::from(w.buf)
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// Unknown tags, truncation, limits, trailing bytes.
    pub fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let m = match r.u8("session api tag")? {
            1 => {
                let level = match r.u8("level")? {
                    0 => Level::Info,
                    1 => Level::Success,
                    2 => Level::Warning,
                    3 => Level::Error,
                    tag => return Err(DecodeError::UnknownTag { what: "level", tag }),
                };
                Self::Notify { level, text: r.str("text", MAX_TEXT)? }
            }
            2 => {
                let req = r.u32("req")?;
                let result = match r.u8("result")? {
                    0 => Ok(r.bytes("result", MAX_BODY)?),
                    1 => Err(r.str("error", MAX_TEXT)?),
                    tag => return Err(DecodeError::UnknownTag { what: "result", tag }),
                };
                Self::IntegrationResult { req, result }
            }
            tag @ UPDATE_TAG_FIRST..=MENU_TAG_LAST => Self::Menu(MenuUpdate::decode_fields(tag, &mut r)?),
            tag => return Err(DecodeError::UnknownTag { what: "session api message", tag }),
        };
        r.finish()?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_truncations_fail() {
        let to_plugin = [
            ToPlugin::Run,
            ToPlugin::AdvancedSettings,
            ToPlugin::Integration { req: 9, name: "minimization.start".into(), args: Bytes::from_static(b"steps=10") },
        ];
        for m in to_plugin {
            let b = m.encode();
            assert_eq!(ToPlugin::decode(&b).unwrap(), m);
            for cut in 0..b.len() {
                assert!(ToPlugin::decode(&b.slice(..cut)).is_err());
            }
        }
        let to_session = [
            ToSession::Notify { level: Level::Warning, text: "careful".into() },
            ToSession::Notify { level: Level::Success, text: String::new() },
            ToSession::IntegrationResult { req: 1, result: Ok(Bytes::from_static(b"done")) },
            ToSession::IntegrationResult { req: 2, result: Err("no such hook".into()) },
        ];
        for m in to_session {
            let b = m.encode();
            assert_eq!(ToSession::decode(&b).unwrap(), m);
            for cut in 0..b.len() {
                assert!(ToSession::decode(&b.slice(..cut)).is_err());
            }
        }
        assert!(ToPlugin::decode(&Bytes::from_static(&[9])).is_err());
        assert!(ToSession::decode(&Bytes::from_static(&[1, 4, 0])).is_err());
    }
}
