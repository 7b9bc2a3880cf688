/**
 * Keeps stderr to our own messages. Dawn (Node's WebGPU) and the Vulkan loader write their warnings
 * straight to file descriptor 2 from native code ("Warning: maxDynamicUniformBuffersPerPipelineLayout
 * artificially reduced …" on every start, loader messages with a path from the binary's build
 * machine when no driver is found), where JavaScript cannot stop them. So, unless --verbose is
 * given, the command runs in a child process whose stderr passes through a filter that drops those
 * lines and keeps everything else, in order.
 */
import { spawn } from 'node:child_process';

const CHILD = 'SALIENCY_STDERR_FILTERED';

/** A line that Dawn or the Vulkan loader wrote: a "Warning: …" line, or a native source location under it. */
export function isDriverNoise(line: string): boolean {
  return /^Warning: /.test(line) || /^\s+at \S+ \(\/\S+\.(?:cpp|cc|c|h|mm):\d+\)$/.test(line);
}

/**
 * Commands that run in this process, unfiltered: batch runs are meant to be killed and resumed
 * (SIGKILL included), and a kill must stop the process doing the work, with its lock, at once.
 */
const DIRECT = new Set(['batch', 'batch-merge']);

/** Whether the command in `argv` is a DIRECT one (its first word that is not an option). */
function isDirect(argv: readonly string[]): boolean {
  const command = argv.slice(2).find((a) => !a.startsWith('-'));
  return command !== undefined && DIRECT.has(command);
}

/** Whether this process should run the command itself (the filtered child, --verbose, or a DIRECT command). */
export function runsItself(argv: readonly string[] = process.argv): boolean {
  return process.env[CHILD] === '1' || argv.slice(2).includes('--verbose') || isDirect(argv);
}

/**
 * In the process doing a command's work, except batch runs (killed and resumed by design, and
 * cleaned up on resume): Ctrl-C, SIGTERM and SIGHUP end the process between two JavaScript steps
 * instead of inside one. A file being written (writeFileAtomic: a temporary file written and
 * renamed over the target, all synchronous) is then finished and renamed rather than left as a
 * `.partial` beside its target. GPU work is awaited, so the signal is handled at once.
 */
export function exitCleanlyOnSignals(argv: readonly string[] = process.argv): void {
  if (!runsItself(argv) || isDirect(argv)) return;
  const codes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
  let stopping = false; // Ctrl-C reaches this process twice: from the terminal, and passed on by the parent
  for (const [signal, code] of Object.entries(codes)) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`saliency: interrupted (${signal})\n`, () => process.exit(code));
    });
  }
}

/** In the filtered child: stop at once if the parent goes (killed with SIGKILL, say), not linger as an orphan. */
export function exitWithParent(): void {
  if (process.env[CHILD] !== '1' || !process.channel) return;
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
  process.channel.unref();
}

/** A filter for a stream of stderr text: drops driver noise (and the blank line that follows it), passes the rest. */
export function stderrFilter(write: (text: string) => void): { push(chunk: string): void; end(): void } {
  let pending = '';
  let afterNoise = false;
  const line = (l: string) => {
    if (isDriverNoise(l)) afterNoise = true;
    else if (afterNoise && l.trim() === '') afterNoise = false;
    else {
      afterNoise = false;
      write(`${l}\n`);
    }
  };
  return {
    push(chunk) {
      pending += chunk;
      for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
        line(pending.slice(0, i));
        pending = pending.slice(i + 1);
      }
    },
    end() {
      if (pending !== '' && !isDriverNoise(pending)) write(pending);
      pending = '';
    },
  };
}

/** Runs this same command in a child process with its stderr filtered; resolves to its exit code. */
export function runFiltered(): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'pipe', 'ipc'], // the channel closes if this process dies
    env: { ...process.env, [CHILD]: '1' },
  });
  const filter = stderrFilter((text) => process.stderr.write(text));
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => filter.push(chunk));
  // Ctrl-C reaches the child from the terminal too; a kill of this process is passed on.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const s of signals) process.on(s, forward);
  return new Promise((resolve) => {
    child.on('error', (e) => {
      process.stderr.write(`saliency: could not start: ${e.message}\n`);
      resolve(2);
    });
    child.on('close', (code, signal) => {
      filter.end();
      for (const s of signals) process.off(s, forward);
      const status = code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1);
      process.stderr.write('', () => resolve(status)); // written out before the caller exits

    });
  });
}
