import { describe, expect, it } from 'vitest';
import {
  chainEntry,
  chainEntryText,
  entryHash,
  type LogDraft,
  type LogEntry,
  sealedHash,
} from './entry.js';
import { ChainVerifier, type StoredRow } from './verify.js';

function draft(i: number): LogDraft {
  return {
    at: `2026-11-23T10:00:${String(i % 60).padStart(2, '0')}Z`,
    kind: 'session',
    session: { id: `s${i}`, attrs: { i }, version: i },
  };
}

function chain(n: number): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = 1; i <= n; i++) out.push(chainEntry(out.at(-1), draft(i)));
  return out;
}

const rows = (entries: LogEntry[]): StoredRow[] =>
  entries.map((e) => ({ seq: e.seq, text: JSON.stringify(e) }));

function verify(stored: StoredRow[], head = { seq: 10, hash: chain(10).at(-1)!.hash }) {
  const verifier = new ChainVerifier();
  for (const row of stored) if (!verifier.push(row)) break;
  return verifier.finish(head);
}

describe('the hash chain', () => {
  it('accepts an untouched log', () => {
    expect(verify(rows(chain(10)))).toMatchObject({ ok: true, entries: 10, head: { seq: 10 } });
  });

  it('names an edited entry', () => {
    const stored = rows(chain(10));
    stored[3] = { seq: 4, text: stored[3]!.text.replace('"s4"', '"s9"') };
    expect(verify(stored)).toMatchObject({ ok: false, seq: 4, problem: 'edited' });
  });

  it('names an entry whose stored text was changed in ways a JSON parse hides', () => {
    const edits = [
      // A duplicated key: JSON.parse keeps the last, SQLite's json_extract the first.
      (text: string) => text.replace('"kind":"session"', '"kind":"decision","kind":"session"'),
      (text: string) => text.replace('{', '{ '),
      (text: string) => `${text}\n`,
      // The same fields, the hash no longer last.
      (text: string) => {
        const { hash, ...rest } = JSON.parse(text) as LogEntry;
        return JSON.stringify({ hash, ...rest });
      },
    ];
    for (const edit of edits) {
      const stored = rows(chain(10));
      const text = edit(stored[3]!.text);
      // Parsed, it hashes as it did: only its text shows the edit.
      const parsed = JSON.parse(text) as LogEntry;
      expect(entryHash(parsed)).toBe(parsed.hash);
      stored[3] = { seq: 4, text };
      expect(verify(stored)).toMatchObject({ ok: false, seq: 4, problem: 'edited' });
    }
  });

  it('names valid JSON that is no entry as edited', () => {
    for (const text of ['null', '5', '"x"', '[]']) {
      const stored = rows(chain(10));
      stored[3] = { seq: 4, text };
      expect(verify(stored)).toEqual({
        ok: false,
        entries: 3,
        seq: 4,
        problem: 'edited',
        detail: 'the entry is not a JSON object',
      });
    }
  });

  it('names a row stored before the first entry', () => {
    expect(verify([{ seq: 0, text: '{"seq":0}' }, ...rows(chain(10))])).toEqual({
      ok: false,
      entries: 0,
      seq: 0,
      problem: 'edited',
      detail: 'a row is stored at 0, before the first entry (1)',
    });
  });

  it('names an entry edited and rehashed, through the next link', () => {
    const entries = chain(10);
    const forged = chainEntry(entries[4], {
      ...draft(6),
      session: { id: 'forged', attrs: {}, version: 6 },
    });
    entries[5] = { ...forged, prevHash: entries[4]!.hash };
    const stored = rows(entries);
    // Entry 6 was rewritten with a valid hash of its own; entry 7 still links to the old one.
    expect(verify(stored)).toMatchObject({ ok: false, seq: 6, problem: 'edited' });
  });

  it('names the first deleted entry', () => {
    const stored = rows(chain(10)).filter((r) => r.seq !== 5);
    expect(verify(stored)).toMatchObject({ ok: false, seq: 5, problem: 'deleted' });
  });

  it('names swapped entries as reordered', () => {
    const stored = rows(chain(10));
    const a = stored[2]!.text;
    stored[2] = { seq: 3, text: stored[3]!.text };
    stored[3] = { seq: 4, text: a };
    expect(verify(stored)).toMatchObject({ ok: false, seq: 3, problem: 'reordered' });
  });

  it('names a truncated tail against the recorded head', () => {
    expect(verify(rows(chain(10)).slice(0, 7))).toMatchObject({
      ok: false,
      seq: 8,
      problem: 'truncated',
    });
  });

  it('names a log with entries and no head record as possibly truncated', () => {
    const verifier = new ChainVerifier();
    for (const row of rows(chain(10))) verifier.push(row);
    expect(verifier.finish(undefined)).toMatchObject({ ok: false, seq: 11, problem: 'truncated' });
    expect(new ChainVerifier().finish(undefined)).toEqual({ ok: true, entries: 0 });
  });

  it('names a first entry that does not start the chain', () => {
    const stored = rows(chain(10))
      .slice(1)
      .map((r) => ({ ...r, seq: r.seq - 1 }));
    expect(verify(stored).ok).toBe(false);
  });
});

describe('hashing the stored JSON text', () => {
  it('gives the same hash for an entry read back from storage, whatever JSON it holds', async () => {
    const fc = (await import('fast-check')).default;
    fc.assert(
      fc.property(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue()), (value, attrs) => {
        const draft: LogDraft = {
          at: '2026-11-23T10:00:00Z',
          kind: 'session',
          session: { id: 's', attrs: { ...attrs, value } as never, version: 1 },
        };
        const entry = chainEntry(undefined, draft);
        const readBack = JSON.parse(JSON.stringify(entry)) as LogEntry;
        expect(entryHash(readBack)).toBe(entry.hash);
        // What the ledger stores, and what stores kept before it serialized once.
        expect(sealedHash(chainEntryText(undefined, draft).text)).toBe(entry.hash);
        expect(sealedHash(JSON.stringify(entry))).toBe(entry.hash);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('chainEntryText', () => {
  it('gives the text JSON.stringify would, hash last', async () => {
    const { entry, text } = chainEntryText(undefined, draft(3));
    expect(text).toBe(JSON.stringify(entry));
    expect(Object.keys(JSON.parse(text)).at(-1)).toBe('hash');
  });
});

describe('anchors: heads kept outside the store', () => {
  /** The log rewritten from entry `from` on, every later entry hashed again: a valid chain. */
  function rewritten(from: number, n: number): LogEntry[] {
    const out = chain(from - 1);
    for (let i = from; i <= n; i++)
      out.push(
        chainEntry(out.at(-1), { ...draft(i), session: { id: 'forged', attrs: {}, version: i } }),
      );
    return out;
  }
  const run = (entries: LogEntry[], anchors: { seq: number; hash: string }[]) => {
    const verifier = new ChainVerifier(anchors);
    for (const row of rows(entries)) if (!verifier.push(row)) break;
    return verifier.finish({ seq: entries.at(-1)!.seq, hash: entries.at(-1)!.hash });
  };

  it('show a chain rewritten and hashed again, which the chain alone cannot', () => {
    const honest = chain(10);
    const forged = rewritten(4, 10);
    // The forged chain holds together, head and all…
    expect(run(forged, [])).toMatchObject({ ok: true, entries: 10 });
    // …but not against a head recorded before the rewrite, at or after the rewritten entry.
    const anchor = { seq: 6, hash: honest[5]!.hash };
    expect(run(honest, [anchor])).toMatchObject({ ok: true });
    expect(run(forged, [anchor])).toMatchObject({
      ok: false,
      seq: 6,
      problem: 'edited',
      detail: expect.stringContaining('rewritten and hashed again from there or before'),
    });
    // An anchor before the rewrite still holds: the entries it vouches for are intact.
    expect(run(forged, [{ seq: 3, hash: honest[2]!.hash }])).toMatchObject({ ok: true });
  });

  it('are refused when they could match no entry', () => {
    for (const anchor of [
      { seq: '4', hash: 'a'.repeat(64) },
      { seq: 0, hash: 'a'.repeat(64) },
      { seq: 4, hash: 'A'.repeat(64) },
    ])
      expect(() => new ChainVerifier([anchor as never])).toThrow(/an anchor is \{ seq, hash \}/);
  });

  it('show a log cut back to before an anchor, its head rewritten to match', () => {
    const honest = chain(10);
    expect(run(honest.slice(0, 7), [{ seq: 9, hash: honest[8]!.hash }])).toMatchObject({
      ok: false,
      seq: 8,
      problem: 'truncated',
      detail: 'the log ends at 7; an anchor holds entry 9',
    });
  });
});
