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
