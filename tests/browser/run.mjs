// roomd in a real browser: headless Debian Chromium, trusting the test CA
// through an NSS database of its own, opens wss:// to every route from page
// JavaScript on an allowed origin, and once from an origin that is not.
//
// Run by tests/server/browser.rs; by hand:
//
//   node tests/browser/run.mjs --ca tests/data/tls/ca.pem [--jwt-secret-file F --sub u1]
//
// It talks over stdin and stdout, one JSON object a line:
//   1. it serves two pages on 127.0.0.1 (ephemeral ports) and prints
//      {"origins":{"allowed":"http://127.0.0.1:P","denied":"http://127.0.0.1:Q"}}
//      (roomd is then started with --allow-origin set to the first);
//   2. it reads {"wss":"wss://localhost:PORT"} from stdin;
//   3. it closes the browser, prints {"results":{...}} and exits 0, or
//      prints {"error":"..."} and exits 1. Every wait is bounded.
//
// With --jwt-secret-file, it mints an HS256 token (sub, iat, exp) with
// node:crypto and opens every socket as
// new WebSocket(url, ["roomd", "roomd.token." + token]); without, as
// new WebSocket(url).

import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const OVERALL_MS = 90_000; // the whole run, browser start included
const STEP_MS = 10_000; // one route's exchange, or waiting for roomd's address
const WRONG_NAME = "wrong-name.roomd.test";
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // A name that is not on the test certificate, for the check that
  // Chromium really verifies it.
  `--host-resolver-rules=MAP ${WRONG_NAME} 127.0.0.1`,
];

function parseArgs(argv) {
  const args = {
    ca: null,
    chromium: process.env.ROOMD_CHROMIUM || "/usr/bin/chromium",
    jwtSecretFile: null,
    sub: "u1",
  };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case "--ca": args.ca = value(); break;
      case "--chromium": args.chromium = value(); break;
      case "--jwt-secret-file": args.jwtSecretFile = value(); break;
      case "--sub": args.sub = value(); break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!args.ca) throw new Error("--ca FILE is required (the CA that signed roomd's certificate)");
  return args;
}

function print(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}

// ---- an HS256 token, as an application's backend would mint it ----

const b64url = (data) => Buffer.from(data).toString("base64url");

// The secret as roomd reads it: the file's bytes, less one final line
// break when the file is text.
function secretOf(bytes) {
  const text = new TextDecoder("utf-8", { fatal: true });
  try {
    text.decode(bytes);
  } catch {
    return bytes;
  }
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  return bytes.subarray(0, end);
}

function mintToken(secretFile, sub) {
  const secret = secretOf(readFileSync(secretFile));
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = b64url(JSON.stringify({ sub, iat: now, exp: now + 300 }));
  const signature = createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

// ---- trust: an NSS database holding the test CA, as a user's own ----

// Chromium on Linux reads certificate trust from $HOME/.pki/nssdb; this
// makes one in a fresh HOME with only the test CA trusted for TLS servers.
function nssHome(caFile) {
  const home = mkdtempSync(join(tmpdir(), "roomd-browser-"));
  const db = join(home, ".pki", "nssdb");
  mkdirSync(db, { recursive: true });
  const certutil = (args) => execFileSync("certutil", ["-d", `sql:${db}`, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  certutil(["-N", "--empty-password"]);
  certutil(["-A", "-t", "C,,", "-n", "roomd-test", "-i", caFile]);
  return home;
}

// ---- the pages ----

function servePage(name) {
  const html = `<!doctype html><meta charset="utf-8"><title>roomd ${name}</title><p>${name}</p>`;
  const server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(html);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      resolve({ server, origin: `http://127.0.0.1:${server.address().port}` });
    });
  });
}

// ---- what runs in the page ----

// One route's first exchange, in page JavaScript. `steps` alternates what
// to send and which message types to wait for; returns what happened.
// (Runs in the browser: only what page.evaluate can serialise crosses.)
function exchangeInPage({ url, token, steps, timeoutMs }) {
  return new Promise((resolve) => {
    const result = { url, opened: false, protocol: null, received: [], error: null, sawError: false, closeCode: null };
    let ws;
    try {
      ws = token ? new WebSocket(url, ["roomd", "roomd.token." + token]) : new WebSocket(url);
    } catch (e) {
      result.error = "constructor: " + e;
      return resolve(result);
    }
    let done = false;
    const finish = (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) result.error = error;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close();
      resolve(result);
    };
    const timer = setTimeout(() => finish("timed out waiting for " + JSON.stringify(steps[step] || null)), timeoutMs);
    let step = 0;
    // Sends until the next step that waits; finishes when none is left.
    const advance = () => {
      while (step < steps.length && steps[step].send) {
        ws.send(JSON.stringify(steps[step].send));
        step++;
      }
      if (step >= steps.length) finish(null);
    };
    ws.onopen = () => {
      result.opened = true;
      result.protocol = ws.protocol;
      advance();
    };
    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return finish("not JSON: " + String(event.data).slice(0, 200));
      }
      result.received.push(message);
      const want = steps[step];
      if (want && want.expect === message.type) {
        step++;
        advance();
      }
    };
    // A refused handshake fires error then close (1006): the close says
    // the code.
    ws.onerror = () => {
      result.sawError = true;
    };
    ws.onclose = (event) => {
      result.closeCode = event.code;
      finish(result.opened ? "closed with " + event.code : "failed to open");
    };
  });
}

// Each route's first messages (PROTOCOLS.md).
function routes(sub) {
  return {
    scratch: {
      path: "/scratch",
      steps: [{ send: { type: "join", sessionId: "browser-session" } }, { expect: "joined" }],
    },
    signal: {
      path: "/signal",
      steps: [{ send: { type: "create-room" } }, { expect: "room-created" }],
    },
    presence: {
      path: `/presence?userId=${encodeURIComponent(sub)}`,
      steps: [{ expect: "CONNECTION_ESTABLISHED" }, { expect: "ONLINE_USERS" }],
    },
    chat: {
      path: "/chat",
      steps: [{ expect: "system" }, { send: { type: "chat", payload: "hello from chromium" } }, { expect: "chat" }],
    },
    stream: {
      path: "/stream",
      steps: [
        { send: { type: "join-room", roomId: "browser-room", userId: sub, userName: "Browser" } },
        { expect: "room-joined" },
      ],
    },
  };
}

// ---- the run ----

async function readLine(rl, timeoutMs) {
  let timer;
  const line = new Promise((resolve, reject) => {
    rl.once("line", resolve);
    rl.once("close", () => reject(new Error("stdin closed before roomd's address came")));
  });
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("no roomd address on stdin in time")), timeoutMs);
  });
  try {
    return await Promise.race([line, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const token = args.jwtSecretFile ? mintToken(args.jwtSecretFile, args.sub) : null;
  const allowed = await servePage("allowed");
  const denied = await servePage("denied");
  const cleanup = [() => allowed.server.close(), () => denied.server.close()];
  let browser;
  try {
    const home = nssHome(args.ca);
    cleanup.push(() => rmSync(home, { recursive: true, force: true }));

    print({ origins: { allowed: allowed.origin, denied: denied.origin } });
    const rl = createInterface({ input: process.stdin });
    cleanup.push(() => rl.close());
    const { wss } = JSON.parse(await readLine(rl, STEP_MS * 3));
    if (!/^wss:\/\/[^/]+$/.test(wss)) throw new Error(`not a wss:// origin: ${wss}`);

    const started = Date.now();
    browser = await chromium.launch({
      executablePath: args.chromium,
      headless: true,
      args: CHROMIUM_FLAGS,
      env: { ...process.env, HOME: home },
      timeout: 30_000,
    });
    const context = await browser.newContext(); // a fresh profile: Playwright's own temp dir
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    const launchMs = Date.now() - started;

    const results = {
      browser: browser.version(),
      launch_ms: launchMs,
      token: token !== null,
      allowed_origin: allowed.origin,
      denied_origin: denied.origin,
      routes: {},
    };

    await page.goto(allowed.origin + "/");
    results.page_origin = await page.evaluate(() => location.origin);
    for (const [name, route] of Object.entries(routes(args.sub))) {
      results.routes[name] = await page.evaluate(exchangeInPage, {
        url: wss + route.path,
        token,
        steps: route.steps,
        timeoutMs: STEP_MS,
      });
    }
    if (token) {
      // Auth on: the same allowed page without a token is refused.
      results.without_token = await page.evaluate(exchangeInPage, {
        url: wss + "/chat",
        token: null,
        steps: [{ expect: "system" }],
        timeoutMs: STEP_MS,
      });
    }

    // The certificate is checked: the same server under a name the
    // certificate does not carry is refused by the browser.
    const wrongName = wss.replace(/^wss:\/\/[^:/]+/, `wss://${WRONG_NAME}`);
    results.wrong_name = await page.evaluate(exchangeInPage, {
      url: wrongName + "/chat",
      token,
      steps: [{ expect: "system" }],
      timeoutMs: STEP_MS,
    });

    // An origin roomd does not allow: the handshake is refused.
    await page.goto(denied.origin + "/");
    results.denied = await page.evaluate(exchangeInPage, {
      url: wss + "/chat",
      token,
      steps: [{ expect: "system" }],
      timeoutMs: STEP_MS,
    });
    results.total_ms = Date.now() - started;
    return results;
  } finally {
    if (browser) await browser.close().catch(() => {});
    for (const f of cleanup) f();
  }
}

const watchdog = setTimeout(() => {
  print({ error: `the run took over ${OVERALL_MS} ms` });
  process.exit(1);
}, OVERALL_MS);

main().then(
  (results) => {
    // Printed once the browser is closed and the pages are down.
    print({ results });
    clearTimeout(watchdog);
    process.exit(0);
  },
  (e) => {
    print({ error: String(e && e.stack ? e.stack : e) });
    process.exit(1);
  },
);
