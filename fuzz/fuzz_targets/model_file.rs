//! Model files as bytes: the safetensors header, the metadata JSON, the tensors, then
//! everything the plugin does with a file that loads. Seeded with tiny model files.

#![no_main]

mod model_checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| model_checks::play(data));
