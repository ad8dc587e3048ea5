// `ztp dhcp …`: export the DHCP responder's settings (and registered devices) as configuration
// for labs that keep their own DHCP server.
import { hostname } from 'node:os';
import type { CliRegistrar } from './main.js';
import { globalOptions, openStorage, printResult, usageError } from './common.js';
import { exportConfig, type ExportFormat } from '../dhcp/export.js';
import { defaultSztpUrls } from '../dhcp/service.js';

export const registerDhcpCommands: CliRegistrar = (program, action, io) => {
  const dhcp = program.command('dhcp').description('DHCP responder: export equivalent configuration for other DHCP servers');
  dhcp
    .command('export')
    .description('print Kea, dnsmasq or ISC dhcpd configuration equivalent to dhcp.* settings and registered devices (option 143 as raw bytes)')
    .requiredOption('--format <format>', 'kea | dnsmasq | isc-dhcpd')
    .option('--public-host <host>', 'host devices use to reach the bootstrap server (default: the publicHost setting, else this host name, as ztp serve)')
    .action(
      action((cmd) => {
        const opts = globalOptions(cmd);
        const local = cmd.opts() as { format: string; publicHost?: string };
        if (!['kea', 'dnsmasq', 'isc-dhcpd'].includes(local.format)) throw usageError(`--format must be kea, dnsmasq or isc-dhcpd (got "${local.format}")`);
        const storage = openStorage(opts);
        try {
          // As `ztp serve` does: without --public-host or the publicHost setting, option 143 names
          // this machine's host name, said on stderr, since the DPUs must resolve that name.
          let publicHost = local.publicHost ?? storage.config.publicHost;
          if (!publicHost && storage.config.bootstrap.enabled && !storage.config.dhcp.sztpUrls) {
            publicHost = hostname();
            io.err(`ztp: warning: no --public-host (or publicHost setting, ZTP_PUBLIC_HOST): option 143 names this host, ${publicHost}, as ztp serve does; the DPUs must resolve it`);
          }
          const sztpUrls = defaultSztpUrls({ config: storage.config, publicHost } as Parameters<typeof defaultSztpUrls>[0]);
          const result = exportConfig(local.format as ExportFormat, { dhcp: storage.config.dhcp, sztpUrls, devices: storage.store.list() });
          printResult(io, opts, result.json ?? result, () => result.text.trimEnd());
        } finally {
          storage.close();
        }
      }),
    );
};
