import { conversationsContract } from "../contract/conversations-contract";
import { useMysqlBackend } from "./mysql-backend";

const open = useMysqlBackend();

conversationsContract(open);
