//! The attribute sliders do what their labels say: every vector a model ships moves its
//! own attribute monotonically from wherever z starts (issue "On stage", item 4).

use std::collections::BTreeMap;

use latent_live_core::model::assets::DefaultModel;
use latent_live_core::model::latent::LatentSpace;
use latent_live_core::model::{Config, ModelCard, ModelFile};
use latent_live_core::music::attributes::{self, CONTROLLED};
use latent_live_training::analysis::{fix_sliders, slider_check, SliderFix, MONOTONIC};

#[test]
fn every_attribute_slider_of_every_embedded_model_passes_its_check() {
    let mut checked = 0;
    for choice in DefaultModel::ALL {
        let file = choice.load().unwrap();
        let model = file.model(&candle_core::Device::Cpu).unwrap();
        let space = LatentSpace::of(&file).unwrap();
        for (name, vector) in CONTROLLED.iter().zip(&space.attribute_vectors) {
            let Some(vector) = vector else { continue };
            let median = slider_check(&model, name, vector).unwrap();
            assert!(
                median >= MONOTONIC,
                "{}: the {name} slider's median Spearman is {median:.3}",
                choice.name()
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} sliders have vectors");
}

/// What `analyze` ships: the vectors that pass, failing ones replaced by vectors from
/// decoded prior samples that pass, and none that fail.
#[test]
fn a_tiny_models_failing_vectors_are_replaced_or_left_out() {
    let config = Config::tiny(1, false);
    let file = ModelFile::random(config.clone(), ModelCard::default(), BTreeMap::new()).unwrap();
    let model = file.model(&candle_core::Device::Cpu).unwrap();
    // One vector per attribute of the model, along a dim each, and a zero one, which
    // moves nothing and so fails.
    let mut vectors: BTreeMap<String, Vec<f32>> = attributes::of(config.encoding)
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut v = vec![0.0; config.z_size];
            v[i % config.z_size] = 3.0;
            (name.to_string(), v)
        })
        .collect();
    vectors.insert("note_density".into(), vec![0.0; config.z_size]);
    let zero = vec![0.0; config.z_size];
    let checks = fix_sliders(&model, &mut vectors).unwrap();
    assert_eq!(checks.len(), attributes::of(config.encoding).len());
    for (name, median, fix) in &checks {
        assert_eq!(
            vectors.contains_key(name),
            *fix != SliderFix::Dropped,
            "{name}: {median:.3} {fix:?}"
        );
        if let Some(vector) = vectors.get(name) {
            let check = slider_check(&model, name, vector).unwrap();
            assert_eq!(check, *median);
            assert!(check >= MONOTONIC, "{name} ships at {check:.3}");
        }
    }
    assert_ne!(
        vectors.get("note_density"),
        Some(&zero),
        "a zero vector moves nothing"
    );
}
