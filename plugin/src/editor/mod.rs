//! The editor (egui, through nice-plug-egui): the piano roll, the latent panel, the
//! clips and their morph, the XY pad and the neuron view.
//!
//! It reads what the worker publishes ([`crate::link::view`], wait-free) and the engine's
//! status atomics, and changes things only through parameters (so the host records
//! them) or [`Command`]s to the worker. Nothing here can block the audio thread or the
//! worker.

mod drum_grid;
mod neurons;
mod panel;
mod piano_roll;
mod widgets;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use egui::{
    Align2, Color32, FontId, Pos2, Rect, RichText, Sense, Stroke, StrokeKind, TextureHandle, Ui,
    Vec2,
};
use egui_file::FileDialog;
use nice_plug::context::gui::GuiContext;
use nice_plug::editor::dpi::LogicalSize;
use nice_plug::editor::ResizeHint;
use nice_plug::prelude::{Param, ParamSetter};
use nice_plug_egui::{EguiEditorState, NiceEguiApp};

use crate::link::view::{Decoded, ModelInfo, View};
use crate::link::{Command, EditorLink};
use crate::params::Playback;
use crate::params::{
    ChordInput, GrooveModelChoice, LatentLiveParams, ModelChoice, PlayMode, ATTRIBUTES,
};
use crate::state::clips::{Clips, Slot};
use crate::state::scenes::NUM_SCENES;
use latent_live_core::music::chord::Chord;
use latent_live_core::music::key::Key;
use latent_live_core::music::{attributes, drums, Encoding};
use widgets::{param_button, param_choice, param_slider, set_normalized, ROW_HEIGHT};

/// Logical size the editor opens at; it can be resized and zoomed from there.
pub const DEFAULT_SIZE: (u32, u32) = (1180, 800);
const ZOOMS: [f32; 4] = [1.0, 1.25, 1.5, 2.0];
const CLIP_A: Color32 = Color32::from_rgb(255, 120, 150);
const CLIP_B: Color32 = Color32::from_rgb(120, 230, 160);
const CLIP_C: Color32 = Color32::from_rgb(255, 200, 90);
const CLIP_D: Color32 = Color32::from_rgb(170, 150, 255);

/// Each clip's colour: its thumbnail and its corner of the XY pad.
fn clip_color(slot: Slot) -> Color32 {
    match slot {
        Slot::A => CLIP_A,
        Slot::B => CLIP_B,
        Slot::C => CLIP_C,
        Slot::D => CLIP_D,
    }
}

/// What the file dialog is choosing a file for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pick {
    Model,
    GrooveModel,
    Clip(Slot),
    Export,
}

pub struct Editor {
    params: Arc<LatentLiveParams>,
    link: EditorLink,
    /// The host's side, from `build()`; tests pass their own.
    context: Option<GuiContext>,
    /// What the worker published last.
    view: View,
    /// The persisted clips, copied when their revision changes.
    clips: (u64, Clips),
    /// Which scenes are stored, as of the store's revision.
    scenes: (u64, [bool; NUM_SCENES]),
    activations: Option<(u64, TextureHandle)>,
    dialog: Option<(Pick, FileDialog)>,
    show_card: bool,
    show_kit: bool,
}

/// nice-plug's editor for the plugin.
pub fn create(
    params: Arc<LatentLiveParams>,
    link: EditorLink,
) -> Option<nice_plug_egui::EguiEditor<Editor>> {
    let state = EguiEditorState::from_size(
        LogicalSize::new(DEFAULT_SIZE.0 as f32, DEFAULT_SIZE.1 as f32),
        1.0,
    );
    let settings = nice_plug_egui::EguiNiceSettings::new()
        .with_tile("Latent Live")
        .with_resize_hint(
            ResizeHint::resizable().with_min_logical_size(LogicalSize::new(900.0, 640.0)),
        );
    let repaint = link.shared.repaint.clone();
    nice_plug_egui::create_egui_editor(state, repaint, settings, Editor::new(params, link))
}

impl NiceEguiApp for Editor {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        gui: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        style(&egui_ctx);
        self.context = Some(gui);
        Ok(())
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut nice_plug_egui::Frame) {
        self.ui(ui);
    }

    fn editor_closed(&mut self) {
        // The texture belongs to the closed window's context.
        self.activations = None;
    }
}

/// Larger text and targets than egui's defaults: it is played on stage.
pub fn style(ctx: &egui::Context) {
    ctx.set_visuals(egui::Visuals::dark());
    ctx.all_styles_mut(|style| {
        for (text_style, font) in style.text_styles.iter_mut() {
            font.size = match text_style {
                egui::TextStyle::Heading => 22.0,
                egui::TextStyle::Small => 11.0,
                _ => 14.0,
            };
        }
        style.spacing.interact_size.y = ROW_HEIGHT;
        style.spacing.item_spacing = Vec2::new(8.0, 6.0);
    });
}

/// A phrase's chords as a musician writes them: each change once, `Am F C G`.
fn progression_name(chords: &[Option<Chord>]) -> String {
    let mut names: Vec<String> = Vec::new();
    let mut last = None;
    for &chord in chords {
        if Some(chord) != last {
            names.push(chord.map_or_else(|| "N.C.".to_string(), |c| c.to_string()));
            last = Some(chord);
        }
    }
    names.join(" ")
}

impl Editor {
    pub fn new(params: Arc<LatentLiveParams>, link: EditorLink) -> Self {
        Self {
            params,
            link,
            context: None,
            view: View::default(),
            clips: (u64::MAX, Clips::default()),
            scenes: (u64::MAX, [false; NUM_SCENES]),
            activations: None,
            dialog: None,
            show_card: false,
            show_kit: false,
        }
    }

    /// Where parameter changes go (the host's [`GuiContext`]).
    pub fn set_context(&mut self, context: GuiContext) {
        self.context = Some(context);
    }

    pub fn ui(&mut self, ui: &mut Ui) {
        let Some(context) = self.context.clone() else {
            return;
        };
        let setter = context.param_setter();
        self.poll();
        // The playhead moves without any input event while the host plays; otherwise
        // the editor is redrawn only when something it shows changes: input, a
        // parameter (nice-plug asks), a decode or a swap (the worker and the audio
        // thread ask through the link's repaint notifier).
        if self.link.status().transport_playing.load(Ordering::Acquire) {
            ui.ctx().request_repaint_after(Duration::from_millis(16));
        }

        let (playing, queued) = self.phrases();
        let playhead = self.playhead(playing.as_deref());
        egui::Panel::top("top").show(ui, |ui| self.top_bar(ui, &setter));
        egui::Panel::bottom("neurons")
            .resizable(false)
            .show(ui, |ui| self.neuron_view(ui, playing.clone(), playhead));
        egui::CentralPanel::default().show(ui, |ui| {
            let (now, next) = (
                playing.as_ref().map(|d| &d.phrase),
                queued.as_ref().map(|d| &d.phrase),
            );
            match now.or(next).map_or(Encoding::Melody, |p| p.encoding) {
                Encoding::Melody => {
                    let harmony = piano_roll::Harmony {
                        scale: self.params.pitch.lock(),
                        chords: playing.as_ref().map_or(&[][..], |d| &d.chords[..]),
                    };
                    piano_roll::show(ui, now, next, playhead, &harmony, 150.0)
                }
                Encoding::Drums | Encoding::Groove => drum_grid::show(
                    ui,
                    now,
                    next,
                    playhead,
                    &Playback::from_params(&self.params),
                    150.0,
                ),
            }
            self.playback_strip(ui, &setter);
            ui.separator();
            // Fixed shares of the width: the neuron sliders need the most.
            let height = ui.available_height();
            ui.horizontal_top(|ui| {
                let width = ui.available_width() - 3.0 * ui.spacing().item_spacing.x;
                let column = |ui: &mut Ui, share: f32, body: &mut dyn FnMut(&mut Ui)| {
                    ui.allocate_ui_with_layout(
                        Vec2::new(width * share, height),
                        egui::Layout::top_down(egui::Align::Min),
                        |ui| {
                            ui.set_width(width * share);
                            body(ui)
                        },
                    );
                };
                column(ui, 0.32, &mut |ui| self.latent_panel(ui, &setter));
                column(ui, 0.23, &mut |ui| self.attribute_panel(ui, &setter));
                column(ui, 0.25, &mut |ui| self.clip_panel(ui, &setter));
                column(ui, 0.20, &mut |ui| self.pad_panel(ui, &setter));
            });
        });
        self.file_dialog(ui.ctx(), &setter);
        if self.show_card {
            self.model_card(ui.ctx());
        }
        if self.show_kit {
            self.kit_window(ui.ctx(), &setter);
        }
    }

    /// The scene slots, where a performer looks between cues: `Live` and 1 to 8, lit
    /// when stored, framed while playing. A click recalls (at the swap point), a
    /// Shift-click stores what plays now, an Alt-click clears.
    fn scene_row(&mut self, ui: &mut Ui, setter: &ParamSetter) {
        ui.label("Scenes");
        let playing = self.link.status().scene_cue();
        for n in 0..=NUM_SCENES as u8 {
            let stored = n == 0 || self.scenes.1[n as usize - 1];
            let text = if n == 0 {
                "Live".to_string()
            } else {
                n.to_string()
            };
            let mut button = egui::Button::new(RichText::new(text).color(if stored {
                Color32::WHITE
            } else {
                Color32::from_gray(110)
            }))
            .min_size(Vec2::new(22.0, ROW_HEIGHT + 2.0));
            if n == playing.scene && (n != 0 || playing.count != 0) {
                button = button.stroke(Stroke::new(2.0, piano_roll::PLAYING));
            }
            let name = if n == 0 {
                "Scene Live".to_string()
            } else {
                format!("Scene {n}")
            };
            let response = ui.add(button).on_hover_text(if n == 0 {
                "Play the controls as they are (from the swap point)".to_string()
            } else {
                format!(
                    "Scene {n}{}: click to recall at the swap point, Shift-click to store                      what plays now, Alt-click to clear",
                    if stored { "" } else { " (empty)" }
                )
            });
            response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &name));
            if !response.clicked() {
                continue;
            }
            let modifiers = ui.input(|i| i.modifiers);
            if n > 0 && modifiers.shift {
                self.link.commands.send(Command::StoreScene(n));
            } else if n > 0 && modifiers.alt {
                self.link.commands.send(Command::ClearScene(n));
            } else {
                // The parameter shows the host the scene; the click recalls it even when
                // the parameter already names it.
                let scene = &self.params.scenes.scene;
                set_normalized(setter, scene, scene.preview_normalized(n as i32));
                self.params.scenes.click(n);
            }
        }
    }

    /// Takes what the worker published since the last frame.
    fn poll(&mut self) {
        self.view.clone_from(self.link.view.read());
        let revision = self.params.clips.revision();
        if self.clips.0 != revision {
            self.clips = (revision, self.params.clips.get());
        }
        let revision = self.params.scene_store.revision();
        if self.scenes.0 != revision {
            let scenes = self.params.scene_store.get();
            self.scenes = (revision, std::array::from_fn(|i| scenes.slots[i].is_some()));
        }
    }

    /// The decode the audio thread plays, and a newer one waiting for its swap point.
    fn phrases(&self) -> (Option<Arc<Decoded>>, Option<Arc<Decoded>>) {
        let playing_generation = self
            .link
            .status()
            .playing_generation
            .load(Ordering::Acquire);
        let recent = &self.view.recent;
        let playing = recent
            .iter()
            .rev()
            .find(|d| d.phrase.generation == playing_generation)
            .cloned();
        let newest = recent.last().cloned();
        match playing {
            Some(p) => {
                let queued = newest.filter(|n| n.phrase.generation > p.phrase.generation);
                (Some(p), queued)
            }
            None => (None, newest),
        }
    }

    /// The playing phrase's step under the host's playhead, while the transport runs.
    fn playhead(&self, playing: Option<&Decoded>) -> Option<f32> {
        let status = self.link.status();
        let playing = playing.filter(|_| status.transport_playing.load(Ordering::Acquire))?;
        let steps = playing.phrase.steps.max(1) as f64;
        Some((status.position_beats.load(Ordering::Acquire) * 4.0).rem_euclid(steps) as f32)
    }

    fn top_bar(&mut self, ui: &mut Ui, setter: &ParamSetter) {
        ui.horizontal(|ui| {
            ui.heading("Latent Live");
            ui.separator();
            param_choice(ui, setter, &self.params.model, "Model", 200.0);
            if ui.button("Open model file...").clicked() {
                self.open_dialog(Pick::Model);
            }
            if ui.button("Model card").clicked() {
                self.show_card = !self.show_card;
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let zoom = ui.ctx().zoom_factor();
                egui::ComboBox::from_label("Zoom")
                    .selected_text(format!("{:.0} %", zoom * 100.0))
                    .width(70.0)
                    .show_ui(ui, |ui| {
                        for z in ZOOMS {
                            if ui
                                .selectable_label(
                                    (zoom - z).abs() < 1e-3,
                                    format!("{:.0} %", z * 100.0),
                                )
                                .clicked()
                            {
                                ui.ctx().set_zoom_factor(z);
                            }
                        }
                    });
                let micros = self
                    .link
                    .status()
                    .last_decode_micros
                    .load(Ordering::Acquire);
                if micros > 0 {
                    ui.label(
                        RichText::new(format!("decode {:.1} ms", micros as f64 / 1000.0)).weak(),
                    );
                }
            });
        });
        ui.horizontal(|ui| {
            self.scene_row(ui, setter);
            ui.separator();
            match &self.view.model {
                Some(model) => {
                    ui.label(RichText::new(display_name(model)).strong());
                    ui.label(phrase_length(model.bars));
                    // A model file is also known by its path.
                    if model.name != display_name(model) {
                        ui.label(RichText::new(&model.name).weak());
                    }
                }
                None => {
                    ui.label("loading the model...");
                }
            }
            if self.link.status().failed.load(Ordering::Acquire) {
                ui.colored_label(
                    Color32::from_rgb(255, 90, 90),
                    "The inference thread stopped; reload the plugin.",
                );
            }
            if let Some(message) = self.link.status().message() {
                ui.colored_label(Color32::from_rgb(255, 110, 110), message.to_string());
            }
        });
    }

    /// How the phrase is played, under the piano roll it shapes: a framed section a row
    /// (Playback, then Notes and Chords, or Drums), each wrapping onto more lines rather
    /// than widening the window at large zooms.
    fn playback_strip(&mut self, ui: &mut Ui, setter: &ParamSetter) {
        let p = self.params.clone();
        let drums = self.encoding() == Encoding::Drums;
        ui.spacing_mut().item_spacing.y = 3.0;
        section(ui, "Playback", |ui| {
            param_choice(ui, setter, &p.start.mode, "Play", 110.0).on_hover_text(
                "With the host's transport; free from activation, for hosts whose transport \
                 never runs; or while a note is held on the trigger channel, in its key",
            );
            if p.start.mode.value() == PlayMode::NoteTrigger {
                param_slider(
                    ui,
                    setter,
                    &p.start.trigger_channel,
                    "Trigger channel",
                    60.0,
                );
            }
            param_choice(ui, setter, &p.play.swap, "Swap", 100.0);
            if drums {
                param_slider(ui, setter, &p.drums.channel, "Drum channel", 60.0);
            } else {
                param_slider(ui, setter, &p.play.channel, "MIDI channel", 60.0);
            }
            for (param, label) in [
                (&p.play.thru, "MIDI thru"),
                (&p.audition.on, "Audition synth"),
            ] {
                let mut on = param.value();
                if ui.checkbox(&mut on, label).changed() {
                    widgets::set_normalized(setter, param, if on { 1.0 } else { 0.0 });
                }
            }
        });
        section(ui, if drums { "Drums" } else { "Notes" }, |ui| {
            // Drums are never transposed.
            if !drums {
                param_slider(ui, setter, &p.play.transpose, "Transpose", 90.0)
                    .on_hover_text("In semitones, or in steps of the scale when one is set");
                param_slider(ui, setter, &p.play.octave, "Octave", 60.0);
                param_choice(ui, setter, &p.pitch.key, "Key", 50.0);
                param_choice(ui, setter, &p.pitch.scale, "Scale", 130.0)
                    .on_hover_text("Every melody note is fitted into this key and scale");
            }
            param_slider(ui, setter, &p.play.velocity, "Velocity", 70.0);
            param_slider(ui, setter, &p.play.length, "Length", 70.0);
            if drums {
                param_slider(ui, setter, &p.drums.groove, "Groove", 80.0).on_hover_text(
                    "From the quantized pattern (0) to the groove model's velocities and timing \
                     (100 %)",
                );
                param_choice(ui, setter, &p.drums.groove_model, "Groove model", 130.0);
                if ui.button("Open groove model...").clicked() {
                    self.open_dialog(Pick::GrooveModel);
                }
                if ui
                    .button("Kit...")
                    .on_hover_text("The note each drum plays, for kits that are not General MIDI")
                    .clicked()
                {
                    self.show_kit = !self.show_kit;
                }
            }
        });
        if !drums {
            section(ui, "Chords", |ui| self.chord_controls(ui, setter));
        }
    }

    /// Where chords come from, how they are followed, and the chords the phrase playing
    /// plays over.
    fn chord_controls(&mut self, ui: &mut Ui, setter: &ParamSetter) {
        let p = self.params.clone();
        param_choice(ui, setter, &p.chords.input, "Chord input", 80.0).on_hover_text(
            "The notes held on the chord channel, or below the split note, name the chord",
        );
        match p.chords.input.value() {
            ChordInput::Off => {}
            ChordInput::Channel => {
                param_slider(ui, setter, &p.chords.channel, "Chord channel", 60.0);
            }
            ChordInput::Split => {
                param_slider(ui, setter, &p.chords.split, "Split note", 60.0);
            }
        }
        param_choice(ui, setter, &p.chords.follow, "Chord follow", 70.0)
            .on_hover_text("A new chord takes over at the swap point, or at the next beat");
        let mut thru = p.chords.thru.value();
        if ui
            .checkbox(&mut thru, "Chord thru")
            .on_hover_text("With MIDI thru, the chord's notes go out too")
            .changed()
        {
            widgets::set_normalized(setter, &p.chords.thru, if thru { 1.0 } else { 0.0 });
        }
        let reads_chords = self.view.model.as_ref().is_some_and(|m| m.chords);
        if !reads_chords {
            param_slider(ui, setter, &p.chords.fit, "Chord fit", 80.0)
                .on_hover_text("The share of on-beat notes moved onto a tone of the chord held");
        }
        let (playing, _) = self.phrases();
        let chords = playing
            .map(|d| progression_name(&d.chords))
            .unwrap_or_default();
        if !chords.is_empty() {
            ui.label(RichText::new(chords).strong().color(piano_roll::PLAYING))
                .on_hover_text(if reads_chords {
                    "The chords the model plays over"
                } else {
                    "The chord the on-beat notes are fitted to"
                });
        }
    }

    fn latent_panel(&mut self, ui: &mut Ui, setter: &ParamSetter) {
        ui.label(RichText::new("Music neurons").strong());
        let model = self.view.model.clone();
        let decoded = self.view.recent.last().cloned();
        let label_width = 150.0;
        let width = (ui.available_width() - label_width - 80.0).max(60.0);
        for (i, param) in self
            .params
            .latent
            .sliders
            .each_ref()
            .into_iter()
            .enumerate()
        {
            let label = model
                .as_ref()
                .and_then(|m| m.slider_labels.get(i).cloned())
                .unwrap_or_else(|| format!("N{}", i + 1));
            // Where z sits on this dim now (clips, morph and attributes included).
            let activation = match (&model, &decoded) {
                (Some(m), Some(d)) => m
                    .slider_dims
                    .get(i)
                    .and_then(|&dim| d.z.get(dim))
                    .map(|&v| v / m.slider_scales[i]),
                _ => None,
            };
            column_row(ui, &label, label_width, |ui| {
                ui.vertical(|ui| {
                    ui.spacing_mut().item_spacing.y = 1.0;
                    let slider = param_slider(ui, setter, param, "", width);
                    activation_bar(ui, activation, width);
                    slider
                })
                .inner
            });
        }
    }

    fn attribute_panel(&mut self, ui: &mut Ui, setter: &ParamSetter) {
        ui.label(RichText::new("Attributes").strong());
        let label_width = 110.0;
        let width = (ui.available_width() - label_width - 70.0).max(60.0);
        let own = attributes::of(self.encoding());
        for (i, param) in self
            .params
            .latent
            .attributes
            .iter()
            .enumerate()
            .filter(|(i, _)| own.contains(&ATTRIBUTES[*i]))
        {
            let available = self.view.model.as_ref().is_none_or(|m| m.attributes[i]);
            ui.add_enabled_ui(available, |ui| {
                column_row(ui, param.name(), label_width, |ui| {
                    param_slider(ui, setter, param, "", width)
                })
                .on_disabled_hover_text(format!(
                    "this model has no {} vector that moves it reliably (`cargo xtask \
                     check-sliders`): the slider would not do what it says",
                    ATTRIBUTES[i]
                ));
            });
        }
        ui.add_space(8.0);
        ui.label(RichText::new("Sampling").strong());
        let latent = &self.params.latent;
        column_row(ui, "Temperature", label_width, |ui| {
            param_slider(ui, setter, &latent.temperature, "", width)
        });
        column_row(ui, "Variation", label_width, |ui| {
            param_slider(ui, setter, &latent.seed, "", width)
        });
    }

    fn clip_panel(&mut self, ui: &mut Ui, setter: &ParamSetter) {
        ui.label(RichText::new("Clips").strong());
        // Laid out as the XY pad's corners: C and D on top, A and B below.
        for row in [[Slot::C, Slot::D], [Slot::A, Slot::B]] {
            ui.columns(2, |columns| {
                for (ui, slot) in columns.iter_mut().zip(row) {
                    self.clip_cell(ui, setter, slot);
                }
            });
            ui.add_space(2.0);
        }
        ui.horizontal(|ui| {
            param_choice(
                ui,
                setter,
                &self.params.capture.source,
                "Capture From",
                90.0,
            );
            if ui.button("Export .mid...").clicked() {
                self.open_dialog(Pick::Export);
            }
        });
    }

    /// One clip: its source and key, its thumbnail, Capture, file, Refine and Clear.
    fn clip_cell(&mut self, ui: &mut Ui, setter: &ParamSetter, slot: Slot) {
        let (name, color) = (slot.name(), clip_color(slot));
        let width = ui.available_width();
        let clip = self.clips.1.get(slot).cloned();
        // A melody clip shows the key it was played in.
        let source = clip.as_ref().map_or(String::new(), |c| {
            match Key::estimate(&c.notes).filter(|_| !c.encoding.is_drums()) {
                Some(key) => format!(" ({}, {})", source_name(&c.source), key.name()),
                None => format!(" ({})", source_name(&c.source)),
            }
        });
        ui.add(egui::Label::new(format!("Clip {name}{source}")).truncate());
        let thumb = Vec2::new(width, 30.0);
        match &clip {
            Some(c) if c.encoding.is_drums() => drum_grid::thumbnail(
                ui,
                &c.hits(),
                c.steps,
                thumb,
                color,
                &format!("Clip {name} (drums)"),
            ),
            Some(c) => {
                piano_roll::thumbnail(ui, &c.notes, c.steps, thumb, color, &format!("Clip {name}"))
            }
            None => {
                piano_roll::thumbnail(ui, &[], 32, thumb, color, &format!("Clip {name} (empty)"))
            }
        };
        let half = Vec2::new(
            (width - ui.spacing().item_spacing.x) / 2.0,
            ROW_HEIGHT + 4.0,
        );
        ui.horizontal(|ui| {
            let (param, _) = self.params.capture_button(slot);
            param_button(ui, setter, param, &format!("Capture {name}"), half);
            if ui
                .add_sized(half, egui::Button::new(format!("{name} file...")))
                .on_hover_text("Capture from a MIDI file")
                .clicked()
            {
                self.open_dialog(Pick::Clip(slot));
            }
        });
        ui.horizontal(|ui| {
            ui.add_enabled_ui(clip.is_some(), |ui| {
                if ui
                    .add_sized(half, egui::Button::new(format!("Refine {name}")))
                    .on_hover_text(
                        "Move z to where the decode matches the clip best (latent inversion)",
                    )
                    .clicked()
                {
                    self.link.commands.send(Command::RefineClip(slot));
                }
                if ui
                    .add_sized(half, egui::Button::new(format!("Clear {name}")))
                    .clicked()
                {
                    self.link.commands.send(Command::ClearClip(slot));
                }
            });
        });
    }

    fn pad_panel(&mut self, ui: &mut Ui, setter: &ParamSetter) {
        ui.label(RichText::new("XY pad").strong());
        // Labels in a column of their own, as in the other panels, named as the host names
        // the parameters: the column is narrow, and the slider needs the room.
        let label_width = 68.0;
        // The last column's available width runs past its frame, so the value box's
        // allowance is wider than in the other panels.
        let slider_width = |ui: &Ui| (ui.available_width() - label_width - 115.0).max(30.0);
        let width = slider_width(ui);
        // The pad blends the four clips, one at each corner (A-B along the bottom).
        column_row(ui, "Pad X", label_width, |ui| {
            param_slider(ui, setter, &self.params.latent.morph, "", width)
        })
        .on_hover_text("Morph A-B: from clip A (left) to clip B (right), and C to D above");
        column_row(ui, "Pad Y", label_width, |ui| {
            param_slider(ui, setter, &self.params.pad.y, "", width)
        })
        .on_hover_text("Morph AB-CD: from the bottom edge (A-B) to the top one (C-D)");
        // Rarely changed: folded away, so the pad keeps its room.
        egui::CollapsingHeader::new("Pad axes")
            .default_open(false)
            .show(ui, |ui| {
                let width = slider_width(ui);
                column_row(ui, "X moves", label_width, |ui| {
                    param_slider(ui, setter, &self.params.latent.pad_x, "", width)
                });
                column_row(ui, "Y moves", label_width, |ui| {
                    param_slider(ui, setter, &self.params.latent.pad_y, "", width)
                });
            });
        // Beside the pad, where the hands are: z wanders by itself, bar by bar (the
        // neuron view shows where it is).
        let drift = &self.params.drift;
        column_row(ui, "Drift", label_width, |ui| {
            param_slider(ui, setter, &drift.amount, "", width)
        })
        .on_hover_text(
            "z wanders over the music neurons by itself, along a path the song position and \
             Variation set: the same bar always plays the same z",
        );
        column_row(ui, "Drift Rate", label_width, |ui| {
            param_slider(ui, setter, &drift.cycle_bars, "", width)
        })
        .on_hover_text("Bars the drift takes to come back to where it started");
        let (x, y) = self.params.pad_axes();
        let side = ui
            .available_width()
            .min(ui.available_height() - 8.0)
            .max(80.0);
        // The corners show their clips while the pad blends them.
        let corners = (self.params.latent.pad_x.value() == 0
            && self.params.latent.pad_y.value() == 0)
            .then(|| Slot::ALL.map(|slot| (slot, self.clips.1.get(slot).is_some())));
        xy_pad(ui, setter, x, y, side, corners);
    }

    fn neuron_view(&mut self, ui: &mut Ui, playing: Option<Arc<Decoded>>, playhead: Option<f32>) {
        ui.add_space(4.0);
        let shown = playing.or_else(|| self.view.recent.last().cloned());
        let height = 130.0;
        ui.horizontal(|ui| {
            let width = ui.available_width();
            match &self.view.model {
                Some(model) => neurons::latent_strip(
                    ui,
                    model,
                    shown.as_ref().map(|d| d.z.as_slice()),
                    Vec2::new(width * 0.45, height),
                ),
                None => {
                    ui.allocate_exact_size(Vec2::new(width * 0.45, height), Sense::hover());
                }
            }
            neurons::activations(
                ui,
                &mut self.activations,
                shown.as_deref(),
                playhead,
                Vec2::new(ui.available_width(), height),
            );
        });
        ui.add_space(4.0);
    }

    fn open_dialog(&mut self, pick: Pick) {
        let mut dialog = match pick {
            Pick::Model => FileDialog::open_file()
                .title("Open a model (.safetensors)")
                .show_files_filter(Box::new(|p| has_extension(p, &["safetensors"]))),
            Pick::GrooveModel => FileDialog::open_file()
                .title("Open a groove model (.safetensors)")
                .show_files_filter(Box::new(|p| has_extension(p, &["safetensors"]))),
            Pick::Clip(_) => FileDialog::open_file()
                .title("Capture from a MIDI file")
                .show_files_filter(Box::new(|p| has_extension(p, &["mid", "midi"]))),
            Pick::Export => FileDialog::save_file()
                .title("Export the playing phrase")
                .default_filename("latent-live.mid"),
        };
        dialog.open();
        self.dialog = Some((pick, dialog));
    }

    fn file_dialog(&mut self, ctx: &egui::Context, setter: &ParamSetter) {
        let Some((pick, dialog)) = &mut self.dialog else {
            return;
        };
        if !dialog.show(ctx).selected() {
            if !dialog.visible() {
                self.dialog = None;
            }
            return;
        }
        let (pick, path) = (*pick, dialog.path().map(PathBuf::from));
        self.dialog = None;
        let Some(path) = path else { return };
        match pick {
            Pick::Model => {
                self.params
                    .model_file
                    .update(|f| *f = Some(path.display().to_string()));
                if self.params.model.value() != ModelChoice::File {
                    set_normalized(
                        setter,
                        &self.params.model,
                        self.params.model.preview_normalized(ModelChoice::File),
                    );
                }
            }
            Pick::GrooveModel => {
                self.params
                    .groove_file
                    .update(|f| *f = Some(path.display().to_string()));
                if self.params.drums.groove_model.value() != GrooveModelChoice::File {
                    set_normalized(
                        setter,
                        &self.params.drums.groove_model,
                        self.params
                            .drums
                            .groove_model
                            .preview_normalized(GrooveModelChoice::File),
                    );
                }
            }
            Pick::Clip(slot) => self.link.commands.send(Command::CaptureFile { slot, path }),
            Pick::Export => self
                .link
                .commands
                .send(Command::ExportMidi(path.with_extension("mid"))),
        }
    }

    /// What the model playing plays; melodies until one is loaded.
    fn encoding(&self) -> Encoding {
        self.view
            .model
            .as_ref()
            .map_or(Encoding::Melody, |m| m.encoding)
    }

    /// The kit mapping: the note each drum class plays.
    fn kit_window(&mut self, ctx: &egui::Context, setter: &ParamSetter) {
        let params = self.params.clone();
        egui::Window::new("Drum kit")
            .open(&mut self.show_kit)
            .resizable(false)
            .show(ctx, |ui| {
                ui.label("The note each drum plays on the drum channel (General MIDI by default).");
                for (class, drum) in params.drums.notes.iter().enumerate() {
                    let name = drums::CLASSES[class].name;
                    param_slider(ui, setter, &drum.note, name, 160.0);
                }
                if ui.button("General MIDI").clicked() {
                    for (drum, &gm) in params.drums.notes.iter().zip(&drums::GM_NOTES) {
                        widgets::set_normalized(
                            setter,
                            &drum.note,
                            drum.note.preview_normalized(gm as i32),
                        );
                    }
                }
            });
    }

    fn model_card(&mut self, ctx: &egui::Context) {
        let Some(model) = self.view.model.clone() else {
            return;
        };
        let card = &model.card;
        egui::Window::new("Model card")
            .open(&mut self.show_card)
            .default_size([520.0, 420.0])
            .show(ctx, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    ui.heading(display_name(&model));
                    ui.label(&card.summary);
                    ui.label(format!(
                        "phrases of {}, z = {}, {} music neurons; {}",
                        phrase_length(model.bars),
                        model.z_size,
                        model.music_neurons,
                        if model.has_encoder {
                            "with encoder"
                        } else {
                            "decoder only: captures use latent inversion"
                        }
                    ));
                    egui::Grid::new("metrics").striped(true).show(ui, |ui| {
                        for (name, value) in &card.metrics {
                            ui.label(name.replace('_', " "));
                            ui.label(format!("{value:.4}"));
                            ui.end_row();
                        }
                    });
                    for (title, text) in [
                        ("Data", &card.data),
                        ("Split", &card.split),
                        ("Training", &card.training),
                    ] {
                        if !text.is_empty() {
                            ui.label(RichText::new(title).strong());
                            ui.label(text);
                        }
                    }
                });
            });
    }
}

/// The bar under a latent slider: where z is on that dim, in slider units (±3 full).
/// A framed row of controls across the width, its title first, wrapping onto more lines
/// when they do not fit.
fn section<R>(ui: &mut Ui, title: &str, contents: impl FnOnce(&mut Ui) -> R) -> R {
    egui::Frame::group(ui.style())
        .inner_margin(egui::Margin::symmetric(6, 2))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal_wrapped(|ui| {
                ui.add_sized(
                    Vec2::new(64.0, ROW_HEIGHT),
                    egui::Label::new(RichText::new(title).strong()),
                );
                contents(ui)
            })
            .inner
        })
        .inner
}

/// A row of a column of controls: `label` in a column of its own, `label_width` wide, so
/// that the controls below one another line up; the control is labelled by it.
fn column_row(
    ui: &mut Ui,
    label: &str,
    label_width: f32,
    control: impl FnOnce(&mut Ui) -> egui::Response,
) -> egui::Response {
    ui.horizontal(|ui| {
        let name = ui.add_sized(
            Vec2::new(label_width, ROW_HEIGHT),
            egui::Label::new(label).truncate(),
        );
        control(ui).labelled_by(name.id)
    })
    .inner
}

fn activation_bar(ui: &mut Ui, value: Option<f32>, width: f32) {
    let (rect, response) = ui.allocate_exact_size(Vec2::new(width, 6.0), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, Color32::from_gray(35));
    if let Some(v) = value {
        let t = (v / crate::params::SLIDER_SIGMAS).clamp(-1.0, 1.0);
        let centre = rect.center().x;
        let end = centre + t * rect.width() * 0.5;
        let bar = Rect::from_x_y_ranges(
            centre.min(end)..=centre.max(end).max(centre.min(end) + 1.0),
            rect.y_range(),
        );
        painter.rect_filled(bar, 2.0, neurons::diverging(t));
    }
    response.widget_info(|| {
        egui::WidgetInfo::labeled(
            egui::Role::Meter,
            true,
            format!("activation {:.2}", value.unwrap_or(0.0)),
        )
    });
}

/// Drag a point in the plane of two parameters; arrow keys nudge it when focused.
fn xy_pad(
    ui: &mut Ui,
    setter: &ParamSetter,
    x: &nice_plug::prelude::FloatParam,
    y: &nice_plug::prelude::FloatParam,
    side: f32,
    corners: Option<[(Slot, bool); 4]>,
) {
    // Exactly square, whatever the layout would stretch it to.
    let response = ui.allocate_rect(
        Rect::from_min_size(ui.cursor().min, Vec2::splat(side)),
        Sense::click_and_drag(),
    );
    let rect = response.rect;
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 6.0, Color32::from_gray(26));
    for i in 1..4 {
        let t = i as f32 / 4.0;
        let stroke = Stroke::new(1.0, Color32::from_gray(if i == 2 { 80 } else { 45 }));
        painter.line_segment(
            [
                Pos2::new(rect.left() + t * side, rect.top()),
                Pos2::new(rect.left() + t * side, rect.bottom()),
            ],
            stroke,
        );
        painter.line_segment(
            [
                Pos2::new(rect.left(), rect.top() + t * side),
                Pos2::new(rect.right(), rect.top() + t * side),
            ],
            stroke,
        );
    }
    if response.drag_started() || response.clicked() {
        response.request_focus();
        setter.begin_set_parameter(x);
        setter.begin_set_parameter(y);
    }
    if let Some(pointer) = response
        .interact_pointer_pos()
        .filter(|_| response.dragged() || response.clicked())
    {
        let nx = ((pointer.x - rect.left()) / side).clamp(0.0, 1.0);
        let ny = (1.0 - (pointer.y - rect.top()) / side).clamp(0.0, 1.0);
        setter.set_parameter_normalized(x, nx);
        setter.set_parameter_normalized(y, ny);
    }
    if response.drag_stopped() || response.clicked() {
        setter.end_set_parameter(x);
        setter.end_set_parameter(y);
    }
    if response.has_focus() {
        let step = 0.02;
        let (dx, dy) = ui.input(|i| {
            let key = |k| if i.key_pressed(k) { step } else { 0.0 };
            (
                key(egui::Key::ArrowRight) - key(egui::Key::ArrowLeft),
                key(egui::Key::ArrowUp) - key(egui::Key::ArrowDown),
            )
        });
        if dx != 0.0 {
            set_normalized(
                setter,
                x,
                (x.unmodulated_normalized_value() + dx).clamp(0.0, 1.0),
            );
        }
        if dy != 0.0 {
            set_normalized(
                setter,
                y,
                (y.unmodulated_normalized_value() + dy).clamp(0.0, 1.0),
            );
        }
        painter.rect_stroke(
            rect,
            6.0,
            Stroke::new(2.0, Color32::from_rgb(120, 200, 255)),
            StrokeKind::Inside,
        );
    }
    let point = Pos2::new(
        rect.left() + x.unmodulated_normalized_value() * side,
        rect.bottom() - y.unmodulated_normalized_value() * side,
    );
    // Each clip's letter in its corner, lit when it holds a clip.
    for (slot, held) in corners.into_iter().flatten() {
        let (cx, cy) = slot.corner();
        let at = Pos2::new(
            rect.left() + 12.0 + cx * (side - 24.0),
            rect.bottom() - 12.0 - cy * (side - 24.0),
        );
        let color = if held {
            clip_color(slot)
        } else {
            Color32::from_gray(70)
        };
        painter.circle_stroke(at, 8.0, Stroke::new(1.5, color));
        painter.text(
            at,
            Align2::CENTER_CENTER,
            slot.name(),
            FontId::proportional(11.0),
            color,
        );
    }
    painter.circle_filled(point, 9.0, piano_roll::PLAYING);
    painter.circle_stroke(point, 9.0, Stroke::new(2.0, Color32::WHITE));
    let font = FontId::proportional(12.0);
    // The corners name the pad's own axes; a latent slider on one is named.
    if corners.is_none() {
        painter.text(
            rect.center_bottom() - Vec2::new(0.0, 4.0),
            Align2::CENTER_BOTTOM,
            format!("X: {}", x.name()),
            font.clone(),
            Color32::from_gray(190),
        );
        painter.text(
            rect.left_top() + Vec2::new(6.0, 4.0),
            Align2::LEFT_TOP,
            format!("Y: {}", y.name()),
            font,
            Color32::from_gray(190),
        );
    }
    let label = format!("XY pad: {} {}, {} {}", x.name(), x, y.name(), y);
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Slider, true, &label));
}

/// What the editor calls a model's phrase length.
fn phrase_length(bars: usize) -> String {
    match bars {
        1 => "1 bar".into(),
        bars => format!("{bars} bars"),
    }
}

fn display_name(model: &ModelInfo) -> String {
    if model.card.name.is_empty() {
        model.name.clone()
    } else {
        model.card.name.clone()
    }
}

fn source_name(source: &crate::state::clips::ClipSource) -> String {
    match source {
        crate::state::clips::ClipSource::Input => "played in".into(),
        crate::state::clips::ClipSource::Playing => "from the phrase playing".into(),
        crate::state::clips::ClipSource::Tap => "tapped".into(),
        crate::state::clips::ClipSource::File(path) => std::path::Path::new(path)
            .file_name()
            .map_or(path.clone(), |f| f.to_string_lossy().into_owned()),
    }
}

fn has_extension(path: &std::path::Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
}
