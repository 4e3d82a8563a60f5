import type { FeatureRecord } from "../src/models/manifest";

// The candidate batch every side of `npm run bench:recommend` scores: the
// same rows in workerd (ort-web, plain TS) and in Node (ort-node). Values
// follow the distributions training/fixture_models.py trained the fixtures
// on, so trees take realistic paths. Deterministic (seeded), no dependencies.

export const BATCH = 500;

/** mulberry32: a tiny seeded PRNG, enough for bench data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` candidates named like the fixture models' features; about 3% of values missing (defaulted). */
export function benchRecords(n = BATCH, seed = 20261124): FeatureRecord[] {
  const rand = prng(seed);
  const poisson = (mean: number) => {
    // Knuth: fine for small means.
    const limit = Math.exp(-mean);
    let k = 0;
    for (let p = rand(); p > limit; p *= rand()) k++;
    return k;
  };
  const maybe = (v: number) => (rand() < 0.03 ? undefined : v);
  return Array.from({ length: n }, () => ({
    shared_channels: maybe(poisson(3)),
    shared_teams: maybe(poisson(1)),
    messages_30d: maybe(-40 * Math.log(1 - rand())),
    days_since_contact: maybe(-60 * Math.log(1 - rand())),
    same_domain: maybe(rand() < 0.4 ? 1 : 0),
    mutual_contacts: maybe(poisson(5)),
    tenure_days: maybe(1 + rand() * 1999),
    timezone_gap_h: maybe(Math.floor(rand() * 13)),
    is_guest: maybe(rand() < 0.1 ? 1 : 0),
    profile_completeness: maybe(rand()),
  }));
}
