//! numpy's default bit generator (PCG64: O'Neill's PCG, a 128-bit LCG with
//! the XSL-RR output) and the draws `processes()` takes from it, so that the
//! engine can continue a `numpy.random.Generator`'s stream where the model
//! left it and hand it back: uniform doubles (`Generator.random`) and Poisson
//! counts (`Generator.poisson`: the multiplication method below a mean of 10,
//! Hörmann's transformed rejection PTRS from 10 on). The same operations on
//! the same doubles as numpy's, so the same draws to the bit; the tests
//! compare them with numpy's (`tests/test_workload_engine.py`).

/// The LCG multiplier of PCG64.
const MULT: u128 = 0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645;

/// A PCG64 state: numpy's `PCG64.state["state"]`, `["inc"]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pcg64 {
    pub state: u128,
    pub inc: u128,
}

impl Pcg64 {
    /// The next 64 random bits (one LCG step, then XSL-RR of the new state).
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_mul(MULT).wrapping_add(self.inc);
        let rot = (self.state >> 122) as u32;
        (((self.state >> 64) as u64) ^ (self.state as u64)).rotate_right(rot)
    }

    /// A double uniform in [0, 1): the top 53 bits of the next 64.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// The state `n` draws later (the LCG's jump, in log n steps).
    pub fn advance(&mut self, mut n: u64) {
        let (mut acc_mult, mut acc_plus) = (1u128, 0u128);
        let (mut mult, mut plus) = (MULT, self.inc);
        while n > 0 {
            if n & 1 == 1 {
                acc_mult = acc_mult.wrapping_mul(mult);
                acc_plus = acc_plus.wrapping_mul(mult).wrapping_add(plus);
            }
            plus = mult.wrapping_add(1).wrapping_mul(plus);
            mult = mult.wrapping_mul(mult);
            n >>= 1;
        }
        self.state = acc_mult.wrapping_mul(self.state).wrapping_add(acc_plus);
    }

    /// A Poisson count of mean `lam` (finite, >= 0), as `Generator.poisson` draws it.
    pub fn poisson(&mut self, lam: f64) -> i64 {
        if lam >= 10.0 {
            self.poisson_ptrs(lam)
        } else if lam == 0.0 {
            0
        } else {
            // multiply uniforms until the product falls to exp(-lam)
            let limit = (-lam).exp();
            let mut k = 0;
            let mut prod = 1.0;
            loop {
                prod *= self.next_f64();
                if prod > limit {
                    k += 1;
                } else {
                    return k;
                }
            }
        }
    }

    /// W. Hörmann, "The transformed rejection method for generating Poisson
    /// random variables", Insurance: Mathematics and Economics 12 (1993) 39-45.
    fn poisson_ptrs(&mut self, lam: f64) -> i64 {
        let slam = lam.sqrt();
        let loglam = lam.ln();
        let b = 0.931 + 2.53 * slam;
        let a = -0.059 + 0.02483 * b;
        let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let v_r = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.next_f64() - 0.5;
            let v = self.next_f64();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + lam + 0.43).floor() as i64;
            if us >= 0.07 && v <= v_r {
                return k;
            }
            if k < 0 || (us < 0.013 && v > us) {
                continue;
            }
            let lhs = v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln();
            if lhs <= -lam + k as f64 * loglam - log_gamma((k + 1) as f64) {
                return k;
            }
        }
    }
}

/// ln(2 pi), the double nearest it.
const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// ln Gamma(x) for x >= 1 (Zhang and Jin, "Computation of Special
/// Functions", 1996: Stirling's series with ten terms, from x + n >= 7 down
/// by the recurrence), the series numpy's Poisson draws use.
fn log_gamma(x: f64) -> f64 {
    const A: [f64; 10] = [
        8.333_333_333_333_333e-2,
        -2.777_777_777_777_778e-3,
        7.936_507_936_507_937e-4,
        -5.952_380_952_380_952e-4,
        8.417_508_417_508_418e-4,
        -1.917_526_917_526_918e-3,
        6.410_256_410_256_41e-3,
        -2.955_065_359_477_124e-2,
        1.796_443_723_688_307e-1,
        -1.392_432_216_905_9,
    ];
    if x == 1.0 || x == 2.0 {
        return 0.0;
    }
    let n = if x <= 7.0 { (7.0 - x) as i64 } else { 0 };
    let mut x0 = x + n as f64;
    let x2 = 1.0 / (x0 * x0);
    let mut s = A[9];
    for &c in A[..9].iter().rev() {
        s *= x2;
        s += c;
    }
    let mut gl = s / x0 + 0.5 * LN_2PI + (x0 - 0.5) * x0.ln() - x0;
    for _ in 0..n {
        gl -= (x0 - 1.0).ln();
        x0 -= 1.0;
    }
    gl
}

/// The PCG64 a `numpy.random.SeedSequence` of `entropy` (its 32-bit words,
/// no spawn key, the default pool of 4) seeds, as `numpy.random.default_rng`
/// makes it: the pool mixed from the entropy, 4 64-bit words drawn from it,
/// the LCG seeded with the first two as its state and the last two as its
/// stream.
pub fn seed_sequence(entropy: &[u32]) -> Pcg64 {
    const INIT_A: u32 = 0x43b0_d7e5;
    const MULT_A: u32 = 0x931e_8875;
    const INIT_B: u32 = 0x8b51_f9dd;
    const MULT_B: u32 = 0x58f3_8ded;
    const MIX_L: u32 = 0xca01_f9dd;
    const MIX_R: u32 = 0x4973_f715;
    let mut hc = INIT_A;
    let mut hash = |v: u32| {
        let mut v = v ^ hc;
        hc = hc.wrapping_mul(MULT_A);
        v = v.wrapping_mul(hc);
        v ^ (v >> 16)
    };
    let mix = |x: u32, y: u32| {
        let r = MIX_L.wrapping_mul(x).wrapping_sub(MIX_R.wrapping_mul(y));
        r ^ (r >> 16)
    };
    let mut pool = [0u32; 4];
    for (i, p) in pool.iter_mut().enumerate() {
        *p = hash(entropy.get(i).copied().unwrap_or(0));
    }
    for src in 0..4 {
        for dst in 0..4 {
            if src != dst {
                let h = hash(pool[src]);
                pool[dst] = mix(pool[dst], h);
            }
        }
    }
    for &e in entropy.iter().skip(4) {
        for p in pool.iter_mut() {
            let h = hash(e);
            *p = mix(*p, h);
        }
    }
    let mut hb = INIT_B;
    let mut w = [0u64; 4];
    for i in 0..8 {
        let mut v = pool[i % 4] ^ hb;
        hb = hb.wrapping_mul(MULT_B);
        v = v.wrapping_mul(hb);
        v ^= v >> 16;
        w[i / 2] |= (v as u64) << (32 * (i % 2));
    }
    let init_state = ((w[0] as u128) << 64) | w[1] as u128;
    let init_seq = ((w[2] as u128) << 64) | w[3] as u128;
    let mut r = Pcg64 {
        state: 0,
        inc: (init_seq << 1) | 1,
    };
    r.next_u64();
    r.state = r.state.wrapping_add(init_state);
    r.next_u64();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_2pi_is_the_logarithm_the_runtime_computes() {
        let two_pi = std::hint::black_box(2.0 * std::f64::consts::PI);
        assert_eq!(two_pi.ln(), LN_2PI);
    }

    #[test]
    fn advance_is_as_many_draws() {
        let mut a = Pcg64 {
            state: 0x1234_5678_9abc_def0_0fed_cba9_8765_4321,
            inc: 0x5851_f42d_4c95_7f2d_1405_7b7e_f767_814f | 1,
        };
        let mut b = a;
        for n in [0u64, 1, 2, 3, 17, 1000] {
            for _ in 0..n {
                a.next_u64();
            }
            b.advance(n);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn log_gamma_of_integers_is_the_log_factorial() {
        let mut f = 0.0f64;
        for k in 1..60 {
            // ln((k)!) = ln Gamma(k + 1)
            f += (k as f64).ln();
            let g = log_gamma((k + 1) as f64);
            assert!((g - f).abs() <= 1e-12 * f.max(1.0), "k={k}: {g} vs {f}");
        }
    }
}
