import { mayOperate } from "../src/auth/policy";
import { DomainError } from "../src/errors";
import { isSource, SOURCE_NAMES } from "../src/recommend/sources";
import { authorize } from "./auth";
import type { AppContext } from "./http";

/**
 * The guard of the operators' routes over one recommend source
 * (`/…/:source/…`): platform operators only, then a known source (404
 * unknown_source naming the sources). Mounted per path by each route file:
 * a "*" would apply to every /v1/admin route once mounted.
 */
export async function sourceOperatorsOnly(c: AppContext, next: () => Promise<void>): Promise<void> {
  await authorize(c, mayOperate);
  const source = c.req.param("source") ?? "";
  if (!isSource(source)) {
    throw new DomainError(
      "not_found",
      "unknown_source",
      `unknown source "${source}"; sources are ${SOURCE_NAMES.join(", ")}`,
    );
  }
  await next();
}
