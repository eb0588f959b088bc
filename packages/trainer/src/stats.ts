/**
 * Statistics for `compare`: mean, sample standard deviation, and Welch's two-sided t-test, whose Student-t
 * CDF we compute ourselves through the regularized incomplete beta function (Numerical Recipes' Lentz
 * continued fraction): a dozen lines instead of a statistics dependency.
 */

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length
}

/** Sample standard deviation (n − 1 in the denominator); NaN for fewer than two values. */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN
  const m = mean(xs)
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1))
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~15 significant digits). */
export function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
    9.9843695780195716e-6, 1.5056327351493116e-7,
  ]
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x) // reflection
  x -= 1
  let a = c[0]
  const t = x + 7.5
  for (let i = 1; i < 9; i++) a += c[i] / (x + i)
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a)
}

/** Continued fraction for I_x(a, b) (modified Lentz), converging fast for x < (a+1)/(a+b+2). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const TINY = 1e-300
  let c = 1
  let d = 1 - ((a + b) * x) / (a + 1)
  if (Math.abs(d) < TINY) d = TINY
  d = 1 / d
  let h = d
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2)) // even step
    d = 1 + aa * d
    if (Math.abs(d) < TINY) d = TINY
    c = 1 + aa / c
    if (Math.abs(c) < TINY) c = TINY
    d = 1 / d
    h *= d * c
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1)) // odd step
    d = 1 + aa * d
    if (Math.abs(d) < TINY) d = TINY
    c = 1 + aa / c
    if (Math.abs(c) < TINY) c = TINY
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < 1e-15) return h
  }
  return h // not reached for the a, b, x a t-test produces
}

/** Regularized incomplete beta function I_x(a, b), a, b > 0, 0 ≤ x ≤ 1. */
export function incompleteBeta(a: number, b: number, x: number): number {
  if (!(a > 0 && b > 0)) throw new RangeError(`incompleteBeta needs a, b > 0, got a=${a}, b=${b}`)
  if (!(x >= 0 && x <= 1)) throw new RangeError(`incompleteBeta needs 0 ≤ x ≤ 1, got ${x}`)
  if (x === 0 || x === 1) return x
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x))
  // Use the symmetry I_x(a,b) = 1 − I_{1−x}(b,a) where the continued fraction converges slowly.
  return x < (a + 1) / (a + b + 2) ? (front * betaContinuedFraction(a, b, x)) / a : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b
}

/** CDF of Student's t distribution with `df` (> 0, not necessarily integer) degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`degrees of freedom must be > 0, got ${df}`)
  if (t === Infinity) return 1
  if (t === -Infinity) return 0
  const tail = 0.5 * incompleteBeta(df / 2, 0.5, df / (df + t * t)) // P(T > |t|)
  return t > 0 ? 1 - tail : tail
}

export interface WelchResult {
  /** mean(a) − mean(b). */
  diff: number
  t: number
  /** Welch–Satterthwaite degrees of freedom. */
  df: number
  /** Two-sided p-value. */
  p: number
  /** 95 % confidence interval of mean(a) − mean(b) (Welch: t quantile at df, unequal variances). */
  ci95: [number, number]
}

/**
 * Welch's unequal-variance t-test of mean(a) = mean(b), two-sided. Needs at least two values per group;
 * returns null otherwise. When both groups have zero variance the test degenerates: p = 1 for equal means,
 * 0 otherwise (t = ±∞, df = NaN).
 */
export function welchTTest(a: readonly number[], b: readonly number[]): WelchResult | null {
  if (a.length < 2 || b.length < 2) return null
  const va = sampleStd(a) ** 2 / a.length
  const vb = sampleStd(b) ** 2 / b.length
  const diff = mean(a) - mean(b)
  const se2 = va + vb
  if (se2 === 0) return { diff, t: diff === 0 ? 0 : Math.sign(diff) * Infinity, df: NaN, p: diff === 0 ? 1 : 0, ci95: [diff, diff] }
  const t = diff / Math.sqrt(se2)
  const df = se2 ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1))
  const p = incompleteBeta(df / 2, 0.5, df / (df + t * t))
  const half = studentTQuantile(0.975, df) * Math.sqrt(se2)
  return { diff, t, df, p, ci95: [diff - half, diff + half] }
}

/** The q-quantile of Student's t with df degrees of freedom (0 < q < 1), by bisection on studentTCdf. */
export function studentTQuantile(q: number, df: number): number {
  if (!(q > 0 && q < 1)) throw new RangeError(`studentTQuantile: q must be in (0, 1), got ${q}`)
  if (q === 0.5) return 0
  if (q < 0.5) return -studentTQuantile(1 - q, df)
  let lo = 0
  let hi = 1
  while (studentTCdf(hi, df) < q) hi *= 2
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2
    if (studentTCdf(mid, df) < q) lo = mid
    else hi = mid
  }
  return (lo + hi) / 2
}

/**
 * Hedges' g: the standardized mean difference (mean(a) − mean(b)) / pooled sample std, with the small-sample
 * correction 1 − 3 / (4 (n_a + n_b) − 9). Null with fewer than two values per group or zero pooled variance.
 */
export function hedgesG(a: readonly number[], b: readonly number[]): number | null {
  const na = a.length
  const nb = b.length
  if (na < 2 || nb < 2) return null
  const pooled = Math.sqrt(((na - 1) * sampleStd(a) ** 2 + (nb - 1) * sampleStd(b) ** 2) / (na + nb - 2))
  if (pooled === 0) return null
  return ((mean(a) - mean(b)) / pooled) * (1 - 3 / (4 * (na + nb) - 9))
}
