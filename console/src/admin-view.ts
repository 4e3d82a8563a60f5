import { type AdminConnection, type Api, ApiError, type Pref, when } from "./api";
import { byId, debounce, fill, h } from "./dom";

// Slack Connect for owners and admins: the admin search over the team's
// connections (GET /v1/admin/connections), the org-level prefs with where
// each value comes from (GET /v1/connect/prefs/org), one partner's resolved
// prefs (GET /v1/connect/prefs/partners/:partner) and the prefs audit.
// The server decides who may see them (a member gets 403); the tab is only
// shown to the roles that will not.

export function mountAdmin(api: Api): { load(): Promise<void> } {
  const connections = byId<HTMLTableSectionElement>("connections");
  const partnerPrefs = byId<HTMLDivElement>("partner-prefs");
  const orgPrefs = byId<HTMLTableSectionElement>("org-prefs");
  const audit = byId<HTMLUListElement>("audit");
  const q = byId<HTMLInputElement>("conn-q");

  const prefRows = (prefs: Record<string, Pref>) =>
    Object.entries(prefs).map(([name, p]) =>
      h("tr", {}, h("td", {}, name), h("td", {}, h("pre", {}, JSON.stringify(p.value))), h("td", {}, p.source)),
    );

  const showPartner = async (partner: string) => {
    try {
      const res = await api.get<{ partner: string; prefs: Record<string, Pref> }>(
        `/v1/connect/prefs/partners/${encodeURIComponent(partner)}`,
      );
      fill(
        partnerPrefs,
        h("h2", {}, `Prefs with ${res.partner}`),
        h(
          "table",
          { class: "grid" },
          h("thead", {}, h("tr", {}, h("th", {}, "Pref"), h("th", {}, "Value"), h("th", {}, "Set at"))),
          h("tbody", {}, ...prefRows(res.prefs)),
        ),
      );
    } catch (error) {
      fill(partnerPrefs, h("p", { class: "error" }, String(error)));
    }
  };

  const search = async () => {
    const params = new URLSearchParams({ limit: "25" });
    if (q.value.trim()) params.set("q", q.value.trim());
    try {
      const res = await api.get<{ connections: AdminConnection[] }>(`/v1/admin/connections?${params}`);
      fill(
        connections,
        ...(res.connections.length
          ? res.connections.map((c) =>
              h(
                "tr",
                { "data-connection": c.connection },
                h(
                  "td",
                  {},
                  h("strong", {}, c.partner.name),
                  " ",
                  h("span", { class: "muted" }, c.partner.domains.join(", ")),
                ),
                h("td", {}, c.status),
                h("td", {}, c.channels),
                h("td", {}, c.pending_invitations),
                h("td", {}, when(c.connected_at)),
                h("td", {}, h("button", { type: "button", onclick: () => void showPartner(c.partner.id) }, "Prefs")),
              ),
            )
          : [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No connections yet."))]),
      );
    } catch (error) {
      fill(connections, h("tr", {}, h("td", { colspan: 6, class: "error" }, String(error))));
    }
  };
  q.addEventListener(
    "input",
    debounce(() => void search(), 200),
  );

  const load = async () => {
    await search();
    try {
      const org = await api.get<{ prefs: Record<string, Pref> }>("/v1/connect/prefs/org");
      fill(orgPrefs, ...prefRows(org.prefs));
      const log = await api.get<{
        audit: Array<{
          level: string;
          partner: string | null;
          pref: string;
          actor: string;
          at: number;
          after: unknown;
        }>;
      }>("/v1/connect/prefs/audit?limit=10");
      fill(
        audit,
        ...(log.audit.length
          ? log.audit.map((a) =>
              h(
                "li",
                {},
                h("span", { class: "muted" }, when(a.at)),
                `${a.actor} set ${a.pref}`,
                a.partner ? ` for ${a.partner}` : " (org)",
                h("code", {}, JSON.stringify(a.after)),
              ),
            )
          : [h("li", { class: "muted" }, "No changes yet.")]),
      );
    } catch (error) {
      const text = error instanceof ApiError && error.status === 403 ? "Owners and admins only." : String(error);
      fill(orgPrefs, h("tr", {}, h("td", { colspan: 3, class: "error" }, text)));
    }
  };
  return { load };
}
