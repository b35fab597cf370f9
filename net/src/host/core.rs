//! [`HostCore`]: a plugin host's protocol state, sans-IO. It registers the host's plugins,
//! keeps the table of running instances, turns relay messages into [`HostEvent`]s and the
//! host's decisions into [`PeerMsg`]s.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::api::ToPlugin;
use crate::proto::{InstanceId, PeerMsg, PluginId, PluginMeta, RelayMsg, StopReason, UserId};

/// What the host driver must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum HostEvent {
    /// Plugin number `local` (registration order) was registered as `plugin`.
    Registered {
        /// Registration index.
        local: usize,
        /// Relay id.
        plugin: PluginId,
    },
    /// The relay refused plugin number `local`.
    RegisterFailed {
        /// Registration index.
        local: usize,
        /// Why.
        reason: String,
    },
    /// Start an instance of plugin `local` for `room`.
    Start {
        /// The instance.
        instance: InstanceId,
        /// Registration index of its plugin.
        local: usize,
        /// Its room.
        room: String,
        /// The room's presenter.
        presenter: UserId,
    },
    /// Stop an instance (the relay already forgot it).
    Stop {
        /// The instance.
        instance: InstanceId,
        /// Why.
        reason: StopReason,
    },
    /// A user's request to an instance.
    Input {
        /// The instance.
        instance: InstanceId,
        /// The user.
        from: UserId,
        /// The decoded request.
        request: ToPlugin,
    },
    /// The presenter of an instance's room changed.
    Presenter {
        /// The instance.
        instance: InstanceId,
        /// The new presenter.
        presenter: UserId,
    },
    /// Send a keyframe on a frame channel.
    SendKeyframe {
        /// The instance.
        instance: InstanceId,
        /// The channel.
        channel: u32,
    },
}

/// A relay message the host cannot accept: the driver drops the connection and reconnects.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("relay sent {0}, which a plugin host does not expect")]
pub struct UnexpectedMessage(pub &'static str);

#[derive(Debug)]
struct Running {
    local: usize,
}

/// The plugin host's protocol state machine.
#[derive(Debug)]
pub struct HostCore {
    names: Vec<String>,
    ids: Vec<Option<PluginId>>,
    instances: BTreeMap<InstanceId, Running>,
    transmits: VecDeque<PeerMsg>,
    events: VecDeque<HostEvent>,
}

impl HostCore {
    /// A host registering `plugins` (in this order, `local` = index) once connected.
    #[must_use]
    pub fn new(plugins: &[PluginMeta]) -> Self {
        let mut transmits = VecDeque::new();
        for (i, meta) in plugins.iter().enumerate() {
            let local = u32::try_from(i).unwrap_or(u32::MAX);
            transmits.push_back(PeerMsg::RegisterPlugin { local, meta: meta.clone() });
        }
        Self {
            names: plugins.iter().map(|m| m.name.clone()).collect(),
            ids: vec![None; plugins.len()],
            instances: BTreeMap::new(),
            transmits,
            events: VecDeque::new(),
        }
    }

    /// Next message to send to the relay.
    pub fn poll_transmit(&mut self) -> Option<PeerMsg> {
        self.transmits.pop_front()
    }

    /// Next event for the driver.
    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.events.pop_front()
    }

    /// The relay id of plugin `local`, once registered.
    #[must_use]
    pub fn plugin_id(&self, local: usize) -> Option<PluginId> {
        self.ids.get(local).copied().flatten()
    }

    /// Running instances.
    #[must_use]
    pub fn instance_count(&self) -> usize {
        self.instances.len()
    }

    /// One message from the relay.
    ///
    /// # Errors
    /// [`UnexpectedMessage`] for messages only session clients receive (or a second Welcome):
    /// the relay is not speaking this protocol.
    pub fn handle_message(&mut self, msg: RelayMsg) -> Result<(), UnexpectedMessage> {
        match msg {
            RelayMsg::Pong { .. } => {}
            RelayMsg::Registered { local, plugin } => {
                let local = local as usize;
                if let Some(slot) = self.ids.get_mut(local) {
                    *slot = Some(plugin);
                    tracing::info!(plugin = %plugin, name = %self.names[local], "plugin registered");
                    self.events.push_back(HostEvent::Registered { local, plugin });
                }
            }
            RelayMsg::RegisterFailed { local, reason } => {
                let local = local as usize;
                if local < self.ids.len() {
                    tracing::error!(name = %self.names[local], %reason, "plugin registration refused");
                    self.events.push_back(HostEvent::RegisterFailed { local, reason });
                }
            }
            RelayMsg::StartInstance { instance, plugin, room, presenter } => {
                let Some(local) = self.ids.iter().position(|id| *id == Some(plugin)) else {
                    self.transmits.push_back(PeerMsg::InstanceEnded {
                        instance,
                        error: Some(format!("{plugin} is not served by this host")),
                    });
                    return Ok(());
                };
                if self.instances.contains_key(&instance) {
                    return Ok(());
                }
                self.instances.insert(instance, Running { local });
                self.events.push_back(HostEvent::Start { instance, local, room, presenter });
            }
            RelayMsg::StopInstance { instance, reason } => {
                if self.instances.remove(&instance).is_some() {
                    self.events.push_back(HostEvent::Stop { instance, reason });
                }
            }
            RelayMsg::InstanceInput { instance, from, body } => {
                if self.instances.contains_key(&instance) {
                    match ToPlugin::decode(&body) {
                        Ok(request) => self.events.push_back(HostEvent::Input { instance, from, request }),
                        Err(e) => {
                            tracing::warn!(%instance, %from, error = %e, "undecodable request from a user dropped");
                        }
                    }
                }
            }
            RelayMsg::InstancePresenter { instance, presenter } => {
                if self.instances.contains_key(&instance) {
                    self.events.push_back(HostEvent::Presenter { instance, presenter });
                }
            }
            RelayMsg::SendKeyframe { instance, channel } => {
                if self.instances.contains_key(&instance) {
                    self.events.push_back(HostEvent::SendKeyframe { instance, channel });
                }
            }
            RelayMsg::Welcome { .. } => return Err(UnexpectedMessage("a second Welcome")),
            RelayMsg::Refused { .. } => return Err(UnexpectedMessage("Refused after the handshake")),
            RelayMsg::RoomState { .. }
            | RelayMsg::UserJoined { .. }
            | RelayMsg::UserLeft { .. }
            | RelayMsg::PresenterChanged { .. }
            | RelayMsg::Plugins { .. }
            | RelayMsg::InstanceStarted { .. }
            | RelayMsg::InstanceStopped { .. }
            | RelayMsg::FromInstance { .. }
            | RelayMsg::Activated { .. }
            | RelayMsg::RequestFailed { .. }
            | RelayMsg::UplinkKeyframe { .. }
            | RelayMsg::FromUser { .. } => return Err(UnexpectedMessage("a session client message")),
        }
        Ok(())
    }

    /// An instance task ended by itself: `error` is its failure (an error or a panic). The
    /// relay is told, unless it stopped the instance first.
    pub fn instance_ended(&mut self, instance: InstanceId, error: Option<String>) {
        if self.instances.remove(&instance).is_some() {
            self.transmits.push_back(PeerMsg::InstanceEnded { instance, error });
        }
    }

    /// The registration index of a running instance's plugin.
    #[must_use]
    pub fn instance_plugin(&self, instance: InstanceId) -> Option<usize> {
        self.instances.get(&instance).map(|r| r.local)
    }

    /// A message from an instance to its room, presenter or a user (only while it runs).
    pub fn instance_message(&mut self, msg: PeerMsg) {
        let instance = match &msg {
            PeerMsg::ToRoom { instance, .. }
            | PeerMsg::ToPresenter { instance, .. }
            | PeerMsg::ToUser { instance, .. }
            | PeerMsg::ForgetChannels { instance, .. } => *instance,
            _ => return,
        };
        if self.instances.contains_key(&instance) {
            self.transmits.push_back(msg);
        }
    }
}

/// Builds the body of an integration answer (kept here so the core and the driver agree).
#[must_use]
pub fn integration_answer(req: u32, result: Result<Bytes, String>) -> Bytes {
    crate::api::ToSession::IntegrationResult { req, result }.encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str) -> PluginMeta {
        PluginMeta { name: name.into(), ..PluginMeta::default() }
    }

    #[test]
    fn registers_starts_routes_and_stops() {
        let mut core = HostCore::new(&[meta("a"), meta("b")]);
        let regs: Vec<PeerMsg> = std::iter::from_fn(|| core.poll_transmit()).collect();
        assert_eq!(regs.len(), 2);
        core.handle_message(RelayMsg::Registered { local: 1, plugin: PluginId(7) }).unwrap();
        assert_eq!(core.poll_event(), Some(HostEvent::Registered { local: 1, plugin: PluginId(7) }));
        assert_eq!(core.plugin_id(1), Some(PluginId(7)));
        assert_eq!(core.plugin_id(0), None);
        // A start for a plugin this host does not serve is answered with an error.
        core.handle_message(RelayMsg::StartInstance {
            instance: InstanceId(1),
            plugin: PluginId(99),
            room: "r".into(),
            presenter: UserId(1),
        })
        .unwrap();
        assert!(matches!(core.poll_transmit(), Some(PeerMsg::InstanceEnded { error: Some(_), .. })));
        core.handle_message(RelayMsg::StartInstance {
            instance: InstanceId(2),
            plugin: PluginId(7),
            room: "r".into(),
            presenter: UserId(1),
        })
        .unwrap();
        assert_eq!(
            core.poll_event(),
            Some(HostEvent::Start { instance: InstanceId(2), local: 1, room: "r".into(), presenter: UserId(1) })
        );
        core.handle_message(RelayMsg::InstanceInput {
            instance: InstanceId(2),
            from: UserId(3),
            body: ToPlugin::Run.encode(),
        })
        .unwrap();
        assert_eq!(
            core.poll_event(),
            Some(HostEvent::Input { instance: InstanceId(2), from: UserId(3), request: ToPlugin::Run })
        );
        // Garbage bodies and unknown instances are dropped.
        core.handle_message(RelayMsg::InstanceInput {
            instance: InstanceId(2),
            from: UserId(3),
            body: Bytes::from_static(&[200]),
        })
        .unwrap();
        core.handle_message(RelayMsg::InstanceInput {
            instance: InstanceId(5),
            from: UserId(3),
            body: ToPlugin::Run.encode(),
        })
        .unwrap();
        assert_eq!(core.poll_event(), None);
        // Stopped by the relay: no InstanceEnded is sent when the task then ends.
        core.handle_message(RelayMsg::StopInstance { instance: InstanceId(2), reason: StopReason::RoomEmpty }).unwrap();
        assert!(matches!(core.poll_event(), Some(HostEvent::Stop { .. })));
        core.instance_ended(InstanceId(2), None);
        assert_eq!(core.poll_transmit(), None);
        // Messages of a stopped instance are not sent.
        core.instance_message(PeerMsg::ToRoom {
            instance: InstanceId(2),
            retain: crate::proto::Retain::No,
            body: Bytes::new(),
        });
        assert_eq!(core.poll_transmit(), None);
    }

    #[test]
    fn a_crashed_instance_is_reported_once() {
        let mut core = HostCore::new(&[meta("a")]);
        while core.poll_transmit().is_some() {}
        core.handle_message(RelayMsg::Registered { local: 0, plugin: PluginId(1) }).unwrap();
        core.handle_message(RelayMsg::StartInstance {
            instance: InstanceId(4),
            plugin: PluginId(1),
            room: "r".into(),
            presenter: UserId(1),
        })
        .unwrap();
        core.instance_ended(InstanceId(4), Some("panicked: boom".into()));
        core.instance_ended(InstanceId(4), Some("again".into()));
        assert_eq!(
            core.poll_transmit(),
            Some(PeerMsg::InstanceEnded { instance: InstanceId(4), error: Some("panicked: boom".into()) })
        );
        assert_eq!(core.poll_transmit(), None);
    }

    #[test]
    fn session_messages_from_the_relay_are_a_protocol_error() {
        let mut core = HostCore::new(&[]);
        assert!(core.handle_message(RelayMsg::UserLeft { user: UserId(1) }).is_err());
        assert!(core.handle_message(RelayMsg::Pong { nonce: 1 }).is_ok());
    }
}
