//! Orbit camera and scene bounds (CPU only, no GPU needed).
//!
//! The camera orbits a target point: `eye = target + rotation · (0, 0, distance)`, looking at
//! the target with `rotation · +y` as up. Orbiting rotates about the camera's own axes
//! (trackball style: no pole where the view flips), panning moves the target in the view
//! plane, zooming changes the distance. Near and far planes follow the scene's bounding sphere
//! so that depth precision is spent on the structure.

use glam::{Mat4, Quat, Vec2, Vec3};
use molstream_engine::Representation;
use molstream_engine::gpu::{ATOM_FLAG_REPR_MASK, AtomInstance};

/// A bounding sphere.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// Centre, world space.
    pub center: Vec3,
    /// Radius, Å (at least 1).
    pub radius: f32,
}

impl Default for Bounds {
    fn default() -> Self {
        Self { center: Vec3::ZERO, radius: 10.0 }
    }
}

impl Bounds {
    /// Bounding sphere of the drawn atoms (spheres included), each placed by its transform
    /// (`transforms[atom.transform]`, identity when missing). `None` when no atom is drawn.
    #[must_use]
    pub fn of_atoms(atoms: &[AtomInstance], transforms: &[Mat4]) -> Option<Self> {
        let place = |a: &AtomInstance| {
            let m = transforms.get(a.transform as usize).copied().unwrap_or(Mat4::IDENTITY);
            m.transform_point3(Vec3::from_array(a.position))
        };
        let drawn = |a: &&AtomInstance| {
            a.flags & ATOM_FLAG_REPR_MASK != Representation::Hidden as u32 && a.position.iter().all(|v| v.is_finite())
        };
        let (lo, hi) = atoms
            .iter()
            .filter(drawn)
            .map(place)
            .fold((Vec3::splat(f32::INFINITY), Vec3::splat(f32::NEG_INFINITY)), |(l, h), p| (l.min(p), h.max(p)));
        if !lo.is_finite() || !hi.is_finite() {
            return None;
        }
        let center = (lo + hi) * 0.5;
        let radius =
            atoms.iter().filter(drawn).map(|a| place(a).distance(center) + a.radius.max(0.0)).fold(0.0f32, f32::max);
        Some(Self { center, radius: radius.max(1.0) })
    }
}

/// Orbit camera with a perspective projection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    /// The point orbited and looked at, world space.
    pub target: Vec3,
    /// Distance from the eye to the target, Å.
    pub distance: f32,
    /// Orientation of the camera (camera → world).
    pub rotation: Quat,
    /// Vertical field of view, radians.
    pub fov_y: f32,
    /// What the near and far planes and the fog are fitted to.
    pub scene: Bounds,
}

impl Default for Camera {
    fn default() -> Self {
        Self {
            target: Vec3::ZERO,
            distance: 50.0,
            rotation: Quat::IDENTITY,
            fov_y: 30f32.to_radians(),
            scene: Bounds::default(),
        }
    }
}

/// Nearest and farthest distance rendered, fitted to the scene.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DepthRange {
    /// Near plane distance.
    pub near: f32,
    /// Far plane distance.
    pub far: f32,
    /// Distance from the eye to the scene's centre.
    pub center: f32,
}

impl Camera {
    /// Smallest allowed distance to the target, Å.
    pub const MIN_DISTANCE: f32 = 0.5;

    /// Eye position, world space.
    #[must_use]
    pub fn eye(&self) -> Vec3 {
        self.target + self.rotation * Vec3::new(0.0, 0.0, self.distance)
    }

    /// Unit up vector of the view, world space.
    #[must_use]
    pub fn up(&self) -> Vec3 {
        self.rotation * Vec3::Y
    }

    /// Unit right vector of the view, world space.
    #[must_use]
    pub fn right(&self) -> Vec3 {
        self.rotation * Vec3::X
    }

    /// World → view matrix (right-handed, looking down -z).
    #[must_use]
    pub fn view_matrix(&self) -> Mat4 {
        glam::camera::rh::view::look_at_mat4(self.eye(), self.target, self.up())
    }

    /// Horizontal field of view for an aspect ratio (width / height).
    #[must_use]
    pub fn fov_x(&self, aspect: f32) -> f32 {
        2.0 * ((self.fov_y * 0.5).tan() * aspect).atan()
    }

    /// Near and far planes around the scene's bounding sphere, never closer than a small
    /// fraction of the distance (so that depth keeps its precision when the eye is inside).
    #[must_use]
    pub fn depth_range(&self) -> DepthRange {
        let center = self.eye().distance(self.scene.center);
        let r = self.scene.radius;
        let margin = 0.02 * r + 0.5;
        let far = center + r + margin;
        let near = (center - r - margin).max(far * 1e-3).max(0.01);
        DepthRange { near, far, center }
    }

    /// View → clip matrix for an aspect ratio (width / height), depth 0..1 as wgpu expects.
    #[must_use]
    pub fn projection(&self, aspect: f32) -> Mat4 {
        let d = self.depth_range();
        glam::camera::rh::proj::directx::perspective(self.fov_y, aspect.max(1e-3), d.near, d.far)
    }

    /// Centres `bounds` and moves back until its sphere fits the view (5 % margin); keeps the
    /// orientation. The bounds also become the scene the depth range is fitted to.
    pub fn fit(&mut self, bounds: Bounds, aspect: f32) {
        let half = 0.5 * self.fov_y.min(self.fov_x(aspect.max(1e-3)));
        self.target = bounds.center;
        self.distance = (bounds.radius * 1.05 / half.sin()).max(Self::MIN_DISTANCE);
        self.scene = bounds;
    }

    /// Centres and frames a set of spheres (world centre, radius) as tightly as the current
    /// orientation allows: the target moves to the middle of their extent across the view and
    /// the distance is the least at which every sphere is inside the frustum (2 % margin).
    /// `scene` becomes the bounds the depth range is fitted to. Does nothing without spheres.
    pub fn fit_spheres(&mut self, spheres: impl Iterator<Item = (Vec3, f32)> + Clone, scene: Bounds, aspect: f32) {
        let inv = self.rotation.inverse();
        let local = |(p, r): (Vec3, f32)| (inv * (p - scene.center), r);
        let (lo, hi) = spheres
            .clone()
            .map(local)
            .fold((Vec3::splat(f32::INFINITY), Vec3::splat(f32::NEG_INFINITY)), |(l, h), (p, r)| {
                (l.min(p - Vec3::splat(r)), h.max(p + Vec3::splat(r)))
            });
        if !lo.is_finite() || !hi.is_finite() {
            return;
        }
        let mid = (lo + hi) * 0.5;
        let tan_y = (self.fov_y * 0.5).tan();
        let tan_x = (self.fov_x(aspect.max(1e-3)) * 0.5).tan();
        let distance = spheres
            .map(local)
            .map(|(p, r)| {
                let q = p - mid;
                // The sphere's silhouette at depth `distance - q.z` must fit: |x| + r·sec ≤ depth·tan.
                let need_x = q.z + (q.x.abs() + r * (1.0 + tan_x * tan_x).sqrt()) / tan_x;
                let need_y = q.z + (q.y.abs() + r * (1.0 + tan_y * tan_y).sqrt()) / tan_y;
                need_x.max(need_y).max(q.z + r)
            })
            .fold(0.0f32, f32::max);
        self.target = scene.center + self.rotation * Vec3::new(mid.x, mid.y, mid.z);
        self.distance = (distance * 1.02).max(Self::MIN_DISTANCE);
        self.scene = scene;
    }

    /// Rotates the view about the camera's own up (`yaw`) and right (`pitch`) axes, radians:
    /// positive yaw turns the structure to the right, positive pitch tilts it down (towards
    /// the viewer's bottom).
    pub fn orbit(&mut self, yaw: f32, pitch: f32) {
        self.rotation = (self.rotation * Quat::from_rotation_y(-yaw) * Quat::from_rotation_x(-pitch)).normalize();
    }

    /// [`Camera::orbit`] from a mouse drag in pixels: a drag across the viewport's height turns
    /// by half a turn.
    pub fn orbit_pixels(&mut self, delta: Vec2, viewport_height: f32) {
        let k = std::f32::consts::PI / viewport_height.max(1.0);
        self.orbit(delta.x * k, delta.y * k);
    }

    /// World units covered by one pixel at the target's distance.
    #[must_use]
    pub fn pixel_size_at_target(&self, viewport_height: f32) -> f32 {
        2.0 * self.distance * (self.fov_y * 0.5).tan() / viewport_height.max(1.0)
    }

    /// Moves the target with a mouse drag in pixels (x right, y down) so that the point under
    /// the cursor at the target's depth follows it.
    pub fn pan_pixels(&mut self, delta: Vec2, viewport_height: f32) {
        let s = self.pixel_size_at_target(viewport_height);
        self.target += (-self.right() * delta.x + self.up() * delta.y) * s;
    }

    /// Multiplies the distance by `factor` (below 1 zooms in), keeping at least
    /// [`Camera::MIN_DISTANCE`].
    pub fn zoom(&mut self, factor: f32) {
        if factor.is_finite() && factor > 0.0 {
            self.distance = (self.distance * factor).max(Self::MIN_DISTANCE);
        }
    }

    /// Pixel coordinates (x right, y down, origin top-left, pixel centres at +0.5) of a world
    /// point in a `width × height` viewport, or `None` behind the eye.
    #[must_use]
    pub fn project(&self, p: Vec3, width: u32, height: u32) -> Option<Vec2> {
        #[allow(clippy::cast_precision_loss)]
        let (w, h) = (width as f32, height as f32);
        let clip = self.projection(w / h.max(1.0)) * self.view_matrix() * p.extend(1.0);
        if clip.w <= 0.0 {
            return None;
        }
        let ndc = clip.truncate() / clip.w;
        Some(Vec2::new((ndc.x + 1.0) * 0.5 * w, (1.0 - ndc.y) * 0.5 * h))
    }
}

#[cfg(test)]
#[allow(clippy::cast_precision_loss)]
mod tests {
    use super::*;

    fn atom(p: [f32; 3], radius: f32) -> AtomInstance {
        AtomInstance { position: p, radius, ..AtomInstance::default() }
    }

    #[test]
    fn bounds_cover_every_drawn_sphere_and_skip_hidden_ones() {
        let mut hidden = atom([100.0, 0.0, 0.0], 1.0);
        hidden.flags = Representation::Hidden as u32;
        let atoms = [atom([-5.0, 0.0, 0.0], 1.0), atom([5.0, 2.0, 0.0], 2.0), hidden];
        let b = Bounds::of_atoms(&atoms, &[]).unwrap();
        assert!((b.center - Vec3::new(0.0, 1.0, 0.0)).length() < 1e-5);
        for a in &atoms[..2] {
            assert!(Vec3::from_array(a.position).distance(b.center) + a.radius <= b.radius + 1e-4);
        }
        assert!(b.radius < 10.0, "hidden atom ignored: {b:?}");
        assert_eq!(Bounds::of_atoms(&[hidden], &[]), None);
        // A transform moves the atoms it applies to.
        let moved = Bounds::of_atoms(&atoms[..1], &[Mat4::from_translation(Vec3::new(0.0, 0.0, 10.0))]).unwrap();
        assert!((moved.center - Vec3::new(-5.0, 0.0, 10.0)).length() < 1e-5);
    }

    #[test]
    fn fit_puts_the_whole_sphere_in_view() {
        let bounds = Bounds { center: Vec3::new(10.0, -3.0, 7.0), radius: 20.0 };
        for (w, h) in [(200u32, 400u32), (300, 300), (400, 200)] {
            #[allow(clippy::cast_precision_loss)]
            let aspect = w as f32 / h as f32;
            let mut c = Camera::default();
            c.orbit(0.7, -0.3);
            c.fit(bounds, aspect);
            // Extreme points of the sphere along the view axes project inside the viewport.
            for dir in [c.right(), -c.right(), c.up(), -c.up()] {
                let p = c.project(bounds.center + dir * bounds.radius, w, h).unwrap();
                #[allow(clippy::cast_precision_loss)]
                let inside = p.x >= 0.0 && p.y >= 0.0 && p.x <= w as f32 && p.y <= h as f32;
                assert!(inside, "{aspect}: {p:?}");
            }
            let centre = c.project(bounds.center, w, h).unwrap();
            #[allow(clippy::cast_precision_loss)]
            let mid = Vec2::new(w as f32 / 2.0, h as f32 / 2.0);
            assert!(centre.distance(mid) < 1e-2, "{centre:?}");
            let d = c.depth_range();
            assert!(d.near < d.center - bounds.radius && d.far > d.center + bounds.radius);
        }
    }

    #[test]
    fn fit_spheres_frames_tighter_than_the_bounding_sphere_and_keeps_every_sphere_in_view() {
        // A long thin row of spheres along x.
        let atoms: Vec<AtomInstance> =
            (0..41).map(|i| atom([i as f32 - 20.0, 0.5 * (i % 3) as f32, 0.0], 1.0)).collect();
        let bounds = Bounds::of_atoms(&atoms, &[]).unwrap();
        let spheres = atoms.iter().map(|a| (Vec3::from_array(a.position), a.radius));
        let (w, h) = (400u32, 300u32);
        let mut loose = Camera::default();
        loose.fit(bounds, 4.0 / 3.0);
        let mut tight = Camera::default();
        tight.fit_spheres(spheres, bounds, 4.0 / 3.0);
        assert!(tight.distance < loose.distance * 0.9, "{} vs {}", tight.distance, loose.distance);
        let mut xs = (f32::INFINITY, f32::NEG_INFINITY);
        for a in &atoms {
            let c = Vec3::from_array(a.position);
            for e in [Vec3::X, -Vec3::X, Vec3::Y, -Vec3::Y] {
                let p = tight.project(c + e * a.radius, w, h).unwrap();
                assert!(p.x >= 0.0 && p.x <= w as f32 && p.y >= 0.0 && p.y <= h as f32, "{p:?}");
                xs = (xs.0.min(p.x), xs.1.max(p.x));
            }
        }
        // The row spans most of the width.
        assert!(xs.1 - xs.0 > 0.85 * w as f32, "{xs:?}");
    }

    #[test]
    fn orbit_keeps_distance_and_target_pan_moves_the_target_in_the_view_plane() {
        let mut c = Camera { target: Vec3::new(1.0, 2.0, 3.0), distance: 40.0, ..Camera::default() };
        c.orbit_pixels(Vec2::new(120.0, -45.0), 300.0);
        assert!((c.eye().distance(c.target) - 40.0).abs() < 1e-3);
        let forward = (c.target - c.eye()).normalize();
        let before = c.target;
        c.pan_pixels(Vec2::new(30.0, 10.0), 300.0);
        let moved = c.target - before;
        assert!(moved.length() > 0.0);
        assert!(moved.dot(forward).abs() < 1e-4, "pan stays in the view plane");
        // A point at the target's depth follows the cursor: it moves by the drag in pixels.
        let p = before;
        let c0 = Camera { target: before, ..c };
        let a = c0.project(p, 300, 300).unwrap();
        let b = c.project(p, 300, 300).unwrap();
        assert!(((b - a) - Vec2::new(30.0, 10.0)).length() < 0.05, "{:?}", b - a);
    }

    #[test]
    fn orbit_turns_the_structure_the_way_the_mouse_moves() {
        let mut c = Camera::default();
        let right_point = Vec3::new(5.0, 0.0, 0.0);
        let before = c.project(right_point, 200, 200).unwrap();
        // Dragging right turns the front of the structure to the right: a point on the
        // right moves to the back (farther from the eye), one in front moves right.
        let front = Vec3::new(0.0, 0.0, 5.0);
        let f0 = c.project(front, 200, 200).unwrap();
        c.orbit(0.3, 0.0);
        let f1 = c.project(front, 200, 200).unwrap();
        assert!(f1.x > f0.x, "{f0:?} -> {f1:?}");
        let after = c.project(right_point, 200, 200).unwrap();
        assert!(after.x < before.x);
        // Dragging down tilts the front downwards.
        let f2 = c.project(front, 200, 200).unwrap();
        c.orbit(0.0, 0.3);
        let f3 = c.project(front, 200, 200).unwrap();
        assert!(f3.y > f2.y, "{f2:?} -> {f3:?}");
    }

    #[test]
    fn zoom_scales_the_distance_and_refuses_nonsense() {
        let mut c = Camera::default();
        c.zoom(0.5);
        assert!((c.distance - 25.0).abs() < 1e-5);
        c.zoom(f32::NAN);
        c.zoom(-1.0);
        assert!((c.distance - 25.0).abs() < 1e-5);
        c.zoom(1e-9);
        assert!((c.distance - Camera::MIN_DISTANCE).abs() < 1e-6);
    }
}
