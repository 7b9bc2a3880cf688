/**
 * Headless Chromium with WebGPU (SwiftShader's Vulkan, no GPU needed): the browser the page tests
 * (test/chromium.ts) and `npm run bench:web` drive. CHROMIUM_PATH names another binary.
 */
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);

/** Chromium flags that give a WebGPU adapter headless, without a GPU (SwiftShader's Vulkan). */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--disable-vulkan-surface',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
