import { connectPrefsContract } from "../contract/connect-prefs-contract";
import { useMysqlBackend } from "./mysql-backend";

connectPrefsContract(useMysqlBackend());
