// What the BMC emulator tells the simulated DPU (src/simulate/) behind it. Types only.

/** Emitted as 'booting' on the emulator's `events` when a system powers on (or restarts) with
 * media inserted, an HTTP boot URI set, or a BFB pushed. */
export interface BootingEvent {
  /** the emulated BMC (its port or path prefix id) */
  bmcId: string;
  systemId: string;
  /** the system's SerialNumber as the emulator presents it */
  serial: string | null;
  via: 'virtual-media' | 'uefi-http' | 'pxe' | 'bfb' | 'disk';
  /** the inserted image, HttpBootUri or BFB ImageURI; null when booting from disk or PXE */
  imageUrl: string | null;
  /** the override target that was consumed (Cd, UsbCd, UefiHttp, …) */
  target: string | null;
  /** the UEFI boot option booted (BootNext, or the head of BootOrder), where the BMC models them */
  bootOption?: { reference: string; name: string };
  at: Date;
}

/** Emitted as 'power' on every power transition end. */
export interface PowerEvent {
  bmcId: string;
  systemId: string;
  state: 'On' | 'Off';
  at: Date;
}
