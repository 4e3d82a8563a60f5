import { env } from "cloudflare:test";
import { d1Driver } from "../../storage/d1-driver";
import { sqlStore } from "../../storage/sql-store";
import { convergenceContract } from "../contract/convergence";
import { crashContract } from "../contract/crash-contract";
import type { Backend } from "../contract/fixtures";
import { storageContract } from "../contract/storage-contract";

const open = async (): Promise<Backend> => {
  const driver = d1Driver(env.DB);
  return { name: "d1", driver, store: sqlStore(driver) };
};

storageContract(open);
convergenceContract(open);
crashContract(open);
