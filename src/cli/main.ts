#!/usr/bin/env node
/** The `saliency` command line. */
import { Command, CommanderError } from 'commander';
import { SaliencyError } from '../runtime/errors.js';
import { doctor } from './doctor.js';

const program = new Command();
program
  .name('saliency')
  .description('Saliency maps for convolutional networks, computed on the GPU through WebGPU.')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

program
  .command('doctor')
  .description('check that WebGPU works here: print the adapter and its limits, and run a small self-check of the kernels')
  .option('--json', 'print the report as JSON')
  .action(async (opts: { json?: boolean }) => {
    await doctor({ json: !!opts.json });
  });

async function main(): Promise<number> {
  try {
    await program.parseAsync(process.argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof SaliencyError) {
      process.stderr.write(`saliency: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`saliency: unexpected error: ${(e as Error).stack ?? e}\n`);
    return 2;
  }
}

// Dawn keeps the process alive while its GPU object exists: exit explicitly.
main().then((code) => process.exit(code));
