//! The model core on tiny models: learning, determinism, gradients and model files.

use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use latent_live_core::model::vae::Training;
use latent_live_core::model::{
    ChordEncoding, Config, Dropout, ModelCard, ModelError, ModelFile, MusicVae, Sampling,
    ScheduledSampling,
};
use latent_live_core::music::chord::{Chord, Quality};
use latent_live_core::music::groove::{Groove, Stroke};
use latent_live_core::music::melody::{self, Note};
use latent_live_core::music::{Encoding, Event};
use latent_live_training::corpus::Split;
use latent_live_training::eval::accuracy;
use latent_live_training::train::{TrainConfig, Trainer};

/// Eight distinct 2-bar melodies with rests, held notes and leaps.
fn melodies(steps: usize) -> Vec<Vec<Event>> {
    (0..8u32)
        .map(|k| {
            let notes: Vec<Note> = (0..steps as u32 / 4)
                .filter(|i| (i + k) % 5 != 3)
                .map(|i| Note {
                    pitch: (55 + (i * 7 + k * 5) % 24) as u8,
                    start: i * 4,
                    end: i * 4 + 1 + (i + k) % 4,
                })
                .collect();
            melody::encode(&notes, steps)
        })
        .collect()
}

fn overfit(config: Config, steps: u64) -> (Trainer, Vec<Vec<Event>>) {
    let data = melodies(config.steps());
    let train = TrainConfig {
        batch_size: data.len(),
        learning_rate: 3e-3,
        decay_rate: 1.0,
        max_beta: 0.0,
        transpose: 0,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, train).unwrap();
    let refs: Vec<&[Event]> = data.iter().map(Vec::as_slice).collect();
    for _ in 0..steps {
        trainer.train_step(&refs, None).unwrap();
    }
    (trainer, data)
}

/// Greedy reconstruction accuracy of the eight melodies a tiny model was trained on.
fn overfit_accuracy(bars: usize, hierarchical: bool) -> f64 {
    let config = Config {
        z_size: 16,
        encoder: vec![32],
        decoder: vec![48, 48],
        ..Config::tiny(bars, hierarchical)
    };
    let (trainer, data) = overfit(config, 1000);
    let refs: Vec<&[Event]> = data.iter().map(Vec::as_slice).collect();
    let mu = trainer.model.encode(&refs).unwrap();
    accuracy(&trainer.model.decode(&mu, Sampling::Greedy).unwrap(), &refs)
}

#[test]
fn tiny_flat_model_overfits_eight_melodies() {
    assert_eq!(
        overfit_accuracy(2, false),
        1.0,
        "greedy reconstruction of the training melodies"
    );
}

/// Eight distinct 2-bar grooves: kick, snare and hats with fills of toms and cymbals.
fn grooves(steps: usize) -> Vec<Vec<Event>> {
    use latent_live_core::music::drums::{self, Hit};
    (0..8u32)
        .map(|k| {
            let mut hits = Vec::new();
            for step in 0..steps as u32 {
                if step % 2 == 0 || (k % 2 == 1 && step % 4 == 3) {
                    hits.push(Hit {
                        step,
                        class: if k == 5 && step % 8 == 6 { 3 } else { 2 },
                    });
                }
                if step % 8 == 0 || (step + k) % 11 == 0 {
                    hits.push(Hit { step, class: 0 });
                }
                if step % 8 == 4 {
                    hits.push(Hit { step, class: 1 });
                }
                if step >= 24 && (step + k) % 3 == 0 {
                    hits.push(Hit {
                        step,
                        class: (4 + (step + k) % 5) as u8,
                    });
                }
            }
            drums::encode(&hits, steps)
        })
        .collect()
}

#[test]
fn tiny_drum_model_overfits_eight_grooves() {
    let config = Config {
        z_size: 16,
        encoder: vec![32],
        decoder: vec![48, 48],
        ..Config {
            encoding: Encoding::Drums,
            ..Config::tiny(2, false)
        }
    };
    let data = grooves(config.steps());
    let train = TrainConfig {
        batch_size: data.len(),
        learning_rate: 3e-3,
        decay_rate: 1.0,
        max_beta: 0.0,
        transpose: 0,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, train).unwrap();
    let refs: Vec<&[Event]> = data.iter().map(Vec::as_slice).collect();
    assert_eq!(
        refs.iter().collect::<std::collections::HashSet<_>>().len(),
        8,
        "eight different grooves"
    );
    // 512 classes take longer than melodies' 90: this run reaches 1.0 near step 1,500.
    for _ in 0..2000 {
        trainer.train_step(&refs, None).unwrap();
    }
    let mu = trainer.model.encode(&refs).unwrap();
    assert_eq!(
        accuracy(&trainer.model.decode(&mu, Sampling::Greedy).unwrap(), &refs),
        1.0,
        "greedy reconstruction of the training grooves"
    );
}

/// The eight grooves as a drummer plays them: each hit pushed or laid back by up to a
/// third of a 16th, accents on the beat, ghost notes between.
fn played_grooves(steps: usize) -> Vec<Groove> {
    grooves(steps)
        .iter()
        .enumerate()
        .map(|(k, events)| {
            let strokes: Vec<Stroke> = latent_live_core::music::drums::decode(events)
                .iter()
                .map(|h| {
                    let wobble =
                        ((h.step * 7 + h.class as u32 * 3 + k as u32) % 9) as f64 / 12.0 - 0.33;
                    let velocity = if h.step % 4 == 0 {
                        110
                    } else {
                        45 + ((h.step + k as u32) % 5) as u8 * 12
                    };
                    Stroke {
                        class: h.class,
                        time: h.step as f64 + wobble,
                        velocity,
                    }
                })
                .collect();
            Groove::from_strokes(&strokes, steps)
        })
        .collect()
}

#[test]
fn tiny_groove_model_overfits_eight_grooves() {
    let config = Config {
        z_size: 16,
        encoder: vec![32],
        decoder: vec![48, 48],
        ..Config::groove_humanize_2bar()
    };
    let data = played_grooves(config.steps());
    let train = TrainConfig {
        batch_size: data.len(),
        learning_rate: 3e-3,
        decay_rate: 1.0,
        max_beta: 0.0,
        transpose: 0,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, train).unwrap();
    let refs: Vec<&Groove> = data.iter().collect();
    // Teacher forced, the hits are all right by step 1,000; the greedy decode, fed its own
    // velocities and offsets, needs about 3,000.
    for _ in 0..3000 {
        trainer.train_groove_step(&refs).unwrap();
    }
    // From the hits alone, the model plays each groove back with its feel.
    let quantized: Vec<Groove> = data.iter().map(Groove::humanize_input).collect();
    let humanized = trainer
        .model
        .transform(&quantized.iter().collect::<Vec<_>>(), Sampling::Greedy)
        .unwrap();
    let (mut velocity, mut timing, mut hits) = (0.0, 0.0, 0);
    for (played, want) in humanized.iter().zip(&data) {
        assert_eq!(played.events, want.events, "the hits are the input's");
        for (a, b) in played.strokes().iter().zip(want.strokes()) {
            velocity += (a.velocity as f64 - b.velocity as f64).abs();
            timing += (a.time - b.time).abs();
            hits += 1;
        }
    }
    let (velocity, timing) = (velocity / hits as f64, timing / hits as f64);
    // The spread the model learnt: velocities 45..=110, timing within a third of a step.
    assert!(velocity < 4.0, "velocity error {velocity:.2}");
    assert!(timing < 0.03, "timing error {timing:.3} steps");
}

#[test]
fn tiny_hierarchical_model_overfits_eight_melodies() {
    assert_eq!(
        overfit_accuracy(4, true),
        1.0,
        "greedy reconstruction of the training melodies"
    );
}

/// A conductor over 16 bars, as `folk-16bar` and Magenta's `hierdec-mel_16bar`.
#[test]
fn tiny_16_bar_hierarchical_model_overfits_eight_melodies() {
    let accuracy = overfit_accuracy(16, true);
    assert!(
        accuracy >= 0.99,
        "greedy reconstruction of the training melodies: {accuracy}"
    );
}

fn random_model(config: Config, seed: u64) -> ModelFile {
    let trainer = Trainer::new(
        config,
        TrainConfig {
            seed,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    trainer
        .model_file(ModelCard::default(), BTreeMap::new())
        .unwrap()
}

fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_vec2::<f32>().unwrap()
}

/// A transplant keeps every weight two architectures share. Into the same architecture it
/// is the source; into a wider one (z doubled, chords beside the events, as from folk-4bar
/// to pop-4bar-chords or the 16-bar model) the shared blocks are the source's and the rest
/// is the new model's own initialisation.
#[test]
fn a_transplant_keeps_the_weights_the_architectures_share() {
    let source_config = Config::tiny(4, true);
    let source = random_model(source_config.clone(), 3);
    let train = TrainConfig {
        seed: 9,
        ..TrainConfig::default()
    };
    let (same, report) =
        Trainer::transplant(&source, source_config.clone(), train.clone()).unwrap();
    assert!(
        report.part.is_empty() && report.fresh.is_empty(),
        "{report:?}"
    );
    assert_eq!(same.step, 0, "the schedules start again");
    let same = same
        .model_file(ModelCard::default(), BTreeMap::new())
        .unwrap();
    for (name, t) in &source.tensors {
        assert_eq!(rows2(t), rows2(&same.tensors[name]), "{name}");
    }

    let wide_config = Config {
        z_size: 16,
        chords: Some(ChordEncoding::Pitch),
        ..source_config
    };
    // The new model's own initialisation: the same config and seed, untouched.
    let fresh = random_model(wide_config.clone(), 9);
    let (wide, report) = Trainer::transplant(&source, wide_config, train).unwrap();
    assert!(report.fresh.is_empty(), "{report:?}");
    let wide = wide
        .model_file(ModelCard::default(), BTreeMap::new())
        .unwrap();
    let old = |name: &str| rows(&source.tensors[name]);
    let new = |name: &str| rows(&wide.tensors[name]);
    let init = |name: &str| rows(&fresh.tensors[name]);
    // Wider z: the encoder's mu gains columns, the conductor's initial state rows.
    let (o, n, i) = (
        old("encoder.mu.kernel"),
        new("encoder.mu.kernel"),
        init("encoder.mu.kernel"),
    );
    for r in 0..n.len() {
        assert_eq!(n[r][..8], o[r][..], "mu, shared z columns");
        assert_eq!(n[r][8..], i[r][8..], "mu, new z columns");
    }
    let name = "decoder.hierarchical_level_0.initial_state.kernel";
    let (o, n, i) = (old(name), new(name), init(name));
    assert_eq!(n[..8], o[..], "conductor state from the shared z");
    assert_eq!(n[8..], i[8..], "conductor state from the new z");
    // Chords appended to the LSTMs' inputs: rows between the shared inputs and the
    // recurrent ones.
    for name in [
        "encoder.cell_0.bidirectional_rnn.fw.multi_rnn_cell.cell_0.lstm_cell.kernel",
        "core_decoder.decoder.multi_rnn_cell.cell_0.lstm_cell.kernel",
    ] {
        let (o, n, i) = (old(name), new(name), init(name));
        let hidden = n[0].len() / 4;
        let (old_inputs, inputs) = (o.len() - hidden, n.len() - hidden);
        assert_eq!(inputs - old_inputs, 37, "{name}: the chord inputs");
        assert_eq!(n[..old_inputs], o[..old_inputs], "{name}: shared inputs");
        assert_eq!(
            n[old_inputs..inputs],
            i[old_inputs..inputs],
            "{name}: chord rows"
        );
        assert_eq!(n[inputs..], o[old_inputs..], "{name}: recurrent rows");
        assert!(report.part.iter().any(|p| p == name), "{name} in part");
    }
    for (name, t) in &source.tensors {
        if t.dims() == wide.tensors[name].dims() {
            assert_eq!(
                rows2(t),
                rows2(&wide.tensors[name]),
                "{name}: same shape, copied"
            );
        }
    }
}

/// Any tensor's values, row by row (a vector as one row).
fn rows2(t: &Tensor) -> Vec<Vec<f32>> {
    match t.rank() {
        1 => vec![t.to_vec1::<f32>().unwrap()],
        _ => rows(t),
    }
}

#[test]
fn sampling_is_deterministic_by_seed() {
    for hierarchical in [false, true] {
        let model = random_model(Config::tiny(2, hierarchical), 3)
            .model(&Device::Cpu)
            .unwrap();
        let z = Tensor::randn(0f32, 1.0, (4, model.config.z_size), &Device::Cpu).unwrap();
        let a = model.decode(&z, Sampling::new(1.0, 42)).unwrap();
        let b = model.decode(&z, Sampling::new(1.0, 42)).unwrap();
        let c = model.decode(&z, Sampling::new(1.0, 43)).unwrap();
        assert_eq!(a, b);
        assert_ne!(
            a, c,
            "another seed should give other notes on an untrained model"
        );
        // Item 0 does not depend on what is decoded beside it.
        let alone = model
            .decode(&z.narrow(0, 0, 1).unwrap(), Sampling::new(1.0, 42))
            .unwrap();
        assert_eq!(alone[0], a[0]);
        assert_eq!(
            model.decode(&z, Sampling::Greedy).unwrap(),
            model.decode(&z, Sampling::new(0.0, 9)).unwrap()
        );
    }
}

#[test]
fn model_file_round_trips_in_f32_and_f16() {
    let file = random_model(Config::tiny(2, true), 5);
    let model = file.model(&Device::Cpu).unwrap();
    let z = Tensor::randn(0f32, 1.0, (3, model.config.z_size), &Device::Cpu).unwrap();
    let expected = model.decode(&z, Sampling::Greedy).unwrap();
    let mut card = ModelCard {
        name: "tiny".into(),
        ..ModelCard::default()
    };
    card.metrics.insert("teacher_forced".into(), 0.5);
    let file = ModelFile {
        card: card.clone(),
        ..file
    };
    for dtype in [DType::F32, DType::F16] {
        let back = ModelFile::from_bytes(&file.to_bytes(dtype).unwrap()).unwrap();
        assert_eq!(back.config, file.config);
        assert_eq!(back.card, card);
        let logits = |m: &MusicVae| {
            let batch = m.batch(&[&expected[0]]).unwrap();
            m.logits(&z.narrow(0, 0, 1).unwrap(), &batch)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let reloaded = back.model(&Device::Cpu).unwrap();
        let max_diff = logits(&model)
            .iter()
            .zip(logits(&reloaded))
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let tolerance = if dtype == DType::F32 { 0.0 } else { 1e-2 };
        assert!(
            max_diff <= tolerance,
            "{dtype:?}: logits differ by {max_diff}"
        );
    }
}

#[test]
fn bad_model_files_give_errors_not_panics() {
    let bytes = random_model(Config::tiny(2, false), 1)
        .to_bytes(DType::F32)
        .unwrap();
    // Truncated anywhere.
    for cut in [0, 1, 7, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            ModelFile::from_bytes(&bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    // Not a model at all.
    let midi = latent_live_core::music::midi::export(
        &[Note {
            pitch: 60,
            start: 0,
            end: 4,
        }],
        120.0,
    );
    assert!(ModelFile::from_bytes(&midi).is_err());
    // Corrupt header.
    let mut corrupt = bytes.clone();
    for b in corrupt[8..40].iter_mut() {
        *b = b'!';
    }
    assert!(ModelFile::from_bytes(&corrupt).is_err());
    // Weights that don't match the config.
    let mut mismatched = ModelFile::from_bytes(&bytes).unwrap();
    mismatched.config.decoder = vec![32, 32];
    let err = mismatched
        .model(&Device::Cpu)
        .expect_err("mismatched weights must not load");
    assert!(matches!(err, ModelError::Weights(_)), "{err}");
    // Safetensors without our metadata, like a raw checkpoint.
    let raw = safetensors::serialize(HashMap::<String, Tensor>::new(), None).unwrap();
    assert!(matches!(
        ModelFile::from_bytes(&raw),
        Err(ModelError::MissingMetadata("config"))
    ));
    // A missing file names its path.
    let err = ModelFile::read(std::path::Path::new("/nonexistent/model.safetensors"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("/nonexistent/model.safetensors"));
}

#[test]
fn checkpoints_resume_exactly() {
    let dir = std::env::temp_dir().join(format!("latent-live-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("checkpoint.safetensors");
    let config = Config::tiny(2, false);
    let data = melodies(config.steps());
    let refs: Vec<&[Event]> = data.iter().map(Vec::as_slice).collect();
    let train = TrainConfig {
        batch_size: 8,
        ..TrainConfig::default()
    };
    let mut straight = Trainer::new(config.clone(), train.clone()).unwrap();
    let mut interrupted = Trainer::new(config, train).unwrap();
    for _ in 0..3 {
        straight.train_step(&refs, None).unwrap();
        interrupted.train_step(&refs, None).unwrap();
    }
    interrupted.save_checkpoint(&path).unwrap();
    let mut resumed = Trainer::resume(&path).unwrap();
    assert_eq!(resumed.step, 3);
    for _ in 0..2 {
        let a = straight.train_step(&refs, None).unwrap();
        let b = resumed.train_step(&refs, None).unwrap();
        assert_eq!(a.loss, b.loss);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The ELBO's gradient against central differences, in f64 on a tiny model.
#[test]
fn loss_passes_a_finite_difference_gradient_check() {
    for (hierarchical, keep) in [
        (false, None),
        (true, None),
        (false, Some(0.6)),
        (true, Some(0.6)),
    ] {
        let config = Config {
            z_size: 3,
            encoder: vec![4],
            decoder: vec![5, 4],
            ..Config::tiny(2, hierarchical)
        };
        let varmap = VarMap::new();
        let model = MusicVae::new(
            config.clone(),
            VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu),
        )
        .unwrap();
        let data = melodies(config.steps());
        let refs: Vec<&[Event]> = data[..2].iter().map(Vec::as_slice).collect();
        let batch = model.batch(&refs).unwrap();
        let eps = Tensor::randn(0f64, 1.0, (2, 3), &Device::Cpu).unwrap();
        // free_bits below the KL so that the KL term's gradient is exercised.
        // Dropout draws the same masks from the same seed, so the loss stays a function.
        let training = || Training {
            scheduled: None,
            dropout: keep.map(|k| Dropout::new(k, 7)),
            class_weights: None,
        };
        let loss = |m: &MusicVae| m.loss(&batch, &eps, 0.7, 0.01, &training()).unwrap().total;
        let grads = loss(&model).backward().unwrap();
        let vars = varmap.data().lock().unwrap().clone();
        let mut names: Vec<_> = vars.keys().cloned().collect();
        names.sort();
        for name in names {
            let var = &vars[&name];
            let analytic = grads
                .get(var)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let original = var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            for idx in [0, original.len() / 2, original.len() - 1] {
                let at = |delta: f64| {
                    let mut v = original.clone();
                    v[idx] += delta;
                    var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                        .unwrap();
                    loss(&model).to_scalar::<f64>().unwrap()
                };
                let h = 1e-5;
                let numeric = (at(h) - at(-h)) / (2.0 * h);
                at(0.0);
                // Central differences lose relative precision on gradients near zero.
                let err = (numeric - analytic[idx]).abs()
                    / (numeric.abs() + analytic[idx].abs()).max(1e-4);
                assert!(
                    err < 1e-4,
                    "{name}[{idx}] (hierarchical={hierarchical}, keep {keep:?}): numeric \
                     {numeric} vs analytic {}",
                    analytic[idx]
                );
            }
        }
    }
}

/// The reconstruction loss of a random tiny model on the eight melodies, z = 0.
fn reconstruction(training: Training) -> f32 {
    let model = random_model(Config::tiny(2, false), 2)
        .model(&Device::Cpu)
        .unwrap();
    let data = melodies(model.config.steps());
    let refs: Vec<&[Event]> = data.iter().map(Vec::as_slice).collect();
    let batch = model.batch(&refs).unwrap();
    let eps = Tensor::zeros((refs.len(), model.config.z_size), DType::F32, &Device::Cpu).unwrap();
    model
        .loss(&batch, &eps, 0.2, 0.0, &training)
        .unwrap()
        .reconstruction
}

/// Rare drums weigh more: a class's weight is (most hits / its hits)^gamma, a step
/// weighs its rarest drum's, and a loss weighed 1 everywhere is the plain one.
#[test]
fn rare_drums_weigh_more_in_the_loss() {
    use latent_live_core::music::drums::NUM_DRUM_CLASSES;
    use latent_live_training::corpus::drum_rarity;
    // 16 steps: kick (class 0) on 8, snare (1) on 4, high tom (5) on 1, crash (7) never.
    let events: Vec<Event> = (0..16u16)
        .map(|t| u16::from(t % 2 == 0) | u16::from(t % 4 == 1) << 1 | u16::from(t == 3) << 5)
        .collect();
    let split = Split {
        steps: 16,
        events,
        tune: vec![0],
        feel: Vec::new(),
        chords: Vec::new(),
    };
    let weights = drum_rarity(&split, 0.5);
    assert_eq!(weights.len(), NUM_DRUM_CLASSES);
    assert_eq!((weights[0], weights[1]), (1.0, 2f64.sqrt()));
    assert_eq!((weights[5], weights[7]), (8f64.sqrt(), 8f64.sqrt()));
    assert!(drum_rarity(&split, 0.0).iter().all(|&w| w == 1.0));
    // Through the model: weights of 1 change nothing, weights of 2 double the loss.
    let plain = reconstruction(Training {
        scheduled: None,
        dropout: None,
        class_weights: None,
    });
    let classes = Config::tiny(2, false).num_classes();
    let weighed = |w: f32| {
        reconstruction(Training {
            scheduled: None,
            dropout: None,
            class_weights: Some(Tensor::full(w, classes, &Device::Cpu).unwrap()),
        })
    };
    assert_eq!(weighed(1.0), plain);
    assert!((weighed(2.0) - 2.0 * plain).abs() < 1e-3 * plain);
    // A trainer with the weights trains a drum model.
    let config = Config {
        encoding: Encoding::Drums,
        ..Config::tiny(1, false)
    };
    let mut trainer = Trainer::new(
        config,
        TrainConfig {
            batch_size: 4,
            drum_class_weights: weights,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    let batch: Vec<&[Event]> = vec![&split.events[..16]; 4];
    assert!(trainer.train_step(&batch, None).unwrap().loss.is_finite());
}

#[test]
fn scheduled_sampling_feeds_the_models_own_samples() {
    let loss = |scheduled| {
        reconstruction(Training {
            scheduled,
            dropout: None,
            class_weights: None,
        })
    };
    let never = ScheduledSampling {
        probability: 0.0,
        seed: 1,
    };
    let always = ScheduledSampling {
        probability: 1.0,
        seed: 1,
    };
    assert_eq!(loss(None), loss(Some(never)));
    assert_ne!(
        loss(None),
        loss(Some(always)),
        "an untrained model's samples differ from the targets"
    );
    assert_eq!(
        loss(Some(always)),
        loss(Some(always)),
        "deterministic by seed"
    );
}

#[test]
fn dropout_keeps_each_input_with_its_probability() {
    let loss = |dropout| {
        reconstruction(Training {
            scheduled: None,
            dropout,
            class_weights: None,
        })
    };
    let plain = loss(None);
    assert_eq!(
        plain,
        loss(Some(Dropout::new(1.0, 3))),
        "keeping everything is no dropout"
    );
    assert_ne!(plain, loss(Some(Dropout::new(0.5, 3))));
    assert_eq!(
        loss(Some(Dropout::new(0.5, 3))),
        loss(Some(Dropout::new(0.5, 3))),
        "deterministic by seed"
    );
    assert_ne!(
        loss(Some(Dropout::new(0.5, 3))),
        loss(Some(Dropout::new(0.5, 4)))
    );
    // Half the values of a tensor survive, scaled up by two.
    let ones = Tensor::ones(10_000, DType::F32, &Device::Cpu).unwrap();
    let kept = Dropout::new(0.5, 1)
        .apply(&ones)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(kept.iter().all(|&v| v == 0.0 || v == 2.0));
    let mean = kept.iter().sum::<f32>() / kept.len() as f32;
    assert!((mean - 1.0).abs() < 0.05, "{mean}");
}

#[test]
fn analysis_ranks_neurons_and_builds_attribute_vectors() {
    use latent_live_core::music::attributes;
    use latent_live_training::analysis::{analyze, sweep};
    use latent_live_training::corpus::Split;

    let config = Config::tiny(2, false);
    let varmap = VarMap::new();
    let model = MusicVae::new(
        config.clone(),
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    // Thirty-two melodies: the eight, transposed four ways.
    let slices: Vec<Vec<Event>> = melodies(config.steps())
        .iter()
        .flat_map(|m| [-5, 0, 3, 7].map(|t| melody::transpose(m, t).unwrap()))
        .collect();
    let split = Split {
        steps: config.steps(),
        events: slices.concat(),
        tune: (0..slices.len() as u32).collect(),
        feel: Vec::new(),
        chords: Vec::new(),
    };
    let a = analyze(&model, &split, None, 4).unwrap();
    assert_eq!(a.slices, 32);
    let mut ranking = a.ranking.clone();
    ranking.sort();
    assert_eq!(
        ranking,
        (0..config.z_size).collect::<Vec<_>>(),
        "a permutation of the dims"
    );
    assert!(
        a.ranking
            .windows(2)
            .all(|w| a.mu_variance[w[0]] >= a.mu_variance[w[1]]),
        "most variable first"
    );
    assert_eq!((a.labels.len(), a.relations.len()), (4, 4));
    assert!(a.labels[0].starts_with("N1 · "));
    for name in attributes::MELODY {
        assert_eq!(a.attribute_vectors[name].len(), config.z_size, "{name}");
    }
    // Transposing moves the mean pitch and nothing else: its vector is not zero.
    assert!(a.attribute_vectors["mean_pitch"]
        .iter()
        .any(|v| v.abs() > 1e-6));
    let s = sweep(
        &model,
        &a.attribute_vectors["note_density"],
        &[-2.0, 0.0, 2.0],
        4,
        1,
    )
    .unwrap();
    assert_eq!(
        (s.means.len(), s.spearman.len()),
        (3, attributes::MELODY.len())
    );
    assert!(s.spearman.iter().all(|r| (-1.0..=1.0).contains(r)));
}

#[test]
fn ar_regularization_rewards_a_dimension_that_orders_the_attribute() {
    use latent_live_training::train::attribute_regularization;

    // Four melodies of increasing note density.
    let batch: Vec<Vec<Event>> = (1..=4u32)
        .map(|k| {
            melody::encode(
                &(0..4 * k)
                    .map(|i| Note {
                        pitch: 60,
                        start: i * 8 / k,
                        end: i * 8 / k + 1,
                    })
                    .collect::<Vec<_>>(),
                32,
            )
        })
        .collect();
    let refs: Vec<&[Event]> = batch.iter().map(Vec::as_slice).collect();
    let names = vec!["note_density".to_string()];
    let loss = |column: [f32; 4]| {
        let z = Tensor::from_vec(
            column.iter().flat_map(|&v| [v, 0.0]).collect::<Vec<f32>>(),
            (4, 2),
            &Device::Cpu,
        )
        .unwrap();
        attribute_regularization(&z, Encoding::Melody, &refs, &names)
            .unwrap()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let ordered = loss([-1.5, -0.5, 0.5, 1.5]);
    let reversed = loss([1.5, 0.5, -0.5, -1.5]);
    assert!(ordered < 0.01, "{ordered}");
    assert!(reversed > 1.4, "{reversed}");
    assert!(attribute_regularization(
        &Tensor::zeros((4, 2), DType::F32, &Device::Cpu).unwrap(),
        Encoding::Melody,
        &refs,
        &[]
    )
    .unwrap()
    .is_none());
}

/// Four rhythms, each played over four progressions as an arpeggio: note `i` of a
/// rhythm is tone `i % 3` of the chord sounding (root, third, fifth). The rhythm and the
/// order of the tones are the melody's own; the pitches come from the chords.
fn arpeggios(steps: usize) -> Vec<(Vec<Event>, Vec<Option<Chord>>)> {
    let progressions: [[(u8, Quality); 2]; 4] = [
        [(0, Quality::Major), (7, Quality::Major)],
        [(9, Quality::Minor), (5, Quality::Major)],
        [(2, Quality::Minor), (7, Quality::Dominant7)],
        [(4, Quality::Minor), (0, Quality::Major)],
    ];
    let mut out = Vec::new();
    for k in 0..4u32 {
        for progression in &progressions {
            let chords: Vec<Option<Chord>> = (0..steps)
                .map(|t| {
                    let (root, quality) = progression[t * 2 / steps];
                    Some(Chord::new(root, quality))
                })
                .collect();
            let notes: Vec<Note> = (0..steps as u32 / 2)
                .filter(|i| (i * 3 + k) % 7 < 4)
                .enumerate()
                .map(|(n, i)| {
                    let chord = chords[i as usize * 2].unwrap();
                    let tone = chord.quality.intervals()[(n + k as usize) % 3];
                    Note {
                        pitch: 60 + chord.root + tone,
                        start: i * 2,
                        end: i * 2 + 1,
                    }
                })
                .collect();
            out.push((melody::encode(&notes, steps), chords));
        }
    }
    out
}

/// What chord conditioning is for: the same z decoded over another progression keeps the
/// melody's rhythm and moves its notes onto the new chords.
#[test]
fn a_tiny_chord_model_plays_the_same_z_over_other_chords() {
    let config = Config {
        z_size: 8,
        encoder: vec![48],
        decoder: vec![64, 64],
        chords: Some(ChordEncoding::Pitch),
        ..Config::tiny(1, false)
    };
    let data = arpeggios(config.steps());
    // The KL's pressure is what keeps the chords out of z (the decoder is given them):
    // 3 free bits hold the four rhythms (2 bits), not the sixteen pairings with chords.
    let train = TrainConfig {
        batch_size: data.len(),
        learning_rate: 3e-3,
        decay_rate: 1.0,
        max_beta: 0.5,
        beta_rate: 0.99,
        free_bits: 3.0,
        transpose: 0,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, train).unwrap();
    let events: Vec<&[Event]> = data.iter().map(|(e, _)| e.as_slice()).collect();
    let chords: Vec<&[Option<Chord>]> = data.iter().map(|(_, c)| c.as_slice()).collect();
    for _ in 0..1000 {
        trainer.train_step(&events, Some(&chords)).unwrap();
    }
    let model = &trainer.model;
    let mu = model
        .mu(&model.batch_over(&events, Some(&chords)).unwrap())
        .unwrap();
    let decoded = model
        .decode_over(&mu, Some(&chords), Sampling::Greedy)
        .unwrap();
    assert!(
        accuracy(&decoded, &events) > 0.98,
        "reconstruction over its own chords: {}",
        accuracy(&decoded, &events)
    );
    // Each melody's z over the next progression: melody 4k + p over progression p + 1.
    let moved: Vec<&[Option<Chord>]> = (0..data.len())
        .map(|i| chords[i - i % 4 + (i + 1) % 4])
        .collect();
    let decoded = model
        .decode_over(&mu, Some(&moved), Sampling::Greedy)
        .unwrap();
    let (mut onsets, mut kept, mut tones) = (0, 0, 0);
    for ((played, original), progression) in decoded.iter().zip(&events).zip(&moved) {
        for (t, (&a, &b)) in played.iter().zip(original.iter()).enumerate() {
            if melody::class_pitch(b).is_some() {
                onsets += 1;
                kept += melody::class_pitch(a).is_some() as usize;
            }
            if let Some(pitch) = melody::class_pitch(a) {
                tones += progression[t].unwrap().has_tone(pitch) as usize;
            }
        }
    }
    let played: usize = decoded
        .iter()
        .flatten()
        .filter(|&&e| melody::class_pitch(e).is_some())
        .count();
    assert!(
        kept as f64 / onsets as f64 > 0.9,
        "onsets kept over other chords: {kept} of {onsets}"
    );
    assert!(
        tones as f64 / played as f64 > 0.9,
        "notes on the new chords' tones: {tones} of {played}"
    );
}

/// With keys apart, the encoder reads each slice in another key than the decoder writes
/// it: the same melody and chords, moved together, never more than a tritone apart.
#[test]
fn keys_apart_batches_read_each_slice_moved_with_its_chords() {
    let config = Config {
        chords: Some(ChordEncoding::Pitch),
        ..Config::tiny(1, false)
    };
    let steps = config.steps();
    let data = arpeggios(steps);
    let split = Split {
        steps,
        events: data.iter().flat_map(|(e, _)| e.clone()).collect(),
        tune: (0..data.len() as u32).collect(),
        feel: Vec::new(),
        chords: data.iter().flat_map(|(_, c)| c.clone()).collect(),
    };
    let train = TrainConfig {
        batch_size: 64,
        keys_apart: 1.0,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, train).unwrap();
    let batch = trainer.sample_batch(&split);
    let written = batch.chords.as_ref().unwrap();
    let read = batch.read.as_ref().expect("keys apart, over chords");
    assert_eq!(read.events.len(), batch.events.len());
    let first_pitch = |events: &[Event]| events.iter().find_map(|&e| melody::class_pitch(e));
    let mut apart = 0;
    for (i, (written_events, written_chords)) in batch.events.iter().zip(written).enumerate() {
        let shift = first_pitch(&read.events[i]).unwrap() as i32
            - first_pitch(written_events).unwrap() as i32;
        assert_eq!(
            melody::transpose(written_events, shift).as_ref(),
            Some(&read.events[i])
        );
        let moved: Vec<Option<Chord>> = written_chords
            .iter()
            .map(|c| c.map(|c| c.transposed(shift)))
            .collect();
        assert_eq!(moved, read.chords[i], "slice {i}'s chords moved with it");
        // Within a tritone: the chords tell the decoder the key's octave too.
        assert!((-5..=6).contains(&shift), "slice {i} read {shift} apart");
        apart += usize::from(shift != 0);
    }
    assert!(apart > 40, "{apart} of 64 slices read in another key");
    let stats = trainer.train_on(&batch).unwrap();
    assert!(stats.loss.is_finite());
    // At a share of a half, some slices are read as they are written and some apart.
    trainer.config.keys_apart = 0.5;
    let batch = trainer.sample_batch(&split);
    let read = batch.read.as_ref().unwrap();
    let same = (0..batch.events.len())
        .filter(|&i| read.events[i] == batch.events[i])
        .count();
    assert!((12..=52).contains(&same), "{same} of 64 read as written");
    // Without chords there is nothing to take the key from: the batch is read as written.
    let plain = Trainer::new(
        Config::tiny(1, false),
        TrainConfig {
            keys_apart: 1.0,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    assert!(plain.sample_batch(&split).read.is_none());
}
