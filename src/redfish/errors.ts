// Redfish error bodies → one typed ZtpError (REDFISH_* in src/errors.ts). Pure: no I/O.
//
// DSP0266 §9.7 (Error responses): the body is
//   {"error": {"code": "Base.1.8.GeneralError", "message": "…",
//              "@Message.ExtendedInfo": [{"MessageId", "Message", "Severity" | "MessageSeverity",
//                                         "Resolution", "RelatedProperties", "MessageArgs"}]}}
// A successful response may also carry "@Message.ExtendedInfo" at its top level (e.g. a session
// created with PasswordChangeRequired). Real BMCs also answer with HTML pages (reverse proxies,
// iLO's web server) or with nothing at all: those become a short text detail.
import { ZtpError, type ErrorCode } from '../errors.js';

export interface RedfishMessage {
  messageId: string;
  message: string;
  severity: string;
  relatedProperties: string[];
  messageArgs: string[];
}

export interface ParsedErrorBody {
  /** the most severe extended message, else the error's own code/message */
  messageId: string | null;
  message: string | null;
  messages: RedfishMessage[];
}

const SEVERITY_RANK: Record<string, number> = { critical: 3, warning: 2, ok: 1 };

function asMessages(value: unknown): RedfishMessage[] {
  if (!Array.isArray(value)) return [];
  const out: RedfishMessage[] = [];
  for (const item of value) {
    if (typeof item !== 'object' || item === null) continue;
    const m = item as Record<string, unknown>;
    const messageId = typeof m.MessageId === 'string' ? m.MessageId : '';
    const severity = typeof m.MessageSeverity === 'string' ? m.MessageSeverity : typeof m.Severity === 'string' ? m.Severity : '';
    out.push({
      messageId,
      message: typeof m.Message === 'string' ? m.Message : '',
      severity,
      relatedProperties: Array.isArray(m.RelatedProperties) ? m.RelatedProperties.filter((p): p is string => typeof p === 'string') : [],
      messageArgs: Array.isArray(m.MessageArgs) ? m.MessageArgs.map((a) => String(a)) : [],
    });
  }
  return out;
}

/** Extended messages of a JSON body, whether an error body or a success body carrying them. */
export function extendedInfo(body: unknown): RedfishMessage[] {
  if (typeof body !== 'object' || body === null) return [];
  const b = body as Record<string, unknown>;
  const error = typeof b.error === 'object' && b.error !== null ? (b.error as Record<string, unknown>) : undefined;
  return [...asMessages(error?.['@Message.ExtendedInfo']), ...asMessages(b['@Message.ExtendedInfo'])];
}

/** The most severe message (Critical > Warning > OK; first wins on a tie). */
export function mostSevere(messages: RedfishMessage[]): RedfishMessage | undefined {
  let best: RedfishMessage | undefined;
  let bestRank = -1;
  for (const m of messages) {
    const rank = SEVERITY_RANK[m.severity.toLowerCase()] ?? 0;
    if (rank > bestRank) {
      best = m;
      bestRank = rank;
    }
  }
  return best;
}

/** "Base.1.8.PropertyMissing" → "PropertyMissing": registries differ in version, not in key. */
export function messageKey(messageId: string): string {
  const parts = messageId.split('.');
  return parts[parts.length - 1] ?? messageId;
}

export function hasMessage(messages: RedfishMessage[], key: string): boolean {
  return messages.some((m) => messageKey(m.messageId) === key);
}

/** Parses whatever the BMC sent with an error status: JSON, HTML, plain text or nothing. */
export function parseErrorBody(text: string, json: unknown): ParsedErrorBody {
  const messages = extendedInfo(json);
  const top = mostSevere(messages);
  if (top) return { messageId: top.messageId || null, message: top.message || null, messages };
  if (typeof json === 'object' && json !== null) {
    const error = (json as Record<string, unknown>).error as Record<string, unknown> | undefined;
    if (error && typeof error === 'object') {
      return { messageId: typeof error.code === 'string' ? error.code : null, message: typeof error.message === 'string' ? error.message : null, messages };
    }
  }
  const plain = textSnippet(text);
  return { messageId: null, message: plain || null, messages };
}

/** HTML or text error pages, reduced to one short line (tags, scripts and whitespace removed). */
export function textSnippet(text: string, max = 200): string {
  const titled = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(text)?.[1];
  const source = titled ?? text.replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ');
  const plain = source.replace(/<[^>]*>/g, ' ').replace(/&nbsp;/g, ' ').replace(/\s+/g, ' ').trim();
  return plain.length > max ? plain.slice(0, max) + '…' : plain;
}

export interface ErrorContext {
  method: string;
  uri: string;
  step?: string;
  bmc: string;
}

/** Which catalogue code an HTTP error status means for a Redfish call. */
export function codeForStatus(status: number, method: string, messages: RedfishMessage[]): ErrorCode {
  if (hasMessage(messages, 'PasswordChangeRequired')) return 'REDFISH_PASSWORD_CHANGE_REQUIRED';
  if (status === 401 || status === 403) return 'REDFISH_AUTH_FAILED';
  if (status === 404) return 'REDFISH_NOT_FOUND';
  if (status === 405 || status === 501) return 'REDFISH_UNSUPPORTED';
  if (status === 503) return 'REDFISH_UNAVAILABLE';
  if (status >= 500) return method === 'GET' ? 'REDFISH_BAD_RESPONSE' : 'REDFISH_ACTION_FAILED';
  return method === 'GET' ? 'REDFISH_BAD_RESPONSE' : 'REDFISH_ACTION_FAILED';
}

/** One typed error for a Redfish HTTP error: status, most severe MessageId + message, URI and step in details. */
export function httpError(status: number, text: string, json: unknown, ctx: ErrorContext): ZtpError {
  const parsed = parseErrorBody(text, json);
  const code = codeForStatus(status, ctx.method, parsed.messages);
  const what = parsed.message ? `: ${parsed.messageId ? parsed.messageId + ' ' : ''}${parsed.message}` : parsed.messageId ? `: ${parsed.messageId}` : '';
  return new ZtpError(code, `${ctx.method} ${ctx.uri} answered ${status}${what}`, {
    details: {
      httpStatus: status,
      messageId: parsed.messageId,
      bmcMessage: parsed.message,
      uri: ctx.uri,
      step: ctx.step ?? null,
      bmc: ctx.bmc,
      relatedProperties: [...new Set(parsed.messages.flatMap((m) => m.relatedProperties))],
    },
  });
}
