//! Custom candle ops: the fused LSTM sequence (forward and backward through time) and its
//! elementwise kernels, which the cell stepped on plain slices ([`super::step`]) shares.

pub mod kernels;
mod lstm_seq;

pub use lstm_seq::{release_workspaces, LstmSeqOp};

/// TensorFlow's `LSTMBlockCell` adds this to the forget gate at run time (its
/// `forget_bias`), so Google's checkpoints hold kernels trained with it.
pub const FORGET_BIAS: f64 = 1.0;
