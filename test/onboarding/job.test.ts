// The pure parts of onboarding: what a job transition does to the device's state (state.ts),
// which downloads belong to a device's image, durations as the CLI and config write them.
import { describe, expect, it } from 'vitest';
import { formatDuration, isOwnImage, jobProgress, parseDuration } from '../../src/onboarding/job.js';
import { nextState, type OnboardingState } from '../../src/onboarding/state.js';

const t = (data: Record<string, unknown>) => ({ source: 'onboarding', type: 'transition', data });

describe('device state follows the job (state.ts)', () => {
  it.each<[OnboardingState, Record<string, unknown>, OnboardingState]>([
    ['registered', { step: 'bmc-check', status: 'running' }, 'bmc-booting'],
    ['dhcp-bound', { step: 'power-on', status: 'running' }, 'bmc-booting'],
    ['provisioning', { step: 'booting', status: 'timed-out' }, 'timed-out'],
    ['bmc-booting', { step: 'media-insert', status: 'failed' }, 'failed'],
    ['onboarded', { step: 'cleanup', status: 'failed' }, 'onboarded'],
    ['failed', { step: 'bmc-check', status: 'queued', newAttempt: true }, 'registered'],
    ['timed-out', { step: 'bmc-check', status: 'running', newAttempt: true }, 'bmc-booting'],
    ['timed-out', { step: 'progress', status: 'running' }, 'provisioning'],
    ['bootstrapping', { step: 'booting', status: 'aborted' }, 'bootstrapping'],
    ['redirected', { step: 'complete', status: 'complete', redirected: true }, 'redirected'],
    ['provisioning', { step: 'complete', status: 'complete' }, 'onboarded'],
  ])('%s + %j → %s', (from, data, to) => {
    expect(nextState(from, t(data))).toBe(to);
  });

  it('a device that asks again after timing out is bootstrapping again (RFC 8572 §5.6)', () => {
    expect(nextState('timed-out', { source: 'bootstrap', type: 'request', data: { result: 'ok', response: 'onboarding-information' } })).toBe('bootstrapping');
  });
});

describe('image attribution', () => {
  it('only the device\'s own image counts, by name, digest or URL tail', () => {
    const img = { bootImage: 'os.iso', sha256: 'ab'.repeat(32) };
    expect(isOwnImage({ image: 'os.iso' }, img)).toBe(true);
    expect(isOwnImage({ image: 'renamed.iso', sha256: 'ab'.repeat(32) }, img)).toBe(true);
    expect(isOwnImage({ image: 'shell.efi', sha256: 'cd'.repeat(32) }, img)).toBe(false);
    expect(isOwnImage({ image: 'boot.efi' }, { bootImage: 'http://mirror/x/boot.efi', sha256: null })).toBe(true);
    expect(isOwnImage({ image: 'os.iso' }, { bootImage: null, sha256: null })).toBe(false);
  });
});

describe('durations', () => {
  it.each([['90', 90_000], ['90s', 90_000], ['15m', 900_000], ['1h30m', 5_400_000], ['500ms', 500], ['2h', 7_200_000]])('%s = %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
  it.each(['', 'abc', '10x', '5m junk', '-3'])('%j is not a duration', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
  it('formats for people', () => {
    expect([formatDuration(450), formatDuration(90_000), formatDuration(3_600_000), formatDuration(3_725_000)]).toEqual(['450ms', '1m30s', '1h', '1h2m5s']);
  });
  it('progress bars never reach 100% before complete', () => {
    expect(jobProgress({ step: 'bmc-check', status: 'running', progressCount: 0 }, true)).toBe(0);
    expect(jobProgress({ step: 'progress', status: 'running', progressCount: 50 }, true)).toBeLessThan(1);
    expect(jobProgress({ step: 'complete', status: 'complete', progressCount: 8 }, false)).toBe(1);
  });
});
