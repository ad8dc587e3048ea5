// `ztp pki init` / `ztp pki show`: the lab PKI under <data-dir>/pki (idempotent).
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { Command } from 'commander';
import { ensureLabPki, splitPem } from '../pki/lab.js';
import { configFrom, EXIT, globalOptions, printResult } from './common.js';
import type { CliRegistrar } from './main.js';

export const registerPkiCommands: CliRegistrar = (program, action, io) => {
  const pki = program.command('pki').description('lab PKI: root CA, TLS, owner, MASA and IDevID CAs');
  pki
    .command('init')
    .description('generate whatever lab PKI material is missing (keys 0600); safe to run again')
    .option('--host <name>', 'extra DNS name or address for the TLS certificate (repeatable)', (v: string, p: string[] = []) => [...p, v])
    .action(
      action(async (cmd: Command, opts: { host?: string[] }) => {
        const g = globalOptions(cmd);
        const config = configFrom(g);
        const { pki: material, generated } = await ensureLabPki(resolve(config.dataDir), config.pki, config.publicHost || hostname(), opts.host ?? []);
        const certs = {
          rootCa: `${material.dir}/root-ca.crt`,
          tls: `${material.dir}/tls.crt`,
          ownerCa: `${material.dir}/owner-ca.crt`,
          owner: `${material.dir}/owner.crt`,
          masaCa: `${material.dir}/masa-ca.crt`,
          idevidRootCa: `${material.dir}/idevid-root-ca.crt`,
          idevidCa: `${material.dir}/idevid-ca.crt`,
        };
        printResult(io, g, { dir: material.dir, generated, certs }, () =>
          generated.length ? `lab PKI in ${material.dir}: generated ${generated.join(', ')}` : `lab PKI in ${material.dir} is complete; nothing generated`,
        );
        return EXIT.OK;
      }),
    );
  pki
    .command('show')
    .description('subjects, issuers and expiry of the PKI material in force')
    .action(
      action(async (cmd: Command) => {
        const g = globalOptions(cmd);
        const config = configFrom(g);
        const { pki: m } = await ensureLabPki(resolve(config.dataDir), config.pki, config.publicHost || hostname());
        const describe = (pem: string) =>
          splitPem(pem).map((p) => {
            const c = new X509Certificate(p);
            return { subject: c.subject.replace(/\n/g, ', '), issuer: c.issuer.replace(/\n/g, ', '), notAfter: c.validTo, san: c.subjectAltName ?? null };
          });
        const out = { tls: describe(m.tls.certPem), owner: describe(m.owner.certPem), masa: describe(m.masa.certPem), idevidCa: describe(m.idevidCa.certPem), deviceTrust: describe(m.deviceTrustPem) };
        printResult(io, g, out, () =>
          Object.entries(out)
            .map(([k, list]) => `${k}:\n` + list.map((c) => `  ${c.subject}\n    issuer ${c.issuer}; until ${c.notAfter}${c.san ? `; ${c.san}` : ''}`).join('\n'))
            .join('\n'),
        );
        return EXIT.OK;
      }),
    );
};
