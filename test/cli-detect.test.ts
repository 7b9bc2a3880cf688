/** `saliency train --model fashion-detector`, `saliency detect` and `saliency drise`, end to end on a real PNG. */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadFashionMnist } from '../src/nets/idx.js';
import { generateScene } from '../src/nets/scenes.js';
import { heldOutScene } from '../src/nets/detector.js';
import { FASHION_CLASSES } from '../src/nets/classes.js';
import { parseSafetensors } from '../src/nets/safetensors.js';
import { decodeImage, encodePng } from '../src/saliency/image.js';
import { inputToRgba } from '../src/saliency/input.js';
import { pictureSize, toPhotoBox } from '../src/cli/detect.js';

const run = promisify(execFile);
const cli = 'dist/cli/main.js';
const dir = mkdtempSync(join(tmpdir(), 'detect-'));
const weights = join(dir, 'detector.safetensors');
const scene = join(dir, 'scene.png');

describe.runIf(existsSync(cli))('detector commands', () => {
  beforeAll(() => {
    const s = generateScene(loadFashionMnist('test', undefined, { limit: 50 }), 5, 0);
    writeFileSync(scene, encodePng(inputToRgba(s.image, 1, 96, 96)));
  });

  it('trains briefly (checkpoint with its mAP), resumes, detects, and explains a detection with D-RISE', { timeout: 400_000 }, async () => {
    const trained = await run(process.execPath, [
      cli, 'train', '--model', 'fashion-detector', '--epochs', '1', '--scenes', '32', '--batch-size', '16', '--eval-limit', '10', '--out', weights,
    ]);
    expect(trained.stdout).toMatch(/training fashion-detector on 32 synthetic scenes per epoch/);
    expect(trained.stdout).toMatch(/epoch 1: mAP@0\.5 \d+\.\d% \(\d+\.\d% counting each box for its top class only\) on 10 held-out scenes/);
    expect(parseSafetensors(new Uint8Array(readFileSync(weights))).metadata.testMap50).toMatch(/^\d\.\d{4}$/);

    // A second epoch continues the checkpoint (and its scene stream); the epoch length must match.
    const resumed = join(dir, 'resumed.safetensors');
    const more = ['train', '--model', 'fashion-detector', '--epochs', '2', '--batch-size', '16', '--eval-limit', '10', '--resume', weights];
    const second = await run(process.execPath, [cli, ...more, '--scenes', '32', '--out', resumed]);
    expect(second.stdout).toMatch(/resuming after epoch 1 from .*detector\.safetensors/);
    expect(second.stdout).toMatch(/epoch 2\/2 {2}step 2\/2/);
    expect(parseSafetensors(new Uint8Array(readFileSync(resumed))).metadata).toMatchObject({ epochs: '2 of 2', resumedAfterEpoch: '1' });
    const mismatch = await run(process.execPath, [cli, ...more, '--scenes', '64', '--out', resumed]).catch((e) => e);
    expect(mismatch.stderr).toMatch(/was trained on 32 scenes per epoch; pass --scenes 32/);

    const detected = await run(process.execPath, [cli, 'detect', '--image', scene, '--detector', weights, '--threshold', '0', '--out', dir]);
    expect(detected.stdout).toMatch(/ {2}0: .+ \d+%  box \[/);
    expect(detected.stdout).toMatch(/\d+ detection\(s\) → .*detections\.png/);
    expect(decodeImage(new Uint8Array(readFileSync(join(dir, 'detections.png')))).width).toBe(384);

    const explained = await run(process.execPath, [
      cli, 'drise', '--image', scene, '--detector', weights, '--threshold', '0', '--target', '0', '--masks', '48', '--grid', '8', '--batch-size', '16', '--out', dir,
    ]);
    expect(explained.stdout).toMatch(/explaining detection 0: /);
    expect(explained.stdout).toMatch(/drise: 48\/48 masks \(100%\), .* in /);
    expect(explained.stdout).toMatch(/drise: \d+\/48 masks \(\d+%\), .*, ETA /);
    expect(explained.stdout).toMatch(/48 masks in \d+\.\d s \((\d+(\.\d)? masks\/(s|min)|\d+(\.\d)? s\/mask)\) → .*drise-0\.png/);
    const img = decodeImage(new Uint8Array(readFileSync(join(dir, 'drise-0.png'))));
    expect(img.width).toBe(384);

    // A memory budget too small for even one mask: the masks run one at a time, with a warning on stderr.
    const tight = await run(process.execPath, [
      cli, 'drise', '--image', scene, '--detector', weights, '--threshold', '0', '--target', '0', '--masks', '4', '--grid', '8', '--batch-size', '4', '--memory-budget', '1', '--out', dir,
    ]);
    expect(tight.stderr).toMatch(/^saliency: drise: one mask needs about .+, more than the memory budget leaves \(1 MiB, of which .+ in use\); running one at a time/m);
    expect(tight.stdout).toMatch(/4 masks in \d+\.\d s/);

    const err = await run(process.execPath, [cli, 'drise', '--image', scene, '--detector', weights, '--target', '999', '--out', dir]).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/--target 999: the detector found \d+ detection\(s\)/);
  });

  it('detects with an imported CenterNet (model.json), and refuses a graph that is not one', async () => {
    const models = join('node_modules', '@vladmandic', 'human', 'models');
    const found = await run(process.execPath, [cli, 'detect', '--image', 'assets/chelsea.png', '--detector', join(models, 'centernet.json'), '--out', dir]);
    // The cat photograph fills the frame: one box covering most of it (human's CenterNet calls it a dog).
    const line = /^ {2}0: (\w+) (\d+)%  box \[(.+)\]$/m.exec(found.stdout);
    expect(line, found.stdout).not.toBeNull();
    // In the photo's own pixels (451×300), not the detector's 512×512 input.
    expect(found.stdout).toMatch(/detections in assets\/chelsea\.png's pixels \(451×300\)/);
    const [x1, y1, x2, y2] = line![3]!.split(', ').map(Number);
    expect(x1).toBeGreaterThanOrEqual(0);
    expect(y1).toBeGreaterThanOrEqual(0);
    expect(x2).toBeLessThanOrEqual(451);
    expect(y2).toBeLessThanOrEqual(300);
    expect((x2! - x1!) * (y2! - y1!)).toBeGreaterThan(0.5 * 451 * 300);
    // The picture keeps the photo's aspect ratio: 384 wide, 300·384/451 high.
    const picture = decodeImage(new Uint8Array(readFileSync(join(dir, 'detections.png'))));
    expect([picture.width, picture.height]).toEqual([384, 255]);
    const err = await run(process.execPath, [cli, 'detect', '--image', 'assets/chelsea.png', '--detector', join(models, 'emotion.json'), '--out', dir]).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/not a CenterNet graph \(it has no tower_0\/keypoints \/ tower_0\/wh nodes\)/);
  });

  it('reports a classifier as --detector, a run without detections, and a bad --out in one line', async () => {
    const file = join(dir, 'notes.txt');
    writeFileSync(file, 'a file');
    const cases: [string[], RegExp][] = [
      [['detect', '--image', scene, '--detector', 'fashion-vgg', '--out', dir], /'fashion-vgg' is not a detector \(its output per image is \[10\]; a grid detector's is \[5 \+ classes, g, g\]\)/],
      [['drise', '--image', scene, '--target', '0', '--threshold', '1', '--masks', '8', '--out', dir], /--target 0: the detector found no detections at --threshold 1; try a lower --threshold/],
      [['drise', '--image', scene, '--target', '', '--masks', '8', '--out', dir], /--target must be an integer ≥ 0/],
      [['drise', '--image', scene, '--target', '0', '--batch-size', '0', '--out', dir], /--batch-size must be 'auto' or a positive integer/],
      [['drise', '--image', scene, '--target', '0', '--memory-budget', '0.5', '--out', dir], /--memory-budget must be a positive integer/],
      [['detect', '--image', scene, '--threshold', ' ', '--out', dir], /--threshold must be a number in \[0, 1\]/],
      [['detect', '--image', scene, '--out', join(file, 'sub')], /--out .*notes\.txt\/sub: cannot write files there \(a part of the path is a file, not a directory\)/],
      [['drise', '--image', scene, '--target', '0', '--masks', '8', '--out', file], /--out .*notes\.txt: cannot write files there/],
      [['scene', '--index', ''], /--index must be an integer ≥ 0/],
      [['scene', '--out', file], /--out .*notes\.txt: cannot write files there \(.*notes\.txt is a file, not a directory\)/],
    ];
    // Node's mkdir -p never returns under /proc.
    if (existsSync('/proc/self')) cases.push([['scene', '--out', '/proc/saliency-test'], /--out \/proc\/saliency-test: cannot write files there/]);
    for (const [args, message] of cases) {
      const err = await run(process.execPath, [cli, ...args], { timeout: 60_000 }).catch((e) => e);
      expect(err.code, args.join(' ')).toBe(1);
      expect(err.stderr).toMatch(message);
      expect(err.stderr).not.toMatch(/at .*\.js:\d+/);
      expect(err.stdout).toBe(''); // refused before the detector ran: no detections, no masks
    }
  });

  it('prints and draws boxes in the photo\'s own pixels, whatever its aspect ratio', async () => {
    expect(toPhotoBox([10, 20, 30, 40], [512, 512], { width: 600, height: 400 })).toEqual([10 * 600 / 512, 20 * 400 / 512, 30 * 600 / 512, 40 * 400 / 512]);
    expect(pictureSize({ width: 600, height: 400 }, 384)).toEqual([384, 256]);
    expect(pictureSize({ width: 300, height: 600 }, 384)).toEqual([192, 384]);
    // The same scene twice as wide (each column doubled): the detector sees the same 96×96 image,
    // and the boxes come back with their x coordinates doubled.
    const narrow = decodeImage(new Uint8Array(readFileSync(scene)));
    const wide = { width: 192, height: 96, data: new Uint8ClampedArray(192 * 96 * 4) };
    for (let y = 0; y < 96; y++) for (let x = 0; x < 192; x++) wide.data.set(narrow.data.subarray(4 * (y * 96 + (x >> 1)), 4 * (y * 96 + (x >> 1)) + 4), 4 * (y * 192 + x));
    const wideFile = join(dir, 'wide.png');
    writeFileSync(wideFile, encodePng(wide));
    const boxes = async (file: string) => {
      const { stdout } = await run(process.execPath, [cli, 'detect', '--image', file, '--threshold', '0.3', '--out', join(dir, 'wide')]);
      return [...stdout.matchAll(/box \[(.+)\]/g)].map((m) => m[1]!.split(', ').map(Number));
    };
    const a = await boxes(scene);
    const b = await boxes(wideFile);
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBe(a.length);
    a.forEach((box, i) => {
      const [x1, y1, x2, y2] = b[i]!;
      expect(Math.abs(x1! - 2 * box[0]!), `box ${i}`).toBeLessThan(3);
      expect(Math.abs(x2! - 2 * box[2]!)).toBeLessThan(3);
      expect(Math.abs(y1! - box[1]!)).toBeLessThan(1.5);
      expect(Math.abs(y2! - box[3]!)).toBeLessThan(1.5);
    });
    const picture = decodeImage(new Uint8Array(readFileSync(join(dir, 'wide', 'detections.png'))));
    expect([picture.width, picture.height]).toEqual([384, 192]);
  });

  it('scene writes a held-out scene as a PNG and lists its objects', async () => {
    const sceneDir = join(dir, 'scenes');
    const { stdout } = await run(process.execPath, [cli, 'scene', '--index', '7', '--out', sceneDir]);
    const expected = heldOutScene(loadFashionMnist('test'), 7);
    expect(stdout).toMatch(new RegExp(`held-out scene 7: ${expected.boxes.length} object\\(s\\) → .*scene-7\\.png`));
    expected.boxes.forEach((box, k) => expect(stdout).toContain(`  ${FASHION_CLASSES[expected.labels[k]!]}  box [${box.join(', ')}]`));
    const png = decodeImage(new Uint8Array(readFileSync(join(sceneDir, 'scene-7.png'))));
    expect([png.width, png.height]).toEqual([96, 96]);
    for (let p = 0; p < 96 * 96; p++) expect(Math.abs(png.data[p * 4]! - expected.image[p]! * 255)).toBeLessThanOrEqual(0.5);
  });
});
