#!/usr/bin/env node
// Prints the tables of `saliency metrics` JSON files (metrics.json) as Markdown, one per file:
//   node scripts/metrics-table.mjs docs/metrics/fashion-vgg.json …
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

for (const file of process.argv.slice(2)) {
  const json = JSON.parse(readFileSync(file, 'utf8'));
  const rows = Object.keys(json.table);
  const heads = Object.keys(json.table[rows[0]]);
  console.log(`\n**${basename(file, '.json')}** (${json.images.length} image${json.images.length === 1 ? '' : 's'})\n`);
  console.log(`| method | ${heads.map((h) => h.replace(/\|/g, '\\|')).join(' | ')} |`);
  console.log(`|---|${heads.map(() => '---').join('|')}|`);
  const cell = (s) => String(s).replace(/\|/g, '\\|');
  for (const row of rows) console.log(`| ${row === 'random' ? 'random map (control)' : row} | ${heads.map((h) => cell(json.table[row][h])).join(' | ')} |`);
}
