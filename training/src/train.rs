//! The trainer: AdamW with Magenta's learning-rate decay, beta annealing and free bits,
//! global-norm gradient clipping, and checkpoints that resume exactly.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, IndexOp, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::corpus::{self, DrumVariation, Split};
use latent_live_core::model::latent::{normal, standard_normal};
use latent_live_core::model::vae::{Loss, Training};
use latent_live_core::model::{
    Batch, Config, Dropout, ModelCard, ModelError, ModelFile, MusicVae, ScheduledSampling,
};
use latent_live_core::music::chord::Chord;
use latent_live_core::music::groove::Groove;
use latent_live_core::music::{drums, melody, Encoding, Event};

/// Hyperparameters, with Magenta's `cat-mel_2bar` values unless noted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub batch_size: usize,
    pub learning_rate: f64,
    /// `lr = (learning_rate - min_learning_rate) * decay_rate^step + min_learning_rate`.
    pub decay_rate: f64,
    pub min_learning_rate: f64,
    pub weight_decay: f64,
    /// `beta = (1 - beta_rate^step) * max_beta`.
    pub max_beta: f64,
    pub beta_rate: f64,
    pub free_bits: f64,
    pub grad_clip: f64,
    /// Random transposition of training slices by up to this many semitones.
    pub transpose: i32,
    /// Chord models: the share of training slices that the encoder reads in one random
    /// key (within `transpose`) and the decoder writes in another, drawn apart. The
    /// decoder learns to take the key from the chords where z says another, so prior
    /// samples follow whatever chords they are decoded over; at 1, z gains nothing by
    /// carrying the key at all. 0 reads every slice as it is written.
    #[serde(default)]
    pub keys_apart: f64,
    /// Scheduled sampling: the probability of feeding the model's own sample is
    /// `1 - k / (k + exp(step / k))` with this `k` (Magenta's inverse sigmoid, 1000 for
    /// its 2-bar models); 0 trains with teacher forcing only.
    #[serde(default)]
    pub scheduled_sampling_rate: f64,
    /// Each LSTM layer's inputs are kept with this probability while training (Magenta's
    /// `dropout_keep_prob`); 1 trains without dropout.
    #[serde(default = "default_dropout_keep")]
    pub dropout_keep: f64,
    /// Drum batches only: how slices are varied.
    #[serde(flatten)]
    pub drum_variation: DrumVariation,
    pub seed: u64,
    /// Attributes (of [`latent_live_core::music::attributes::of`] the model's encoding) bound to latent dimensions 0, 1, ... by
    /// AR-VAE's regulariser (Pati and Lerch): over each batch, dimension k is pushed to
    /// order the examples as attribute k does.
    #[serde(default)]
    pub regularize: Vec<String>,
    /// The regulariser's weight (AR-VAE's gamma) beside the reconstruction loss.
    #[serde(default = "default_regularize_weight")]
    pub regularize_weight: f64,
    /// Drum models: each drum class's weight in the loss ([`corpus::drum_rarity`]); a
    /// step counts the weight of the rarest drum it hits (a rest counts 1). Empty weighs
    /// every step 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drum_class_weights: Vec<f64>,
}

fn default_regularize_weight() -> f64 {
    10.0
}

fn default_dropout_keep() -> f64 {
    1.0
}

/// AR-VAE's sharpness of `tanh(delta * (z_i - z_j))`.
const AR_DELTA: f64 = 10.0;

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            learning_rate: 1e-3,
            decay_rate: 0.9999,
            min_learning_rate: 1e-5,
            weight_decay: 0.0,
            max_beta: 0.2,
            // Magenta anneals over ~100k steps of batch 512; we get a few tens of thousands.
            beta_rate: 0.9999,
            free_bits: 0.0,
            grad_clip: 1.0,
            transpose: 5,
            keys_apart: 0.0,
            scheduled_sampling_rate: 0.0,
            dropout_keep: default_dropout_keep(),
            drum_variation: DrumVariation::default(),
            seed: 1,
            regularize: Vec::new(),
            regularize_weight: default_regularize_weight(),
            drum_class_weights: Vec::new(),
        }
    }
}

impl TrainConfig {
    pub fn learning_rate_at(&self, step: u64) -> f64 {
        (self.learning_rate - self.min_learning_rate) * self.decay_rate.powf(step as f64)
            + self.min_learning_rate
    }

    pub fn beta_at(&self, step: u64) -> f64 {
        (1.0 - self.beta_rate.powf(step as f64)) * self.max_beta
    }

    pub fn sampling_probability_at(&self, step: u64) -> f64 {
        let k = self.scheduled_sampling_rate;
        if k <= 0.0 {
            return 0.0;
        }
        1.0 - k / (k + (step as f64 / k).min(700.0).exp())
    }
}

/// What one optimisation step reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepStats {
    pub loss: f32,
    pub reconstruction: f32,
    pub kl: f32,
    pub accuracy: f32,
    pub beta: f64,
    pub learning_rate: f64,
    pub sampling_probability: f64,
    /// The AR-VAE term, summed over the regularised attributes (0 when there are none).
    pub regularization: f32,
}

/// Trains a [`MusicVae`] of any encoding: melodies and drums on events, grooves on rows.
pub struct Trainer {
    pub model: MusicVae,
    pub config: TrainConfig,
    pub step: u64,
    varmap: VarMap,
    adam: AdamW,
}

/// What the schedules give one step.
struct StepPlan {
    eps: Tensor,
    beta: f64,
    learning_rate: f64,
    training: Training,
    sampling_probability: f64,
}

impl Trainer {
    pub fn new(model_config: Config, config: TrainConfig) -> candle_core::Result<Self> {
        let varmap = VarMap::new();
        let model = MusicVae::new(
            model_config,
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        )?;
        initialise(&varmap, config.seed)?;
        let adam = AdamW::new(named_vars(&varmap))?;
        Ok(Self {
            model,
            config,
            step: 0,
            varmap,
            adam,
        })
    }

    /// Continues from a checkpoint written by [`Trainer::save_checkpoint`].
    pub fn resume(path: &Path) -> Result<Self, ModelError> {
        let file = ModelFile::read(path)?;
        let config: TrainConfig = file
            .extra_json("train_config")?
            .ok_or(ModelError::MissingMetadata("train_config"))?;
        let step: u64 = file
            .extra_json("step")?
            .ok_or(ModelError::MissingMetadata("step"))?;
        let mut trainer = Self::warm_start(&file, config, step)?;
        trainer.adam.t = step;
        for (i, (name, _)) in trainer.adam.vars.iter().enumerate() {
            load_var(&file, &trainer.adam.m[i], &format!("adam.m/{name}"))?;
            load_var(&file, &trainer.adam.v[i], &format!("adam.v/{name}"))?;
        }
        Ok(trainer)
    }

    /// Goes on training a model's weights (a shipped model, say) from `step` of the
    /// schedules, with fresh optimiser moments: how a run continues on a machine that
    /// lost its checkpoint but has the shipped f16 weights.
    pub fn warm_start(
        file: &ModelFile,
        config: TrainConfig,
        step: u64,
    ) -> Result<Self, ModelError> {
        let mut trainer = Self::new(file.config.clone(), config).map_err(ModelError::Weights)?;
        trainer.step = step;
        for (name, var) in named_vars(&trainer.varmap) {
            load_var(file, &var, &name)?;
        }
        Ok(trainer)
    }

    /// Starts a model of another architecture from a trained model's weights: the 16-bar
    /// or the chord-conditioned 4-bar model from folk-4bar, say, whose LSTMs have the same
    /// widths. The schedules start at step 0. Each tensor takes what it shares with the
    /// file's tensor of the same name: all of it where the shapes agree, and where the new
    /// model reads more (chords appended to an LSTM's inputs, a wider z) the rows and
    /// columns of the inputs both read, the rest keeping its initialisation. An LSTM's
    /// inputs come before its recurrent rows, and appended inputs come last, so the
    /// shared inputs are a prefix ([`transplanted`]).
    pub fn transplant(
        file: &ModelFile,
        model_config: Config,
        config: TrainConfig,
    ) -> Result<(Self, Transplant), ModelError> {
        let trainer = Self::new(model_config, config).map_err(ModelError::Weights)?;
        let mut report = Transplant::default();
        for (name, var) in named_vars(&trainer.varmap) {
            let Some(old) = file.tensors.get(&name) else {
                report.fresh.push(name);
                continue;
            };
            let old = old.to_dtype(DType::F32).map_err(ModelError::Weights)?;
            if old.shape() == var.shape() {
                var.set(&old).map_err(ModelError::Weights)?;
                report.whole += 1;
                continue;
            }
            match transplanted(&name, var.as_tensor(), &old).map_err(ModelError::Weights)? {
                Some(t) => {
                    var.set(&t).map_err(ModelError::Weights)?;
                    report.part.push(name);
                }
                None => report.fresh.push(name),
            }
        }
        Ok((trainer, report))
    }

    /// The noise, beta, learning rate, scheduled sampling and dropout of this step, for
    /// a batch of `batch`.
    fn plan(&self, batch: usize) -> candle_core::Result<StepPlan> {
        let mut rng = self.step_rng();
        let eps = standard_normal(&mut rng, (batch, self.model.config.z_size))?;
        let sampling_probability = self.config.sampling_probability_at(self.step);
        let scheduled = ScheduledSampling {
            probability: sampling_probability,
            seed: rng.random(),
        };
        let dropout = (self.config.dropout_keep < 1.0)
            .then(|| Dropout::new(self.config.dropout_keep, rng.random()));
        Ok(StepPlan {
            eps,
            beta: self.config.beta_at(self.step),
            learning_rate: self.config.learning_rate_at(self.step),
            training: Training {
                scheduled: Some(scheduled),
                dropout,
                class_weights: self.class_weights()?,
            },
            sampling_probability,
        })
    }

    /// The weight of each drum pattern event in the loss, from
    /// [`TrainConfig::drum_class_weights`]: the largest weight among the drums it hits.
    fn class_weights(&self) -> candle_core::Result<Option<Tensor>> {
        let weights = &self.config.drum_class_weights;
        if weights.is_empty() || self.model.config.encoding != Encoding::Drums {
            return Ok(None);
        }
        let events: Vec<f32> = (0..1usize << drums::NUM_DRUM_CLASSES)
            .map(|event| {
                (0..drums::NUM_DRUM_CLASSES)
                    .filter(|c| event >> c & 1 == 1)
                    .map(|c| weights.get(c).copied().unwrap_or(1.0))
                    .fold(1.0f64, f64::max) as f32
            })
            .collect();
        let classes = events.len();
        Tensor::from_vec(events, classes, self.model.device()).map(Some)
    }

    /// Backpropagates `loss` (plus a regulariser) and takes the optimiser's step.
    fn apply(
        &mut self,
        plan: &StepPlan,
        loss: &Loss,
        regularization: Option<Tensor>,
    ) -> candle_core::Result<StepStats> {
        let total = match &regularization {
            Some(r) => (&loss.total + (r * self.config.regularize_weight)?)?,
            None => loss.total.clone(),
        };
        let grads = total.backward()?;
        self.adam.step(
            &grads,
            plan.learning_rate,
            self.config.weight_decay,
            self.config.grad_clip,
        )?;
        self.step += 1;
        Ok(StepStats {
            loss: total.to_scalar()?,
            regularization: regularization.map_or(Ok(0.0), |r| r.to_scalar::<f32>())?,
            reconstruction: loss.reconstruction,
            kl: loss.kl,
            accuracy: loss.accuracy,
            beta: plan.beta,
            learning_rate: plan.learning_rate,
            sampling_probability: plan.sampling_probability,
        })
    }

    /// The slices of a training batch, drawn at random; seeded by step, so that a resumed
    /// run draws the batches it would have drawn.
    fn batch_indices(&self, split: &Split, rng: &mut ChaCha8Rng) -> Vec<usize> {
        (0..self.config.batch_size)
            .map(|_| rng.random_range(0..split.len()))
            .collect()
    }

    fn step_rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.config.seed ^ self.step.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The weights alone, for evaluation and shipping.
    /// The step and training config go with them, so that [`Trainer::warm_start`] can
    /// continue the schedules where they were.
    pub fn model_file(
        &self,
        card: ModelCard,
        mut extra: BTreeMap<String, String>,
    ) -> Result<ModelFile, ModelError> {
        extra.insert(
            "train_config".into(),
            serde_json::to_string(&self.config).expect("serialises"),
        );
        extra.insert("step".into(), self.step.to_string());
        let tensors = named_vars(&self.varmap)
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect();
        ModelFile::new(self.model.config.clone(), card, extra, tensors)
    }

    /// Weights, optimiser moments, step and config: everything [`Trainer::resume`] needs.
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), ModelError> {
        let mut file = self.model_file(ModelCard::default(), BTreeMap::new())?;
        for (i, (name, _)) in self.adam.vars.iter().enumerate() {
            file.tensors
                .insert(format!("adam.m/{name}"), self.adam.m[i].as_tensor().clone());
            file.tensors
                .insert(format!("adam.v/{name}"), self.adam.v[i].as_tensor().clone());
        }
        file.write(path, DType::F32)
    }

    /// One step on the melodies or drum patterns `batch` (each `model.config.steps()`
    /// events; for a chord model, over their `chords`), with the attribute regulariser
    /// where the config asks for one.
    pub fn train_step(
        &mut self,
        batch: &[&[Event]],
        chords: Option<&[&[Option<Chord>]]>,
    ) -> candle_core::Result<StepStats> {
        self.step_on(&self.model.batch_over(batch, chords)?, batch)
    }

    /// One step on a batch drawn by [`Self::sample_batch`].
    pub fn train_on(&mut self, batch: &EventBatch) -> candle_core::Result<StepStats> {
        let events = batch.events();
        match (&batch.chords(), &batch.read) {
            (Some(chords), Some(read)) => {
                let read_events: Vec<&[Event]> = read.events.iter().map(Vec::as_slice).collect();
                let read_chords: Vec<&[Option<Chord>]> =
                    read.chords.iter().map(Vec::as_slice).collect();
                let apart = self
                    .model
                    .batch_apart(&read_events, &read_chords, &events, chords)?;
                self.step_on(&apart, &events)
            }
            (chords, _) => self.train_step(&events, chords.as_deref()),
        }
    }

    /// One step on `batch`, whose decoder writes `written` (the regulariser measures them).
    fn step_on(&mut self, batch: &Batch, written: &[&[Event]]) -> candle_core::Result<StepStats> {
        let plan = self.plan(written.len())?;
        let loss = self.loss(batch, &plan)?;
        let regularization = attribute_regularization(
            &loss.z,
            self.model.config.encoding,
            written,
            &self.config.regularize,
        )?;
        self.apply(&plan, &loss, regularization)
    }

    /// One step on the grooves `batch` (each `model.config.steps()` steps).
    pub fn train_groove_step(&mut self, batch: &[&Groove]) -> candle_core::Result<StepStats> {
        let plan = self.plan(batch.len())?;
        let loss = self.loss(&self.model.groove_batch(batch)?, &plan)?;
        self.apply(&plan, &loss, None)
    }

    fn loss(&self, batch: &Batch, plan: &StepPlan) -> candle_core::Result<Loss> {
        self.model.loss(
            batch,
            &plan.eps,
            plan.beta,
            self.config.free_bits,
            &plan.training,
        )
    }

    /// Draws a training batch: random slices, melodies randomly transposed (with their
    /// chords, in a chord corpus; with `keys_apart`, read by the encoder in another key),
    /// drums varied.
    pub fn sample_batch(&self, split: &Split) -> EventBatch {
        let mut rng = self.step_rng();
        rng.set_stream(1);
        let chords = self.model.config.chords.is_some() && !split.chords.is_empty();
        let mut batch = EventBatch {
            events: Vec::with_capacity(self.config.batch_size),
            chords: chords.then(|| Vec::with_capacity(self.config.batch_size)),
            read: (chords && self.config.keys_apart > 0.0).then(|| Keyed {
                events: Vec::with_capacity(self.config.batch_size),
                chords: Vec::with_capacity(self.config.batch_size),
            }),
        };
        for i in self.batch_indices(split, &mut rng) {
            let events = split.get(i);
            let moved = |rng: &mut ChaCha8Rng| match self.model.config.encoding {
                Encoding::Melody => {
                    let shift = corpus::transposition(events, rng, self.config.transpose);
                    // The chords move only as far as the melody did.
                    match melody::transpose(events, shift) {
                        Some(moved) => (moved, shift),
                        None => (events.to_vec(), 0),
                    }
                }
                Encoding::Drums => (self.config.drum_variation.vary(split, i, rng), 0),
                Encoding::Groove => (events.to_vec(), 0),
            };
            let (written, shift) = moved(&mut rng);
            batch.events.push(written);
            if let Some(of_slice) = split.chords(i) {
                let chords_moved = |shift: i32| -> Vec<Option<Chord>> {
                    of_slice
                        .iter()
                        .map(|c| c.map(|c| c.transposed(shift)))
                        .collect()
                };
                if let Some(chords) = &mut batch.chords {
                    chords.push(chords_moved(shift));
                }
                if let Some(read) = &mut batch.read {
                    let written = batch.events.last().expect("pushed above");
                    let (events, shift) = if rng.random_bool(self.config.keys_apart.min(1.0)) {
                        nearest_octave(written, shift, moved(&mut rng))
                    } else {
                        (written.clone(), shift)
                    };
                    read.events.push(events);
                    read.chords.push(chords_moved(shift));
                }
            }
        }
        batch
    }

    /// Draws a training batch of a groove corpus's slices.
    pub fn sample_grooves(&self, split: &Split) -> Vec<Groove> {
        let mut rng = self.step_rng();
        rng.set_stream(1);
        self.batch_indices(split, &mut rng)
            .into_iter()
            .map(|i| split.groove(i))
            .collect()
    }
}

/// The encoder's copy of a keys-apart slice, `read` = (events, shift), moved by an octave
/// where that brings it within a tritone of the decoder's copy (`written`, moved by
/// `written_shift`). The chords give the decoder the key only up to the octave: read a
/// slice a seventh below and written above, the decoder could not tell it from one read
/// a second above, and would learn to hedge its register. A copy that an octave would
/// take out of range is read as written.
fn nearest_octave(
    written: &[Event],
    written_shift: i32,
    (events, shift): (Vec<Event>, i32),
) -> (Vec<Event>, i32) {
    let apart = written_shift - shift;
    let octave = if apart > 5 {
        12
    } else if apart < -6 {
        -12
    } else {
        return (events, shift);
    };
    match melody::transpose(&events, octave) {
        Some(moved) => (moved, shift + octave),
        None => (written.to_vec(), written_shift),
    }
}

fn load_var(file: &ModelFile, var: &Var, name: &str) -> Result<(), ModelError> {
    let t = file
        .tensors
        .get(name)
        .ok_or_else(|| candle_core::Error::Msg(format!("model file lacks {name}")));
    t.and_then(|t| var.set(t)).map_err(ModelError::Weights)
}

/// How [`Trainer::transplant`] started a model's tensors.
#[derive(Debug, Default)]
pub struct Transplant {
    /// Tensors copied whole.
    pub whole: usize,
    /// Tensors that took the block they share with the source, by name.
    pub part: Vec<String>,
    /// Tensors the source has nothing for (no such name, or an LSTM of another width).
    pub fresh: Vec<String>,
}

/// `fresh` (the new model's initialised tensor) with the block it shares with `old`
/// copied in: rows and columns from the start, and for an LSTM kernel
/// (`[inputs + hidden, 4 hidden]`) the shared inputs' rows and all the recurrent rows.
/// `None` where nothing is shared in that sense (an LSTM of another width).
fn transplanted(name: &str, fresh: &Tensor, old: &Tensor) -> candle_core::Result<Option<Tensor>> {
    match (fresh.dims(), old.dims()) {
        (&[n], &[o]) => {
            let shared = n.min(o);
            Ok(Some(joined(
                &[
                    old.narrow(0, 0, shared)?,
                    fresh.narrow(0, shared, n - shared)?,
                ],
                0,
            )?))
        }
        (&[rows, cols], &[old_rows, old_cols]) if name.ends_with("lstm_cell.kernel") => {
            if cols != old_cols {
                return Ok(None);
            }
            let hidden = cols / 4;
            let (inputs, old_inputs) = (rows - hidden, old_rows - hidden);
            let shared = inputs.min(old_inputs);
            Ok(Some(joined(
                &[
                    old.narrow(0, 0, shared)?,
                    fresh.narrow(0, shared, inputs - shared)?,
                    old.narrow(0, old_inputs, hidden)?,
                ],
                0,
            )?))
        }
        (&[rows, cols], &[old_rows, old_cols]) => {
            let (r, c) = (rows.min(old_rows), cols.min(old_cols));
            let top = joined(&[old.i((..r, ..c))?, fresh.i((..r, c..))?], 1)?;
            Ok(Some(joined(&[top, fresh.i((r.., ..))?], 0)?))
        }
        _ => Ok(None),
    }
}

/// `pieces` joined along `dim`, leaving out the empty ones.
fn joined(pieces: &[Tensor], dim: usize) -> candle_core::Result<Tensor> {
    let kept: Vec<&Tensor> = pieces
        .iter()
        .filter(|t| t.dim(dim).is_ok_and(|n| n > 0))
        .collect();
    Tensor::cat(&kept, dim)
}

fn named_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut vars: Vec<_> = data.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// A training batch of events, and their chords for a chord model.
pub struct EventBatch {
    /// What the decoder writes (and, without `read`, what the encoder reads).
    pub events: Vec<Vec<Event>>,
    pub chords: Option<Vec<Vec<Option<Chord>>>>,
    /// With `keys_apart`: the same slices in the keys the encoder reads them in.
    pub read: Option<Keyed>,
}

/// Chord-model slices in some key, with their chords.
pub struct Keyed {
    pub events: Vec<Vec<Event>>,
    pub chords: Vec<Vec<Option<Chord>>>,
}

impl EventBatch {
    /// The slices as [`Trainer::train_step`] reads them.
    pub fn events(&self) -> Vec<&[Event]> {
        self.events.iter().map(Vec::as_slice).collect()
    }

    /// The chords as [`Trainer::train_step`] reads them.
    pub fn chords(&self) -> Option<Vec<&[Option<Chord>]>> {
        self.chords
            .as_ref()
            .map(|c| c.iter().map(Vec::as_slice).collect())
    }
}

/// Seeded initialisation, by role: Glorot-uniform kernels, zero biases, and
/// `N(0, 0.001)` for the dense layers that map z to initial LSTM states, as in Magenta.
fn initialise(varmap: &VarMap, seed: u64) -> candle_core::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (name, var) in named_vars(varmap) {
        let shape = var.shape().clone();
        let n = shape.elem_count();
        let values: Vec<f32> = if name.ends_with("bias") {
            vec![0.0; n]
        } else if name.contains("initial_state") {
            (0..n).map(|_| 0.001 * normal(&mut rng)).collect()
        } else {
            let (fan_in, fan_out) = shape.dims2()?;
            let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
            (0..n).map(|_| rng.random_range(-limit..limit)).collect()
        };
        var.set(&Tensor::from_vec(values, shape, &Device::Cpu)?)?;
    }
    Ok(())
}

/// AR-VAE's attribute regularisation of `z` `[B, Z]`: for attribute k (bound to dim k),
/// the mean over pairs of `|tanh(delta (z_ik - z_jk)) - sign(a_ik - a_jk)|`. `None` when
/// nothing is regularised.
pub fn attribute_regularization(
    z: &Tensor,
    encoding: Encoding,
    batch: &[&[Event]],
    attributes: &[String],
) -> candle_core::Result<Option<Tensor>> {
    let b = batch.len();
    let mut total: Option<Tensor> = None;
    for (k, name) in attributes.iter().enumerate() {
        let values: Vec<f64> = batch
            .iter()
            .map(|m| {
                latent_live_core::music::attributes::measure(encoding, name, m)
                    .ok_or_else(|| candle_core::Error::Msg(format!("unknown attribute {name:?}")))
            })
            .collect::<candle_core::Result<_>>()?;
        let sign = |d: f64| {
            if d > 0.0 {
                1f32
            } else if d < 0.0 {
                -1.0
            } else {
                0.0
            }
        };
        let signs: Vec<f32> = (0..b * b)
            .map(|ij| sign(values[ij / b] - values[ij % b]))
            .collect();
        let signs = Tensor::from_vec(signs, (b, b), z.device())?;
        let zk = z.narrow(1, k, 1)?;
        let dz = zk.broadcast_sub(&zk.t()?)?;
        let term = ((dz * AR_DELTA)?.tanh()? - signs)?.abs()?.mean_all()?;
        total = Some(match total {
            Some(t) => (t + term)?,
            None => term,
        });
    }
    Ok(total)
}

/// AdamW with decoupled weight decay; its moments are plain `Var`s so that checkpoints
/// can hold them (candle-nn's `AdamW` keeps them private).
struct AdamW {
    vars: Vec<(String, Var)>,
    m: Vec<Var>,
    v: Vec<Var>,
    t: u64,
}

impl AdamW {
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    fn new(vars: Vec<(String, Var)>) -> candle_core::Result<Self> {
        let zeros = |v: &Var| Var::zeros(v.shape(), DType::F32, &Device::Cpu);
        let m = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<_>>()?;
        let v = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self { vars, m, v, t: 0 })
    }

    fn step(
        &mut self,
        grads: &candle_core::backprop::GradStore,
        lr: f64,
        weight_decay: f64,
        clip: f64,
    ) -> candle_core::Result<()> {
        let grads: Vec<Option<&Tensor>> = self.vars.iter().map(|(_, v)| grads.get(v)).collect();
        let mut norm_sq = 0f64;
        for g in grads.iter().flatten() {
            norm_sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
        let norm = norm_sq.sqrt();
        let scale = if clip > 0.0 && norm > clip {
            clip / norm
        } else {
            1.0
        };
        self.t += 1;
        let c1 = 1.0 - Self::BETA1.powi(self.t as i32);
        let c2 = 1.0 - Self::BETA2.powi(self.t as i32);
        for (i, g) in grads.into_iter().enumerate() {
            let Some(g) = g else { continue };
            let g = (g * scale)?;
            let m = ((self.m[i].as_tensor() * Self::BETA1)? + (&g * (1.0 - Self::BETA1))?)?;
            let v = ((self.v[i].as_tensor() * Self::BETA2)? + (g.sqr()? * (1.0 - Self::BETA2))?)?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + Self::EPS)?)?;
            let var = &self.vars[i].1;
            let decayed = (var.as_tensor() * (1.0 - lr * weight_decay))?;
            var.set(&(decayed - (update * lr)?)?)?;
            self.m[i].set(&m)?;
            self.v[i].set(&v)?;
        }
        Ok(())
    }
}
