// The `ztp` command. Non-interactive, `--json` everywhere, stable exit codes (common.ts EXIT),
// idempotent: fleet scripts can run any command twice.
import { Command, CommanderError } from 'commander';
import { EXIT, exitCodeFor, globalOptions, printError, processIo, type Io } from './common.js';
import { registerDeviceCommands } from './device.js';
import { registerPkiCommands } from './pki.js';
import { registerServeCommand } from './serve.js';
import { registerConfigCommands } from './config.js';
import { registerDhcpCommands } from './dhcp.js';
import { registerImageCommands } from './image.js';
import { registerOnboardCommands } from './onboard.js';
import { registerBmcCommands } from './bmc.js';
import { registerBmcEmulatorCommand } from './bmc-emulator.js';
import { registerSimulateCommand } from './simulate.js';

/** Each command module adds its subcommands; `action` wraps handlers with error → exit code. */
export interface CliRegistrar {
  (program: Command, action: ActionWrapper, io: Io): void;
}

export type ActionHandler = (cmd: Command, ...args: never[]) => Promise<number | void> | number | void;
export type ActionWrapper = (handler: ActionHandler) => (...args: unknown[]) => Promise<void>;

const REGISTRARS: CliRegistrar[] = [registerServeCommand, registerPkiCommands, registerDeviceCommands, registerConfigCommands, registerDhcpCommands, registerImageCommands, registerBmcCommands, registerBmcEmulatorCommand, registerOnboardCommands, registerSimulateCommand];

export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command('ztp')
    .description('dpu-ztp: secure zero-touch provisioning for DPUs and IPUs')
    .option('--json', 'machine-readable output')
    .option('--config-file <file>', 'JSON configuration file (also ZTP_CONFIG)')
    .option('-d, --data-dir <dir>', 'data directory (also ZTP_DATA_DIR, default ./data)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError();

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
  for (const register of REGISTRARS) register(program, action, io);
  return program;
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let exitCode: number = EXIT.OK;
  const program = buildProgram(io, (code) => (exitCode = code));
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    printError(io, {}, err);
    return EXIT.ERROR;
  }
  return exitCode;
}
