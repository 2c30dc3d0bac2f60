/*
 * The smtp phase's load generator, a child process of its own (so its work is not
 * counted against the server's in the bench process): N raw SMTP connections over
 * node:net, each sending the same message back to back with PIPELINING (MAIL, RCPT
 * and DATA in one write, then the message and the dot), timing each message from its
 * MAIL FROM to the 250 after the dot. Reports over IPC.
 */
import { connect, type Socket } from "node:net";
import { summarize } from "./stats.js";

export interface SmtpLoadRequest {
  host: string;
  port: number;
  recipient: string;
  /** The message, CRLF lines, none starting with "." (so no dot-stuffing is needed). */
  message: string;
  connections: number;
  seconds: number;
}

export interface SmtpLoadResult {
  messagesPerSecond: number;
  p50: number;
  p99: number;
  /** Messages answered with anything but 250. */
  refused: number;
  errors: number;
}

/** Reads complete SMTP replies (a multi-line reply ends at "ddd "). */
class ReplyReader {
  private buffered = "";
  private readonly replies: string[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;

  constructor(socket: Socket) {
    socket.once("close", () => {
      this.ended = true;
      this.waiter?.();
    });
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.buffered += chunk;
      let end: number;
      while ((end = this.buffered.indexOf("\r\n")) !== -1) {
        const line = this.buffered.slice(0, end);
        this.buffered = this.buffered.slice(end + 2);
        if (line[3] !== "-") this.replies.push(line);
      }
      this.waiter?.();
    });
  }

  async next(count = 1): Promise<string[]> {
    while (this.replies.length < count) {
      if (this.ended) throw new Error("the connection closed");
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    this.waiter = undefined;
    return this.replies.splice(0, count);
  }
}

async function runConnection(
  request: SmtpLoadRequest,
  deadline: number,
  latencies: number[],
  counts: { refused: number; errors: number },
): Promise<void> {
  const socket = connect(request.port, request.host);
  socket.setNoDelay(true);
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => counts.errors++);
  const replies = new ReplyReader(socket);
  try {
    await replies.next();
    socket.write("EHLO load.bench\r\n");
    await replies.next();
    const envelope = `MAIL FROM:<load@bench.test>\r\nRCPT TO:<${request.recipient}>\r\nDATA\r\n`;
    const data = `${request.message}.\r\n`;
    while (Date.now() < deadline) {
      const started = process.hrtime.bigint();
      socket.write(envelope);
      const [mail, rcpt, dataReply] = await replies.next(3);
      if (!mail!.startsWith("250") || !rcpt!.startsWith("250") || !dataReply!.startsWith("354")) {
        counts.refused++;
        socket.write("RSET\r\n");
        await replies.next();
        continue;
      }
      socket.write(data);
      const [done] = await replies.next();
      if (done!.startsWith("250")) latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      else counts.refused++;
    }
    socket.write("QUIT\r\n");
    await replies.next();
  } catch {
    counts.errors++;
  }
  socket.end();
  await closed;
}

async function runSmtpLoad(request: SmtpLoadRequest): Promise<SmtpLoadResult> {
  const latencies: number[] = [];
  const counts = { refused: 0, errors: 0 };
  const started = Date.now();
  const deadline = started + request.seconds * 1000;
  await Promise.all(Array.from({ length: request.connections }, () => runConnection(request, deadline, latencies, counts)));
  const { p50, p99 } = summarize(latencies);
  return { messagesPerSecond: latencies.length / ((Date.now() - started) / 1000), p50, p99, ...counts };
}

process.on("message", (request: SmtpLoadRequest) => {
  runSmtpLoad(request).then(
    (result) => process.send!({ result }),
    (error: unknown) => process.send!({ error: String(error) }),
  );
});
