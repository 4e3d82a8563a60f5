import { type Api, type ChannelCard, personName, type Recommendations, type UserCard } from "./api";
import { byId, fill, h } from "./dom";

// Recommendations for the signed-in user (POST /v1/recommend). Items carry
// ids, scores and ranks; names come from the directory's batch lookup
// (POST /v1/directory/lookup). "Why" is told from what the answer says: the
// item's own `reason` when the server gives one (the feature that lifted it
// above the other candidates), then what is true of every item: which
// candidates the pipeline proposed, which filters it passed (the source's
// rules), which model ranked it and at what score, and the item's own facts
// from the directory (members, topic, title).

/** What each source's items are, and the rule every one of them passed (docs/recommendations.md). */
const SOURCES: Record<string, { kind: "channel" | "user"; rule: string }> = {
  channel_browser: { kind: "channel", rule: "a channel you can see, not archived, that you have not joined" },
  composer_dm: { kind: "user", rule: "an active person you can see, not you, not already in the conversation" },
  invite: { kind: "user", rule: "an active person you can see whom a new member would work with" },
  leave: { kind: "channel", rule: "a channel you are a member of and have gone quiet in" },
  archive: { kind: "channel", rule: "a channel you can see that has gone quiet for everyone" },
};

export function mountRecommendations(api: Api): { load(): Promise<void> } {
  const source = byId<HTMLSelectElement>("rec-source");
  const meta = byId<HTMLDivElement>("rec-meta");
  const list = byId<HTMLOListElement>("rec-items");

  const load = async () => {
    const chosen = source.value;
    const spec = SOURCES[chosen] ?? { kind: "channel", rule: "" };
    fill(meta, h("p", { class: "muted" }, "Loading…"));
    fill(list);
    let rec: Recommendations;
    try {
      rec = await api.post<Recommendations>("/v1/recommend", { source: chosen, limit: 10 });
    } catch (error) {
      fill(meta, h("p", { class: "error" }, String(error)));
      return;
    }
    const ids = rec.items.map((i) => i.id);
    const names = new Map<string, { label: string; facts: string }>();
    if (ids.length > 0) {
      const looked = await api.post<{ users: UserCard[]; channels: ChannelCard[] }>(
        "/v1/directory/lookup",
        spec.kind === "user" ? { users: ids } : { channels: ids },
      );
      for (const u of looked.users ?? [])
        names.set(u.id, { label: personName(u), facts: [u.title, `@${u.name}`].filter(Boolean).join(" · ") });
      for (const c of looked.channels ?? []) {
        const facts = [`${c.member_count ?? "?"} members`, c.topic || c.purpose].filter(Boolean).join(" · ");
        names.set(c.id, { label: `#${c.name}`, facts });
      }
    }
    const fetched = rec.steps.filter((s) => s.kind === "fetch");
    const filters = rec.steps.filter((s) => s.kind === "filter");
    const scored = rec.steps.find((s) => s.kind === "score");
    const reranks = rec.steps.filter((s) => s.kind === "rerank");
    const candidates = fetched.reduce((n, s) => Math.max(n, s.out), 0);
    fill(
      meta,
      h(
        "p",
        {},
        `Model ${rec.model.name} (${rec.model.kind}, ${rec.model.version}, engine ${rec.model.engine}); experiment ${rec.experiment.name}, arm ${rec.experiment.arm}. `,
        h("span", { class: "muted" }, rec.steps.map((s) => `${s.step} ${s.out >= 0 ? `→ ${s.out}` : "✗"}`).join(" · ")),
      ),
      rec.model.fallback && h("p", { class: "degraded" }, `Model fallback: ${rec.model.fallback.message}`),
      ...rec.degraded.map((d) => h("p", { class: "degraded" }, `${d.step}: ${d.error}`)),
      rec.items.length === 0 &&
        h(
          "p",
          { class: "muted" },
          "Nothing to recommend. Teams need a feature snapshot: sign in with the TRAILS token npm start prints.",
        ),
    );
    fill(
      list,
      ...rec.items.map((item) => {
        const known = names.get(item.id);
        const top = item.reason
          ? `top reason: ${item.reason.direction} ${item.reason.feature} (${round(item.reason.value)}) among the candidates`
          : null;
        const why = [
          `Why: ${spec.rule}`,
          top,
          `proposed by ${fetched.map((s) => s.step).join(" + ") || "candidate generation"} (${candidates} candidates)`,
          filters.length > 0 && `kept by ${filters.map((s) => s.step).join(", ")}`,
          scored && `ranked #${item.rank} of ${scored.out} by ${scored.step} at score ${item.score.toFixed(3)}`,
          reranks.length > 0 && `after ${reranks.map((s) => s.step).join(", ")}`,
        ]
          .filter(Boolean)
          .join("; ");
        return h(
          "li",
          { "data-id": item.id },
          h("strong", {}, known?.label ?? item.id),
          " ",
          h("span", { class: "score" }, `score ${item.score.toFixed(3)}`),
          known?.facts && h("div", {}, known.facts),
          h("div", { class: "why" }, `${why}.`),
        );
      }),
    );
  };

  byId<HTMLFormElement>("rec-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    void load();
  });
  return { load };
}

function round(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(3);
}
