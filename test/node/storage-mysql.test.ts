import { convergenceContract } from "../contract/convergence";
import { storageContract } from "../contract/storage-contract";
import { useMysqlBackend } from "./mysql-backend";

const open = useMysqlBackend();

storageContract(open);
convergenceContract(open);
