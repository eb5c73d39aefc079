//! The LSTM cell's elementwise kernels for the fused op: gates, cell update and their
//! gradients for a block of rows. f32 uses a branch-free exp that vectorises, compiled for
//! AVX-512 or AVX2 and picked at run time; f64 (used for gradient checks) uses the exact
//! std functions.

use std::mem::MaybeUninit;

use candle_core::WithDType;

use super::FORGET_BIAS;

/// Per-row layout of the fused op's saved workspace: c, tanh(c), i, j, f, o.
pub const WS: usize = 6;

pub trait Elem: WithDType {
    const ZERO: Self;
    const ONE: Self;
    fn sigmoid(self) -> Self;
    fn tanh_(self) -> Self;

    /// One step's cell update for a block of rows ([`ForwardRows`]).
    fn forward_rows(rows: ForwardRows<'_, Self>) {
        forward_rows_impl(rows)
    }

    /// One step's backward for a block of rows ([`BackwardRows`]).
    fn backward_rows(rows: BackwardRows<'_, Self>) {
        backward_rows_impl(rows)
    }
}

/// One step's forward operands for a block of rows: `g` (recurrent products) and `x`
/// (input projection) `[rows, 4H]`, `c_prev` rows `c_rs` apart, into the workspace `w`
/// `[rows, 6H]` and `h` `[rows, H]`.
pub struct ForwardRows<'a, F> {
    pub n: usize,
    pub g: &'a [F],
    pub x: &'a [F],
    pub c_prev: &'a [F],
    pub c_rs: usize,
    pub w: &'a mut [F],
    pub h: &'a mut [MaybeUninit<F>],
}

/// One step's backward operands for a block of rows: from the workspace `w`, `c_prev`
/// and the gradients `gh` + `dh` of h, writes the gate pre-activation gradients `dg`
/// `[rows, 4H]` and carries `dc` back one step.
pub struct BackwardRows<'a, F> {
    pub n: usize,
    pub w: &'a [F],
    pub c_prev: &'a [F],
    pub c_rs: usize,
    pub gh: &'a [F],
    pub dh: &'a [F],
    pub dc: &'a mut [F],
    pub dg: &'a mut [MaybeUninit<F>],
}

impl Elem for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + (-self).exp())
    }
    #[inline(always)]
    fn tanh_(self) -> Self {
        self.tanh()
    }
}

impl Elem for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + fast_exp(-self))
    }
    #[inline(always)]
    fn tanh_(self) -> Self {
        1.0 - 2.0 / (fast_exp(2.0 * self) + 1.0)
    }

    fn forward_rows(rows: ForwardRows<'_, f32>) {
        #[cfg(target_arch = "x86_64")]
        {
            if simd::avx512() {
                // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked just now), all the
                // function is compiled for; it reads and writes only through the slices.
                return unsafe { simd::forward_avx512(rows) };
            }
            if simd::avx2() {
                // SAFETY: the CPU has AVX2 and FMA (checked just now).
                return unsafe { simd::forward_avx2(rows) };
            }
        }
        forward_rows_impl(rows)
    }

    fn backward_rows(rows: BackwardRows<'_, f32>) {
        #[cfg(target_arch = "x86_64")]
        {
            if simd::avx512() {
                // SAFETY: as for `forward_rows`: the features were checked just now.
                return unsafe { simd::backward_avx512(rows) };
            }
            if simd::avx2() {
                // SAFETY: the CPU has AVX2 and FMA (checked just now).
                return unsafe { simd::backward_avx2(rows) };
            }
        }
        backward_rows_impl(rows)
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{backward_rows_impl, forward_rows_impl, BackwardRows, ForwardRows};

    pub fn avx512() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    pub fn avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// The portable kernel `$kernel`, compiled again for the CPU features `$features`
    /// (so that its loops vectorise for them); the caller checks the CPU has them.
    macro_rules! compiled_for {
        ($($name:ident: $features:literal, $kernel:ident($rows:ident);)*) => {$(
            #[target_feature(enable = $features)]
            pub unsafe fn $name(rows: $rows<'_, f32>) {
                $kernel(rows)
            }
        )*};
    }

    compiled_for! {
        forward_avx512: "avx512f,avx2,fma", forward_rows_impl(ForwardRows);
        forward_avx2: "avx2,fma", forward_rows_impl(ForwardRows);
        backward_avx512: "avx512f,avx2,fma", backward_rows_impl(BackwardRows);
        backward_avx2: "avx2,fma", backward_rows_impl(BackwardRows);
    }
}

/// `exp` for f32 without branches or calls (Cephes polynomial, about 1 ulp on the
/// clamped range [-87, 88]), so that loops over it vectorise.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer.
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let k = t - MAGIC;
    let r = x - k * 0.693_359_4 + k * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^k from the integer sitting in t's low mantissa bits.
    let scale = f32::from_bits(t.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127) << 23);
    e * scale
}

#[inline(always)]
fn forward_rows_impl<F: Elem>(rows: ForwardRows<'_, F>) {
    let ForwardRows {
        n,
        g,
        x,
        c_prev,
        c_rs,
        w,
        h,
    } = rows;
    let rows = h.len() / n;
    let fb = F::from_f64(FORGET_BIAS);
    for r in 0..rows {
        let g = &g[r * 4 * n..(r + 1) * 4 * n];
        let x = &x[r * 4 * n..(r + 1) * 4 * n];
        let cp = &c_prev[r * c_rs..r * c_rs + n];
        let h = &mut h[r * n..(r + 1) * n];
        let w = &mut w[r * WS * n..(r + 1) * WS * n];
        let (gi, gj, gf, go) = (&g[..n], &g[n..2 * n], &g[2 * n..3 * n], &g[3 * n..4 * n]);
        let (xi, xj, xf, xo) = (&x[..n], &x[n..2 * n], &x[2 * n..3 * n], &x[3 * n..4 * n]);
        let (wc, rest) = w.split_at_mut(n);
        let (wt, rest) = rest.split_at_mut(n);
        let (wi, rest) = rest.split_at_mut(n);
        let (wj, rest) = rest.split_at_mut(n);
        let (wf, wo) = rest.split_at_mut(n);
        let wo = &mut wo[..n];
        for k in 0..n {
            let i = (gi[k] + xi[k]).sigmoid();
            let j = (gj[k] + xj[k]).tanh_();
            let f = (gf[k] + xf[k] + fb).sigmoid();
            let o = (go[k] + xo[k]).sigmoid();
            let c = f * cp[k] + i * j;
            let tc = c.tanh_();
            wc[k] = c;
            wt[k] = tc;
            wi[k] = i;
            wj[k] = j;
            wf[k] = f;
            wo[k] = o;
            h[k].write(o * tc);
        }
    }
}

#[inline(always)]
fn backward_rows_impl<F: Elem>(rows: BackwardRows<'_, F>) {
    let BackwardRows {
        n,
        w,
        c_prev,
        c_rs,
        gh,
        dh,
        dc,
        dg,
    } = rows;
    let rows = gh.len() / n;
    let one = F::ONE;
    for r in 0..rows {
        let w = &w[r * WS * n..(r + 1) * WS * n];
        let cp = &c_prev[r * c_rs..r * c_rs + n];
        let gh = &gh[r * n..(r + 1) * n];
        let dh = &dh[r * n..(r + 1) * n];
        let dc = &mut dc[r * n..(r + 1) * n];
        let dg = &mut dg[r * 4 * n..(r + 1) * 4 * n];
        let (wt, wi, wj, wf, wo) = (
            &w[n..2 * n],
            &w[2 * n..3 * n],
            &w[3 * n..4 * n],
            &w[4 * n..5 * n],
            &w[5 * n..6 * n],
        );
        let (di, rest) = dg.split_at_mut(n);
        let (dj, rest) = rest.split_at_mut(n);
        let (df, do_) = rest.split_at_mut(n);
        let do_ = &mut do_[..n];
        for k in 0..n {
            let (tc, i, j, f, o) = (wt[k], wi[k], wj[k], wf[k], wo[k]);
            let dhk = gh[k] + dh[k];
            let dck = dc[k] + dhk * o * (one - tc * tc);
            di[k].write(dck * j * i * (one - i));
            dj[k].write(dck * i * (one - j * j));
            df[k].write(dck * cp[k] * f * (one - f));
            do_[k].write(dhk * tc * o * (one - o));
            dc[k] = dck * f;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lstm_fast_exp_is_accurate() {
        let mut x = -90.0f32;
        while x < 90.0 {
            let (fast, exact) = (fast_exp(x) as f64, (x.clamp(-87.0, 88.0) as f64).exp());
            assert!(
                (fast - exact).abs() <= 4e-7 * exact,
                "exp({x}) = {fast}, expected {exact}"
            );
            x += 0.01;
        }
        for &x in &[-20.0f32, -3.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 3.0, 20.0] {
            assert!((Elem::sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs() < 1e-7);
            assert!((Elem::tanh_(x) - x.tanh()).abs() < 2e-7);
        }
    }
}
