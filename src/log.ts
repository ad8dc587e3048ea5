// Structured logs (pino) with secrets redacted at the source: keys, passwords, tokens and
// activation codes never reach a log line, whatever field they hide in.
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const REDACTED_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'passwordHash',
  '*.passwordHash',
  'bmcPassword',
  '*.bmcPassword',
  '*.bmc.password',
  'token',
  '*.token',
  'key',
  '*.key',
  'privateKey',
  '*.privateKey',
  'activationCode',
  '*.activationCode',
  'authorization',
  'req.headers.authorization',
  'headers.authorization',
  'req.headers.cookie',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: 'dpu-ztp' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** A logger that drops everything: for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * Rate-limits a repeated log line (e.g. hostile packets): at most `perWindow` lines per window,
 * then one summary line counting what was suppressed.
 */
export class RateLimitedLog {
  private windowStart = 0;
  private count = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly perWindow = 10,
    private readonly windowMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(fields: Record<string, unknown>, message: string): void {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) this.log.warn({ suppressed: this.suppressed }, 'similar log lines suppressed');
      this.windowStart = t;
      this.count = 0;
      this.suppressed = 0;
    }
    if (this.count < this.perWindow) {
      this.count++;
      this.log.warn(fields, message);
    } else {
      this.suppressed++;
    }
  }
}
