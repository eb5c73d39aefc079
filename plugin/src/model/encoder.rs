//! The bidirectional LSTM encoder (Magenta's `BidirectionalLstmEncoder`).

use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

use super::add_row;
use super::lstm::LstmCell;

/// A stack of bidirectional layers; the code is the last forward `h` beside the last
/// backward `h` of the top layer.
#[derive(Debug, Clone)]
pub struct Encoder {
    layers: Vec<[LstmCell; 2]>,
}

impl Encoder {
    pub fn new(input: usize, sizes: &[usize], vb: VarBuilder) -> Result<Self> {
        let mut layers = Vec::with_capacity(sizes.len());
        let mut layer_input = input;
        for (i, &hidden) in sizes.iter().enumerate() {
            let vb = vb.pp(format!("cell_{i}")).pp("bidirectional_rnn");
            let cell = |dir: &str| {
                let vb = vb.pp(dir).pp("multi_rnn_cell").pp("cell_0").pp("lstm_cell");
                LstmCell::new(layer_input, hidden, vb)
            };
            layers.push([cell("fw")?, cell("bw")?]);
            layer_input = 2 * hidden;
        }
        Ok(Self { layers })
    }

    pub fn output_size(&self) -> usize {
        2 * self.layers.last().map_or(0, |[fw, _]| fw.hidden_size())
    }

    /// `tokens`: time-major class indices `[T, B]` (u32). Returns the code `[B, 2H]`.
    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        let (steps, batch) = tokens.dims2()?;
        let reversed = Tensor::arange_step(steps as i64 - 1, -1, -1, tokens.device())?;
        let reverse_time = |t: &Tensor| t.index_select(&reversed, 0);
        // Layer 0 sees one-hot inputs, so its input projection is a row lookup.
        let one_hot_projection = |cell: &LstmCell, tokens: &Tensor| -> Result<Tensor> {
            let rows = cell.w_x()?.index_select(&tokens.flatten_all()?, 0)?;
            add_row(&rows, &cell.bias)?.reshape((steps, batch, ()))
        };
        let mut code = None;
        let mut features: Option<Tensor> = None;
        for (i, [fw, bw]) in self.layers.iter().enumerate() {
            let (x_fw, x_bw) = match &features {
                None => (one_hot_projection(fw, tokens)?, one_hot_projection(bw, &reverse_time(tokens)?)?),
                Some(f) => (fw.project(f)?, bw.project(&reverse_time(f)?)?),
            };
            let zeros = Tensor::zeros((batch, fw.hidden_size()), x_fw.dtype(), x_fw.device())?;
            let out_fw = fw.seq(&x_fw, &zeros, &zeros)?;
            let out_bw = bw.seq(&x_bw, &zeros, &zeros)?;
            code = Some(Tensor::cat(&[&out_fw.h, &out_bw.h], D::Minus1)?);
            // Only a layer above needs every step's outputs.
            if i + 1 < self.layers.len() {
                features = Some(Tensor::cat(&[&out_fw.hs, &reverse_time(&out_bw.hs)?], D::Minus1)?);
            }
        }
        code.ok_or_else(|| candle_core::Error::Msg("encoder has no layers".into()))
    }
}
