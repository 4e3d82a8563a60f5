import { featureStoreContract } from "../contract/feature-store-contract";
import { useMysqlBackend } from "./mysql-backend";

featureStoreContract(useMysqlBackend());
