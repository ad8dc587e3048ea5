// The per-device onboarding state machine. Pure: the next state is a function of the current
// state and one history event, so replaying a device's history always gives the same answer.
//
//   registered → dhcp-bound → bmc-booting → image-fetched → bootstrapping → redirected
//                                                                    ↘ provisioning → onboarded
//   any state → failed (an *-error progress report, or the onboarding job failed) and
//   → timed-out (the job's step timed out); failed/timed-out → bootstrapping when the device asks
//   again (RFC 8572 §5.6 retries) or bmc-booting when an operator restarts the job.
//
// The conductor's job transitions (source 'onboarding', type 'transition', written in the same
// transaction as the job row) feed this machine too, so the device's state and its job agree.

export const ONBOARDING_STATES = [
  'registered',
  'dhcp-bound',
  'bmc-booting',
  'image-fetched',
  'bootstrapping',
  'redirected',
  'provisioning',
  'onboarded',
  'failed',
  'timed-out',
] as const;
export type OnboardingState = (typeof ONBOARDING_STATES)[number];

export interface HistoryEventLike {
  source: string;
  type: string;
  data: Record<string, unknown>;
}

const RANK: Record<OnboardingState, number> = {
  registered: 0,
  'dhcp-bound': 1,
  'bmc-booting': 2,
  'image-fetched': 3,
  bootstrapping: 4,
  redirected: 5,
  provisioning: 6,
  onboarded: 7,
  failed: 7,
  'timed-out': 7,
};

/** Early signals (a DHCP lease, a BMC action) never pull a device back from a later state. */
function forward(current: OnboardingState, candidate: OnboardingState): OnboardingState {
  if (current === 'failed' || current === 'timed-out' || current === 'onboarded') return current;
  return RANK[candidate] > RANK[current] ? candidate : current;
}

export function nextState(current: OnboardingState, event: HistoryEventLike): OnboardingState {
  switch (`${event.source}:${event.type}`) {
    case 'dhcp:lease':
    case 'dhcp:options':
      return forward(current, 'dhcp-bound');
    case 'redfish:boot-requested':
    case 'redfish:virtual-media-inserted':
      return forward(current, 'bmc-booting');
    case 'images:download':
      return event.data.completed === true ? forward(current, 'image-fetched') : current;
    case 'bootstrap:request': {
      if (event.data.result !== 'ok') return current;
      // A device that asks again after failing or finishing is starting over (RFC 8572 §5.6 retries).
      const restarted = current === 'failed' || current === 'timed-out' || current === 'onboarded' ? 'registered' : current;
      return event.data.response === 'redirect-information' ? forward(restarted, 'redirected') : forward(restarted, 'bootstrapping');
    }
    case 'bootstrap:progress': {
      const type = String(event.data.progressType ?? '');
      if (type === 'bootstrap-complete') return current === 'redirected' ? current : 'onboarded';
      if (type === 'bootstrap-error' || type.endsWith('-error') || type === 'boot-image-mismatch') return 'failed';
      if (current === 'failed') return current;
      // A device reporting on after its job timed out is alive after all.
      if (current === 'timed-out') return 'provisioning';
      // A redirected device onboards elsewhere; reports sent here on the way are informational.
      if (current === 'redirected') return current;
      if (type === 'bootstrap-initiated' || type === 'informational' || type.endsWith('-warning')) return forward(current, 'bootstrapping');
      return forward(current, 'provisioning');
    }
    case 'admin:state-reset':
      return 'registered';
    case 'onboarding:transition':
      return fromJob(current, event.data);
    default:
      // Audit and informational events (admin edits, requests refused) do not move the machine.
      return current;
  }
}

/** The device state a job transition implies (job.ts: steps and statuses). */
function fromJob(current: OnboardingState, data: Record<string, unknown>): OnboardingState {
  const status = data.status;
  const step = typeof data.step === 'string' ? data.step : '';
  // A device that completed bootstrapping stays onboarded when only the cleanup (eject) fails.
  if ((status === 'failed' || status === 'timed-out') && step === 'cleanup') return current;
  if (status === 'failed') return 'failed';
  if (status === 'timed-out') return 'timed-out';
  if (status === 'complete') return current === 'redirected' ? current : step === 'complete' && data.redirected !== true ? 'onboarded' : current;
  if (status !== 'running' && status !== 'queued') return current; // aborted: the device stays where it is
  // A new attempt (start or retry) takes a finished device back to the start of the machine.
  const base = data.newAttempt === true && (current === 'failed' || current === 'timed-out' || current === 'onboarded') ? 'registered' : current;
  if (status === 'queued') return base;
  if (step === 'bmc-check' || step === 'media-insert' || step === 'http-boot-set' || step === 'boot-override' || step === 'power-on') return forward(base, 'bmc-booting');
  if (step === 'bootstrapping') return forward(base === 'failed' || base === 'timed-out' ? 'registered' : base, 'bootstrapping');
  if (step === 'progress') return base === 'failed' || base === 'timed-out' ? 'provisioning' : forward(base, 'provisioning');
  return base;
}

export function isOnboardingState(value: string): value is OnboardingState {
  return (ONBOARDING_STATES as readonly string[]).includes(value);
}
