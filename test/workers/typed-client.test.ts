import { SELF } from "cloudflare:test";
import { hc } from "hono/client";
import { describe, expect, it } from "vitest";
import { MAX_EMAILS_PER_REQUEST } from "../../src/invites/classify-invites";
import type { AppType } from "../../workers/app";
import { uniqueTeamId } from "../contract/fixtures";
import { platformToken, token } from "./client";

// The Worker through hono/client's hc<AppType> (docs/api.md#a-typed-client):
// paths, path parameters, query strings and JSON bodies are checked by the
// compiler from the same route configs that validate them at run time, and
// the answers are typed from the routes' declared responses. `npx tsc`
// type-checks this file; the @ts-expect-error lines are inputs the routes'
// schemas refuse, which must not compile.

/** A client for the Worker under test (SELF), as `token` (none for public routes). */
function clientAs(tokenText?: string) {
  return hc<AppType>("https://edge.test", {
    fetch: (input: RequestInfo | URL, init?: RequestInit) => SELF.fetch(input, init),
    headers: tokenText ? { authorization: `Bearer ${tokenText}` } : {},
  });
}

describe("hc<AppType>", () => {
  it("calls public and admin routes with typed inputs and answers", async () => {
    const health = await clientAs().healthz.$get();
    expect(health.status).toBe(200);
    const up = await health.json();
    expect(up.ok).toBe(true);

    const operator = clientAs(await platformToken());
    const id = uniqueTeamId("THC");
    const created = await operator.v1.admin.teams.$post({ json: { id, name: "Typed client", plan: "pro" } });
    expect(created.status).toBe(201);
    if (created.status !== 201) throw new Error(await created.text());
    const { team } = await created.json();
    expect(team).toMatchObject({ id, name: "Typed client", plan: "pro", claimed_domains: [], healed_at: null });

    const added = await operator.v1.admin.teams[":team"].users.$post({
      param: { team: id },
      header: {},
      json: { id: "UHCADMIN", email: "Admin@Typed.Example", role: "admin" },
    });
    expect(added.status).toBe(201);
    if (added.status !== 201) throw new Error(await added.text());
    expect((await added.json()).user).toMatchObject({ id: "UHCADMIN", email: "admin@typed.example", role: "admin" });

    const admin = clientAs(await token(id, "UHCADMIN"));
    const read = await admin.v1.admin.teams[":team"].$get({ param: { team: id } });
    expect(read.status).toBe(200);
    if (read.status !== 200) throw new Error(await read.text());
    expect((await read.json()).team.id).toBe(id);

    // A member route and a query string: the directory, as the new admin.
    const people = await admin.v1.directory.people.$get({ query: { q: "admin", limit: "5" } });
    expect(people.status).toBe(200);
    if (people.status !== 200) throw new Error(await people.text());
    const page = await people.json();
    expect(page.items.map((u) => u.id)).toContain("UHCADMIN");

    const ticket = await admin.v1["rtm.connect"].$post();
    expect(ticket.status).toBe(200);
    if (ticket.status !== 200) throw new Error(await ticket.text());
    expect((await ticket.json()).url).toMatch(/^\/v1\/rtm\?ticket=/);

    // Another team's id in the path: 404 in the error shape, typed as such.
    const foreign = await admin.v1.admin.teams[":team"].$get({ param: { team: uniqueTeamId("TNOPE") } });
    expect(foreign.status).toBe(404);
    if (foreign.status === 200) throw new Error("another team's id answered");
    expect((await foreign.json()).error.code).toBe("not_found");
  });

  it("the bound the document states is the one enforced", async () => {
    const id = uniqueTeamId("THCB");
    const operator = clientAs(await platformToken());
    expect((await operator.v1.admin.teams.$post({ json: { id, name: "Bounds" } })).status).toBe(201);
    const member = await operator.v1.admin.teams[":team"].users.$post({
      param: { team: id },
      header: {},
      json: { id: "UHCMEMBER", email: "m@bounds.example" },
    });
    expect(member.status).toBe(201);
    // The document's own type is open-ended (any OpenAPI object): narrowed to what is read here.
    const doc = (await (await clientAs()["openapi.json"].$get()).json()) as unknown as {
      paths: Record<string, Record<string, { requestBody: { content: Record<string, { schema: unknown }> } }>>;
    };
    const schema = doc.paths["/v1/invites/classify"]?.post?.requestBody.content["application/json"]?.schema as {
      properties: { emails: { minItems: number; maxItems: number } };
    };
    expect(schema.properties.emails.maxItems).toBe(MAX_EMAILS_PER_REQUEST);

    const as = clientAs(await token(id, "UHCMEMBER"));
    const emails = (n: number) => Array.from({ length: n }, (_, i) => `u${i}@bounds.example`);
    const most = await as.v1.invites.classify.$post({ json: { emails: emails(schema.properties.emails.maxItems) } });
    expect(most.status).toBe(200);
    const over = await as.v1.invites.classify.$post({
      json: { emails: emails(schema.properties.emails.maxItems + 1) },
    });
    expect(over.status).toBe(400);
    if (over.status === 200) throw new Error("over the bound was accepted");
    expect((await over.json()).error.code).toBe("invalid_body");
    const none = await as.v1.invites.classify.$post({
      json: { emails: emails(schema.properties.emails.minItems - 1) },
    });
    expect(none.status).toBe(400);
  });

  it("does not compile inputs the schemas refuse", () => {
    // Never called: tsc is the check (an @ts-expect-error that compiles fails it).
    const refused = (client: ReturnType<typeof clientAs>) => {
      // @ts-expect-error a team needs a name
      void client.v1.admin.teams.$post({ json: { id: "TX" } });
      // @ts-expect-error plans are free, pro, business or enterprise
      void client.v1.admin.teams.$post({ json: { name: "x", plan: "platinum" } });
      // @ts-expect-error the path names a team
      void client.v1.admin.teams[":team"].$get({ param: {} });
      // @ts-expect-error a message has text
      void client.v1.channels[":channel"].messages.$post({ param: { channel: "C1" }, json: { mentions: [] } });
      // @ts-expect-error feedback actions are an enum
      void client.v1.recommend.feedback.$post({ json: { request_id: "r", events: [{ item: "C1", action: "x" }] } });
      // @ts-expect-error no such route
      void client.v1.admin.nothing.$get();
    };
    expect(typeof refused).toBe("function");
  });
});
