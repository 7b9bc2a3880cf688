declare module 'wgsl-preprocessor/wgsl-preprocessor.js' {
  /** Template tag resolving #if/#elif/#else/#endif blocks in WGSL source. */
  export function wgsl(strings: TemplateStringsArray, ...values: unknown[]): string;
}
