// Every HTTP exchange the Redfish transport makes is published on one diagnostics_channel (the
// way undici publishes its own requests), so metrics and traces observe BMC traffic without the
// transport knowing who listens. Publishing costs nothing when nobody subscribes.
import { channel } from 'node:diagnostics_channel';

export const REDFISH_EXCHANGE_CHANNEL = 'dpu-ztp:redfish:exchange';

export interface RedfishExchangeMessage {
  phase: 'start' | 'end';
  /** the same object identity for the start and end of one exchange */
  id: object;
  bmc: string;
  method: string;
  /** request path on the BMC (no credentials: Redfish sends them in headers) */
  path: string;
  /** the onboarding step or CLI operation that made the call, when known */
  step?: string;
  status?: number;
  /** error code (ZtpError code or socket error) when no HTTP status came back */
  errorCode?: string;
  durationMs: number;
}

export const redfishExchanges = channel(REDFISH_EXCHANGE_CHANNEL);
