//! The editor, driven by egui_kittest against a real worker playing the embedded
//! default model: each state a performer meets (fresh, clip captured, mid-morph, model
//! load error) is checked through egui's accessibility tree and rendered to PNG.
//!
//! The renderer is a small triangle rasteriser over egui's own tessellation (no GPU on
//! CI, and egui's software backends do not follow egui 0.37). With
//! `LATENT_LIVE_SCREENSHOTS=1` the PNGs are also written to docs/screenshots/.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use egui::epaint::{ClippedPrimitive, Primitive};
use egui::{Color32, Role, TextureId, TexturesDelta, Vec2};
use egui_kittest::kittest::{by, Queryable};
use egui_kittest::{Harness, TestRenderer};
use latent_live::editor::{self, Editor};
use latent_live::link::status::EngineStatus;
use latent_live::link::{self, AudioLink, Command};
use latent_live::params::{LatentLiveParams, ModelChoice};
use latent_live::state::clips::Slot;
use latent_live::worker::engine::Engine;
use latent_live::worker::models;
use latent_live_core::music::drums::{self, Hit};
use latent_live_core::music::melody::Note;
use latent_live_core::music::phrase::Phrase;
use latent_live_core::music::Encoding;
use nice_plug::context::gui::{GuiContext, GuiContextInner};
use nice_plug::context::PluginApi;
use nice_plug::params::internals::ParamPtr;
use nice_plug::plugin::PluginState;
use nice_plug::prelude::Param;

/// The host's side of parameter changes: sets the value, as a host does.
struct Host;

impl GuiContextInner for Host {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    unsafe fn raw_begin_set_parameter(&self, _param: ParamPtr) {}
    unsafe fn raw_set_parameter_normalized(&self, param: ParamPtr, normalized: f32) {
        // SAFETY: the caller (the editor) hands a pointer into the params it holds, which
        // outlive the call.
        unsafe { param._internal_set_normalized_value(normalized) };
    }
    unsafe fn raw_end_set_parameter(&self, _param: ParamPtr) {}
    fn get_state(&self) -> PluginState {
        unreachable!("the editor never saves the plugin's state")
    }
    fn set_state(&self, _state: PluginState) {
        unreachable!("the editor never loads a plugin state")
    }
    fn request_restart(&self) {}
}

/// A texture's size and texels.
type Texture = ([usize; 2], Vec<Color32>);

/// Keeps the textures egui uploads, for [`rasterize`].
#[derive(Clone, Default)]
struct Textures(Rc<RefCell<HashMap<TextureId, Texture>>>);

impl TestRenderer for Textures {
    fn handle_delta(&mut self, delta: &mut TexturesDelta) {
        let mut textures = self.0.borrow_mut();
        for (id, updates) in &delta.set {
            for update in updates {
                let egui::ImageData::Color(image) = &update.image;
                match update.pos {
                    None => {
                        textures.insert(*id, (image.size, image.pixels.clone()));
                    }
                    Some([x0, y0]) => {
                        let (size, pixels) = textures
                            .get_mut(id)
                            .expect("a partial update of a known texture");
                        for y in 0..image.size[1] {
                            let row = &image.pixels[y * image.size[0]..(y + 1) * image.size[0]];
                            pixels[(y0 + y) * size[0] + x0..][..image.size[0]].copy_from_slice(row);
                        }
                    }
                }
            }
        }
        for id in &delta.free {
            textures.remove(id);
        }
        delta.clear();
    }
}

/// A rendered frame and how many of its pixels came from font glyphs.
struct Frame {
    size: [usize; 2],
    pixels: Vec<[f32; 4]>,
    glyph_pixels: usize,
}

/// Fills egui's triangles (premultiplied colour times the texture, nearest texel), as a
/// GPU would, into a dark background.
fn rasterize(
    primitives: &[ClippedPrimitive],
    textures: &Textures,
    size: [usize; 2],
    ppp: f32,
) -> Frame {
    let textures = textures.0.borrow();
    let mut pixels = vec![[0.0, 0.0, 0.0, 1.0]; size[0] * size[1]];
    let mut glyph_pixels = 0;
    let font_atlas = TextureId::default();
    for primitive in primitives {
        let Primitive::Mesh(mesh) = &primitive.primitive else {
            continue;
        };
        let Some((tex_size, texels)) = textures.get(&mesh.texture_id) else {
            continue;
        };
        let clip = primitive.clip_rect;
        let (cx0, cy0) = (
            (clip.min.x * ppp).max(0.0) as usize,
            (clip.min.y * ppp).max(0.0) as usize,
        );
        let (cx1, cy1) = (
            ((clip.max.x * ppp).ceil() as usize).min(size[0]),
            ((clip.max.y * ppp).ceil() as usize).min(size[1]),
        );
        for tri in mesh.indices.chunks_exact(3) {
            let v = [
                &mesh.vertices[tri[0] as usize],
                &mesh.vertices[tri[1] as usize],
                &mesh.vertices[tri[2] as usize],
            ];
            let p = v.map(|v| (v.pos.x * ppp, v.pos.y * ppp));
            let area =
                (p[1].0 - p[0].0) * (p[2].1 - p[0].1) - (p[2].0 - p[0].0) * (p[1].1 - p[0].1);
            if area.abs() < 1e-6 {
                continue;
            }
            let x0 = (p
                .iter()
                .map(|q| q.0)
                .fold(f32::MAX, f32::min)
                .floor()
                .max(0.0) as usize)
                .max(cx0);
            let x1 = (p
                .iter()
                .map(|q| q.0)
                .fold(f32::MIN, f32::max)
                .ceil()
                .max(0.0) as usize)
                .min(cx1);
            let y0 = (p
                .iter()
                .map(|q| q.1)
                .fold(f32::MAX, f32::min)
                .floor()
                .max(0.0) as usize)
                .max(cy0);
            let y1 = (p
                .iter()
                .map(|q| q.1)
                .fold(f32::MIN, f32::max)
                .ceil()
                .max(0.0) as usize)
                .min(cy1);
            for y in y0..y1 {
                for x in x0..x1 {
                    let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                    let w0 = ((p[1].0 - px) * (p[2].1 - py) - (p[2].0 - px) * (p[1].1 - py)) / area;
                    let w1 = ((p[2].0 - px) * (p[0].1 - py) - (p[0].0 - px) * (p[2].1 - py)) / area;
                    let w2 = 1.0 - w0 - w1;
                    if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                        continue;
                    }
                    let u = w0 * v[0].uv.x + w1 * v[1].uv.x + w2 * v[2].uv.x;
                    let t = w0 * v[0].uv.y + w1 * v[1].uv.y + w2 * v[2].uv.y;
                    let tx = ((u * tex_size[0] as f32) as usize).min(tex_size[0] - 1);
                    let ty = ((t * tex_size[1] as f32) as usize).min(tex_size[1] - 1);
                    let texel = texels[ty * tex_size[0] + tx]
                        .to_array()
                        .map(|c| c as f32 / 255.0);
                    let colour = [0, 1, 2, 3].map(|i| {
                        (w0 * v[0].color[i] as f32
                            + w1 * v[1].color[i] as f32
                            + w2 * v[2].color[i] as f32)
                            / 255.0
                            * texel[i]
                    });
                    if colour[3] <= 0.0 {
                        continue;
                    }
                    if mesh.texture_id == font_atlas && (tx, ty) != (0, 0) {
                        glyph_pixels += 1;
                    }
                    let dst = &mut pixels[y * size[0] + x];
                    for i in 0..3 {
                        dst[i] = colour[i] + dst[i] * (1.0 - colour[3]);
                    }
                }
            }
        }
    }
    Frame {
        size,
        pixels,
        glyph_pixels,
    }
}

impl Frame {
    fn distinct_colours(&self) -> usize {
        let mut seen: Vec<u32> = self
            .pixels
            .iter()
            .map(|p| {
                p.iter()
                    .take(3)
                    .fold(0u32, |acc, c| acc << 8 | (c * 255.0) as u32)
            })
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    fn lit_fraction(&self) -> f32 {
        self.pixels
            .iter()
            .filter(|p| p[0] + p[1] + p[2] > 0.05)
            .count() as f32
            / self.pixels.len() as f32
    }

    fn write_png(&self, path: &std::path::Path) {
        let file = std::fs::File::create(path).unwrap();
        let mut encoder = png::Encoder::new(
            std::io::BufWriter::new(file),
            self.size[0] as u32,
            self.size[1] as u32,
        );
        encoder.set_color(png::ColorType::Rgb);
        let bytes: Vec<u8> = self
            .pixels
            .iter()
            .flat_map(|p| [p[0], p[1], p[2]].map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8))
            .collect();
        encoder
            .write_header()
            .unwrap()
            .write_image_data(&bytes)
            .unwrap();
    }
}

use latent_live::testing::{set_normalized as set, wait_until};

/// A worker on the embedded default model, the editor on its ends, no audio thread: the
/// test plays that part (which phrase plays, where the playhead is).
struct Rig {
    params: Arc<LatentLiveParams>,
    engine: Engine,
    audio: AudioLink,
    newest: Phrase,
}

impl Rig {
    fn start() -> (Self, Editor) {
        let params = Arc::new(LatentLiveParams::default());
        let (ports, link) = link::ports();
        let (engine, audio) =
            Engine::start(params.clone(), models::default_loader(), ports).unwrap();
        let mut editor = Editor::new(params.clone(), link);
        editor.set_context(GuiContext::new(Arc::new(Host)));
        let mut rig = Self {
            params,
            engine,
            audio,
            newest: Phrase::EMPTY,
        };
        rig.next_phrase();
        (rig, editor)
    }

    fn status(&self) -> &EngineStatus {
        self.engine.status()
    }

    /// Waits for a phrase newer than the last one seen.
    fn next_phrase(&mut self) -> u64 {
        let seen = self.newest.generation;
        assert!(
            wait_until(Duration::from_secs(30), || self
                .audio
                .phrases
                .pop_newest(&mut self.newest)
                && self.newest.generation > seen),
            "no new phrase"
        );
        self.newest.generation
    }

    fn play(&self, generation: u64, beats: f64) {
        let status = self.status();
        status
            .playing_generation
            .store(generation, Ordering::Release);
        status.transport_playing.store(true, Ordering::Release);
        status.position_beats.store(beats, Ordering::Release);
    }

    fn handled(&self, n: u64) {
        assert!(
            wait_until(Duration::from_secs(30), || self
                .status()
                .handled
                .load(Ordering::Acquire)
                >= n),
            "command {n} not handled"
        );
    }
}

fn clip_file(name: &str, notes: &[(u8, u32, u32)]) -> PathBuf {
    let notes: Vec<Note> = notes
        .iter()
        .map(|&(pitch, start, end)| Note { pitch, start, end })
        .collect();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("editor-clips");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(
        &path,
        latent_live_core::music::midi::export_with_velocity(&notes, 120.0, 100),
    )
    .unwrap();
    path
}

fn harness(editor: Editor, ppp: f32, textures: &Textures) -> Harness<'static, Editor> {
    let (w, h) = editor::DEFAULT_SIZE;
    let mut harness = Harness::builder()
        .with_size(Vec2::new(w as f32, h as f32))
        .with_pixels_per_point(ppp)
        .renderer(textures.clone())
        .build_ui_state(|ui, editor: &mut Editor| editor.ui(ui), editor);
    editor::style(&harness.ctx);
    harness.run_steps(3);
    harness
}

/// Renders the harness's last frame, checks it is a picture with text in it, and keeps it.
fn screenshot(harness: &Harness<'_, Editor>, textures: &Textures, name: &str) -> Frame {
    let output = harness.output();
    let ppp = output.pixels_per_point;
    let primitives = harness.ctx.tessellate(output.shapes.clone(), ppp);
    let (w, h) = editor::DEFAULT_SIZE;
    let frame = rasterize(
        &primitives,
        textures,
        [(w as f32 * ppp) as usize, (h as f32 * ppp) as usize],
        ppp,
    );
    assert!(
        frame.distinct_colours() > 200,
        "{name}: {} colours, a blank frame",
        frame.distinct_colours()
    );
    assert!(
        frame.lit_fraction() > 0.2,
        "{name}: {:.2} of the pixels lit",
        frame.lit_fraction()
    );
    // Text is drawn from the font atlas: no fonts (egui without default_fonts) draws none.
    assert!(
        frame.glyph_pixels > (5_000.0 * ppp * ppp) as usize,
        "{name}: {} glyph pixels",
        frame.glyph_pixels
    );
    frame.write_png(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.png")));
    if std::env::var_os("LATENT_LIVE_SCREENSHOTS").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        frame.write_png(&docs.join(format!("{name}.png")));
    }
    frame
}

#[test]
fn the_editor_in_each_state_a_performer_meets() {
    let (mut rig, editor) = Rig::start();
    let first = rig.newest.generation;
    rig.play(first, 1.25);
    let textures = Textures::default();
    let mut harness = harness(editor, 1.0, &textures);

    // Fresh: the default model, its labelled neurons, every control.
    for label in [
        "Capture A",
        "Capture B",
        "Capture C",
        "Capture D",
        "D file...",
        "Export .mid...",
        "Open model file...",
        "Refine A",
        "Clear B",
        "A file...",
    ] {
        harness.get_by_role_and_label(Role::Button, label);
    }
    for label in [
        "Pad X",
        "Pad Y",
        "Temperature",
        "Variation",
        "Drift",
        "Drift Rate",
        "Note Density",
        "Contour",
        "Transpose",
        "Length",
    ] {
        harness.get_by_role_and_label(Role::Slider, label);
    }
    // The latent sliders are named by the analysis' labels ("N1 · note density"...).
    for n in 1..=8 {
        harness.get(by().role(Role::Slider).label_contains(&format!("N{n} · ")));
    }
    harness.get_by_role_and_label(Role::ComboBox, "Model");
    harness.get_by_label_contains("XY pad: Pad X (Morph A-B)");
    // Beat 1.25: the first bar plays, and the caption says so.
    harness.get_by_label_contains(&format!("Piano roll: playing #{first}, bar 1 of 2"));
    harness.get_by_label_contains("music neurons");
    harness.get_by_label_contains("decoder: 256 units x 32 steps");
    harness.get_by_label_contains("folk-2bar");
    screenshot(&harness, &textures, "fresh");

    // Clip captured from a file: its thumbnail, refine and clear come alive.
    rig.engine.commands.send(Command::CaptureFile {
        slot: Slot::A,
        path: clip_file(
            "a.mid",
            &[
                (60, 0, 4),
                (62, 4, 8),
                (64, 8, 12),
                (67, 12, 16),
                (72, 16, 24),
                (67, 24, 32),
            ],
        ),
    });
    rig.handled(1);
    let captured = rig.next_phrase();
    rig.play(captured, 6.5);
    harness.run_steps(3);
    harness.get_by_label_contains(&format!("playing #{captured}, bar 2 of 2"));
    harness.get_by_label("Clip A");
    harness.get_by_label("Clip B (empty)");
    assert!(
        rig.status().message().is_none(),
        "{:?}",
        rig.status().message()
    );
    screenshot(&harness, &textures, "clip-captured");

    // Mid-morph: both clips, halfway, the new phrase queued behind the one playing.
    rig.engine.commands.send(Command::CaptureFile {
        slot: Slot::B,
        path: clip_file(
            "b.mid",
            &[
                (69, 0, 2),
                (67, 2, 4),
                (65, 4, 6),
                (64, 6, 8),
                (62, 8, 12),
                (60, 12, 16),
                (62, 18, 20),
                (64, 20, 22),
                (65, 22, 32),
            ],
        ),
    });
    rig.handled(2);
    let both = rig.next_phrase();
    set(&rig.params.latent.morph, 0.5);
    let morphed = rig.next_phrase();
    assert!(morphed > both);
    rig.play(both, 3.0);
    harness.run_steps(3);
    harness.get_by_label("Clip B");
    harness.get_by_label_contains(&format!("queued #{morphed}"));
    screenshot(&harness, &textures, "mid-morph");

    // Four clips: C and D at the pad's top corners, the point inside it.
    for (slot, base) in [(Slot::C, 57), (Slot::D, 74)] {
        let notes: Vec<(u8, u32, u32)> = (0..8)
            .map(|i| (base + [0, 3, 7, 3][i % 4], i as u32 * 4, i as u32 * 4 + 3))
            .collect();
        rig.engine.commands.send(Command::CaptureFile {
            slot,
            path: clip_file(&format!("{}.mid", slot.name()), &notes),
        });
    }
    rig.handled(4);
    set(&rig.params.pad.y, 0.6);
    let blended = rig.next_phrase();
    rig.play(blended, 1.0);
    harness.run_steps(3);
    harness.get_by_label("Clip C");
    harness.get_by_label("Clip D");
    harness.get_by_label_contains("Pad Y (Morph AB-CD) 60 %");
    // Shift-click stores scene 3: the pad and the four clips with it.
    harness
        .get_by_role_and_label(Role::Button, "Scene 3")
        .click_modifiers(egui::Modifiers::SHIFT);
    harness.run_steps(2);
    assert!(wait_until(Duration::from_secs(10), || rig
        .params
        .scene_store
        .get()
        .get(3)
        .is_some_and(
            |s| s.clips.d.is_some() && s.values["pady2"] == 0.6
        )));
    // A click recalls it, even with the parameter already there.
    let clicks = rig.params.scenes.clicked.load(Ordering::Acquire);
    harness
        .get_by_role_and_label(Role::Button, "Scene 3")
        .click();
    harness.run_steps(2);
    assert_eq!(rig.params.scenes.scene.value(), 3);
    assert_ne!(rig.params.scenes.clicked.load(Ordering::Acquire), clicks);
    harness.run_steps(3);
    screenshot(&harness, &textures, "four-clips");

    // A model file that is not one: the error inline, the old model still playing.
    rig.params
        .model_file
        .update(|f| *f = Some("/nonexistent/model.safetensors".into()));
    set(
        &rig.params.model,
        rig.params.model.preview_normalized(ModelChoice::File),
    );
    assert!(wait_until(Duration::from_secs(10), || rig
        .status()
        .message()
        .is_some_and(|m| m.contains("nonexistent"))));
    harness.run_steps(3);
    harness.get_by_label_contains("cannot load the model");
    harness.get_by_label_contains("folk-2bar");
    screenshot(&harness, &textures, "model-error");
}

#[test]
fn the_drum_grid_replaces_the_piano_roll_when_a_drum_model_plays() {
    let (mut rig, editor) = Rig::start();
    set(
        &rig.params.model,
        rig.params.model.preview_normalized(ModelChoice::Groove2Bar),
    );
    let groove = rig.next_phrase();
    assert_eq!(rig.newest.encoding, Encoding::Drums);
    // A groove from a drum file in clip A: kick, snare, hats.
    let mut hits = Vec::new();
    for step in 0..32 {
        hits.push(Hit { step, class: 2 });
        if step % 8 == 0 {
            hits.push(Hit { step, class: 0 });
        }
        if step % 8 == 4 {
            hits.push(Hit { step, class: 1 });
        }
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("editor-clips");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("groove.mid");
    std::fs::write(
        &path,
        latent_live_core::music::midi::export_drums(&hits, 100.0, &drums::GM_NOTES, drums::accent),
    )
    .unwrap();
    rig.engine.commands.send(Command::CaptureFile {
        slot: Slot::A,
        path,
    });
    rig.handled(1);
    let captured = rig.next_phrase();
    assert!(captured > groove);
    assert!(
        rig.newest.has_feel(),
        "the humanizer gave the groove its velocities and timing"
    );
    // At full Groove the grid draws each hit at its velocity and time.
    set(&rig.params.drums.groove, 1.0);
    rig.play(captured, 1.0);
    let textures = Textures::default();
    let mut harness = harness(editor, 1.0, &textures);
    harness.run_steps(3);
    assert!(
        rig.status().message().is_none(),
        "{:?}",
        rig.status().message()
    );
    harness.get_by_label_contains("Drum grid: playing #");
    assert!(
        harness.query_by_label_contains("Piano roll").is_none(),
        "the piano roll gives way to the grid"
    );
    harness.get_by_label("Clip A (drums)");
    // Drum attributes and the drum channel; no melody attributes, no transpose.
    for label in [
        "Kick Density",
        "Backbeat",
        "Fill",
        "Drum channel",
        "Velocity",
        "Groove",
    ] {
        harness.get_by_role_and_label(Role::Slider, label);
    }
    for label in ["Note Density", "Pitch Range", "Transpose"] {
        assert!(
            harness
                .query_by_role_and_label(Role::Slider, label)
                .is_none(),
            "{label} is for melodies"
        );
    }
    harness.get_by_label_contains("groove-2bar");
    harness.get_by_role_and_label(Role::Button, "Open groove model...");
    screenshot(&harness, &textures, "drums");
    // The kit window maps the classes to notes.
    harness
        .get_by_role_and_label(Role::Button, "Kit...")
        .click();
    harness.run_steps(3);
    for label in ["Kick", "Snare", "Closed Hi-Hat", "Ride"] {
        harness.get_by_role_and_label(Role::Slider, label);
    }
    screenshot(&harness, &textures, "drums-kit");
}

#[test]
fn the_editor_reads_at_200_percent_and_its_controls_move_parameters() {
    let (rig, editor) = Rig::start();
    rig.play(rig.newest.generation, 0.0);
    let textures = Textures::default();
    let mut harness = harness(editor, 2.0, &textures);
    screenshot(&harness, &textures, "fresh-200");

    // A click on Capture A counts one press for the audio thread.
    let presses = rig.params.capture.presses[0].load(Ordering::Acquire);
    harness
        .get_by_role_and_label(Role::Button, "Capture A")
        .click();
    harness.run_steps(2);
    assert_eq!(
        rig.params.capture.presses[0].load(Ordering::Acquire),
        presses + 1
    );

    // Keyboard: focus the morph slider and step it with the arrow keys.
    harness.get_by_role_and_label(Role::Slider, "Pad X").focus();
    harness.run_steps(1);
    harness.key_press(egui::Key::ArrowRight);
    harness.run_steps(2);
    assert!(
        rig.params.latent.morph.value() > 0.0,
        "the arrow key moved the morph"
    );

    // The XY pad sets both of its parameters.
    let pad = harness.get_by_label_contains("XY pad:").rect();
    harness.drag_at(pad.min + pad.size() * Vec2::new(0.75, 0.25));
    harness.run_steps(1);
    harness.drop_at(pad.min + pad.size() * Vec2::new(0.75, 0.25));
    harness.run_steps(2);
    assert!(
        (rig.params.latent.morph.value() - 0.75).abs() < 0.03,
        "pad X is the morph: {}",
        rig.params.latent.morph.value()
    );
    assert!(
        (rig.params.pad.y.value() - 0.75).abs() < 0.03,
        "pad Y blends to the C-D edge: {}",
        rig.params.pad.y.value()
    );

    // The model card, with the metrics measured when the model shipped.
    harness
        .get_by_role_and_label(Role::Button, "Model card")
        .click();
    harness.run_steps(3);
    harness.get_by_label("teacher forced");
    harness.get_by_label_contains("music neurons; with encoder");
    // The phrase length, on the card and beside the model's name.
    harness.get_by_label_contains("phrases of 2 bars, z = 128");
    assert!(harness.query_all_by_label("2 bars").count() >= 1);
}
