// Where a kernel's per-use scalars (lengths, positions, flags) live. A kernel writes them through a UniformSlot:
// - `ownUniform`: the kernel's own small buffer, written with queue.writeBuffer at encode() (skipped when the bytes
//   did not change) -- standalone use and tests;
// - a slot of a `UniformArena`: one uniform buffer shared by many kernels; encode() only fills the CPU copy and the
//   caller writes the whole arena with ONE queue.writeBuffer before it submits (the engine's decode step). Kernels
//   that take the same scalars (e.g. the RoPE of every layer) may share one slot.
// Either way a slot holds one value per submitted command buffer: queue writes are ordered with submits, so the next
// step's write cannot change what an already submitted step reads.
import type { GpuContext } from './gpuContext';
import { UNIFORM } from './gpuUtil';

const COPY_DST = 0x8;

export interface UniformSlot {
  /** Bind this (buffer, offset, size) as the kernel's uniform. */
  readonly binding: GPUBufferBinding;
  /** Sets the slot's contents (at most the slot size). */
  write(data: ArrayBufferView): void;
}

function bytesOf(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A slot with its own buffer, written at once (and not at all when the bytes are unchanged). */
export function ownUniform(ctx: GpuContext, size: number, label?: string): UniformSlot {
  const bytes = Math.max(16, Math.ceil(size / 16) * 16);
  const buffer = ctx.device.createBuffer({ size: bytes, usage: UNIFORM | COPY_DST, label });
  const last = new Uint8Array(bytes);
  let written = false;
  return {
    binding: { buffer, offset: 0, size: bytes },
    write(data) {
      const src = bytesOf(data);
      if (src.length > bytes) throw new Error(`${label ?? 'uniform'}: ${src.length} bytes exceed the slot (${bytes})`);
      if (written && sameBytes(last, src)) return;
      last.set(src);
      written = true;
      ctx.device.queue.writeBuffer(buffer, 0, last, 0, Math.ceil(src.length / 4) * 4);
    },
  };
}

/** Many slots in one uniform buffer, written with one queue.writeBuffer per flush(). */
export class UniformArena {
  readonly buffer: GPUBuffer;
  private readonly cpu: Uint8Array<ArrayBuffer>;
  private readonly align: number;
  private used = 0;
  private dirtyFrom = Number.POSITIVE_INFINITY;
  private dirtyTo = 0;
  /** queue.writeBuffer calls made by flush() so far (the engine's stats and tests read it). */
  writes = 0;

  constructor(
    private readonly ctx: GpuContext,
    readonly capacity: number,
    label = 'uniform arena',
  ) {
    this.align = Math.max(16, ctx.device.limits.minUniformBufferOffsetAlignment);
    this.cpu = new Uint8Array(capacity);
    this.buffer = ctx.device.createBuffer({ size: capacity, usage: UNIFORM | COPY_DST, label });
  }

  slot(size: number, label = 'slot'): UniformSlot {
    const bytes = Math.max(16, Math.ceil(size / 16) * 16);
    const offset = this.used;
    if (offset + bytes > this.capacity) {
      throw new Error(`uniform arena: no room for ${label} (${bytes} bytes at ${offset} of ${this.capacity})`);
    }
    this.used = Math.ceil((offset + bytes) / this.align) * this.align;
    return {
      binding: { buffer: this.buffer, offset, size: bytes },
      write: (data) => {
        const src = bytesOf(data);
        if (src.length > bytes) throw new Error(`uniform arena: ${label} got ${src.length} bytes (slot ${bytes})`);
        const view = this.cpu.subarray(offset, offset + src.length);
        if (sameBytes(view, src)) return;
        view.set(src);
        this.dirtyFrom = Math.min(this.dirtyFrom, offset);
        this.dirtyTo = Math.max(this.dirtyTo, offset + bytes);
      },
    };
  }

  /** Writes what changed since the last flush (one queue.writeBuffer, or none). Call before each submit. */
  flush(): void {
    if (this.dirtyTo <= this.dirtyFrom) return;
    this.ctx.device.queue.writeBuffer(
      this.buffer,
      this.dirtyFrom,
      this.cpu,
      this.dirtyFrom,
      this.dirtyTo - this.dirtyFrom,
    );
    this.writes++;
    this.dirtyFrom = Number.POSITIVE_INFINITY;
    this.dirtyTo = 0;
  }
}
