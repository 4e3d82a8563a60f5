import { env } from "cloudflare:test";
import { d1Driver } from "../../storage/d1-driver";
import { sqlStore } from "../../storage/sql-store";
import type { Backend } from "../contract/fixtures";
import { sharedChannelsContract } from "../contract/shared-channels-contract";

sharedChannelsContract(async (): Promise<Backend> => {
  const driver = d1Driver(env.DB);
  return { name: "d1", driver, store: sqlStore(driver) };
});
