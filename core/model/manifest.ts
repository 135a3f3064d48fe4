// tensor-cache.json (older repos: ndarray-cache.json): which shard holds which tensor, at which byte offset.

export type TensorDtype = 'float32' | 'float16' | 'bfloat16' | 'uint32';
/** `raw`: stored as `dtype`. `f32-to-bf16`: a float32 tensor stored as bfloat16 (2 bytes per element). */
export type TensorFormat = 'raw' | 'f32-to-bf16';

export interface TensorRecord {
  name: string;
  shape: number[];
  dtype: TensorDtype;
  format: TensorFormat;
  nbytes: number;
  byteOffset: number;
}

export interface ShardRecord {
  dataPath: string;
  nbytes: number;
  md5sum?: string;
  records: TensorRecord[];
}

export interface TensorManifest {
  /** The file the manifest came from (tensor-cache.json or ndarray-cache.json). */
  fileName: string;
  shards: ShardRecord[];
  /** Where each tensor lives. */
  tensors: Map<string, { shard: number; record: TensorRecord }>;
}

export class ManifestError extends Error {
  constructor(fileName: string, message: string) {
    super(`${fileName}: ${message}`);
    this.name = 'ManifestError';
  }
}

const DTYPES: readonly string[] = ['float32', 'float16', 'bfloat16', 'uint32'];
const STORED_BYTES: Record<TensorDtype, number> = { float32: 4, float16: 2, bfloat16: 2, uint32: 4 };

/** Bytes per stored element of a record. */
export function storedElementBytes(r: Pick<TensorRecord, 'dtype' | 'format'>): number {
  return r.format === 'f32-to-bf16' ? 2 : STORED_BYTES[r.dtype];
}

export function parseManifest(text: string, fileName: string): TensorManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(fileName, `not valid JSON (${(e as Error).message})`);
  }
  const top = raw as { records?: unknown };
  if (!top || typeof top !== 'object' || !Array.isArray(top.records)) {
    throw new ManifestError(fileName, 'expected an object with a "records" array');
  }
  const shards: ShardRecord[] = [];
  const tensors = new Map<string, { shard: number; record: TensorRecord }>();
  top.records.forEach((s: unknown, shardIndex: number) => {
    const shard = s as Record<string, unknown>;
    const where = `records[${shardIndex}]`;
    if (typeof shard?.dataPath !== 'string') throw new ManifestError(fileName, `${where} has no dataPath`);
    if (shard.format !== undefined && shard.format !== 'raw-shard') {
      throw new ManifestError(
        fileName,
        `${where} (${shard.dataPath}) has unsupported format "${String(shard.format)}"`,
      );
    }
    if (typeof shard.nbytes !== 'number') throw new ManifestError(fileName, `${shard.dataPath} has no nbytes`);
    if (!Array.isArray(shard.records)) throw new ManifestError(fileName, `${shard.dataPath} has no records`);
    const records: TensorRecord[] = shard.records.map((t: unknown) =>
      parseTensor(t, fileName, shard.dataPath as string),
    );
    for (const record of records) {
      if (record.byteOffset + record.nbytes > shard.nbytes) {
        throw new ManifestError(
          fileName,
          `tensor ${record.name} [${record.byteOffset}, +${record.nbytes}) lies outside ${shard.dataPath} (${shard.nbytes} B)`,
        );
      }
      if (tensors.has(record.name)) throw new ManifestError(fileName, `tensor ${record.name} is listed twice`);
      tensors.set(record.name, { shard: shardIndex, record });
    }
    shards.push({
      dataPath: shard.dataPath,
      nbytes: shard.nbytes,
      md5sum: typeof shard.md5sum === 'string' ? shard.md5sum : undefined,
      records,
    });
  });
  return { fileName, shards, tensors };
}

function parseTensor(t: unknown, fileName: string, dataPath: string): TensorRecord {
  const r = t as Record<string, unknown>;
  const name = typeof r?.name === 'string' ? r.name : undefined;
  if (!name) throw new ManifestError(fileName, `a record in ${dataPath} has no name`);
  const fail = (msg: string): never => {
    throw new ManifestError(fileName, `tensor ${name}: ${msg}`);
  };
  if (!Array.isArray(r.shape) || !r.shape.every((d) => Number.isInteger(d) && d >= 0)) fail('bad shape');
  if (typeof r.dtype !== 'string' || !DTYPES.includes(r.dtype)) fail(`unsupported dtype "${String(r.dtype)}"`);
  const format = r.format ?? 'raw';
  if (format !== 'raw' && format !== 'f32-to-bf16') fail(`unsupported format "${String(format)}"`);
  if (format === 'f32-to-bf16' && r.dtype !== 'float32') fail('format f32-to-bf16 needs dtype float32');
  if (typeof r.byteOffset !== 'number' || typeof r.nbytes !== 'number') fail('missing byteOffset/nbytes');
  const record: TensorRecord = {
    name,
    shape: r.shape as number[],
    dtype: r.dtype as TensorDtype,
    format: format as TensorFormat,
    nbytes: r.nbytes as number,
    byteOffset: r.byteOffset as number,
  };
  const elements = record.shape.reduce((a, b) => a * b, 1);
  const expected = elements * storedElementBytes(record);
  if (expected !== record.nbytes) fail(`nbytes ${record.nbytes} does not match shape/dtype (${expected})`);
  return record;
}
