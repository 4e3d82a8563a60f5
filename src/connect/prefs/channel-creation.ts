import { create } from "@bufbuild/protobuf";
import { ChannelCreation_Who, ChannelCreationSchema } from "../gen/connect/v1/prefs_pb";
import { nameOf, objectWith, type PrefClass, PrefInputError } from "./pref";

// Who of this team may create shared channels with the partner: a
// connection-aware permission, checked beside the team's own roles.

export type ChannelCreators = "admins" | "members" | "nobody";
export interface ChannelCreationValue {
  who: ChannelCreators;
}

const WHO: Record<ChannelCreators, ChannelCreation_Who> = {
  admins: ChannelCreation_Who.ADMINS,
  members: ChannelCreation_Who.MEMBERS,
  nobody: ChannelCreation_Who.NOBODY,
};

export const channelCreation: PrefClass<ChannelCreationValue> = {
  key: "channel_creation",
  description: "who may create shared channels with the partner",
  defaultValue: { who: "admins" },

  read(prefs) {
    const m = prefs.channelCreation;
    if (!m) return undefined;
    const who = nameOf(WHO, m.who);
    return who ? { who } : undefined;
  },

  write(prefs, value) {
    prefs.channelCreation = value === undefined ? undefined : create(ChannelCreationSchema, { who: WHO[value.who] });
  },

  transform(input) {
    const o = objectWith(input, "channel_creation", ["who"]);
    if (o.who !== "admins" && o.who !== "members" && o.who !== "nobody") {
      throw new PrefInputError('channel_creation.who must be "admins", "members" or "nobody"');
    }
    return { who: o.who };
  },

  isValid() {
    return [];
  },

  migrate() {
    // New in version 2: nothing older to move.
  },

  index(value) {
    return { channel_creation: value.who };
  },

  effects({ key, level }) {
    return [{ kind: "event", type: "connect_pref_changed", data: { key, level } }];
  },
};

/** Whether a user of this role may create a shared channel with the partner under these prefs. */
export function mayCreateShared(prefs: ChannelCreationValue, role: "owner" | "admin" | "member" | "guest"): boolean {
  if (prefs.who === "nobody" || role === "guest") return false;
  return prefs.who === "members" || role === "owner" || role === "admin";
}
