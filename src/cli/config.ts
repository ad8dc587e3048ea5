// `ztp config show|settings`: the effective configuration, and every setting with its env var.
import type { Command } from 'commander';
import { listSettings } from '../config.js';
import { configFrom, EXIT, globalOptions, printResult, table } from './common.js';
import type { CliRegistrar } from './main.js';

export const registerConfigCommands: CliRegistrar = (program, action, io) => {
  const config = program.command('config').description('inspect configuration');
  config
    .command('show')
    .description('validate and print the effective configuration (secrets masked)')
    .action(
      action((cmd: Command) => {
        const g = globalOptions(cmd);
        const effective = configFrom(g);
        const onboarding = effective.onboarding;
        const masked = {
          ...effective,
          api: { ...effective.api, token: effective.api.token ? '[set]' : '' },
          onboarding: { ...onboarding, webhookSecret: onboarding.webhookSecret ? '[set]' : '', webhooks: onboarding.webhooks.map((w) => ({ ...w, ...(w.secret ? { secret: '[set]' } : {}) })) },
        };
        printResult(io, g, masked, () => JSON.stringify(masked, null, 2));
        return EXIT.OK;
      }),
    );
  config
    .command('settings')
    .description('every setting: key, environment variable, flag, default')
    .action(
      action((cmd: Command) => {
        const g = globalOptions(cmd);
        const settings = listSettings();
        printResult(io, g, settings, () => table([['KEY', 'ENV', 'FLAG', 'DEFAULT'], ...settings.map((s) => [s.key, s.env, s.flag, JSON.stringify(s.default)])]));
        return EXIT.OK;
      }),
    );
};
