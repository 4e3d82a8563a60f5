import { env } from "cloudflare:test";
import { d1Driver } from "../../storage/d1-driver";
import { sqlStore } from "../../storage/sql-store";
import type { Backend } from "../contract/fixtures";
import { slackbotContract } from "../contract/slackbot-contract";

slackbotContract(async (): Promise<Backend> => {
  const driver = d1Driver(env.DB);
  return { name: "d1", driver, store: sqlStore(driver) };
});
