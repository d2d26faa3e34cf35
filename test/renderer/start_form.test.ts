// The Start and invite forms: text in, the API's arguments or per-field errors in plain words out.
import { describe, expect, it } from 'vitest';
import { CREATE_ORDER, TRAINING_SETTINGS, defaultCreateFields, defaultJoinFields, firstInvalid, readCreateForm, readInviteForm, readJoinForm } from '../../src/renderer/lib/start_form.ts';
import { CreateFederationForm } from '../../src/shared/api.ts';

describe('the create form', () => {
  it('shows the schema defaults and needs only a name', () => {
    const f = defaultCreateFields();
    expect(f.model).toBe('embedded');
    expect(f.rounds).toBe('5');
    expect(readCreateForm(f)).toEqual({ ok: false, errors: { name: 'give it a name' } });
    const r = readCreateForm({ ...f, name: 'Reviews' });
    expect(r.ok).toBe(true);
    if (r.ok) expect(CreateFederationForm.parse(r.value)).toMatchObject({ name: 'Reviews', rounds: 5, lora: { r: 4, alpha: 8, dropout: 0, targets: [] } });
  });

  it('names each bad field next to it, in words', () => {
    const r = readCreateForm({ ...defaultCreateFields(), name: 'x', rounds: 'two', r: '0', dropout: '1.5', lr: '-1', minMembers: '1.5' });
    expect(r.ok).toBe(false);
    expect(r.errors).toEqual({ rounds: 'enter a number', r: 'at least 1', dropout: 'between 0 and 1', lr: 'must be above 0', minMembers: 'a whole number' });
  });

  it('splits target modules on commas and keeps an empty domain out', () => {
    const r = readCreateForm({ ...defaultCreateFields(), name: 'x', targets: 'q_proj, v_proj,', domain: '  ' });
    expect(r.ok && r.value.lora?.targets).toEqual(['q_proj', 'v_proj']);
    expect(r.ok && 'domain' in r.value).toBe(false);
  });
});

describe('the join form', () => {
  it('needs a code that looks like one, a data file and a name', () => {
    expect(readJoinForm({ code: '', dataFile: '', peerName: '', domain: '' }).errors).toEqual({
      code: 'paste the invite code',
      dataFile: expect.stringContaining('.jsonl or .csv'),
      peerName: 'give your organisation a name',
    });
    expect(readJoinForm({ code: 'hello', dataFile: 'a.csv', peerName: 'b', domain: '' }).errors.code).toMatch(/starts with "ff1"/);
  });

  it('drops whitespace a paste put into the code', () => {
    const r = readJoinForm({ code: ' ff1-abc\n-def ', dataFile: ' data.jsonl ', peerName: 'yelp', domain: '' });
    expect(r).toEqual({ ok: true, errors: {}, value: { code: 'ff1-abc-def', dataFile: 'data.jsonl', peerName: 'yelp' } });
  });
});

describe('the first field to fix', () => {
  it('follows the order of the form, the collapsed settings last', () => {
    const r = readCreateForm({ ...defaultCreateFields(), name: 'x', batchSize: '0', r: '0' });
    expect(firstInvalid(r.errors, CREATE_ORDER)).toBe('r');
    expect(TRAINING_SETTINGS.has('r')).toBe(true);
    expect(firstInvalid(readCreateForm({ ...defaultCreateFields(), r: '0' }).errors, CREATE_ORDER)).toBe('name');
    expect(firstInvalid({}, CREATE_ORDER)).toBe(null);
    expect(CREATE_ORDER.filter((k) => TRAINING_SETTINGS.has(k))).toEqual([...TRAINING_SETTINGS]);
  });

  it('join has the defaults create has, and the same length limit on names', () => {
    expect(defaultJoinFields()).toEqual({ code: '', peerName: 'organisation-2', dataFile: 'sentiment', domain: '' });
    expect(readJoinForm({ code: 'ff1-a', dataFile: 'sentiment', peerName: 'n'.repeat(101), domain: '' }).errors).toEqual({ peerName: 'at most 100 characters' });
  });
});

describe('the invite form', () => {
  it('checks expiry and uses', () => {
    expect(readInviteForm('24', '2')).toEqual({ ok: true, errors: {}, value: { expiresHours: 24, uses: 2, for: [] } });
    expect(readInviteForm('x', '0').errors).toEqual({ expiresHours: 'enter a number' });
    expect(readInviteForm('1', '0').errors).toEqual({ uses: 'at least 1' });
    expect(readInviteForm('0', '1').errors).toEqual({ expiresHours: 'must be above 0' });
  });

  it('binds a code to the peer ids given, and refuses what is not one', () => {
    const id = '12D3KooWGzh8Jpe4sT2b3vq5RfsYxo8BfkJVqg4Ha5u6p6DPS3BH';
    expect(readInviteForm('1', '2', ` ${id},\n${id.replace('H', 'J')} `)).toEqual({ ok: true, errors: {}, value: { expiresHours: 1, uses: 2, for: [id, id.replace('H', 'J')] } });
    expect(readInviteForm('1', '1', 'yelp').errors).toEqual({ for: 'not a peer id (fedforward id prints one)' });
  });
});
