// The scrape-time DHCP families: the worker's flat counters become packets by outcome and
// messages by direction and type, for v4 and v6; the text is Prometheus exposition 0.0.4.
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics.js';

describe('DHCP metrics from the worker counters', () => {
  it('splits outcomes from message types, per family', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.readFrom({ dhcpStats: () => ({ received: 5, sent: 4, 'drop-DHCP_TRUNCATED': 1, 'rx:DISCOVER': 3, 'tx:OFFER': 3, 'v6-received': 2, 'v6-rx:SOLICIT': 2, 'v6-tx:ADVERTISE': 1, 'rx:BOOTP': 1 }) });
    const { body, contentType } = await metrics.render();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const lines = body.split('\n').filter((l) => l.startsWith('ztp_dhcp_'));
    expect(lines).toEqual(expect.arrayContaining([
      'ztp_dhcp_packets_total{family="4",outcome="received"} 5',
      'ztp_dhcp_packets_total{family="4",outcome="drop-DHCP_TRUNCATED"} 1',
      'ztp_dhcp_packets_total{family="6",outcome="received"} 2',
      'ztp_dhcp_messages_total{family="4",direction="rx",type="DISCOVER"} 3',
      'ztp_dhcp_messages_total{family="4",direction="tx",type="OFFER"} 3',
      'ztp_dhcp_messages_total{family="4",direction="rx",type="BOOTP"} 1',
      'ztp_dhcp_messages_total{family="6",direction="rx",type="SOLICIT"} 2',
      'ztp_dhcp_messages_total{family="6",direction="tx",type="ADVERTISE"} 1',
    ]));
    // A message-type key is never also an outcome.
    expect(lines.some((l) => l.startsWith('ztp_dhcp_packets_total') && l.includes(':'))).toBe(false);
  });
});

// Issue 12: prom-client is imported on the first count or scrape, not at start. Counts made
// before it has loaded wait in order and all reach the first scrape.
describe('prom-client loaded on first use', () => {
  const sample = (body: string, prefix: string) => body.split('\n').find((l) => l.startsWith(prefix));

  it('counts made before prom-client has loaded all reach the first scrape, and later ones too', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    // synchronously, before the import started by the first count can have finished
    for (let i = 0; i < 3; i++) metrics.httpRequests.inc({ service: 'bootstrap', method: 'POST', status: '200' });
    metrics.imageBytes.inc({ protocol: 'http', view: 'bmc' }, 1000);
    metrics.httpDuration.observe({ service: 'bootstrap' }, 0.02);
    metrics.httpDuration.observe({ service: 'bootstrap' }, 3);
    let { body } = await metrics.render();
    expect(sample(body, 'ztp_http_requests_total{service="bootstrap",method="POST",status="200"}')).toBe('ztp_http_requests_total{service="bootstrap",method="POST",status="200"} 3');
    expect(sample(body, 'ztp_image_bytes_served_total{')).toBe('ztp_image_bytes_served_total{protocol="http",view="bmc"} 1000');
    expect(sample(body, 'ztp_http_request_duration_seconds_count{')).toBe('ztp_http_request_duration_seconds_count{service="bootstrap"} 2');
    expect(sample(body, 'ztp_http_request_duration_seconds_sum{')).toBe('ztp_http_request_duration_seconds_sum{service="bootstrap"} 3.02');
    expect(sample(body, 'ztp_http_request_duration_seconds_bucket{le="0.025"')).toBe('ztp_http_request_duration_seconds_bucket{le="0.025",service="bootstrap"} 1');
    metrics.httpRequests.inc({ service: 'bootstrap', method: 'POST', status: '200' });
    ({ body } = await metrics.render());
    expect(sample(body, 'ztp_http_requests_total{service="bootstrap"')).toMatch(/ 4$/);
  });

  it('every family has HELP before anything was counted; the default process families only when asked for', async () => {
    const quiet = await new Metrics({ defaultMetrics: false }).render();
    for (const family of ['ztp_bootstrap_requests_total', 'ztp_http_request_duration_seconds', 'ztp_onboarding_step_duration_seconds', 'ztp_devices', 'ztp_dhcp_leases_bound']) {
      expect(quiet.body).toContain(`# HELP ${family} `);
    }
    expect(quiet.body).not.toContain('process_cpu_seconds_total');
    expect((await new Metrics().render()).body).toContain('process_cpu_seconds_total');
  });

  it('a count prom-client refuses while it loads is not lost silently: the next scrape fails, and the ones after it serve again', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    (metrics.bootstrapAuth.inc as (labels: Record<string, string>) => void)({ colour: 'red' });
    await expect(metrics.render()).rejects.toThrow(/colour/);
    metrics.bootstrapAuth.inc({ method: 'cert' });
    expect((await metrics.render()).body).toContain('ztp_bootstrap_auth_total{method="cert"} 1');
  });
});
