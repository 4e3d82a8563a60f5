import type { ClientTopic, EventFrame } from "../../client/realtime";
import { RealtimeClient } from "../../client/realtime";
import { type Api, type Boot, personName } from "./api";
import { byId, fill, h } from "./dom";

// The live pane: the real-time client (client/realtime/) subscribed to the
// team topic and the user's channels, each event shown as it arrives, names
// from the just-in-time `user` frames and the boot's channel list. A composer
// posts through the API (POST /v1/channels/:id/messages), so a newcomer sees
// the whole loop: HTTP publish → topic → gateway → this socket.

const MAX_SHOWN = 200;

export interface LiveView {
  watch(channel: { id: string; name: string }): void;
  close(): void;
}

export function mountLive(api: Api, boot: Boot): LiveView {
  const status = byId<HTMLSpanElement>("rt-status");
  const list = byId<HTMLOListElement>("live-events");
  const topicsLine = byId<HTMLParagraphElement>("live-topics");
  const channelNames = new Map(boot.channels.map((c) => [c.id, c.name]));
  const people = new Map<string, string>([[boot.self.id, personName(boot.self)]]);
  const topics: ClientTopic[] = ["team", ...boot.channels.map((c) => `channel:${c.id}` as const)];

  const client = new RealtimeClient({ baseUrl: location.origin, token: api.token, topics });
  const showTopics = () => {
    const names = Object.keys(client.positions()).map((t) =>
      t === "team" ? "team" : `#${channelNames.get(t.slice(8)) ?? t.slice(8)}`,
    );
    // A busy user follows hundreds of channels: name a few, count the rest.
    const shown = names.slice(0, 6).join(", ");
    const rest = names.length > 6 ? ` and ${names.length - 6} more` : "";
    topicsLine.textContent = names.length ? `Following ${shown}${rest}` : "";
  };

  client.on("status", (s) => {
    status.dataset.state = s.state;
    status.textContent = s.state === "open" ? "live" : s.state === "connecting" ? `reconnecting…` : "offline";
    status.title = s.lastError ?? "";
  });
  client.on("user", ({ user }) => {
    const id = typeof user.id === "string" ? user.id : "";
    if (id)
      people.set(
        id,
        personName({ id, name: str(user.name), real_name: str(user.real_name), display_name: str(user.display_name) }),
      );
  });
  client.on("subscribed", showTopics);
  client.on("unsubscribed", showTopics);
  client.on("event", (frame) => add(render(frame)));
  client.on("reload", (frame) =>
    add(
      h(
        "li",
        { class: "muted" },
        `${frame.topic}: older events are gone (${frame.reason}); refetch and continue after ${frame.seq}`,
      ),
    ),
  );
  client.on("error", (e) => add(h("li", { class: "error" }, `${e.topic ?? ""} ${e.code}: ${e.message}`)));

  function add(item: HTMLLIElement) {
    list.prepend(item);
    while (list.children.length > MAX_SHOWN) list.lastElementChild?.remove();
  }

  function render(frame: EventFrame): HTMLLIElement {
    const e = frame.event;
    const where =
      frame.topic === "team" ? "team" : `#${channelNames.get(frame.topic.slice(8)) ?? frame.topic.slice(8)}`;
    const meta = h("div", { class: "meta" }, `${where} · seq ${frame.seq} · ${str(e.type)}`);
    if (e.type === "message") {
      const author = people.get(str(e.user)) ?? str(e.user);
      return h("li", { "data-type": "message" }, meta, h("strong", {}, author), " ", str(e.text));
    }
    return h("li", { "data-type": str(e.type) }, meta, h("code", {}, JSON.stringify(e).slice(0, 240)));
  }

  // The composer: the user's channels.
  const select = byId<HTMLSelectElement>("compose-channel");
  const fillChannels = () =>
    fill(select, ...[...channelNames].map(([id, name]) => h("option", { value: id }, `#${name}`)));
  fillChannels();
  const input = byId<HTMLInputElement>("compose-text");
  byId<HTMLFormElement>("compose").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text || !select.value) return;
    try {
      await api.post(`/v1/channels/${encodeURIComponent(select.value)}/messages`, { text });
      input.value = "";
    } catch (error) {
      add(h("li", { class: "error" }, `post failed: ${String(error)}`));
    }
  });

  return {
    watch(channel) {
      channelNames.set(channel.id, channel.name);
      fillChannels();
      client.subscribe(`channel:${channel.id}`);
    },
    close() {
      client.close();
    },
  };
}

function str(value: unknown): string {
  return typeof value === "string" ? value : value === undefined || value === null ? "" : String(value);
}
