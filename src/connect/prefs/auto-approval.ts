import { create } from "@bufbuild/protobuf";
import { AutoApproval_Mode, AutoApprovalSchema, type ConnectPrefs } from "../gen/connect/v1/prefs_pb";
import { nameOf, objectWith, type PrefClass, PrefInputError, shown, stringList } from "./pref";

// Shared-channel invitations from the partner approved without an admin of
// this team: never (the default), always, or only when sent by listed users
// of the partner.

export type AutoApprovalMode = "off" | "all" | "listed";
export interface AutoApprovalValue {
  mode: AutoApprovalMode;
  /** With mode "listed": the partner's users whose invitations are approved. */
  users: string[];
}

const MAX_USERS = 1_000;
/** A user id as the platform takes one anywhere (1-40 of A-Z a-z 0-9 _ -): no unbounded strings in a payload. */
const USER_ID = /^[A-Za-z0-9_-]{1,40}$/;
const MODES: Record<AutoApprovalMode, AutoApproval_Mode> = {
  off: AutoApproval_Mode.OFF,
  all: AutoApproval_Mode.ALL,
  listed: AutoApproval_Mode.LISTED,
};

export const autoApproval: PrefClass<AutoApprovalValue> = {
  key: "auto_approval",
  description: "shared-channel invitations from the partner approved without an admin",
  defaultValue: { mode: "off", users: [] },

  read(prefs) {
    const m = prefs.autoApproval;
    if (!m) return undefined;
    const mode = nameOf(MODES, m.mode);
    // An unknown mode (a newer writer's) reads as not set: the level below decides.
    return mode ? { mode, users: [...m.users] } : undefined;
  },

  write(prefs, value) {
    prefs.autoApproval =
      value === undefined ? undefined : create(AutoApprovalSchema, { mode: MODES[value.mode], users: value.users });
  },

  transform(input) {
    const o = objectWith(input, "auto_approval", ["mode", "users"]);
    if (o.mode !== "off" && o.mode !== "all" && o.mode !== "listed") {
      throw new PrefInputError('auto_approval.mode must be "off", "all" or "listed"');
    }
    const users = o.users === undefined ? [] : stringList(o.users, "auto_approval.users", MAX_USERS);
    return { mode: o.mode, users };
  },

  isValid(value) {
    if (value.mode === "listed" && value.users.length === 0) return ['mode "listed" needs at least one user'];
    if (value.mode !== "listed" && value.users.length > 0) return ['users are only taken with mode "listed"'];
    const bad = value.users.filter((u) => !USER_ID.test(u));
    if (bad.length > 0) return [`not user ids: ${shown(bad)}`];
    return [];
  },

  migrate(prefs: ConnectPrefs, fromVersion) {
    // Version 1 had one flag: approve everything from the partner.
    if (fromVersion < 2 && prefs.legacyAutoApprove && !prefs.autoApproval) {
      prefs.autoApproval = create(AutoApprovalSchema, { mode: AutoApproval_Mode.ALL });
    }
    prefs.legacyAutoApprove = false;
  },

  index(value) {
    return { auto_approval: value.mode };
  },

  effects({ before, after, key, level }) {
    const widened = after !== undefined && after.mode !== "off" && (before === undefined || before.mode !== after.mode);
    const event = { kind: "event" as const, type: "connect_pref_changed", data: { key, level } };
    return widened || (after?.mode === "listed" && before?.users.join() !== after.users.join())
      ? [event, { kind: "review_invitations" }]
      : [event];
  },
};
