import { convergenceContract } from "../contract/convergence";
import { crashContract } from "../contract/crash-contract";
import { storageContract } from "../contract/storage-contract";
import { useMysqlBackend } from "./mysql-backend";

const open = useMysqlBackend();

storageContract(open);
convergenceContract(open);
crashContract(open);
