//! What tests and benchmarks need to drive the plugin as a host would: set parameters
//! from outside the audio thread, and wait for the worker. Behind the `testing` feature
//! (and `cfg(test)`), so plugin builds never carry it.

use std::time::{Duration, Instant};

use nice_plug::prelude::{Param, Params};

/// Sets `param` to `normalized`, as a host's automation does.
pub fn set_normalized(param: &impl Param, normalized: f32) {
    // SAFETY: `param` is borrowed for the call, so the parameter outlives the pointer, and
    // the host's route only stores into the parameter's atomics.
    unsafe { param.as_ptr()._internal_set_normalized_value(normalized) };
}

/// Every parameter's id, in the order the host sees them.
pub fn param_ids(params: &dyn Params) -> Vec<String> {
    params
        .param_map()
        .into_iter()
        .map(|(id, _, _)| id)
        .collect()
}

/// Sets the parameter with the stable id `id` to `normalized`; panics on an unknown id.
pub fn set_by_id(params: &dyn Params, id: &str, normalized: f32) {
    let (_, ptr, _) = params
        .param_map()
        .into_iter()
        .find(|(known, _, _)| known == id)
        .unwrap_or_else(|| panic!("no parameter {id}"));
    // SAFETY: `params` is borrowed for the call and owns the parameter the pointer names;
    // the host's route only stores into its atomics.
    unsafe { ptr._internal_set_normalized_value(normalized) };
}

/// Polls `f` until it holds or `timeout` passes; whether it held.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}
