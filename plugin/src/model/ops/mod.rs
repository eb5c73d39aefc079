//! Custom candle ops: the fused LSTM sequence (forward and backward through time), its
//! elementwise kernels, and the same cell stepped on plain slices for sampling.

mod kernels;
mod lstm_seq;
pub mod step;

pub use lstm_seq::{release_workspaces, LstmSeqOp};
