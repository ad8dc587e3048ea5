// Admin API of the image catalogue, a fastify plugin the admin app mounts under /api/v1 (bearer
// auth is the admin app's). Uploads are streamed: the octet-stream parser registered here passes
// the request stream through untouched (no bodyLimit buffering), and the catalogue hashes it
// into a temp file on its way to content-addressed storage.
//
//   POST   /images?name=&sha256=&osName=&osVersion=&requireClientCert=&replace=   body: the bytes
//   GET    /images
//   GET    /images/:name            (name or sha256)
//   DELETE /images/:name[?force=true]
import type { FastifyInstance, FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Readable } from 'node:stream';
import type { Config } from '../config.js';
import type { DeviceStore } from '../devices/store.js';
import { isZtpError, ZtpError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ImageCatalogue, ImageEntry } from './catalogue.js';
import { imageUrl } from './urls.js';

export interface ImagesApiOptions {
  catalogue: ImageCatalogue;
  store: DeviceStore;
  log: Logger;
  config: Config;
  publicHost: string;
}

/** Which media types an upload may declare; all are treated as opaque bytes. */
export const UPLOAD_CONTENT_TYPES = ['application/octet-stream', 'application/x-iso9660-image'];

/** An entry with its stable URLs for both audiences, as the API and CLI show it. */
export function describeImage(entry: ImageEntry, config: Config, publicHost: string) {
  return {
    ...entry,
    urls: {
      bmc: imageUrl(config, publicHost, entry, 'bmc'),
      device: imageUrl(config, publicHost, entry, 'device'),
      bmcByDigest: imageUrl(config, publicHost, entry, 'bmc', undefined, 'sha256'),
      deviceByDigest: imageUrl(config, publicHost, entry, 'device', undefined, 'sha256'),
    },
  };
}

const bool = (v: unknown) => v === true || v === 'true' || v === '1' || v === 'yes';
const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

export const imagesApiRoutes: FastifyPluginAsync<ImagesApiOptions> = async (app: FastifyInstance, opts: ImagesApiOptions) => {
  const { catalogue, config, publicHost } = opts;
  const log = opts.log.child({ service: 'images-api' });

  for (const type of UPLOAD_CONTENT_TYPES) {
    // Pass the raw stream through: the handler streams it to disk with backpressure.
    app.addContentTypeParser(type, (_req, payload, done) => done(null, payload));
  }

  const send = (reply: FastifyReply, err: unknown) => {
    if (isZtpError(err)) {
      const body = { error: { code: err.code, message: err.message, ...(err.details && err.status < 500 ? { details: err.details } : {}) } };
      return reply.code(err.status).send(body);
    }
    throw err;
  };

  app.post('/images', async (req, reply) => {
    const q = (req.query ?? {}) as Record<string, unknown>;
    const name = str(q.name);
    const body = req.body as Readable | undefined;
    if (!body || typeof (body as Readable).pipe !== 'function') {
      return send(reply, new ZtpError('IMAGES_INVALID', `upload the bytes as the request body with Content-Type ${UPLOAD_CONTENT_TYPES[0]}`, { status: 415 }));
    }
    if (!name) {
      body.resume();
      return send(reply, new ZtpError('IMAGES_INVALID', 'query parameter "name" is required', { details: { field: 'name' } }));
    }
    const started = Date.now();
    try {
      const result = await catalogue.add(body, {
        name,
        sha256: str(q.sha256),
        osName: str(q.osName),
        osVersion: str(q.osVersion),
        requireClientCert: q.requireClientCert === undefined ? undefined : bool(q.requireClientCert),
        replace: bool(q.replace),
        source: 'upload',
      });
      log.info({ image: name, sha256: result.entry.sha256, size: result.entry.size, outcome: result.outcome, ms: Date.now() - started, remote: req.ip }, 'image uploaded');
      return reply.code(result.outcome === 'created' ? 201 : 200).send({ outcome: result.outcome, storedNewContent: result.storedNewContent, image: describeImage(result.entry, config, publicHost) });
    } catch (err) {
      if (!body.destroyed) body.resume();
      if (isZtpError(err, 'IMAGES_STORAGE_FULL')) log.error({ image: name, err: err.message, remote: req.ip }, 'image upload failed: storage full');
      else if (isZtpError(err, 'IMAGES_UPLOAD_ABORTED')) log.warn({ image: name, remote: req.ip }, 'image upload aborted by the client; nothing kept');
      else if (isZtpError(err)) log.warn({ image: name, code: err.code, err: err.message, remote: req.ip }, 'image upload refused');
      else if ((err as NodeJS.ErrnoException)?.code === 'ECONNRESET' || req.raw.destroyed) {
        log.warn({ image: name, remote: req.ip }, 'image upload aborted by the client; nothing kept');
        return send(reply, new ZtpError('IMAGES_UPLOAD_ABORTED'));
      } else log.error({ image: name, err }, 'image upload failed');
      return send(reply, err);
    }
  });

  app.get('/images', async () => ({ images: catalogue.list().map((e) => describeImage(e, config, publicHost)) }));

  app.get<{ Params: { name: string } }>('/images/:name', async (req, reply) => {
    const entry = catalogue.get(req.params.name);
    if (!entry) return send(reply, new ZtpError('IMAGES_NOT_FOUND', `no image "${req.params.name}"`, { details: { image: req.params.name } }));
    return { image: { ...describeImage(entry, config, publicHost), referencedBy: catalogue.referencedBy(entry) } };
  });

  app.delete<{ Params: { name: string }; Querystring: { force?: string } }>('/images/:name', async (req, reply) => {
    try {
      const result = await catalogue.remove(req.params.name, { force: bool(req.query.force) }).catch((err: unknown) => {
        // The catalogue's message speaks to the CLI (--force); an API client adds ?force=true.
        if (isZtpError(err, 'IMAGES_IN_USE')) throw new ZtpError('IMAGES_IN_USE', err.message.replace(/; use --force$/, '; repeat with ?force=true to remove it anyway'), { details: err.details, cause: err });
        throw err;
      });
      if (!result.removed) return send(reply, new ZtpError('IMAGES_NOT_FOUND', `no image "${req.params.name}"`, { details: { image: req.params.name } }));
      log.info({ image: req.params.name, forced: result.referencedBy.length > 0, contentDeleted: result.contentDeleted }, 'image removed');
      return result;
    } catch (err) {
      return send(reply, err);
    }
  });
};
