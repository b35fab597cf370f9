//! The minimizer: a steepest-descent "minimization" offered as integration hooks
//! (`minimization.start`, `minimization.stop`). It fetches a complex from the workspace, moves
//! its atoms down the gradient of a toy force field, and streams the positions to the room
//! every few steps while it runs.
//!
//! The force field: a harmonic spring on every bond, at the sum of the atoms' covalent radii,
//! and a soft harmonic repulsion between atoms that are neither bonded nor share a bonded
//! neighbour, closer than 75 % of the sum of their van der Waals radii. Steps are adaptive:
//! a step that lowers the energy is kept and the next is 20 % longer; one that does not is
//! undone and the step halved.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use glam::Vec3;
use molstream_engine::{AtomId, ComplexId, Topology};
use molstream_net::api::Level;
use molstream_net::host::{Plugin, PluginHost, Session, StreamData, StreamKind, StreamTarget};
use molstream_net::proto::{PluginMeta, UserId};
use tokio::task::JoinHandle;

/// Bond spring constant (energy per Å²).
const K_BOND: f32 = 100.0;
/// Repulsion constant.
const K_REP: f32 = 10.0;
/// Fraction of the van der Waals contact distance below which atoms repel.
const REP_SCALE: f32 = 0.75;

/// The toy force field of a topology.
#[derive(Debug, Clone)]
pub struct ForceField {
    bonds: Vec<(usize, usize, f32)>,
    excluded: HashSet<(usize, usize)>,
    radius: Vec<f32>,
    cutoff: f32,
}

impl ForceField {
    /// The force field of `t`.
    #[must_use]
    pub fn new(t: &Topology) -> Self {
        let n = t.atom_count();
        let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut bonds = Vec::with_capacity(t.bonds.len());
        for i in 0..t.bonds.len() {
            let (a, b) = (t.bonds.a[i].index(), t.bonds.b[i].index());
            let r0 = t.atoms.element[a].covalent_radius() + t.atoms.element[b].covalent_radius();
            bonds.push((a, b, r0));
            neighbours[a].push(b);
            neighbours[b].push(a);
        }
        let mut excluded = HashSet::new();
        for (a, nb) in neighbours.iter().enumerate() {
            for &b in nb {
                excluded.insert((a.min(b), a.max(b)));
                for &c in &neighbours[b] {
                    if c != a {
                        excluded.insert((a.min(c), a.max(c)));
                    }
                }
            }
        }
        let radius: Vec<f32> = t.atoms.element.iter().map(|e| REP_SCALE * e.vdw_radius()).collect();
        let cutoff = 2.0 * radius.iter().copied().fold(0.0, f32::max);
        Self { bonds, excluded, radius, cutoff }
    }

    /// The energy at `p`; `grad` (as long as `p`) receives its gradient.
    ///
    /// # Panics
    /// If `grad` and `p` differ in length, or `p` is not the topology's atom count.
    pub fn energy(&self, p: &[Vec3], grad: &mut [Vec3]) -> f32 {
        assert_eq!(p.len(), grad.len());
        grad.iter_mut().for_each(|g| *g = Vec3::ZERO);
        let mut e = 0.0;
        for &(a, b, r0) in &self.bonds {
            let d = p[a] - p[b];
            let r = d.length().max(1e-6);
            let x = r - r0;
            e += K_BOND * x * x;
            let g = d * (2.0 * K_BOND * x / r);
            grad[a] += g;
            grad[b] -= g;
        }
        // Repulsion, over a uniform grid of cells `cutoff` wide.
        let cell = self.cutoff.max(0.5);
        let key = |q: Vec3| {
            let c = (q / cell).floor();
            #[allow(clippy::cast_possible_truncation)]
            (c.x as i32, c.y as i32, c.z as i32)
        };
        let mut grid: HashMap<(i32, i32, i32), Vec<usize>> = HashMap::new();
        for (i, q) in p.iter().enumerate() {
            grid.entry(key(*q)).or_default().push(i);
        }
        for (i, q) in p.iter().enumerate() {
            let (x, y, z) = key(*q);
            for dx in -1..=1 {
                for dy in -1..=1 {
                    for dz in -1..=1 {
                        let Some(cands) = grid.get(&(x + dx, y + dy, z + dz)) else { continue };
                        for &j in cands {
                            if j <= i || self.excluded.contains(&(i, j)) {
                                continue;
                            }
                            let d0 = self.radius[i] + self.radius[j];
                            let d = p[i] - p[j];
                            let r = d.length();
                            if r >= d0 || r < 1e-6 {
                                continue;
                            }
                            let x = d0 - r;
                            e += K_REP * x * x;
                            let g = d * (-2.0 * K_REP * x / r);
                            grad[i] += g;
                            grad[j] -= g;
                        }
                    }
                }
            }
        }
        e
    }
}

/// A steepest-descent minimization in progress.
#[derive(Debug, Clone)]
pub struct Descent {
    /// Positions now.
    pub positions: Vec<Vec3>,
    /// Energy now.
    pub energy: f32,
    /// Largest move of one step, Å.
    pub step: f32,
    grad: Vec<Vec3>,
}

impl Descent {
    /// Starts at `positions`.
    #[must_use]
    pub fn new(ff: &ForceField, positions: Vec<Vec3>) -> Self {
        let mut grad = vec![Vec3::ZERO; positions.len()];
        let energy = ff.energy(&positions, &mut grad);
        Self { positions, energy, step: 0.02, grad }
    }

    /// One step; returns whether it lowered the energy (otherwise the positions stay and the
    /// next step is shorter).
    pub fn step(&mut self, ff: &ForceField) -> bool {
        let gmax = self.grad.iter().map(|g| g.length()).fold(0.0, f32::max);
        if gmax < 1e-6 {
            return false;
        }
        let scale = self.step / gmax;
        let trial: Vec<Vec3> = self.positions.iter().zip(&self.grad).map(|(p, g)| *p - *g * scale).collect();
        let mut grad = vec![Vec3::ZERO; trial.len()];
        let e = ff.energy(&trial, &mut grad);
        if e < self.energy {
            self.positions = trial;
            self.energy = e;
            self.grad = grad;
            self.step = (self.step * 1.2).min(0.2);
            true
        } else {
            self.step *= 0.5;
            false
        }
    }
}

/// How long a minimization runs and how often it streams.
#[derive(Debug, Clone, Copy)]
pub struct MinimizerConfig {
    /// Most steps.
    pub max_steps: u32,
    /// Positions are sent every this many steps.
    pub stream_every: u32,
}

impl Default for MinimizerConfig {
    fn default() -> Self {
        Self { max_steps: 500, stream_every: 5 }
    }
}

struct Run {
    stop: Arc<AtomicBool>,
    energy: Arc<Mutex<(f32, f32, u32)>>,
    task: JoinHandle<()>,
}

/// The plugin: one per room, at most one minimization at a time.
pub struct Minimizer {
    cfg: MinimizerConfig,
    run: Option<Run>,
}

/// What the minimizer declares.
#[must_use]
pub fn meta() -> PluginMeta {
    PluginMeta {
        name: "Minimizer".into(),
        description: "Steepest-descent minimization of a complex, streamed while it runs.".into(),
        category: "Simulation".into(),
        tags: vec!["minimization".into()],
        has_advanced_settings: false,
        integrations: vec!["minimization.start".into(), "minimization.stop".into()],
    }
}

/// Adds the minimizer to `host`.
#[must_use]
pub fn register(host: PluginHost, cfg: MinimizerConfig) -> PluginHost {
    host.plugin(meta(), move || Minimizer { cfg, run: None })
}

impl Minimizer {
    async fn start(&mut self, session: &Session, args: &[u8]) -> Result<String, String> {
        if self.run.as_ref().is_some_and(|r| !r.task.is_finished()) {
            return Err("a minimization is running".into());
        }
        let text = String::from_utf8_lossy(args);
        let id = match text.trim() {
            "" => {
                let list = session.request_complex_list().await.map_err(|e| e.to_string())?;
                list.first().map(|c| c.id).ok_or("the workspace is empty")?
            }
            s => ComplexId(s.parse().map_err(|_| format!("{s:?} is not a complex id"))?),
        };
        let complex = session.request_complex(id).await.map_err(|e| e.to_string())?;
        let t = complex.current().topology;
        let ff = ForceField::new(t);
        let atoms = (0..t.atom_count()).map(|i| AtomId(i as u32)).collect();
        let stream = session
            .create_writing_stream(StreamKind::AtomPosition, StreamTarget::Atoms { complex: id, atoms })
            .await
            .map_err(|e| e.to_string())?;
        let mut descent = Descent::new(&ff, complex.current().positions.to_vec());
        let e0 = descent.energy;
        let stop = Arc::new(AtomicBool::new(false));
        let energy = Arc::new(Mutex::new((e0, e0, 0u32)));
        let (cfg, s, st, en, name) = (self.cfg, session.clone(), stop.clone(), energy.clone(), complex.name.clone());
        let task = tokio::spawn(async move {
            let mut steps = 0;
            while steps < cfg.max_steps && !st.load(Ordering::Relaxed) {
                descent.step(&ff);
                steps += 1;
                if let Ok(mut e) = en.lock() {
                    *e = (e0, descent.energy, steps);
                }
                if steps % cfg.stream_every.max(1) == 0
                    && stream.update(StreamData::Positions(&descent.positions)).await.is_err()
                {
                    return;
                }
                tokio::task::yield_now().await;
            }
            let _ = stream.update(StreamData::Positions(&descent.positions)).await;
            let text = format!("minimized {name}: energy {e0:.1} → {:.1} in {steps} steps", descent.energy);
            let _ = s.notify(Level::Success, text).await;
        });
        self.run = Some(Run { stop, energy, task });
        Ok(format!("minimizing {id} from energy {e0:.3}"))
    }

    async fn stop(&mut self) -> Result<String, String> {
        let run = self.run.take().ok_or("no minimization")?;
        run.stop.store(true, Ordering::Relaxed);
        let _ = run.task.await;
        let (e0, e, steps) = run.energy.lock().map(|g| *g).map_err(|_| "poisoned")?;
        Ok(format!("{e0:.3} {e:.3} {steps}"))
    }
}

impl Plugin for Minimizer {
    async fn on_integration(
        &mut self,
        session: &Session,
        _from: UserId,
        name: &str,
        args: Bytes,
    ) -> Result<Bytes, String> {
        let r = match name {
            "minimization.start" => self.start(session, &args).await,
            "minimization.stop" => self.stop().await,
            other => Err(format!("integration {other:?} is not supported")),
        };
        r.map(Bytes::from)
    }

    async fn on_stop(&mut self, _session: &Session) -> molstream_net::host::PluginResult {
        if let Some(r) = self.run.take() {
            r.stop.store(true, Ordering::Relaxed);
            r.task.abort();
        }
        Ok(())
    }
}
