// Conformance cases for listing (capability `list`): list pages through portal chains in memberId
// order; listChains lists one portal's user chains in chain order.

import { listChainsOf, listOf, MEMBER, OTHER_MEMBER, type SuiteContext } from './context.js';
import { chainRecord, sampleRecord, withVersion } from './records.js';

/** Registers the listing cases; only for stores that declare `capabilities.list`. */
export function registerListCases({ test, expect, store }: SuiteContext): void {
  test('list returns records in ascending memberId order, a page at a time', async () => {
    const ids = ['m-07', 'm-03', 'm-10', 'm-01', 'm-05', 'm-02', 'm-09', 'm-04', 'm-08', 'm-06', 'm-11'];
    for (const id of ids) await store().upsert(sampleRecord(id, { domain: `${id}.bitrix24.com` }));
    const list = listOf(store());
    const sorted = [...ids].sort();
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await list({ after, limit: 4 });
      expect(page.records.length, 'a page holds at most `limit` records').toBeLessThanOrEqual(4);
      for (const record of page.records) {
        const expected = withVersion(sampleRecord(record.memberId, { domain: `${record.memberId}.bitrix24.com` }), 1);
        expect(record, 'list returns whole records').toStrictEqual(expected);
      }
      seen.push(...page.records.map((record) => record.memberId));
      after = page.next;
      pages++;
    } while (after !== undefined && pages < 10);
    expect(seen, 'pages follow each other in ascending memberId order, none skipped or repeated').toStrictEqual(sorted);
    expect(pages, 'eleven records in pages of four take three pages').toBe(3);
    const all = await list();
    expect(all.records.map((record) => record.memberId), 'one default page holds all eleven').toStrictEqual(sorted);
    expect(all.next, 'the last page has no next').toBeUndefined();
  });

  test('list of an empty store, or after the last memberId, is an empty last page', async () => {
    const list = listOf(store());
    expect(await list(), 'an empty store lists an empty last page').toStrictEqual({ records: [], next: undefined });
    await store().upsert(sampleRecord('m-1'));
    expect(await list({ after: 'm-1' }), '`after` the last memberId is an empty last page').toStrictEqual({
      records: [],
      next: undefined,
    });
    expect(
      (await list({ after: 'm-0' })).records.map((record) => record.memberId),
      '`after` is exclusive and compares memberIds',
    ).toStrictEqual(['m-1']);
  });

  test('list does not return deleted portals', async () => {
    await store().upsert(sampleRecord('m-1'));
    await store().upsert(sampleRecord('m-2'));
    await store().delete('m-1');
    expect(
      (await listOf(store())()).records.map((record) => record.memberId),
      'a deleted portal is not listed',
    ).toStrictEqual(['m-2']);
  });

  test('list returns portal chains only, never user chains', async () => {
    await store().upsert(sampleRecord('m-1'));
    await store().upsert(chainRecord('m-1', 4));
    await store().upsert(chainRecord('m-2', 4));
    const page = await listOf(store())();
    expect(
      page.records.map((record) => [record.memberId, record.chain]),
      "list holds each portal's own chain once, and no portal that has only user chains",
    ).toStrictEqual([['m-1', 'portal']]);
    expect(await listOf(store())({ limit: 1 }), 'user chains take no slot in a page').toStrictEqual({
      records: [withVersion(sampleRecord('m-1'), 1)],
      next: undefined,
    });
  });

  test("listChains lists one portal's user chains in ascending chain order and nothing of other portals", async () => {
    const listChains = listChainsOf(store());
    expect(await listChains(MEMBER), 'a portal without chains lists none').toStrictEqual([]);
    await store().upsert(sampleRecord(MEMBER));
    expect(await listChains(MEMBER), "listChains never lists the portal's own chain").toStrictEqual([]);
    const inputs = [chainRecord(MEMBER, 20), chainRecord(MEMBER, 3), chainRecord(MEMBER, 100)];
    for (const input of inputs) await store().upsert(input);
    await store().upsert(chainRecord(OTHER_MEMBER, 5));
    await store().upsert(chainRecord(`${MEMBER}0`, 6));
    const chains = await listChains(MEMBER);
    expect(
      chains.map((record) => record.chain),
      'user chains in ascending chain order (code units), none of other portals',
    ).toStrictEqual(['user:100', 'user:20', 'user:3']);
    expect(chains[2], 'listChains returns whole records').toStrictEqual(withVersion(chainRecord(MEMBER, 3), 1));
    await store().delete({ memberId: MEMBER, chain: 'user:20' });
    expect(
      (await listChains(MEMBER)).map((record) => record.chain),
      'a deleted user chain is not listed',
    ).toStrictEqual(['user:100', 'user:3']);
    await store().deletePortal(MEMBER);
    expect(await listChains(MEMBER), 'deletePortal leaves no chain to list').toStrictEqual([]);
    expect(
      (await listChains(OTHER_MEMBER)).map((record) => record.chain),
      "deletePortal leaves another portal's chains",
    ).toStrictEqual(['user:5']);
  });

  test('listAll (when present) pages through every chain in memberId then chain order, a user chain without its portal chain included', async () => {
    const target = store();
    const listAll = target.listAll?.bind(target);
    if (listAll === undefined) return; // optional: walks fall back to list plus listChains
    await target.upsert(sampleRecord('m-2'));
    await target.upsert(chainRecord('m-2', 10));
    await target.upsert(chainRecord('m-2', 9));
    await target.upsert(chainRecord('m-1', 7)); // no portal chain for m-1 (an app-page visit before the install)
    await target.upsert(sampleRecord('m-3'));
    await target.upsert(chainRecord('m-3', 4));
    await target.delete({ memberId: 'm-3', chain: 'user:4' });
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await listAll({ after, limit: 2 });
      expect(page.records.length, 'a page holds at most `limit` records').toBeLessThanOrEqual(2);
      seen.push(...page.records.map((record) => `${record.memberId} ${record.chain}`));
      after = page.next;
      pages++;
    } while (after !== undefined && pages < 10);
    expect(seen, 'every chain once, in memberId then chain order (code units), deleted ones left out').toStrictEqual([
      'm-1 user:7', 'm-2 portal', 'm-2 user:10', 'm-2 user:9', 'm-3 portal',
    ]);
    expect((await listAll()).next, 'one default page holds them all').toBeUndefined();
  });
}

