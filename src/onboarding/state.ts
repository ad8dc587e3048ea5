// The per-device onboarding state machine. Pure: the next state is a function of the current
// state and one history event, so replaying a device's history always gives the same answer.
//
//   registered → dhcp-bound → bmc-booting → image-fetched → bootstrapping → redirected
//                                                                    ↘ provisioning → onboarded
//   any state → failed (an *-error progress report), and failed → bootstrapping on retry.

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
};

/** Early signals (a DHCP lease, a BMC action) never pull a device back from a later state. */
function forward(current: OnboardingState, candidate: OnboardingState): OnboardingState {
  if (current === 'failed' || current === 'onboarded') return current;
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
      const restarted = current === 'failed' || current === 'onboarded' ? 'registered' : current;
      return event.data.response === 'redirect-information' ? forward(restarted, 'redirected') : forward(restarted, 'bootstrapping');
    }
    case 'bootstrap:progress': {
      const type = String(event.data.progressType ?? '');
      if (type === 'bootstrap-complete') return current === 'redirected' ? current : 'onboarded';
      if (type === 'bootstrap-error' || type.endsWith('-error') || type === 'boot-image-mismatch') return 'failed';
      if (current === 'failed') return current;
      // A redirected device onboards elsewhere; reports sent here on the way are informational.
      if (current === 'redirected') return current;
      if (type === 'bootstrap-initiated' || type === 'informational' || type.endsWith('-warning')) return forward(current, 'bootstrapping');
      return forward(current, 'provisioning');
    }
    case 'admin:state-reset':
      return 'registered';
    default:
      // Audit and informational events (admin edits, requests refused) do not move the machine.
      return current;
  }
}

export function isOnboardingState(value: string): value is OnboardingState {
  return (ONBOARDING_STATES as readonly string[]).includes(value);
}
