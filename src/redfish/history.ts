// Every BMC step becomes a history event of the device it belongs to (source 'redfish'), so the
// onboarding state machine, the CLI and the dashboard read the same facts. Event types are the
// step names (see README "Redfish client"); 'boot-requested' moves a device to bmc-booting.
import type { DeviceStore } from '../devices/store.js';
import type { Logger } from '../log.js';
import type { StepListener } from './api.js';
import { displayUrl } from './transport.js';

/** The event types this listener may write (one per step name). */
export const REDFISH_EVENT_TYPES = [
  'login', 'password-change', 'inventory', 'eject', 'insert', 'verify-inserted', 'boot-override', 'clear-boot',
  'reset', 'wait-power', 'boot-requested', 'rshim', 'bfb-update', 'operation-mode', 'boot-oob', 'restore-boot-order',
] as const;

export interface HistoryListenerOptions {
  store: Pick<DeviceStore, 'record'>;
  serial: string;
  /** the BMC URL; recorded without credentials, query or fragment */
  bmcUrl: string;
  log?: Logger;
}

export function historyStepListener(options: HistoryListenerOptions): StepListener {
  const bmc = displayUrl(options.bmcUrl);
  return (step) => {
    const data: Record<string, unknown> = { outcome: step.outcome, durationMs: step.durationMs, bmc };
    if (step.messageId !== undefined) data.messageId = step.messageId;
    if (step.via !== undefined) data.via = step.via;
    if (step.detail !== undefined) data.detail = step.detail;
    try {
      options.store.record({ serial: options.serial, source: 'redfish', type: step.step, data });
    } catch (err) {
      // A history write must never break a BMC operation half-way (the BMC state is the truth).
      options.log?.warn({ serial: options.serial, step: step.step, err: err instanceof Error ? err.message : String(err) }, 'could not record a BMC step');
    }
  };
}

/** Several listeners as one (e.g. history + CLI progress). */
export function allListeners(...listeners: (StepListener | undefined)[]): StepListener {
  return (step) => {
    for (const l of listeners) l?.(step);
  };
}
