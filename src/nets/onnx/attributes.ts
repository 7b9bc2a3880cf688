/** Typed, checked access to an ONNX node's attributes (kept in a Map: names from the file are never object keys). */
import { FormatError } from '../../runtime/errors.js';
import { toNumber, type OnnxAttributeProto, type OnnxNodeProto, type OnnxTensorProto } from './schema.js';

export class OnnxAttrs {
  private readonly map = new Map<string, OnnxAttributeProto>();

  constructor(
    node: OnnxNodeProto,
    private readonly where: string,
  ) {
    for (const a of node.attribute ?? []) {
      if (!a.name) throw new FormatError(`${where}: an attribute has no name`);
      if (a.refAttrName) throw new FormatError(`${where}: attribute '${a.name}' refers to a function attribute; functions are not supported`);
      this.map.set(a.name, a);
    }
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  /** The attribute names the node has, for checks against the ones an op understands. */
  names(): string[] {
    return [...this.map.keys()];
  }

  int(name: string, fallback?: number): number {
    const a = this.map.get(name);
    if (!a) {
      if (fallback === undefined) throw new FormatError(`${this.where}: missing attribute '${name}'`);
      return fallback;
    }
    const v = toNumber(a.i);
    if (!Number.isSafeInteger(v)) throw new FormatError(`${this.where}: attribute '${name}' is ${v}, not an integer`);
    return v;
  }

  ints(name: string, fallback?: number[]): number[] {
    const a = this.map.get(name);
    if (!a) {
      if (fallback === undefined) throw new FormatError(`${this.where}: missing attribute '${name}'`);
      return fallback;
    }
    return (a.ints ?? []).map((x) => {
      const v = toNumber(x);
      if (!Number.isSafeInteger(v)) throw new FormatError(`${this.where}: attribute '${name}' holds ${v}, not an integer`);
      return v;
    });
  }

  float(name: string, fallback?: number): number {
    const a = this.map.get(name);
    if (!a) {
      if (fallback === undefined) throw new FormatError(`${this.where}: missing attribute '${name}'`);
      return fallback;
    }
    return a.f ?? 0;
  }

  floats(name: string): number[] | undefined {
    return this.map.get(name)?.floats;
  }

  string(name: string, fallback?: string): string {
    const a = this.map.get(name);
    if (!a) {
      if (fallback === undefined) throw new FormatError(`${this.where}: missing attribute '${name}'`);
      return fallback;
    }
    return new TextDecoder().decode(a.s ?? new Uint8Array(0));
  }

  tensor(name: string): OnnxTensorProto | undefined {
    return this.map.get(name)?.t;
  }
}
