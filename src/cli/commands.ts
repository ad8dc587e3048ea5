// Every command module of `ztp`, for help and every command but `serve` (main.ts registrarsFor).
import type { CliRegistrar } from './main.js';
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

export const REGISTRARS: CliRegistrar[] = [registerServeCommand, registerPkiCommands, registerDeviceCommands, registerConfigCommands, registerDhcpCommands, registerImageCommands, registerBmcCommands, registerBmcEmulatorCommand, registerOnboardCommands, registerSimulateCommand];
