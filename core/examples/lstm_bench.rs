//! Times forward + backward of a decoder-sized 2-layer LSTM (T = 32, B = 256, H = 256,
//! layer-0 input 90 + 128) with the fused op against per-step candle loops.
//!
//! `cargo run --release -p latent_live_core --example lstm_bench [-- iterations [fused]]`
//! (`RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1` for a single core). Prints the mean and the
//! best iteration (the best is the steadier figure on a shared machine).
//!
//! This binary uses the system allocator, which returns large blocks to the kernel and
//! faults them in again every iteration; xtask's mimalloc does not. To compare with
//! training, run with `MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296
//! MALLOC_TOP_PAD_=1073741824`, which has the same effect on glibc.

use std::time::Instant;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use latent_live_core::model::lstm::{LstmCell, LstmSeqOutput};

const T: usize = 32;
const B: usize = 256;
const INPUT: usize = 90 + 128;
const H: usize = 256;

#[derive(Clone, Copy, PartialEq)]
enum Path {
    /// `LstmCell::seq`: input projection hoisted, fused recurrence and BPTT.
    Fused,
    /// `LstmCell::seq_slow`: input projection hoisted, then per-step candle ops.
    NaiveHoisted,
    /// `LstmCell::step` per step: `cat([x, h]) @ kernel` every step.
    NaiveStep,
}

struct Setup {
    _map: VarMap,
    cells: Vec<LstmCell>,
    states: Vec<(Var, Var)>,
    x: Tensor,
    w: Tensor,
}

fn setup() -> Result<Setup> {
    let dev = Device::Cpu;
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &dev);
    let cells = vec![
        LstmCell::new(INPUT, H, vb.pp("cell_0"))?,
        LstmCell::new(H, H, vb.pp("cell_1"))?,
    ];
    let state =
        || -> Result<Var> { Var::from_tensor(&Tensor::randn(0f32, 0.5, (B, H), &dev)?.tanh()?) };
    let states = vec![(state()?, state()?), (state()?, state()?)];
    let x = Tensor::randn(0f32, 1.0, (T, B, INPUT), &dev)?;
    let w = Tensor::randn(0f32, 1.0, (T, B, H), &dev)?;
    Ok(Setup {
        _map: map,
        cells,
        states,
        x,
        w,
    })
}

fn run_layer(
    cell: &LstmCell,
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    path: Path,
) -> Result<LstmSeqOutput> {
    match path {
        Path::Fused => cell.seq(&cell.project(x)?, h0, c0),
        Path::NaiveHoisted => cell.seq_slow(&cell.project(x)?, h0, c0),
        Path::NaiveStep => {
            let (mut h, mut c) = (h0.clone(), c0.clone());
            let mut hs = Vec::with_capacity(T);
            for t in 0..x.dim(0)? {
                (h, c) = cell.step(&x.get(t)?, &h, &c)?;
                hs.push(h.clone());
            }
            Ok(LstmSeqOutput {
                hs: Tensor::stack(&hs, 0)?,
                h,
                c,
            })
        }
    }
}

/// One training-shaped iteration: both layers forward, a weighted-sum loss, backward.
/// Returns (forward seconds, backward seconds).
fn iteration(s: &Setup, path: Path) -> Result<(f64, f64)> {
    let start = Instant::now();
    let mut x = s.x.clone();
    for (cell, (h0, c0)) in s.cells.iter().zip(&s.states) {
        x = run_layer(cell, &x, h0.as_tensor(), c0.as_tensor(), path)?.hs;
    }
    let loss = x.mul(&s.w)?.sum_all()?;
    let _ = loss.to_scalar::<f32>()?;
    let forward = start.elapsed().as_secs_f64();
    let grads = loss.backward()?;
    let _ = grads
        .get(s.states[0].0.as_tensor())
        .expect("h0 gradient")
        .sum_all()?
        .to_scalar::<f32>()?;
    Ok((forward, start.elapsed().as_secs_f64() - forward))
}

fn bench(s: &Setup, path: Path, name: &str, iterations: usize) -> Result<f64> {
    iteration(s, path)?; // warm-up
    let (mut fwd, mut bwd, mut best) = (0.0, 0.0, f64::INFINITY);
    for _ in 0..iterations {
        let (f, b) = iteration(s, path)?;
        fwd += f;
        bwd += b;
        best = best.min(f + b);
    }
    let (fwd, bwd) = (fwd / iterations as f64, bwd / iterations as f64);
    let rate = B as f64 / (fwd + bwd);
    println!(
        "{name:<14} fwd {:7.1} ms  bwd {:7.1} ms  total {:7.1} ms  {rate:7.1} examples/s  (best \
         {:7.1} ms, {:7.1} examples/s)",
        fwd * 1e3,
        bwd * 1e3,
        (fwd + bwd) * 1e3,
        best * 1e3,
        B as f64 / best
    );
    Ok(B as f64 / best)
}

fn main() -> Result<()> {
    let iterations = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    println!(
        "2-layer LSTM {H}, T = {T}, B = {B}, layer-0 input {INPUT}, f32, {} threads, {iterations} \
         iterations",
        candle_core::utils::get_num_threads()
    );
    let s = setup()?;
    // Both paths compute the same thing.
    let fused = run_layer(
        &s.cells[0],
        &s.x,
        s.states[0].0.as_tensor(),
        s.states[0].1.as_tensor(),
        Path::Fused,
    )?;
    let naive = run_layer(
        &s.cells[0],
        &s.x,
        s.states[0].0.as_tensor(),
        s.states[0].1.as_tensor(),
        Path::NaiveHoisted,
    )?;
    let diff = fused
        .hs
        .sub(&naive.hs)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f32>()?;
    println!("max |fused - naive| over hs: {diff:.2e}");

    if std::env::args().nth(2).as_deref() == Some("fused") {
        bench(&s, Path::Fused, "fused", iterations)?;
        return Ok(());
    }
    let fused = bench(&s, Path::Fused, "fused", iterations)?;
    let hoisted = bench(
        &s,
        Path::NaiveHoisted,
        "naive hoisted",
        iterations.div_ceil(2),
    )?;
    let step = bench(&s, Path::NaiveStep, "naive step", iterations.div_ceil(2))?;
    println!(
        "fused speed-up (best iterations): {:.1}x over naive hoisted, {:.1}x over naive step",
        fused / hoisted,
        fused / step
    );
    Ok(())
}
