#!/usr/bin/env node
/**
 * `npm run web [-- --port N] [-- --host H]`: serves the demo page (web/index.html) with Vite on
 * http://127.0.0.1:5173/ (the next free port if that one is taken, unless --strict-port).
 *
 * The repository root is Vite's root, so the page, the library's TypeScript sources and models/
 * (the bundled weights, at /models/<name>.safetensors) are all served from localhost. Extra routes:
 *   /                        → redirect to /web/
 *   /models/index.json       → the models there are: the .safetensors files in models/ (the page
 *                              marks missing bundled ones) and the TF.js graph models of
 *   /human-models/…            @vladmandic/human (a dev dependency), served from its models/ folder
 *   /samples/index.json      → sample images: Fashion-MNIST test images, one per class, when Debian's
 *   /samples/fashion-<i>.png   dataset-fashion-mnist package is installed (28×28 grey PNGs), the
 *   /samples/scene-<i>.png     first held-out detector scenes (96×96, made by src/nets/detector.ts's
 *                              heldOutScene, for D-RISE), and the photographs in assets/
 *
 * Only what the page needs is served (see `ALLOWED`): the page, the library's browser-side sources,
 * the two npm modules it loads, the models, the samples and the mounts; everything else of the
 * repository (the CLI and bench sources, tests, scripts, package files, node_modules, .git) is 404.
 * A malformed URL gets 400, never a stack trace. Listening beyond loopback (`--host 0.0.0.0`)
 * prints a warning: anyone who can reach the machine can then use the demo and read those files.
 *
 * `startWebServer(options)` does the same from code (the browser tests use it).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, posix, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { Command, InvalidArgumentError } from 'commander';
import pngjs from 'pngjs';
import { createServer } from 'vite';

export const DEFAULT_PORT = 5173;
export const DEFAULT_HOST = '127.0.0.1';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
const HUMAN_MODELS = join(ROOT, 'node_modules', '@vladmandic', 'human', 'models');
/** The imported classifiers the page offers (CenterNet, a detector, is not wired into the page yet). */
const HUMAN_CLASSIFIERS = [
  { name: 'emotion', description: 'human: emotion, 64×64 grey faces, 7 classes' },
  { name: 'antispoof', description: 'human: antispoof, 128×128 faces, real face (sigmoid)' },
];
const CONTENT_TYPES = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.json': 'application/json',
  '.bin': 'application/octet-stream',
  // Mounted pages and scripts (npm run bench:web: its built page, TF.js and ONNX Runtime Web).
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
};

/**
 * URL paths the page needs: its own files, the library's browser-side sources (Vite compiles them
 * on request), Vite's client and the one npm module the library imports in a browser, and the
 * routes below. Mounts (human's models, test fixtures) are added per server.
 */
const ALLOWED = [
  /^\/web\//,
  /^\/src\/(autodiff|kernels|nets|runtime|saliency|web)\/[\w.-]+(\/[\w.-]+)*\.ts$/,
  /^\/models\/index\.json$/,
  /^\/models\/[\w.-]+\.safetensors$/,
  /^\/samples\//,
  /^\/assets\/[\w.-]+\.(png|jpe?g)$/i,
  /^\/@vite\/(client|env)$/,
  /^\/node_modules\/vite\/dist\/client\/[\w.-]+\.m?js$/,
  /^\/node_modules\/wgsl-preprocessor\/[\w.-]+\.js$/,
];

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host) {
  const h = String(host).replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function send(res, status, text) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(text);
}

function sendJson(res, value) {
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify(value));
}

function listModels() {
  const dir = join(ROOT, 'models');
  const ours = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.safetensors'))
        .sort()
        .map((file) => ({ name: file.replace(/\.safetensors$/, ''), kind: 'safetensors', file: `/models/${file}`, bytes: statSync(join(dir, file)).size }))
    : [];
  const human = HUMAN_CLASSIFIERS.filter(({ name }) => existsSync(join(HUMAN_MODELS, `${name}.json`))).map(({ name, description }) => ({
    name,
    kind: 'tfjs',
    description,
    file: `/human-models/${name}.json`,
  }));
  return [...ours, ...human];
}

async function listSamples(server) {
  const fashion = fashionSamples().map(({ index, label, file }) => ({ kind: 'fashion-mnist', index, label, file }));
  const scenes = (await sceneSamples(server)).map(({ index, objects, file }) => ({ kind: 'scene', index, objects, file }));
  const assets = join(ROOT, 'assets');
  const photos = existsSync(assets)
    ? readdirSync(assets)
        .filter((f) => /\.(png|jpe?g)$/i.test(f))
        .sort()
        .map((f) => ({ kind: 'photo', name: f, file: `/assets/${f}` }))
    : [];
  return [...fashion, ...scenes, ...photos];
}

/** How many held-out detector scenes the page offers. */
const SCENE_SAMPLES = 5;
let scenes = null;

/**
 * The first held-out detector scenes as 96×96 grey PNGs with their objects' classes, made by the
 * library's own generator (loaded through Vite, as TypeScript), when the Fashion-MNIST test set is
 * installed.
 */
function sceneSamples(server) {
  scenes ??= (async () => {
    if (!existsSync(join(FASHION_DIR, 't10k-images-idx3-ubyte.gz'))) return [];
    const { heldOutScene } = await server.ssrLoadModule('/src/nets/detector.ts');
    const { loadFashionMnist } = await server.ssrLoadModule('/src/nets/idx.ts');
    const test = loadFashionMnist('test');
    return Array.from({ length: SCENE_SAMPLES }, (_, index) => {
      const scene = heldOutScene(test, index);
      const side = Math.round(Math.sqrt(scene.image.length));
      const png = new pngjs.PNG({ width: side, height: side });
      scene.image.forEach((v, p) => {
        const grey = Math.round(v * 255);
        png.data.set([grey, grey, grey, 255], 4 * p);
      });
      return { index, objects: scene.labels, file: `/samples/scene-${index}.png`, bytes: pngjs.PNG.sync.write(png) };
    });
  })();
  return scenes;
}

let samples = null;

/** One test image of each Fashion-MNIST class (the first of each label), as 28×28 grey PNGs. */
function fashionSamples() {
  if (samples) return samples;
  samples = [];
  const imagesFile = join(FASHION_DIR, 't10k-images-idx3-ubyte.gz');
  const labelsFile = join(FASHION_DIR, 't10k-labels-idx1-ubyte.gz');
  if (!existsSync(imagesFile) || !existsSync(labelsFile)) return samples;
  const images = gunzipSync(readFileSync(imagesFile));
  const labels = gunzipSync(readFileSync(labelsFile));
  const count = labels.readUInt32BE(4);
  const [rows, cols] = [images.readUInt32BE(8), images.readUInt32BE(12)];
  const seen = new Set();
  for (let i = 0; i < count && seen.size < 10; i++) {
    const label = labels[8 + i];
    if (seen.has(label)) continue;
    seen.add(label);
    const png = new pngjs.PNG({ width: cols, height: rows });
    for (let p = 0; p < rows * cols; p++) {
      const v = images[16 + i * rows * cols + p];
      png.data.set([v, v, v, 255], 4 * p);
    }
    samples.push({ index: i, label, file: `/samples/fashion-${i}.png`, bytes: pngjs.PNG.sync.write(png) });
  }
  samples.sort((a, b) => a.label - b.label);
  return samples;
}

/** Serves `dir`'s files under the URL prefix `prefix` ('/fixtures/'); `path` is already decoded. */
function serveDirectory(prefix, dir, path, res) {
  const file = normalize(join(dir, path.slice(prefix.length)));
  if (!file.startsWith(resolve(dir) + sep) || !existsSync(file) || !statSync(file).isFile()) {
    res.statusCode = 404;
    res.end('not found');
    return;
  }
  res.setHeader('Content-Type', CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream');
  res.setHeader('Cache-Control', 'no-store');
  res.end(readFileSync(file));
}

function demoRoutes(mounts) {
  return {
    name: 'webgpu-saliency-demo',
    configureServer(server) {
      // Vite's pre-bundled dependencies (protobufjs, see optimizeDeps below), from this server's cache.
      const deps = posix.join(server.config.cacheDir.split('\\').join('/'), 'deps');
      const depUrls = [`/@fs${deps.startsWith('/') ? '' : '/'}${deps}/`, `/${posix.relative(ROOT.split('\\').join('/'), deps)}/`];
      const isDependency = (url) => depUrls.some((prefix) => url.startsWith(prefix) && /^[\w.-]+\.js$/.test(url.slice(prefix.length)));
      server.middlewares.use((req, res, next) => {
        const raw = (req.url ?? '/').split('?')[0];
        let url;
        try {
          url = decodeURIComponent(raw);
        } catch {
          return send(res, 400, 'bad request: malformed percent-encoding in the URL');
        }
        // Vite decodes and normalises paths itself: judge the normalised one ('/web/../x' is '/x').
        url = posix.normalize(url);
        if (url.includes('\0') || url.includes('\\')) return send(res, 400, 'bad request');
        if (url === '/' || url === '/index.html') {
          res.statusCode = 302;
          res.setHeader('Location', '/web/');
          res.end();
          return;
        }
        if (url === '/models/index.json') return sendJson(res, listModels());
        if (url === '/samples/index.json') {
          listSamples(server).then((list) => sendJson(res, list), next);
          return;
        }
        const scene = /^\/samples\/scene-(\d+)\.png$/.exec(url);
        if (scene) {
          sceneSamples(server).then((list) => {
            const found = list.find((s) => s.index === Number(scene[1]));
            if (!found) return next();
            res.setHeader('Content-Type', 'image/png');
            res.end(found.bytes);
          }, next);
          return;
        }
        const sample = /^\/samples\/fashion-(\d+)\.png$/.exec(url);
        if (sample) {
          const found = fashionSamples().find((s) => s.index === Number(sample[1]));
          if (!found) return next();
          res.setHeader('Content-Type', 'image/png');
          res.end(found.bytes);
          return;
        }
        for (const [prefix, dir] of Object.entries(mounts)) {
          if (url.startsWith(prefix)) return serveDirectory(prefix, dir, url, res);
        }
        if (!ALLOWED.some((re) => re.test(url)) && !isDependency(url)) return send(res, 404, 'not found'); // not something the page needs
        next();
      });
    },
  };
}

/**
 * Starts the demo server. Options: port (default 5173; 0 = any free port), host (default
 * 127.0.0.1), strictPort (fail instead of trying the next port), mounts ({ '/prefix/': dir }: extra
 * static directories), logLevel, cacheDir (Vite's dependency cache). Resolves with the Vite server
 * and the page's URL.
 */
export async function startWebServer(options = {}) {
  const { port = DEFAULT_PORT, host = DEFAULT_HOST, strictPort = false, logLevel = 'info', cacheDir } = options;
  const mounts = { ...(existsSync(HUMAN_MODELS) ? { '/human-models/': HUMAN_MODELS } : {}), ...(options.mounts ?? {}) };
  for (const prefix of Object.keys(mounts)) {
    if (!prefix.startsWith('/') || !prefix.endsWith('/')) throw new Error(`mount prefix '${prefix}' must start and end with '/'`);
  }
  const server = await createServer({
    root: ROOT,
    configFile: false,
    envDir: false,
    logLevel,
    cacheDir,
    clearScreen: false,
    plugins: [demoRoutes(mounts)],
    server: { host, port, strictPort, open: false, fs: { strict: true, allow: [ROOT] } },
    // No dependency discovery: the optimiser would reload the page when it finishes after the
    // first request. The one CommonJS package of the browser path (protobufjs, for ONNX models) is
    // pre-bundled when the server starts; wgsl-preprocessor is ESM.
    optimizeDeps: { noDiscovery: true, include: ['protobufjs/light.js'] },
  });
  await server.listen();
  const address = server.httpServer?.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const warning = isLoopback(host)
    ? null
    : `warning: listening on ${host}, beyond this machine: anyone who can reach it can use the demo and download the models and the library's sources it serves. Use the default --host 127.0.0.1 unless you mean that.`;
  return { server, port: actualPort, url: `http://${shownHost}:${actualPort}/web/`, warning, close: () => server.close() };
}

function parsePort(value) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be an integer from 0 to 65535');
  return n;
}

async function main(argv) {
  const program = new Command('npm run web --')
    .description('Serves the webgpu-saliency demo page and the bundled models with Vite.')
    .option('-p, --port <n>', 'port (0: any free port)', parsePort, DEFAULT_PORT)
    .option('--host <host>', 'address to listen on', DEFAULT_HOST)
    .option('--strict-port', 'exit if the port is taken instead of trying the next one', false)
    .showHelpAfterError();
  program.parse(argv);
  const o = program.opts();
  try {
    const { url, warning } = await startWebServer({ port: o.port, host: o.host, strictPort: o.strictPort, logLevel: 'warn' });
    if (warning) console.warn(warning);
    console.log(`webgpu-saliency demo: ${url}  (Ctrl+C to stop)`);
    const models = listModels();
    const trained = models.filter((m) => m.kind === 'safetensors').map((m) => m.name);
    const imported = models.filter((m) => m.kind === 'tfjs').map((m) => m.name);
    console.log(`trained models: ${trained.join(', ') || 'none yet (the page also takes a .safetensors or model.json URL)'}`);
    if (imported.length) console.log(`imported TF.js models: ${imported.join(', ')}`);
  } catch (e) {
    console.error(`web: ${e.message}`);
    process.exit(1);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main(process.argv);
