/**
 * One queue per GPU device, so that concurrent callers do not interleave their work.
 *
 * The autodiff tape stack and the tensor scopes belong to the `Gpu`, not to a call: two saliency
 * methods running at once on one device would record onto each other's tapes and free each
 * other's tensors. So every method runs as a job of its device's queue (`gpu.exclusive`): jobs run
 * one at a time, in the order they were queued, and a failed job does not stop the ones after it.
 *
 * Nesting: a job may call the methods (or `gpu.exclusive`) itself; such a call runs at once, as part
 * of the job. Telling a nested call from a concurrent one needs async context (AsyncLocalStorage),
 * which Node, Deno and Bun have and browsers do not yet. Where there is none, a nested call waits
 * for the job that made it, that is forever; so in a browser, call the methods outside your own
 * `gpu.exclusive` jobs (the web component does).
 *
 * With async context, code outside the running job is also kept out of it: its tensors do not join
 * the job's scopes, its ops are not recorded on the job's tape, and its own tapes and scopes wait
 * for the job (see `Gpu.track`, `Gpu.scope`, `activeTape`, `Tape.run`).
 *
 * Browser-safe: Node's AsyncLocalStorage is looked up at run time, never imported.
 */

interface AsyncContext {
  run<R>(store: ReadonlySet<symbol>, fn: () => R): R;
  getStore(): ReadonlySet<symbol> | undefined;
}

let context: AsyncContext | null = null;
let looked = false;

function builtinAsyncContext(): AsyncContext | null {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    const hooks = proc?.getBuiltinModule?.('node:async_hooks') as { AsyncLocalStorage?: new () => AsyncContext } | undefined;
    return hooks?.AsyncLocalStorage ? new hooks.AsyncLocalStorage() : null;
  } catch {
    return null;
  }
}

function asyncContext(): AsyncContext | null {
  if (!looked) {
    looked = true;
    context ??= builtinAsyncContext();
  }
  return context;
}

/**
 * Loads AsyncLocalStorage where `process.getBuiltinModule` is missing (Node before 20.16). `initGpu`
 * calls it in Node; it does nothing in a browser.
 */
export async function loadAsyncContext(): Promise<void> {
  if (asyncContext()) return;
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (!isNode) return;
  try {
    const name = 'node:async_hooks'; // hidden from bundlers
    const hooks = (await import(/* @vite-ignore */ name)) as { AsyncLocalStorage: new () => AsyncContext };
    context = new hooks.AsyncLocalStorage();
  } catch {
    // no async context: nested calls must be avoided (see above)
  }
}

/** True where nested calls can be told from concurrent ones (Node, Deno, Bun). */
export function hasAsyncContext(): boolean {
  return asyncContext() !== null;
}

/** The FIFO job queue of one device. */
export class DeviceQueue {
  private tail: Promise<unknown> = Promise.resolve();
  /** The token of the job running now, or null. */
  private running: symbol | null = null;
  private waiting = 0;

  /**
   * Runs `job` after every job queued before it has settled, and resolves or rejects with its
   * result. A call from inside the running job (where async context tells) runs at once.
   * Jobs always start asynchronously, after the caller's synchronous code.
   */
  run<T>(job: () => Promise<T> | T): Promise<T> {
    if (this.inside()) return Promise.resolve().then(job);
    const token = Symbol('job');
    this.waiting++;
    const result = this.tail.then(() => this.start(token, job));
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  private async start<T>(token: symbol, job: () => Promise<T> | T): Promise<T> {
    this.waiting--;
    this.running = token;
    try {
      const ctx = asyncContext();
      if (!ctx) return await job();
      const outer = ctx.getStore();
      const store = new Set(outer ?? []);
      store.add(token);
      return await ctx.run(store, job);
    } finally {
      this.running = null;
    }
  }

  /** Whether a job is running now. */
  get busy(): boolean {
    return this.running !== null;
  }

  /** Jobs queued and not yet started. */
  get pending(): number {
    return this.waiting;
  }

  /** True when the caller is inside the running job (always false without async context). */
  inside(): boolean {
    const ctx = asyncContext();
    return ctx !== null && this.running !== null && ctx.getStore()?.has(this.running) === true;
  }

  /**
   * True when a job is running and the caller is not part of it (always false without async
   * context, where it cannot be told).
   */
  foreign(): boolean {
    const ctx = asyncContext();
    return ctx !== null && this.running !== null && ctx.getStore()?.has(this.running) !== true;
  }
}
