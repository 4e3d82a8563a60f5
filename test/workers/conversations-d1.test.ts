import { env } from "cloudflare:test";
import { d1Driver } from "../../storage/d1-driver";
import { sqlStore } from "../../storage/sql-store";
import { conversationsContract } from "../contract/conversations-contract";
import type { Backend } from "../contract/fixtures";

const open = async (): Promise<Backend> => {
  const driver = d1Driver(env.DB);
  return { name: "d1", driver, store: sqlStore(driver) };
};

conversationsContract(open);
