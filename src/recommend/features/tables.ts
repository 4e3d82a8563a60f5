import type { FeatureSnapshot } from "./snapshot";
import { inWindow as inWindowOf, NW, W90, W365, WALL } from "./spec";

// features.py `Tables` in memory, built once per snapshot: every person and
// channel gets a dense index in rank order (so "ties by the smaller id" is
// "ties by the smaller index"), per-entity counts are Float64Arrays, and the
// pair tables are compressed sparse rows (CSR) with their columns ascending,
// which also makes every sum run in the order numpy/scipy sum it.
//
// Windowed arrays hold 4 values per entity or entry, [i * 4 + w] with w the
// window's position in WINDOWS (30, 90, 365, all). Absent days are NaN.
//
// Memory for rails-collab at its latest cut (6,500 people, 1,152 channels,
// 35k memberships, 12k pairs): 18.6 MB of typed arrays (`bytes()`), most of
// it the channel co-membership CSR (440k entries × 20 bytes = 8.8 MB; a
// dense C × C float64 would be 10.6 MB for the similarities alone). Nothing
// is U × U; the largest per-request arrays are U-sized (52 KB each).

/** A CSR table: row r's entries are ptr[r] .. ptr[r+1]-1, columns ascending. */
export interface Csr {
  ptr: Int32Array;
  col: Int32Array;
}

export class FeatureTables {
  readonly cut: number;
  readonly dims: number;
  readonly U: number;
  readonly C: number;
  readonly userIds: readonly string[];
  readonly channelIds: readonly string[];
  private readonly userIndex = new Map<string, number>();
  private readonly channelIndex = new Map<string, number>();

  // --- people (windowed arrays: U * 4)
  readonly uDays: Float64Array;
  readonly uChannels: Float64Array;
  readonly uCommits: Float64Array;
  readonly uPartners: Float64Array;
  readonly uInteractions: Float64Array;
  readonly uNewPartners: Float64Array;
  readonly uOut: Float64Array;
  readonly uIn: Float64Array;
  readonly uHourDays: Float64Array;
  readonly uFirst: Float64Array;
  readonly uLast: Float64Array;
  /** Last interaction day (either direction). */
  readonly uILast: Float64Array;
  readonly uNewcomerPartners365: Float64Array;
  /** (out + 0.5) / (out + in + 1), all time. */
  readonly uOutShare: Float64Array;

  // --- channels (windowed arrays: C * 4)
  readonly chUsers: Float64Array;
  readonly chCommits: Float64Array;
  readonly chDays: Float64Array;
  readonly chNewMembers: Float64Array;
  readonly chFirst: Float64Array;
  readonly chLast: Float64Array;

  // --- memberships: by person (mm: columns = channels) and by channel (cm: columns = people)
  readonly mm: Csr;
  readonly mDays: Float64Array;
  readonly mCommits: Float64Array;
  readonly mFirst: Float64Array;
  readonly mLast: Float64Array;
  readonly cm: Csr;
  /** cm entry -> its mm entry (where the counts are). */
  readonly cmEntry: Int32Array;

  // --- interactions, symmetric: both (a, b) and (b, a)
  readonly pp: Csr;
  readonly pCount: Float64Array;
  readonly pFirst: Float64Array;
  readonly pLast: Float64Array;

  // --- channel x channel: co-membership (all time) with its cosine, and same-day co-activity (365)
  readonly co: Csr;
  readonly coCount: Float64Array;
  readonly coSim: Float64Array;
  readonly sd: Csr;
  readonly sdCount: Float64Array;
  /** 1 / sameday365[c, c], 0 when no co-activity. */
  readonly sdInvDiag: Float64Array;

  // --- local hours by person
  readonly hh: Csr;
  readonly hCommits: Float64Array;
  readonly hDays: Float64Array;
  readonly hLast: Float64Array;
  /** Team commits per hour: [w * 24 + h]. */
  readonly teamHour: Float64Array;

  // --- embeddings (zero rows and norm 0 = no vector)
  readonly userVec: Float64Array;
  readonly userNorm: Float64Array;
  readonly chanVec: Float64Array;
  readonly chanNorm: Float64Array;

  // --- populations (features.py "existing", "alive", ...)
  readonly existingChannel: Uint8Array;
  readonly aliveChannel: Uint8Array;
  readonly activeUser365: Uint8Array;
  readonly alivePeople: Uint8Array;
  /** The alive people's indices, ascending: the universe of composer_dm and invite. */
  readonly aliveList: Int32Array;
  readonly existingPeople: Uint8Array;
  readonly invChCommits365: Float64Array;
  /** Adamic-Adar channel weight 1 / ln(1 + members). */
  readonly aaWeight: Float64Array;

  // --- static generator orders: indices with a positive score, best first, ties by index
  readonly channelsByActive90: Int32Array;
  readonly usersByPartners90: Int32Array;
  readonly usersByDays90: Int32Array;

  constructor(s: FeatureSnapshot) {
    this.cut = s.cut;
    this.dims = s.dims;
    const T = s.cut;
    const users = [...s.users].sort((a, b) => a.rank - b.rank);
    const channels = [...s.channels].sort((a, b) => a.rank - b.rank);
    const U = users.length;
    const C = channels.length;
    this.U = U;
    this.C = C;
    this.userIds = users.map((u) => u.id);
    this.channelIds = channels.map((c) => c.id);
    for (const [i, id] of this.userIds.entries()) this.userIndex.set(id, i);
    for (const [i, id] of this.channelIds.entries()) this.channelIndex.set(id, i);
    if (this.userIndex.size !== U || this.channelIndex.size !== C) throw new Error("snapshot has duplicate ids");
    const inWindow = (day: number, w: number) => inWindowOf(day, T, w);

    // people and channels as given
    this.uDays = new Float64Array(U * NW);
    this.uOut = new Float64Array(U * NW);
    this.uIn = new Float64Array(U * NW);
    this.uHourDays = new Float64Array(U * NW);
    this.uFirst = new Float64Array(U).fill(Number.NaN);
    this.uLast = new Float64Array(U).fill(Number.NaN);
    this.userVec = new Float64Array(U * s.dims);
    this.userNorm = new Float64Array(U);
    for (const [i, u] of users.entries()) {
      this.uDays.set(u.activeDays, i * NW);
      this.uOut.set(u.out, i * NW);
      this.uIn.set(u.in, i * NW);
      this.uHourDays.set(u.hourDays, i * NW);
      if (u.first !== null) this.uFirst[i] = u.first;
      if (u.last !== null) this.uLast[i] = u.last;
      if (u.vector) {
        this.userVec.set(u.vector, i * s.dims);
        this.userNorm[i] = norm(u.vector);
      }
    }
    this.chDays = new Float64Array(C * NW);
    this.chFirst = new Float64Array(C).fill(Number.NaN);
    this.chLast = new Float64Array(C).fill(Number.NaN);
    this.chanVec = new Float64Array(C * s.dims);
    this.chanNorm = new Float64Array(C);
    for (const [i, c] of channels.entries()) {
      this.chDays.set(c.activeDays, i * NW);
      if (c.first !== null) this.chFirst[i] = c.first;
      if (c.last !== null) this.chLast[i] = c.last;
      if (c.vector) {
        this.chanVec.set(c.vector, i * s.dims);
        this.chanNorm[i] = norm(c.vector);
      }
    }

    // memberships
    const mem = s.memberships.map((m) => ({ u: this.mustUser(m.user), c: this.mustChannel(m.channel), m }));
    mem.sort((a, b) => a.u - b.u || a.c - b.c);
    const nm = mem.length;
    this.mm = { ptr: new Int32Array(U + 1), col: new Int32Array(nm) };
    this.mDays = new Float64Array(nm * NW);
    this.mCommits = new Float64Array(nm * NW);
    this.mFirst = new Float64Array(nm);
    this.mLast = new Float64Array(nm);
    this.uChannels = new Float64Array(U * NW);
    this.uCommits = new Float64Array(U * NW);
    this.chUsers = new Float64Array(C * NW);
    this.chCommits = new Float64Array(C * NW);
    this.chNewMembers = new Float64Array(C * NW);
    for (const [e, { u, c, m }] of mem.entries()) {
      this.mm.ptr[u + 1] = (this.mm.ptr[u + 1] as number) + 1;
      this.mm.col[e] = c;
      this.mDays.set(m.days, e * NW);
      this.mCommits.set(m.commits, e * NW);
      this.mFirst[e] = m.first;
      this.mLast[e] = m.last;
      for (let w = 0; w < NW; w++) {
        const present = (m.days[w] as number) > 0 ? 1 : 0;
        add(this.uChannels, u * NW + w, present);
        add(this.chUsers, c * NW + w, present);
        add(this.uCommits, u * NW + w, m.commits[w] as number);
        add(this.chCommits, c * NW + w, m.commits[w] as number);
        if (inWindow(m.first, w)) add(this.chNewMembers, c * NW + w, 1);
      }
    }
    prefix(this.mm.ptr);
    const byChannel = transpose(this.mm, C);
    this.cm = byChannel.csr;
    this.cmEntry = byChannel.entry;

    // interactions, both directions
    const pairs = s.pairs.map((p) => ({ a: this.mustUser(p.a), b: this.mustUser(p.b), p }));
    const dir: Array<{ r: number; c: number; i: number }> = [];
    for (const [i, { a, b }] of pairs.entries()) {
      if (a === b) throw new Error(`pair of a person with themselves: ${this.userIds[a]}`);
      dir.push({ r: a, c: b, i }, { r: b, c: a, i });
    }
    dir.sort((x, y) => x.r - y.r || x.c - y.c);
    const np = dir.length;
    this.pp = { ptr: new Int32Array(U + 1), col: new Int32Array(np) };
    this.pCount = new Float64Array(np * NW);
    this.pFirst = new Float64Array(np);
    this.pLast = new Float64Array(np);
    this.uPartners = new Float64Array(U * NW);
    this.uInteractions = new Float64Array(U * NW);
    this.uNewPartners = new Float64Array(U * NW);
    this.uILast = new Float64Array(U).fill(Number.NaN);
    for (const [e, { r, c, i }] of dir.entries()) {
      const p = (pairs[i] as (typeof pairs)[number]).p;
      this.pp.ptr[r + 1] = (this.pp.ptr[r + 1] as number) + 1;
      this.pp.col[e] = c;
      this.pCount.set(p.count, e * NW);
      this.pFirst[e] = p.first;
      this.pLast[e] = p.last;
      for (let w = 0; w < NW; w++) {
        add(this.uPartners, r * NW + w, (p.count[w] as number) > 0 ? 1 : 0);
        add(this.uInteractions, r * NW + w, p.count[w] as number);
        // a new partner: the pair's first interaction (any count) is in the window
        if (inWindow(p.first, w)) add(this.uNewPartners, r * NW + w, 1);
      }
      const last = this.uILast[r] as number;
      if (Number.isNaN(last) || p.last > last) this.uILast[r] = p.last;
    }
    prefix(this.pp.ptr);
    this.uNewcomerPartners365 = new Float64Array(U);
    this.uOutShare = new Float64Array(U);
    for (let v = 0; v < U; v++) {
      const first = this.uFirst[v] as number;
      const newcomer = !Number.isNaN(first) && first >= T - 365;
      if (newcomer) {
        for (let e = this.pp.ptr[v] as number; e < (this.pp.ptr[v + 1] as number); e++) {
          if ((this.pCount[e * NW + W365] as number) > 0) add(this.uNewcomerPartners365, this.pp.col[e] as number, 1);
        }
      }
      const out = this.uOut[v * NW + WALL] as number;
      this.uOutShare[v] = (out + 0.5) / (out + (this.uIn[v * NW + WALL] as number) + 1.0);
    }

    // channel co-membership, all time: B'B, one row at a time (a C-sized
    // accumulator, never C × C), kept as CSR with the cosine next to the count
    const acc = new Int32Array(C);
    const touched: number[] = [];
    const coCol: number[] = [];
    const coCount: number[] = [];
    const coPtr = new Int32Array(C + 1);
    for (let a = 0; a < C; a++) {
      for (let f = this.cm.ptr[a] as number; f < (this.cm.ptr[a + 1] as number); f++) {
        const u = this.cm.col[f] as number;
        for (let e = this.mm.ptr[u] as number; e < (this.mm.ptr[u + 1] as number); e++) {
          const b = this.mm.col[e] as number;
          if (acc[b] === 0) touched.push(b);
          acc[b] = (acc[b] as number) + 1;
        }
      }
      touched.sort((x, y) => x - y);
      for (const b of touched) {
        coCol.push(b);
        coCount.push(acc[b] as number);
        acc[b] = 0;
      }
      touched.length = 0;
      coPtr[a + 1] = coCol.length;
    }
    this.co = { ptr: coPtr, col: Int32Array.from(coCol) };
    this.coCount = Float64Array.from(coCount);
    this.coSim = new Float64Array(coCount.length);
    for (let a = 0; a < C; a++) {
      const ma = this.chUsers[a * NW + WALL] as number;
      for (let e = coPtr[a] as number; e < (coPtr[a + 1] as number); e++) {
        // features.py: comembers / sqrt(outer(members, members)), members = the diagonal
        const mb = this.chUsers[(this.co.col[e] as number) * NW + WALL] as number;
        this.coSim[e] = (this.coCount[e] as number) / Math.sqrt(ma * mb);
      }
    }

    // same-day co-activity (365), symmetric
    const sdEntries: Array<{ r: number; c: number; n: number }> = [];
    this.sdInvDiag = new Float64Array(C);
    for (const x of s.sameDay) {
      const a = this.mustChannel(x.a);
      const b = this.mustChannel(x.b);
      sdEntries.push({ r: a, c: b, n: x.count });
      if (a !== b) sdEntries.push({ r: b, c: a, n: x.count });
      else if (x.count > 0) this.sdInvDiag[a] = 1.0 / Math.max(x.count, 1e-12);
    }
    sdEntries.sort((x, y) => x.r - y.r || x.c - y.c);
    this.sd = { ptr: new Int32Array(C + 1), col: new Int32Array(sdEntries.length) };
    this.sdCount = new Float64Array(sdEntries.length);
    for (const [i, x] of sdEntries.entries()) {
      this.sd.ptr[x.r + 1] = (this.sd.ptr[x.r + 1] as number) + 1;
      this.sd.col[i] = x.c;
      this.sdCount[i] = x.n;
    }
    prefix(this.sd.ptr);

    // local hours
    const hours = s.userHours.map((h) => ({ u: this.mustUser(h.user), h }));
    hours.sort((x, y) => x.u - y.u || x.h.hour - y.h.hour);
    this.hh = { ptr: new Int32Array(U + 1), col: new Int32Array(hours.length) };
    this.hCommits = new Float64Array(hours.length * NW);
    this.hDays = new Float64Array(hours.length * NW);
    this.hLast = new Float64Array(hours.length);
    this.teamHour = new Float64Array(NW * 24);
    for (const [i, { u, h }] of hours.entries()) {
      this.hh.ptr[u + 1] = (this.hh.ptr[u + 1] as number) + 1;
      this.hh.col[i] = h.hour;
      this.hCommits.set(h.commits, i * NW);
      this.hDays.set(h.days, i * NW);
      this.hLast[i] = h.last;
      for (let w = 0; w < NW; w++) add(this.teamHour, w * 24 + h.hour, h.commits[w] as number);
    }
    prefix(this.hh.ptr);

    // populations
    this.existingChannel = new Uint8Array(C);
    this.aliveChannel = new Uint8Array(C);
    this.invChCommits365 = new Float64Array(C);
    this.aaWeight = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      this.existingChannel[c] = (this.chDays[c * NW + WALL] as number) > 0 ? 1 : 0;
      this.aliveChannel[c] = (this.chDays[c * NW + W365] as number) > 0 ? 1 : 0;
      const k = this.chCommits[c * NW + W365] as number;
      this.invChCommits365[c] = k > 0 ? 1.0 / Math.max(k, 1e-12) : 0;
      const members = this.chUsers[c * NW + WALL] as number;
      this.aaWeight[c] = members > 0 ? 1.0 / Math.log1p(Math.max(members, 1)) : 0;
    }
    this.activeUser365 = new Uint8Array(U);
    this.alivePeople = new Uint8Array(U);
    this.existingPeople = new Uint8Array(U);
    for (let u = 0; u < U; u++) {
      const at = (a: Float64Array, w: number) => a[u * NW + w] as number;
      this.activeUser365[u] = at(this.uDays, W365) > 0 ? 1 : 0;
      this.alivePeople[u] = at(this.uDays, W365) > 0 || at(this.uInteractions, W365) > 0 ? 1 : 0;
      this.existingPeople[u] = at(this.uDays, WALL) > 0 || at(this.uInteractions, WALL) > 0 ? 1 : 0;
    }
    this.aliveList = Int32Array.from(Array.from(this.alivePeople.keys()).filter((u) => this.alivePeople[u]));
    this.channelsByActive90 = orderBy(C, (c) => this.chUsers[c * NW + W90] as number);
    this.usersByPartners90 = orderBy(U, (u) => this.uPartners[u * NW + W90] as number);
    this.usersByDays90 = orderBy(U, (u) => this.uDays[u * NW + W90] as number);
  }

  /** Dense index of a person, -1 when the snapshot does not know them. */
  user(id: string): number {
    return this.userIndex.get(id) ?? -1;
  }

  channel(id: string): number {
    return this.channelIndex.get(id) ?? -1;
  }

  private mustUser(id: string): number {
    const i = this.userIndex.get(id);
    if (i === undefined) throw new Error(`snapshot row names unknown person ${id}`);
    return i;
  }

  private mustChannel(id: string): number {
    const i = this.channelIndex.get(id);
    if (i === undefined) throw new Error(`snapshot row names unknown channel ${id}`);
    return i;
  }

  /** The in-memory size of the typed arrays, in bytes (the id maps come on top). */
  bytes(): number {
    let n = 0;
    for (const v of Object.values(this)) {
      if (ArrayBuffer.isView(v)) n += v.byteLength;
      else if (v && typeof v === "object" && "ptr" in v && "col" in v)
        n += (v as Csr).ptr.byteLength + (v as Csr).col.byteLength;
    }
    return n;
  }
}

function add(a: Float64Array, i: number, v: number): void {
  a[i] = (a[i] as number) + v;
}

function prefix(ptr: Int32Array): void {
  for (let i = 1; i < ptr.length; i++) ptr[i] = (ptr[i] as number) + (ptr[i - 1] as number);
}

/** The column-major view of a CSR (rows ascending within each column) and where each entry came from. */
function transpose(m: Csr, cols: number): { csr: Csr; entry: Int32Array } {
  const n = m.col.length;
  const ptr = new Int32Array(cols + 1);
  for (let e = 0; e < n; e++) ptr[(m.col[e] as number) + 1] = (ptr[(m.col[e] as number) + 1] as number) + 1;
  prefix(ptr);
  const fill = ptr.slice(0, cols);
  const col = new Int32Array(n);
  const entry = new Int32Array(n);
  for (let r = 0; r + 1 < m.ptr.length; r++) {
    for (let e = m.ptr[r] as number; e < (m.ptr[r + 1] as number); e++) {
      const c = m.col[e] as number;
      const at = fill[c] as number;
      col[at] = r;
      entry[at] = e;
      fill[c] = at + 1;
    }
  }
  return { csr: { ptr, col }, entry };
}

function norm(v: readonly number[]): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

/** Indices with score > 0, best first, ties by the smaller index. */
function orderBy(n: number, score: (i: number) => number): Int32Array {
  const idx: number[] = [];
  for (let i = 0; i < n; i++) if (score(i) > 0) idx.push(i);
  idx.sort((a, b) => score(b) - score(a) || a - b);
  return Int32Array.from(idx);
}
