/** The built package as a user gets it: `import … from 'webgpu-saliency'` and the `saliency` command. */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import puppeteer from 'puppeteer-core';
import { afterAll, describe, expect, it } from 'vitest';
import { FASHION_MNIST_DIR } from '../src/nets/idx.js';
import { FASHION_CLASSES } from '../src/nets/zoo.js';
import { decodeImage } from '../src/saliency/image.js';
import { CHROMIUM, CHROMIUM_FLAGS, haveChromium } from './chromium.js';
import { ROOT, snippets } from './markdown.js';

const run = promisify(execFile);
const built = existsSync('dist/index.js');
const FASHION_NAMES: readonly string[] = FASHION_CLASSES;

describe.runIf(built)('built package (npm run build)', () => {
  it('imports from the package name and runs a kernel and a backward pass', async () => {
    const script = `
      import { initGpu, tensor, Tape, ops, kernels } from 'webgpu-saliency';
      const gpu = await initGpu();
      const x = tensor(gpu, [1, -2, 3], [3]);
      const tape = new Tape(gpu);
      tape.watch(x);
      const y = await tape.run(async () => ops.sum(await ops.relu(x), 'all'));
      const g = await tape.backward(y);
      const out = { y: [...await y.read()], g: [...await g.of(x).read()], hasConv: typeof kernels.conv2dForward };
      gpu.destroy();
      console.log(JSON.stringify(out));
      process.exit(0);`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ y: [4], g: [1, 0, 1], hasConv: 'function' });
  });

  it('saliency doctor reports the adapter; bad commands fail with one clear line', async () => {
    const { stdout } = await run(process.execPath, ['dist/cli/main.js', 'doctor', '--json']);
    const report = JSON.parse(stdout);
    expect(report.selfCheck).toBe('passed');
    expect(report.adapter.length).toBeGreaterThan(0);
    const help = await run(process.execPath, ['dist/cli/main.js', '--help']);
    expect(help.stdout).toMatch(/doctor/);
    await expect(run(process.execPath, ['dist/cli/main.js', 'no-such-command'])).rejects.toMatchObject({ code: 1 });
  });

  it('saliency doctor explains a missing GPU driver instead of crashing', async () => {
    const env = { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' };
    const err = await run(process.execPath, ['dist/cli/main.js', 'doctor'], { env }).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/saliency: no WebGPU adapter found.*lavapipe/s);
    expect(err.stderr).not.toMatch(/at .*\.js:\d+/); // no JavaScript stack trace
    // Only our own line: the Vulkan loader's and Dawn's warnings (with a path from the machine
    // the binary was built on) are dropped unless --verbose is given.
    expect(err.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^saliency: no WebGPU adapter found/)]);
  });

  it("GPU commands keep stderr to our own messages; --verbose shows the driver's", async () => {
    const quiet = await run(process.execPath, ['dist/cli/main.js', 'doctor']);
    expect(quiet.stderr).toBe('');
    expect(quiet.stdout).toMatch(/kernel self-check: +passed/);
    const verbose = await run(process.execPath, ['dist/cli/main.js', 'doctor', '--verbose']);
    expect(verbose.stdout).toMatch(/kernel self-check: +passed/);
    // What Dawn says depends on the adapter; on lavapipe it warns about reduced limits.
    if (/llvmpipe/.test(verbose.stdout)) expect(verbose.stderr).toMatch(/^Warning: .*artificially reduced/m);
  });
});

/**
 * The package installed into another project, as the README says: `npm pack`, then the tarball
 * installed into a new project. Nothing may be downloaded here, so the tarball is unpacked into
 * the project's node_modules and its dependencies are linked from this checkout's node_modules
 * (the layout `npm install <tarball>` makes), with `node_modules/.bin/saliency` as npm links it.
 */
describe.runIf(built)('installed into another project', () => {
  const dir = mkdtempSync(join(tmpdir(), 'saliency-consumer-'));
  const project = join(dir, 'project');
  const readmeTs = snippets('README.md').filter((s) => s.lang === 'ts');
  const readmeHtml = snippets('README.md').filter((s) => s.lang === 'html');
  let packed: { files: { path: string }[]; filename: string };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('npm pack holds what a user needs and nothing of the tests', async () => {
    // dist/ is what `npm run build` (run by npm test, and by npm pack's prepack) made.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT });
    packed = JSON.parse(stdout)[0];
    const files = packed.files.map((f) => f.path);
    for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/web/index.js', 'dist/cli/main.js', 'models/fashion-vgg.safetensors']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => /^(test|web|scripts|src)\//.test(f))).toEqual([]);

    mkdirSync(join(project, 'node_modules', '.bin'), { recursive: true });
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-project', private: true, type: 'module' }));
    await run('tar', ['-xzf', join(dir, packed.filename), '-C', join(project, 'node_modules')]);
    renameSync(join(project, 'node_modules', 'package'), join(project, 'node_modules', 'webgpu-saliency'));
    const pkg = JSON.parse(readFileSync(join(project, 'node_modules', 'webgpu-saliency', 'package.json'), 'utf8'));
    for (const dep of [...Object.keys(pkg.dependencies), '@types/node']) {
      mkdirSync(dirname(join(project, 'node_modules', dep)), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules', dep), join(project, 'node_modules', dep));
    }
    symlinkSync('../webgpu-saliency/dist/cli/main.js', join(project, 'node_modules', '.bin', 'saliency'));
  });

  it("type-checks the README's TypeScript with strict on, and the web entry point's types", async () => {
    expect(readmeTs.length).toBeGreaterThan(0);
    const files = readmeTs.map((s, i) => {
      writeFileSync(join(project, `readme-${i}.ts`), `${s.context}${s.code}\nexport {};\n`);
      return `readme-${i}.ts`;
    });
    writeFileSync(
      join(project, 'web.ts'),
      [
        "import 'webgpu-saliency/web';",
        "import type { SaliencyResultDetail, SaliencyView } from 'webgpu-saliency/web';",
        "const view = document.querySelector('saliency-view') as SaliencyView;",
        "view.addEventListener('saliency-result', (e) => console.log((e as CustomEvent<SaliencyResultDetail>).detail.classes));",
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, lib: ['ES2022', 'DOM'], types: ['node'], skipLibCheck: false, outDir: 'build' },
        files: [...files, 'web.ts'],
      }),
    );
    const r = await run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', project], { cwd: project }).catch((e: { stdout: string }) => e);
    expect(r.stdout.trim()).toBe('');
  });

  it('npx saliency doctor and explain run there, and so does the README example', async () => {
    const doctor = await run('npx', ['--offline', 'saliency', 'doctor', '--json'], { cwd: project });
    expect(JSON.parse(doctor.stdout).selfCheck).toBe('passed');
    const image = join(ROOT, 'assets', 'coffee.png');
    const explain = await run('npx', ['--offline', 'saliency', 'explain', '--model', 'fashion-gap', '--image', image, '--method', 'gradCam', '--out', 'out'], { cwd: project });
    expect(explain.stdout).toMatch(/gradCam .* ms/);
    expect(decodeImage(readFileSync(join(project, 'out', 'gradCam.png'))).width).toBeGreaterThan(0);
    if (!existsSync(join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz'))) return; // the README's `sample` needs the data set
    await run('npx', ['--offline', 'saliency', 'sample', '--index', '0', '--out', 'out'], { cwd: project });
    for (let i = 0; i < readmeTs.length; i++) {
      writeFileSync(join(project, `run-${i}.mjs`), `await import('./build/readme-${i}.js');\nprocess.exit(0);\n`);
      await run(process.execPath, [`run-${i}.mjs`], { cwd: project });
    }
    expect(existsSync(join(project, 'out', 'gradcam-boot.png'))).toBe(true);
  }, 120_000);

  it.runIf(haveChromium)("bundles the README's <saliency-view> with Vite and runs it in Chromium", async () => {
    expect(readmeHtml.length).toBe(1);
    writeFileSync(join(project, 'index.html'), `<!doctype html>\n<meta charset="utf-8">\n<title>my project</title>\n${readmeHtml[0]!.code}\n`);
    mkdirSync(join(project, 'public'));
    copyFileSync(join(ROOT, 'assets', 'coffee.png'), join(project, 'public', 'boot.png'));
    const { build, preview } = await import('vite');
    await build({ root: project, logLevel: 'silent', configFile: false, build: { outDir: 'site' } });
    const server = await preview({ root: project, logLevel: 'silent', configFile: false, build: { outDir: 'site' }, preview: { port: 0, host: '127.0.0.1' } });
    const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && errors.push(m.text()));
      page.on('response', (r) => r.status() >= 400 && !r.url().endsWith('/favicon.ico') && errors.push(`${r.status()} ${r.url()}`));
      await page.evaluateOnNewDocument(() => {
        document.addEventListener('saliency-result', (e) => ((window as unknown as { result: unknown }).result = (e as CustomEvent).detail.classes));
      });
      await page.goto(server.resolvedUrls!.local[0]!);
      await page.waitForFunction(() => (window as unknown as { result?: unknown }).result, { timeout: 90_000 });
      const classes = await page.evaluate(() => (window as unknown as { result: { name: string }[] }).result);
      expect(classes.length).toBe(3);
      expect(classes.map((c) => c.name).every((n) => FASHION_NAMES.includes(n)), JSON.stringify(classes)).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await new Promise<void>((done) => server.httpServer.close(() => done()));
    }
  }, 180_000);
});
