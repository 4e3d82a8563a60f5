import { describe, expect, it } from "vitest";
import {
  answer,
  cancel,
  codeHashOf,
  connectionView,
  disconnect,
  INVITATION_TTL_MS,
  invite,
  newInvitationCode,
} from "../../src/connect/connections";

// The connection lifecycle with consent on both sides: an invitation code
// from one team's admin, redeemed (or declined) by the other's; either side
// disconnects. A code that cannot be redeemed answers like one that never
// existed, so nothing about another team is learned before it agrees.

const A = { team: "TA", user: "UADMIN" };
const B = { team: "TB", user: "UBOSS" };
const NOW = 1_700_000_000_000;

async function pending() {
  const code = newInvitationCode();
  return { code, invitation: invite("I1", A, await codeHashOf(code), NOW) };
}

describe("connections", () => {
  it("connects two teams when the invited side accepts the code, recording who asked and who answered", async () => {
    const { code, invitation } = await pending();
    expect(code).toMatch(/^[0-9a-f]{40}$/);
    expect(invitation.codeHash).toBe(await codeHashOf(code));
    expect(invitation.codeHash).not.toContain(code);
    const { invitation: answered, connection } = answer(invitation, B, "accept", null, "K1", NOW + 1000);
    expect(answered).toMatchObject({ status: "accepted", answeredBy: { team: "TB", user: "UBOSS", at: NOW + 1000 } });
    expect(connection).toEqual({
      id: "K1",
      inviter: "TA",
      invitee: "TB",
      status: "accepted",
      invitationId: "I1",
      requestedBy: { team: "TA", user: "UADMIN", at: NOW },
      acceptedBy: { team: "TB", user: "UBOSS", at: NOW + 1000 },
      disconnectedBy: null,
    });
    expect(connection && connectionView(connection, "TA")).toMatchObject({ partner: "TB", invited_by_us: true });
    expect(connection && connectionView(connection, "TB")).toMatchObject({ partner: "TA", invited_by_us: false });
  });

  it("creates nothing when the invited side declines", async () => {
    const { invitation } = await pending();
    const r = answer(invitation, B, "decline", null, "K1", NOW);
    expect(r.connection).toBeNull();
    expect(r.invitation.status).toBe("declined");
  });

  it("answers an unknown, expired, used, cancelled or own code exactly alike: not found", async () => {
    const { invitation } = await pending();
    const used = answer(invitation, B, "accept", null, "K1", NOW).invitation;
    const cancelled = cancel((await pending()).invitation, A);
    const refusals = [
      () => answer(null, B, "accept", null, "K2", NOW),
      () => answer(invitation, B, "accept", null, "K2", NOW + INVITATION_TTL_MS),
      () => answer(used, { team: "TC", user: "U3" }, "accept", null, "K2", NOW),
      () => answer(cancelled, B, "accept", null, "K2", NOW),
      () => answer(invitation, { team: "TA", user: "UOTHER" }, "accept", null, "K2", NOW),
    ];
    for (const refuse of refusals) {
      expect(refuse).toThrowError(expect.objectContaining({ kind: "not_found", message: "no such invitation" }));
    }
  });

  it("refuses a second live connection between the same pair, and allows one after a disconnect", async () => {
    const first = answer((await pending()).invitation, B, "accept", null, "K1", NOW).connection;
    const again = (await pending()).invitation;
    expect(() => answer(again, B, "accept", first, "K2", NOW)).toThrowError(
      expect.objectContaining({ kind: "conflict" }),
    );
    const ended = disconnect(first, B, NOW + 5);
    expect(ended).toMatchObject({ status: "disconnected", disconnectedBy: { team: "TB", user: "UBOSS", at: NOW + 5 } });
    expect(answer(again, B, "accept", ended, "K2", NOW).connection?.status).toBe("accepted");
  });

  it("lets only the two teams disconnect, once; a third team learns nothing", async () => {
    const connection = answer((await pending()).invitation, B, "accept", null, "K1", NOW).connection;
    expect(() => disconnect(connection, { team: "TC", user: "U9" }, NOW)).toThrowError(
      expect.objectContaining({ kind: "not_found", message: "no such connection" }),
    );
    const ended = disconnect(connection, A, NOW);
    expect(() => disconnect(ended, B, NOW)).toThrowError(expect.objectContaining({ kind: "conflict" }));
  });

  it("lets only the inviting team cancel its pending invitation", async () => {
    const { invitation } = await pending();
    expect(() => cancel(invitation, B)).toThrowError(expect.objectContaining({ kind: "not_found" }));
    const cancelled = cancel(invitation, A);
    expect(cancelled.status).toBe("cancelled");
    expect(() => cancel(cancelled, A)).toThrowError(expect.objectContaining({ kind: "conflict" }));
  });
});
