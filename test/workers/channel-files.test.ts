import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { FILE_MAX_BYTES } from "../../src/files/uploads";
import { addUsers, api, connectTeams, newTeam, ok, token } from "./client";

// Files posted to channels (POST /v1/channels/:channel/files, GET …/files/:file)
// inside workerd on the local R2: the bytes round-trip to whoever sees the
// channel and to nobody else; bad names and types are 400, a file over the
// platform's limit 413; in a channel shared over Slack Connect, each
// organization's `file_uploads` pref toward the other decides (403 naming
// the pref), on both sides.

interface PostedJson {
  file: { id: string; name: string; type: string; bytes: number; channel: string; team: string; user: string };
  topic: string;
  seq: number;
}
interface ErrorJson {
  error: { code: string; message: string; details?: { pref?: string } };
}

async function teamWithMember() {
  const team = await newTeam();
  await addUsers(team.id, [
    ["UMEMBER", "member"],
    ["UOUT", "member"],
  ]);
  return { ...team, member: await token(team.id, "UMEMBER"), outsider: await token(team.id, "UOUT") };
}

async function channel(teamId: string, admin: string, name: string, isPrivate = false, members: string[] = []) {
  const { channel } = await ok<{ channel: { id: string } }>(
    api("POST", `/v1/admin/teams/${teamId}/channels`, { token: admin, json: { name, private: isPrivate } }),
    201,
  );
  if (members.length > 0) {
    await ok(
      api("POST", `/v1/admin/teams/${teamId}/channels/${channel.id}/members`, {
        token: admin,
        json: { user_ids: members },
      }),
    );
  }
  return channel.id;
}

const post = (as: string, channelId: string, name: string | null, body: BodyInit, contentType?: string) =>
  api<PostedJson & Partial<ErrorJson>>(
    "POST",
    `/v1/channels/${channelId}/files${name === null ? "" : `?name=${encodeURIComponent(name)}`}`,
    { token: as, body, ...(contentType ? { contentType } : {}) },
  );

const download = (as: string, channelId: string, fileId: string) =>
  SELF.fetch(`https://edge.test/v1/channels/${channelId}/files/${fileId}`, {
    headers: { authorization: `Bearer ${as}` },
  });

describe("channel files", () => {
  it("round-trips the bytes to whoever sees the channel, with the type and name it was posted with", async () => {
    const a = await teamWithMember();
    const general = await channel(a.id, a.admin, `files-${a.id.slice(-6).toLowerCase()}`);
    const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 251);
    const posted = await post(a.member, general, "report 2026 – ü.bin", bytes, "application/octet-stream");
    expect(posted.status).toBe(201);
    expect(posted.body.file).toMatchObject({
      name: "report 2026 – ü.bin",
      type: "application/octet-stream",
      bytes: 70_000,
      channel: general,
      team: a.id,
      user: "UMEMBER",
    });
    expect(posted.body.seq).toBeGreaterThan(0);
    const res = await download(a.outsider, general, posted.body.file.id);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(res.headers.get("content-disposition")).toBe(
      `attachment; filename*=UTF-8''${encodeURIComponent("report 2026 – ü.bin")}`,
    );
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
  });

  it("is not found for a channel the caller cannot see, another team, or a file that is not there", async () => {
    const a = await teamWithMember();
    const b = await teamWithMember();
    const secret = await channel(a.id, a.admin, `secret-${a.id.slice(-6).toLowerCase()}`, true, ["UMEMBER"]);
    const posted = await ok<PostedJson>(post(a.member, secret, "plan.txt", "the plan", "text/plain"), 201);
    for (const [as, label] of [
      [a.outsider, "a member outside the private channel"],
      [b.admin, "another team's admin"],
    ] as const) {
      const res = await download(as, secret, posted.file.id);
      expect(res.status, label).toBe(404);
      expect(await res.text(), label).not.toContain("plan");
      expect((await post(as, secret, "x.txt", "x", "text/plain")).status, label).toBe(404);
    }
    expect((await download(a.member, secret, "FNOSUCHFILE00")).status).toBe(404);
    expect((await download(a.member, secret, "not-an-id")).status).toBe(404);
  });

  it("refuses a missing or bad name, a bad type and a file over the limit, storing nothing", async () => {
    const a = await teamWithMember();
    const general = await channel(a.id, a.admin, `limits-${a.id.slice(-6).toLowerCase()}`);
    expect((await post(a.member, general, null, "x", "text/plain")).status).toBe(400);
    expect((await post(a.member, general, "", "x", "text/plain")).status).toBe(400);
    expect((await post(a.member, general, "a\u0000b.txt", "x", "text/plain")).status).toBe(400);
    expect((await post(a.member, general, "../../etc/passwd", "x", "text/plain")).status).toBe(400);
    expect((await post(a.member, general, "x".repeat(256), "x", "text/plain")).status).toBe(400);
    expect((await post(a.member, general, "a.txt", "x", "not a type")).status).toBe(400);
    const big = await post(
      a.member,
      general,
      "big.bin",
      new Uint8Array(FILE_MAX_BYTES + 1),
      "application/octet-stream",
    );
    expect(big.status).toBe(413);
    expect(big.body.error?.code).toBe("payload_too_large");
    // Nothing was announced: the next file takes the channel's first seq.
    expect((await ok<PostedJson>(post(a.member, general, "ok.txt", "ok", "text/plain"), 201)).seq).toBe(1);
  });

  it("in a shared channel, each organization's file_uploads pref toward the other decides, both ways", async () => {
    const host = await teamWithMember();
    const guest = await teamWithMember();
    const connection = await connectTeams(host.admin, guest.admin);
    const shared = await channel(host.id, host.admin, `shared-${host.id.slice(-6).toLowerCase()}`);
    const { shared_channel } = await ok<{ shared_channel: { id: string } }>(
      api("POST", "/v1/connect/shared-channels", { token: host.admin, json: { connection, channel: shared } }),
      201,
    );
    await ok(
      api("POST", `/v1/connect/shared-channels/${shared_channel.id}/answer`, {
        token: guest.admin,
        json: { decision: "accept" },
      }),
    );
    await ok(
      api("POST", `/v1/connect/shared-channels/${shared_channel.id}/members`, {
        token: guest.admin,
        json: { user_ids: ["UMEMBER"] },
      }),
    );
    // Not shared over a connection: the prefs do not apply to a team's own channel.
    const own = await channel(host.id, host.admin, `own-${host.id.slice(-6).toLowerCase()}`);
    const setPrefs = (t: { admin: string }, partner: string, value: unknown) =>
      ok(api("PATCH", `/v1/connect/prefs/partners/${partner}`, { token: t.admin, json: { file_uploads: value } }));

    // The host blocks executables toward the guest: its own members may not send them there…
    await setPrefs(host, guest.id, { allowed: true, max_bytes: 0, blocked_types: [".exe"] });
    const hostExe = await post(host.member, shared, "setup.exe", "MZ", "application/octet-stream");
    expect(hostExe.status).toBe(403);
    expect(hostExe.body.error?.details?.pref).toBe("file_uploads");
    expect(hostExe.body.error?.message).toMatch(/\.exe/);
    expect((await post(host.member, own, "setup.exe", "MZ", "application/octet-stream")).status).toBe(201);
    // …and the guest's members may not bring them in.
    expect((await post(guest.member, shared, "setup.exe", "MZ", "application/octet-stream")).status).toBe(403);
    const fine = await post(guest.member, shared, "notes.txt", "fine", "text/plain");
    expect(fine.status).toBe(201);
    // The host's members read what the guest's posted, in the host's channel.
    const res = await download(host.member, shared, fine.body.file.id);
    expect(await res.text()).toBe("fine");

    // The guest caps sizes toward the host: both directions feel it.
    await setPrefs(guest, host.id, { allowed: true, max_bytes: 4, blocked_types: [] });
    expect((await post(host.member, shared, "big.txt", "12345", "text/plain")).status).toBe(403);
    expect((await post(guest.member, shared, "big.txt", "12345", "text/plain")).status).toBe(403);
    expect((await post(host.member, shared, "ok.txt", "1234", "text/plain")).status).toBe(201);
    // Files off altogether.
    await setPrefs(guest, host.id, { allowed: false, max_bytes: 0, blocked_types: [] });
    expect((await post(host.member, shared, "ok.txt", "1", "text/plain")).body.error?.message).toMatch(/not allowed/);
  });
});
