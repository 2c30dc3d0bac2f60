/*
 * A private Dovecot (Debian's dovecot-imapd) for tests: its own config, runtime and
 * maildir in a temp folder, listening on 127.0.0.1 only, on free ports for IMAPS
 * (TLS from the first byte, a self-signed certificate made here with openssl) and
 * IMAP (STARTTLS offered; plaintext login allowed, it is loopback). One user with a
 * plaintext password from a passwd-file.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { userInfo } from "node:os";
import { join } from "node:path";
import { freePort, tempDir } from "./processes.js";
import { waitUntil } from "./wait.js";

export interface Dovecot {
  imapsPort: number;
  imapPort: number;
  user: string;
  password: string;
  /** For doveadm -c. */
  configPath: string;
  /** The server's certificate (PEM), to trust as the CA. */
  certificate: string;
  stop(): Promise<void>;
}

/** The uid/gid mail is stored as: the "dovecot" user when we are root (Dovecot refuses uid 0 for mail), else ourselves. */
function mailOwner(): { name: string; uid: number; gid: number } {
  const me = userInfo();
  if (me.uid !== 0) return { name: me.username, uid: me.uid, gid: me.gid };
  const id = (flag: string) => Number(execFileSync("id", [flag, "dovecot"]).toString().trim());
  return { name: "dovecot", uid: id("-u"), gid: id("-g") };
}

/** The IMAPS listener says nothing before the TLS handshake: that it accepts is enough. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      if (text.includes("\r\n")) {
        socket.destroy();
        resolve(text.startsWith("* OK"));
      }
    });
    socket.on("error", () => resolve(false));
  });
}

export async function startDovecot(user = "alice", password = "imap pässword-not-to-leak-7"): Promise<Dovecot> {
  const dir = tempDir("tailhook-dovecot-");
  // Dovecot's login and auth processes run as other users; they must be able to reach the folder.
  chmodSync(dir, 0o755);
  const owner = mailOwner();
  const mail = join(dir, "mail");
  mkdirSync(mail);
  chownSync(mail, owner.uid, owner.gid);
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ],
    { stdio: "ignore" },
  );
  writeFileSync(join(dir, "passwd"), `${user}:{PLAIN}${password}\n`);
  const [imapsPort, imapPort] = [await freePort(), await freePort()];
  const unprivileged = userInfo().uid !== 0 ? `default_internal_user = ${owner.name}\ndefault_login_user = ${owner.name}\n` : "";
  writeFileSync(
    join(dir, "dovecot.conf"),
    `protocols = imap
listen = 127.0.0.1
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
${unprivileged}ssl = yes
ssl_cert = <${dir}/cert.pem
ssl_key = <${dir}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
# A test's wrong password must not slow down the next logins from 127.0.0.1 (no failure delay, no penalty).
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN ${dir}/passwd
}
userdb {
  driver = static
  args = uid=${owner.uid} gid=${owner.gid} home=${mail}/%u
}
mail_location = maildir:~/Maildir
first_valid_uid = 1
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${imapsPort}
    ssl = yes
  }
}
service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
`,
  );
  const child: ChildProcess = spawn("dovecot", ["-F", "-c", join(dir, "dovecot.conf")], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    await waitUntil(async () => child.exitCode === null && (await greets(imapPort)) && (await accepts(imapsPort)), "dovecot to listen");
  } catch {
    child.kill("SIGKILL");
    let log = "";
    try {
      log = readFileSync(join(dir, "dovecot.log"), "utf8");
    } catch {
      // no log yet
    }
    throw new Error(`dovecot did not start: ${output}\n${log}`);
  }
  return {
    imapsPort,
    imapPort,
    user,
    password,
    configPath: join(dir, "dovecot.conf"),
    certificate: readFileSync(join(dir, "cert.pem"), "utf8"),
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
