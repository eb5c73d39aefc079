//! A project's state as nice-plug hands it to `filter_state`, through the migration and
//! the checks, then applied to fresh parameters as nice-plug applies it. Whatever the
//! bytes, what comes out loads strictly, holds only valid clips, readable scenes and a
//! model path the checks accept, and migrating it again changes nothing. Bytes that are not a whole
//! state are taken as the clips field of the defaults, where the lenient reader is.

#![no_main]

use latent_live::params::LatentLiveParams;
use latent_live::state::clips::Clips;
use latent_live::state::scenes::Scenes;
use latent_live::state::{check_model_path, migrate};
use libfuzzer_sys::fuzz_target;
use nice_plug::plugin::PluginState;
use nice_plug::prelude::Params;

const DEFAULTS: &str = include_str!("../../tests/fixtures/state/v1-defaults.state.json");

fuzz_target!(|data: &[u8]| {
    let mut state = serde_json::from_slice::<PluginState>(data).unwrap_or_else(|_| {
        let mut state: PluginState = serde_json::from_str(DEFAULTS).unwrap();
        state
            .fields
            .insert("clips".into(), String::from_utf8_lossy(data).into_owned());
        state
    });
    let messages = migrate(&mut state, &LatentLiveParams::default());
    assert!(
        messages.iter().all(|m| m.len() < 1_000),
        "messages stay short: {messages:?}"
    );

    let clips: Clips =
        serde_json::from_str(&state.fields["clips"]).expect("nice-plug reads the clips");
    assert_eq!(
        clips.clone().validated(),
        (clips, vec![]),
        "the clips are valid"
    );
    let model_file: Option<String> =
        serde_json::from_str(&state.fields["mfile"]).expect("nice-plug reads the model file");
    if let Some(path) = &model_file {
        assert_eq!(check_model_path(path), Ok(()));
    }
    let _: Scenes =
        serde_json::from_str(&state.fields["scenes"]).expect("nice-plug reads the scenes");

    // The report travels in `ver`; the rest of a migrated state is a fixed point.
    let without_report = |state: &PluginState| {
        let mut state = state.clone();
        state.fields.remove("ver");
        serde_json::to_string(&state).unwrap()
    };
    let migrated = without_report(&state);
    let mut again = state.clone();
    assert_eq!(
        migrate(&mut again, &LatentLiveParams::default()),
        Vec::<String>::new()
    );
    assert_eq!(without_report(&again), migrated);

    let params = LatentLiveParams::default();
    params.deserialize_fields(&state.fields);
    assert_eq!(params.state_version.report(), messages);
});
