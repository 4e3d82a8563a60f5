import { systemClock } from "../src/clock";
import type { ReadoutPorts, RecLogObject, RecLogReader } from "../src/recommend/readout";
import { type BundledModelStore, isolateBundledModels } from "./models/bundled";
import { r2ExperimentStore } from "./models/experiment-store";

// Reading the rec logs back (the writer is rec-log-store.ts): the objects of
// one source and day, listed page by page, and their text. The readout
// (src/recommend/readout.ts) lists a whole range before it reads anything,
// so the byte cap is checked on the listing's sizes.

/** Most bytes of logs one readout reads by default: well inside an isolate's 128 MB once parsed. */
export const READOUT_MAX_BYTES_DEFAULT = 32 * 1024 * 1024;

/** The objects under rec-logs/source=<source>/day=<day>/, every page of the listing. */
export function r2RecLogReader(bucket: R2Bucket): RecLogReader {
  return {
    async list(source, day) {
      const prefix = `rec-logs/source=${safe(source)}/day=${day}/`;
      const out: RecLogObject[] = [];
      let cursor: string | undefined;
      do {
        const page = await bucket.list({ prefix, cursor });
        for (const o of page.objects) out.push({ key: o.key, size: o.size });
        cursor = page.truncated ? page.cursor : undefined;
      } while (cursor);
      return out;
    },
    async read(key) {
      const o = await bucket.get(key);
      return o ? o.text() : null;
    },
  };
}

/** As src/recommend/logs.ts names the source's folder. */
function safe(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, "_");
}

/** The readout's ports over the Worker's bindings; `bundled` decides each source's default experiment. */
export function readoutPortsFor(env: Env, bundled: BundledModelStore = isolateBundledModels()): ReadoutPorts {
  const configured = Number((env as { REC_READOUT_MAX_BYTES?: string }).REC_READOUT_MAX_BYTES);
  return {
    logs: r2RecLogReader(env.REC_LOG_STORE),
    experiments: r2ExperimentStore({ bucket: env.MODELS, bundled: bundled.keys() }),
    clock: systemClock,
    maxBytes: Number.isFinite(configured) && configured > 0 ? configured : READOUT_MAX_BYTES_DEFAULT,
  };
}
