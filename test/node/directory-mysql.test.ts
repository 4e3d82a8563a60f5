import { directoryContract } from "../contract/directory-contract";
import { useMysqlBackend } from "./mysql-backend";

const open = useMysqlBackend();

directoryContract(open);
