/** Fenced blocks of the README and docs/*.md, for the tests that check and run them. */
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');

export const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

export interface Snippet {
  file: string;
  line: number;
  lang: string;
  code: string;
  run: boolean;
  context: string;
}

/** Fenced blocks of a Markdown file, with the markers of the comment right before each. */
export function snippets(file: string): Snippet[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const out: Snippet[] = [];
  let comment = '';
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith('<!--')) {
      const start = i;
      while (!lines[i]!.includes('-->')) i++;
      comment = lines.slice(start, i + 1).join('\n');
      continue;
    }
    const fence = /^```(\w*)/.exec(l);
    if (!fence) {
      if (l.trim() !== '') comment = '';
      continue;
    }
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!);
    const context = /^<!-- snippet-context\n([\s\S]*?)-->$/.exec(comment)?.[1] ?? '';
    out.push({ file, line: start + 1, lang: fence[1]!, code: body.join('\n'), run: comment.includes('snippet-run'), context });
    comment = '';
  }
  return out;
}

/** Shell commands of a block: continuations joined, comments dropped, split at && and ;. */
export function shellCommands(code: string): string[] {
  const joined = code.replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .flatMap((l) => l.split(/\s*(?:&&|;)\s*/))
    .filter((l) => l !== '');
}

