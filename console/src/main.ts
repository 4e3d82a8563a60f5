import { mountAdmin } from "./admin-view";
import { Api, ApiError, type Boot, personName } from "./api";
import { mountDirectory } from "./directory-view";
import { byId, fill } from "./dom";
import { type LiveView, mountLive } from "./live-view";
import { mountRecommendations } from "./recommendations-view";
import { claimsOf, forget, initialToken, remember } from "./session";

// The console's entry: sign in with a token (pasted, or from a `#token=`
// link), check it with GET /v1/directory/boot (which also says who the user
// is, their role and channels), then mount the views.

const signedOut = byId<HTMLElement>("signed-out");
const signedIn = byId<HTMLElement>("signed-in");
const whoami = byId<HTMLSpanElement>("whoami");
const signOut = byId<HTMLButtonElement>("sign-out");
const signInError = byId<HTMLParagraphElement>("sign-in-error");
let live: LiveView | null = null;

async function signIn(token: string): Promise<void> {
  signInError.textContent = "";
  const claims = claimsOf(token);
  if (!claims) {
    signInError.textContent = "That is not an access token (expected a JWT: three dot-separated parts).";
    return;
  }
  const api = new Api(token);
  let boot: Boot;
  try {
    boot = await api.get<Boot>("/v1/directory/boot");
  } catch (error) {
    forget();
    signInError.textContent =
      error instanceof ApiError && error.status === 401
        ? `Token refused (${error.message}). npm start prints fresh ones; they last 24 h.`
        : `Sign-in failed: ${String(error)}`;
    return;
  }
  remember(token);
  fill(whoami, `${personName(boot.self)} (${boot.self.role}) · team ${boot.team.id} · ${boot.team.users} people`);
  signedOut.hidden = true;
  signedIn.hidden = false;
  signOut.hidden = false;
  const isAdmin = boot.self.role === "owner" || boot.self.role === "admin";
  byId<HTMLButtonElement>("admin-tab").hidden = !isAdmin;

  live = mountLive(api, boot);
  mountDirectory(api, (channel) => live?.watch(channel));
  const recs = mountRecommendations(api);
  const admin = isAdmin ? mountAdmin(api) : null;
  const loaded = new Set<string>();
  for (const tab of document.querySelectorAll<HTMLButtonElement>("[data-tab]")) {
    tab.addEventListener("click", () => {
      const name = tab.dataset.tab ?? "directory";
      for (const other of document.querySelectorAll<HTMLButtonElement>("[data-tab]")) {
        other.setAttribute("aria-selected", String(other === tab));
        byId(`tab-${other.dataset.tab}`).hidden = other !== tab;
      }
      if (loaded.has(name)) return;
      loaded.add(name);
      if (name === "recommendations") void recs.load();
      if (name === "admin") void admin?.load();
    });
  }
}

byId<HTMLFormElement>("sign-in").addEventListener("submit", (ev) => {
  ev.preventDefault();
  void signIn(byId<HTMLTextAreaElement>("token").value.trim());
});
signOut.addEventListener("click", () => {
  forget();
  live?.close();
  // A fresh page: no view keeps the old user's data or socket.
  location.replace(location.pathname);
});

// A sign-in link opened in a tab already showing the console changes only the
// fragment (no page load): load the page again so it signs in with it.
window.addEventListener("hashchange", () => {
  if (new URLSearchParams(location.hash.slice(1)).has("token")) location.reload();
});

const token = initialToken();
if (token) void signIn(token);
