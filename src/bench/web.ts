#!/usr/bin/env node
/**
 * `npm run bench:web`: the benchmark in the browser. Builds the benchmark page (web/bench.html,
 * src/bench/web-page.ts) with Vite, serves it with the demo server (scripts/web.mjs) together with
 * TF.js's and ONNX Runtime Web's files from node_modules, and drives Chromium through
 * puppeteer-core, as the page tests do. It prints what `npm run bench` prints for the browser:
 * each work's median (after a warm-up, read-back included) in our library, TF.js WebGPU and, for
 * the forward pass, ONNX Runtime Web's WebGPU execution provider, all in one page on one adapter;
 * how far the peers' results are from ours; peak GPU memory; and time to first map of
 * <saliency-view> (a bundled model and human's emotion; cold in a fresh browser profile, warm as a
 * second view in the same page), split into opening WebGPU, reading the image, loading the model,
 * compiling pipelines and running.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import puppeteer, { type Browser } from 'puppeteer-core';
import { decimal } from '../cli/parse.js';
import { CHROMIUM, CHROMIUM_FLAGS, haveChromium } from './chromium.js';
import type { FirstMap, FirstMapResult, WorksResult } from './web-page.js';
import { WORKS, median, round, type Work } from './works.js';
import { parseConv2dDirectBlock } from '../kernels/conv2d.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HUMAN_EMOTION = '/human-models/emotion.json';

interface Options {
  size?: number;
  reps?: number;
  warmup: number;
  works: Work[];
  samples: number;
  profile: boolean;
  conv: 'auto' | 'tiled' | 'direct';
  directBlock?: string;
  tfjs: boolean;
  ort: boolean;
  firstMap: boolean;
  firstMapOnly: boolean;
  firstMapModels: string[];
  method: string;
  precompile: 'off' | 'on' | 'compare';
  repeat: number;
  gpu: boolean;
  budget?: number;
  timeout: number;
  json: boolean;
}

function intArg(v: string, name: string, zero = false): number {
  const n = decimal(v);
  if (!Number.isSafeInteger(n) || n < (zero ? 0 : 1)) throw new InvalidArgumentError(`${name} must be an integer ≥ ${zero ? 0 : 1}`);
  return n;
}

function worksArg(v: string): Work[] {
  const list = v.split(',').map((s) => s.trim());
  const bad = list.filter((w) => !(WORKS as readonly string[]).includes(w));
  if (bad.length || !list.length) throw new InvalidArgumentError(`unknown work ${bad.join(', ')}; works: ${WORKS.join(', ')}`);
  return list as Work[];
}

/** The page, built into a temporary folder: served at /bench/web/bench.html. */
async function buildPage(outDir: string): Promise<void> {
  const { build } = await import('vite');
  await build({
    root: ROOT,
    configFile: false,
    envDir: false,
    logLevel: 'warn',
    base: '/bench/',
    build: { outDir, emptyOutDir: true, minify: false, target: 'es2022', reportCompressedSize: false, rollupOptions: { input: join(ROOT, 'web', 'bench.html') } },
  });
}

/** The peers' browser files, straight from node_modules. */
function vendorMounts(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const dist = (pkg: string, file: string) => dirname(require.resolve(`${pkg}/${file}`));
  return {
    '/bench-vendor/tfjs/': dist('@tensorflow/tfjs', 'dist/tf.min.js'),
    '/bench-vendor/tfjs-webgpu/': dist('@tensorflow/tfjs-backend-webgpu', 'dist/tf-backend-webgpu.min.js'),
    '/bench-vendor/ort/': join(dirname(require.resolve('onnxruntime-web')), '..', 'dist'),
  };
}

/** Opens `path` in a new page of `browser` and waits for window.__bench. */
async function runPage<T>(browser: Browser, base: string, path: string, timeoutMs: number, progress: (s: string) => void): Promise<T> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    const text = m.text();
    if (text.startsWith('bench: ')) progress(text.slice(7));
    else if (m.type() === 'error') errors.push(text);
  });
  page.on('pageerror', (e) => errors.push((e as Error).message));
  try {
    await page.goto(base + path, { waitUntil: 'load' });
    try {
      await page.waitForFunction(() => window.__bench !== undefined, { timeout: timeoutMs, polling: 250 });
    } catch (e) {
      const why = (e as Error).name === 'TimeoutError' ? `no result within ${timeoutMs / 1000} s` : (e as Error).message;
      throw new Error(`${path}: ${why}${errors.length ? ` (page errors: ${errors.slice(0, 3).join('; ')})` : ''}`);
    }
    const out = (await page.evaluate(() => window.__bench)) as { result?: T; error?: string };
    if (out.error !== undefined) throw new Error(`${path}: ${out.error}`);
    return out.result as T;
  } finally {
    await page.close();
  }
}

function fmt(v: number | null | undefined, width = 8): string {
  return (v === null || v === undefined ? '—' : v.toFixed(1)).padStart(width);
}

/** Each part's median over `runs` (so the parts need not add up to the median total). */
function medianFirstMap(runs: FirstMap[]): FirstMap {
  const m = (k: keyof FirstMap) => round(median(runs.map((r) => r[k])));
  return { total: m('total'), gpu: m('gpu'), image: m('image'), load: m('load'), compile: m('compile'), run: m('run'), other: m('other'), pipelines: m('pipelines') };
}

function describeFirstMap(f: FirstMap): string {
  return `${fmt(f.total)} ms = load ${f.load.toFixed(0)} + compile ${f.compile.toFixed(0)} (${f.pipelines} pipelines) + run ${f.run.toFixed(0)} + WebGPU ${f.gpu.toFixed(0)} + image ${f.image.toFixed(0)} + other ${f.other.toFixed(0)}`;
}

async function main(): Promise<void> {
  const program = new Command()
    .name('bench:web')
    .description('benchmark webgpu-saliency in Chromium against TF.js WebGPU and ONNX Runtime Web on the same adapter (VGG16 shape, random weights), and time to first map of <saliency-view>')
    .option('--size <px>', 'input side (multiple of 32); default 224 on a GPU, 64 on a software adapter', (v) => intArg(v, '--size'))
    .option('--reps <n>', 'timed repetitions after the warm-up (0: each work once, to check the results); default 10 on a GPU, 3 on a software adapter', (v) => intArg(v, '--reps', true))
    .option('--warmup <n>', 'untimed calls of each work after its first', (v) => intArg(v, '--warmup', true), 1)
    .option('--works <list>', `the works to time, comma-separated (${WORKS.join(', ')})`, worksArg, [...WORKS])
    .option('--samples <n>', 'SmoothGrad samples', (v) => intArg(v, '--samples'), 50)
    .option('--conv <kind>', 'our conv2d kernels: auto (direct on a CPU adapter, tiled on a GPU), tiled or direct', (v) => {
      if (v !== 'auto' && v !== 'tiled' && v !== 'direct') throw new InvalidArgumentError('--conv must be auto, tiled or direct');
      return v;
    }, 'auto')
    .option('--direct-block <PxC>', 'our direct conv2d kernels: each invocation computes P pixels × up to C channels (default: 8x8, 4x16 on SwiftShader)', (v) => {
      try {
        parseConv2dDirectBlock(v);
      } catch (e) {
        throw new InvalidArgumentError((e as Error).message);
      }
      return v;
    })
    .option('--profile', "our works' GPU time per kernel (where the adapter has GPU timestamps)")
    .option('--no-tfjs', 'leave out TF.js')
    .option('--no-ort', 'leave out ONNX Runtime Web')
    .option('--no-first-map', 'skip time to first map')
    .option('--first-map-only', 'only time to first map (no works)')
    .option('--first-map-models <list>', "models for time to first map: bundled names or model URLs on the demo server", (v) => v.split(',').map((s) => s.trim()).filter(Boolean), ['fashion-vgg', HUMAN_EMOTION])
    .option('--method <name>', 'the method of time to first map', 'gradCam')
    .option('--precompile <mode>', "time to first map with pipelines compiled ahead in parallel: off, on or compare (both)", (v) => {
      if (v !== 'off' && v !== 'on' && v !== 'compare') throw new InvalidArgumentError('--precompile must be off, on or compare');
      return v;
    }, 'off')
    .option('--repeat <n>', 'time to first map: fresh browsers per model and mode (medians)', (v) => intArg(v, '--repeat'), 1)
    .option('--budget <MiB>', "our GPU memory budget in MiB (default: initGpu's: 1024 in a browser, at most a quarter of RAM on a software adapter)", (v) => intArg(v, '--budget'))
    .option('--gpu', "use the machine's GPU instead of SwiftShader (Chromium's Vulkan flags for a real adapter)")
    .option('--timeout <s>', 'seconds each page may take (every work at 64×64 with --profile takes over 15 min on SwiftShader)', (v) => intArg(v, '--timeout'), 3600)
    .option('--json', 'print one JSON object instead of tables');
  program.parse(process.argv);
  const o = program.opts<Options>();
  if (o.size !== undefined && o.size % 32) throw new InvalidArgumentError('--size must be a multiple of 32');
  if (!haveChromium) throw new Error(`${CHROMIUM} is missing; install Chromium ('apt-get install chromium', as scripts/setup-system.sh does) or set CHROMIUM_PATH`);
  const log = (s: string) => {
    if (!o.json) process.stdout.write(s + '\n');
  };
  const progress = (s: string) => process.stderr.write(`  ${s}\n`);

  const dir = mkdtempSync(join(tmpdir(), 'saliency-bench-web-'));
  const { startWebServer } = (await import('../../scripts/web.mjs')) as typeof import('../../scripts/web.mjs');
  let server: Awaited<ReturnType<typeof startWebServer>> | null = null;
  const browsers = new Set<Browser>();
  try {
    await buildPage(join(dir, 'page'));
    server = await startWebServer({ port: 0, strictPort: true, logLevel: 'silent', cacheDir: join(dir, 'vite-cache'), mounts: { '/bench/': join(dir, 'page'), ...vendorMounts() } });
    const base = `http://127.0.0.1:${server.port}`;
    const args = o.gpu ? ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--ignore-gpu-blocklist', '--use-angle=vulkan', '--no-first-run'] : CHROMIUM_FLAGS;
    const timeoutMs = o.timeout * 1000;
    /** A browser with a fresh profile (puppeteer makes a temporary one per launch). */
    const launch = async () => {
      const b = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args, protocolTimeout: timeoutMs + 60_000 });
      browsers.add(b);
      return b;
    };
    const close = async (b: Browser) => {
      browsers.delete(b);
      await b.close();
    };

    let browser = await launch();
    const version = await browser.version();
    let works: WorksResult | null = null;
    if (!o.firstMapOnly) {
      const q = new URLSearchParams({
        mode: 'works',
        samples: String(o.samples),
        warmup: String(o.warmup),
        works: o.works.join(','),
        peers: [o.tfjs && 'tfjs', o.ort && 'ort'].filter(Boolean).join(','),
        ...(o.profile ? { profile: '1' } : {}),
        ...(o.conv !== 'auto' ? { conv: o.conv } : {}),
        ...(o.directBlock ? { block: o.directBlock } : {}),
      });
      if (o.size) q.set('size', String(o.size));
      if (o.reps !== undefined) q.set('reps', String(o.reps));
      if (o.budget !== undefined) q.set('budget', String(o.budget));
      progress(`${version}: the works`);
      works = await runPage<WorksResult>(browser, base, `/bench/web/bench.html?${q}`, timeoutMs, progress);

      const budget = works.memory.budget_mib === null ? 'none' : `${works.memory.budget_mib} MiB`;
      log(`browser: ${version}; adapter: ${works.adapter}; VGG16 at ${works.size}×${works.size}, batch 1, fp32; ${works.conv} conv kernels${works.direct_block ? ` (block ${works.direct_block.replace('x', '×')})` : ''}; medians of ${works.reps} after a warm-up, read-back included; our memory budget ${budget}`);
      for (const r of works.results) {
        log(
          `${r.work.padEnd(18)} ours ${fmt(r.ours_ms)} ms   tfjs ${fmt(r.tfjs_ms)} ms   tfjs/ours ${String(r.ratio ?? '—').padEnd(5)}` +
            (r.ort_ms !== undefined ? `   ort ${fmt(r.ort_ms)} ms   ort/ours ${r.ort_ratio ?? '—'}` : '') +
            `   peak MiB: ours ${r.ours_peak_mib} (live ${r.ours_live_peak_mib}), tfjs live ${r.tfjs_live_peak_mib ?? '—'} (pool ${r.tfjs_pool_mib ?? '—'})` +
            `   (first call: ours ${fmt(r.ours_first_ms, 0)}, tfjs ${fmt(r.tfjs_first_ms, 0)}${r.ort_ms !== undefined ? `, ort ${fmt(r.ort_first_ms, 0)}` : ''})` +
            (r.batching ? `\n${''.padEnd(18)} ${r.batching}` : '') +
            (r.tfjs_error ? `\n${''.padEnd(18)} tfjs failed: ${r.tfjs_error}` : '') +
            (r.ort_error ? `\n${''.padEnd(18)} ort failed: ${r.ort_error}` : ''),
        );
      }
      const agree = (name: string, a: Record<string, number> | null) =>
        a ? `${name} ${Object.entries(a).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}` : null;
      const agreements = [agree('TF.js', works.agreement.tfjs), agree('ONNX Runtime', works.agreement.ort)].filter(Boolean);
      if (agreements.length) log(`agreement (max |ours − peer| / max |peer|): ${agreements.join('; ')}`);
      const m = works.memory;
      log(
        `GPU memory (MiB): ours peak ${m.ours_peak_mib} over all works (buffer pool, budget ${m.budget_mib ?? 'none'}); ` +
          `tfjs live tensors peak ${m.tfjs_live_peak_mib ?? '—'}, its buffer manager ${m.tfjs_pool_mib ?? '—'} allocated at the end; ONNX Runtime Web reports none`,
      );
      log(`pipelines: ours compiled ${works.compile.pipelines} in ${works.compile.ms.toFixed(0)} ms of wall-clock time`);
      if (works.onnx) log(`ONNX: the network exported in the page (${works.onnx.mib} MiB) in ${works.onnx.export_ms.toFixed(0)} ms; ONNX Runtime's session created in ${works.onnx.session_ms.toFixed(0)} ms`);
      if (o.profile && !works.canProfile) log("no GPU time per kernel: this adapter has no 'timestamp-query'");
      for (const [work, p] of Object.entries(works.profiles ?? {})) {
        log(`  ${work}: ${p.gpu_ms.toFixed(1)} ms of kernels in ${p.dispatches} dispatches; ` + p.kernels.slice(0, 6).map((k) => `${k.name} ×${k.count} ${k.ms.toFixed(1)}`).join(', '));
      }
    }
    await close(browser);

    // Time to first map. Cold: a fresh profile; warm: a second view in the same page; revisit: the
    // page opened again in the same profile (a returning visitor: the browser's caches are filled).
    // Each of `repeat` rounds measures every model in every mode, so that slow spells of a shared
    // machine fall on all of them alike.
    const firstMapOn = o.firstMap || o.firstMapOnly;
    let firstMapAdapter: string | null = null;
    const modes = o.precompile === 'compare' ? [false, true] : [o.precompile === 'on'];
    const runs = new Map<string, { cold: FirstMap[]; warm: FirstMap[]; revisit: FirstMap[] }>();
    const key = (model: string, precompile: boolean) => `${model === HUMAN_EMOTION ? 'emotion' : model}${modes.length > 1 ? (precompile ? ' (precompiled)' : ' (lazy)') : ''}`;
    if (firstMapOn) {
      for (let round = 0; round < o.repeat; round++) {
        for (const model of o.firstMapModels) {
          for (const precompile of modes) {
            const path = `/bench/web/bench.html?${new URLSearchParams({ mode: 'first-map', model, method: o.method, precompile: precompile ? '1' : '0' })}`;
            progress(`first map: ${key(model, precompile)}${o.repeat > 1 ? `, round ${round + 1} of ${o.repeat}` : ''}`);
            browser = await launch();
            const cold = await runPage<FirstMapResult>(browser, base, path, timeoutMs, progress);
            const again = await runPage<FirstMapResult>(browser, base, path, timeoutMs, progress);
            await close(browser);
            firstMapAdapter = cold.adapter;
            const r = runs.get(key(model, precompile)) ?? { cold: [], warm: [], revisit: [] };
            r.cold.push(cold.first);
            r.warm.push(cold.second);
            r.revisit.push(again.first);
            runs.set(key(model, precompile), r);
          }
        }
      }
      log(`time to first map (${o.method}; <saliency-view> connected → first map drawn${o.repeat > 1 ? `; medians of ${o.repeat}, each part on its own` : ''}):`);
      for (const [name, r] of runs) {
        log(`  ${name.padEnd(26)} cold    ${describeFirstMap(medianFirstMap(r.cold))}`);
        log(`  ${''.padEnd(26)} warm    ${describeFirstMap(medianFirstMap(r.warm))}`);
        log(`  ${''.padEnd(26)} revisit ${describeFirstMap(medianFirstMap(r.revisit))}`);
      }
    }
    const firstMap: Record<string, Record<string, unknown>> = {};
    for (const model of o.firstMapModels) {
      const name = model === HUMAN_EMOTION ? 'emotion' : model;
      const entry = (precompile: boolean) => {
        const r = runs.get(key(model, precompile));
        return r ? { cold: medianFirstMap(r.cold), warm: medianFirstMap(r.warm), revisit: medianFirstMap(r.revisit), runs: r.cold.length } : null;
      };
      firstMap[name] = modes.length > 1 ? { lazy: entry(false), precompiled: entry(true) } : (entry(modes[0]!) ?? {});
    }
    if (o.json) {
      process.stdout.write(
        JSON.stringify({
          browser: version,
          adapter: works?.adapter ?? firstMapAdapter,
          size: works?.size ?? null,
          conv: works?.conv ?? null,
          direct_block: works?.direct_block ?? null,
          reps: works?.reps ?? null,
          samples: works?.samples ?? null,
          results: works?.results ?? [],
          agreement: works?.agreement ?? null,
          memory: works?.memory ?? null,
          compile: works?.compile ?? null,
          onnx: works?.onnx ?? null,
          profiles: works?.profiles ?? null,
          first_map_ms: firstMapOn ? firstMap : null,
          first_map_precompile: firstMapOn ? o.precompile : null,
          first_map_method: firstMapOn ? o.method : null,
          date: new Date().toISOString(),
        }) + '\n',
      );
    }
  } finally {
    for (const b of browsers) await b.close().catch(() => undefined);
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench:web: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
