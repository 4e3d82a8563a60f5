import { type Identity, MAX_TOKEN_TTL_SECONDS, signToken } from "../auth/tokens";

// Socket tickets, the way Slack's rtm.connect works: a browser cannot set
// headers on a WebSocket, and an access token in a URL ends up in proxy and
// server logs, alive for an hour. So the client trades its access token
// (over HTTP, in the Authorization header) for a ticket: a `use: "rtm"`
// token that lives TICKET_TTL_SECONDS and opens one socket. It carries
//
// - `jti`, a random nonce: the user's gateway records it when a socket is
//   accepted with it and refuses it ever after (single use; the record is
//   pruned once the ticket has expired, when it could not be used anyway);
// - `token_exp`, the access token's `exp`: the socket closes then
//   (close code token_expired), so trading a token for a ticket never
//   extends its life.
//
// A ticket is not an access token and an access token is not a ticket (the
// `use` claim, checked by verifyToken), so neither can stand in for the other.

/** How long a ticket may wait to be used: enough for a slow handshake, too short to be worth stealing. */
export const TICKET_TTL_SECONDS = 30;

const NONCE = /^[A-Za-z0-9_-]{16,64}$/;

/** The claims a ticket adds to identity, and how long it lives (never past the access token). */
export function ticketGrant(
  identity: Identity,
  nowSeconds: number,
  nonce: string,
): { ttlSeconds: number; extra: { jti: string; token_exp: number } } {
  const ttlSeconds = Math.max(1, Math.min(TICKET_TTL_SECONDS, identity.exp - nowSeconds));
  return { ttlSeconds, extra: { jti: nonce, token_exp: identity.exp } };
}

/** A signed ticket for the identity's next socket, and how long it lives. */
export async function issueTicket(
  identity: Identity,
  secret: string,
  nowSeconds: number,
): Promise<{ ticket: string; ttlSeconds: number }> {
  const { ttlSeconds, extra } = ticketGrant(identity, nowSeconds, newNonce());
  const ticket = await signToken(
    { team: identity.team, user: identity.user, use: "rtm", ttlSeconds, extra },
    secret,
    nowSeconds,
  );
  return { ticket, ttlSeconds };
}

/** A fresh nonce: 128 random bits, URL-safe. */
export function newNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export interface Ticket {
  nonce: string;
  /** When the access token behind it expires (seconds): the socket's end. */
  tokenExp: number;
  /** When the ticket itself expires (seconds): its nonce record may go then. */
  exp: number;
}

/**
 * The ticket part of a verified `rtm` token's claims, or null when it lacks
 * one (a token minted some other way): a nonce, and a `token_exp` in the
 * future and within the longest an access token may live.
 */
export function ticketOf(claims: Record<string, unknown>, nowSeconds: number): Ticket | null {
  const { jti, token_exp: tokenExp, exp } = claims;
  if (typeof jti !== "string" || !NONCE.test(jti)) return null;
  if (typeof tokenExp !== "number" || !Number.isSafeInteger(tokenExp)) return null;
  if (tokenExp <= nowSeconds || tokenExp > nowSeconds + MAX_TOKEN_TTL_SECONDS) return null;
  if (typeof exp !== "number" || !Number.isSafeInteger(exp)) return null;
  return { nonce: jti, tokenExp, exp };
}
