/** Types of scripts/web.mjs (the demo server), for the TypeScript tests. */
import type { ViteDevServer } from 'vite';

export declare const DEFAULT_PORT: number;
export declare const DEFAULT_HOST: string;

export interface WebServerOptions {
  /** Default 5173; 0 = any free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Fail if the port is taken instead of trying the next one. */
  strictPort?: boolean;
  /** Extra static directories: { '/prefix/': '/abs/dir' }. */
  mounts?: Record<string, string>;
  logLevel?: 'info' | 'warn' | 'error' | 'silent';
  /** Vite's dependency cache directory. */
  cacheDir?: string;
}

export interface WebServer {
  server: ViteDevServer;
  port: number;
  /** The demo page, e.g. http://127.0.0.1:5173/web/ */
  url: string;
  /** A warning to show when the server listens beyond loopback (null on 127.0.0.1, ::1, localhost). */
  warning: string | null;
  close(): Promise<void>;
}

export declare function startWebServer(options?: WebServerOptions): Promise<WebServer>;

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 and localhost. */
export declare function isLoopback(host: string): boolean;
