import { describe, expect, it } from "vitest";
import { redactedMessage } from "../../src/errors";

describe("redactedMessage (log lines)", () => {
  it("blanks quoted values and id-like words, keeps the rest, and stays short", () => {
    expect(
      redactedMessage(
        "Duplicate entry 'T1ABC-ann@acme.test' for key 'users.email' in INSERT INTO users VALUES (U0000042, \"Ann\")",
      ),
    ).toBe("Duplicate entry ? for key ? in INSERT INTO users VALUES (?, ?)");
    expect(redactedMessage("D1_ERROR: no such column: nope")).toBe("D1_ERROR: no such column: nope");
    expect(redactedMessage("x".repeat(500))).toHaveLength(200);
  });
});
