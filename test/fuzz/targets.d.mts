/** Types of targets.mjs, for test/fuzz.test.ts. */
export declare const TARGETS: Readonly<Record<string, unknown>>;
export declare function library(root: string): Promise<Record<string, unknown>>;
