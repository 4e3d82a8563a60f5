import { connectionsContract } from "../contract/connections-contract";
import { useMysqlBackend } from "./mysql-backend";

connectionsContract(useMysqlBackend());
