import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadDataFile, parseCsv, MAX_DATA_FILE_BYTES } from '../../../src/worker/data/examples.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'ff-data-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Buffer): string {
  const p = path.join(dir, name);
  writeFileSync(p, content);
  return p;
}

/** The loader's error message for `content` saved as `name`; checks it is one line. */
async function errorOf(name: string, content: string | Buffer): Promise<string> {
  const p = file(name, content);
  let msg = '';
  try {
    await loadDataFile(p);
  } catch (err) {
    msg = (err as Error).message;
  }
  expect(msg, 'should have failed').not.toBe('');
  expect(msg).not.toMatch(/\n/);
  expect(msg).toContain(p); // names the file
  return msg;
}

const jl = (...rows: unknown[]): string => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';

describe('loadDataFile: JSONL', () => {
  it('maps string labels to indices in sorted order and keeps the names', async () => {
    const ds = await loadDataFile(
      file('reviews.jsonl', jl({ text: 'great', label: 'pos' }, { text: ' awful ', label: 'neg' }, '', { text: 'meh', label: 'neutral' }, { text: 'fine', label: 'pos' })),
    );
    expect(ds.name).toBe('reviews');
    expect(ds.labels).toEqual(['neg', 'neutral', 'pos']);
    expect(ds.examples).toEqual([
      { text: 'great', label: 2 },
      { text: 'awful', label: 0 },
      { text: 'meh', label: 1 },
      { text: 'fine', label: 2 },
    ]);
    expect(ds.domains).toBeUndefined();
  });

  it('integer labels sort numerically; CRLF and a BOM are fine; optional domain', async () => {
    const ds = await loadDataFile(
      file('nums.jsonl', '\ufeff' + [{ text: 'a', label: 10, domain: 'x' }, { text: 'b', label: 2, domain: 'y' }, { text: 'c', label: 2, domain: 'x' }].map((r) => JSON.stringify(r)).join('\r\n')),
    );
    expect(ds.labels).toEqual(['2', '10']);
    expect(ds.examples.map((e) => e.label)).toEqual([1, 0, 0]);
    expect(ds.domains).toEqual(['x', 'y', 'x']);
  });

  it('no labels at all: language-modelling text with label -1', async () => {
    const ds = await loadDataFile(file('lm.jsonl', jl({ text: 'one' }, { text: 'two' })));
    expect(ds.labels).toEqual([]);
    expect(ds.examples).toEqual([{ text: 'one', label: -1 }, { text: 'two', label: -1 }]);
  });

  it('names the line of each bad row', async () => {
    const good = { text: 'ok', label: 'a' };
    const other = { text: 'ok too', label: 'b' };
    expect(await errorOf('data.jsonl', jl(good, other, good, good, good, good, '{"text": "x", label: 1}'))).toMatch(/data\.jsonl line 7: not valid JSON/);
    expect(await errorOf('data.jsonl', jl(good, other, { label: 'a' }))).toMatch(/data\.jsonl line 3: no "text" field$/);
    expect(await errorOf('data.jsonl', jl(good, other, good, good, { text: '   ', label: 'a' }))).toMatch(/data\.jsonl line 5: empty text$/);
    expect(await errorOf('data.jsonl', jl(good, '[1, 2]'))).toMatch(/data\.jsonl line 2: not a JSON object/);
    expect(await errorOf('data.jsonl', jl(good, { text: 5, label: 'a' }))).toMatch(/data\.jsonl line 2: "text" must be a string, got the number 5/);
    expect(await errorOf('data.jsonl', jl(good, other, { text: 'x', label: 1.5 }))).toMatch(/data\.jsonl line 3: "label" must be a string or an integer/);
    expect(await errorOf('data.jsonl', jl(good, other, { text: 'x' }))).toMatch(/data\.jsonl line 3: no "label"/);
  });

  it('rejects an empty file, a single label, an unknown extension, non-UTF-8 and an oversized file', async () => {
    expect(await errorOf('empty.jsonl', '')).toMatch(/empty\.jsonl: the file is empty$/);
    expect(await errorOf('blank.jsonl', '\n  \n')).toMatch(/the file is empty$/);
    expect(await errorOf('one.jsonl', jl({ text: 'a', label: 'x' }, { text: 'b', label: 'x' }))).toMatch(
      /one\.jsonl: every example has the label "x"; classification needs at least 2 distinct labels/,
    );
    expect(await errorOf('data.txt', 'hello')).toMatch(/data\.txt: unknown file type "\.txt"; use \.jsonl .* or \.csv/);
    expect(await errorOf('bin.jsonl', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))).toMatch(/bin\.jsonl: not UTF-8 text/);
    const big = file('big.jsonl', '');
    truncateSync(big, MAX_DATA_FILE_BYTES + 1); // sparse: no 50 MB written
    await expect(loadDataFile(big)).rejects.toThrow(/big\.jsonl is 50\.0 MB; the limit is 50 MB/);
    await expect(loadDataFile(path.join(dir, 'missing.jsonl'))).rejects.toThrow(/cannot read .*missing\.jsonl/);
  });
});

describe('loadDataFile: CSV', () => {
  it('RFC 4180 quoting: commas, doubled quotes and line breaks inside quotes, CRLF', async () => {
    const csv = 'id,text,label\r\n' + '1,"Hello, world",pos\r\n' + '2,"She said ""no"".",neg\r\n' + '3,"two\nlines, and ""quotes""",pos\r\n' + '4,plain text,neg';
    const ds = await loadDataFile(file('q.csv', csv));
    expect(ds.labels).toEqual(['neg', 'pos']);
    expect(ds.examples).toEqual([
      { text: 'Hello, world', label: 1 },
      { text: 'She said "no".', label: 0 },
      { text: 'two\nlines, and "quotes"', label: 1 },
      { text: 'plain text', label: 0 },
    ]);
  });

  it('parseCsv: empty fields, a quoted empty field, a trailing newline, record start lines', () => {
    expect(parseCsv('x.csv', 'a,b,c\n,"",x\n"multi\nline",2,\n')).toEqual([
      { line: 1, fields: ['a', 'b', 'c'] },
      { line: 2, fields: ['', '', 'x'] },
      { line: 3, fields: ['multi\nline', '2', ''] },
    ]);
  });

  it('text-only CSV is language-modelling data; integer labels sort numerically', async () => {
    expect((await loadDataFile(file('t.csv', 'text\nfirst\nsecond\n'))).examples).toEqual([
      { text: 'first', label: -1 },
      { text: 'second', label: -1 },
    ]);
    const ds = await loadDataFile(file('n.csv', 'label,text\n10,a\n9,b\n'));
    expect(ds.labels).toEqual(['9', '10']);
    expect(ds.examples.map((e) => e.label)).toEqual([1, 0]);
  });

  it('names the line of each bad row', async () => {
    expect(await errorOf('data.csv', 'label,body\npos,x\n')).toMatch(/data\.csv line 1: the header has no "text" column \(columns: "label", "body"\)/);
    expect(await errorOf('data.csv', 'text,label\na,pos\nb,neg\n"c\nd",pos\ne\n')).toMatch(/data\.csv line 6: 1 field, but the header has 2$/);
    expect(await errorOf('data.csv', 'text,label\na,pos\n"b,neg\n')).toMatch(/data\.csv line 3: a quoted field is not closed/);
    expect(await errorOf('data.csv', 'text,label\na,pos\nsay "hi",neg\n')).toMatch(/data\.csv line 3: a quote inside an unquoted field/);
    expect(await errorOf('data.csv', 'text,label\na,pos\n"hi"x,neg\n')).toMatch(/data\.csv line 3: text after the closing quote/);
    expect(await errorOf('data.csv', 'text,label\na,pos\nb,neg\n"",pos\n')).toMatch(/data\.csv line 4: empty text$/);
    expect(await errorOf('data.csv', 'text,label\na,pos\nb,\n')).toMatch(/data\.csv line 3: empty label$/);
    expect(await errorOf('data.csv', 'text,label\n')).toMatch(/data\.csv: no data rows after the header$/);
    expect(await errorOf('data.csv', 'text,Text\na,b\n')).toMatch(/data\.csv line 1: the header names column "Text" twice/);
  });
});
