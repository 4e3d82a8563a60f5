// Parsing and validation of invitee email addresses. Deliberately stricter than
// RFC 5322: we accept the dot-atom addresses real people have and reject the
// exotic forms (quoted locals, IP literals, comments) that only ever show up
// in typos and abuse. Reasons are returned to API clients, so keep them short.

export type EmailParseResult =
  | { ok: true; email: string; local: string; domain: string }
  | { ok: false; reason: string };

// RFC 5321 path limit minus the angle brackets; also bounds all later work.
// It implies the 253-character domain limit, since the local part is non-empty.
const MAX_EMAIL_LENGTH = 254;
const MAX_LOCAL_LENGTH = 64;
const MAX_LABEL_LENGTH = 63;

const CONTROL_CHARS = /\p{Cc}/u;
const WHITESPACE = /\s/;
// Checked before lower-casing: toLowerCase maps some non-ASCII code points to
// ASCII (KELVIN SIGN U+212A becomes "k"), which would let look-alike
// addresses normalize into a real colleague's address. Control characters are
// already gone by then, so "printable ASCII" is the whole allowed range.
const NON_ASCII = /[^ -~]/;
const LOCAL_CHARS = /^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+$/;
const LABEL_CHARS = /^[a-z0-9-]+$/;
const ALPHA_TLD = /^[a-z]{2,}$/;
const PUNYCODE_TLD = /^xn--[a-z0-9-]+$/;
const DOTTED_NUMBERS = /^[0-9.]+$/;

function fail(reason: string): EmailParseResult {
  return { ok: false, reason };
}

function localProblem(local: string): string | null {
  if (local.length === 0) return "missing local part";
  if (local.length > MAX_LOCAL_LENGTH) return "local part too long";
  if (!LOCAL_CHARS.test(local)) return "local part has invalid characters";
  if (local.startsWith(".") || local.endsWith(".") || local.includes("..")) {
    return "local part has a misplaced dot";
  }
  return null;
}

function labelProblem(label: string): string | null {
  if (label.length === 0) return "domain has an empty label";
  if (label.length > MAX_LABEL_LENGTH) return "domain label too long";
  if (!LABEL_CHARS.test(label)) return "domain has invalid characters";
  if (label.startsWith("-") || label.endsWith("-")) {
    return "domain label starts or ends with a hyphen";
  }
  return null;
}

function domainProblem(domain: string): string | null {
  if (domain.length === 0) return "missing domain";
  if (domain.startsWith("[")) return "IP address domains are not supported";
  if (!domain.includes(".")) return "domain has no dot";
  // A numeric TLD would be rejected anyway; this just gives a clearer reason.
  if (DOTTED_NUMBERS.test(domain)) return "IP address domains are not supported";
  const labels = domain.split(".");
  for (const label of labels) {
    const problem = labelProblem(label);
    if (problem !== null) return problem;
  }
  const tld = labels[labels.length - 1] ?? "";
  if (!ALPHA_TLD.test(tld) && !PUNYCODE_TLD.test(tld)) {
    return "top-level domain is invalid";
  }
  return null;
}

/** Normalizes (trim, lower-case) and validates an address from untrusted input. */
export function parseEmail(raw: unknown): EmailParseResult {
  if (typeof raw !== "string") return fail("not a string");
  const trimmed = raw.trim();
  if (trimmed.length === 0) return fail("empty");
  if (trimmed.length > MAX_EMAIL_LENGTH) return fail("too long");
  if (CONTROL_CHARS.test(trimmed)) return fail("contains control characters");
  if (WHITESPACE.test(trimmed)) return fail("contains whitespace");
  if (NON_ASCII.test(trimmed)) return fail("contains non-ASCII characters");

  const email = trimmed.toLowerCase();
  // Quoted locals may legally contain "@", so name them before counting.
  if (email.startsWith('"')) return fail("quoted local parts are not supported");

  const at = email.indexOf("@");
  if (at === -1) return fail("missing @");
  if (email.indexOf("@", at + 1) !== -1) return fail("more than one @");

  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  const problem = localProblem(local) ?? domainProblem(domain);
  if (problem !== null) return fail(problem);
  return { ok: true, email, local, domain };
}
