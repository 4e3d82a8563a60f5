// MySQL column metadata -> Vitess `query.Field` (as PlanetScale serialises it
// with protojson), and raw text-protocol cells -> Vitess `query.Row`.
//
// The driver (`@planetscale/database` cast.js) decides how to decode a value
// from `field.type` (INT8..UINT64, FLOAT32/64, DECIMAL, DATE/DATETIME/
// TIMESTAMP/TIME, YEAR, JSON) and, for everything else, from
// `field.charset === 63` (binary -> Uint8Array, otherwise UTF-8 text).
//
// The type *name* follows Vitess, which calls any string column carrying
// BINARY_FLAG binary. MySQL and MariaDB set that flag for text in a `_bin`
// collation too (our utf8mb4_bin ids), so PlanetScale reports those as
// VARBINARY/BINARY/BLOB with their text charset, and the driver still decodes
// them as strings because it only looks at the charset. Reporting the same
// pair here keeps the tests on the path production takes.
import type { FieldPacket } from "mysql2/promise";

/** Vitess `query.Field` as JSON (zero values omitted, like protojson). */
export interface WireField {
  name: string;
  type: string;
  table?: string;
  orgTable?: string;
  database?: string;
  orgName?: string;
  columnLength?: number;
  charset?: number;
  decimals?: number;
  flags?: number;
}

/** Vitess `query.Row`: int64 lengths (as strings, -1 = NULL) + base64 bytes. */
export interface WireRow {
  lengths: string[];
  values?: string;
}

/** A text-protocol cell as mysql2 hands it over with `typeCast: false`. */
export type RawCell = Buffer | null;

export const BINARY_CHARSET = 63;

// Column definition flags (include/mysql_com.h).
const UNSIGNED_FLAG = 32;
const BINARY_FLAG = 128;
const ENUM_FLAG = 256;
const SET_FLAG = 2048;

// MySQL wire column types (include/field_types.h).
const T = {
  DECIMAL: 0x00,
  TINY: 0x01,
  SHORT: 0x02,
  LONG: 0x03,
  FLOAT: 0x04,
  DOUBLE: 0x05,
  NULL: 0x06,
  TIMESTAMP: 0x07,
  LONGLONG: 0x08,
  INT24: 0x09,
  DATE: 0x0a,
  TIME: 0x0b,
  DATETIME: 0x0c,
  YEAR: 0x0d,
  NEWDATE: 0x0e,
  VARCHAR: 0x0f,
  BIT: 0x10,
  VECTOR: 0xf2,
  JSON: 0xf5,
  NEWDECIMAL: 0xf6,
  ENUM: 0xf7,
  SET: 0xf8,
  TINY_BLOB: 0xf9,
  MEDIUM_BLOB: 0xfa,
  LONG_BLOB: 0xfb,
  BLOB: 0xfc,
  VAR_STRING: 0xfd,
  STRING: 0xfe,
  GEOMETRY: 0xff,
} as const;

function intType(bits: string, flags: number): string {
  return flags & UNSIGNED_FLAG ? `UINT${bits}` : `INT${bits}`;
}

/**
 * Vitess type name for a MySQL column, following vitess `sqltypes.MySQLToType`
 * + `modifyType`: a string type is binary when it carries BINARY_FLAG (as for
 * a utf8mb4_bin column), or when its charset is binary (63) even without it.
 */
export function vitessType(columnType: number, flags: number, charset: number, extendedFormat?: string): string {
  const binary = (flags & BINARY_FLAG) !== 0 || charset === BINARY_CHARSET;
  switch (columnType) {
    case T.TINY:
      return intType("8", flags);
    case T.SHORT:
      return intType("16", flags);
    case T.INT24:
      return intType("24", flags);
    case T.LONG:
      return intType("32", flags);
    case T.LONGLONG:
      return intType("64", flags);
    case T.FLOAT:
      return "FLOAT32";
    case T.DOUBLE:
      return "FLOAT64";
    case T.DECIMAL:
    case T.NEWDECIMAL:
      return "DECIMAL";
    case T.NULL:
      return "NULL_TYPE";
    case T.TIMESTAMP:
      return "TIMESTAMP";
    case T.DATE:
    case T.NEWDATE:
      return "DATE";
    case T.TIME:
      return "TIME";
    case T.DATETIME:
      return "DATETIME";
    case T.YEAR:
      return "YEAR";
    case T.BIT:
      return "BIT";
    case T.JSON:
      return "JSON";
    case T.ENUM:
      return "ENUM";
    case T.SET:
      return "SET";
    case T.GEOMETRY:
      return "GEOMETRY";
    case T.VECTOR:
      return "VECTOR";
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB:
    case T.BLOB:
      // MariaDB's JSON is LONGTEXT on the wire; the extended metadata says json.
      if (extendedFormat === "json") return "JSON";
      return binary ? "BLOB" : "TEXT";
    case T.VARCHAR:
    case T.VAR_STRING:
      if (extendedFormat === "json") return "JSON";
      return binary ? "VARBINARY" : "VARCHAR";
    case T.STRING:
      if (flags & ENUM_FLAG) return "ENUM";
      if (flags & SET_FLAG) return "SET";
      return binary ? "BINARY" : "CHAR";
    default:
      return binary ? "VARBINARY" : "VARCHAR";
  }
}

export function toWireField(f: FieldPacket): WireField {
  const flags = typeof f.flags === "number" ? f.flags : 0;
  const charset = f.characterSet ?? 0;
  const out: WireField = {
    name: f.name,
    type: vitessType(f.columnType ?? f.type ?? -1, flags, charset, f.extendedFormat),
  };
  // protojson omits empty strings and zero numbers; so do we.
  if (f.table) out.table = f.table;
  if (f.orgTable) out.orgTable = f.orgTable;
  const database = f.schema ?? f.db;
  if (database) out.database = database;
  if (f.orgName) out.orgName = f.orgName;
  if (f.columnLength) out.columnLength = f.columnLength;
  if (charset) out.charset = charset;
  if (f.decimals) out.decimals = f.decimals;
  if (flags) out.flags = flags;
  return out;
}

/** Encodes one row of raw cells (NULL -> length -1, no bytes). */
export function encodeRow(cells: readonly RawCell[]): WireRow {
  const n = cells.length;
  const lengths = new Array<string>(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const cell = cells[i];
    if (cell == null) {
      lengths[i] = "-1";
    } else {
      lengths[i] = String(cell.length);
      total += cell.length;
    }
  }
  if (total === 0) return { lengths };
  const bytes = Buffer.allocUnsafe(total);
  let offset = 0;
  for (let i = 0; i < n; i++) {
    const cell = cells[i];
    if (cell != null && cell.length > 0) offset += cell.copy(bytes, offset);
  }
  return { lengths, values: bytes.toString("base64") };
}
