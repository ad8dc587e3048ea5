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
