//! Parameter widgets: every control the editor draws goes through the host (begin, set,
//! end), so automation records what the performer does.

use egui::{Button, ComboBox, Response, Slider, Ui, Vec2};
use nice_plug::prelude::{BoolParam, Enum, EnumParam, Param, ParamSetter};

/// Height of buttons and sliders: big targets for a stage.
pub const ROW_HEIGHT: f32 = 26.0;

/// `label` before the control it names (every control's label is on its left, so that
/// a row of them reads unambiguously), tied to it for screen readers; nothing for an
/// empty one (a caller that draws its own, as the neuron sliders do).
fn labelled(ui: &mut Ui, label: &str, control: impl FnOnce(&mut Ui) -> Response) -> Response {
    ui.horizontal(|ui| {
        let name = (!label.is_empty()).then(|| ui.label(label).id);
        let response = control(ui);
        match name {
            Some(id) => response.labelled_by(id),
            None => response,
        }
    })
    .inner
}

/// A slider over the parameter's whole range, after its label, showing its value as the
/// host does. Drag, arrow keys when focused (Tab to focus), double-click for the default,
/// or click the value to type one.
pub fn param_slider<P: Param>(
    ui: &mut Ui,
    setter: &ParamSetter,
    param: &P,
    label: &str,
    width: f32,
) -> Response {
    let mut normalized = param.unmodulated_normalized_value() as f64;
    let step = param
        .step_count()
        .map_or(0.0, |steps| 1.0 / steps.max(1) as f64);
    let response = labelled(ui, label, |ui| {
        ui.spacing_mut().slider_width = width;
        ui.add(
            Slider::new(&mut normalized, 0.0..=1.0)
                .step_by(step)
                .custom_formatter(|n, _| param.normalized_value_to_string(n as f32, true))
                .custom_parser(|s| param.string_to_normalized_value(s).map(f64::from)),
        )
    });
    if response.double_clicked() {
        set_normalized(setter, param, param.default_normalized_value());
    } else if response.drag_started() {
        setter.begin_set_parameter(param);
    } else if response.changed() && !response.dragged() {
        // Keyboard or typed value: one complete gesture.
        set_normalized(setter, param, normalized as f32);
        return response;
    }
    if response.dragged() && response.changed() {
        setter.set_parameter_normalized(param, normalized as f32);
    }
    if response.drag_stopped() {
        setter.end_set_parameter(param);
    }
    response
}

/// One host gesture that sets `param` to `normalized`.
pub fn set_normalized<P: Param>(setter: &ParamSetter, param: &P, normalized: f32) {
    setter.begin_set_parameter(param);
    setter.set_parameter_normalized(param, normalized);
    setter.end_set_parameter(param);
}

/// A drop-down of an enum parameter's variants, after its label.
pub fn param_choice<T: Enum + PartialEq + 'static>(
    ui: &mut Ui,
    setter: &ParamSetter,
    param: &EnumParam<T>,
    label: &str,
    width: f32,
) -> Response {
    let current = param.value().to_index();
    let names = T::variants();
    labelled(ui, label, |ui| {
        ComboBox::from_id_salt(label)
            .width(width)
            .selected_text(names[current])
            .show_ui(ui, |ui| {
                for (index, name) in names.iter().enumerate() {
                    if ui.selectable_label(index == current, *name).clicked() && index != current {
                        setter.begin_set_parameter(param);
                        setter.set_parameter(param, T::from_index(index));
                        setter.end_set_parameter(param);
                    }
                }
            })
            .response
    })
}

/// A momentary button bound to a [`BoolParam`]: a press is on then off, which the
/// parameter's callback counts (see `LatentLiveParams::capture_presses`).
pub fn param_button(
    ui: &mut Ui,
    setter: &ParamSetter,
    param: &BoolParam,
    label: &str,
    size: Vec2,
) -> Response {
    let response = ui.add_sized(size, Button::new(label));
    if response.clicked() {
        setter.begin_set_parameter(param);
        setter.set_parameter(param, true);
        setter.set_parameter(param, false);
        setter.end_set_parameter(param);
    }
    response
}
