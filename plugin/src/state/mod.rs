//! The plugin's saved state: its version, the migrations that bring an older project up
//! to it, and the checks everything restored from a project passes first.
//!
//! A project file is untrusted input: edited by hand, damaged, or saved by another
//! version. nice-plug hands the state to `Plugin::filter_state` before applying it, and
//! [`migrate`] runs there. It reads the persisted fields with a reader that holds at most
//! what the plugin can use and lets one bad value spoil nothing around it ([`Read`]),
//! brings them up to [`VERSION`], repairs or drops what does not validate, and writes back
//! fields that nice-plug's own strict deserialisation accepts. Every repair or drop is a
//! message for the musician.
//!
//! Nothing a project names is opened except the model file, which is only ever a path the
//! musician once chose in the file dialog: [`check_model_path`] requires an absolute path
//! to a regular file, and the worker reads it with a capped, non-blocking read (a file
//! can change between the check and the read). A clip's source path is only shown.

pub mod clips;
pub mod scenes;

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::Path;

use nice_plug::params::internals::ParamPtr;
use nice_plug::params::persist::PersistentField;
use nice_plug::plugin::{ParamValue, PluginState};
use nice_plug::prelude::Params;
use serde::de::value::MapAccessDeserializer;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::state::clips::{counted, Clip, ClipSource, Clips, Persisted, Slot, MAX_MU};
use crate::state::scenes::Scenes;
use latent_live_core::model::MAX_STEPS;
use latent_live_core::music::melody::Note;
use latent_live_core::music::phrase::MAX_NOTES;
use latent_live_core::music::Encoding;

/// The version of the state this build saves.
/// - 0: the unversioned states of the first builds; a clip is tied to its model by the
///   model's name.
/// - 1: the `ver` field; a clip is tied to the weights by their content hash.
pub const VERSION: u32 = 1;

/// `MIGRATIONS[n]` brings the fields of a version-n state to version n + 1.
const MIGRATIONS: [fn(&mut Restored); VERSION as usize] = [tie_clips_to_weights];

/// The longest model path restored (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;

/// The persisted fields' keys (the plugin's `#[persist]` keys).
const CLIPS: &str = "clips";
const MODEL_FILE: &str = "mfile";
const GROOVE_FILE: &str = "gfile";
const VERSION_FIELD: &str = "ver";
const SCENES: &str = "scenes";

/// The persisted fields, as read from a state and carried through the migrations.
struct Restored {
    clips: Clips,
    model_file: Option<String>,
    groove_file: Option<String>,
}

/// Version 0 tied a clip to its model by the model's name, and a model retrained under the
/// same name kept the means its old weights had given. Version 1 ties a clip to the
/// weights' content hash; an old tie says nothing about the weights, so it is cleared and
/// the worker encodes the clip again from its notes with the weights it loads.
fn tie_clips_to_weights(restored: &mut Restored) {
    for clip in [&mut restored.clips.a, &mut restored.clips.b]
        .into_iter()
        .flatten()
    {
        clip.model.clear();
    }
}

/// Brings a state a host restores up to [`VERSION`] and makes it safe to apply: for
/// `Plugin::filter_state`. Returns what was repaired or dropped, as messages for the
/// musician; they also travel in the `ver` field to [`StateVersion::report`].
///
/// Every parameter of this version is in the state afterwards (missing ones at their
/// defaults, out-of-range ones clamped), and so are the clips and the model file: a
/// restored project never keeps part of the one open before it. `defaults` is a fresh
/// set of the plugin's parameters, at their defaults: the ranges and defaults to restore
/// by, and scratch space for reading enum values.
pub fn migrate(state: &mut PluginState, defaults: &dyn Params) -> Vec<String> {
    let mut messages = Vec::new();
    let version = saved_version(state.fields.get(VERSION_FIELD).map(String::as_str));
    let mut restored = Restored {
        clips: read_clips(state.fields.get(CLIPS).map(String::as_str), &mut messages),
        model_file: read_path(
            state.fields.get(MODEL_FILE).map(String::as_str),
            "model file",
            &mut messages,
        ),
        groove_file: read_path(
            state.fields.get(GROOVE_FILE).map(String::as_str),
            "groove model file",
            &mut messages,
        ),
    };
    match version {
        Some(version) if version <= VERSION => MIGRATIONS[version as usize..]
            .iter()
            .for_each(|migration| migration(&mut restored)),
        Some(version) => messages.push(format!(
            "saved by a newer Latent Live (state version {version}): loaded what this version \
             knows"
        )),
        None => messages
            .push("the state's version is unreadable: loaded what this version knows".into()),
    }
    let (clips, said) = restored.clips.validated();
    messages.extend(said);
    let mut checked = |path: Option<String>, what: &str| {
        path.filter(|path| match check_model_path(path) {
            Ok(()) => true,
            Err(why) => {
                messages.push(format!(
                    "the {what} {} was not restored: {why}",
                    shown(path)
                ));
                false
            }
        })
    };
    let model_file = checked(restored.model_file, "model file");
    let groove_file = checked(restored.groove_file, "groove model file");
    let scenes = read_scenes(
        state.fields.get(SCENES).map(String::as_str),
        defaults,
        &mut messages,
    );
    restore_params(&mut state.params, defaults, &mut messages);
    state.fields.insert(CLIPS.into(), json(&clips));
    state.fields.insert(SCENES.into(), json(&scenes));
    state.fields.insert(MODEL_FILE.into(), json(&model_file));
    state.fields.insert(GROOVE_FILE.into(), json(&groove_file));
    state.fields.insert(
        VERSION_FIELD.into(),
        json(&Version {
            number: VERSION,
            report: messages.clone(),
        }),
    );
    messages
}

/// A field's JSON. Cannot fail: what this module writes has string keys and derived
/// `Serialize` impls.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

/// The version a state was saved with: 0 without a `ver` field, `None` when it is
/// unreadable.
fn saved_version(field: Option<&str>) -> Option<u32> {
    field.map_or(Some(0), |json| {
        serde_json::from_str::<Version>(json).ok().map(|v| v.number)
    })
}

/// Why `path` cannot be the model file: it must be an absolute path, at most
/// [`MAX_PATH_BYTES`] long, to a regular file. Only metadata is read (`stat`, which does
/// not open the file, so a FIFO or a device cannot block it).
pub fn check_model_path(path: &str) -> Result<(), String> {
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "its path is {} bytes long (at most {MAX_PATH_BYTES})",
            path.len()
        ));
    }
    if path.contains('\0') {
        return Err("its path holds a NUL character".into());
    }
    if !Path::new(path).is_absolute() {
        return Err("its path is not absolute".into());
    }
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => Ok(()),
        Ok(_) => Err("it is not a regular file".into()),
        Err(e) => Err(format!("it cannot be found ({e})")),
    }
}

/// A path or text short enough for a message.
fn shown(text: &str) -> String {
    const SHOWN: usize = 120;
    if text.len() <= SHOWN {
        format!("{text:?}")
    } else {
        format!(
            "{:?}... ({} bytes)",
            &text[..text.floor_char_boundary(SHOWN)],
            text.len()
        )
    }
}

/// Makes every parameter of this version present and in range: unknown ones are removed,
/// ones of the wrong type or not a number are set to their defaults, ones out of range
/// clamped, missing ones added at their defaults (a version that adds a parameter keeps the
/// sound of older projects when the default is neutral). nice-plug stores a restored value
/// as it is, without clamping, so this is what keeps a saved `morph` of 1e30 or NaN away
/// from the worker.
fn restore_params(
    saved: &mut BTreeMap<String, ParamValue>,
    defaults: &dyn Params,
    messages: &mut Vec<String>,
) {
    let map = defaults.param_map();
    let unknown = saved
        .keys()
        .filter(|id| !map.iter().any(|(known, _, _)| known == *id))
        .count();
    if unknown > 0 {
        let (noun, verb) = if unknown == 1 {
            ("parameter", "was")
        } else {
            ("parameters", "were")
        };
        messages.push(format!(
            "{unknown} saved {noun} unknown to this version {verb} ignored"
        ));
        saved.retain(|id, _| map.iter().any(|(known, _, _)| known == id));
    }
    for (id, ptr, _) in &map {
        // SAFETY: `defaults` owns the parameters and outlives `map`.
        let (low, high, default) = unsafe {
            (
                ptr.preview_plain(0.0),
                ptr.preview_plain(1.0),
                ptr.default_plain_value(),
            )
        };
        let (low, high) = (low.min(high), low.max(high));
        let restored = match (ptr, saved.get(id)) {
                (_, None) => Ok(default_value(ptr, default)),
                (ParamPtr::FloatParam(_), Some(&ParamValue::F32(v))) if v.is_nan() => {
                    Err(v.to_string())
                }
                (ParamPtr::FloatParam(_), Some(&ParamValue::F32(v))) => Ok(ParamValue::F32(
                    clamped(id, v, v.clamp(low, high), messages),
                )),
                (ParamPtr::IntParam(_) | ParamPtr::EnumParam(_), Some(&ParamValue::I32(v))) => Ok(
                    ParamValue::I32(clamped(id, v, v.clamp(low as i32, high as i32), messages)),
                ),
                (ParamPtr::BoolParam(_), Some(&ParamValue::Bool(v))) => Ok(ParamValue::Bool(v)),
                (ParamPtr::EnumParam(p), Some(ParamValue::String(variant)))
                    // SAFETY: as above; this sets the scratch defaults, not the plugin's
                    // parameters.
                    if unsafe { &**p }.set_from_id(variant) =>
                {
                    Ok(ParamValue::String(variant.clone()))
                }
                (_, Some(ParamValue::F32(v))) => Err(format!("the number {v}")),
                (_, Some(ParamValue::I32(v))) => Err(format!("the whole number {v}")),
                (_, Some(ParamValue::Bool(v))) => Err(v.to_string()),
                (_, Some(ParamValue::String(v))) => Err(shown(v)),
            };
        let value = restored.unwrap_or_else(|bad: String| {
            messages.push(format!(
                "parameter {id}: {bad} is not one of its values; set to its default"
            ));
            default_value(ptr, default)
        });
        saved.insert(id.clone(), value);
    }
}

/// `clamped`, saying so when it is not `saved`.
fn clamped<T: PartialEq + std::fmt::Display>(
    id: &str,
    saved: T,
    clamped: T,
    messages: &mut Vec<String>,
) -> T {
    if saved != clamped {
        messages.push(format!(
            "parameter {id}: {saved} is out of its range; set to {clamped}"
        ));
    }
    clamped
}

fn default_value(ptr: &ParamPtr, default: f32) -> ParamValue {
    match ptr {
        ParamPtr::FloatParam(_) => ParamValue::F32(default),
        ParamPtr::IntParam(_) | ParamPtr::EnumParam(_) => ParamValue::I32(default as i32),
        ParamPtr::BoolParam(_) => ParamValue::Bool(default > 0.5),
    }
}

/// The clips field read leniently: a part that is unreadable is dropped with a message,
/// the rest kept for [`Clips::validated`].
fn read_clips(field: Option<&str>, messages: &mut Vec<String>) -> Clips {
    let Some(json) = field else {
        return Clips::default();
    };
    let saved = match serde_json::from_str::<Read<SavedClips>>(json) {
        Ok(Read(Ok(saved))) => saved,
        Ok(Read(Err(found))) => {
            messages.push(format!(
                "the clips are unreadable ({found}): none were restored"
            ));
            return Clips::default();
        }
        Err(e) => {
            messages.push(format!(
                "the clips are unreadable ({e}): none were restored"
            ));
            return Clips::default();
        }
    };
    let mut clips = Clips::default();
    let saved = [
        (Slot::A, saved.a),
        (Slot::B, saved.b),
        (Slot::C, saved.c),
        (Slot::D, saved.d),
    ];
    for (slot, saved) in saved {
        let clip = match saved.0 {
            Ok(saved) => saved.clip(slot, messages),
            Err(Found::Null | Found::Missing) => None,
            Err(found) => {
                messages.push(format!("clip {slot:?}: dropped: it is {found}, not a clip"));
                None
            }
        };
        clips.set(slot, clip);
    }
    clips
}

/// The scenes field: every scene's clips validated, and its values those of parameters
/// this version has, in their ranges. Scenes are whole or dropped: a field serde cannot
/// read restores none (a scene is only ever written by the plugin).
fn read_scenes(field: Option<&str>, defaults: &dyn Params, messages: &mut Vec<String>) -> Scenes {
    let Some(json) = field else {
        return Scenes::default();
    };
    let scenes = match serde_json::from_str::<Scenes>(json) {
        Ok(scenes) => scenes,
        Err(e) => {
            messages.push(format!(
                "the scenes are unreadable ({e}): none were restored"
            ));
            return Scenes::default();
        }
    };
    let map = defaults.param_map();
    let (scenes, said) = scenes.validated(|id, value| {
        let (_, ptr, _) = map.iter().find(|(known, _, _)| known == id)?;
        // SAFETY: `defaults` owns the parameters and outlives `map`.
        value
            .is_finite()
            .then(|| unsafe { ptr.preview_plain(ptr.preview_normalized(value)) })
    });
    messages.extend(said);
    scenes
}

/// A model file field (`what` it is, for the messages): a path or nothing.
fn read_path(field: Option<&str>, what: &str, messages: &mut Vec<String>) -> Option<String> {
    match serde_json::from_str::<Read<Scalar>>(field?) {
        Ok(Read(Ok(Scalar::Text(path)))) => Some(path),
        Ok(Read(Ok(Scalar::Null))) => None,
        Ok(Read(Ok(other))) => {
            messages.push(format!(
                "the {what} was not restored: its path is {}",
                other.found()
            ));
            None
        }
        Ok(Read(Err(found))) => {
            messages.push(format!("the {what} was not restored: its path is {found}"));
            None
        }
        Err(e) => {
            messages.push(format!(
                "the {what} was not restored: its path is unreadable ({e})"
            ));
            None
        }
    }
}

/// The `ver` field. Saved by this build it is the bare number [`VERSION`]; [`migrate`]
/// hands nice-plug the number with its report, which reaches [`StateVersion`] when the
/// state is applied (`filter_state` has no access to the plugin instance).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Version {
    pub number: u32,
    /// What the restore repaired or dropped. Never saved.
    pub report: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum VersionJson {
    Number(u32),
    Restored { number: u32, report: Vec<String> },
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.report.is_empty() {
            true => VersionJson::Number(self.number),
            false => VersionJson::Restored {
                number: self.number,
                report: self.report.clone(),
            },
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match VersionJson::deserialize(deserializer)? {
            VersionJson::Number(number) => Version {
                number,
                report: Vec::new(),
            },
            VersionJson::Restored { number, report } => Version { number, report },
        })
    }
}

/// The persisted `ver` field: saves [`VERSION`] (a state is migrated up to it before it is
/// applied), and keeps the report of the last restore for the editor.
#[derive(Debug, Default)]
pub struct StateVersion {
    report: Persisted<Vec<String>>,
}

impl StateVersion {
    /// What the last restored project needed repaired or dropped (empty when nothing).
    pub fn report(&self) -> Vec<String> {
        self.report.get()
    }

    /// Moves on every restore: the editor shows a new report when it changes.
    pub fn revision(&self) -> u64 {
        self.report.revision()
    }
}

impl PersistentField<'_, Version> for StateVersion {
    fn set(&self, restored: Version) {
        self.report.update(|report| *report = restored.report);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&Version) -> R,
    {
        f(&Version {
            number: VERSION,
            report: Vec::new(),
        })
    }
}

// The lenient reader. serde_json stops at the first value a `Deserialize` rejects, so a
// strict `Clips` loses both clips to one bad note. Here every value is taken by a visitor
// that accepts any JSON: the shape it expects is read, anything else is skipped without
// being kept and recorded as what it was ([`Found`]). Lists keep at most what the plugin
// can use, so a saved list of a million notes costs no more than one of 256.

/// What a saved value was, when it was not what the reader expected.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum Found {
    #[default]
    Missing,
    Null,
    Bool,
    Number,
    Text,
    List,
    Object,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Found::Missing => "missing",
            Found::Null => "null",
            Found::Bool => "a boolean",
            Found::Number => "a number",
            Found::Text => "a text",
            Found::List => "a list",
            Found::Object => "an object",
        })
    }
}

/// A saved value read as `T` when it has `T`'s shape.
#[derive(Debug)]
struct Read<T>(Result<T, Found>);

impl<T> Default for Read<T> {
    fn default() -> Self {
        Read(Err(Found::Missing))
    }
}

/// A shape the lenient reader reads: each method takes one kind of JSON value; the ones a
/// shape does not override reject it, after skipping what is inside.
trait Shape: Sized {
    fn scalar(found: Scalar) -> Result<Self, Found> {
        Err(found.found_kind())
    }

    fn list<'de, A: SeqAccess<'de>>(mut list: A) -> Result<Result<Self, Found>, A::Error> {
        while list.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(Found::List))
    }

    fn object<'de, A: MapAccess<'de>>(mut object: A) -> Result<Result<Self, Found>, A::Error> {
        while object.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err(Found::Object))
    }
}

impl<'de, T: Shape> Deserialize<'de> for Read<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(ReadVisitor(PhantomData))
            .map(Read)
    }
}

struct ReadVisitor<T>(PhantomData<T>);

impl<'de, T: Shape> Visitor<'de> for ReadVisitor<T> {
    type Value = Result<T, Found>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(T::scalar(Scalar::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(T::scalar(Scalar::Int(v as i128)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(T::scalar(Scalar::Int(v as i128)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(T::scalar(Scalar::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(T::scalar(Scalar::Text(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(T::scalar(Scalar::Text(v)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(T::scalar(Scalar::Null))
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(T::scalar(Scalar::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        Read::<T>::deserialize(deserializer).map(|read| read.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, list: A) -> Result<Self::Value, A::Error> {
        T::list(list)
    }

    fn visit_map<A: MapAccess<'de>>(self, object: A) -> Result<Self::Value, A::Error> {
        T::object(object)
    }
}

/// A JSON value that is not a list or an object. Text is kept whole: it was in the state,
/// which nice-plug caps, and the validators cap what they keep.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
}

impl Scalar {
    fn found_kind(&self) -> Found {
        match self {
            Scalar::Null => Found::Null,
            Scalar::Bool(_) => Found::Bool,
            Scalar::Int(_) | Scalar::Float(_) => Found::Number,
            Scalar::Text(_) => Found::Text,
        }
    }

    /// What it was, for a message.
    fn found(&self) -> String {
        match self {
            Scalar::Int(v) => format!("{v}"),
            Scalar::Float(v) => format!("{v}"),
            Scalar::Text(text) => shown(text),
            other => other.found_kind().to_string(),
        }
    }

    fn integer<T: TryFrom<i128>>(&self) -> Option<T> {
        match *self {
            Scalar::Int(v) => T::try_from(v).ok(),
            _ => None,
        }
    }
}

impl Shape for Scalar {
    fn scalar(found: Scalar) -> Result<Self, Found> {
        Ok(found)
    }
}

/// A saved list: its first `CAP` elements, and how many more there were (skipped unread).
#[derive(Debug, Default)]
struct List<T, const CAP: usize> {
    kept: Vec<Result<T, Found>>,
    more: usize,
}

impl<T: Shape, const CAP: usize> Shape for List<T, CAP> {
    fn list<'de, A: SeqAccess<'de>>(mut list: A) -> Result<Result<Self, Found>, A::Error> {
        let mut read = List {
            kept: Vec::new(),
            more: 0,
        };
        while read.kept.len() < CAP {
            match list.next_element::<Read<T>>()? {
                Some(element) => read.kept.push(element.0),
                None => return Ok(Ok(read)),
            }
        }
        while list.next_element::<IgnoredAny>()?.is_some() {
            read.more += 1;
        }
        Ok(Ok(read))
    }
}

/// An object's fields read by a derived `Deserialize` whose fields are all [`Read`]s, so it
/// accepts any object; only a repeated key fails it (and with it the whole field).
macro_rules! object_shape {
    ($name:ident) => {
        impl Shape for $name {
            fn object<'de, A: MapAccess<'de>>(object: A) -> Result<Result<Self, Found>, A::Error> {
                $name::deserialize(MapAccessDeserializer::new(object)).map(Ok)
            }
        }
    };
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SavedClips {
    a: Read<SavedClip>,
    b: Read<SavedClip>,
    c: Read<SavedClip>,
    d: Read<SavedClip>,
}
object_shape!(SavedClips);

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SavedClip {
    notes: Read<List<SavedNote, MAX_NOTES>>,
    steps: Read<Scalar>,
    source: Read<SavedSource>,
    mu: Read<List<Scalar, MAX_MU>>,
    model: Read<Scalar>,
    encoding: Read<Scalar>,
    chords: Read<List<Scalar, MAX_STEPS>>,
}
object_shape!(SavedClip);

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SavedNote {
    pitch: Read<Scalar>,
    start: Read<Scalar>,
    end: Read<Scalar>,
}
object_shape!(SavedNote);

/// A [`ClipSource`] as serde writes it: `"Input"`, `"Playing"` or `{"File": "path"}`.
#[derive(Debug)]
struct SavedSource(Scalar, Option<Scalar>);

impl Shape for SavedSource {
    fn scalar(found: Scalar) -> Result<Self, Found> {
        Ok(SavedSource(found, None))
    }

    fn object<'de, A: MapAccess<'de>>(mut object: A) -> Result<Result<Self, Found>, A::Error> {
        let mut source = Err(Found::Object);
        while let Some((variant, content)) = object.next_entry::<Read<Scalar>, Read<Scalar>>()? {
            source = match (variant.0, content.0) {
                (Ok(variant), Ok(content)) => Ok(SavedSource(variant, Some(content))),
                _ => Err(Found::Object),
            };
        }
        Ok(source)
    }
}

impl SavedSource {
    fn source(self) -> Option<ClipSource> {
        match (self.0, self.1) {
            (Scalar::Text(name), None) if name == "Input" => Some(ClipSource::Input),
            (Scalar::Text(name), None) if name == "Playing" => Some(ClipSource::Playing),
            (Scalar::Text(name), None) if name == "Tap" => Some(ClipSource::Tap),
            (Scalar::Text(name), Some(Scalar::Text(path))) if name == "File" => {
                Some(ClipSource::File(path))
            }
            _ => None,
        }
    }
}

impl SavedClip {
    /// The clip, if its length is readable; the parts that are not are dropped or reset
    /// with a message. [`Clip::validated`] checks the rest.
    fn clip(self, slot: Slot, messages: &mut Vec<String>) -> Option<Clip> {
        let mut say = |what: String| messages.push(format!("clip {slot:?}: {what}"));
        let steps = match self.steps.0 {
            Ok(steps) => match steps.integer::<u32>() {
                Some(steps) => steps,
                None => {
                    say(format!(
                        "dropped: its length, {}, is not a number of steps",
                        steps.found()
                    ));
                    return None;
                }
            },
            Err(found) => {
                say(format!("dropped: its length is {found}"));
                return None;
            }
        };
        let mut notes = Vec::new();
        match self.notes.0 {
            Ok(list) => {
                let read = list.kept.len();
                notes.extend(
                    list.kept
                        .into_iter()
                        .filter_map(|note| note.ok().and_then(SavedNote::note)),
                );
                if notes.len() < read {
                    say(counted(
                        read - notes.len(),
                        "that cannot be read",
                        "dropped",
                    ));
                }
                if list.more > 0 {
                    say(counted(
                        list.more,
                        &format!("past the first {MAX_NOTES}"),
                        "dropped",
                    ));
                }
            }
            Err(found) => say(format!("its notes are {found}, not a list")),
        }
        let source = match self.source.0 {
            Ok(saved) => saved.source(),
            Err(Found::Missing) => Some(ClipSource::Input),
            Err(_) => None,
        };
        let source = source.unwrap_or_else(|| {
            say("its source is unknown to this version: shown as played in".into());
            ClipSource::Input
        });
        let number = |x: Result<Scalar, Found>| match x {
            Ok(Scalar::Int(v)) => Some(v as f32),
            Ok(Scalar::Float(v)) => Some(v as f32),
            _ => None,
        };
        let mu = match self.mu.0 {
            Ok(list) if list.more == 0 => list
                .kept
                .into_iter()
                .map(number)
                .collect::<Option<Vec<f32>>>(),
            // Encoded again, like a clip whose weights are not loaded.
            Err(Found::Missing) => Some(Vec::new()),
            _ => None,
        };
        let model = match self.model.0 {
            Ok(Scalar::Text(model)) => model,
            _ => String::new(),
        };
        let (mu, model) = mu.map_or_else(
            || {
                say(
                    "its latent mean is unreadable or longer than any model's: it is encoded \
                     again from its notes"
                        .into(),
                );
                (Vec::new(), String::new())
            },
            |mu| (mu, model),
        );
        let encoding = match self.encoding.0 {
            Ok(Scalar::Text(name)) => Encoding::from_name(&name),
            Err(Found::Missing) => Some(Encoding::Melody),
            _ => None,
        };
        let Some(encoding) = encoding else {
            say("dropped: it is neither a melody nor drums".into());
            return None;
        };
        // Chords that cannot all be read are dropped; [`Clip::validated`] checks the rest.
        let chords = match self.chords.0 {
            Ok(list) if list.more == 0 => list
                .kept
                .into_iter()
                .map(|c| match c {
                    Ok(Scalar::Int(code)) => u16::try_from(code).ok(),
                    _ => None,
                })
                .collect::<Option<Vec<u16>>>()
                .unwrap_or_else(|| {
                    say("its chords cannot be read: dropped".into());
                    Vec::new()
                }),
            Err(Found::Missing) => Vec::new(),
            _ => {
                say("its chords cannot be read: dropped".into());
                Vec::new()
            }
        };
        Some(Clip {
            notes,
            steps,
            source,
            mu,
            model,
            encoding,
            chords,
        })
    }
}

impl SavedNote {
    fn note(self) -> Option<Note> {
        let field = |read: Read<Scalar>| read.0.ok();
        Some(Note {
            pitch: field(self.pitch)?.integer()?,
            start: field(self.start)?.integer()?,
            end: field(self.end)?.integer()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::LatentLiveParams;

    const V0_DEFAULTS: &str = include_str!("../../../tests/fixtures/state/v0-defaults.state.json");
    const V0_CLIPS: &str = include_str!("../../../tests/fixtures/state/v0-clips-morph.state.json");

    fn state(json: &str) -> PluginState {
        serde_json::from_str(json).unwrap()
    }

    /// The defaults fixture with these persisted fields.
    fn with_fields(clips: &str, model_file: &str) -> PluginState {
        let mut state = state(V0_DEFAULTS);
        state.fields.insert(CLIPS.into(), clips.into());
        state.fields.insert(MODEL_FILE.into(), model_file.into());
        state
    }

    /// Fresh parameters with the state's fields applied, as nice-plug applies them. In
    /// this crate's tests nice-plug's debug assertion panics on a field it cannot read.
    fn applied(state: &PluginState) -> LatentLiveParams {
        let params = LatentLiveParams::default();
        params.deserialize_fields(&state.fields);
        params
    }

    fn migrated(mut state: PluginState) -> (PluginState, Vec<String>) {
        let messages = migrate(&mut state, &LatentLiveParams::default());
        (state, messages)
    }

    /// A clip JSON in slot A with these fields (serde's names).
    fn clip_a(fields: &str) -> String {
        format!(r#"{{"a": {{{fields}}}, "b": null}}"#)
    }

    #[test]
    fn a_v0_state_migrates_silently_and_its_clips_lose_the_name_tie() {
        let before = state(V0_CLIPS);
        let (after, messages) = migrated(before.clone());
        assert_eq!(messages, Vec::<String>::new());
        assert_eq!(after.fields[VERSION_FIELD], "1");
        // Every saved value is in range and kept; parameters added since are at their
        // defaults.
        let mut expected = before.params.clone();
        for (id, value) in &after.params {
            if !before.params.contains_key(id) {
                let drums = [
                    "kick", "snare", "hats", "toms", "cymb", "dsync", "bback", "fill", "dchan",
                    "groove", "gmodel",
                ];
                let chords = ["chin", "chch", "split", "chfol", "chthru", "chfit"];
                let start = [
                    "play", "trgch", "drift", "drrate", "pady2", "capc", "capd", "scene", "scnch",
                    "scnnt", "sglide",
                ];
                assert!(
                    ["chan", "thru", "key", "scale"].contains(&id.as_str())
                        || chords.contains(&id.as_str())
                        || start.contains(&id.as_str())
                        || drums.contains(&id.as_str())
                        || id.starts_with("dn_"),
                    "{id} added"
                );
                expected.insert(id.clone(), value.clone());
            }
        }
        assert_eq!(json(&after.params), json(&expected));
        let old: Clips = serde_json::from_str(&before.fields[CLIPS]).unwrap();
        let params = applied(&after);
        let new = params.clips.get();
        for (old, new) in [(old.a, new.a), (old.b, new.b)] {
            let (old, new) = (old.unwrap(), new.unwrap());
            assert_eq!((old.model.as_str(), new.model.as_str()), ("folk-2bar", ""));
            assert_eq!(
                (&old.notes, old.steps, &old.source, &old.mu),
                (&new.notes, new.steps, &new.source, &new.mu)
            );
        }
        assert!(params.state_version.report().is_empty());
        // A migrated state is a current one: migrating it again changes nothing.
        let (again, messages) = migrated(after.clone());
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(json(&again), json(&after));
    }

    #[test]
    fn saved_states_carry_the_bare_version_and_restores_report_to_the_editor() {
        let params = LatentLiveParams::default();
        assert_eq!(params.serialize_fields()[VERSION_FIELD], "1");
        let (state, messages) = migrated(with_fields(
            &clip_a(r#""notes": [{"pitch": 60, "start": 0, "end": 4}], "steps": 0"#),
            "null",
        ));
        assert_eq!(
            messages,
            ["clip A: dropped: its length, 0 steps, is not between 1 and 256"]
        );
        let revision = params.state_version.revision();
        params.deserialize_fields(&state.fields);
        assert_eq!(params.state_version.report(), messages);
        assert!(params.state_version.revision() > revision);
        assert_eq!(
            params.serialize_fields()[VERSION_FIELD],
            "1",
            "the report is never saved"
        );
    }

    #[test]
    fn scenes_restore_in_range_with_their_clips_or_not_at_all() {
        let note = r#"{"pitch": 60, "start": 0, "end": 4}"#;
        let scene = format!(
            r#"{{"values": {{"lat1": 9.0, "seed": 12.0, "synth": 1.0, "gone": 3.0}},
                "clips": {{"a": {{"notes": [{note}], "steps": 0, "source": "Input", "mu": [],
                "model": ""}}, "b": null}}}}"#
        );
        let slots = format!("[null, {scene}, null, null, null, null, null, null]");
        let no_clips = r#"{"a": null, "b": null}"#;
        let mut state = with_fields(no_clips, "null");
        state
            .fields
            .insert(SCENES.into(), format!(r#"{{"slots": {slots}}}"#));
        let (after, messages) = migrated(state);
        assert_eq!(
            messages,
            [
                "scene 2: clip A: dropped: its length, 0 steps, is not between 1 and 256",
                "scene 2: 1 value that names no control or is not a number was dropped",
            ]
        );
        let scenes = applied(&after).scene_store.get();
        let restored = scenes.get(2).expect("scene 2");
        assert_eq!(
            restored.values["lat1"], 3.0,
            "clamped to the slider's range"
        );
        assert_eq!(restored.values["seed"], 12.0);
        assert!(restored.clips.a.is_none());
        assert!(scenes.get(1).is_none());
        // Unreadable: none; missing: none, and the field is written either way.
        for (field, said) in [
            (Some("[1, 2]"), 1),
            (Some(r#"{"slots": [null]}"#), 1),
            (None, 0),
        ] {
            let mut state = with_fields(no_clips, "null");
            if let Some(field) = field {
                state.fields.insert(SCENES.into(), field.into());
            }
            let (after, messages) = migrated(state);
            assert_eq!(messages.len(), said, "{field:?}: {messages:?}");
            assert_eq!(applied(&after).scene_store.get(), Scenes::default());
        }
    }

    #[test]
    fn hostile_clips_are_repaired_or_dropped_with_a_message() {
        let note = r#"{"pitch": 60, "start": 0, "end": 4}"#;
        let cases: &[(String, &[&str])] = &[
            (
                clip_a(&format!(
                    r#""notes": [{note}], "steps": 4294967295, "source": "Input", "mu": [], "model": """#
                )),
                &["clip A: dropped: its length, 4294967295 steps, is not between 1 and 256"],
            ),
            (
                clip_a(&format!(r#""notes": [{note}], "steps": 1e3"#)),
                &["clip A: dropped: its length, 1000, is not a number of steps"],
            ),
            (
                clip_a(&format!(r#""notes": [{note}], "steps": "32""#)),
                &["clip A: dropped: its length, \"32\", is not a number of steps"],
            ),
            (
                clip_a(&format!(r#""notes": [{note}], "steps": -1"#)),
                &["clip A: dropped: its length, -1, is not a number of steps"],
            ),
            (
                clip_a(&format!(r#""notes": [{note}]"#)),
                &["clip A: dropped: its length is missing"],
            ),
            (
                clip_a(
                    r#""notes": [{"pitch": 200, "start": 0, "end": 2}, {"pitch": 300, "start": 0, "end": 2}, {"pitch": 61, "start": 8, "end": 4}, {"pitch": 62, "start": 4294967295, "end": 4294967295}, 7, [1, 2], {"pitch": 64, "start": 2, "end": 3}], "steps": 16"#,
                ),
                &[
                    "clip A: 3 notes that cannot be read were dropped",
                    "clip A: 1 note above pitch 127 was dropped",
                    "clip A: 2 notes with no length were dropped",
                ],
            ),
            (
                clip_a(r#""notes": 5, "steps": 16"#),
                &[
                    "clip A: its notes are a number, not a list",
                    "clip A: dropped: no notes are left",
                ],
            ),
            (
                clip_a(&format!(
                    r#""notes": [{note}], "steps": 16, "source": {{"Sampler": 3}}"#
                )),
                &["clip A: its source is unknown to this version: shown as played in"],
            ),
            (
                clip_a(&format!(
                    r#""notes": [{note}], "steps": 16, "source": {{"File": 3}}"#
                )),
                &["clip A: its source is unknown to this version: shown as played in"],
            ),
            (
                clip_a(&format!(
                    r#""notes": [{note}], "steps": 16, "mu": [0.5, null]"#
                )),
                &[
                    "clip A: its latent mean is unreadable or longer than any model's: it is \
                     encoded again from its notes",
                ],
            ),
            (
                clip_a(&format!(
                    r#""notes": [{note}], "steps": 16, "chords": [1, 2]"#
                )),
                &["clip A: its chords do not fit it: dropped"],
            ),
            (
                clip_a(&format!(
                    r#""notes": [{note}], "steps": 2, "chords": [1, 65535]"#
                )),
                &[
                    "clip A: its chords do not fit it: dropped",
                    "clip A: 1 note past the clip's end was cut there",
                ],
            ),
            (
                clip_a(&format!(
                    r#""notes": [{note}], "steps": 16, "chords": [1, -3, "C"]"#
                )),
                &["clip A: its chords cannot be read: dropped"],
            ),
            (
                clip_a(&format!(
                    r#""notes": [{note}], "steps": 16, "chords": {{"C": 1}}"#
                )),
                &["clip A: its chords cannot be read: dropped"],
            ),
            (
                clip_a(&format!(r#""notes": [{note}], "steps": 16, "mu": [1e39]"#)),
                &[
                    "clip A: its latent mean was not finite or too long: it is encoded again from \
                     its notes",
                ],
            ),
            (
                clip_a(&format!(
                    r#""notes": [{note}], "steps": 16, "mu": {{"x": 1}}"#
                )),
                &[
                    "clip A: its latent mean is unreadable or longer than any model's: it is \
                     encoded again from its notes",
                ],
            ),
            (
                clip_a(&format!(
                    r#""notes": [{note}], "steps": 16, "mu": [0.5], "model": 7, "later": {{"field": [1]}}"#
                )),
                &[],
            ),
            (
                r#"{"a": 7, "b": [1], "c": true, "d": "D"}"#.into(),
                &[
                    "clip A: dropped: it is a number, not a clip",
                    "clip B: dropped: it is a list, not a clip",
                    "clip C: dropped: it is a boolean, not a clip",
                    "clip D: dropped: it is a text, not a clip",
                ],
            ),
            (
                format!(r#"{{"d": {{"notes": [{note}], "steps": 0}}}}"#),
                &["clip D: dropped: its length, 0 steps, is not between 1 and 256"],
            ),
            (
                r#""clips""#.into(),
                &["the clips are unreadable (a text): none were restored"],
            ),
            (
                r#"{"a": null, "#.into(),
                &[
                    "the clips are unreadable (EOF while parsing a value at line 1 column 12): \
                     none were restored",
                ],
            ),
            (
                format!(r#"{{"a": {{"notes": [{note}], "notes": [], "steps": 16}}}}"#),
                &[
                    "the clips are unreadable (duplicate field `notes` at line 1 column 62): none \
                     were restored",
                ],
            ),
            // Skipped without recursion, however deep.
            (
                format!("{}0{}", "[".repeat(100_000), "]".repeat(100_000)),
                &["the clips are unreadable (a list): none were restored"],
            ),
            (
                clip_a(&format!(
                    r#""notes": [{note}, {}{}], "steps": 16"#,
                    "{\"x\": [".repeat(50_000),
                    "]}".repeat(50_000)
                )),
                &["clip A: 1 note that cannot be read was dropped"],
            ),
        ];
        for (clips, expected) in cases {
            let (state, messages) = migrated(with_fields(clips, "null"));
            assert_eq!(messages, *expected, "{clips}");
            let restored = applied(&state).clips.get();
            let four = [&restored.a, &restored.b, &restored.c, &restored.d];
            for clip in four.into_iter().flatten() {
                assert_eq!(
                    clip.clone().validated(Slot::A),
                    (Some(clip.clone()), vec![]),
                    "{clips}: what is restored is valid"
                );
            }
        }
    }

    #[test]
    fn a_million_notes_are_read_without_holding_them() {
        let notes: Vec<String> = (0..1_000_000)
            .map(|i| format!(r#"{{"pitch": 60, "start": {i}, "end": {}}}"#, i + 1))
            .collect();
        let clips = clip_a(&format!(
            r#""notes": [{}], "steps": 256, "mu": [{}]"#,
            notes.join(","),
            vec!["0.5"; 100_000].join(",")
        ));
        let started = std::time::Instant::now();
        let (state, messages) = migrated(with_fields(&clips, "null"));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            messages,
            [
                "clip A: 998976 notes past the first 1024 were dropped",
                "clip A: its latent mean is unreadable or longer than any model's: it is encoded \
                 again from its notes",
                "clip A: 768 notes outside the clip were dropped"
            ]
        );
        let a = applied(&state).clips.get().a.unwrap();
        assert_eq!((a.notes.len(), a.mu.len()), (256, 0));
    }

    #[test]
    fn only_an_absolute_path_to_a_regular_file_is_restored_as_the_model_file() {
        let dir = std::env::temp_dir().join(format!("latent-live-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join("model.safetensors");
        std::fs::write(&model, b"weights").unwrap();
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        let cases = [
            (model.display().to_string(), None),
            (
                "relative/model.safetensors".into(),
                Some("its path is not absolute"),
            ),
            ("/dev/zero".into(), Some("it is not a regular file")),
            (fifo.display().to_string(), Some("it is not a regular file")),
            (dir.display().to_string(), Some("it is not a regular file")),
            (
                dir.join("missing").display().to_string(),
                Some("it cannot be found"),
            ),
            (
                long.clone(),
                Some("its path is 4097 bytes long (at most 4096)"),
            ),
            (
                format!("{}\0x", model.display()),
                Some("its path holds a NUL character"),
            ),
        ];
        for (path, refused) in cases {
            let (state, messages) = migrated(with_fields("{}", &json(&Some(&path))));
            let restored = applied(&state).model_file.get();
            match refused {
                None => assert_eq!((restored, messages), (Some(path), vec![])),
                Some(why) => {
                    assert_eq!(restored, None, "{path}");
                    assert!(
                        messages.len() == 1 && messages[0].contains(why),
                        "{path}: {messages:?}"
                    );
                    assert!(
                        messages[0].len() < 300,
                        "a long path is shortened in the message"
                    );
                }
            }
        }
        let (_, messages) = migrated(with_fields("{}", "5"));
        assert_eq!(messages, ["the model file was not restored: its path is 5"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parameters_are_clamped_defaulted_or_dropped() {
        let mut state = state(V0_DEFAULTS);
        let params = &mut state.params;
        params.insert("morph".into(), ParamValue::F32(f32::NAN));
        params.insert("lat1".into(), ParamValue::F32(1e30));
        params.insert("seed".into(), ParamValue::I32(-5));
        params.insert("model".into(), ParamValue::I32(99));
        params.insert("swap".into(), ParamValue::String("sometimes".into()));
        params.insert("synth".into(), ParamValue::F32(1.0));
        params.insert("later".into(), ParamValue::Bool(true));
        params.remove("gain");
        let (state, messages) = migrated(state);
        assert_eq!(
            messages,
            [
                "1 saved parameter unknown to this version was ignored",
                "parameter lat1: 1000000000000000000000000000000 is out of its range; set to 3",
                "parameter seed: -5 is out of its range; set to 0",
                "parameter morph: NaN is not one of its values; set to its default",
                "parameter model: 99 is out of its range; set to 5",
                "parameter swap: \"sometimes\" is not one of its values; set to its default",
                "parameter synth: the number 1 is not one of its values; set to its default",
            ]
        );
        let value = |id: &str| format!("{:?}", state.params[id]);
        assert_eq!(
            ["lat1", "morph", "seed", "model", "swap", "synth", "gain"].map(value),
            [
                "F32(3.0)",
                "F32(0.0)",
                "I32(0)",
                "I32(5)",
                "I32(0)",
                "Bool(false)",
                "F32(0.25118864)"
            ]
        );
        assert!(!state.params.contains_key("later"));
    }

    #[test]
    fn future_and_unreadable_versions_load_what_validates() {
        let clips = clip_a(
            r#""notes": [{"pitch": 60, "start": 0, "end": 4}], "steps": 16, "source": "Input", "mu": [0.5], "model": "xxh3-0123456789abcdef", "layers": 3"#,
        );
        let mut future = with_fields(&clips, "null");
        future.fields.insert(
            VERSION_FIELD.into(),
            r#"{"number": 7, "report": [], "more": true}"#.into(),
        );
        let (state, messages) = migrated(future);
        assert_eq!(
            messages,
            ["saved by a newer Latent Live (state version 7): loaded what this version knows"]
        );
        assert_eq!(
            applied(&state).clips.get().a.unwrap().model,
            "xxh3-0123456789abcdef",
            "no migration ran on it"
        );

        let mut unreadable = with_fields(&clips, "null");
        unreadable
            .fields
            .insert(VERSION_FIELD.into(), r#""one""#.into());
        let (state, messages) = migrated(unreadable);
        assert_eq!(
            messages,
            ["the state's version is unreadable: loaded what this version knows"]
        );
        assert_eq!(
            state.fields[VERSION_FIELD],
            json(&Version {
                number: VERSION,
                report: messages
            })
        );
    }
}
