// Errors shaped like PlanetScale's. An SQL error is answered with HTTP 200 and
// `{ session, error: { code, message } }`; the driver throws
// `new DatabaseError(error.message, 400, error)`. Request-level problems
// (auth, bad JSON, unknown path) get a 4xx with the same `error` body, which
// the driver also turns into a DatabaseError (with that HTTP status).
//
// Messages follow PlanetScale's layout so code that matches on them behaves the
// same locally:
//   target: <db>.-.primary: vttablet: rpc error: code = AlreadyExists
//   desc = Duplicate entry '1' for key 'PRIMARY' (errno 1062) (sqlstate 23000)
//   (CallerID: root): Sql: "insert into ...", BindVars: {}

/** Vitess `vtrpc.Code` names, as the `code` of an error body. */
export type VtCode =
  | "CANCELED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "UNAUTHENTICATED";

export interface WireError {
  code: VtCode;
  message: string;
}

const GRPC_NAMES: Record<VtCode, string> = {
  CANCELED: "Canceled",
  UNKNOWN: "Unknown",
  INVALID_ARGUMENT: "InvalidArgument",
  DEADLINE_EXCEEDED: "DeadlineExceeded",
  NOT_FOUND: "NotFound",
  ALREADY_EXISTS: "AlreadyExists",
  PERMISSION_DENIED: "PermissionDenied",
  RESOURCE_EXHAUSTED: "ResourceExhausted",
  FAILED_PRECONDITION: "FailedPrecondition",
  ABORTED: "Aborted",
  UNIMPLEMENTED: "Unimplemented",
  INTERNAL: "Internal",
  UNAVAILABLE: "Unavailable",
  UNAUTHENTICATED: "Unauthenticated",
};

// MySQL errno -> vtrpc code, after vitess `vterrors`/`sqlerror` (abridged).
const ERRNO_CODES = new Map<number, VtCode>();
function codes(code: VtCode, errnos: number[]): void {
  for (const errno of errnos) ERRNO_CODES.set(errno, code);
}
codes("ALREADY_EXISTS", [1007, 1050, 1062, 1086, 1125, 1586]);
codes("NOT_FOUND", [1032, 1049, 1051, 1054, 1091, 1094, 1109, 1146, 1176, 1305, 1449]);
codes("PERMISSION_DENIED", [1044, 1045, 1095, 1142, 1143, 1227]);
codes("RESOURCE_EXHAUSTED", [1021, 1037, 1038, 1040, 1041, 1114, 1135, 1153, 1203, 1206, 1226]);
codes("DEADLINE_EXCEEDED", [1205]);
codes("ABORTED", [1078, 1080, 1152, 1213]);
codes("CANCELED", [1317]);
codes("UNAVAILABLE", [1053, 2002, 2003, 2006, 2013]);
codes("UNIMPLEMENTED", [1235]);
codes(
  "FAILED_PRECONDITION",
  [
    1046, 1048, 1099, 1100, 1104, 1148, 1173, 1179, 1192, 1216, 1217, 1223, 1241, 1242, 1288, 1290, 1364, 1451, 1452,
    1792, 3819, 4025,
  ],
);
codes(
  "INVALID_ARGUMENT",
  [
    1022, 1052, 1055, 1056, 1057, 1058, 1059, 1060, 1061, 1063, 1064, 1065, 1066, 1067, 1068, 1069, 1070, 1071, 1072,
    1073, 1074, 1075, 1090, 1101, 1102, 1103, 1110, 1111, 1113, 1117, 1118, 1138, 1139, 1140, 1149, 1166, 1171, 1193,
    1210, 1214, 1215, 1222, 1231, 1232, 1248, 1264, 1265, 1292, 1366, 1367, 1406, 1411, 1525, 1690,
  ],
);

/** The vtrpc code PlanetScale would report for a MySQL errno. */
export function codeForErrno(errno: number | undefined): VtCode {
  if (errno === undefined) return "UNKNOWN";
  return ERRNO_CODES.get(errno) ?? "UNKNOWN";
}

const MAX_SQL_IN_MESSAGE = 512;

export interface ErrorContext {
  database: string;
  callerId: string;
  sql?: string;
}

/** Wraps a description in PlanetScale's vttablet error layout. */
export function vitessError(code: VtCode, desc: string, ctx: ErrorContext): WireError {
  let message = `target: ${ctx.database}.-.primary: vttablet: rpc error: code = ${GRPC_NAMES[code]} desc = ${desc} (CallerID: ${ctx.callerId})`;
  if (ctx.sql !== undefined) {
    const sql = ctx.sql.length > MAX_SQL_IN_MESSAGE ? `${ctx.sql.slice(0, MAX_SQL_IN_MESSAGE)}...` : ctx.sql;
    message += `: Sql: ${JSON.stringify(sql)}, BindVars: {}`;
  }
  return { code, message };
}

interface MysqlErrorLike {
  errno?: number;
  sqlState?: string;
  sqlMessage?: string;
  message?: string;
  code?: string;
}

/** Turns a mysql2 error (server error or connection failure) into an error body. */
export function sqlError(error: unknown, ctx: ErrorContext): WireError {
  const e = (typeof error === "object" && error !== null ? error : { message: String(error) }) as MysqlErrorLike;
  if (typeof e.errno === "number" && e.sqlMessage !== undefined) {
    const desc = `${e.sqlMessage} (errno ${e.errno}) (sqlstate ${e.sqlState ?? "HY000"})`;
    return vitessError(codeForErrno(e.errno), desc, ctx);
  }
  // Not a server error: the MySQL connection itself failed (refused, lost, ...).
  const desc = `${e.message ?? "unknown error"}${e.code ? ` (${e.code})` : ""}`;
  return vitessError("UNAVAILABLE", desc, ctx);
}
