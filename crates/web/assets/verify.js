// Browser verifier for tuangou-draw-v1, exactly as FAIRNESS.md specifies it (the spec wins over this file).
// Plain ES2020, no modules, no dependencies: load it with <script src="…/verify.js" defer>. It defines
// `tuangouDraw` on window; every hash and HMAC is Web Crypto (crypto.subtle, so a secure context: HTTPS or localhost).
(function (root) {
  'use strict';

  const ALGORITHM = 'tuangou-draw-v1';
  const TWO_64 = 1n << 64n;
  const MAX_MEMBERS = 1000000; // the server's own bound on a draw
  const utf8 = new TextEncoder();
  const SEED_HEX = /^[0-9a-f]{64}$/; // lowercase only, exactly 32 bytes
  const TICKET = /^[A-Za-z0-9_-]{1,64}$/;
  const CONTROL = /\p{Cc}/u; // what Rust's char::is_control rejects
  const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

  function subtle() {
    const s = root.crypto && root.crypto.subtle;
    if (!s) throw new Error('Web Crypto (crypto.subtle) is unavailable: open this page over HTTPS');
    return s;
  }

  function toBytes(data) {
    if (typeof data === 'string') return utf8.encode(data);
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    throw new TypeError('expected a string or bytes');
  }

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function seedBytes(serverSeedHex) {
    if (typeof serverSeedHex !== 'string' || !SEED_HEX.test(serverSeedHex)) {
      throw new TypeError('server_seed must be 64 lowercase hex characters');
    }
    const bytes = new Uint8Array(32);
    for (let i = 0; i < 32; i++) bytes[i] = parseInt(serverSeedHex.slice(2 * i, 2 * i + 2), 16);
    return bytes;
  }

  /** Lowercase hex SHA-256 of a string (as UTF-8) or of bytes. */
  async function sha256Hex(bytesOrString) {
    return hex(await subtle().digest('SHA-256', toBytes(bytesOrString)));
  }

  // Members as the digest reads them; throws on anything that is not {seq: integer, ticket: string, client_seed: string}.
  function memberLines(members) {
    if (!Array.isArray(members)) throw new TypeError('members must be an array');
    const sorted = members.slice();
    for (const m of sorted) {
      if (!m || typeof m !== 'object' || !Number.isSafeInteger(m.seq)
          || typeof m.ticket !== 'string' || typeof m.client_seed !== 'string') {
        throw new TypeError('each member needs an integer seq and string ticket and client_seed');
      }
    }
    sorted.sort((a, b) => a.seq - b.seq);
    return sorted.map((m) => `${m.seq}:${m.ticket}:${m.client_seed}`);
  }

  /**
   * participants_digest: SHA-256 over the UTF-8 of the lines `{seq}:{ticket}:{client_seed}` in ascending seq,
   * joined by a single "\n", NO trailing newline. client_seed is taken verbatim (no trim, no Unicode normalisation).
   * The group id plays no part; it may be passed first or left out: participantsDigest(members).
   */
  async function participantsDigest(groupId, members) {
    if (members === undefined && Array.isArray(groupId)) members = groupId;
    return sha256Hex(memberLines(members).join('\n'));
  }

  /**
   * uniform(m): a number in 0..m-1 with no modulo bias. limit = 2^64 − (2^64 mod m), in BigInt (so the 128-bit
   * arithmetic is exact; for m a power of two the limit is 2^64 itself and every x is kept). Numbers x ≥ limit are
   * skipped, because keeping them would favour the low residues; the first x < limit gives x mod m.
   * nextU64() must return the stream's next number as a BigInt in [0, 2^64).
   */
  function uniform(m, nextU64) {
    const mm = BigInt(m);
    if (mm < 1n || mm >= TWO_64) throw new RangeError('uniform needs 1 <= m < 2^64');
    const limit = TWO_64 - (TWO_64 % mm);
    for (;;) {
      const x = BigInt(nextU64());
      if (x < 0n || x >= TWO_64) throw new RangeError('stream numbers must be unsigned 64-bit');
      if (x < limit) return x % mm;
    }
  }

  // Partial Fisher–Yates over a = [1..N]: for j in 0..K-1, swap a[j] with a[j + uniform(N − j)].
  // Winners are a[0..K] sorted ascending (seq numbers).
  function selectWinners(n, k, nextU64) {
    const a = Array.from({ length: n }, (_, i) => i + 1);
    for (let j = 0; j < k; j++) {
      const r = j + Number(uniform(n - j, nextU64));
      const t = a[j]; a[j] = a[r]; a[r] = t;
    }
    return a.slice(0, k).sort((x, y) => x - y);
  }

  const NEED_MORE = Symbol('need more blocks');

  // The random stream: block i = HMAC-SHA256(key = the 32 raw seed bytes,
  // message = UTF-8 of `tuangou-draw-v1|{group_id}|{participants_digest}|{i}`, i in decimal, from 0), each block read
  // as four big-endian u64 (bytes 0–7, 8–15, 16–23, 24–31) in that order. Web Crypto is async while uniform() pulls
  // numbers synchronously, so blocks are computed ahead; if rejections use them all up, more are made and the
  // (deterministic) selection simply runs again from the start of the same stream.
  async function winnersFromStream(serverSeedHex, groupId, digest, n, k) {
    const key = await subtle().importKey('raw', seedBytes(serverSeedHex), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const prefix = `${ALGORITHM}|${groupId}|${digest}|`;
    const words = [];
    let blocks = 0;
    const addBlocks = async (count) => {
      const signed = await Promise.all(Array.from({ length: count }, (_, b) =>
        subtle().sign('HMAC', key, utf8.encode(prefix + String(blocks + b)))));
      blocks += count;
      for (const block of signed) {
        const view = new DataView(block);
        for (let w = 0; w < 4; w++) words.push(view.getBigUint64(8 * w, false)); // false = big-endian
      }
    };
    await addBlocks(Math.ceil(k / 4) + 1);
    for (;;) {
      let pos = 0;
      const next = () => { if (pos < words.length) return words[pos++]; throw NEED_MORE; };
      try {
        return selectWinners(n, k, next);
      } catch (e) {
        if (e !== NEED_MORE) throw e;
        await addBlocks(blocks);
      }
    }
  }

  // Where the sorted seqs stop being 1, 2, 3, …: a message, or null when they are exactly 1..N.
  function seqGap(seqs) {
    const sorted = seqs.slice().sort((x, y) => x - y);
    for (let i = 0; i < sorted.length; i++) {
      if (sorted[i] !== i + 1) return `expected seq ${i + 1}, found ${sorted[i]}`;
    }
    return null;
  }

  /** K winners (seq numbers, ascending) of a full group whose members carry seqs exactly 1..N (any order). */
  async function draw(serverSeedHex, groupId, members, k) {
    const digest = await participantsDigest(members); // also validates the members' shape
    const n = members.length;
    const gap = seqGap(members.map((m) => m.seq));
    if (gap) throw new RangeError(`member seqs must be exactly 1..${n}: ${gap}`);
    if (n > MAX_MEMBERS) throw new RangeError(`more than ${MAX_MEMBERS} members`);
    if (!Number.isSafeInteger(k) || k < 0 || k > n) throw new RangeError(`${k} winners cannot be drawn from ${n} members`);
    return winnersFromStream(serverSeedHex, String(groupId), digest, n, k);
  }

  function memberProblem(m) {
    if (!TICKET.test(m.ticket)) return `seq ${m.seq}: ticket must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -`;
    const chars = [...m.client_seed].length; // Unicode scalar values, not UTF-16 units
    if (chars < 1 || chars > 64) return `seq ${m.seq}: client_seed must be 1 to 64 characters`;
    if (CONTROL.test(m.client_seed) || LONE_SURROGATE.test(m.client_seed)) {
      return `seq ${m.seq}: client_seed must not contain control characters or lone surrogates`;
    }
    return null;
  }

  /**
   * Verifies a group record as GET /api/v1/groups/{id} returns it. Never throws: { ok, checks: [{id, ok, detail}] }
   * with checks algorithm, commitment, members, digest, winners (or a single not_drawn when draw is null).
   */
  async function verifyRecord(record) {
    const checks = [];
    const check = (id, ok, detail) => { checks.push({ id, ok, detail }); return ok; };
    const done = () => ({ ok: checks.length > 0 && checks.every((c) => c.ok), checks });
    try {
      if (!record || typeof record !== 'object' || Array.isArray(record)) {
        check('record', false, 'the record is not a JSON object');
        return done();
      }
      const d = record.draw;
      if (d === null || d === undefined) {
        check('not_drawn', false, 'the group has not been drawn yet');
        return done();
      }
      if (typeof d !== 'object') {
        check('record', false, 'draw is not an object');
        return done();
      }

      check('algorithm', d.algorithm === ALGORITHM,
        d.algorithm === ALGORITHM ? ALGORITHM : `unknown algorithm ${JSON.stringify(d.algorithm)}`);

      const seedOk = typeof d.server_seed === 'string' && SEED_HEX.test(d.server_seed);
      if (!seedOk) {
        check('commitment', false, 'server_seed must be 64 lowercase hex characters');
      } else {
        const computed = await sha256Hex(seedBytes(d.server_seed));
        check('commitment', computed === record.seed_commitment,
          computed === record.seed_commitment ? `SHA-256(server_seed) = ${computed}`
            : `SHA-256(server_seed) = ${computed}, published ${JSON.stringify(record.seed_commitment)}`);
      }

      // Members: exactly group_size of them, seq 1..N in ascending order, well-formed tickets and client seeds.
      const members = record.members;
      const n = record.group_size;
      let lines = null;
      try { lines = memberLines(members); } catch (e) { /* reported below */ }
      if (!lines) {
        check('members', false, 'members must be a list of {seq, ticket, client_seed}');
      } else if (!Number.isSafeInteger(n) || members.length !== n) {
        check('members', false, `group_size is ${JSON.stringify(n)} but there are ${members.length} members`);
      } else {
        const badSeq = members.findIndex((m, i) => m.seq !== i + 1);
        const problem = badSeq >= 0 ? `position ${badSeq + 1} has seq ${members[badSeq].seq}, expected ${badSeq + 1}`
          : members.map(memberProblem).find((p) => p) || null;
        check('members', !problem, problem || `${n} members, seq 1..${n}`);
      }

      if (!lines) {
        check('digest', false, 'cannot recompute the digest from malformed members');
      } else {
        const computed = await sha256Hex(lines.join('\n'));
        check('digest', computed === d.participants_digest,
          computed === d.participants_digest ? `participants_digest = ${computed}`
            : `recomputed ${computed}, published ${JSON.stringify(d.participants_digest)}`);
      }

      // Winners: the stream is keyed by the published digest (the digest check above ties it to the members).
      const k = record.winners_per_group;
      const count = Array.isArray(members) ? members.length : 0;
      const published = d.winners;
      if (!seedOk) {
        check('winners', false, 'cannot recompute the winners without a valid server_seed');
      } else if (!Array.isArray(members) || count > MAX_MEMBERS) {
        check('winners', false, 'cannot recompute the winners without a member list');
      } else if (!Number.isSafeInteger(k) || k < 1 || k > count) {
        check('winners', false, `winners_per_group ${JSON.stringify(k)} is not between 1 and ${count}`);
      } else if (typeof d.participants_digest !== 'string' || (typeof record.id !== 'string' && typeof record.id !== 'number')) {
        check('winners', false, 'the record lacks a group id or participants_digest');
      } else if (!Array.isArray(published)) {
        check('winners', false, 'draw.winners is not a list');
      } else {
        const computed = await winnersFromStream(d.server_seed, String(record.id), d.participants_digest, count, k);
        const same = computed.length === published.length && computed.every((w, i) => w === published[i]);
        check('winners', same, same ? `winners ${JSON.stringify(computed)}`
          : `recomputed ${JSON.stringify(computed)}, published ${JSON.stringify(published)}`);
      }
    } catch (e) {
      check('error', false, String(e && e.message || e));
    }
    return done();
  }

  root.tuangouDraw = Object.freeze({
    ALGORITHM, verifyRecord, participantsDigest, draw, uniform, sha256Hex,
  });
})(typeof window !== 'undefined' ? window : globalThis);
