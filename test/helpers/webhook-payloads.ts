/*
 * Webhook bodies shaped like the real senders' (Stripe events, GitHub deliveries),
 * with the fields key frames look at where the senders put them. The text is written
 * by hand in places (spacing, escapes, a big number) so byte-exact reads are tested.
 */
let counter = 0;

/** A Stripe event about `object` (its `id` and `object` are the entity), as Stripe posts it. */
export function stripeEvent(type: string, object: Record<string, unknown> & { id: string; object: string }): string {
  counter++;
  const event = {
    id: `evt_1P${String(counter).padStart(6, "0")}Xy`,
    object: "event",
    api_version: "2024-06-20",
    created: 1719000000 + counter,
    data: { object, previous_attributes: counter % 2 === 0 ? { description: null } : undefined },
    livemode: false,
    pending_webhooks: 1,
    request: { id: `req_${counter}`, idempotency_key: `idem-${counter}` },
    type,
  };
  // Stripe pretty-prints its payloads: keep that spacing, it must come back byte for byte.
  return JSON.stringify(event, null, 2);
}

const repository = { id: 708_432_112, node_id: "R_kgDOKjY", name: "shop", full_name: "acme/shop", private: false };
const sender = { login: "octocat", id: 583_231, type: "User" };

/** An `issues` delivery (X-GitHub-Event: issues). */
export function githubIssue(action: string, id: number, number: number, state: string, title: string): string {
  return JSON.stringify({ action, issue: { id, number, title, state, user: sender, labels: [], comments: 0 }, repository, sender });
}

/** An `issue_comment` delivery: its entity is the issue. */
export function githubIssueComment(issueId: number, number: number, commentId: number, body: string): string {
  return JSON.stringify({
    action: "created",
    issue: { id: issueId, number, title: "Checkout fails", state: "open" },
    comment: { id: commentId, body, user: sender },
    repository,
    sender,
  });
}

/** A `pull_request` delivery. */
export function githubPullRequest(action: string, id: number, number: number, headSha: string): string {
  return JSON.stringify({
    action,
    number,
    pull_request: { id, number, state: action === "closed" ? "closed" : "open", head: { sha: headSha, ref: "fix" }, merged: false },
    repository,
    sender,
  });
}

/** A `check_run` delivery. */
export function githubCheckRun(action: string, id: number, status: string, conclusion: string | null): string {
  return JSON.stringify({
    action,
    check_run: { id, head_sha: "9f1c0d2", status, conclusion, name: "ci", check_suite: { id: 5_100_200 }, pull_requests: [] },
    repository,
    sender,
  });
}

/** A `ping` delivery: about no issue, pull request or check run. */
export function githubPing(): string {
  return JSON.stringify({
    zen: "Keep it logically awesome.",
    hook_id: 123_456,
    hook: { type: "Repository", active: true },
    repository,
    sender,
  });
}
