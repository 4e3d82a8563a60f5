import { type FeatureRow, MAX_ROW_KEY, MAX_ROW_KIND } from "./feature-store";

// Validation of feature store rows at the edge: a kind, a key and counts.
// Values are numbers or short arrays of numbers (embedding vectors) and
// nothing else: no text can enter the feature store, so none can leak into
// training data or logs. The one exception is the snapshot's `meta` row,
// which may name its dataset and embedding run in short strings.

const KIND = new RegExp(`^[a-z_]{1,${MAX_ROW_KIND}}$`);
/** Ids joined by single spaces for pairs ("U1 C7"). */
const KEY = new RegExp(`^(?=.{1,${MAX_ROW_KEY}}$)[A-Za-z0-9_:.@-]+( [A-Za-z0-9_:.@-]+)*$`);
const MAX_META_STRING = 100;
const MAX_FIELDS = 64;
const MAX_VECTOR = 256;

export type RowCheck = { ok: true; value: FeatureRow } | { ok: false; message: string };

export function parseFeatureRow(value: unknown): RowCheck {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, message: "a row is an object { kind, key, data }" };
  }
  const { kind, key, data, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return { ok: false, message: `unknown field(s) ${Object.keys(rest).join(", ")}` };
  if (typeof kind !== "string" || !KIND.test(kind))
    return { ok: false, message: `kind must be 1-${MAX_ROW_KIND} of a-z _` };
  if (typeof key !== "string" || !KEY.test(key)) {
    return {
      ok: false,
      message: `key must be 1-${MAX_ROW_KEY} of A-Z a-z 0-9 _ : . @ - (ids joined by single spaces)`,
    };
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return { ok: false, message: "data must be an object of counts" };
  }
  const fields = Object.entries(data as Record<string, unknown>);
  if (fields.length > MAX_FIELDS) return { ok: false, message: `data has more than ${MAX_FIELDS} fields` };
  for (const [name, v] of fields) {
    if (!/^[A-Za-z0-9_]{1,40}$/.test(name)) {
      return { ok: false, message: `data field "${name.slice(0, 40)}" is not A-Z a-z 0-9 _` };
    }
    if (kind === "meta" && (v === null || (typeof v === "string" && v.length <= MAX_META_STRING))) continue;
    const numbers = Array.isArray(v) ? v : [v];
    if (Array.isArray(v) && v.length > MAX_VECTOR)
      return { ok: false, message: `data.${name} has more than ${MAX_VECTOR} values` };
    if (!numbers.every((n) => typeof n === "number" && Number.isFinite(n))) {
      return { ok: false, message: `data.${name} must be a number or an array of numbers (ids and counts only)` };
    }
  }
  return { ok: true, value: { kind, key, data: JSON.stringify(data) } };
}
