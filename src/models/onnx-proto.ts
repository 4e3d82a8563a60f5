// Just enough protobuf to read the ONNX graphs the model readers recognize
// (onnx-linear.ts, onnx-trees.ts): ModelProto → GraphProto → NodeProto /
// AttributeProto / ValueInfoProto / TensorProto. No schema, no generated
// code: each message is a list of its top-level fields, and the readers pick
// the field numbers they need (onnx/onnx.proto). Anything malformed throws;
// the readers turn a throw into "not recognized".

/** Protobuf wire types. */
const VARINT = 0;
const FIXED64 = 1;
const BYTES = 2;
const FIXED32 = 5;

export interface Field {
  no: number;
  wire: number;
  /**
   * VARINT: the value (ids and counts only: exact below 2^53; a negative int64 reads as a huge number).
   * FIXED32: the 32 bits, unsigned.
   */
  int: number;
  /** BYTES: the payload (a view into the model's bytes); empty otherwise. */
  bytes: Uint8Array;
}

/** Shared by every field without a payload: a graph has ~10^5 of them, and a typed array each is slow to allocate. */
const EMPTY = new Uint8Array(0);

/** A cursor over one message's bytes. Throws on anything truncated. */
class WireReader {
  at = 0;
  constructor(readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.at >= this.buf.length;
  }

  varint(): number {
    const { buf } = this;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.at >= buf.length) throw new Error("truncated varint");
      const b = buf[this.at++] as number;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
    }
    throw new Error("varint too long");
  }

  take(n: number): Uint8Array {
    if (n < 0 || this.at + n > this.buf.length) throw new Error("truncated field");
    this.at += n;
    return this.buf.subarray(this.at - n, this.at);
  }
}

/** The top-level fields of one message. Throws on malformed input. */
export function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  const r = new WireReader(buf);
  while (!r.done) {
    const key = r.varint();
    const no = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === VARINT) out.push({ no, wire, int: r.varint(), bytes: EMPTY });
    else if (wire === BYTES) out.push({ no, wire, int: 0, bytes: r.take(r.varint()) });
    else if (wire === FIXED32) {
      const b = r.take(4);
      const int =
        ((b[0] as number) | ((b[1] as number) << 8) | ((b[2] as number) << 16) | ((b[3] as number) << 24)) >>> 0;
      out.push({ no, wire, int, bytes: EMPTY });
    } else if (wire === FIXED64) r.take(8);
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const decoder = new TextDecoder();
export const text = (b: Uint8Array) => decoder.decode(b);
export const strings = (fs: Field[], no: number) =>
  fs.filter((f) => f.no === no && f.wire === BYTES).map((f) => text(f.bytes));
export const one = (fs: Field[], no: number) => fs.find((f) => f.no === no);

/** Appends the little-endian float32s of a packed run to `out`. */
function pushFloat32s(bytes: Uint8Array, out: number[]): void {
  if (bytes.byteLength % 4 !== 0) throw new Error("packed floats of a length not a multiple of 4");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at < bytes.byteLength; at += 4) out.push(view.getFloat32(at, true));
}

/** Appends the unsigned varints packed in one BYTES field to `out`. */
function pushVarints(bytes: Uint8Array, out: number[]): void {
  const r = new WireReader(bytes);
  while (!r.done) out.push(r.varint());
}

/** One NodeProto, its attributes by name (AttributeProto's own fields). */
export interface OnnxNode {
  /** `${domain}/${op_type}`: "ai.onnx.ml/LinearRegressor", "/Sigmoid". */
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Map<string, Attribute>;
}

/**
 * One AttributeProto, read straight into arrays: a tree ensemble has ~10^4
 * entries in each of a dozen repeated fields, too many for a Field apiece.
 */
export interface Attribute {
  /** i (3) and s (4) when present. */
  i: number | null;
  s: string | null;
  /** floats (7), ints (8), strings (9): packed or not, in order. */
  floats: number[];
  ints: number[];
  strings: string[];
}

export interface OnnxGraph {
  nodes: OnnxNode[];
  /** Graph inputs and outputs (ValueInfoProto), in order. */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Initializers (TensorProto) by name. */
  initializers: Map<string, Field[]>;
}

export interface ValueInfo {
  name: string;
  /** TensorProto.DataType of a tensor type (1 = FLOAT), or null for another type. */
  elemType: number | null;
  /** Each dimension: its value, or null for a symbolic or absent one; null when no shape is declared. */
  dims: (number | null)[] | null;
}

/** TypeProto → tensor_type (1) → elem_type (1), shape (2) → dim (1) → dim_value (1) | dim_param (2). */
function valueInfo(bytes: Uint8Array): ValueInfo {
  const fs = fields(bytes);
  const name = strings(fs, 1)[0] ?? "";
  const type = one(fs, 2);
  const tensor = type?.wire === BYTES ? one(fields(type.bytes), 1) : undefined;
  if (!tensor || tensor.wire !== BYTES) return { name, elemType: null, dims: null };
  const t = fields(tensor.bytes);
  const shape = one(t, 2);
  const dims =
    shape?.wire === BYTES
      ? fields(shape.bytes)
          .filter((d) => d.no === 1 && d.wire === BYTES)
          .map((d) => {
            const value = one(fields(d.bytes), 1);
            return value?.wire === VARINT ? value.int : null;
          })
      : null;
  return { name, elemType: one(t, 1)?.int ?? null, dims };
}

/** The graph of ONNX model bytes, or null when the bytes hold no graph. Throws on malformed protobuf. */
export function readGraph(onnx: Uint8Array): OnnxGraph | null {
  const graphField = one(fields(onnx), 7);
  if (!graphField || graphField.wire !== BYTES) return null;
  const graph = fields(graphField.bytes);
  const messages = (no: number) => graph.filter((f) => f.no === no && f.wire === BYTES).map((f) => f.bytes);
  const nodes = messages(1).map((bytes): OnnxNode => {
    const n = fields(bytes);
    const attrs = new Map<string, Attribute>();
    for (const a of n) if (a.no === 5 && a.wire === BYTES) attrs.set(...attribute(a.bytes));
    return {
      op: `${strings(n, 7)[0] ?? ""}/${strings(n, 4)[0] ?? ""}`,
      inputs: strings(n, 1),
      outputs: strings(n, 2),
      attrs,
    };
  });
  const initializers = new Map<string, Field[]>();
  for (const bytes of messages(5)) {
    const t = fields(bytes);
    initializers.set(strings(t, 8)[0] ?? "", t);
  }
  return { nodes, inputs: messages(11).map(valueInfo), outputs: messages(12).map(valueInfo), initializers };
}

/** Reads one AttributeProto: name (1), i (3), s (4), floats (7), ints (8), strings (9); other fields are skipped. */
function attribute(buf: Uint8Array): [string, Attribute] {
  const attr: Attribute = { i: null, s: null, floats: [], ints: [], strings: [] };
  let name = "";
  const r = new WireReader(buf);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  while (!r.done) {
    const key = r.varint();
    const no = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === VARINT) {
      const v = r.varint();
      if (no === 3) attr.i = v;
      else if (no === 8) attr.ints.push(v);
    } else if (wire === FIXED32) {
      r.take(4);
      if (no === 7) attr.floats.push(view.getFloat32(r.at - 4, true));
    } else if (wire === FIXED64) r.take(8);
    else if (wire === BYTES) {
      const bytes = r.take(r.varint());
      if (no === 1) name = text(bytes);
      else if (no === 4) attr.s = text(bytes);
      else if (no === 7) pushFloat32s(bytes, attr.floats);
      else if (no === 8) pushVarints(bytes, attr.ints);
      else if (no === 9) attr.strings.push(shortText(bytes));
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return [name, attr];
}

/** ASCII without a TextDecoder call (a tree ensemble's ~10^4 node modes); anything else decoded as UTF-8. */
function shortText(bytes: Uint8Array): string {
  if (bytes.length > 32) return text(bytes);
  let out = "";
  for (const b of bytes) {
    if (b >= 0x80) return text(bytes);
    out += String.fromCharCode(b);
  }
  return out;
}

/** AttributeProto.floats (7); null when the attribute is absent. */
export const floatsOf = (attr: Attribute | undefined): number[] | null => attr?.floats ?? null;

/** AttributeProto.ints (8); null when absent. Negative values read as numbers ≥ 2^63. */
export const intsOf = (attr: Attribute | undefined): number[] | null => attr?.ints ?? null;

/** AttributeProto.strings (9); null when absent. */
export const stringsOf = (attr: Attribute | undefined): string[] | null => attr?.strings ?? null;

/** AttributeProto.i (3), or `fallback` when the attribute is absent (0 when present without it). */
export const intOf = (attr: Attribute | undefined, fallback: number): number => (attr ? (attr.i ?? 0) : fallback);

/** AttributeProto.s (4), or `fallback` when the attribute is absent ("" when present without it). */
export const stringOf = (attr: Attribute | undefined, fallback: string): string => (attr ? (attr.s ?? "") : fallback);

/**
 * The values of an INT64 TensorProto (data_type 7) as exact numbers, from
 * raw_data (9) or int64_data (7); null for another type or a value beyond 2^53.
 */
export function int64TensorValues(tensor: Field[]): number[] | null {
  if ((one(tensor, 2)?.int ?? 0) !== 7) return null;
  const raw = one(tensor, 9);
  let values: bigint[];
  if (raw && raw.wire === BYTES) {
    if (raw.bytes.byteLength % 8 !== 0) return null;
    const view = new DataView(raw.bytes.buffer, raw.bytes.byteOffset, raw.bytes.byteLength);
    values = Array.from({ length: raw.bytes.byteLength / 8 }, (_, i) => view.getBigInt64(i * 8, true));
  } else {
    values = [];
    for (const f of tensor.filter((x) => x.no === 7 && x.wire === BYTES)) values.push(...signedVarints(f.bytes));
    if (tensor.some((x) => x.no === 7 && x.wire === VARINT)) return null; // unpacked int64_data: never written by onnx
  }
  const out = values.map(Number);
  return out.every(Number.isSafeInteger) ? out : null;
}

function signedVarints(bytes: Uint8Array): bigint[] {
  const out: bigint[] = [];
  let value = 0n;
  let shift = 0n;
  for (const b of bytes) {
    value |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if ((b & 0x80) === 0) {
      out.push(BigInt.asIntN(64, value));
      value = 0n;
      shift = 0n;
    }
  }
  if (shift !== 0n) throw new Error("truncated packed varint");
  return out;
}

/** TensorProto.dims (1), packed or not. */
export function tensorDims(tensor: Field[]): number[] {
  const dims: number[] = [];
  for (const f of tensor) {
    if (f.no !== 1) continue;
    if (f.wire === VARINT) dims.push(f.int);
    else if (f.wire === BYTES) pushVarints(f.bytes, dims);
  }
  return dims;
}
