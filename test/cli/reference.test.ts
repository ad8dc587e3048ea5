// README's CLI reference is generated from the commander program (src/cli/reference.ts, npm run
// docs): it must match the program as built now, so a flag cannot change without the docs.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REGISTRARS } from '../../src/cli/commands.js';
import { buildProgram } from '../../src/cli/main.js';
import { cliReference, leafCommands } from '../../src/cli/reference.js';

const program = () => buildProgram({ out: () => undefined, err: () => undefined }, () => undefined, REGISTRARS);
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README CLI reference', () => {
  it('is what `npm run docs` generates from the program (run it after changing a command)', () => {
    const section = /<!-- cli:begin -->\n([\s\S]*?)\n<!-- cli:end -->/.exec(readme)?.[1];
    expect(section, 'README.md has no <!-- cli:begin --> … <!-- cli:end --> section').toBeDefined();
    expect(section).toBe(cliReference(program()));
  });

  it('names every command and every visible option, and leaves hidden ones out', () => {
    const text = cliReference(program());
    const commands = leafCommands(program());
    expect(commands.length).toBeGreaterThan(20);
    for (const cmd of commands) {
      expect(text).toContain(`\`ztp ${cmd.parent!.name() === 'ztp' ? '' : cmd.parent!.name() + ' '}${cmd.name()}`);
      if (cmd.name() === 'serve') continue;
      for (const o of cmd.options) expect(text.includes(`\`${o.flags.replace(/^-\w, /, '')}\``), `${cmd.name()} ${o.flags}`).toBe(!o.hidden);
    }
    expect(text).toContain('`ztp onboard [serials...]`');
  });

  it('the generator can fail: a renamed flag no longer matches', () => {
    const p = program();
    const add = p.commands.find((c) => c.name() === 'device')!.commands.find((c) => c.name() === 'add')!;
    add.options.find((o) => o.long === '--boot-image')!.flags = '--boot-img <nameOrUrl>';
    expect(cliReference(p)).not.toBe(cliReference(program()));
  });
});
