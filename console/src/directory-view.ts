import { type Api, type ChannelCard, personName, type SwitcherItem, type UserCard } from "./api";
import { byId, debounce, fill, h } from "./dom";

// The quick switcher (GET /v1/directory/switcher) and the people directory
// (GET /v1/directory/people, paged by cursor), answered by the team's edge
// cache with the viewer's visibility applied.

export function mountDirectory(api: Api, onWatch: (channel: ChannelCard) => void): void {
  const switcher = byId<HTMLInputElement>("switcher");
  const results = byId<HTMLUListElement>("switcher-results");
  const card = byId<HTMLDivElement>("channel-card");

  const search = debounce(async (q: string) => {
    if (!q.trim()) return fill(results);
    try {
      const { items } = await api.get<{ items: SwitcherItem[] }>(
        `/v1/directory/switcher?q=${encodeURIComponent(q)}&limit=10`,
      );
      if (switcher.value !== q) return; // a newer query is on its way
      fill(
        results,
        ...(items.length ? items.map((item) => switcherRow(item)) : [h("li", { class: "muted" }, "No match")]),
      );
    } catch (error) {
      fill(results, h("li", { class: "error" }, String(error)));
    }
  }, 150);
  switcher.addEventListener("input", () => search(switcher.value));

  const switcherRow = (item: SwitcherItem) =>
    item.type === "channel"
      ? h(
          "li",
          { "data-kind": "channel" },
          h("button", { type: "button", class: "link", onclick: () => void showChannel(item.id) }, `#${item.name}`),
          h("span", { class: "tag" }, item.is_member ? "member" : item.reason),
          item.is_private && h("span", { class: "tag" }, "private"),
          h("span", { class: "muted" }, `${item.member_count ?? "?"} members · ${item.topic}`),
        )
      : h(
          "li",
          { "data-kind": "user" },
          h("strong", {}, personName(item)),
          h("span", { class: "muted" }, `@${item.name}`),
          h("span", { class: "tag" }, item.reason),
          h("span", { class: "muted" }, item.title),
        );

  const showChannel = async (id: string) => {
    try {
      const { channel } = await api.get<{ channel: ChannelCard }>(`/v1/directory/channels/${encodeURIComponent(id)}`);
      fill(
        card,
        h(
          "div",
          { class: "card" },
          h("strong", {}, `#${channel.name}`),
          " ",
          h("span", { class: "muted" }, `${channel.member_count ?? "?"} members`),
          h("div", {}, channel.topic || channel.purpose || h("span", { class: "muted" }, "no topic")),
          h("button", { type: "button", onclick: () => onWatch(channel) }, "Watch live"),
        ),
      );
    } catch (error) {
      fill(card, h("p", { class: "error" }, String(error)));
    }
  };

  const people = byId<HTMLTableSectionElement>("people");
  const more = byId<HTMLButtonElement>("people-more");
  const peopleQ = byId<HTMLInputElement>("people-q");
  let cursor: string | null = null;
  const loadPeople = async (reset: boolean) => {
    const q = peopleQ.value.trim();
    const params = new URLSearchParams({ limit: "15" });
    if (q) params.set("q", q);
    if (!reset && cursor) params.set("cursor", cursor);
    try {
      const page = await api.get<{ items: UserCard[]; next_cursor: string | null }>(`/v1/directory/people?${params}`);
      if (reset) fill(people);
      for (const u of page.items) {
        people.append(
          h("tr", {}, h("td", {}, personName(u)), h("td", {}, `@${u.name}`), h("td", {}, u.title), h("td", {}, u.role)),
        );
      }
      cursor = page.next_cursor;
      more.hidden = cursor === null;
    } catch (error) {
      fill(people, h("tr", {}, h("td", { colspan: 4, class: "error" }, String(error))));
    }
  };
  peopleQ.addEventListener(
    "input",
    debounce(() => void loadPeople(true), 150),
  );
  more.addEventListener("click", () => void loadPeople(false));
  void loadPeople(true);
}
