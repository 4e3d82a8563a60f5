import type { TeamScore } from "./model";

// The words of an answer. Confident: one team. Not confident: says so and
// names the best few candidates, with their probabilities, so the asker can
// judge; never a made-up certainty.

/** Candidates named when the bot is not sure. */
export const CANDIDATES = 3;

export type Verdict =
  | { kind: "confident"; team: TeamScore }
  | { kind: "unsure"; candidates: TeamScore[] }
  | { kind: "no_topic" };

export function verdictOf(ranked: readonly TeamScore[], minConfidence: number, topic: string): Verdict {
  const top = ranked[0];
  if (!topic.trim() || !top) return { kind: "no_topic" };
  if (top.probability >= minConfidence) return { kind: "confident", team: top };
  return { kind: "unsure", candidates: ranked.slice(0, CANDIDATES) };
}

const percent = (p: number) => `${Math.round(p * 100)}%`;

/** The reply's text (Slack mrkdwn). */
export function answerText(verdict: Verdict): string {
  switch (verdict.kind) {
    case "confident":
      return `The *${verdict.team.name}* team is the most likely to help with this (${percent(verdict.team.probability)} confident).`;
    case "unsure": {
      const names = verdict.candidates.map((t) => `*${t.name}* (${percent(t.probability)})`).join(", ");
      return `I'm not sure who knows about this. My best guesses: ${names}.`;
    }
    case "no_topic":
      return "Ask me \u201cwho knows about \u2026?\u201d with a topic, and I'll name the team most likely to help.";
  }
}

/** What travels with the reply as message metadata (https://api.slack.com/metadata): machine-readable. */
export function answerMetadata(verdict: Verdict, modelVersion: string) {
  const top =
    verdict.kind === "confident" ? verdict.team : verdict.kind === "unsure" ? verdict.candidates[0] : undefined;
  return {
    event_type: "team_suggested",
    event_payload: {
      verdict: verdict.kind,
      team: top?.id ?? "",
      probability: top ? Math.round(top.probability * 10_000) / 10_000 : 0,
      model: modelVersion,
    },
  };
}
