/**
 * docs/how-it-works.md stays true: every TypeScript snippet runs and prints what the page says it
 * prints (on a software adapter, where the page's outputs were made; elsewhere kernel names and
 * workgroup counts differ), and every link names a file that exists and a function that is in it.
 * (test/docs.test.ts type-checks the snippets against the built package, as those of every doc.)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FASHION_MNIST_DIR } from '../src/nets/idx.js';
import { getGpu } from './helpers.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const page = join(root, 'docs', 'how-it-works.md');
const text = readFileSync(page, 'utf8');
/** Outside src/ and test/, so that the project's own type-check never sees the generated files. */
const dir = join(root, '.snippets', 'how-it-works');

interface Snippet {
  index: number;
  code: string;
  /** The ```text block that follows the snippet: what it prints. */
  output: string | null;
}

function snippets(): Snippet[] {
  const out: Snippet[] = [];
  const re = /```ts\n([\s\S]*?)```(?:\s*\n```text\n([\s\S]*?)```)?/g;
  for (const m of text.matchAll(re)) out.push({ index: out.length, code: m[1]!, output: m[2]?.trimEnd() ?? null });
  return out;
}

/** The snippet as a file of this repository: the package's entry points are its sources. */
function localize(code: string): string {
  return code.replaceAll("from 'webgpu-saliency/node'", "from '../../src/node.js'").replaceAll("from 'webgpu-saliency'", "from '../../src/index.js'");
}

const haveFashionMnist = existsSync(FASHION_MNIST_DIR);

describe('docs/how-it-works.md', () => {
  const list = snippets();

  it('has a snippet with its output for every step', () => {
    expect(list.length).toBeGreaterThanOrEqual(12);
    for (const s of list) expect(s.output, `snippet ${s.index} shows what it prints`).not.toBeNull();
  });

  it('links to files that exist and functions that are in them', () => {
    const links = [...text.matchAll(/\[([^\]]+)\]\((\.\.\/[^)#]+)\)/g)];
    expect(links.length).toBeGreaterThan(20);
    for (const [, label, href] of links) {
      const file = resolve(dirname(page), href!);
      expect(existsSync(file), href).toBe(true);
      const source = readFileSync(file, 'utf8');
      for (const name of [...label!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!).filter((n) => !n.includes('/'))) {
        const ident = name.replace(/\(.*$/, '').split('.').at(-1)!;
        expect(source, `${href} defines ${name}`).toMatch(new RegExp(`(function|class|const|interface|type|fn|async) ${ident}\\b|\\b${ident}\\(`));
      }
    }
  });

  it.runIf(haveFashionMnist)('every snippet runs and prints what the page shows', { timeout: 600_000 }, async () => {
    const software = (await getGpu()).adapter.isSoftware;
    mkdirSync(dir, { recursive: true });
    for (const s of list) {
      const file = join(dir, `run-${s.index}.ts`);
      writeFileSync(file, localize(s.code));
      const lines: string[] = [];
      const log = console.log;
      console.log = (...args: unknown[]) => void lines.push(format(...args));
      try {
        await import(/* @vite-ignore */ file);
      } finally {
        console.log = log;
      }
      const printed = lines.join('\n').split('\n').map((l) => l.trimEnd()).join('\n').trimEnd();
      if (software) expect.soft(printed, `snippet ${s.index} prints the page's output`).toBe(s.output);
      else expect(printed.split('\n').length, `snippet ${s.index} prints as many lines as the page shows`).toBe(s.output!.split('\n').length);
    }
  });
});
