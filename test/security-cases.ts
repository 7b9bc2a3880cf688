/**
 * Malformed model files shared by the security tests (the API side in security-tfjs.test.ts, the
 * CLI side in cli-security.test.ts): a real TF.js model.json (human's emotion model) with one field
 * broken, and the message each must give.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const HUMAN = 'node_modules/@vladmandic/human/models';
export type Json = { modelTopology: { node: { name: string; op: string; input?: unknown; attr?: Record<string, unknown> }[] }; weightsManifest: { paths: unknown; weights: Record<string, unknown>[] }[] };

/** The malformed fields the review found, each as a change to emotion.json, with the message expected. */
export const MALFORMED_MODEL_JSON: [name: string, change: (j: Json) => void, message: RegExp][] = [
  ['a node input that is not a list', (j) => (j.modelTopology.node.find((n) => n.op === '_FusedConv2D')!.input = 'input_1'), /node '.*' \(_FusedConv2D\): "input" must be a list of node names/],
  ['a node input that is a number', (j) => (j.modelTopology.node.find((n) => n.op === '_FusedConv2D')!.input = 5), /"input" must be a list of node names/],
  ['shard paths that are a string', (j) => (j.weightsManifest[0]!.paths = 'emotion.bin'), /weightsManifest group 0: "paths" must be a list of file names/],
  ['a weight shape that is a string', (j) => (j.weightsManifest[0]!.weights[0]!.shape = '3,3'), /weight 'unknown_26': "shape" must be a list of non-negative integers, got "3,3"/],
  ['a weight shape that is null', (j) => (j.weightsManifest[0]!.weights[0]!.shape = null), /weight 'unknown_26': "shape" must be a list of non-negative integers/],
  ['a weight entry that is null', (j) => (j.weightsManifest[0]!.weights[0] = null as never), /weightsManifest group 0: weight 0 is not an object/],
  ['a string attribute that is not base64', (j) => (j.modelTopology.node.find((n) => n.op === '_FusedConv2D')!.attr!.padding = { s: '!!!' }), /attribute 'padding' is not valid base64/],
  ['a list attribute that is not a list', (j) => (j.modelTopology.node.find((n) => n.op === '_FusedConv2D')!.attr!.strides = { list: { i: 'x' } }), /attribute 'strides' must be a list of integers/],
  ['a placeholder shape whose dims are not a list', (j) => ((j.modelTopology.node.find((n) => n.op === 'Placeholder')!.attr!.shape as { shape: { dim: unknown } }).shape.dim = 'x'), /attribute 'shape' is not a valid tensor shape/],
  ['a modelTopology that is a string', (j) => ((j as { modelTopology: unknown }).modelTopology = 'x'), /not a TF.js graph model|no modelTopology/],
  ['a signature output that is null', (j) => ((j as { signature?: unknown }).signature = { outputs: { a: null } }), /signature output 'a' must be an object with a "name"/],
];

/** Writes emotion.json with `change` applied, and its shard, into a new folder under `dir`. */
export function writeMalformedModel(dir: string, name: string, change: (j: Json) => void): string {
  const folder = join(dir, name.replace(/\W+/g, '-'));
  mkdirSync(folder, { recursive: true });
  const json = JSON.parse(readFileSync(join(HUMAN, 'emotion.json'), 'utf8')) as Json;
  change(json);
  copyFileSync(join(HUMAN, 'emotion.bin'), join(folder, 'emotion.bin'));
  writeFileSync(join(folder, 'emotion.json'), JSON.stringify(json));
  return join(folder, 'emotion.json');
}

