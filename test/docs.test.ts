/**
 * The README and docs/*.md as a user reads them: every TypeScript snippet type-checks against the
 * built package (strict), every shell command names a command, script, option and input file that
 * exist, every relative link points to a file, and the blocks marked `<!-- snippet-run -->` run.
 *
 * Markers, as HTML comments right before a fenced block (invisible on GitHub):
 * - `<!-- snippet-run -->`: run the block (shell: each command in order; TypeScript: compiled and
 *   run with Node), from the repository root;
 * - `<!-- snippet-context … -->`: TypeScript declarations the snippet assumes (`model`, `x`, …),
 *   prepended before type-checking.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { DOCS, ROOT, shellCommands, snippets, type Snippet } from './markdown.js';

const run = promisify(execFile);
const built = existsSync(join(ROOT, 'dist/index.js')) && existsSync(join(ROOT, 'dist/cli/main.js'));

const all = DOCS.flatMap(snippets);
const where = (s: Snippet) => `${s.file}:${s.line}`;

const helpCache = new Map<string, Promise<string>>();
function help(args: string[]): Promise<string> {
  const key = args.join(' ');
  if (!helpCache.has(key)) helpCache.set(key, run(process.execPath, [...args, '--help'], { cwd: ROOT }).then((r) => r.stdout));
  return helpCache.get(key)!;
}

/** The long options a commander --help lists (`--no-x` lists as itself). */
function optionsOf(text: string): Set<string> {
  return new Set([...text.matchAll(/(?:^|\s|,)(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!));
}

const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
/** Options that name an input file, which must exist (or be written by an earlier command into out/). */
const INPUT_OPTIONS = new Set(['--model', '--detector', '--image', '--init', '--resume']);

/**
 * Checks one shell command without running it: the CLI command and its options exist, npm
 * scripts exist and take the options given, input files exist. Returns problems, or [] when fine.
 */
async function checkCommand(command: string, env: Map<string, string>): Promise<string[]> {
  let words = command.split(/\s+/).map((w) => w.replace(/\$(\w+)/g, (_, v: string) => env.get(v) ?? `$${v}`));
  while (/^[A-Z_]+=/.test(words[0]!)) {
    const [name, value] = words[0]!.split('=') as [string, string];
    if (words.length === 1) {
      env.set(name, value);
      return [];
    }
    words = words.slice(1); // an environment variable for this command only
  }
  const problems: string[] = [];
  const checkArgs = async (helpArgs: string[], args: string[]) => {
    const known = optionsOf(await help(helpArgs));
    for (let k = 0; k < args.length; k++) {
      const a = args[k]!;
      if (!a.startsWith('--')) continue;
      const name = a.split('=')[0]!;
      if (!known.has(name)) problems.push(`${helpArgs.join(' ')}: unknown option ${name}`);
      const value = args[k + 1];
      if (INPUT_OPTIONS.has(name) && value && /[./]/.test(value) && !value.startsWith('out/') && !existsSync(join(ROOT, value))) {
        problems.push(`${name} ${value}: no such file`);
      }
    }
  };
  const [w0, w1, w2] = words;
  if ((w0 === 'npx' && w1 === 'saliency') || (w0 === 'node' && w1 === 'dist/cli/main.js')) {
    const cmd = w2!;
    const commands = await help(['dist/cli/main.js']);
    if (!new RegExp(`^\\s+${cmd}\\b`, 'm').test(commands)) problems.push(`saliency has no command '${cmd}'`);
    else await checkArgs(['dist/cli/main.js', cmd], words.slice(3));
  } else if (w0 === 'node' && (w1 === 'dist/bench/main.js' || w1 === 'dist/bench/web.js')) {
    await checkArgs([w1], words.slice(2));
  } else if (w0 === 'npm' && w1 === 'run') {
    if (!(w2! in PACKAGE.scripts)) problems.push(`package.json has no script '${w2}'`);
    const dash = words.indexOf('--');
    const args = dash < 0 ? [] : words.slice(dash + 1);
    if (w2 === 'train') await checkArgs(['dist/cli/main.js', 'train'], args);
    else if (w2 === 'bench') await checkArgs(['dist/bench/main.js'], args);
    else if (w2 === 'bench:web') await checkArgs(['dist/bench/web.js'], args);
    else if (w2 === 'web') await checkArgs(['scripts/web.mjs'], args);
    else if (args.length) problems.push(`npm run ${w2} takes no options here`);
  } else if (w0 === 'npx' && w1 === 'vitest') {
    const file = words.find((w) => w.endsWith('.test.ts'));
    if (file && !existsSync(join(ROOT, file))) problems.push(`${file}: no such test file`);
  } else if (w0 === 'npm' && ['ci', 'test', 'pack', 'install'].includes(w1!)) {
    // npm's own commands (run by test/package.test.ts, or the whole suite).
  } else if (w0 === 'cd') {
    // moving into the user's own project
  } else if (w0 === 'bash' && w1?.startsWith('scripts/')) {
    if (!existsSync(join(ROOT, w1))) problems.push(`${w1}: no such script`);
  } else {
    problems.push(`a command this test does not know: ${command}`);
  }
  return problems;
}

describe('README.md and docs/', () => {
  it('have the sections a user needs, in order, and link only to files that exist', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const headings = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(headings).toEqual(['Install', 'Command line', 'Library', 'Web component', 'Methods', 'Security', 'Tests', 'More']);
    // The README's test command is the one CI runs (.ci/run's last command).
    const tests = readme.slice(readme.indexOf('## Tests'), readme.indexOf('## More'));
    const ciLast = readFileSync(join(ROOT, '.ci/run'), 'utf8').trim().split('\n').at(-1)!.trim();
    expect(tests).toMatch(new RegExp(`^${ciLast.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`, 'm'));
    expect(readme.split('\n').length).toBeLessThan(200);
    for (const file of DOCS) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      expect(text, `${file} links outside the repository`).not.toMatch(/\.\.\/shared\//);
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!.split('#')[0]!;
        if (target === '' || /^[a-z]+:/.test(target)) continue;
        expect(existsSync(resolve(ROOT, dirname(file), target)), `${file} links to ${m[1]}`).toBe(true);
      }
    }
  });

  it('every method of the library is in the README and docs/methods.md', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const methods = readFileSync(join(ROOT, 'docs/methods.md'), 'utf8');
    const lib = await import('../src/saliency/index.js');
    for (const name of ['vanilla', 'deconvnet', 'guidedBackprop', 'gradTimesInput', 'smoothGrad', 'cam', 'gradCam', 'guidedGradCam', 'drise']) {
      expect(typeof (lib as Record<string, unknown>)[name], name).toBe('function');
      expect(readme).toContain(`| \`${name}\` |`);
      expect(methods).toContain(`\`saliency.${name}\``);
    }
  });

  it.runIf(built)('every shell command names a command, script, option and input file that exist', async () => {
    const problems: string[] = [];
    for (const s of all.filter((s) => s.lang === 'sh')) {
      const env = new Map<string, string>();
      for (const c of shellCommands(s.code)) for (const p of await checkCommand(c, env)) problems.push(`${where(s)}: ${p}`);
    }
    expect(problems).toEqual([]);
    expect(all.filter((s) => s.lang === 'sh').length).toBeGreaterThan(10);
  });

  describe.runIf(built)('TypeScript snippets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'saliency-docs-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const ts = all.filter((s) => s.lang === 'ts');
    const fileOf = (i: number) => `snippet-${i}.ts`;

    it('type-check against the built package with strict on', async () => {
      // A project of its own, which sees the package as a user's project does: by its name.
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(ROOT, join(dir, 'node_modules', 'webgpu-saliency'));
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, lib: ['ES2022', 'DOM'],
            types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')], outDir: 'out', rootDir: '.', skipLibCheck: false,
          },
          files: ts.map((_, i) => fileOf(i)),
        }),
      );
      ts.forEach((s, i) => writeFileSync(join(dir, fileOf(i)), `// ${where(s)}\n${s.context}${s.code}\nexport {};\n`));
      const tsc = join(ROOT, 'node_modules/.bin/tsc');
      const result = await run(tsc, ['-p', dir], { cwd: dir }).catch((e: { stdout: string }) => e);
      const errors = result.stdout.trim();
      // Name the Markdown line of each error, not only the temporary file.
      const named = errors.replace(/snippet-(\d+)\.ts/g, (m, i: string) => `${where(ts[Number(i)]!)} (${m})`);
      expect(named).toBe('');
      expect(ts.length).toBeGreaterThanOrEqual(6);
    });

    it('the marked ones run', async () => {
      const runnable = ts.map((s, i) => ({ s, i })).filter(({ s }) => s.run);
      expect(runnable.map(({ s }) => s.file)).toEqual(expect.arrayContaining(['README.md', 'docs/library.md']));
      // The README's library snippet reads the image that its command-line example writes.
      await run(process.execPath, ['dist/cli/main.js', 'sample', '--index', '0', '--out', 'out'], { cwd: ROOT });
      for (const { s, i } of runnable) {
        const runner = join(dir, `run-${i}.mjs`);
        writeFileSync(runner, `await import(${JSON.stringify(join(dir, 'out', `snippet-${i}.js`))});\nprocess.exit(0);\n`);
        const r = await run(process.execPath, [runner], { cwd: ROOT }).catch((e: Error & { stderr: string }) => e);
        expect(r instanceof Error ? `${where(s)}: ${r.stderr}` : '').toBe('');
      }
    }, 300_000);
  });

  it.runIf(built)('the marked shell blocks run', async () => {
    const blocks = all.filter((s) => s.lang === 'sh' && s.run);
    expect(blocks.map((s) => s.file)).toEqual(expect.arrayContaining(['README.md', 'docs/cli.md', 'docs/import.md']));
    for (const s of blocks) {
      for (const c of shellCommands(s.code)) {
        const r = await run('bash', ['-c', c], { cwd: ROOT }).catch((e: Error & { stderr: string }) => e);
        expect(r instanceof Error ? `${where(s)}: ${c}\n${r.stderr}` : '').toBe('');
      }
    }
  }, 600_000);
});
