/* An inbox as the JSON API shows it: built by the server (http/routes/inboxes.ts), read by the client. */
import type { InboxSettingsView } from "./verify/settings.js";

export interface InboxView {
  id: string;
  name: string | null;
  ingestUrl: string;
  streamUrl: string;
  /** Verify secrets are shown as a count (write-only). */
  settings: InboxSettingsView;
  createdAt: string;
  lastSeq: number;
  /** Receive time of the newest event; null when there is none (or retention removed it). */
  lastEventAt: string | null;
  /** With settings.expectEvery: no event arrived within that many seconds. */
  silent: boolean;
  silentSince: string | null;
}
