import { describe, expect, it } from 'vitest'
import { hedgesG, incompleteBeta, logGamma, mean, sampleStd, studentTCdf, studentTQuantile, welchTTest } from './stats'

// Reference values from mpmath at 30 digits (mpmath.betainc(a, b, 0, x, regularized=True)), an independent
// arbitrary-precision implementation, and from closed forms where they exist.
describe('incompleteBeta', () => {
  it('matches closed forms', () => {
    for (const x of [0.1, 0.37, 0.9]) expect(incompleteBeta(1, 1, x)).toBeCloseTo(x, 14) // uniform
    expect(incompleteBeta(2, 3, 0.4)).toBeCloseTo(0.5248, 14) // polynomial: 6x²−8x³+3x⁴
    expect(incompleteBeta(7.5, 7.5, 0.5)).toBeCloseTo(0.5, 14) // symmetry
    expect(incompleteBeta(0.5, 0.5, 0.1)).toBeCloseTo((2 / Math.PI) * Math.asin(Math.sqrt(0.1)), 13) // arcsine law
  })

  it('matches mpmath', () => {
    expect(incompleteBeta(10, 20, 0.3)).toBeCloseTo(0.3640040810719442, 12)
    expect(incompleteBeta(200, 300, 0.41)).toBeCloseTo(0.6776281647721789, 10)
    expect(incompleteBeta(1.5, 0.5, 0.999)).toBeCloseTo(0.9597433418849682, 12)
  })

  it('logGamma matches factorials', () => {
    expect(logGamma(1)).toBeCloseTo(0, 13)
    expect(logGamma(10)).toBeCloseTo(Math.log(362880), 11)
    expect(logGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 13)
  })
})

describe('studentTCdf', () => {
  it('matches known values', () => {
    expect(studentTCdf(1, 1)).toBeCloseTo(0.75, 14) // Cauchy: 1/2 + atan(1)/π
    expect(studentTCdf(0, 4)).toBe(0.5)
    expect(studentTCdf(2.0, 3)).toBeCloseTo(0.9303370157205785, 12)
    expect(studentTCdf(-1.5, 7.3)).toBeCloseTo(0.08778154640154302, 12)
    expect(studentTCdf(0.3, 100.5)).toBeCloseTo(0.6176016068039765, 12)
    expect(studentTCdf(12, 2.5)).toBeCloseTo(0.9985818924849609, 12)
    // Textbook table: the two-sided 5% critical value at df = 10 is 2.228.
    expect(2 * (1 - studentTCdf(2.228, 10))).toBeCloseTo(0.05, 3)
  })
})

describe('welchTTest', () => {
  it('matches mpmath on two examples', () => {
    const r = welchTTest([1, 2, 3, 4], [2.5, 3.5, 6])!
    expect(r.t).toBeCloseTo(-1.224744871391589, 12)
    expect(r.df).toBeCloseTo(3.490125673249551, 12)
    expect(r.p).toBeCloseTo(0.2968516006717221, 12)
    expect(r.diff).toBeCloseTo(2.5 - 4, 14)
    const s = welchTTest([2.294, 2.299, 2.289], [2.3093, 2.312, 2.305])!
    expect(s.t).toBeCloseTo(-4.178687467704983, 10)
    expect(s.df).toBeCloseTo(3.597177940217367, 10)
    expect(s.p).toBeCloseTo(0.01735338344585397, 10)
  })

  it('gives the 95 % confidence interval of the difference that scipy gives', () => {
    // scipy 1.17 stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    const r = welchTTest([1, 2, 3, 4], [2.5, 3.5, 6])!
    expect(r.ci95[0]).toBeCloseTo(-5.105606021882218, 9)
    expect(r.ci95[1]).toBeCloseTo(2.1056060218822177, 9)
    const s = welchTTest([2.294, 2.299, 2.289], [2.3093, 2.312, 2.305])!
    expect(s.ci95[0]).toBeCloseTo(-0.025026959460284687, 9)
    expect(s.ci95[1]).toBeCloseTo(-0.0045063738730485026, 9)
  })

  it('t quantiles match scipy.stats.t.ppf, and are symmetric', () => {
    expect(studentTQuantile(0.975, 3.7)).toBeCloseTo(2.8675207071911895, 9)
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(12.706204736174694, 8)
    expect(studentTQuantile(0.975, 100)).toBeCloseTo(1.9839715185235518, 9)
    expect(studentTQuantile(0.025, 3.7)).toBeCloseTo(-2.8675207071911895, 9)
    expect(() => studentTQuantile(1, 3)).toThrow(/q must be in/)
  })

  it("Hedges' g matches the textbook formula (pooled std, small-sample correction)", () => {
    expect(hedgesG([1, 2, 3, 4], [2.5, 3.5, 6])).toBeCloseTo(-0.8329016506052046, 12)
    expect(hedgesG([1], [1, 2])).toBeNull()
    expect(hedgesG([1, 1], [1, 1])).toBeNull()
  })

  it('needs two values per group and handles zero variance', () => {
    expect(welchTTest([1], [1, 2])).toBeNull()
    expect(welchTTest([1, 1], [1, 1])!.p).toBe(1)
    expect(welchTTest([1, 1], [2, 2])!.p).toBe(0)
  })

  it('mean and sample std', () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5)
    expect(sampleStd([2, 4, 4, 4, 5, 5, 7, 9])).toBeCloseTo(Math.sqrt(32 / 7), 14)
    expect(sampleStd([3])).toBeNaN()
  })
})
