//! What the plugin does with a model file it loads: build the model, read its latent
//! space, decode the origin and a point the sliders and attributes move to, and encode
//! what came out. Once a file loads, none of it may fail.

use candle_core::Device;
use latent_live_core::model::latent::{z_tensor, LatentSpace};
use latent_live_core::model::{ModelFile, Sampling};
use latent_live_core::music::groove::Groove;
use latent_live_core::music::Encoding;

pub fn play(bytes: &[u8]) {
    let Ok(file) = ModelFile::from_bytes(bytes) else {
        return;
    };
    assert_eq!(file.config.validate(), Ok(()));
    assert!(file.hash.starts_with("xxh3-"), "{}", file.hash);
    if file.config.encoding == Encoding::Groove {
        return play_groove(&file);
    }
    let Ok(model) = file.model(&Device::Cpu) else {
        return;
    };
    let Ok(space) = LatentSpace::of(&file) else {
        return;
    };
    let (z_size, steps, classes) = (
        file.config.z_size,
        file.config.steps(),
        file.config.num_classes(),
    );
    let mut moved = vec![0f32; z_size];
    for (&dim, &scale) in space.slider_dims.iter().zip(&space.slider_scales) {
        moved[dim] += 3.0 * scale;
    }
    for vector in space.attribute_vectors.iter().flatten() {
        moved
            .iter_mut()
            .zip(vector)
            .for_each(|(x, v)| *x += 2.0 * v);
    }
    let z = z_tensor(&model, &[vec![0.0; z_size], moved]).expect("z of the model's size");
    let greedy = model.decode(&z, Sampling::Greedy).expect("greedy decode");
    // A model with melody controls follows a melody: the origin's own decode.
    let like = [greedy[0].as_slice()];
    let (sampled, trace) = model
        .decode_traced(
            &z.narrow(0, 1, 1).unwrap(),
            None,
            Some(&like),
            Sampling::new(1.0, 7),
        )
        .expect("sampled decode");
    for events in greedy.iter().chain(&sampled) {
        assert_eq!(events.len(), steps);
        assert!(events.iter().all(|&e| (e as usize) < classes), "{events:?}");
    }
    assert_eq!(trace.len() % steps, 0);
    if model.has_encoder() {
        let mu = model.encode(&[&greedy[0], &sampled[0]]).expect("encode");
        assert_eq!(mu.dims(), [2, z_size]);
    }
}

/// A groove model humanizes a pattern into a playable groove of its length.
fn play_groove(file: &ModelFile) {
    let Ok(model) = file.model(&Device::Cpu) else {
        return;
    };
    let steps = file.config.steps();
    let pattern = Groove::quantized(
        &(0..steps)
            .map(|s| if s % 2 == 0 { 0b101 } else { 0 })
            .collect::<Vec<u16>>(),
    );
    for sampling in [Sampling::Greedy, Sampling::new(1.0, 7)] {
        let out = model
            .transform(&[&pattern], sampling)
            .expect("a groove decode");
        assert_eq!(out[0].len(), steps);
        for stroke in out[0].strokes() {
            assert!((1..=127).contains(&stroke.velocity), "{stroke:?}");
        }
        assert!(
            out[0].feel.iter().flatten().all(|f| f.shift.abs() <= 0.5),
            "{:?}",
            out[0].feel
        );
    }
}
