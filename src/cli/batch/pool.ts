/**
 * A small pool of worker threads (worker.ts) for `saliency batch`: decoding and writing happen
 * there while the main thread drives the GPU. A worker that dies (a decoder that ran out of memory
 * on a hostile image) fails only the task it had, and is replaced.
 */
import { Worker } from 'node:worker_threads';
import type { Crop } from './inputs.js';

export interface DecodeTask {
  kind: 'decode';
  id: number;
  file: string;
  crop?: Crop;
  channels: 1 | 3;
  width: number;
  height: number;
  /** Files larger than this are refused before they are read. */
  maxBytes: number;
}

export type OutputFile =
  | { kind: 'npy'; path: string; data: Float32Array; shape: number[] }
  | { kind: 'safetensors'; path: string; name: string; data: Float32Array; shape: number[]; metadata: Record<string, string> }
  | {
      kind: 'png';
      path: string;
      data: Float32Array;
      shape: number[];
      input: Float32Array;
      channels: number;
      width: number;
      height: number;
      size: number;
      mapKind: 'attribution' | 'cam';
    };

export interface WriteTask {
  kind: 'write';
  id: number;
  outputs: OutputFile[];
}

export type Task = DecodeTask | WriteTask;

export type TaskResult =
  | { id: number; ok: true; data: Float32Array; ms: number; /** The original image's size, before crop and resize. */ source: [width: number, height: number] }
  | { id: number; ok: true; ms: number }
  | { id: number; ok: false; error: string; ms: number };

type Pending = { task: Task; resolve: (r: TaskResult) => void };

export class WorkerPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Pending>();
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;

  constructor(
    readonly size: number,
    private readonly url: URL = new URL('./worker.js', import.meta.url),
  ) {
    for (let i = 0; i < size; i++) this.idle.push(this.spawn());
  }

  private spawn(): Worker {
    const w = new Worker(this.url);
    w.on('message', (result: TaskResult) => {
      const p = this.busy.get(w);
      this.busy.delete(w);
      this.idle.push(w);
      p?.resolve(result);
      this.pump();
    });
    const died = (why: string) => {
      const p = this.busy.get(w);
      this.busy.delete(w);
      const i = this.idle.indexOf(w);
      if (i >= 0) this.idle.splice(i, 1);
      if (this.closed) return;
      p?.resolve({ id: p.task.id, ok: false, error: `the worker thread died while handling this image (${why})`, ms: 0 });
      this.idle.push(this.spawn());
      this.pump();
    };
    w.on('error', (err: Error) => died(err.message));
    w.on('exit', (code) => {
      if (this.busy.has(w) || this.idle.includes(w)) died(`exit code ${code}`);
    });
    return w;
  }

  /** Runs a task on the next free worker. The data arrays it carries are moved there (transferred). */
  run(task: Omit<DecodeTask, 'id'> | Omit<WriteTask, 'id'>): Promise<TaskResult> {
    return new Promise((resolve) => {
      this.queue.push({ task: { ...task, id: this.nextId++ } as Task, resolve });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const p = this.queue.shift()!;
      this.busy.set(w, p);
      const transfer: ArrayBuffer[] = [];
      if (p.task.kind === 'write') {
        for (const o of p.task.outputs) {
          for (const a of o.kind === 'png' ? [o.data, o.input] : [o.data]) {
            if (!transfer.includes(a.buffer as ArrayBuffer)) transfer.push(a.buffer as ArrayBuffer);
          }
        }
      }
      w.postMessage(p.task, transfer);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.idle, ...this.busy.keys()];
    this.idle.length = 0;
    this.busy.clear();
    await Promise.all(all.map((w) => w.terminate()));
  }
}
