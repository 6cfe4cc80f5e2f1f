// Checks verify.js against every entry of the draw test vectors (FAIRNESS.md).
// Run: node crates/web/assets/verify.test.mjs   (Node 20+: globalThis.crypto.subtle is built in)
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
new Function('window', readFileSync(here('./verify.js'), 'utf8'))(globalThis);
const { tuangouDraw: td } = globalThis;
const data = JSON.parse(readFileSync(here('../../domain/tests/draw-vectors.json'), 'utf8'));

let failures = 0;
const fail = (what, detail) => { failures++; console.log(`FAIL ${what}: ${detail}`); };
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

if (data.algorithm !== td.ALGORITHM) fail('algorithm', `${data.algorithm} vs ${td.ALGORITHM}`);

let n = 0;
for (const v of data.vectors) {
  const name = `vector ${v.group_id}`;
  n++;
  try {
    const commitment = await td.sha256Hex(Uint8Array.from(v.server_seed.match(/../g), (h) => parseInt(h, 16)));
    if (commitment !== v.seed_commitment) fail(name, `commitment ${commitment}`);
    const digest = await td.participantsDigest(v.group_id, v.members);
    if (digest !== v.participants_digest) fail(name, `digest ${digest}`);
    if ((await td.participantsDigest(v.members)) !== digest) fail(name, 'participantsDigest(members) differs');
    const winners = await td.draw(v.server_seed, v.group_id, v.members, v.winners_per_group);
    if (!same(winners, v.winners)) fail(name, `winners ${JSON.stringify(winners)}, expected ${JSON.stringify(v.winners)}`);
  } catch (e) { fail(name, e.stack); }
}
console.log(`vectors: ${n} checked`);

n = 0;
for (const [i, c] of data.records.entries()) {
  const name = `record #${i} ${c.record.id} (${c.expect}${c.why ? ': ' + c.why : ''})`;
  n++;
  const result = await td.verifyRecord(c.record);
  const want = c.expect === 'verified';
  if (c.expect !== 'verified' && c.expect !== 'rejected') fail(name, `unknown expect ${c.expect}`);
  else if (result.ok !== want) fail(name, JSON.stringify(result.checks));
  else if (want && !same(result.checks.map((x) => x.id), ['algorithm', 'commitment', 'members', 'digest', 'winners'])) {
    fail(name, `unexpected checks ${JSON.stringify(result.checks)}`);
  } else if (!want) {
    console.log(`  rejected as expected (${c.why}): ${result.checks.filter((x) => !x.ok).map((x) => x.id).join(', ')}`);
  }
}
console.log(`records: ${n} checked`);

n = 0;
for (const u of data.uniform) {
  n++;
  const stream = u.stream.map(BigInt);
  let pos = 0;
  const next = () => { if (pos >= stream.length) throw new Error('stream ended'); return stream[pos++]; };
  try {
    const got = td.uniform(BigInt(u.m), next);
    if (got !== BigInt(u.expected)) fail(`uniform m=${u.m}`, `got ${got}, expected ${u.expected}`);
    pos = 0;
    if (td.uniform(Number(u.m), next) !== got) fail(`uniform m=${u.m}`, 'a number m differs from a BigInt m');
  } catch (e) { fail(`uniform m=${u.m}`, e.message); }
}
console.log(`uniform: ${n} checked`);

// Malformed input must give ok:false, never an exception.
n = 0;
// A verified record whose seed has hex letters, so upper-casing it really changes it.
const good = data.records.find((c) => c.expect === 'verified' && /[a-f]/.test(c.record.draw.server_seed)).record;
for (const bad of [null, 42, 'x', [], {}, { ...good, draw: null }, { ...good, draw: 'x' }, { ...good, members: null },
  { ...good, members: [{}] }, { ...good, draw: { ...good.draw, server_seed: good.draw.server_seed.toUpperCase() } },
  { ...good, draw: { ...good.draw, winners: 'x' } }, { ...good, winners_per_group: 0 }, { ...good, group_size: 99 },
  { ...good, members: [...good.members].reverse() }, { ...good, draw: { ...good.draw, algorithm: 'v0' } }]) {
  n++;
  try {
    const r = await td.verifyRecord(bad);
    if (r.ok !== false || !r.checks.some((x) => !x.ok)) fail(`malformed #${n}`, JSON.stringify(r));
  } catch (e) { fail(`malformed #${n}`, `threw ${e.message}`); }
}
const notDrawn = await td.verifyRecord({ ...good, draw: null });
if (!same(notDrawn.checks.map((x) => [x.id, x.ok]), [['not_drawn', false]])) fail('not_drawn', JSON.stringify(notDrawn));
console.log(`malformed: ${n} checked`);

console.log(failures ? `${failures} FAILED` : 'all passed');
process.exit(failures ? 1 : 0);
