/*
 * The SMTP door (`serve --smtp-port`): mail for <inbox-id>@any-domain or
 * <inbox-id>+<tag>@any-domain becomes an event of that inbox. Unknown inboxes are
 * refused at RCPT TO; the reply to DATA is 250 only once the message is committed and
 * fsynced in every recipient inbox (smtp-delivery.ts). Protocol work (pipelining, dot
 * unstuffing, STARTTLS, AUTH, SIZE) is the smtp-server package's. See docs/email.md.
 */
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { SMTPServer, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from "smtp-server";
import type { SmtpConfig } from "../config.js";
import { parseEmailRecipient } from "../core/email-event.js";
import { looksLikeInboxId } from "../core/ids.js";
import type { Store } from "../storage/store.js";
import { deliverMessage, oncePerInbox, type MailRecipient } from "./smtp-delivery.js";
import type { Metrics } from "../metrics/metrics.js";

export interface SmtpDoorDeps {
  store: Store;
  config: SmtpConfig;
  /** An inbox's limit when its settings name none (the webhooks' default). */
  defaultMaxBodyBytes: number;
  logger: Logger;
  metrics?: Metrics;
}

export interface RunningSmtpDoor {
  url: string;
  /** Stops accepting, lets DATA commits in flight answer, then closes every connection with 421. */
  close(): Promise<void>;
}

const SHUTDOWN_GRACE_MS = 10_000;

function smtpError(responseCode: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode });
}

/** The SIZE a client declared with MAIL FROM (RFC 1870), if any. */
function declaredSize(session: SMTPServerSession): number | undefined {
  const args = session.envelope.mailFrom ? session.envelope.mailFrom.args : false;
  const size = args ? Number(args.SIZE) : NaN;
  return Number.isFinite(size) ? size : undefined;
}

export async function startSmtpDoor(deps: SmtpDoorDeps): Promise<RunningSmtpDoor> {
  const { store, config, logger } = deps;
  // The inboxes of each session's current transaction, keyed by session id.
  const transactions = new Map<string, MailRecipient[]>();
  const commits = new Set<Promise<void>>();
  let shuttingDown = false;
  // Set once the last connections were told 421: a DATA ending after that is not committed.
  let connectionsClosed = false;
  const limitOf = (recipient: MailRecipient) =>
    Math.min(recipient.inbox.settings.maxBodyBytes ?? deps.defaultMaxBodyBytes, config.maxMessageBytes);

  const tls =
    config.tlsCertFile && config.tlsKeyFile ? { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) } : undefined;
  const disabledCommands = [...(tls ? [] : ["STARTTLS"]), ...(config.auth ? [] : ["AUTH"])];

  const options: SMTPServerOptions = {
    ...(tls ?? {}),
    disabledCommands,
    authOptional: !config.auth,
    authMethods: ["PLAIN", "LOGIN"],
    size: config.maxMessageBytes,
    // The decision is ours, per inbox, in onData.
    rejectOversized: false,
    // No DNS lookups on the ingest path (and none aimed anywhere by tests).
    disableReverseLookup: true,
    maxClients: config.maxClients,
    maxRecipients: 100,
    socketTimeout: config.socketTimeoutMs,
    // Commands before authenticating: EHLO, STARTTLS, EHLO again, AUTH, with slack.
    maxAllowedUnauthenticatedCommands: 20,
    logger: false,
    onAuth(auth, _session, callback) {
      const ok =
        config.auth &&
        (auth.method === "PLAIN" || auth.method === "LOGIN") &&
        auth.username === config.auth.user &&
        auth.password === config.auth.password;
      if (!ok) return callback(smtpError(535, "authentication failed"));
      callback(null, { user: auth.username });
    },
    onMailFrom(_address, session, callback) {
      if (shuttingDown) return callback(smtpError(421, "shutting down, try again later"));
      transactions.set(session.id, []);
      callback();
    },
    onRcptTo(address, session, callback) {
      const recipient = parseEmailRecipient(address.address);
      if (!recipient || !looksLikeInboxId(recipient.inboxId)) return callback(smtpError(550, "no such inbox"));
      store.getInbox(recipient.inboxId).then(
        (inbox) => {
          if (!inbox) return callback(smtpError(550, "no such inbox"));
          const accepted = { address: address.address, inbox };
          const size = declaredSize(session);
          if (size !== undefined && size > limitOf(accepted))
            return callback(smtpError(552, `message size exceeds this inbox's limit of ${limitOf(accepted)} bytes`));
          transactions.get(session.id)?.push(accepted) ?? transactions.set(session.id, [accepted]);
          callback();
        },
        (error: unknown) => {
          logger.warn({ err: error }, "smtp: inbox lookup failed");
          callback(smtpError(451, "storage is unavailable, try again later"));
        },
      );
    },
    onData(stream, session, callback) {
      const recipients = oncePerInbox(transactions.get(session.id) ?? []);
      transactions.delete(session.id);
      receiveAndCommit(stream, session, recipients, callback);
    },
    onClose(session) {
      transactions.delete(session.id);
    },
  };

  function receiveAndCommit(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    recipients: MailRecipient[],
    callback: (error?: Error | null, message?: string) => void,
  ): void {
    // The smallest limit of the recipients' inboxes applies: there is one reply to DATA.
    const limit = Math.min(...recipients.map(limitOf));
    const chunks: Buffer[] = [];
    let length = 0;
    stream.on("data", (chunk: Buffer) => {
      length += chunk.length;
      // Past the limit nothing more is kept; the rest is read and dropped.
      if (length <= limit) chunks.push(chunk);
    });
    const started = Date.now();
    let answered = false;
    const answer = (error?: Error | null, message?: string) => {
      if (answered) return;
      answered = true;
      // One line per message, like the HTTP request log: who, where, how big, what they were told.
      const code = error ? ((error as { responseCode?: number }).responseCode ?? 451) : 250;
      deps.metrics?.countSmtpMessage(code);
      logger.info(
        {
          smtp: {
            session: session.id,
            remoteAddress: session.remoteAddress,
            inboxes: recipients.map(({ inbox }) => inbox.id),
            bytes: length,
            code,
            ms: Date.now() - started,
          },
        },
        "smtp message",
      );
      callback(error, message);
    };
    stream.once("error", (error) => answer(smtpError(451, `receiving failed: ${error.message}`)));
    stream.once("end", () => {
      if (connectionsClosed) {
        answer(smtpError(421, "shutting down, try again later"));
        return;
      }
      if (length > limit || stream.sizeExceeded) {
        answer(smtpError(552, `message exceeds this inbox's limit of ${limit} bytes`));
        return;
      }
      const envelope = {
        mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
        ...(session.hostNameAppearsAs ? { helo: session.hostNameAppearsAs } : {}),
        remoteAddress: session.remoteAddress,
        tls: session.secure,
        ...(typeof session.user === "string" ? { authUser: session.user } : {}),
      };
      const commit = deliverMessage(store, Buffer.concat(chunks, length), envelope, recipients).then(
        (outcome) => {
          if (outcome.reply === "accepted") {
            answer(null, `stored as ${outcome.seqs.map(({ seq }) => seq).join(", ")}`);
          } else if (outcome.reply === "no_inbox") {
            answer(smtpError(550, "no such inbox"));
          } else {
            logger.error({ err: outcome.error, committedInboxes: outcome.committed }, "smtp: storing a message failed; answered 451");
            answer(smtpError(451, "storage is unavailable, nothing acknowledged; try again later"));
          }
        },
        (error: unknown) => {
          logger.error({ err: error }, "smtp: storing a message failed; answered 451");
          answer(smtpError(451, "storage is unavailable, try again later"));
        },
      );
      commits.add(commit);
      void commit.finally(() => commits.delete(commit));
    });
  }

  const server = new SMTPServer(options);
  server.on("error", (error) => logger.debug({ err: error }, "smtp: connection error"));
  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(config.port, config.host, () => {
      server.server.off("error", reject);
      resolve();
    });
  });
  const address = server.server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `smtp://${host}:${address.port}`;
  logger.info({ smtpUrl: url, starttls: Boolean(tls), auth: Boolean(config.auth) }, "tailhook is taking mail");

  return {
    url,
    async close() {
      shuttingDown = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Every DATA being committed gets its answer before its connection goes (within the
      // HTTP side's grace period: a store that never answers must not hold the exit).
      const deadline = Date.now() + SHUTDOWN_GRACE_MS;
      while (commits.size > 0 && Date.now() < deadline) {
        await Promise.race([
          Promise.allSettled([...commits]),
          new Promise((resolve) => setTimeout(resolve, deadline - Date.now()).unref()),
        ]);
      }
      connectionsClosed = true;
      for (const connection of server.connections) {
        connection.send(421, "shutting down, try again later");
        connection.close();
      }
      await closed;
    },
  };
}
