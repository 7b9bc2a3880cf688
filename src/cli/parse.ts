/** Numbers on the command line: plain decimals only. */

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * `text` as a number if it is written as a plain decimal (`12`, `0.5`, `1e-3`), else NaN.
 * JavaScript's Number() would also read '' and '  ' as 0, '0x10' as 16 and 'Infinity'.
 */
export function decimal(text: string): number {
  const t = text.trim();
  return DECIMAL.test(t) ? Number(t) : NaN;
}
