// The `ztp` command. Non-interactive, `--json` everywhere, stable exit codes (common.ts EXIT),
// idempotent: fleet scripts can run any command twice.
import { Command, CommanderError } from 'commander';
import { ZtpError } from '../errors.js';
import { EXIT, exitCodeFor, globalOptions, printError, processIo, type Io } from './common.js';

/** Each command module adds its subcommands; `action` wraps handlers with error → exit code. */
export interface CliRegistrar {
  (program: Command, action: ActionWrapper, io: Io): void;
}

export type ActionHandler = (cmd: Command, ...args: never[]) => Promise<number | void> | number | void;
export type ActionWrapper = (handler: ActionHandler) => (...args: unknown[]) => Promise<void>;

/** The command `argv` runs: its first word that is neither a global option nor an option's value. */
export function commandOf(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config-file' || arg === '-d' || arg === '--data-dir') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

/**
 * The command modules `argv` needs. `ztp serve` loads only its own: the simulator, the BMC
 * emulator and the other commands cost a long-running server ~170 ms of CPU and ~5 MB at start
 * for nothing (issue 12, bench/startup). Anything else (help, unknown words) loads them all.
 */
export async function registrarsFor(argv: string[]): Promise<CliRegistrar[]> {
  if (commandOf(argv) === 'serve') {
    // before the suite loads: its heap is sized for a long-running server (src/server-heap.ts)
    (await import('../server-heap.js')).applyServerHeapSizing();
    return [(await import('./serve.js')).registerServeCommand];
  }
  return (await import('./commands.js')).REGISTRARS;
}

export interface ProgramOptions {
  /** --json is on the command line: usage errors are reported by main() as JSON, without help */
  json?: boolean;
}

export function buildProgram(io: Io, setExit: (code: number) => void, registrars: CliRegistrar[], options: ProgramOptions = {}): Command {
  // Output settings, help settings and exitOverride are copied to each subcommand when it is
  // created: set them before the registrars run.
  const program = new Command('ztp')
    .description('dpu-ztp: secure zero-touch provisioning for DPUs and IPUs')
    .option('--json', 'machine-readable output')
    .option('--config-file <file>', 'JSON configuration file (also ZTP_CONFIG)')
    .option('-d, --data-dir <dir>', 'data directory (also ZTP_DATA_DIR, default ./data)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      // commander writes to stderr only for usage errors (the message, or help when a subcommand
      // is missing); with --json, main() reports them as one JSON error instead.
      writeErr: (s) => (options.json ? undefined : io.err(s)),
    })
    // `ztp device add --help` also lists --json, --config-file and --data-dir.
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError(!options.json);

  const action: ActionWrapper = (handler) => async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    try {
      const code = await handler(cmd, ...(args.slice(0, -1) as never[]));
      setExit(typeof code === 'number' ? code : EXIT.OK);
    } catch (err) {
      printError(io, globalOptions(cmd), err);
      setExit(exitCodeFor(err));
    }
  };
  for (const register of registrars) register(program, action, io);
  return program;
}

/** Is --json on the command line (before a `--` that ends the options)? */
export function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let exitCode: number = EXIT.OK;
  const json = wantsJson(argv);
  const program = buildProgram(io, (code) => (exitCode = code), await registrarsFor(argv), { json });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return EXIT.OK;
      // Help shown instead of running something (`ztp device` alone): say so in JSON too.
      const message = err.code === 'commander.help' ? 'a subcommand is required (see --help)' : err.message.replace(/^error: /, '');
      if (json) printError(io, { json }, new ZtpError('CLI_USAGE', message, { details: { reason: err.code } }));
      return EXIT.USAGE;
    }
    printError(io, { json }, err);
    return EXIT.ERROR;
  }
  return exitCode;
}
