/** Numbers on the command line: plain decimals only. */
import { InvalidArgumentError } from 'commander';

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * `text` as a number if it is written as a plain decimal (`12`, `0.5`, `1e-3`), else NaN.
 * JavaScript's Number() would also read '' and '  ' as 0, '0x10' as 16 and 'Infinity'.
 */
export function decimal(text: string): number {
  const t = text.trim();
  return DECIMAL.test(t) ? Number(t) : NaN;
}

/** Commander parsers of numeric options, with one-line errors naming the option. */
export const positiveIntArg = (name: string) => (v: string): number => {
  const n = decimal(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
};

export const wholeNumberArg = (name: string) => (v: string): number => {
  const n = decimal(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be an integer ≥ 0`);
  return n;
};

export const nonNegativeArg = (name: string) => (v: string): number => {
  const n = decimal(v);
  if (!(n >= 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number ≥ 0`);
  return n;
};
