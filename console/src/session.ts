// Signing in. The console holds one access token, in sessionStorage (gone
// when the tab closes; never in a cookie, so no request carries it unasked).
// It comes from a paste, or from a link whose fragment carries it
// (`/#token=…`, printed by `npm start`): a fragment is never sent to a
// server, so the token is in no request line and no log; it is taken out of
// the address bar at once.

const KEY = "edge-console-token";

export interface TokenClaims {
  team: string;
  user: string;
  exp: number;
}

/** The token a `#token=` fragment carries (removed from the address bar), or the stored one. */
export function initialToken(): string | null {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromLink = fragment.get("token");
  if (fromLink) {
    history.replaceState(null, "", location.pathname + location.search);
    return fromLink.trim();
  }
  return sessionStorage.getItem(KEY);
}

export function remember(token: string): void {
  sessionStorage.setItem(KEY, token);
}

export function forget(): void {
  sessionStorage.removeItem(KEY);
}

/**
 * What a token says about itself, for display only: the signature is the
 * server's to check (the first API call does), and the rights come from the
 * user's live role, not from the token.
 */
export function claimsOf(token: string): TokenClaims | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const raw = JSON.parse(json) as { team?: unknown; sub?: unknown; exp?: unknown };
    if (typeof raw.team !== "string" || typeof raw.sub !== "string") return null;
    return { team: raw.team, user: raw.sub, exp: typeof raw.exp === "number" ? raw.exp : 0 };
  } catch {
    return null;
  }
}
