//! The encoder: bidirectional LSTMs to the posterior's mu and sigma (Magenta's
//! `BidirectionalLstmEncoder`, or its `HierarchicalLstmEncoder` of two levels).

use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

use super::lstm::LstmCell;
use super::{add_row, dropped, softplus, Config, Dense, Dropout};
use crate::music::{drums, Encoding, Event};

/// The posterior `q(z | x) = N(mu, sigma)`.
pub struct Posterior {
    pub mu: Tensor,
    pub sigma: Tensor,
}

/// A stack of bidirectional layers; its code is the last forward `h` beside the last
/// backward `h` of the top layer.
#[derive(Debug, Clone)]
struct BiLstm {
    layers: Vec<[LstmCell; 2]>,
    /// The input each class stands for, `[classes, input]`, where it is not one-hot: the
    /// drum roll. `None` for one-hot classes.
    class_inputs: Option<Tensor>,
    /// How many of the first layer's inputs are controls, after the sequence's own.
    controls: usize,
}

/// What a bidirectional stack reads: class indices `[T, B]` with the controls of every
/// step `[T, B, C]` beside them (a chord-conditioned model's chords), or features
/// `[T, B, F]`.
#[derive(Clone, Copy)]
pub enum Input<'a> {
    Tokens {
        events: &'a Tensor,
        controls: Option<&'a Tensor>,
    },
    Features(&'a Tensor),
}

impl BiLstm {
    fn new(
        input: usize,
        sizes: &[usize],
        class_inputs: Option<Tensor>,
        controls: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut layers = Vec::with_capacity(sizes.len());
        let mut layer_input = input;
        for (i, &hidden) in sizes.iter().enumerate() {
            let vb = vb.pp(format!("cell_{i}")).pp("bidirectional_rnn");
            let cell = |dir: &str| {
                LstmCell::new(
                    layer_input,
                    hidden,
                    vb.pp(dir).pp("multi_rnn_cell").pp("cell_0").pp("lstm_cell"),
                )
            };
            layers.push([cell("fw")?, cell("bw")?]);
            layer_input = 2 * hidden;
        }
        Ok(Self {
            layers,
            class_inputs,
            controls,
        })
    }

    fn output_size(&self) -> usize {
        2 * self.layers.last().map_or(0, |[fw, _]| fw.hidden_size())
    }

    /// The code `[B, 2H]`.
    fn forward(&self, input: Input, dropout: Option<&Dropout>) -> Result<Tensor> {
        let (steps, batch, device) = match input {
            Input::Tokens { events, .. } => (events.dim(0)?, events.dim(1)?, events.device()),
            Input::Features(f) => (f.dim(0)?, f.dim(1)?, f.device()),
        };
        let reversed = Tensor::arange_step(steps as i64 - 1, -1, -1, device)?;
        let reverse_time = |t: &Tensor| t.index_select(&reversed, 0);
        // Class inputs make the first projection a row lookup: of the kernel itself for
        // one-hot classes, else of each class's input times the kernel. Dropout needs the
        // inputs themselves, so it looks up the inputs instead. The controls' share is a
        // product of their own rows of the kernel.
        let first_projection =
            |cell: &LstmCell, tokens: &Tensor, controls: Option<&Tensor>| -> Result<Tensor> {
                let w_x = cell.w_x()?;
                let own = cell.input_size() - self.controls;
                let w_own = w_x.narrow(0, 0, own)?;
                let rows = if let Some(d) = dropout {
                    let inputs = match &self.class_inputs {
                        Some(inputs) => inputs.clone(),
                        None => Tensor::eye(own, cell.bias.dtype(), cell.bias.device())?,
                    };
                    let x = inputs.index_select(&tokens.flatten_all()?, 0)?;
                    d.apply(&x)?.matmul(&w_own)?
                } else {
                    let table = match &self.class_inputs {
                        Some(inputs) => inputs.matmul(&w_own)?,
                        None => w_own,
                    };
                    table.index_select(&tokens.flatten_all()?, 0)?
                };
                let rows = match controls {
                    Some(c) => {
                        let c = dropped(&c.reshape((steps * batch, ()))?, dropout)?;
                        (rows + c.matmul(&w_x.narrow(0, own, self.controls)?)?)?
                    }
                    None => rows,
                };
                add_row(&rows, &cell.bias)?.reshape((steps, batch, ()))
            };
        let mut code = None;
        let mut features: Option<Tensor> = None;
        for (i, [fw, bw]) in self.layers.iter().enumerate() {
            let below = match (&features, &input) {
                (Some(f), _) => Some(f),
                (None, Input::Features(f)) => Some(*f),
                (None, Input::Tokens { .. }) => None,
            };
            let (x_fw, x_bw) = match (below, &input) {
                (Some(f), _) => (
                    fw.project(&dropped(f, dropout)?)?,
                    bw.project(&dropped(&reverse_time(f)?, dropout)?)?,
                ),
                (None, Input::Tokens { events, controls }) => {
                    let reversed_controls = controls.map(reverse_time).transpose()?;
                    (
                        first_projection(fw, events, *controls)?,
                        first_projection(bw, &reverse_time(events)?, reversed_controls.as_ref())?,
                    )
                }
                (None, Input::Features(_)) => unreachable!(),
            };
            let zeros = Tensor::zeros((batch, fw.hidden_size()), x_fw.dtype(), x_fw.device())?;
            let out_fw = fw.seq(&x_fw, &zeros, &zeros)?;
            let out_bw = bw.seq(&x_bw, &zeros, &zeros)?;
            code = Some(Tensor::cat(&[&out_fw.h, &out_bw.h], D::Minus1)?);
            // Only a layer above needs every step's outputs.
            if i + 1 < self.layers.len() {
                features = Some(Tensor::cat(
                    &[&out_fw.hs, &reverse_time(&out_bw.hs)?],
                    D::Minus1,
                )?);
            }
        }
        code.ok_or_else(|| candle_core::Error::Msg("encoder has no layers".into()))
    }
}

#[derive(Debug, Clone)]
pub struct Encoder {
    /// One stack over the whole sequence, or (hierarchical) one per bar, then one over the
    /// bars' codes.
    levels: Vec<BiLstm>,
    bars: usize,
    mu: Dense,
    sigma: Dense,
}

impl Encoder {
    /// `vb` is the `encoder` scope. `None` for decoder-only models (no encoder sizes).
    pub fn new(config: &Config, vb: VarBuilder) -> Result<Option<Self>> {
        if config.encoder.is_empty() {
            return Ok(None);
        }
        let input = config.input_depth();
        let controls = config.control_depth();
        let class_inputs = match config.encoding {
            Encoding::Melody | Encoding::Groove => None,
            Encoding::Drums => {
                let rolls: Vec<f32> = (0..drums::NUM_CLASSES as Event)
                    .flat_map(drums::roll)
                    .collect();
                Some(
                    Tensor::from_vec(rolls, (drums::NUM_CLASSES, drums::ROLL_DEPTH), vb.device())?
                        .to_dtype(vb.dtype())?,
                )
            }
        };
        let levels = if config.hierarchical_encoder {
            let bars = BiLstm::new(
                input,
                &config.encoder,
                class_inputs,
                controls,
                vb.pp("hierarchical_level_0"),
            )?;
            let top = BiLstm::new(
                bars.output_size(),
                &config.encoder,
                None,
                0,
                vb.pp("hierarchical_level_1"),
            )?;
            vec![bars, top]
        } else {
            vec![BiLstm::new(
                input,
                &config.encoder,
                class_inputs,
                controls,
                vb.clone(),
            )?]
        };
        let code = levels.last().unwrap().output_size();
        let mu = Dense::new(code, config.z_size, vb.pp("mu"))?;
        let sigma = Dense::new(code, config.z_size, vb.pp("sigma"))?;
        Ok(Some(Self {
            levels,
            bars: config.bars,
            mu,
            sigma,
        }))
    }

    /// `input`: time-major, class indices `[T, B]` (u32) or groove rows `[T, B, F]`;
    /// `dropout` while training.
    pub fn posterior(&self, input: Input, dropout: Option<&Dropout>) -> Result<Posterior> {
        let code = self.code(input, dropout)?;
        Ok(Posterior {
            mu: self.mu.forward(&code)?,
            sigma: softplus(&self.sigma.forward(&code)?)?,
        })
    }

    pub fn mu(&self, input: Input) -> Result<Tensor> {
        self.mu.forward(&self.code(input, None)?)
    }

    fn code(&self, input: Input, dropout: Option<&Dropout>) -> Result<Tensor> {
        match (self.levels.as_slice(), input) {
            ([flat], input) => flat.forward(input, dropout),
            ([bars, top], Input::Tokens { events, controls }) => {
                let (steps, batch) = events.dims2()?;
                let (u, s) = (self.bars, steps / self.bars);
                // [T, B, ..] -> [S, U * B, ..]: every bar is encoded as a sequence of its
                // own...
                let per_bar = |t: &Tensor| -> Result<Tensor> {
                    let mut dims = vec![u, s, batch];
                    dims.extend(&t.dims()[2..]);
                    let mut bar_major = vec![s, u * batch];
                    bar_major.extend(&t.dims()[2..]);
                    t.reshape(dims)?
                        .transpose(0, 1)?
                        .reshape(bar_major)?
                        .contiguous()
                };
                let events = per_bar(events)?;
                let controls = controls.map(per_bar).transpose()?;
                let codes = bars.forward(
                    Input::Tokens {
                        events: &events,
                        controls: controls.as_ref(),
                    },
                    dropout,
                )?;
                // ...and the bars' codes, in order, are the top level's sequence.
                top.forward(Input::Features(&codes.reshape((u, batch, ()))?), dropout)
            }
            ([_, _], Input::Features(_)) => Err(candle_core::Error::Msg(
                "a hierarchical encoder reads classes, not groove rows".into(),
            )),
            _ => unreachable!("an encoder has one level or two"),
        }
    }
}
