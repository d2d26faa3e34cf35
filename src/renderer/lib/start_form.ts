// The Start screen's forms as plain data: text fields in, the API's arguments or per-field errors out.
import { CreateFederationForm, CreateInviteArgs, InviteCode, JoinOptions, fieldErrors } from '../../shared/api.ts';

export interface CreateFields {
  name: string;
  peerName: string;
  model: string;
  data: string;
  domain: string;
  limit: string;
  r: string;
  alpha: string;
  dropout: string;
  targets: string;
  lr: string;
  rounds: string;
  minMembers: string;
  maxLocalSteps: string;
  batchSize: string;
  maxLength: string;
  roundDeadlineSeconds: string;
}

/** The defaults, as the form shows them. */
export function defaultCreateFields(): CreateFields {
  const d = CreateFederationForm.parse({ name: 'x' });
  return {
    name: '',
    peerName: d.peerName,
    model: d.model,
    data: d.data,
    domain: '',
    limit: String(d.limit),
    r: String(d.lora.r),
    alpha: String(d.lora.alpha),
    dropout: String(d.lora.dropout),
    targets: '',
    lr: String(d.lr),
    rounds: String(d.rounds),
    minMembers: String(d.minMembers),
    maxLocalSteps: String(d.maxLocalSteps),
    batchSize: String(d.batchSize),
    maxLength: String(d.maxLength),
    roundDeadlineSeconds: String(d.roundDeadlineSeconds),
  };
}

/** Field name in the form ← path in the schema. */
const FIELD_OF: Record<string, keyof CreateFields> = { 'lora.r': 'r', 'lora.alpha': 'alpha', 'lora.dropout': 'dropout', 'lora.targets': 'targets' };

export type FormResult<T> = { ok: true; value: T; errors: Record<string, never> } | { ok: false; errors: Record<string, string> };

function numberField(text: string, key: string, errors: Record<string, string>): number | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  const n = Number(t);
  if (!Number.isFinite(n)) {
    errors[key] = 'enter a number';
    return undefined;
  }
  return n;
}

export function readCreateForm(f: CreateFields): FormResult<CreateFederationForm> {
  const errors: Record<string, string> = {};
  const n = (k: keyof CreateFields) => numberField(f[k], k, errors);
  const value: CreateFederationForm = {
    name: f.name,
    peerName: f.peerName,
    model: f.model,
    data: f.data,
    ...(f.domain.trim() ? { domain: f.domain.trim() } : {}),
    limit: n('limit'),
    lora: {
      r: n('r'),
      alpha: n('alpha'),
      dropout: n('dropout'),
      targets: f.targets.split(',').map((s) => s.trim()).filter(Boolean),
    },
    lr: n('lr'),
    rounds: n('rounds'),
    minMembers: n('minMembers'),
    maxLocalSteps: n('maxLocalSteps'),
    batchSize: n('batchSize'),
    maxLength: n('maxLength'),
    roundDeadlineSeconds: n('roundDeadlineSeconds'),
  };
  for (const [path, msg] of Object.entries(fieldErrors(CreateFederationForm, value))) {
    const key = FIELD_OF[path] ?? path.split('.')[0]!;
    errors[key] ??= msg;
  }
  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, value, errors: {} };
}

/** The Create form's fields in the order they appear, the collapsed "Training settings" ones last. */
export const CREATE_ORDER: (keyof CreateFields)[] = ['name', 'peerName', 'model', 'data', 'domain', 'limit', 'rounds', 'minMembers', 'r', 'alpha', 'dropout', 'targets', 'lr', 'maxLocalSteps', 'batchSize', 'maxLength', 'roundDeadlineSeconds'];
/** Fields inside the collapsed "Training settings" section. */
export const TRAINING_SETTINGS = new Set<keyof CreateFields>(['r', 'alpha', 'dropout', 'targets', 'lr', 'maxLocalSteps', 'batchSize', 'maxLength', 'roundDeadlineSeconds']);

/** The first field (in `order`) that has an error, or null. */
export function firstInvalid<K extends string>(errors: Record<string, string>, order: readonly K[]): K | null {
  return order.find((k) => errors[k] !== undefined) ?? null;
}

/** The same words on both forms: the data field takes a built-in task or a file. */
export const DATA_HELP = 'A built-in task (sentiment, brown-genre, brown-lm) or the path of a .jsonl/.csv file (text, label) on this machine; it never leaves it.';

export interface JoinFields {
  code: string;
  dataFile: string;
  peerName: string;
  domain: string;
}

export const JOIN_ORDER: (keyof JoinFields)[] = ['code', 'peerName', 'dataFile', 'domain'];

/** The join form's defaults: the same organisation default and data default as Create. */
export function defaultJoinFields(): JoinFields {
  return { code: '', peerName: JoinOptions.parse({}).peerName, dataFile: defaultCreateFields().data, domain: '' };
}

export function readJoinForm(f: JoinFields): FormResult<{ code: string; dataFile: string; peerName: string; domain?: string }> {
  const errors: Record<string, string> = {};
  const code = f.code.replace(/\s+/g, '');
  const c = InviteCode.safeParse(code);
  if (!c.success) errors.code = c.error.issues[0]!.message;
  else if (!code.startsWith('ff1')) errors.code = 'an invite code starts with "ff1"; paste the whole code';
  if (!f.dataFile.trim()) errors.dataFile = 'a built-in task name (e.g. sentiment) or the path of your .jsonl or .csv file';
  if (!f.peerName.trim()) errors.peerName = 'give your organisation a name';
  for (const [k, msg] of Object.entries(fieldErrors(JoinOptions.unwrap(), { peerName: f.peerName, ...(f.domain.trim() ? { domain: f.domain } : {}) }))) errors[k] ??= msg;
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return { ok: true, value: { code, dataFile: f.dataFile.trim(), peerName: f.peerName.trim(), ...(f.domain.trim() ? { domain: f.domain.trim() } : {}) }, errors: {} };
}

export function readInviteForm(expiresHours: string, uses: string, forIds = ''): FormResult<{ expiresHours: number; uses: number; for: string[] }> {
  const errors: Record<string, string> = {};
  const e = numberField(expiresHours, 'expiresHours', errors);
  const u = numberField(uses, 'uses', errors);
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  const ids = forIds.split(/[\s,]+/).filter(Boolean);
  const fe = fieldErrors(CreateInviteArgs, { expiresHours: e, uses: u, for: ids });
  if (Object.keys(fe).length > 0) {
    const out: Record<string, string> = {};
    for (const [k, m] of Object.entries(fe)) out[k.split('.')[0]!] ??= m;
    return { ok: false, errors: out };
  }
  return { ok: true, value: CreateInviteArgs.parse({ expiresHours: e, uses: u, for: ids }), errors: {} };
}
