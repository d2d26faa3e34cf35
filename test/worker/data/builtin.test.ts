import { describe, it, expect } from 'vitest';
import { BUILTIN_TASKS, detokenizeBrown, englishCorpus, loadBuiltinTask, subjectOf } from '../../../src/worker/data/builtin.ts';

describe('built-in tasks', () => {
  it('lists the four tasks with a description each', () => {
    expect(BUILTIN_TASKS.map((t) => t.name)).toEqual(['sentiment', 'spam', 'brown-genre', 'brown-lm']);
    for (const t of BUILTIN_TASKS) expect(t.description.length).toBeGreaterThan(10);
  });

  it('sentiment: 3000 real sentences, 1500 per label, 1000 per domain, 500/500 within each', () => {
    const ds = loadBuiltinTask('sentiment');
    expect(ds.labels).toEqual(['negative', 'positive']);
    expect(ds.examples).toHaveLength(3000);
    expect(ds.domains).toHaveLength(3000);
    const count = (f: (i: number) => boolean): number => ds.examples.filter((_, i) => f(i)).length;
    expect(count((i) => ds.examples[i].label === 0)).toBe(1500);
    expect(count((i) => ds.examples[i].label === 1)).toBe(1500);
    for (const d of ['imdb', 'yelp', 'amazon']) {
      expect(count((i) => ds.domains![i] === d)).toBe(1000);
      expect(count((i) => ds.domains![i] === d && ds.examples[i].label === 1)).toBe(500);
    }
    for (const e of ds.examples) expect(e.text.trim()).toBe(e.text);
    expect(ds.examples[0].text).toBe('A very, very, very slow-moving, aimless movie about a distressed, drifting young man.');
  });

  it('spam: the distinct subject lines of the SpamAssassin corpus, labelled by folder', () => {
    const ds = loadBuiltinTask('spam');
    expect(ds.labels).toEqual(['ham', 'spam']);
    expect(ds.examples).toHaveLength(4156);
    expect(ds.examples.filter((e) => e.label === 1)).toHaveLength(1652);
    const lower = ds.examples.map((e) => e.text.toLowerCase());
    expect(new Set(lower).size).toBe(lower.length);
    expect(ds.examples[0]).toEqual({ text: 'Re: New Sequences Window', label: 0 });
    expect(ds.examples).toContainEqual({ text: 'Life Insurance - Why Pay More?', label: 1 });
    for (const e of ds.examples) expect(e.text).toMatch(/^\S(.*\S)?$/);
  });

  it('subjectOf: unfolds a folded Subject, stops at the body, drops encoded and empty ones', () => {
    expect(subjectOf('From: a@b\r\nSubject: Cheap\r\n\tpills now\r\nTo: c@d\r\n\r\nSubject: not this')).toBe('Cheap pills now');
    expect(subjectOf('From: a@b\n\nSubject: in the body')).toBeNull();
    expect(subjectOf('subject:   Re: [ILUG] lilo  \n\nbody')).toBe('Re: [ILUG] lilo');
    expect(subjectOf('Subject: =?iso-8859-1?Q?Caf=E9?=\n\n')).toBeNull();
    expect(subjectOf('Subject:\nFrom: a@b\n\n')).toBeNull();
  });

  it('brown-genre: 57,340 sentences, 15 genre labels, readable text without /tags', () => {
    const ds = loadBuiltinTask('brown-genre');
    expect(ds.examples).toHaveLength(57340);
    expect(ds.labels).toHaveLength(15);
    expect(ds.labels).toContain('news');
    expect(ds.labels).toContain('science_fiction');
    expect(ds.labels).toEqual([...ds.labels].sort());
    expect(new Set(ds.examples.map((e) => e.label)).size).toBe(15);
    expect(ds.domains!.every((d, i) => d === ds.labels[ds.examples[i].label])).toBe(true);
    expect(ds.examples[0]).toEqual({
      text: `The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced "no evidence" that any irregularities took place.`,
      label: ds.labels.indexOf('news'),
    });
    // No POS tags left: a tagged sentence has a /tag on every word; real text has only a few
    // slashes ("and/or", "$4/mbf", "1/2").
    const slashes = (t: string): number => (t.match(/\S\/\S/g) ?? []).length;
    expect(ds.examples.reduce((a, e) => a + slashes(e.text), 0)).toBeLessThan(300); // ~1.16 M words
    expect(ds.examples.filter((e) => slashes(e.text) > 0).length).toBeLessThan(200);
    expect(ds.examples.some((e) => /\/(at|nn|vbd|jj|nns|vbz)\b/.test(e.text))).toBe(false);
    for (const e of ds.examples.slice(0, 2000)) {
      expect(e.text).not.toMatch(/ [,.;:?!)]( |$)|``|''/);
    }
  });

  it('brown-lm: the same sentences with label -1', () => {
    const ds = loadBuiltinTask('brown-lm');
    expect(ds.labels).toEqual([]);
    expect(ds.examples).toHaveLength(57340);
    expect(ds.examples.every((e) => e.label === -1)).toBe(true);
  });

  it('detokenizeBrown: punctuation, quotes, brackets, words with slashes', () => {
    expect(detokenizeBrown("\t``/`` Only/rb a/at handful/nn ''/'' ,/, the/at jury/nn said/vbd (/( in/in 1/2/cd time/nn )/) ;/. '/' so/rb '/' ./.")).toBe(
      `"Only a handful", the jury said (in 1/2 time); 'so'.`,
    );
  });

  it('englishCorpus: several MB of clean ASCII-ish English from Brown, Moby-Dick and SOTU', () => {
    const all = englishCorpus();
    const chars = all.reduce((a, s) => a + s.length, 0);
    expect(chars).toBeGreaterThan(6e6);
    expect(all.some((s) => s.startsWith('Call me Ishmael.'))).toBe(true);
    expect(all.some((s) => s.startsWith('Fellow-Citizens of the Senate and House of Representatives'))).toBe(true);
    for (const s of all) {
      expect(s).toBe(s.trim());
      expect(s).not.toMatch(/[\u2018\u2019\u201c\u201d\u2014\n]|\(Applause\.\)/);
    }
    const capped = englishCorpus({ maxChars: 1e6 });
    const cappedChars = capped.reduce((a, s) => a + s.length, 0);
    expect(cappedChars).toBeLessThanOrEqual(1e6);
    expect(cappedChars).toBeGreaterThan(0.99e6);
    expect(capped).toEqual(all.slice(0, capped.length)); // a prefix, mixing the sources
    expect(capped.some((s) => s.startsWith('Call me Ishmael.'))).toBe(true);
  });
});
