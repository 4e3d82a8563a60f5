// Numbers from Worker vars (wrangler.toml [vars]): unset means the default.

/** A positive number from a var, or the default when unset; anything else is a configuration error. */
export function positiveVar(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${value}"`);
  return n;
}

/**
 * A whole number in 1..max from a var, or the default when unset. A bad
 * value is logged and the default used: a typo in a tuning knob should not
 * take the Worker down.
 */
export function wholeVarOr(name: string, value: string | undefined, fallback: number, max = Infinity): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (Number.isInteger(n) && n >= 1 && n <= max) return n;
  console.error(`${name} must be a whole number from 1 to ${max}, got "${value}"; using ${fallback}`);
  return fallback;
}
