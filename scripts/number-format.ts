/** Three significant digits, thousands separated; small numbers keep their digits. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 1000) return Math.round(n).toLocaleString("en-US");
  if (abs === 0) return "0";
  const digits = Math.max(0, 2 - Math.floor(Math.log10(abs)));
  return n.toFixed(Math.min(digits, 6));
}
