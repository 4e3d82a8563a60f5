import { sharedChannelsContract } from "../contract/shared-channels-contract";
import { useMysqlBackend } from "./mysql-backend";

sharedChannelsContract(useMysqlBackend());
