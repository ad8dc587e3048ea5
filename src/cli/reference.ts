// The README's CLI reference, generated from the commander program itself (npm run docs), so a
// flag cannot be added, renamed or dropped without the reference following; test/cli/
// reference.test.ts fails when README.md and the program disagree.
import type { Command, Option } from 'commander';

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function usage(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  const args = cmd.registeredArguments.map((a) => {
    const name = a.name() + (a.variadic ? '...' : '');
    return a.required ? `<${name}>` : `[${name}]`;
  });
  return [...names, ...args].join(' ');
}

function flag(o: Option): string {
  return o.flags.replace(/^-\w, /, '');
}

/** Leaf commands in program order: `ztp device add`, …; groups (`ztp device`) are not listed. */
export function leafCommands(program: Command): Command[] {
  const out: Command[] = [];
  const walk = (c: Command) => {
    for (const sub of c.commands) {
      if (sub.name() === 'help') continue;
      if (sub.commands.length > 0) walk(sub);
      else out.push(sub);
    }
  };
  walk(program);
  return out;
}

/** Markdown table: command, what it does, its options (`ztp serve`: the settings, see Configuration). */
export function cliReference(program: Command): string {
  const rows = leafCommands(program).map((cmd) => {
    const visible = cmd.options.filter((o) => !o.hidden);
    const options = usage(cmd) === 'ztp serve' ? 'every setting as a flag (`--bootstrap-port 9443`; see "Configuration")' : visible.map((o) => `\`${cell(flag(o))}\``).join(' ');
    return `| \`${cell(usage(cmd))}\` | ${cell(cmd.description())} | ${options || '-'} |`;
  });
  const globals = program.options.map((o) => `\`${cell(o.flags)}\``).join(', ');
  return [`Global options, accepted by every command: ${globals}.`, '', '| command | does | options |', '|---|---|---|', ...rows].join('\n');
}
