//! Notifications shown as toasts in the bottom-right corner, each for a few seconds.

use std::time::{Duration, Instant};

/// How serious a notification is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something happened (a file loaded, a screenshot saved).
    Info,
    /// Something succeeded (a plugin's work done).
    Success,
    /// Something to look at.
    Warning,
    /// Something failed.
    Error,
}

/// One notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Toast {
    /// Severity.
    pub level: Level,
    /// Text shown.
    pub text: String,
    /// When it was raised.
    pub at: Instant,
}

/// The notifications still on screen.
#[derive(Clone, Debug)]
pub struct Toasts {
    items: Vec<Toast>,
    /// How long a toast stays.
    pub lifetime: Duration,
    /// Most toasts shown at once (the oldest go first).
    pub max: usize,
}

impl Default for Toasts {
    fn default() -> Self {
        Self { items: Vec::new(), lifetime: Duration::from_secs(6), max: 5 }
    }
}

impl Toasts {
    /// Raises a notification at `now`.
    pub fn push(&mut self, level: Level, text: impl Into<String>, now: Instant) {
        self.items.push(Toast { level, text: text.into(), at: now });
        if self.items.len() > self.max {
            let extra = self.items.len() - self.max;
            self.items.drain(..extra);
        }
    }

    /// The notifications on screen at `now` (expired ones are dropped).
    pub fn current(&mut self, now: Instant) -> &[Toast] {
        let lifetime = self.lifetime;
        self.items.retain(|t| now.saturating_duration_since(t.at) < lifetime);
        &self.items
    }

    /// Draws the toasts in the bottom-right corner of `ctx`'s screen; returns whether any is
    /// shown (the caller then keeps repainting so they expire).
    pub fn show(&mut self, ctx: &egui::Context, now: Instant) -> bool {
        let items = self.current(now).to_vec();
        if items.is_empty() {
            return false;
        }
        egui::Area::new(egui::Id::unique("molstream-toasts"))
            .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-12.0, -12.0))
            .interactable(false)
            .show(ctx, |ui| {
                for t in &items {
                    let color = match t.level {
                        Level::Info => egui::Color32::from_rgb(40, 90, 160),
                        Level::Success => egui::Color32::from_rgb(30, 130, 60),
                        Level::Warning => egui::Color32::from_rgb(170, 120, 20),
                        Level::Error => egui::Color32::from_rgb(180, 40, 40),
                    };
                    egui::Frame::popup(ui.style()).stroke(egui::Stroke::new(1.5, color)).show(ui, |ui| {
                        ui.colored_label(color, &t.text);
                    });
                }
            });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toasts_expire_and_are_bounded() {
        let t0 = Instant::now();
        let mut toasts = Toasts { max: 2, ..Toasts::default() };
        toasts.push(Level::Info, "a", t0);
        toasts.push(Level::Error, "b", t0 + Duration::from_secs(2));
        toasts.push(Level::Warning, "c", t0 + Duration::from_secs(3));
        let texts = |v: &[Toast]| v.iter().map(|t| t.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(toasts.current(t0 + Duration::from_secs(3))), ["b", "c"]);
        assert_eq!(texts(toasts.current(t0 + Duration::from_secs(8) + Duration::from_millis(500))), ["c"]);
        assert!(toasts.current(t0 + Duration::from_secs(10)).is_empty());
    }
}
