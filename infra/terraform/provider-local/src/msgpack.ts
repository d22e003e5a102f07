/**
 * The subset of MessagePack that Terraform uses for DynamicValue (cty's msgpack encoding):
 * nil, booleans, integers, floats, strings, arrays, string-keyed maps, and the extension
 * type 0 that marks an unknown value ("known after apply").
 */

/** cty's unknown value: a planned attribute that only the apply will know. */
export const UNKNOWN: unique symbol = Symbol('unknown');

/** A decoded cty value. */
export type CtyValue =
  null | boolean | number | string | typeof UNKNOWN | CtyValue[] | { [key: string]: CtyValue };

/** Encodes a value the way cty's msgpack decoder reads it. */
export function encode(value: CtyValue): Buffer {
  const parts: Buffer[] = [];
  write(value, parts);
  return Buffer.concat(parts);
}

function write(value: CtyValue, out: Buffer[]): void {
  if (value === null) out.push(Buffer.from([0xc0]));
  else if (value === UNKNOWN) out.push(Buffer.from([0xd4, 0x00, 0x00]));
  else if (value === true) out.push(Buffer.from([0xc3]));
  else if (value === false) out.push(Buffer.from([0xc2]));
  else if (typeof value === 'number') writeNumber(value, out);
  else if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    out.push(header(bytes.length, 0xa0, 31, 0xd9, 0xda, 0xdb), bytes);
  } else if (Array.isArray(value)) {
    out.push(header(value.length, 0x90, 15, null, 0xdc, 0xdd));
    for (const item of value) write(item, out);
  } else {
    const entries = Object.entries(value);
    out.push(header(entries.length, 0x80, 15, null, 0xde, 0xdf));
    for (const [key, item] of entries) {
      write(key, out);
      write(item, out);
    }
  }
}

function header(
  length: number,
  fix: number,
  fixMax: number,
  c8: number | null,
  c16: number,
  c32: number,
): Buffer {
  if (length <= fixMax) return Buffer.from([fix | length]);
  if (c8 !== null && length < 0x100) return Buffer.from([c8, length]);
  if (length < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = c16;
    b.writeUInt16BE(length, 1);
    return b;
  }
  const b = Buffer.alloc(5);
  b[0] = c32;
  b.writeUInt32BE(length, 1);
  return b;
}

function writeNumber(n: number, out: Buffer[]): void {
  if (Number.isSafeInteger(n)) {
    if (n >= 0 && n < 0x80) return void out.push(Buffer.from([n]));
    if (n < 0 && n >= -32) return void out.push(Buffer.from([n & 0xff]));
    const b = Buffer.alloc(9);
    b[0] = 0xd3;
    b.writeBigInt64BE(BigInt(n), 1);
    return void out.push(b);
  }
  const b = Buffer.alloc(9);
  b[0] = 0xcb;
  b.writeDoubleBE(n, 1);
  out.push(b);
}

/**
 * Decodes one msgpack value.
 * @throws Error on a truncated buffer or a type Terraform never sends.
 */
export function decode(buffer: Buffer): CtyValue {
  const reader = { buffer, offset: 0 };
  const value = read(reader);
  if (reader.offset !== buffer.length) throw new Error('msgpack: trailing bytes');
  return value;
}

interface Reader {
  buffer: Buffer;
  offset: number;
}

function take(r: Reader, n: number): Buffer {
  if (r.offset + n > r.buffer.length) throw new Error('msgpack: truncated');
  const slice = r.buffer.subarray(r.offset, r.offset + n);
  r.offset += n;
  return slice;
}

function read(r: Reader): CtyValue {
  const t = take(r, 1)[0]!;
  if (t < 0x80) return t;
  if (t >= 0xe0) return t - 0x100;
  if ((t & 0xe0) === 0xa0) return take(r, t & 0x1f).toString('utf8');
  if ((t & 0xf0) === 0x90) return readArray(r, t & 0x0f);
  if ((t & 0xf0) === 0x80) return readMap(r, t & 0x0f);
  switch (t) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xca:
      return take(r, 4).readFloatBE(0);
    case 0xcb:
      return take(r, 8).readDoubleBE(0);
    case 0xcc:
      return take(r, 1).readUInt8(0);
    case 0xcd:
      return take(r, 2).readUInt16BE(0);
    case 0xce:
      return take(r, 4).readUInt32BE(0);
    case 0xcf:
      return Number(take(r, 8).readBigUInt64BE(0));
    case 0xd0:
      return take(r, 1).readInt8(0);
    case 0xd1:
      return take(r, 2).readInt16BE(0);
    case 0xd2:
      return take(r, 4).readInt32BE(0);
    case 0xd3:
      return Number(take(r, 8).readBigInt64BE(0));
    case 0xd9:
      return take(r, take(r, 1).readUInt8(0)).toString('utf8');
    case 0xda:
      return take(r, take(r, 2).readUInt16BE(0)).toString('utf8');
    case 0xdb:
      return take(r, take(r, 4).readUInt32BE(0)).toString('utf8');
    case 0xdc:
      return readArray(r, take(r, 2).readUInt16BE(0));
    case 0xdd:
      return readArray(r, take(r, 4).readUInt32BE(0));
    case 0xde:
      return readMap(r, take(r, 2).readUInt16BE(0));
    case 0xdf:
      return readMap(r, take(r, 4).readUInt32BE(0));
    // Extensions: cty marks unknown values with extension type 0 (any payload).
    case 0xd4:
      take(r, 2);
      return UNKNOWN;
    case 0xd5:
      take(r, 3);
      return UNKNOWN;
    case 0xd6:
      take(r, 5);
      return UNKNOWN;
    case 0xc7:
      take(r, take(r, 1).readUInt8(0) + 1);
      return UNKNOWN;
    default:
      throw new Error(`msgpack: unsupported type 0x${t.toString(16)}`);
  }
}

function readArray(r: Reader, n: number): CtyValue[] {
  const items: CtyValue[] = [];
  for (let i = 0; i < n; i++) items.push(read(r));
  return items;
}

function readMap(r: Reader, n: number): { [key: string]: CtyValue } {
  const map: { [key: string]: CtyValue } = {};
  for (let i = 0; i < n; i++) {
    const key = read(r);
    if (typeof key !== 'string') throw new Error('msgpack: non-string map key');
    map[key] = read(r);
  }
  return map;
}
