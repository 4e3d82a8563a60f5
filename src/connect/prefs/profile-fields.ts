import { create } from "@bufbuild/protobuf";
import { ProfileFieldsSchema } from "../gen/connect/v1/prefs_pb";
import { objectWith, type PrefClass, PrefInputError, shown, stringList } from "./pref";

// Profile fields the partner's users may see of this team's users. The id
// and name are always visible (a member of a shared channel must be named);
// the rest is this team's choice.

export const PROFILE_FIELDS = ["real_name", "display_name", "title", "avatar_hash", "tz"] as const;
export type ProfileField = (typeof PROFILE_FIELDS)[number];

export interface ProfileFieldsValue {
  visible: ProfileField[];
}

const isField = (f: string): f is ProfileField => (PROFILE_FIELDS as readonly string[]).includes(f);

export const profileFields: PrefClass<ProfileFieldsValue> = {
  key: "profile_fields",
  description: "profile fields the partner's users may see",
  defaultValue: { visible: ["real_name", "display_name", "title", "avatar_hash"] },

  read(prefs) {
    const m = prefs.profileFields;
    // Fields this code does not know (a newer writer's) are not shown: fail closed.
    return m ? { visible: m.visible.filter(isField) } : undefined;
  },

  write(prefs, value) {
    prefs.profileFields = value === undefined ? undefined : create(ProfileFieldsSchema, { visible: value.visible });
  },

  transform(input) {
    const o = objectWith(input, "profile_fields", ["visible"]);
    const visible = stringList(o.visible, "profile_fields.visible", PROFILE_FIELDS.length * 2);
    const unknown = visible.filter((f) => !isField(f));
    if (unknown.length > 0) {
      throw new PrefInputError(`profile_fields.visible takes ${PROFILE_FIELDS.join(", ")}; not ${shown(unknown)}`);
    }
    return { visible: visible.filter(isField) };
  },

  isValid() {
    return [];
  },

  migrate(prefs, fromVersion) {
    // Version 1 listed the hidden fields; version 2 lists the visible ones.
    if (fromVersion < 2 && prefs.legacyHiddenProfileFields.length > 0 && !prefs.profileFields) {
      const hidden = new Set(prefs.legacyHiddenProfileFields);
      prefs.profileFields = create(ProfileFieldsSchema, { visible: PROFILE_FIELDS.filter((f) => !hidden.has(f)) });
    }
    prefs.legacyHiddenProfileFields = [];
  },

  index(value) {
    return { profile_fields: value.visible.join(" ") };
  },

  effects({ key, level }) {
    return [{ kind: "event", type: "connect_pref_changed", data: { key, level } }, { kind: "refilter_profiles" }];
  },
};

/** A user card as a partner's user sees it: the fields these prefs hide are left out. */
export function forPartner<T extends Record<string, unknown>>(card: T, prefs: ProfileFieldsValue): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(card)) {
    if (!isField(k) || prefs.visible.includes(k)) out[k] = v;
  }
  return out as Partial<T>;
}

/**
 * A user card as the partner's users see it, keeping its shape: each field
 * these prefs hide is blanked (what an unset field looks like), so a client
 * needs no other code for a partner's user.
 */
export function blankedForPartner<T extends Record<ProfileField, string>>(card: T, prefs: ProfileFieldsValue): T {
  const out: T = { ...card };
  for (const field of PROFILE_FIELDS) if (!prefs.visible.includes(field)) out[field] = "" as T[ProfileField];
  return out;
}
