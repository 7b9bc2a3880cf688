/**
 * The deployment files (deploy/kubernetes/indexed-job.yaml and the Dockerfile) cannot run here (no
 * cluster, no Docker engine). What can be checked is: the manifests are valid Kubernetes objects
 * (kubernetes-models' schema validators), their settings agree with each other, and the command the
 * container runs (the Dockerfile's entry point + the Job's args, with JOB_COMPLETION_INDEX set for
 * each index as Kubernetes sets it) is exactly what this test runs, shard by shard, ending with a
 * complete batch-merge.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Job } from 'kubernetes-models/batch/v1';
import { PersistentVolumeClaim } from 'kubernetes-models/v1';
import { encodePng } from '../src/saliency/image.js';
import { rng } from './helpers.js';

const run = promisify(execFile);
const docs = parseAllDocuments(readFileSync('deploy/kubernetes/indexed-job.yaml', 'utf8')).map((d) => {
  expect(d.errors).toEqual([]);
  return d.toJS() as { kind: string; metadata: { name: string } } & Record<string, unknown>;
});
const job = docs.find((d) => d.kind === 'Job') as unknown as import('kubernetes-models/batch/v1').IJob;
const claim = docs.find((d) => d.kind === 'PersistentVolumeClaim') as unknown as import('kubernetes-models/v1').IPersistentVolumeClaim;
const container = job.spec!.template.spec!.containers[0]!;

/** The last stage of the Dockerfile: its base image, workdir, entry point and the packages it installs. */
function dockerfile() {
  const text = readFileSync('Dockerfile', 'utf8').replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM /m).slice(1);
  const last = stages[stages.length - 1]!;
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(last);
  return {
    from: last.split('\n')[0]!.trim(),
    workdir: /^WORKDIR (\S+)$/m.exec(last)?.[1],
    entrypoint: entry ? (JSON.parse(entry[1]!) as string[]) : [],
    runs: [...last.matchAll(/^RUN (.*)$/gm)].map((m) => m[1]!).join(' '),
    copies: [...last.matchAll(/^COPY (.*)$/gm)].map((m) => m[1]!),
  };
}

describe('deployment files', () => {
  it('the manifests are valid Kubernetes objects', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(['Job', 'PersistentVolumeClaim']);
    expect(() => new Job(job).validate()).not.toThrow();
    expect(() => new PersistentVolumeClaim(claim).validate()).not.toThrow();
    // The validator has teeth: a wrong type or a missing template is refused.
    expect(() => new Job({ ...job, spec: { ...job.spec!, completions: '4' as unknown as number } }).validate()).toThrow(/completions must be integer/);
    expect(() => new Job({ ...job, spec: { ...job.spec!, completionMode: 'indexed' as 'Indexed' } }).validate()).toThrow(/completionMode/);
  });

  it('the Job is an Indexed Job whose shard count, volume and retry settings agree', () => {
    const spec = job.spec!;
    expect(spec.completionMode).toBe('Indexed');
    const env = new Map((container.env ?? []).map((e) => [e.name, e.value]));
    expect(Number(env.get('SALIENCY_SHARD_COUNT'))).toBe(spec.completions);
    expect(spec.parallelism).toBeLessThanOrEqual(spec.completions!);
    // backoffLimitPerIndex needs restartPolicy Never; podReplacementPolicy Failed keeps a shard to one writer.
    expect(spec.backoffLimitPerIndex).toBeGreaterThan(0);
    expect(job.spec!.template.spec!.restartPolicy).toBe('Never');
    expect(spec.podReplacementPolicy).toBe('Failed');
    const args = container.args!;
    expect(args.slice(0, 1)).toEqual(['batch']);
    expect(args[args.indexOf('--shard') + 1]).toBe('auto');
    const mount = container.volumeMounts![0]!;
    for (const opt of ['--input', '--out']) expect(args[args.indexOf(opt) + 1]!.startsWith(`${mount.mountPath}/`)).toBe(true);
    const volume = job.spec!.template.spec!.volumes!.find((v) => v.name === mount.name)!;
    expect(volume.persistentVolumeClaim!.claimName).toBe(claim.metadata!.name);
    expect(claim.spec!.accessModes).toEqual(['ReadWriteMany']);
  });

  it('the image is Debian with Node, the Vulkan loader and lavapipe, and runs the saliency CLI', () => {
    const d = dockerfile();
    expect(d.from).toMatch(/^node:20-bookworm/); // Debian 12 with Node 20
    for (const pkg of ['libvulkan1', 'mesa-vulkan-drivers']) expect(d.runs).toContain(pkg);
    expect(readFileSync('Dockerfile', 'utf8')).toMatch(/^ENV NVIDIA_DRIVER_CAPABILITIES=.*graphics/m);
    expect(d.workdir).toBe('/app');
    expect(d.entrypoint).toEqual(['node', '/app/dist/cli/main.js']);
    expect(d.copies).toContain('--from=build /app/dist ./dist');
    expect(d.copies).toContain('--from=build /app/models ./models'); // the bundled model the Job names
  });

  it.runIf(existsSync('dist/cli/main.js'))("runs the container's command for every index of the Job, and batch-merge finds every input once", async () => {
    const data = mkdtempSync(join(tmpdir(), 'deploy-'));
    const mount = container.volumeMounts![0]!.mountPath;
    const args = container.args!;
    const inputDir = args[args.indexOf('--input') + 1]!.replace(mount, data);
    mkdirSync(inputDir, { recursive: true });
    const r = rng(5);
    for (let i = 0; i < 12; i++) {
      const px = new Uint8ClampedArray(28 * 28 * 4).map((_, k) => (k % 4 === 3 ? 255 : Math.floor(256 * r())));
      writeFileSync(join(inputDir, `${i}.png`), encodePng({ width: 28, height: 28, data: px }));
    }
    // The container's command, with /app the repository and the volume a temporary folder.
    const [node, script] = dockerfile().entrypoint as [string, string];
    expect(node).toBe('node');
    const argv = [script.replace(/^\/app\//, ''), ...args.map((a) => a.replace(mount, data))];
    const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value!]));
    const runs = await Promise.all(
      Array.from({ length: job.spec!.completions! }, (_, i) => run(process.execPath, argv, { env: { ...process.env, ...env, JOB_COMPLETION_INDEX: String(i) } })),
    );
    for (const [i, p] of runs.entries()) expect(p.stdout).toMatch(new RegExp(`shard ${i} of ${job.spec!.completions}, of 12`));
    const out = args[args.indexOf('--out') + 1]!.replace(mount, data);
    const merged = await run(process.execPath, [argv[0]!, 'batch-merge', out, '--json']);
    expect(JSON.parse(merged.stdout)).toMatchObject({ shards: job.spec!.completions, inputs: 12, ok: 12, missing: [], duplicates: [], problems: [] });
  });
});
