// `ztp serve` (= npm start): the whole suite in one process on embedded defaults.
import type { Command } from 'commander';
import { listSettings } from '../config.js';
import { createLogger } from '../log.js';
import { startSuite } from '../suite.js';
import { configFrom, EXIT, globalOptions } from './common.js';
import type { CliRegistrar } from './main.js';

export const registerServeCommand: CliRegistrar = (program, action, io) => {
  const serve = program.command('serve').description('run every service of the suite (bootstrap, images, DHCP, admin API)');
  // Every setting is also a flag (--bootstrap-port 9443); see README "Configuration".
  for (const s of listSettings()) {
    if (s.key === 'dataDir') continue; // a global option
    serve.option(`${s.flag} <value>`, `${s.description} (${s.env})`);
  }
  serve.action(
    action(async (cmd: Command) => {
      const g = globalOptions(cmd);
      const flags: Record<string, string> = {};
      const opts = cmd.opts() as Record<string, string>;
      for (const s of listSettings()) {
        const camel = s.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
        if (opts[camel] !== undefined) flags[s.flag.slice(2)] = opts[camel];
      }
      const config = configFrom(g, flags);
      const log = createLogger(config.logLevel);
      const suite = await startSuite(config, log);
      for (const l of suite.listeners) log.info({ service: l.service, protocol: l.protocol, address: l.address, port: l.port, url: l.url }, `${l.service} listening on ${l.protocol}://${l.address}:${l.port}`);
      // The one place a secret is shown on purpose, and only once: when it is generated. Later
      // starts name the file that holds it (a token from the configuration is never shown).
      if (suite.adminTokenGenerated) io.err(`admin token: ${suite.adminToken} (generated; stored in ${suite.adminTokenFile}, shown only this once)`);
      else io.err(`admin token: ${suite.adminTokenFile ? `in ${suite.adminTokenFile}` : 'from the configuration (api.token / ZTP_API_TOKEN)'}`);
      const api = suite.listeners.find((l) => l.service === 'api');
      if (api) io.err(`dashboard: ${api.url} (sign in with the admin token)`);
      log.info({ listeners: suite.listeners.length }, 'ztp serve ready');
      await new Promise<void>((resolveStop) => {
        let stopping = false;
        const onSignal = (signal: string) => {
          if (stopping) return;
          stopping = true;
          log.info({ signal }, 'shutting down');
          const force = setTimeout(() => {
            log.error('shutdown took longer than 10 s; exiting');
            process.exit(EXIT.ERROR);
          }, 10_000);
          force.unref();
          suite.stop().then(() => resolveStop(), (err: unknown) => {
            log.error({ err }, 'shutdown failed');
            resolveStop();
          });
        };
        process.once('SIGTERM', () => onSignal('SIGTERM'));
        process.once('SIGINT', () => onSignal('SIGINT'));
      });
      log.info('stopped');
      log.flush?.();
      return EXIT.OK;
    }),
  );
};
