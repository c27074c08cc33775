/**
 * The demo's wire protocol: JSON text messages. `parseRequest` checks every field of what a
 * client sent; the types say what the server answers.
 */

export const Limits = { name: 32, group: 32, text: 1000 } as const;

export type Request =
  | { type: 'login'; name: string }
  | { type: 'echo'; text: string }
  | { type: 'route'; to: string; text: string }
  | { type: 'join'; group: string }
  | { type: 'leave'; group: string }
  | { type: 'publish'; group: string; text: string }
  | { type: 'subscribe' }
  | { type: 'unsubscribe' }
  | { type: 'enter' }
  | { type: 'move'; dx: Step; dy: Step }
  | { type: 'exit' };

/** A direction along one axis: the arrow keys held. */
export type Step = -1 | 0 | 1;

/** A player of the arena, as everyone in it sees it. */
export interface ArenaPlayer {
  name: string;
  x: number;
  y: number;
  /** The server's last measured round trip to this player, in ms (0.1 ms steps), null before the first. */
  rtt: number | null;
}

export type Reply =
  | { type: 'welcome'; name: string }
  | { type: 'users'; names: string[] }
  | { type: 'echo'; text: string }
  | { type: 'routed'; from: string; text: string }
  | { type: 'group'; group: string; from: string; text: string }
  | { type: 'joined'; group: string }
  | { type: 'left'; group: string }
  | { type: 'subscribed' }
  | { type: 'unsubscribed' }
  | { type: 'stream'; seq: number; t: number; value: number }
  | { type: 'entered'; name: string; width: number; height: number }
  | { type: 'exited' }
  | { type: 'arena'; tick: number; players: ArenaPlayer[] }
  | { type: 'error'; reason: string; request?: string };

/** A request the server refuses; `request` is the type it claimed, when it had one. */
export class Refusal {
  constructor(
    readonly reason: string,
    readonly request?: string,
  ) {}

  toReply(): Reply {
    return this.request === undefined ? { type: 'error', reason: this.reason } : { type: 'error', reason: this.reason, request: this.request };
  }
}

type Fields = Record<string, unknown>;
type Parser = (fields: Fields) => Request | string;

const parsers: Record<Request['type'], Parser> = {
  login: (f) => check(f, 'name', isLabel(Limits.name)) ?? { type: 'login', name: f.name as string },
  echo: (f) => check(f, 'text', isText) ?? { type: 'echo', text: f.text as string },
  route: (f) => check(f, 'to', isLabel(Limits.name)) ?? check(f, 'text', isText) ?? { type: 'route', to: f.to as string, text: f.text as string },
  join: (f) => check(f, 'group', isLabel(Limits.group)) ?? { type: 'join', group: f.group as string },
  leave: (f) => check(f, 'group', isLabel(Limits.group)) ?? { type: 'leave', group: f.group as string },
  publish: (f) =>
    check(f, 'group', isLabel(Limits.group)) ?? check(f, 'text', isText) ?? { type: 'publish', group: f.group as string, text: f.text as string },
  subscribe: () => ({ type: 'subscribe' }),
  unsubscribe: () => ({ type: 'unsubscribe' }),
  enter: () => ({ type: 'enter' }),
  move: (f) => check(f, 'dx', isStep) ?? check(f, 'dy', isStep) ?? { type: 'move', dx: f.dx as Step, dy: f.dy as Step },
  exit: () => ({ type: 'exit' }),
};

const rules: Record<string, string> = {
  name: `1–${Limits.name} characters, no control characters, no leading or trailing space`,
  to: `a user name (1–${Limits.name} characters)`,
  group: `1–${Limits.group} characters, no control characters, no leading or trailing space`,
  text: `1–${Limits.text} characters`,
  dx: '-1, 0 or 1',
  dy: '-1, 0 or 1',
};

/** Reads one client message; other fields than the documented ones are ignored. */
export function parseRequest(message: string | Buffer, binary: boolean): Request | Refusal {
  if (binary) return new Refusal('binary messages are not supported');
  let value: unknown;
  try {
    value = JSON.parse(message as string);
  } catch {
    return new Refusal('malformed JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof (value as Fields).type !== 'string') {
    return new Refusal('expected an object with a string "type"');
  }
  const fields = value as Fields;
  const type = fields.type as string;
  const parse = Object.hasOwn(parsers, type) ? parsers[type as Request['type']] : undefined;
  if (!parse) return new Refusal(`unknown type "${type}"`, type);
  const request = parse(fields);
  return typeof request === 'string' ? new Refusal(request, type) : request;
}

/** undefined when `fields[key]` passes, else the refusal reason. */
function check(fields: Fields, key: string, valid: (value: unknown) => boolean): string | undefined {
  return valid(fields[key]) ? undefined : `invalid "${key}": ${rules[key]}`;
}

function isLabel(max: number): (value: unknown) => boolean {
  return (value) =>
    typeof value === 'string' && value.length > 0 && length(value) <= max && value.trim() === value && !/\p{Cc}/u.test(value);
}

function isStep(value: unknown): boolean {
  return value === -1 || value === 0 || value === 1;
}

function isText(value: unknown): boolean {
  return typeof value === 'string' && value.length > 0 && length(value) <= Limits.text;
}

/** Length in code points, so an emoji counts once. */
function length(value: string): number {
  return [...value].length;
}
