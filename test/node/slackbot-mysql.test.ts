import { slackbotContract } from "../contract/slackbot-contract";
import { useMysqlBackend } from "./mysql-backend";

slackbotContract(useMysqlBackend());
