// Combinations that can never onboard are refused when a device is registered (`ztp device
// add`, `ztp device import`, POST/PUT /api/v1/devices, import), with a message saying what to
// change, instead of failing hours later on a rack. Pure over the input, the stored record and
// an image lookup.
import { OPI_ALWAYS_SIGNED, type Device, type DeviceInput } from '../devices/model.js';
import type { DeviceStore } from '../devices/store.js';
import { ZtpError } from '../errors.js';

const URL_RE = /^[a-z][a-z0-9+.-]*:\/\//i;

/** What is wrong with registering `input` over `existing` (empty: nothing). */
export function admissionProblems(input: DeviceInput, existing: Device | undefined, imageKnown: ((nameOrSha256: string) => boolean) | undefined): { field: string; message: string }[] {
  const problems: { field: string; message: string }[] = [];
  const profile = input.profile ?? existing?.profile ?? 'rfc8572';
  const signing = input.signing ?? existing?.signing ?? 'auto';
  if (profile === 'opi' && signing === 'always') problems.push({ field: 'signing', message: OPI_ALWAYS_SIGNED });
  if (input.bootImage && !URL_RE.test(input.bootImage) && imageKnown && !imageKnown(input.bootImage)) {
    problems.push({
      field: 'bootImage',
      message: `--boot-image "${input.bootImage}" is neither a catalogue image nor a URL: add it first (ztp image add FILE --name ${input.bootImage}) or give a URL with --sha256`,
    });
  }
  if (input.bmc) {
    // As the store merges: the password of the same BMC is kept when an update omits it.
    const sameBmc = existing?.bmc?.address === input.bmc.address;
    const hasPassword = !!input.bmc.password || !!input.bmc.factoryPassword || (sameBmc && (!!existing?.bmc?.password || existing?.bmc?.passwordUnreadable === true));
    if (!input.bmc.username || !hasPassword) {
      problems.push({ field: 'bmc', message: `the BMC ${input.bmc.address} needs credentials: --bmc-user and --bmc-password (bmc.username and bmc.password)` });
    }
  }
  return problems;
}

/** Throws DEVICE_INVALID (one device) or DEVICE_IMPORT_INVALID listing every refused row. */
export function admitDevices(store: Pick<DeviceStore, 'get'>, inputs: DeviceInput[], imageKnown: ((nameOrSha256: string) => boolean) | undefined, rowOf?: (index: number) => number): void {
  const errors: { row: number; serial: string; message: string }[] = [];
  inputs.forEach((input, i) => {
    for (const p of admissionProblems(input, store.get(input.serial), imageKnown)) errors.push({ row: rowOf ? rowOf(i) : i + 1, serial: input.serial, message: `${p.field}: ${p.message}` });
  });
  if (errors.length === 0) return;
  if (!rowOf && inputs.length === 1) {
    throw new ZtpError('DEVICE_INVALID', `${inputs[0]!.serial}: ${errors.map((e) => e.message).join('; ')}`, { details: { field: errors[0]!.message.split(':')[0] } });
  }
  throw new ZtpError('DEVICE_IMPORT_INVALID', `${errors.length} row(s) refused; nothing imported:\n` + errors.map((e) => `  row ${e.row} (${e.serial}): ${e.message}`).join('\n'), { details: { errors } });
}
