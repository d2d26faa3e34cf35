// Datasets as plain text + label rows, and the loader for a client's own local data file.
// Formats: JSONL (one {"text": ..., "label": ...} object per line) and CSV (a header row with a
// `text` column and optional `label` and `domain` columns; RFC 4180 quoting). Labels may be strings
// or integers; they become indices 0..L-1 in sorted order of the distinct values. A file with no
// labels at all is language-modelling text (label -1). Every error is one line naming the file and,
// where there is one, the line.
import { open, stat } from 'node:fs/promises';
import path from 'node:path';

export interface Example {
  text: string;
  /** index into Dataset.labels; -1 for language-modelling text */
  label: number;
}

export interface Dataset {
  name: string;
  /** label names, by index; empty for language-modelling text */
  labels: string[];
  examples: Example[];
  /** natural domain of each example (same length as examples), for the natural split */
  domains?: string[];
}

/** Largest local data file accepted. */
export const MAX_DATA_FILE_BYTES = 50 * 1024 * 1024;

const JSONL_EXTENSIONS = ['.jsonl', '.ndjson'];
const CSV_EXTENSIONS = ['.csv'];

/** A row as read from the file, before labels are mapped to indices. */
interface RawRow {
  line: number;
  text: string;
  label: string | null;
  domain: string | null;
}

/** Reads a local JSONL or CSV data file. Rejects with a one-line Error naming the file (and line). */
export async function loadDataFile(file: string): Promise<Dataset> {
  const ext = path.extname(file).toLowerCase();
  const isJsonl = JSONL_EXTENSIONS.includes(ext);
  if (!isJsonl && !CSV_EXTENSIONS.includes(ext)) {
    throw new Error(
      `${file}: unknown file type "${ext || '(no extension)'}"; use .jsonl (one {"text": ..., "label": ...} object per line) or .csv (a header row with a "text" column and an optional "label" column)`,
    );
  }
  const text = await readText(file);
  const rows = isJsonl ? parseJsonlRows(file, text) : parseCsvRows(file, text);
  return buildDataset(file, rows);
}

async function readText(file: string): Promise<string> {
  let size: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (err) {
    throw new Error(`cannot read ${file}: ${oneLine((err as Error).message)}`);
  }
  if (size > MAX_DATA_FILE_BYTES) {
    throw new Error(
      `${file} is ${(size / 1024 / 1024).toFixed(1)} MB; the limit is ${MAX_DATA_FILE_BYTES / 1024 / 1024} MB (use a sample of the data, or split it into several files)`,
    );
  }
  // Read at most limit + 1 bytes, so a file that grows after stat() still cannot exceed the limit.
  let bytes: Uint8Array;
  try {
    const fh = await open(file, 'r');
    try {
      const buf = Buffer.alloc(Math.min(size, MAX_DATA_FILE_BYTES) + 1);
      let n = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
        if (bytesRead === 0) break;
        n += bytesRead;
        if (n === buf.length) break;
      }
      if (n > MAX_DATA_FILE_BYTES) throw new Error(`${file} is over the ${MAX_DATA_FILE_BYTES / 1024 / 1024} MB limit`);
      bytes = buf.subarray(0, n);
    } finally {
      await fh.close();
    }
  } catch (err) {
    const msg = (err as Error).message;
    throw new Error(msg.startsWith(file) ? msg : `cannot read ${file}: ${oneLine(msg)}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${file}: not UTF-8 text (save it as UTF-8)`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // byte-order mark
  if (text.trim() === '') throw new Error(`${file}: the file is empty`);
  return text;
}

function parseJsonlRows(file: string, text: string): RawRow[] {
  const rows: RawRow[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i].replace(/\r$/, '');
    if (raw.trim() === '') continue; // blank lines (e.g. a trailing newline) are allowed
    const where = `${file} line ${lineNo}`;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new Error(`${where}: not valid JSON (${oneLine((err as Error).message)})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new Error(`${where}: not a JSON object; each line must be {"text": ..., "label": ...}`);
    }
    const obj = value as Record<string, unknown>;
    if (!('text' in obj)) throw new Error(`${where}: no "text" field`);
    if (typeof obj.text !== 'string') throw new Error(`${where}: "text" must be a string, got ${typeName(obj.text)}`);
    let label: string | null = null;
    if ('label' in obj && obj.label !== null) {
      const l = obj.label;
      if (typeof l === 'string') label = l;
      else if (typeof l === 'number' && Number.isSafeInteger(l)) label = String(l);
      else throw new Error(`${where}: "label" must be a string or an integer, got ${typeName(l)}`);
    }
    let domain: string | null = null;
    if ('domain' in obj && obj.domain !== null) {
      if (typeof obj.domain !== 'string') throw new Error(`${where}: "domain" must be a string, got ${typeName(obj.domain)}`);
      domain = obj.domain;
    }
    rows.push({ line: lineNo, text: obj.text, label, domain });
  }
  return rows;
}

/** One CSV record: its fields and the (1-based) line it starts on. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/**
 * RFC 4180 CSV: comma separated, CRLF or LF line ends, fields optionally in double quotes, a
 * doubled quote inside quotes is a quote, and quoted fields may hold commas and line breaks.
 * Blank lines between records are skipped. Errors name `file` and the line.
 */
export function parseCsv(file: string, text: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    // Skip blank lines between records.
    if (text[i] === '\n') {
      i++;
      line++;
      continue;
    }
    if (text[i] === '\r' && text[i + 1] === '\n') {
      i += 2;
      line++;
      continue;
    }
    const startLine = line;
    const fields: string[] = [];
    for (;;) {
      // One field, starting at i.
      let value = '';
      if (text[i] === '"') {
        const quoteLine = line;
        i++;
        for (;;) {
          if (i >= n) throw new Error(`${file} line ${quoteLine}: a quoted field is not closed (a " is missing)`);
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              value += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === '\n') line++;
          value += c;
          i++;
        }
        if (i < n && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
          throw new Error(`${file} line ${line}: text after the closing quote of a field (a quote inside a field must be doubled: "")`);
        }
      } else {
        const start = i;
        while (i < n && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
          if (text[i] === '"') {
            throw new Error(`${file} line ${line}: a quote inside an unquoted field (put the whole field in quotes and double the quote: "")`);
          }
          i++;
        }
        value = text.slice(start, i);
      }
      fields.push(value);
      if (i < n && text[i] === ',') {
        i++;
        continue;
      }
      // End of record: a line break or the end of the text.
      if (i < n) {
        i += text[i] === '\r' ? 2 : 1;
        line++;
      }
      break;
    }
    records.push({ line: startLine, fields });
  }
  return records;
}

function parseCsvRows(file: string, text: string): RawRow[] {
  const records = parseCsv(file, text);
  if (records.length === 0) throw new Error(`${file}: the file is empty`);
  const header = records[0].fields.map((h) => h.trim());
  const where = (line: number): string => `${file} line ${line}`;
  const seen = new Set<string>();
  for (const h of header) {
    if (seen.has(h.toLowerCase())) throw new Error(`${where(records[0].line)}: the header names column "${h}" twice`);
    seen.add(h.toLowerCase());
  }
  const col = (name: string): number => header.findIndex((h) => h.toLowerCase() === name);
  const textCol = col('text');
  if (textCol < 0) {
    throw new Error(`${where(records[0].line)}: the header has no "text" column (columns: ${header.map((h) => JSON.stringify(h)).join(', ')})`);
  }
  const labelCol = col('label');
  const domainCol = col('domain');
  if (records.length === 1) throw new Error(`${file}: no data rows after the header`);
  const rows: RawRow[] = [];
  for (const rec of records.slice(1)) {
    if (rec.fields.length !== header.length) {
      throw new Error(`${where(rec.line)}: ${rec.fields.length} field${rec.fields.length === 1 ? '' : 's'}, but the header has ${header.length}`);
    }
    const label = labelCol < 0 ? null : rec.fields[labelCol].trim();
    if (label === '') throw new Error(`${where(rec.line)}: empty label`);
    const domain = domainCol < 0 ? null : rec.fields[domainCol].trim() || null;
    rows.push({ line: rec.line, text: rec.fields[textCol], label, domain });
  }
  return rows;
}

function buildDataset(file: string, rows: RawRow[]): Dataset {
  if (rows.length === 0) throw new Error(`${file}: no examples in the file`);
  for (const r of rows) {
    r.text = r.text.trim();
    if (r.text === '') throw new Error(`${file} line ${r.line}: empty text`);
  }
  const labelled = rows.filter((r) => r.label !== null);
  if (labelled.length > 0 && labelled.length < rows.length) {
    const a = rows.find((r) => r.label === null)!;
    throw new Error(`${file} line ${a.line}: no "label" (line ${labelled[0].line} has one; label every example, or none for language-modelling text)`);
  }
  const withDomain = rows.filter((r) => r.domain !== null);
  if (withDomain.length > 0 && withDomain.length < rows.length) {
    const a = rows.find((r) => r.domain === null)!;
    throw new Error(`${file} line ${a.line}: no "domain" (line ${withDomain[0].line} has one; give every example a domain, or none)`);
  }
  const name = path.basename(file, path.extname(file));
  const domains = withDomain.length > 0 ? rows.map((r) => r.domain!) : undefined;
  if (labelled.length === 0) {
    return { name, labels: [], examples: rows.map((r) => ({ text: r.text, label: -1 })), ...(domains ? { domains } : {}) };
  }
  const labels = sortLabels([...new Set(rows.map((r) => r.label!))]);
  if (labels.length < 2) {
    throw new Error(`${file}: every example has the label ${JSON.stringify(labels[0])}; classification needs at least 2 distinct labels`);
  }
  const index = new Map(labels.map((l, i) => [l, i]));
  return {
    name,
    labels,
    examples: rows.map((r) => ({ text: r.text, label: index.get(r.label!)! })),
    ...(domains ? { domains } : {}),
  };
}

/** Integers sort numerically (so "2" < "10"), anything else as strings (code-point order). */
export function sortLabels(values: string[]): string[] {
  const allInts = values.every((v) => /^-?\d+$/.test(v));
  if (allInts) return values.slice().sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : a > b ? 1 : 0));
  return values.slice().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return Number.isInteger(v) ? `the number ${v}` : `the non-integer ${v}`;
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();
