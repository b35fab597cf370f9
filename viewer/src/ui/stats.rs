//! Frame time, upload rate, stream frame rate and decode time over the last seconds, plotted
//! with egui_plot.

use std::collections::VecDeque;
use std::time::Instant;

use egui_plot::{Line, Plot, PlotPoints};

/// Seconds of history kept and plotted.
pub const HISTORY_SECONDS: f64 = 30.0;
/// Width of the buckets the upload rate is summed over, seconds.
pub const UPLOAD_BUCKET: f64 = 0.5;

/// Samples over time, seconds since the stats started.
#[derive(Clone, Debug)]
pub struct Stats {
    start: Instant,
    frames: VecDeque<[f64; 2]>,
    uploads: VecDeque<(f64, u64)>,
    decodes: VecDeque<[f64; 2]>,
    streams: VecDeque<(f64, u64)>,
    /// Bytes uploaded since the start.
    pub total_upload: u64,
}

impl Stats {
    /// Empty statistics starting at `now`.
    #[must_use]
    pub fn new(now: Instant) -> Self {
        Self {
            start: now,
            frames: VecDeque::new(),
            uploads: VecDeque::new(),
            decodes: VecDeque::new(),
            streams: VecDeque::new(),
            total_upload: 0,
        }
    }

    fn t(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.start).as_secs_f64()
    }

    fn trim(&mut self, now: f64) {
        let old = now - HISTORY_SECONDS;
        while self.frames.front().is_some_and(|s| s[0] < old) {
            self.frames.pop_front();
        }
        while self.uploads.front().is_some_and(|s| s.0 < old) {
            self.uploads.pop_front();
        }
        while self.decodes.front().is_some_and(|s| s[0] < old) {
            self.decodes.pop_front();
        }
        while self.streams.front().is_some_and(|s| s.0 < old) {
            self.streams.pop_front();
        }
    }

    /// `frames` stream frames (of a session's room) applied.
    pub fn record_stream_frames(&mut self, now: Instant, frames: u64) {
        let t = self.t(now);
        self.streams.push_back((t, frames));
        self.trim(t);
    }

    /// Stream frames per second, bucketed as the upload rate.
    #[must_use]
    pub fn stream_rate_series(&self, now: Instant) -> Vec<[f64; 2]> {
        self.rate_series(&self.streams, now)
    }

    /// A frame that took `ms` milliseconds of CPU time.
    pub fn record_frame(&mut self, now: Instant, ms: f64) {
        let t = self.t(now);
        self.frames.push_back([t, ms]);
        self.trim(t);
    }

    /// `bytes` written to GPU buffers or textures.
    pub fn record_upload(&mut self, now: Instant, bytes: u64) {
        let t = self.t(now);
        self.uploads.push_back((t, bytes));
        self.total_upload += bytes;
        self.trim(t);
    }

    /// A decode (a file parsed, a session's scene changes found and applied) that took `ms`
    /// milliseconds.
    pub fn record_decode(&mut self, now: Instant, ms: f64) {
        let t = self.t(now);
        self.decodes.push_back([t, ms]);
        self.trim(t);
    }

    /// Frame times: (seconds, ms).
    #[must_use]
    pub fn frame_series(&self) -> Vec<[f64; 2]> {
        self.frames.iter().copied().collect()
    }

    /// Decode times: (seconds, ms).
    #[must_use]
    pub fn decode_series(&self) -> Vec<[f64; 2]> {
        self.decodes.iter().copied().collect()
    }

    /// Upload rate in bytes per second, one point per [`UPLOAD_BUCKET`] from the oldest
    /// sample kept to `now` (empty buckets are 0).
    #[must_use]
    pub fn upload_rate_series(&self, now: Instant) -> Vec<[f64; 2]> {
        self.rate_series(&self.uploads, now)
    }

    fn rate_series(&self, samples: &VecDeque<(f64, u64)>, now: Instant) -> Vec<[f64; 2]> {
        let end = self.t(now);
        let start = (end - HISTORY_SECONDS).max(0.0);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = ((end - start) / UPLOAD_BUCKET).ceil().max(1.0) as usize;
        let mut sums = vec![0u64; n];
        for &(t, b) in samples {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let k = ((t - start) / UPLOAD_BUCKET).floor().max(0.0) as usize;
            if let Some(s) = sums.get_mut(k.min(n - 1)) {
                *s += b;
            }
        }
        #[allow(clippy::cast_precision_loss)]
        sums.iter()
            .enumerate()
            .map(|(k, &s)| [start + (k as f64 + 0.5) * UPLOAD_BUCKET, s as f64 / UPLOAD_BUCKET])
            .collect()
    }

    /// Mean frame time over the last second, ms.
    #[must_use]
    pub fn recent_frame_ms(&self) -> Option<f64> {
        let last = self.frames.back()?[0];
        let recent: Vec<f64> = self.frames.iter().filter(|s| s[0] > last - 1.0).map(|s| s[1]).collect();
        #[allow(clippy::cast_precision_loss)]
        Some(recent.iter().sum::<f64>() / recent.len() as f64)
    }

    /// The panel: current figures and three plots.
    pub fn show(&self, ui: &mut egui::Ui, now: Instant) {
        let frame = self.recent_frame_ms();
        ui.label(format!(
            "frame {}",
            frame.map_or_else(|| "—".to_owned(), |ms| format!("{ms:.1} ms ({:.0} fps)", 1e3 / ms.max(1e-3)))
        ));
        let rate = self.upload_rate_series(now);
        let last = rate.iter().rev().nth(1).or(rate.last()).map_or(0.0, |p| p[1]);
        #[allow(clippy::cast_precision_loss)]
        let total = self.total_upload as f64;
        ui.label(format!("upload {} /s, {} in all", human_bytes(last), human_bytes(total)));
        let streams = self.stream_rate_series(now);
        let frames = streams.iter().rev().nth(1).or(streams.last()).map_or(0.0, |p| p[1]);
        if !self.streams.is_empty() {
            ui.label(format!("stream {frames:.0} frames/s"));
        }
        if let Some(d) = self.decodes.back() {
            ui.label(format!("last decode {:.2} ms", d[1]));
        }
        let mut plot = |id: &str, label: &str, points: Vec<[f64; 2]>| {
            ui.label(label);
            Plot::new(id)
                .height(70.0)
                .allow_drag(false)
                .allow_zoom(false)
                .allow_scroll(false)
                .include_y(0.0)
                .show_x(false)
                .show(ui, |p| p.line(Line::new(label.to_owned(), PlotPoints::from(points))));
        };
        plot("stats-frame", "frame time, ms", self.frame_series());
        plot("stats-upload", "upload, bytes/s", rate);
        if !self.streams.is_empty() {
            plot("stats-stream", "stream frames/s", streams);
        }
        plot("stats-decode", "decode time, ms", self.decode_series());
    }
}

/// `1.5 MB`, `320 kB`, `12 B`.
#[must_use]
pub fn human_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn series_keep_the_last_seconds_and_sum_uploads_per_bucket() {
        let t0 = Instant::now();
        let mut s = Stats::new(t0);
        for k in 0..80u64 {
            let now = t0 + Duration::from_millis(500 * k);
            s.record_frame(now, 16.0);
            s.record_upload(now, 1000);
        }
        let now = t0 + Duration::from_millis(500 * 79);
        // 39.5 s recorded, 30 kept.
        let frames = s.frame_series();
        assert!(frames.len() <= 61 && frames.len() >= 59, "{}", frames.len());
        assert!(frames.iter().all(|p| p[0] >= 39.5 - HISTORY_SECONDS));
        // One upload per bucket of 0.5 s: 2000 bytes/s.
        let rate = s.upload_rate_series(now);
        assert!(rate.iter().filter(|p| (p[1] - 2000.0).abs() < 1e-9).count() >= 55, "{rate:?}");
        assert_eq!(s.total_upload, 80_000);
        assert_eq!(s.recent_frame_ms(), Some(16.0));
        s.record_decode(now, 2.5);
        assert_eq!(s.decode_series(), [[39.5, 2.5]]);
        assert_eq!(human_bytes(1_500_000.0), "1.5 MB");
        // 10 stream frames at each of the last 4 half seconds: 40 frames in the last 2 s.
        for k in 0..4u64 {
            s.record_stream_frames(now - Duration::from_millis(500 * k), 10);
        }
        let streams = s.stream_rate_series(now);
        let frames: f64 = streams.iter().map(|p| p[1] * UPLOAD_BUCKET).sum();
        assert!((frames - 40.0).abs() < 1e-9, "{streams:?}");
        assert!(streams.iter().filter(|p| p[1] > 0.0).all(|p| p[0] > 39.5 - 2.0), "{streams:?}");
    }
}
