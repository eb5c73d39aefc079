//! TensorFlow `LSTMBlockCell` semantics, with a fused whole-sequence op for training.
