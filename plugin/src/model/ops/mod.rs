//! Custom candle ops: the fused LSTM sequence (forward and backward through time) and its
//! elementwise kernels.

mod kernels;
mod lstm_seq;

pub use lstm_seq::{release_workspaces, LstmSeqOp};
