// What the agent sees when the proxy says no: a short plain-text HTTP answer
// that names what was blocked and how to ask for it. It never shows policy
// internals (rule numbers, other hosts, the addresses a name resolved to): the
// audit record carries those.

export type DenyKind =
  | 'not-allowed'
  | 'denied'
  | 'approval'
  | 'body-limit'
  | 'identity'
  | 'address'
  | 'inspector'
  | 'unsupported'
  | 'bad-request'
  | 'upstream'
  | 'budget';

export interface BlockedTarget {
  method?: string;
  scheme?: string;
  host: string;
  port: number;
  /** Path without the query. */
  path?: string;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  413: 'Content Too Large',
  417: 'Expectation Failed',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? 'Error';
}

const WHY: Record<DenyKind, string> = {
  'not-allowed': 'no rule of this session\'s network policy allows it',
  denied: 'this session\'s network policy denies it',
  approval: 'it needs approval (approvals are not available yet)',
  'body-limit': 'the request body is larger than the policy allows for this destination',
  identity: 'the names it carries disagree (the connection target, TLS server name and Host must name the same host)',
  address: 'the name resolves only to addresses cordon does not connect to (loopback, private, link-local, metadata...)',
  inspector: 'a content check refused it',
  unsupported: 'cordon does not relay this kind of request',
  'bad-request': 'the request is malformed or ambiguous',
  upstream: 'cordon could not reach the server',
  budget: "this session's egress budget is spent; nothing more may leave until the user raises network.budget in the host policy or starts a new session",
};

export function statusFor(kind: DenyKind): number {
  switch (kind) {
    case 'body-limit':
      return 413;
    case 'identity':
    case 'bad-request':
    case 'unsupported':
      return 400;
    case 'upstream':
      return 502;
    default:
      return 403;
  }
}

function describe(t: BlockedTarget): string {
  const hostText = t.host.includes(':') ? `[${t.host}]` : t.host;
  const where = `${t.scheme ?? 'https'}://${hostText}:${t.port}${t.path ?? ''}`;
  return t.method ? `${t.method} ${where}` : where;
}

/** The body text: what, why, and how to ask. `detail` is shown only when it is safe for the agent. */
export function denyText(kind: DenyKind, target: BlockedTarget, detail?: string): string {
  const lines = ['cordon blocked this request.', '', `  ${describe(target)}`, `  Why: ${WHY[kind]}${detail ? ` (${detail})` : ''}.`, ''];
  if (kind === 'not-allowed' || kind === 'denied' || kind === 'approval' || kind === 'body-limit' || kind === 'address') {
    const hostText = target.host.includes(':') ? `[${target.host}]` : target.host;
    lines.push(
      `If the task needs it, ask the user to allow ${hostText} on port ${target.port}`,
      '(with the methods and paths you need) in the cordon network policy, then retry.',
    );
  } else if (kind === 'identity') {
    lines.push('Connect to the host you mean and send the same name in the TLS server name and Host header.');
  }
  return lines.join('\n') + '\n';
}

/** A complete HTTP/1.1 response with a plain-text body. */
export function textResponse(status: number, body: string, close: boolean, extra: Array<[string, string]> = []): Buffer {
  const b = Buffer.from(body, 'utf8');
  const head = [
    `HTTP/1.1 ${status} ${statusText(status)}`,
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${b.length}`,
    'Cache-Control: no-store',
    ...extra.map(([n, v]) => `${n}: ${v}`),
    `Connection: ${close ? 'close' : 'keep-alive'}`,
    '',
    '',
  ].join('\r\n');
  return Buffer.concat([Buffer.from(head, 'latin1'), b]);
}

export function denyResponse(kind: DenyKind, target: BlockedTarget, close: boolean, detail?: string): Buffer {
  return textResponse(statusFor(kind), denyText(kind, target, detail), close, [['X-Cordon-Blocked', kind]]);
}
