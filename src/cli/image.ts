// `ztp image add|list|show|rm`: the image catalogue from the command line. Idempotent: adding the
// same content under the same name twice reports "unchanged" and exits 0.
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Command } from 'commander';
import { ZtpError } from '../errors.js';
import { describeImage } from '../images/api.js';
import { defaultImageName, ImageCatalogue, imagesDirOf, type ImageEntry } from '../images/catalogue.js';
import { EXIT, globalOptions, openStorage, printResult, table, type Storage } from './common.js';
import type { CliRegistrar } from './main.js';

/** Time allowed for a URL source to answer with headers; the body itself may take as long as it needs. */
const URL_HEADERS_TIMEOUT_MS = 30_000;

function withCatalogue<T>(storage: Storage, fn: (c: ImageCatalogue) => Promise<T>): Promise<T> {
  const catalogue = new ImageCatalogue(storage.db, imagesDirOf(resolve(storage.config.dataDir)));
  return fn(catalogue).finally(() => storage.close());
}

function publicHostOf(storage: Storage): string {
  return storage.config.publicHost || hostname();
}

function humanSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Opens an http(s) source; TLS is verified (system CAs, NODE_EXTRA_CA_CERTS). */
async function openUrl(url: string): Promise<Readable> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), URL_HEADERS_TIMEOUT_MS);
  timer.unref();
  let res: Response;
  try {
    res = await fetch(url, { signal: controller.signal, redirect: 'follow' });
  } catch (err) {
    throw new ZtpError('IMAGES_FETCH_FAILED', `cannot fetch ${url}: ${(err as Error).message}`, { cause: err, details: { url } });
  } finally {
    clearTimeout(timer);
  }
  if (!res.ok || !res.body) throw new ZtpError('IMAGES_FETCH_FAILED', `cannot fetch ${url}: HTTP ${res.status}`, { details: { url, status: res.status } });
  return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
}

function row(e: ImageEntry): string[] {
  return [e.name, e.sha256.slice(0, 16) + '…', humanSize(e.size), [e.osName, e.osVersion].filter(Boolean).join(' ') || '-', e.requireClientCert ? 'mtls' : '-', e.updatedAt];
}

export const registerImageCommands: CliRegistrar = (program, action, io) => {
  const image = program.command('image').description('the image catalogue: ISOs for BMCs, boot images for sZTP');

  image
    .command('add <fileOrUrl>')
    .description('add a file or an http(s) URL to the catalogue (streamed, sha256 computed once; idempotent)')
    .option('--name <name>', 'catalogue name (default: the file or URL base name)')
    .option('--os-name <name>', 'OS name conveyed with the boot image')
    .option('--os-version <version>', 'OS version conveyed with the boot image')
    .option('--sha256 <hex>', 'expected SHA-256: refuse content that does not match')
    .option('--require-client-cert', 'serve this image only over HTTPS to a trusted device certificate')
    .option('--replace', 'let an existing name take new content')
    .action(
      action(async (cmd: Command, source: string, opts: Record<string, string | boolean | undefined>) => {
        const g = globalOptions(cmd);
        const isUrl = /^https?:\/\//i.test(source);
        const name = (opts.name as string | undefined) ?? defaultImageName(source);
        const input = {
          name,
          sha256: opts.sha256 as string | undefined,
          osName: opts.osName as string | undefined,
          osVersion: opts.osVersion as string | undefined,
          requireClientCert: opts.requireClientCert ? true : undefined,
          replace: opts.replace === true,
          source: isUrl ? source : resolve(source),
        };
        const storage = openStorage(g);
        const result = await withCatalogue(storage, async (catalogue) => {
          if (isUrl) return catalogue.add(await openUrl(source), input);
          return catalogue.addFile(resolve(source), input).catch((err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT' || err.code === 'EISDIR' || err.code === 'EACCES') {
              throw new ZtpError('IMAGES_INVALID', `cannot read ${source}: ${err.message}`, { cause: err, details: { file: source } });
            }
            throw err;
          });
        });
        const described = describeImage(result.entry, storage.config, publicHostOf(storage));
        printResult(io, g, { outcome: result.outcome, storedNewContent: result.storedNewContent, image: described }, () =>
          [`${result.outcome}: ${result.entry.name} (${humanSize(result.entry.size)}, sha256 ${result.entry.sha256})`, `  bmc:    ${described.urls.bmc}`, `  device: ${described.urls.device}`].join('\n'),
        );
        return EXIT.OK;
      }),
    );

  image
    .command('list')
    .description('list catalogue images')
    .action(
      action(async (cmd: Command) => {
        const g = globalOptions(cmd);
        const storage = openStorage(g);
        const entries = await withCatalogue(storage, async (c) => c.list());
        const ph = publicHostOf(storage);
        printResult(io, g, { images: entries.map((e) => describeImage(e, storage.config, ph)) }, () =>
          entries.length === 0 ? 'no images' : table([['NAME', 'SHA256', 'SIZE', 'OS', 'ACCESS', 'UPDATED'], ...entries.map(row)]),
        );
        return EXIT.OK;
      }),
    );

  image
    .command('show <nameOrSha256>')
    .description('show one image, its URLs and the devices that boot it')
    .action(
      action(async (cmd: Command, key: string) => {
        const g = globalOptions(cmd);
        const storage = openStorage(g);
        const { entry, refs } = await withCatalogue(storage, async (c) => {
          const e = c.require(key);
          return { entry: e, refs: c.referencedBy(e) };
        });
        const d = describeImage(entry, storage.config, publicHostOf(storage));
        printResult(io, g, { image: { ...d, referencedBy: refs } }, () =>
          [
            `name:        ${d.name}`,
            `sha256:      ${d.sha256}`,
            `size:        ${d.size} (${humanSize(d.size)})`,
            `os:          ${[d.osName, d.osVersion].filter(Boolean).join(' ') || '-'}`,
            `client cert: ${d.requireClientCert ? 'required' : 'not required'}`,
            `source:      ${d.source ?? '-'}`,
            `created:     ${d.createdAt}`,
            `updated:     ${d.updatedAt}`,
            `bmc url:     ${d.urls.bmc}`,
            `device url:  ${d.urls.device}`,
            `by digest:   ${d.urls.bmcByDigest}`,
            `devices:     ${refs.join(', ') || '-'}`,
          ].join('\n'),
        );
        return EXIT.OK;
      }),
    );

  image
    .command('rm <name>')
    .description('remove an image (refused while a device boots it, unless --force); idempotent')
    .option('--force', 'remove even if devices reference it')
    .action(
      action(async (cmd: Command, name: string, opts: { force?: boolean }) => {
        const g = globalOptions(cmd);
        const storage = openStorage(g);
        const result = await withCatalogue(storage, (c) => c.remove(name, { force: opts.force === true }));
        printResult(io, g, { name, ...result }, () =>
          result.removed ? `removed: ${name}${result.contentDeleted ? '' : ' (content kept: another name holds it)'}${result.referencedBy.length ? ` (was referenced by ${result.referencedBy.join(', ')})` : ''}` : `absent: ${name}`,
        );
        return EXIT.OK;
      }),
    );
};
