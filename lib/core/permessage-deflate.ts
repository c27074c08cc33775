import { ErrorCode } from './constants.js';
import type { DeflateSettings } from './deflate-options.js';
import { HandshakeError } from './errors.js';
import { type ExtensionElement, parseExtensions } from './extension-header.js';

export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** What the two sides of one connection agreed on (RFC 7692 §7.1), seen from this side. */
export interface DeflateAgreement {
  /** The Sec-WebSocket-Extensions value of the server's answer. */
  header: string;
  /**
   * The LZ77 window this side compresses with, in bits. 8 means it never compresses: zlib cannot
   * deflate with an 8-bit window, and a message may always be sent uncompressed (RFC 7692 §6).
   */
  sendWindowBits: number;
  /** This side keeps its compression context from message to message. */
  sendContextTakeover: boolean;
  /** The window the peer compresses with: what a kept context of the received stream holds. */
  receiveWindowBits: number;
  /** The peer keeps its context: so must this side's decompression. */
  receiveContextTakeover: boolean;
}

/** The parameters of one permessage-deflate element (RFC 7692 §7.1). */
interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  /** `true` when present without a value (allowed in an offer only, RFC 7692 §7.1.2.2). */
  clientMaxWindowBits: number | true | undefined;
}

/** RFC 7692 §7.1.2.1, §7.1.2.2: a decimal integer from 8 to 15 without leading zeros. */
const WINDOW_BITS = /^(?:8|9|1[0-5])$/;

/**
 * The server's side of the negotiation (RFC 7692 §5, §7): the first valid permessage-deflate
 * offer of `offered` (the request's Sec-WebSocket-Extensions), and its answer; null when there
 * is none (an offer with an unknown, repeated or invalid parameter is declined, as is an
 * unreadable header), and the connection goes on without compression.
 */
export function negotiateAsServer(offered: string | undefined, settings: DeflateSettings): DeflateAgreement | null {
  if (offered === undefined) return null;
  for (const element of parseExtensions(offered) ?? []) {
    if (element.name !== PERMESSAGE_DEFLATE) continue;
    const params = readParams(element);
    if (typeof params !== 'string') return answerOffer(params, settings);
  }
  return null;
}

/** The answer to a valid offer: every one can be honoured (an 8-bit server window by never compressing). */
function answerOffer(offer: DeflateParams, settings: DeflateSettings): DeflateAgreement {
  // RFC 7692 §7.1.2.2: a client that did not offer client_max_window_bits cannot be asked for a smaller
  // window; when a window of its would be kept, it is asked not to keep a context instead.
  const unboundedClientWindow = offer.clientMaxWindowBits === undefined && settings.clientMaxWindowBits < 15;
  // RFC 7692 §7.1.1.1, §7.1.1.2: the server may ask for either without it being offered.
  const serverNoContextTakeover = offer.serverNoContextTakeover || !settings.contextTakeover;
  const clientNoContextTakeover = offer.clientNoContextTakeover || !settings.contextTakeover || unboundedClientWindow;
  // RFC 7692 §7.1.2.1: the same or a smaller value than the offer's; the server may announce one unasked.
  const serverWindow = Math.min(settings.serverMaxWindowBits, offer.serverMaxWindowBits ?? 15);
  // RFC 7692 §7.1.2.2: a value offered is the most the client will use; ours is asked only of a client that offered the parameter.
  const offeredClientWindow = typeof offer.clientMaxWindowBits === 'number' ? offer.clientMaxWindowBits : 15;
  const clientWindow = offer.clientMaxWindowBits === undefined ? 15 : Math.min(settings.clientMaxWindowBits, offeredClientWindow);
  let header = PERMESSAGE_DEFLATE;
  if (serverNoContextTakeover) header += '; server_no_context_takeover';
  if (clientNoContextTakeover) header += '; client_no_context_takeover';
  if (offer.serverMaxWindowBits !== undefined || serverWindow < 15) header += `; server_max_window_bits=${serverWindow}`;
  if (clientWindow < 15) header += `; client_max_window_bits=${clientWindow}`;
  return {
    header,
    sendWindowBits: serverWindow,
    sendContextTakeover: !serverNoContextTakeover,
    receiveWindowBits: clientWindow,
    receiveContextTakeover: !clientNoContextTakeover,
  };
}

/**
 * The client's offer: permessage-deflate with client_max_window_bits (so the server may lower
 * it), server_max_window_bits when the settings ask for a smaller server window, and both
 * no_context_takeover parameters unless the settings keep contexts.
 */
export function clientOffer(settings: DeflateSettings): string {
  let offer = PERMESSAGE_DEFLATE;
  if (!settings.contextTakeover) offer += '; server_no_context_takeover; client_no_context_takeover';
  if (settings.serverMaxWindowBits < 15) offer += `; server_max_window_bits=${settings.serverMaxWindowBits}`;
  offer += settings.clientMaxWindowBits < 15 ? `; client_max_window_bits=${settings.clientMaxWindowBits}` : '; client_max_window_bits';
  return offer;
}

/**
 * The client's check of the server's answer (RFC 7692 §5, §7): null when the server chose no
 * extension; the agreement when it accepted our offer as made; else a HandshakeError
 * (NO_HANDSHAKE, status 101) saying what is wrong. `settings` null: nothing was offered.
 */
export function acceptAsClient(answered: string | undefined, settings: DeflateSettings | null): DeflateAgreement | null {
  if (answered === undefined) return null;
  if (settings === null) throw refused('server chose an extension that was not offered');
  const elements = parseExtensions(answered);
  if (elements === null) throw refused('malformed Sec-WebSocket-Extensions in the answer');
  if (elements.length !== 1 || elements[0]!.name !== PERMESSAGE_DEFLATE) throw refused('server chose an extension that was not offered');
  const params = readParams(elements[0]!);
  if (typeof params === 'string') throw refused(`permessage-deflate answer: ${params}`);
  if (!settings.contextTakeover && !params.serverNoContextTakeover) throw refused('server did not accept server_no_context_takeover');
  const serverWindow = params.serverMaxWindowBits;
  if (settings.serverMaxWindowBits < 15 && serverWindow === undefined) throw refused('server did not accept server_max_window_bits');
  if (serverWindow !== undefined && serverWindow > settings.serverMaxWindowBits) {
    throw refused(`server_max_window_bits=${serverWindow} is above the ${settings.serverMaxWindowBits} offered`);
  }
  const clientWindow = params.clientMaxWindowBits;
  if (clientWindow === true) throw refused('client_max_window_bits without a value');
  if (clientWindow !== undefined && clientWindow > settings.clientMaxWindowBits) {
    throw refused(`client_max_window_bits=${clientWindow} is above the ${settings.clientMaxWindowBits} offered`);
  }
  return {
    header: answered.trim(),
    sendWindowBits: clientWindow ?? settings.clientMaxWindowBits,
    sendContextTakeover: settings.contextTakeover && !params.clientNoContextTakeover,
    receiveWindowBits: serverWindow ?? 15,
    receiveContextTakeover: !params.serverNoContextTakeover,
  };
}

function refused(reason: string): HandshakeError {
  return new HandshakeError(ErrorCode.NO_HANDSHAKE, 101, reason);
}

/** Reads and checks the parameters of a permessage-deflate element; a string says what is wrong. */
function readParams(element: ExtensionElement): DeflateParams | string {
  const params: DeflateParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  const seen = new Set<string>();
  for (const [name, value] of element.params) {
    // RFC 7692 §7: a parameter given twice, an unknown one or an invalid value makes the element unacceptable.
    if (seen.has(name)) return `${name} given twice`;
    seen.add(name);
    if (name === 'server_no_context_takeover' || name === 'client_no_context_takeover') {
      if (value !== true) return `${name} has a value`;
      if (name === 'server_no_context_takeover') params.serverNoContextTakeover = true;
      else params.clientNoContextTakeover = true;
    } else if (name === 'server_max_window_bits') {
      if (value === true || !WINDOW_BITS.test(value)) return `invalid server_max_window_bits`;
      params.serverMaxWindowBits = Number(value);
    } else if (name === 'client_max_window_bits') {
      if (value !== true && !WINDOW_BITS.test(value)) return `invalid client_max_window_bits`;
      params.clientMaxWindowBits = value === true ? true : Number(value);
    } else return `unknown parameter ${name}`;
  }
  return params;
}
