// The resident journey, written against the types openapi-typescript generates from
// /openapi.json: register, sign in, list processes, cast a ballot, check the receipt.
// CI type-checks it (`tsc --noEmit`); a change to the document that breaks a screen of the
// resident app breaks this file first.
import createClient from "openapi-fetch";
import type { components, operations, paths } from "./generated/schema";

type Problem = components["schemas"]["Problem"];
type ProblemCode = Problem["code"];
type Ballot = components["schemas"]["BallotPublic"];
// Operation ids are `tag-handler`: what a generator names `VotingService.castBallot`.
type CastBallot = operations["voting-cast_ballot"];

const api = createClient<paths>({ baseUrl: "http://127.0.0.1:8000" });

// A UI switches on codes, never on English: the enum makes this exhaustive.
export function explain(problem: Problem): string {
  const code: ProblemCode = problem.code;
  switch (code) {
    case "not_eligible":
      return `Not eligible: ${(problem.reasons ?? []).join(", ")}`;
    case "voting_closed":
      return problem.reason === "not_open_yet"
        ? `Voting opens at ${problem.opens_at ?? "a later date"}`
        : "Voting has closed";
    case "validation_error":
      return (problem.errors ?? [])
        .map((e) => `${e.loc.join(".")}: ${e.type}`)
        .join("; ");
    default:
      return problem.detail;
  }
}

export async function journey(email: string, password: string): Promise<Ballot> {
  const registered = await api.POST("/api/v1/auth/register", {
    body: { email, password, display_name: "Anna", postcode: "9713 AB", birth_year: 1990 },
  });
  if (registered.error) throw new Error(explain(registered.error));

  const signedIn = await api.POST("/api/v1/auth/token", {
    body: { username: email, password },
    bodySerializer: (body) => new URLSearchParams(body as Record<string, string>),
  });
  if (signedIn.error) throw new Error(explain(signedIn.error));
  const headers = { Authorization: `Bearer ${signedIn.data.access_token}` };

  // A public read: no token needed.
  const listed = await api.GET("/api/v1/processes", { params: { query: { phase: "voting" } } });
  if (listed.error) throw new Error(explain(listed.error));
  const process = listed.data.items[0];
  if (process === undefined) throw new Error("no process in voting");
  const process_id = process.id;

  const standing = await api.GET("/api/v1/processes/{process_id}/me", {
    params: { path: { process_id } },
    headers,
  });
  if (standing.error) throw new Error(explain(standing.error));
  if (!standing.data.can_vote) throw new Error(`cannot vote: ${standing.data.reasons.join()}`);

  const accepted = await api.GET("/api/v1/processes/{process_id}/proposals", {
    params: { path: { process_id }, query: { status: "accepted", sort: "cost" } },
  });
  if (accepted.error) throw new Error(explain(accepted.error));
  const choice = accepted.data.items[0];
  if (choice === undefined) throw new Error("nothing on the ballot");
  const supported: boolean | null = choice.supported_by_me;

  const body: CastBallot["requestBody"]["content"]["application/json"] = {
    proposal_ids: [choice.id],
  };
  const cast = await api.PUT("/api/v1/processes/{process_id}/ballot", {
    params: { path: { process_id } },
    body,
    headers,
  });
  if (cast.error) throw new Error(explain(cast.error));

  const receipt = await api.GET("/api/v1/processes/{process_id}/receipts/{receipt}", {
    params: { path: { process_id, receipt: cast.data.receipt } },
  });
  if (receipt.error) throw new Error(explain(receipt.error));
  if (!receipt.data.current || supported === undefined) throw new Error("receipt not current");

  const results = await api.GET("/api/v1/processes/{process_id}/results", {
    params: { path: { process_id } },
  });
  if (results.data) {
    const rule: "greedy" | "mes" = results.data.rule;
    console.log(rule);
  }
  return cast.data;
}
