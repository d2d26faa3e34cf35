// Peer-to-peer message schemas: the one definition of every message that crosses the network
// between FedForward peers. Each message is a JSON object with a `type`; a few carry a binary
// attachment (raw weight bytes) that travels as a second frame after the JSON one. The JSON names
// the attachment's length and sha256 (`dataBytes`, `dataSha256`), the wire layer fills them in on
// send and checks both on receipt. Every message type has a size limit (MESSAGE_LIMITS): the wire
// refuses a frame whose length prefix exceeds it before reading the frame.
import { z } from 'zod';
import { ModelSpec } from './worker_protocol.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

// ---- building blocks --------------------------------------------------------------------------

/** A non-negative safe integer (terms, rounds, versions, byte counts, unix ms). */
export const natSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** A libp2p peer id in its string form (base58btc `12D3Koo…`/`Qm…`, or a base32 CID `b…`). */
export const peerIdSchema = z.string().min(1).max(128).regex(/^[A-Za-z0-9]+$/, 'not a peer id');
/** A multiaddr in its string form. Parsing is left to @multiformats/multiaddr at the use site. */
export const multiaddrSchema = z.string().min(1).max(1024).startsWith('/');
/** Lower-case hex sha256. */
export const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'not a lower-case hex sha256');
/** A scalar hyperparameter value. */
export const scalarSchema = z.union([z.number(), z.string().max(256), z.boolean()]);
/** Name of an assignable unit of trainable weights (an adapter module or a slice of one). */
export const unitIdSchema = z.string().min(1).max(256);

const MAX_MEMBERS = 256;
const MAX_UNITS = 65_536;

/** Describes where each tensor lies in a raw float32 attachment (offsets in bytes). */
export const tensorLayoutSchema = z
  .array(
    z.object({
      name: z.string().min(1).max(512),
      shape: z.array(natSchema).max(8),
      offset: natSchema,
    }),
  )
  .max(MAX_UNITS);
export type TensorLayout = z.infer<typeof tensorLayoutSchema>;

/** What a peer tells others about itself. */
export const peerInfoSchema = z.object({
  peerId: peerIdSchema,
  name: z.string().min(1).max(200),
  multiaddrs: z.array(multiaddrSchema).max(16),
  /** Relative compute capacity; a higher value makes the peer a likelier aggregator. */
  capacity: z.number().finite().min(0).max(1e6),
});
export type PeerInfo = z.infer<typeof peerInfoSchema>;

/** Federation-wide settings, stored by every peer and handed to newcomers on join. */
export const federationSettingsSchema = z.object({
  federationId: z.string().min(1).max(128),
  federationName: z.string().min(1).max(200),
  createdAt: natSchema,
  /** The base model every peer loads (a name the peers resolve locally; never downloaded). */
  model: z.string().max(512).optional(),
  task: z.enum(['classification', 'language-modelling']).optional(),
  method: z.string().max(64).optional(),
  hyperparameters: z.record(z.string().max(64), scalarSchema).optional(),
  /** How long the aggregator waits for updates in a round. */
  roundDeadlineMs: natSchema.optional(),
  /** The full model spec every peer loads (adapter shape and initial seed included). */
  modelSpec: ModelSpec.optional(),
  /** sha256 of the base model's files (config.json, weights): a joiner's own copy must match. */
  modelFingerprint: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** Rounds to run in all. */
  rounds: natSchema.optional(),
  /** Members that must be connected before a round starts. */
  minMembers: natSchema.optional(),
  /** The federation's seed (assignments, perturbations). */
  seed: natSchema.optional(),
  /** Members with a public address that relay (circuit relay v2) for members behind a NAT, as
   *  multiaddrs ending in /p2p/<their peer id>. */
  relays: z.array(multiaddrSchema).max(8).optional(),
  /** The creator's peer id; `signature` is its key's signature over the other fields. */
  creator: peerIdSchema.optional(),
  signature: z.string().regex(/^[0-9a-f]*$/).max(1024).optional(),
});
export type FederationSettings = z.infer<typeof federationSettingsSchema>;

// ---- election (Raft) --------------------------------------------------------------------------
// Sender identity is never in the message: it is the libp2p-authenticated remote peer.

export const voteRequestSchema = z.object({
  type: z.literal('vote-request'),
  term: natSchema,
  /** The candidate's newest committed round. */
  committedRound: natSchema,
  /**
   * The candidate's newest round, staged or committed, and the term it was staged in (Raft's last
   * log entry): voters refuse a candidate whose (lastTerm, lastRound) is behind their own.
   * Absent: (0, committedRound).
   */
  lastRound: natSchema.optional(),
  lastTerm: natSchema.optional(),
  /** Pre-vote: "would you vote for me in this term?"; no state changes at the voter. */
  preVote: z.boolean().optional(),
});
export const voteResponseSchema = z.object({
  type: z.literal('vote-response'),
  term: natSchema,
  granted: z.boolean(),
  /** The answer to a pre-vote request. */
  preVote: z.boolean().optional(),
});
export const heartbeatSchema = z.object({
  type: z.literal('heartbeat'),
  term: natSchema,
  /** The leader's newest committed round, so followers learn it (and promote what they staged). */
  committedRound: natSchema,
  /** sha256 of that round's checkpoint file, and the term it was committed in. */
  committedSha256: sha256Schema.optional(),
  committedTerm: natSchema.optional(),
  members: z.array(peerIdSchema).min(1).max(MAX_MEMBERS),
  membershipVersion: natSchema,
});
export const heartbeatResponseSchema = z.object({
  type: z.literal('heartbeat-response'),
  term: natSchema,
  ok: z.boolean(),
  committedRound: natSchema,
});
export const raftMessageSchema = z.discriminatedUnion('type', [
  voteRequestSchema,
  voteResponseSchema,
  heartbeatSchema,
  heartbeatResponseSchema,
]);
export type VoteRequest = z.infer<typeof voteRequestSchema>;
export type VoteResponse = z.infer<typeof voteResponseSchema>;
export type Heartbeat = z.infer<typeof heartbeatSchema>;
export type HeartbeatResponse = z.infer<typeof heartbeatResponseSchema>;
export type RaftMessage = z.infer<typeof raftMessageSchema>;

// ---- generic replies --------------------------------------------------------------------------

export const ackSchema = z.object({ type: z.literal('ack') });
export const errorReplySchema = z.object({ type: z.literal('error'), reason: z.string().max(500) });
export type Ack = z.infer<typeof ackSchema>;
export type ErrorReply = z.infer<typeof errorReplySchema>;

// ---- joining ----------------------------------------------------------------------------------

export const joinRequestSchema = z.object({
  type: z.literal('join-request'),
  /** The invite code exactly as the person pasted it. */
  invite: z.string().min(1).max(4096),
  peer: peerInfoSchema,
  /** The joiner's fingerprint of its copy of the base model, once it has seen the terms. */
  modelFingerprint: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});
/** The settings, for a joiner to check its base model against before it becomes a member. */
export const joinTermsSchema = z.object({
  type: z.literal('join-terms'),
  settings: federationSettingsSchema,
});
export const joinAcceptedSchema = z.object({
  type: z.literal('join-accepted'),
  settings: federationSettingsSchema,
  members: z.array(peerInfoSchema).max(MAX_MEMBERS),
  membershipVersion: natSchema,
  leader: peerIdSchema.nullable(),
  committedRound: natSchema,
});
export const joinRefusedSchema = z.object({
  type: z.literal('join-refused'),
  reason: z.string().max(500),
});
/** The invite admits anyone who holds it, so a member must approve this joiner first: ask again later. */
export const joinPendingSchema = z.object({
  type: z.literal('join-pending'),
  reason: z.string().max(500),
});
export type JoinRequest = z.infer<typeof joinRequestSchema>;
export type JoinAccepted = z.infer<typeof joinAcceptedSchema>;
export type JoinRefused = z.infer<typeof joinRefusedSchema>;
export type JoinTerms = z.infer<typeof joinTermsSchema>;

/** A member that accepted an invite asks the aggregator (which alone changes the membership) to add the newcomer. */
export const admitRequestSchema = z.object({
  type: z.literal('admit-request'),
  peer: peerInfoSchema,
});
export const admitAcceptedSchema = z.object({
  type: z.literal('admit-accepted'),
  members: z.array(peerInfoSchema).max(MAX_MEMBERS),
  membershipVersion: natSchema,
});
export type AdmitAccepted = z.infer<typeof admitAcceptedSchema>;

/** A member asks the aggregator, which alone changes the membership, to evict a member. */
export const removeRequestSchema = z.object({
  type: z.literal('remove-request'),
  peerId: peerIdSchema,
});

// ---- rounds -----------------------------------------------------------------------------------

export const roundAnnounceSchema = z.object({
  type: z.literal('round-announce'),
  term: natSchema,
  round: natSchema,
  /** peer id → the units that peer trains this round. */
  assignment: z.record(peerIdSchema, z.array(unitIdSchema).max(MAX_UNITS)),
  seed: natSchema,
  hyperparameters: z.record(z.string().max(64), scalarSchema),
  /** sha256 of the global adapter the round starts from. */
  globalSha256: sha256Schema,
  /** Updates that arrive after this instant (unix ms) are not used. */
  deadline: natSchema,
  /** The aggregator's newest committed round (round - 1), its checkpoint's sha256 and term. */
  committedRound: natSchema.optional(),
  committedSha256: sha256Schema.optional(),
  committedTerm: natSchema.optional(),
});
export type RoundAnnounce = z.infer<typeof roundAnnounceSchema>;

const float32Bytes = natSchema.refine((n) => n % 4 === 0, 'float32 data must be a multiple of 4 bytes');

export const weightsFetchRequestSchema = z.object({
  type: z.literal('weights-fetch-request'),
  round: natSchema,
  /** sha256 of the global adapter wanted (as announced). */
  sha256: sha256Schema,
  /** Only these units; all when absent. */
  units: z.array(unitIdSchema).max(MAX_UNITS).optional(),
});
export const weightsFetchResponseSchema = z.object({
  type: z.literal('weights-fetch-response'),
  round: natSchema,
  sha256: sha256Schema,
  dtype: z.literal('float32'),
  layout: tensorLayoutSchema.optional(),
  dataBytes: float32Bytes,
  dataSha256: sha256Schema,
});
export type WeightsFetchRequest = z.infer<typeof weightsFetchRequestSchema>;
export type WeightsFetchResponse = z.infer<typeof weightsFetchResponseSchema>;

export const updateSubmissionSchema = z.object({
  type: z.literal('update-submission'),
  term: natSchema,
  round: natSchema,
  units: z.array(unitIdSchema).min(1).max(MAX_UNITS),
  /** How many local examples the update was computed on (aggregation weight). */
  numExamples: natSchema,
  /** Mean local training loss (reported in the metrics). */
  loss: z.number().finite().optional(),
  /** The sender's newest evaluation of a committed round on its own test split (shown per member). */
  evaluation: z.object({ round: natSchema, testLoss: z.number().finite(), accuracy: z.number().min(0).max(1).nullable() }).optional(),
  dtype: z.literal('float32'),
  /**
   * What the attachment holds: `weights` (per-epoch Spry: the assigned tensors, described by
   * `layout`; the default) or `jvp` (per-iteration Spry: K float32 directional derivatives, no
   * layout; the aggregator regenerates the perturbations from the round seed and the sender's id).
   */
  kind: z.enum(['weights', 'jvp']).optional(),
  layout: tensorLayoutSchema.optional(),
  dataBytes: float32Bytes,
  dataSha256: sha256Schema,
});
export type UpdateSubmission = z.infer<typeof updateSubmissionSchema>;

/** The aggregator asks a peer to store round `round`'s checkpoint (attached, or to be fetched). */
export const commitRequestSchema = z.object({
  type: z.literal('commit-request'),
  term: natSchema,
  round: natSchema,
  /** sha256 of the checkpoint file. */
  sha256: sha256Schema,
  /** sha256 of round - 1's committed checkpoint at the aggregator (absent for round 1). */
  prevSha256: sha256Schema.optional(),
  /** The round's aggregate figures, so that every member shows them, not only the aggregator. */
  summary: z
    .object({
      trainLoss: z.number().finite().nullable(),
      updates: natSchema,
      participants: natSchema,
      wallMs: natSchema,
      /** The evaluations the counted updates carried, by member name (a few, within the message's 4 KiB). */
      evaluations: z
        .array(z.object({ member: z.string().max(64), round: natSchema, testLoss: z.number().finite(), accuracy: z.number().min(0).max(1).nullable() }))
        .max(24)
        .optional(),
    })
    .optional(),
  dataBytes: natSchema.optional(),
  dataSha256: sha256Schema.optional(),
});
export const commitAckSchema = z.object({
  type: z.literal('commit-ack'),
  term: natSchema,
  round: natSchema,
  sha256: sha256Schema,
  ok: z.boolean(),
  reason: z.string().max(500).optional(),
});
export type CommitRequest = z.infer<typeof commitRequestSchema>;

/** A member that lacks committed rounds (after a restart or a partition) asks for one by number. */
export const checkpointFetchRequestSchema = z.object({
  type: z.literal('checkpoint-fetch-request'),
  round: natSchema,
});
export const checkpointFetchResponseSchema = z.object({
  type: z.literal('checkpoint-fetch-response'),
  round: natSchema,
  /** sha256 of the checkpoint file (the attachment). */
  sha256: sha256Schema,
  /** The term the round was committed in (absent: unknown, 0). */
  term: natSchema.optional(),
  dataBytes: natSchema,
  dataSha256: sha256Schema,
});
export type CheckpointFetchRequest = z.infer<typeof checkpointFetchRequestSchema>;
export type CheckpointFetchResponse = z.infer<typeof checkpointFetchResponseSchema>;
export type CommitAck = z.infer<typeof commitAckSchema>;

// ---- size limits ------------------------------------------------------------------------------

export interface MessageLimit {
  /** Largest JSON frame, in bytes (UTF-8). */
  json: number;
  /** Largest binary attachment, in bytes; 0 when the message has none. */
  data: number;
}

/** Default limit for weight attachments; a LoRA adapter of a 7B model at rank 8 is about 64 MiB. */
export const MAX_WEIGHTS_BYTES = 256 * MiB;

export const MESSAGE_LIMITS = {
  'vote-request': { json: 1 * KiB, data: 0 },
  'vote-response': { json: 1 * KiB, data: 0 },
  heartbeat: { json: 48 * KiB, data: 0 },
  'heartbeat-response': { json: 1 * KiB, data: 0 },
  ack: { json: 1 * KiB, data: 0 },
  error: { json: 4 * KiB, data: 0 },
  'join-request': { json: 16 * KiB, data: 0 },
  'join-terms': { json: 512 * KiB, data: 0 },
  'join-accepted': { json: 512 * KiB, data: 0 },
  'join-refused': { json: 4 * KiB, data: 0 },
  'join-pending': { json: 4 * KiB, data: 0 },
  'remove-request': { json: 1 * KiB, data: 0 },
  'admit-request': { json: 16 * KiB, data: 0 },
  'admit-accepted': { json: 512 * KiB, data: 0 },
  'round-announce': { json: 4 * MiB, data: 0 },
  'weights-fetch-request': { json: 4 * MiB, data: 0 },
  'weights-fetch-response': { json: 8 * MiB, data: MAX_WEIGHTS_BYTES },
  'update-submission': { json: 8 * MiB, data: MAX_WEIGHTS_BYTES },
  'commit-request': { json: 4 * KiB, data: MAX_WEIGHTS_BYTES },
  'commit-ack': { json: 4 * KiB, data: 0 },
  'checkpoint-fetch-request': { json: 1 * KiB, data: 0 },
  'checkpoint-fetch-response': { json: 4 * KiB, data: MAX_WEIGHTS_BYTES },
} as const satisfies Record<string, MessageLimit>;

export type MessageType = keyof typeof MESSAGE_LIMITS;

// ---- protocols --------------------------------------------------------------------------------

/** A request/response protocol: one fresh stream per request, one request and one reply on it. */
export interface ProtocolSpec<Req extends { type: string }, Res extends { type: string }> {
  readonly id: string;
  readonly request: z.ZodType<Req>;
  readonly response: z.ZodType<Res>;
  /** Limits of every request type, and of every response type. */
  readonly requestLimits: Readonly<Record<string, MessageLimit>>;
  readonly responseLimits: Readonly<Record<string, MessageLimit>>;
}

function limitsOf(types: readonly MessageType[]): Record<string, MessageLimit> {
  const out: Record<string, MessageLimit> = {};
  for (const t of types) out[t] = MESSAGE_LIMITS[t];
  return out;
}

function defineProtocol<Req extends { type: string }, Res extends { type: string }>(
  id: string,
  request: z.ZodType<Req>,
  requestTypes: readonly MessageType[],
  response: z.ZodType<Res>,
  responseTypes: readonly MessageType[],
): ProtocolSpec<Req, Res> {
  return { id, request, response, requestLimits: limitsOf(requestTypes), responseLimits: limitsOf(responseTypes) };
}

/** The largest frame and attachment any of these message types may have. */
export function maxLimit(limits: Readonly<Record<string, MessageLimit>>): MessageLimit {
  let json = 0;
  let data = 0;
  for (const l of Object.values(limits)) {
    json = Math.max(json, l.json);
    data = Math.max(data, l.data);
  }
  return { json, data };
}

const ackOrError = z.discriminatedUnion('type', [ackSchema, errorReplySchema]);

export const PROTOCOLS = {
  /** Election traffic, one message per stream, answered by an ack (replies travel as requests). */
  raft: defineProtocol(
    '/fedforward/raft/1.0.0',
    raftMessageSchema,
    ['vote-request', 'vote-response', 'heartbeat', 'heartbeat-response'],
    ackOrError,
    ['ack', 'error'],
  ),
  join: defineProtocol(
    '/fedforward/join/1.0.0',
    joinRequestSchema,
    ['join-request'],
    z.discriminatedUnion('type', [joinTermsSchema, joinAcceptedSchema, joinRefusedSchema, joinPendingSchema, errorReplySchema]),
    ['join-terms', 'join-accepted', 'join-refused', 'join-pending', 'error'],
  ),
  admit: defineProtocol(
    '/fedforward/admit/1.0.0',
    admitRequestSchema,
    ['admit-request'],
    z.discriminatedUnion('type', [admitAcceptedSchema, errorReplySchema]),
    ['admit-accepted', 'error'],
  ),
  remove: defineProtocol('/fedforward/remove/1.0.0', removeRequestSchema, ['remove-request'], ackOrError, ['ack', 'error']),
  round: defineProtocol('/fedforward/round/1.0.0', roundAnnounceSchema, ['round-announce'], ackOrError, [
    'ack',
    'error',
  ]),
  weights: defineProtocol(
    '/fedforward/weights/1.0.0',
    weightsFetchRequestSchema,
    ['weights-fetch-request'],
    z.discriminatedUnion('type', [weightsFetchResponseSchema, errorReplySchema]),
    ['weights-fetch-response', 'error'],
  ),
  update: defineProtocol('/fedforward/update/1.0.0', updateSubmissionSchema, ['update-submission'], ackOrError, [
    'ack',
    'error',
  ]),
  commit: defineProtocol(
    '/fedforward/commit/1.0.0',
    commitRequestSchema,
    ['commit-request'],
    z.discriminatedUnion('type', [commitAckSchema, errorReplySchema]),
    ['commit-ack', 'error'],
  ),
  checkpoint: defineProtocol(
    '/fedforward/checkpoint/1.0.0',
    checkpointFetchRequestSchema,
    ['checkpoint-fetch-request'],
    z.discriminatedUnion('type', [checkpointFetchResponseSchema, errorReplySchema]),
    ['checkpoint-fetch-response', 'error'],
  ),
} as const;
