// The seeded demo org for `npm start`: one team with a claimed domain, a
// partner with a sizeable share, a contractor below the threshold, a few
// public-provider addresses, and every role.

export const DEMO_TEAM = {
  id: "TDEMO",
  name: "Demo Org",
  plan: "business",
  claimed_domains: ["demo.example"],
} as const;
export const DEMO_ADMIN = "U0000ADMIN";
export const DEMO_MEMBER = "U0000MEMBER";

export function demoUsers(): Array<{ id: string; email: string; role: string }> {
  const users = [
    { id: DEMO_ADMIN, email: "ada@demo.example", role: "owner" },
    { id: DEMO_MEMBER, email: "max@demo.example", role: "member" },
    { id: "U0000GUEST", email: "gus@contractor.example", role: "guest" },
  ];
  const add = (n: number, domain: string, role: string, prefix: string) => {
    for (let i = 0; i < n; i++)
      users.push({
        id: `U${prefix}${String(i).padStart(5, "0")}`,
        email: `${prefix.toLowerCase()}${i}@${domain}`,
        role,
      });
  };
  add(150, "demo.example", "member", "D");
  add(8, "demo.example", "admin", "A");
  add(30, "partner.example", "member", "P");
  add(2, "partner.example", "admin", "Q");
  add(4, "contractor.example", "guest", "C");
  add(6, "gmail.com", "member", "G");
  return users;
}

export const DEMO_PROFILES: Array<{
  id: string;
  name: string;
  real_name: string;
  display_name: string;
  title: string;
}> = [
  { id: DEMO_ADMIN, name: "ada", real_name: "Ada Lovelace", display_name: "Ada", title: "Founder" },
  { id: DEMO_MEMBER, name: "max", real_name: "Max Müller", display_name: "max", title: "Engineer" },
  { id: "U0000GUEST", name: "gus", real_name: "Gus Guest", display_name: "", title: "Contractor" },
];

export function demoChannels(): Array<{ id: string; name: string; topic: string; private: boolean }> {
  return [
    { id: "CGENERAL", name: "general", topic: "Everyone", private: false },
    { id: "CRANDOM", name: "random", topic: "Off topic", private: false },
    { id: "CENGBACK", name: "eng-backend", topic: "APIs and storage", private: false },
    { id: "CENGFRONT", name: "eng-frontend", topic: "Clients", private: false },
    { id: "CLEADS", name: "leadership", topic: "Private", private: true },
    { id: "CCONTRACT", name: "contractors", topic: "Working with contractors", private: false },
  ];
}

export function demoMemberships(): Array<{ channel_id: string; user_id: string }> {
  const users = demoUsers().filter((u) => u.role !== "guest");
  const out: Array<{ channel_id: string; user_id: string }> = [];
  users.forEach((u, i) => {
    out.push({ channel_id: "CGENERAL", user_id: u.id });
    if (i % 2 === 0) out.push({ channel_id: "CRANDOM", user_id: u.id });
    if (i % 3 === 0) out.push({ channel_id: "CENGBACK", user_id: u.id });
    if (i % 3 === 1) out.push({ channel_id: "CENGFRONT", user_id: u.id });
  });
  out.push({ channel_id: "CLEADS", user_id: DEMO_ADMIN });
  for (const u of demoUsers().filter((u) => u.role === "guest")) out.push({ channel_id: "CCONTRACT", user_id: u.id });
  out.push({ channel_id: "CCONTRACT", user_id: DEMO_ADMIN });
  return out;
}

/**
 * Seeds the demo team through the admin API of the platform at `base`, as
 * the operator whose token is given: the team, its users (NDJSON import),
 * profiles, channels and memberships. `npm start` and the node tests that
 * drive a local platform (test/node/local-platform.ts) both seed with it.
 */
export async function seedDemoTeam(
  base: string,
  operatorToken: string,
): Promise<{ users: number; channels: number; memberships: number }> {
  const admin = `${base}/v1/admin/teams/${DEMO_TEAM.id}`;
  const call = async (path: string, method: string, body: string, type = "application/json") => {
    const res = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${operatorToken}`, "content-type": type },
      body,
    });
    if (!res.ok) throw new Error(`seeding: ${method} ${path} -> ${res.status} ${await res.text()}`);
  };
  const users = demoUsers();
  const channels = demoChannels();
  const memberships = demoMemberships();
  await call(`${base}/v1/admin/teams`, "POST", JSON.stringify(DEMO_TEAM));
  await call(`${admin}/users/import`, "POST", users.map((u) => JSON.stringify(u)).join("\n"), "application/x-ndjson");
  for (const { id, ...profile } of DEMO_PROFILES) {
    await call(`${admin}/users/${id}/profile`, "PATCH", JSON.stringify(profile));
  }
  await call(`${admin}/channels/import`, "POST", JSON.stringify({ channels }));
  await call(`${admin}/memberships/import`, "POST", JSON.stringify({ memberships }));
  return { users: users.length, channels: channels.length, memberships: memberships.length };
}
