/**
 * Reading a TF.js model.json (graph or layers model) and its weight shards from a path (Node), a
 * URL or memory. Shards are read only when asked for, so that topology errors come first, and only
 * from inside the model's own folder (graph/source.ts), each bounded by the bytes the manifest
 * declares for its group.
 */
import { ArgumentError, FormatError } from '../../runtime/errors.js';
import { hostLimits, type GraphLimits, type HostTensor } from '../graph/host.js';
import { openModelSource } from '../graph/source.js';
import { checkWeightsManifest, type TfjsWeightsGroup } from './format.js';
import { decodeTfjsWeights, manifestBytes } from './weights.js';

/**
 * The weights of a model.json: every shard's bytes concatenated in manifest order (as
 * `tf.io.fromMemory` takes them), or a function that returns the bytes of one shard by its path.
 */
export type TfjsWeightSource = ArrayBuffer | Uint8Array | ((path: string) => Promise<ArrayBuffer | Uint8Array>);

export interface TfjsGraphSource {
  modelJson: object;
  weights: TfjsWeightSource;
}

/** A model.json read from a path, URL or memory, with a way to read the weights it lists. */
export interface TfjsArtifacts {
  json: object;
  /** The path or URL, for messages ('model.json' for one given in memory). */
  where: string;
  /** The file name without '.json', when there is one. */
  name?: string;
  /** Reads, checks and decodes the weights of `manifest` (dequantised, in TF's layout). */
  weights(manifest: readonly TfjsWeightsGroup[]): Promise<Map<string, HostTensor>>;
}

function parseJson(bytes: Uint8Array, where: string): object {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as object;
  } catch (e) {
    throw new FormatError(`${where} is not valid JSON (${(e as Error).message})`);
  }
}

const asBytes = (b: ArrayBuffer | Uint8Array) => (b instanceof Uint8Array ? b : new Uint8Array(b));

/**
 * Reads a TF.js model.json (graph or layers model): a path (Node) or URL (fetched; relative URLs
 * resolve against the page), or the parsed JSON with its weights.
 */
export async function readTfjsArtifacts(
  source: string | URL | TfjsGraphSource,
  what = 'loadTfjsGraphModel',
  limits: GraphLimits = hostLimits(),
): Promise<TfjsArtifacts> {
  let json: object;
  let readShard: (path: string, maxBytes: number) => Promise<Uint8Array>;
  let all: Uint8Array | null = null;
  let where = 'model.json';
  let name: string | undefined;
  if (typeof source === 'string' || source instanceof URL) {
    const src = await openModelSource(source, { what, maxBytes: limits.maxBytes, extension: /\.json$/i });
    where = src.where;
    name = src.name;
    json = parseJson(src.bytes, where);
    readShard = (p, max) => src.sibling!(p, 'weights file', max);
  } else if (source && typeof source === 'object' && 'modelJson' in source) {
    json = source.modelJson;
    const w = source.weights;
    if (typeof w === 'function') {
      readShard = async (p, max) => {
        const b = asBytes(await w(p));
        if (b.byteLength > max) throw new FormatError(`weights file '${p}' is ${b.byteLength} bytes, more than the ${max} bytes the manifest lists for its group`);
        return b;
      };
    } else if (w instanceof ArrayBuffer || w instanceof Uint8Array) {
      all = asBytes(w);
      readShard = async () => new Uint8Array(0);
    } else throw new ArgumentError(`${what}: weights must be an ArrayBuffer, a Uint8Array or a function from a shard path to its bytes`);
  } else {
    throw new ArgumentError(`${what}: source must be a model.json path or URL, or { modelJson, weights }`);
  }
  const weights = async (manifest: readonly TfjsWeightsGroup[]) => {
    checkWeightsManifest(manifest, where);
    const need = manifestBytes(manifest, where, limits);
    let shards: Uint8Array[][];
    if (all) {
      const total = need.reduce((a, b) => a + b, 0);
      if (all.byteLength !== total) {
        throw new FormatError(`the weight data holds ${all.byteLength} bytes, but ${where} lists ${total} bytes of weights: it is ${all.byteLength < total ? 'truncated' : 'corrupt (too long)'}`);
      }
      let at = 0;
      shards = need.map((n) => [all!.subarray(at, (at += n))]);
    } else {
      // Each shard is at most its group's declared size: a larger file is refused before it is read whole.
      shards = await Promise.all(manifest.map((g, k) => Promise.all((g.paths ?? []).map((p) => readShard(p, need[k]!)))));
    }
    return decodeTfjsWeights(manifest, shards, where, limits);
  };
  return { json, where, name, weights };
}
