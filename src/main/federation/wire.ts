// Length-prefixed, schema-checked request/response messaging over libp2p 3 streams.
//
// Framing on a stream: an unsigned-varint length, then that many bytes. A message is one JSON frame
// (UTF-8) and, when the JSON carries `dataBytes`, one binary frame of exactly that many bytes whose
// sha256 is `dataSha256`. The reader checks the length prefix against the limit of the protocol
// before reading the frame, and the message's own per-type limit once the type is known, so an
// oversized message is refused without being buffered whole.
//
// A request uses a fresh stream: the client writes the request, reads the reply, closes its end;
// the server reads the request, writes the reply, closes its end. Any malformed input on the server
// side (bad varint, oversize, bad UTF-8, bad JSON, wrong schema, bad attachment) is logged and the
// stream aborted; it never throws out of the handler, so it never takes the node down.
import { createHash } from 'node:crypto';
import { byteStream, type ByteStream } from '@libp2p/utils';
import type { Libp2p, PeerId, Stream, Connection } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { maxLimit, type MessageLimit, type ProtocolSpec } from '../../shared/messages.ts';

/** A protocol violation by the remote side, or a reply the remote refused. One line. */
export class WireError extends Error {
  override name = 'WireError';
}

/** A message as received: the validated JSON and its verified attachment, if any. */
export interface Received<T> {
  msg: T;
  data?: Uint8Array;
  /** Bytes the message took on the stream (frames and their length prefixes). */
  wireBytes?: number;
}

/** Bytes a node sent and received per protocol (application frames, before Noise and Yamux). */
export interface ProtocolTraffic {
  sent: number;
  received: number;
}
const trafficByNode = new WeakMap<object, Map<string, ProtocolTraffic>>();

function count(node: object, protocol: string, sent: number, received: number): void {
  let m = trafficByNode.get(node);
  if (m === undefined) trafficByNode.set(node, (m = new Map()));
  const t = m.get(protocol) ?? { sent: 0, received: 0 };
  t.sent += sent;
  t.received += received;
  m.set(protocol, t);
}

/** A copy of the bytes `node` sent and received so far, per protocol id. */
export function trafficOf(node: object): Map<string, ProtocolTraffic> {
  return new Map([...(trafficByNode.get(node) ?? [])].map(([k, v]) => [k, { ...v }]));
}

const framed = (n: number) => encodeVarint(n).byteLength + n;

/**
 * A message about to be sent: `dataBytes` and `dataSha256` may be left out, the wire computes them
 * from the attachment.
 */
export type Outgoing<T> = T extends unknown
  ? Omit<T, 'dataBytes' | 'dataSha256'> & { dataBytes?: number; dataSha256?: string }
  : never;

/** A reply with a binary attachment; build it with `withData`. */
export interface WithData<T> {
  readonly msg: Outgoing<T>;
  readonly data: Uint8Array;
}

const withDataTag = new WeakSet<object>();

/** Mark a reply as carrying binary data; the wire fills in `dataBytes` and `dataSha256`. */
export function withData<T>(msg: Outgoing<T>, data: Uint8Array): WithData<T> {
  const out = { msg, data };
  withDataTag.add(out);
  return out;
}

function isWithData<T>(x: T | WithData<T>): x is WithData<T> {
  return typeof x === 'object' && x !== null && withDataTag.has(x);
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---- frames -----------------------------------------------------------------------------------

const MAX_VARINT_BYTES = 8; // 2^56 > any limit we use

export function encodeVarint(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`bad length ${n}`);
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}

/** Read one length-prefixed frame, refusing a length above `max` before reading its bytes. */
export async function readFrame(bytes: ByteStream<Stream>, max: number, signal?: AbortSignal): Promise<Uint8Array> {
  let length = 0;
  let scale = 1;
  for (let i = 0; ; i++) {
    if (i >= MAX_VARINT_BYTES) throw new WireError('malformed length prefix');
    const b = (await bytes.read({ bytes: 1, signal })).get(0);
    length += (b & 0x7f) * scale;
    scale *= 0x80;
    if ((b & 0x80) === 0) break;
    // Refuse as soon as the prefix read so far already exceeds the limit.
    if (length > max) throw new WireError(`message too large (more than ${max} bytes)`);
  }
  if (length > max) throw new WireError(`message too large (${length} > ${max} bytes)`);
  if (length === 0) return new Uint8Array(0);
  const got = (await bytes.read({ bytes: length, signal })).subarray();
  // A plain Uint8Array (not a Buffer) at an 8-byte-aligned offset, so `new Float32Array(f.buffer,
  // f.byteOffset, f.byteLength / 4)` works on weight attachments without another copy.
  if (got.byteOffset % 8 === 0) return new Uint8Array(got.buffer, got.byteOffset, got.byteLength);
  return new Uint8Array(got);
}

export async function writeFrame(bytes: ByteStream<Stream>, frame: Uint8Array, signal?: AbortSignal): Promise<void> {
  // Two writes rather than one concatenation: no copy of a large weight frame.
  await bytes.write(encodeVarint(frame.byteLength), { signal });
  if (frame.byteLength > 0) await bytes.write(frame, { signal });
}

// ---- messages ---------------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

interface Schema<T> {
  safeParse(x: unknown): { success: true; data: T } | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] } };
}

function schemaError(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  const first = issues[0];
  if (first === undefined) return 'message does not match its schema';
  const where = first.path.length > 0 ? first.path.map(String).join('.') : '(root)';
  return `message does not match its schema: ${where}: ${first.message}`;
}

/** Read one message (JSON frame plus attachment) and validate it. Throws WireError on any fault. */
export async function readMessage<T>(
  bytes: ByteStream<Stream>,
  schema: Schema<T>,
  limits: Readonly<Record<string, MessageLimit>>,
  signal?: AbortSignal,
): Promise<Received<T>> {
  const all = maxLimit(limits);
  const frame = await readFrame(bytes, all.json, signal);
  let text: string;
  try {
    text = utf8.decode(frame);
  } catch {
    throw new WireError('message is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new WireError('message is not valid JSON');
  }
  const type = typeof json === 'object' && json !== null ? (json as { type?: unknown }).type : undefined;
  if (typeof type !== 'string' || !Object.hasOwn(limits, type)) {
    throw new WireError(`unexpected message type ${JSON.stringify(type)?.slice(0, 60) ?? 'undefined'}`);
  }
  const limit = limits[type]!;
  if (frame.byteLength > limit.json) throw new WireError(`${type} message too large (${frame.byteLength} > ${limit.json} bytes)`);
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new WireError(schemaError(parsed.error.issues));
  const msg = parsed.data;
  const dataBytes = (json as { dataBytes?: unknown }).dataBytes;
  if (dataBytes === undefined) return { msg, wireBytes: framed(frame.byteLength) };
  if (typeof dataBytes !== 'number' || limit.data === 0) throw new WireError(`${type} cannot carry data`);
  if (dataBytes > limit.data) throw new WireError(`${type} data too large (${dataBytes} > ${limit.data} bytes)`);
  const data = await readFrame(bytes, dataBytes, signal);
  if (data.byteLength !== dataBytes) throw new WireError(`${type} data is ${data.byteLength} bytes, announced ${dataBytes}`);
  const want = (json as { dataSha256?: unknown }).dataSha256;
  if (typeof want !== 'string' || sha256Hex(data) !== want) throw new WireError(`${type} data does not match its sha256`);
  return { msg, data, wireBytes: framed(frame.byteLength) + framed(data.byteLength) };
}

/** Validate and write one message; with data, `dataBytes` and `dataSha256` are filled in. */
export async function writeMessage<T extends { type: string }>(
  bytes: ByteStream<Stream>,
  schema: Schema<T>,
  limits: Readonly<Record<string, MessageLimit>>,
  msg: Outgoing<T>,
  data?: Uint8Array,
  signal?: AbortSignal,
): Promise<number> {
  const full = data === undefined ? msg : { ...msg, dataBytes: data.byteLength, dataSha256: sha256Hex(data) };
  const parsed = schema.safeParse(full);
  if (!parsed.success) throw new WireError(`refusing to send: ${schemaError(parsed.error.issues)}`);
  const limit = limits[msg.type];
  if (limit === undefined) throw new WireError(`refusing to send: ${msg.type} is not part of this protocol`);
  const frame = utf8Encoder.encode(JSON.stringify(full));
  if (frame.byteLength > limit.json) throw new WireError(`refusing to send: ${msg.type} message too large (${frame.byteLength} > ${limit.json} bytes)`);
  if (data !== undefined && data.byteLength > limit.data) {
    throw new WireError(`refusing to send: ${msg.type} data too large (${data.byteLength} > ${limit.data} bytes)`);
  }
  await writeFrame(bytes, frame, signal);
  if (data !== undefined) await writeFrame(bytes, data, signal);
  return framed(frame.byteLength) + (data === undefined ? 0 : framed(data.byteLength));
}

function bufferSizeFor(limits: Readonly<Record<string, MessageLimit>>): number {
  const all = maxLimit(limits);
  // The byte stream buffers what arrives until read: room for one message plus two prefixes.
  return all.json + all.data + 2 * MAX_VARINT_BYTES;
}

// ---- request/response -------------------------------------------------------------------------

export type Handler<Req, Res> = (
  msg: Req,
  from: PeerId,
  data: Uint8Array | undefined,
) => Res | WithData<Res> | Promise<Res | WithData<Res>>;

export interface RegisterOptions {
  /** How long one request may take, reading, handling and replying (default 60 s). */
  timeoutMs?: number;
  /** Concurrent inbound streams of this protocol per connection (libp2p default 32). */
  maxInboundStreams?: number;
  /** Called for every refused stream; the default logs through the node's logger. */
  onError?: (err: Error, from: PeerId) => void;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i < 0 ? s : s.slice(0, i)).slice(0, 400);
}

/**
 * Serve `spec` on `node`: each inbound stream carries one request, answered by `handler`'s reply.
 * A handler that throws is answered with `{type: 'error', reason}` when the protocol allows it.
 * Returns a function that unregisters the protocol.
 */
export async function registerProtocol<Req extends { type: string }, Res extends { type: string }>(
  node: Libp2p,
  spec: ProtocolSpec<Req, Res>,
  handler: Handler<Req, Res>,
  options: RegisterOptions = {},
): Promise<() => Promise<void>> {
  const log = node.logger.forComponent(`fedforward:wire:${spec.id}`);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const onError =
    options.onError ??
    ((err: Error, from: PeerId) => {
      log.error('refused stream from %p: %s', from, err.message);
    });
  const maxBufferSize = bufferSizeFor(spec.requestLimits);
  const canReplyError = Object.hasOwn(spec.responseLimits, 'error');

  const serve = async (stream: Stream, connection: Connection): Promise<void> => {
    const from = connection.remotePeer;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const bytes = byteStream(stream, { maxBufferSize });
      const req = await readMessage(bytes, spec.request, spec.requestLimits, signal);
      let reply: Res | WithData<Res>;
      try {
        reply = await handler(req.msg, from, req.data);
      } catch (err) {
        if (!canReplyError) throw err;
        reply = { type: 'error', reason: firstLine(asError(err).message) } as unknown as Res;
      }
      const sent = isWithData(reply)
        ? await writeMessage(bytes, spec.response, spec.responseLimits, reply.msg, reply.data, signal)
        : await writeMessage(bytes, spec.response, spec.responseLimits, reply as Outgoing<Res>, undefined, signal);
      count(node, spec.id, sent, req.wireBytes ?? 0);
      await stream.close({ signal });
    } catch (err) {
      const e = asError(err);
      try {
        onError(e, from);
      } catch {
        // a faulty error callback must not break the node either
      }
      stream.abort(e);
    }
  };

  await node.handle(
    spec.id,
    (stream, connection) => {
      // Never return a rejected promise to libp2p.
      serve(stream, connection).catch(() => {});
    },
    options.maxInboundStreams === undefined ? {} : { maxInboundStreams: options.maxInboundStreams },
  );
  return async () => {
    await node.unhandle(spec.id);
  };
}

export interface RequestOptions {
  /** Binary attachment for the request. */
  data?: Uint8Array;
  /** Whole exchange, dial included (default 30 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Open a fresh stream to `peer` on `spec`, send `msg`, and return the validated reply. Throws a
 * one-line WireError when the peer sends something invalid; dial errors come from libp2p.
 */
export async function request<Req extends { type: string }, Res extends { type: string }>(
  node: Libp2p,
  peer: PeerId | Multiaddr | Multiaddr[],
  spec: ProtocolSpec<Req, Res>,
  msg: Outgoing<Req>,
  options: RequestOptions = {},
): Promise<Received<Res>> {
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 30_000);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
  const stream = await node.dialProtocol(peer, spec.id, { signal });
  try {
    const bytes = byteStream(stream, { maxBufferSize: bufferSizeFor(spec.responseLimits) });
    const sent = await writeMessage(bytes, spec.request, spec.requestLimits, msg, options.data, signal);
    count(node, spec.id, sent, 0);
    const reply = await readMessage(bytes, spec.response, spec.responseLimits, signal);
    count(node, spec.id, 0, reply.wireBytes ?? 0);
    await stream.close({ signal });
    return reply;
  } catch (err) {
    const e = asError(err);
    stream.abort(e);
    throw e;
  }
}
