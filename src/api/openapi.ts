// OpenAPI 3.1 description of the admin API, served at /api/v1/openapi.json. test/api/openapi.test.ts
// checks that every route the admin app registers is here, and nothing else.
import { ONBOARDING_STATES } from '../onboarding/state.js';

const error = { $ref: '#/components/schemas/Error' };
const serial = { name: 'serial', in: 'path', required: true, schema: { type: 'string' } };
const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const image = { name: 'name', in: 'path', required: true, schema: { type: 'string' }, description: 'image name or its sha256' };
const query = (name: string, schema: unknown, description: string) => ({ name, in: 'query', schema, description });

export const OPENAPI = {
  openapi: '3.1.0',
  info: { title: 'dpu-ztp admin API', version: '1' },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } }, required: ['code', 'message'] } } },
      DeviceInput: {
        type: 'object',
        required: ['serial'],
        additionalProperties: false,
        properties: {
          serial: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$' },
          profile: { enum: ['rfc8572', 'opi'] },
          password: { type: ['string', 'null'], description: 'HTTP Basic password; stored hashed' },
          signing: { enum: ['auto', 'always', 'never'] },
          macs: { type: 'array', items: { type: 'string' } },
          bootImage: { type: ['string', 'null'], description: 'catalogue image name or URL' },
          bootImageSha256: { type: ['string', 'null'] },
          osName: { type: ['string', 'null'] },
          osVersion: { type: ['string', 'null'] },
          config: { type: ['string', 'null'] },
          preScript: { type: ['string', 'null'] },
          postScript: { type: ['string', 'null'] },
          redirect: { type: ['array', 'null'], items: { type: 'object', properties: { address: { type: 'string' }, port: { type: 'integer' }, trustAnchor: { type: 'string' } }, required: ['address'] } },
          bmc: {
            type: ['object', 'null'],
            required: ['address'],
            properties: {
              address: { type: 'string', description: 'https://host[:port][/prefix] or host' },
              username: { type: 'string' },
              password: { type: 'string', description: 'sealed at rest (AES-256-GCM), never returned' },
              factoryPassword: { type: 'string', description: 'factory default: logs in when the configured password is refused, then the configured (or a generated) one is set; sealed, never returned' },
              caBundle: { type: 'string', description: 'PEM bundle that verifies the BMC certificate' },
              fingerprint256: { type: 'string', description: 'pinned SHA-256 certificate fingerprint (64 hex digits, colons allowed)' },
              insecure: { type: 'boolean', description: 'no TLS verification (logged as a warning each session)' },
              systemId: { type: 'string' },
              operationMode: { enum: ['DPU', 'NIC'], description: 'BlueField operation mode set at bmc-check' },
            },
          },
          parentHost: { type: ['string', 'null'], description: 'serial of the host this DPU sits in (host first; the host is never powered off)' },
          hwModel: { type: ['string', 'null'] },
          onboardingTimeouts: { type: ['object', 'null'], description: 'per-step timeouts in seconds over the configured defaults', additionalProperties: { type: 'number', exclusiveMinimum: 0 } },
        },
      },
      Device: { type: 'object', description: 'DeviceInput fields (no secrets) plus state, stateChangedAt, revision, createdAt, updatedAt, hasPassword' },
      Image: {
        type: 'object',
        description: 'A catalogue entry with the URLs BMCs and devices fetch it from',
        properties: {
          name: { type: 'string' },
          sha256: { type: 'string', description: 'lowercase hex' },
          size: { type: 'integer', description: 'bytes' },
          osName: { type: ['string', 'null'] },
          osVersion: { type: ['string', 'null'] },
          source: { type: ['string', 'null'], description: 'where it was added from (informational)' },
          requireClientCert: { type: 'boolean', description: 'HTTPS with a trusted device certificate required' },
          createdAt: { type: 'string' },
          updatedAt: { type: 'string', description: 'when this name last changed content (Last-Modified of its URLs)' },
          urls: { type: 'object', properties: { bmc: { type: 'string' }, device: { type: 'string' }, bmcByDigest: { type: 'string' }, deviceByDigest: { type: 'string' } } },
          referencedBy: { type: 'array', items: { type: 'string' }, description: 'serials of the devices that boot it (GET /images/{name} only)' },
        },
      },
      HistoryEvent: { type: 'object', properties: { id: { type: 'integer' }, at: { type: 'string' }, serial: { type: ['string', 'null'] }, source: { type: 'string' }, type: { type: 'string' }, data: { type: 'object' } } },
    },
  },
  security: [{ bearer: [] }],
  // Outgoing webhooks (config onboarding.webhooks): POSTed by the server, not served by it.
  webhooks: {
    'onboarding.transition': {
      post: {
        summary: 'Every onboarding transition, retried with back-off until a 2xx; headers X-Ztp-Event, X-Ztp-Delivery (stable across retries) and, with a secret, X-Ztp-Signature: sha256=<hex HMAC-SHA256 of the body>',
        requestBody: json({
          type: 'object',
          required: ['id', 'at', 'serial', 'event', 'data'],
          properties: { id: { type: 'integer' }, at: { type: 'string' }, serial: { type: 'string' }, event: { const: 'onboarding.transition' }, data: { type: 'object', description: 'attempt, step, status, and on failure failedStep, reason, messageId' } },
        }),
        responses: { 200: { description: 'accepted (any 2xx)' } },
      },
    },
  },
  paths: {
    '/api/v1/devices': {
      get: {
        summary: 'List devices in serial order, paged: ?limit= (default 100, at most 500), ?after=<serial>; a full page carries `next`, the serial to pass as ?after= (?state= one of the onboarding states; another value is a 400)',
        parameters: [{ name: 'state', in: 'query', schema: { enum: [...ONBOARDING_STATES] } }, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 } }, { name: 'after', in: 'query', schema: { type: 'string' } }],
        responses: { 200: json({ type: 'object', properties: { devices: { type: 'array', items: { $ref: '#/components/schemas/Device' } }, next: { type: 'string' } } }), 401: json(error) },
      },
      post: { summary: 'Register or update a device (idempotent)', requestBody: json({ $ref: '#/components/schemas/DeviceInput' }), responses: { 201: json({}), 200: json({}), 400: json(error), 401: json(error) } },
    },
    '/api/v1/devices/import': { post: { summary: 'Import devices from CSV (text/csv) or JSON; all or nothing', responses: { 200: json({}), 400: json(error) } } },
    '/api/v1/devices/{serial}': {
      get: { summary: 'Device record and recent history', parameters: [serial], responses: { 200: json({}), 404: json(error) } },
      put: { summary: 'Register or update a device', parameters: [serial], requestBody: json({ $ref: '#/components/schemas/DeviceInput' }), responses: { 200: json({}), 201: json({}), 400: json(error) } },
      delete: { summary: 'Remove a device (history kept)', parameters: [serial], responses: { 200: json({}) } },
    },
    '/api/v1/devices/{serial}/history': { get: { summary: 'Append-only history, paged by ?after=&limit=', parameters: [serial], responses: { 200: json({ type: 'object', properties: { events: { type: 'array', items: { $ref: '#/components/schemas/HistoryEvent' } } } }) } } },
    '/api/v1/devices/{serial}/progress': { get: { summary: 'Stored RFC 8572 progress reports', parameters: [serial], responses: { 200: json({}) } } },
    '/api/v1/status': { get: { summary: 'Device counts by onboarding state', responses: { 200: json({}) } } },
    '/api/v1/onboarding': {
      get: { summary: 'Onboarding jobs with counts by status (?status=)', responses: { 200: json({}), 503: json(error) } },
      post: {
        summary: 'Start onboarding (idempotent: a job in progress is not restarted)',
        requestBody: json({ type: 'object', additionalProperties: false, properties: { serials: { type: 'array', items: { type: 'string' } }, all: { type: 'boolean' }, concurrency: { type: 'integer', minimum: 1 }, restart: { type: 'boolean' } } }),
        responses: { 200: json({}), 400: json(error), 404: json(error), 503: json(error) },
      },
    },
    '/api/v1/onboarding/stream': { get: { summary: 'Server-Sent Events: a snapshot of the jobs, then every history event of ?serial= (comma list) after ?after=', responses: { 200: { description: 'text/event-stream' } } } },
    '/api/v1/onboarding/{serial}': { get: { summary: 'One onboarding job', parameters: [serial], responses: { 200: json({}), 404: json(error) } } },
    '/api/v1/onboarding/{serial}/retry': { post: { summary: 'Retry a failed, timed-out or aborted job', parameters: [serial], requestBody: json({ type: 'object', properties: { from: { enum: ['step', 'start'] } } }), responses: { 200: json({}), 404: json(error), 409: json(error) } } },
    '/api/v1/onboarding/{serial}/abort': { post: { summary: 'Abort a queued or running job (media stays as it is)', parameters: [serial], responses: { 200: json({}), 404: json(error), 409: json(error) } } },
    '/api/v1/devices/{serial}/timeline': { get: { summary: 'The device timeline (DHCP, BMC steps, image reads, sZTP requests, progress, transitions) with durations; ?all=true for every attempt', parameters: [serial], responses: { 200: json({}), 404: json(error) } } },
    '/api/v1/events': { get: { summary: 'History events after ?after= (JSON pages; a full page names the next id), or text/event-stream: live, or from Last-Event-ID / ?after= replayed in pages; ?snapshot=true first sends the fleet', responses: { 200: json({}) } } },
    '/api/v1/events/image-reads': { get: { summary: 'Image downloads recorded in the history, per image (reads, devices, bytes)', responses: { 200: json({}) } } },
    '/api/v1/images': {
      get: { summary: 'The image catalogue', responses: { 200: json({ type: 'object', properties: { images: { type: 'array', items: { $ref: '#/components/schemas/Image' } } } }), 401: json(error) } },
      post: {
        summary: 'Add an image: the bytes as the body, streamed to content-addressed storage (idempotent for the same name and content)',
        parameters: [
          query('name', { type: 'string' }, 'catalogue name (required)'),
          query('sha256', { type: 'string' }, 'expected digest: a mismatch stores nothing (400 IMAGES_DIGEST_MISMATCH)'),
          query('osName', { type: 'string' }, 'OS name conveyed to devices'),
          query('osVersion', { type: 'string' }, 'OS version conveyed to devices'),
          query('requireClientCert', { type: 'boolean' }, 'serve it only over HTTPS to a trusted device certificate'),
          query('replace', { type: 'boolean' }, 'let an existing name take new content (else 409 IMAGES_NAME_TAKEN)'),
        ],
        requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } }, 'application/x-iso9660-image': { schema: { type: 'string', format: 'binary' } } } },
        responses: {
          201: json({ type: 'object', properties: { outcome: { const: 'created' }, storedNewContent: { type: 'boolean' }, image: { $ref: '#/components/schemas/Image' } } }),
          200: json({ type: 'object', properties: { outcome: { enum: ['unchanged', 'updated'] }, storedNewContent: { type: 'boolean' }, image: { $ref: '#/components/schemas/Image' } } }),
          400: json(error),
          401: json(error),
          409: json(error),
          413: json(error),
          415: json(error),
          507: json(error),
        },
      },
    },
    '/api/v1/images/{name}': {
      get: { summary: 'One image, with the devices that boot it', parameters: [image], responses: { 200: json({ type: 'object', properties: { image: { $ref: '#/components/schemas/Image' } } }), 404: json(error) } },
      delete: {
        summary: 'Remove an image name (its content too when no other name holds it); refused with 409 IMAGES_IN_USE while a device boots it, unless ?force=true',
        parameters: [image, query('force', { type: 'boolean' }, 'remove even while devices reference it')],
        responses: { 200: json({ type: 'object', properties: { removed: { type: 'boolean' }, contentDeleted: { type: 'boolean' }, referencedBy: { type: 'array', items: { type: 'string' } } } }), 404: json(error), 409: json(error) },
      },
    },
    '/api/v1/openapi.json': { get: { summary: 'This document', security: [], responses: { 200: json({}) } } },
    '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { 200: { description: 'text/plain' } } } },
    '/healthz': { get: { summary: 'Liveness', security: [], responses: { 200: json({}) } } },
    '/readyz': { get: { summary: 'Readiness: 503 while a service waits (DHCP for its interface), with per-service state', security: [], responses: { 200: json({}), 503: json({}) } } },
  },
} as const;
