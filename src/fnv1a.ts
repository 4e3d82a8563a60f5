/** 32-bit FNV-1a over UTF-16 code units: stable, fast, well spread for short ids (shard and bucket picks). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
