/** The stderr filter of the command line: the driver's lines go, ours stay, in order. */
import { describe, expect, it } from 'vitest';
import { isDriverNoise, stderrFilter } from '../src/cli/quiet.js';

describe('stderr filter', () => {
  // Lines as Dawn and the Vulkan loader print them (lavapipe; and a machine without a driver).
  const dawn = [
    'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.',
    'Warning: loader_get_json: Failed to open JSON file /nonexistent/icd.json',
    'Warning: vkCreateInstance failed with VK_ERROR_INCOMPATIBLE_DRIVER',
    '    at CheckVkSuccessImpl (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/VulkanError.cpp:106)',
  ];

  it('knows the driver lines from ours', () => {
    for (const l of dawn) expect(isDriverNoise(l), l).toBe(true);
    for (const l of ['saliency: no WebGPU adapter found.', '  at least one image', 'warning: our own', '    at main (file:///x/dist/cli/main.js:3:1)']) {
      expect(isDriverNoise(l), l).toBe(false);
    }
  });

  it('drops them, and the blank line after them, across chunk boundaries, keeping the rest in order', () => {
    let out = '';
    const f = stderrFilter((t) => (out += t));
    const text = `${dawn.join('\n')}\n\nsaliency: first\n${dawn[0]}\nsaliency: second\n\nsaliency: after a blank line\nno newline at the end`;
    for (let i = 0; i < text.length; i += 7) f.push(text.slice(i, i + 7));
    f.end();
    expect(out).toBe('saliency: first\nsaliency: second\n\nsaliency: after a blank line\nno newline at the end');
  });
});
