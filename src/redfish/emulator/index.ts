// The BMC emulator: N DPU BMCs behind one Redfish service (see app.ts for addressing).
export { buildBmcEmulatorApp, bmcIdFor, type BmcEmulator, type BmcEmulatorOptions } from './app.js';
export { startBmcEmulator, type RunBmcEmulatorOptions, type RunningBmcEmulator, type BmcEndpointInfo } from './runner.js';
export { EmulatedBmc, DEFAULT_TIMING, ZERO_TIMING, type EmulatorTiming, type BmcStats } from './bmc.js';
export { QUIRKS, QUIRK_MODES, isQuirkMode, type QuirkMode, type QuirkProfile } from './quirks.js';
export { parseFaults, applyFault, faultsFor, FAULT_NAMES, type FaultSpec } from './faults.js';
export { deriveIdentity, type BmcIdentity } from './tree.js';
export type { BootingEvent, PowerEvent } from './hooks.js';
