// Bot tokens at rest: AES-256-GCM under a key derived (SHA-256) from the
// SLACK_TOKEN_KEY secret when one is set; plain otherwise. A sealed value is
// `sealed:v1:<iv>:<ciphertext>` (base64url); anything else is read as plain,
// so setting the key later keeps older rows readable (reinstalls seal them).

const PREFIX = "sealed:v1:";
const encoder = new TextEncoder();

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
const unb64url = (text: string) =>
  Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

async function aesKey(secret: string): Promise<CryptoKey> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(secret));
  return crypto.subtle.importKey("raw", digest, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
}

export async function sealToken(secret: string | undefined, token: string): Promise<string> {
  if (!secret) return token;
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await aesKey(secret), encoder.encode(token)),
  );
  return `${PREFIX}${b64url(iv)}:${b64url(sealed)}`;
}

export async function openToken(secret: string | undefined, stored: string): Promise<string> {
  if (!stored.startsWith(PREFIX)) return stored;
  if (!secret) throw new Error("a sealed bot token and no SLACK_TOKEN_KEY to open it");
  const [iv, data] = stored.slice(PREFIX.length).split(":");
  if (!iv || !data) throw new Error("a sealed bot token in an unknown form");
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: unb64url(iv) },
    await aesKey(secret),
    unb64url(data),
  );
  return new TextDecoder().decode(plain);
}
