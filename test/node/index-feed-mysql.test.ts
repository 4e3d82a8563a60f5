import { indexFeedContract } from "../contract/index-feed-contract";
import { useMysqlBackend } from "./mysql-backend";

indexFeedContract(useMysqlBackend());
