import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  type AutoApproval_Mode,
  AutoApprovalSchema,
  ConnectPrefsSchema,
} from "../../src/connect/gen/connect/v1/prefs_pb";
import { mayCreateShared } from "../../src/connect/prefs/channel-creation";
import { uploadRefusal } from "../../src/connect/prefs/file-uploads";
import type { PrefClass } from "../../src/connect/prefs/pref";
import { CURRENT_VERSION } from "../../src/connect/prefs/pref";
import { forPartner, PROFILE_FIELDS } from "../../src/connect/prefs/profile-fields";
import { PREF_CLASSES, PrefContainer, PrefPatchError, type PrefProblem } from "../../src/connect/prefs/registry";

// Slack Connect prefs as a container over the protobuf message: resolution
// default -> org -> partner with its source, one pref's failure kept to
// itself, old payloads migrated, patches validated whole.

const container = new PrefContainer();
const blank = () => create(ConnectPrefsSchema, { version: CURRENT_VERSION });

function level(patch: Record<string, unknown>) {
  const prefs = blank();
  container.patch(prefs, "org", patch, []);
  return prefs;
}

describe("resolution", () => {
  it("takes the partner level, else the org level, else the default, and says which", () => {
    const problems: PrefProblem[] = [];
    const org = level({ file_uploads: { allowed: false }, channel_creation: { who: "members" } });
    const partner = level({ channel_creation: { who: "nobody" } });
    const r = container.resolve(org, partner, problems);
    expect(r.auto_approval).toEqual({ value: { mode: "off", users: [] }, source: "default" });
    expect(r.file_uploads).toEqual({ value: { allowed: false, max_bytes: 0, blocked_types: [] }, source: "org" });
    expect(r.channel_creation).toEqual({ value: { who: "nobody" }, source: "partner" });
    expect(r.profile_fields?.source).toBe("default");
    expect(problems).toEqual([]);
  });

  it("keeps a throwing pref to itself: reported, it falls through to the default, the others resolve", () => {
    const broken: PrefClass<{ on: boolean }> = {
      key: "broken",
      description: "always throws",
      defaultValue: { on: false },
      read: () => {
        throw new Error("boom");
      },
      write: () => {},
      transform: () => ({ on: true }),
      isValid: () => [],
      migrate: () => {
        throw new Error("cannot migrate");
      },
      index: () => {
        throw new Error("cannot index");
      },
      effects: () => [],
    };
    const withBroken = new PrefContainer([...PREF_CLASSES, broken] as unknown as ReadonlyArray<PrefClass<never>>);
    const problems: PrefProblem[] = [];
    const old = withBroken.decode(
      toBinary(ConnectPrefsSchema, create(ConnectPrefsSchema, { version: 1 })),
      "org",
      problems,
    );
    const org = level({ channel_creation: { who: "members" } });
    const r = withBroken.resolve(org, old, problems);
    expect(r.broken).toEqual({ value: { on: false }, source: "default" });
    expect(r.channel_creation).toEqual({ value: { who: "members" }, source: "org" });
    withBroken.index(r, problems);
    expect(problems.map((p) => `${p.key}:${p.stage}`)).toEqual([
      "broken:migrate",
      "broken:read",
      "broken:read",
      "broken:index",
    ]);
  });

  it("treats a blob that does not decode as a level that sets nothing, and says so", () => {
    const problems: PrefProblem[] = [];
    const partner = container.decode(new Uint8Array([0xff, 0xff, 0xff]), "partner", problems);
    const r = container.resolve(level({ channel_creation: { who: "members" } }), partner, problems);
    expect(r.channel_creation?.source).toBe("org");
    expect(problems).toMatchObject([{ key: "*", level: "partner", stage: "decode" }]);
  });

  it("reads a value a newer writer stored in a form this code does not know as not set (the level below decides)", () => {
    const prefs = blank();
    prefs.autoApproval = create(AutoApprovalSchema, { mode: 99 as AutoApproval_Mode });
    expect(container.resolve(null, prefs, []).auto_approval?.source).toBe("default");
  });
});

describe("migration", () => {
  it("moves a version 1 payload's flag and hidden fields into the version 2 prefs, and writes version 2", () => {
    const v1 = create(ConnectPrefsSchema, {
      version: 1,
      legacyAutoApprove: true,
      legacyHiddenProfileFields: ["tz", "title"],
    });
    const problems: PrefProblem[] = [];
    const prefs = container.decode(toBinary(ConnectPrefsSchema, v1), "partner", problems);
    const values = container.levelValues(prefs, "partner", problems);
    expect(values).toEqual({
      auto_approval: { mode: "all", users: [] },
      profile_fields: { visible: PROFILE_FIELDS.filter((f) => f !== "tz" && f !== "title") },
    });
    expect(prefs.legacyAutoApprove).toBe(false);
    expect(prefs.legacyHiddenProfileFields).toEqual([]);
    const again = container.decode(container.encode(prefs), "partner", problems);
    expect(again.version).toBe(CURRENT_VERSION);
    expect(container.levelValues(again, "partner", problems)).toEqual(values);
    expect(problems).toEqual([]);
  });

  it("leaves a version 2 value alone when an old field is also there", () => {
    const prefs = create(ConnectPrefsSchema, { version: 1, legacyAutoApprove: true });
    container.patch(prefs, "org", { auto_approval: { mode: "off" } }, []);
    const decoded = container.decode(toBinary(ConnectPrefsSchema, prefs), "org", []);
    expect(container.levelValues(decoded, "org", []).auto_approval).toEqual({ mode: "off", users: [] });
  });
});

describe("patches", () => {
  it("refuses the whole patch when one pref is wrong, naming each problem, and changes nothing", () => {
    const prefs = level({ channel_creation: { who: "members" } });
    const before = container.encode(prefs);
    let error: unknown;
    try {
      container.patch(
        prefs,
        "org",
        {
          channel_creation: { who: "admins" },
          auto_approval: { mode: "listed" },
          file_uploads: { allowed: "yes" },
          colour: "blue",
        },
        [],
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PrefPatchError);
    expect(Object.keys((error as PrefPatchError).problems).sort()).toEqual(["auto_approval", "colour", "file_uploads"]);
    expect(container.encode(prefs)).toEqual(before);
  });

  it("refuses a pref named __proto__ or after Object's own members like any unknown name", () => {
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      const prefs = level({ channel_creation: { who: "members" } });
      const before = container.encode(prefs);
      // As JSON.parse makes it: an own key, not the prototype.
      const input = JSON.parse(`{${JSON.stringify(name)}:{"isAdmin":true},"channel_creation":{"who":"nobody"}}`);
      let error: unknown;
      try {
        container.patch(prefs, "org", input, []);
      } catch (e) {
        error = e;
      }
      expect(error, name).toBeInstanceOf(PrefPatchError);
      expect(Object.keys((error as PrefPatchError).problems), name).toEqual([name]);
      expect((error as PrefPatchError).message, name).toContain(`${name}: no such pref`);
      expect(container.encode(prefs), name).toEqual(before);
    }
  });

  it("clears a pref with null, reports only real changes, and says what they cause", () => {
    const prefs = level({ auto_approval: { mode: "off" }, channel_creation: { who: "members" } });
    const { changes, effects } = container.patch(
      prefs,
      "partner",
      {
        auto_approval: { mode: "listed", users: ["U1", "U1", " U2 "] },
        channel_creation: { who: "members" },
        file_uploads: null,
      },
      [],
    );
    expect(changes).toEqual([
      {
        key: "auto_approval",
        level: "partner",
        before: { mode: "off", users: [] },
        after: { mode: "listed", users: ["U1", "U2"] },
      },
    ]);
    expect(effects).toEqual([
      { kind: "event", type: "connect_pref_changed", data: { key: "auto_approval", level: "partner" } },
      { kind: "review_invitations" },
    ]);
    const cleared = container.patch(prefs, "partner", { channel_creation: null }, []);
    expect(cleared.changes).toMatchObject([{ key: "channel_creation", after: undefined }]);
    expect(container.levelValues(prefs, "partner", [])).not.toHaveProperty("channel_creation");
  });
});

describe("index and enforcement helpers", () => {
  it("flattens every effective value for the search index", () => {
    const r = container.resolve(
      level({ file_uploads: { allowed: true, max_bytes: 1000, blocked_types: [".EXE"] } }),
      null,
      [],
    );
    expect(container.index(r, [])).toEqual({
      auto_approval: "off",
      file_uploads: true,
      file_uploads_max_bytes: 1000,
      file_uploads_blocked: ".exe",
      profile_fields: "real_name display_name title avatar_hash",
      channel_creation: "admins",
    });
  });

  it("refuses uploads by switch, size, MIME type, wildcard and extension", () => {
    const prefs = { allowed: true, max_bytes: 100, blocked_types: ["application/zip", "video/*", ".exe"] };
    expect(uploadRefusal(prefs, { bytes: 10, type: "text/plain", name: "a.txt" })).toBeNull();
    expect(uploadRefusal(prefs, { bytes: 101, type: "text/plain", name: "a.txt" })).toMatch(/larger than 100/);
    expect(uploadRefusal(prefs, { bytes: 1, type: "application/zip", name: "a.zip" })).toMatch(/application\/zip/);
    expect(uploadRefusal(prefs, { bytes: 1, type: "video/mp4", name: "a.mp4" })).toMatch(/video\/\*/);
    expect(uploadRefusal(prefs, { bytes: 1, type: "application/octet-stream", name: "SETUP.EXE" })).toMatch(/\.exe/);
    expect(uploadRefusal({ ...prefs, allowed: false }, { bytes: 1, type: "text/plain", name: "a" })).toMatch(
      /not allowed/,
    );
  });

  it("shows a partner only the profile fields the prefs make visible (id and name always)", () => {
    const card = { id: "U1", name: "ada", real_name: "Ada L", title: "CTO", tz: "Europe/London" };
    expect(forPartner(card, { visible: ["real_name"] })).toEqual({ id: "U1", name: "ada", real_name: "Ada L" });
  });

  it("lets the prefs decide who creates shared channels, never a guest", () => {
    expect(mayCreateShared({ who: "admins" }, "admin")).toBe(true);
    expect(mayCreateShared({ who: "admins" }, "member")).toBe(false);
    expect(mayCreateShared({ who: "members" }, "member")).toBe(true);
    expect(mayCreateShared({ who: "members" }, "guest")).toBe(false);
    expect(mayCreateShared({ who: "nobody" }, "owner")).toBe(false);
  });
});
