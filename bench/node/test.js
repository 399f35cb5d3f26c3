'use strict';
// Checks that the Node reference server speaks the protocols of
// PROTOCOLS.md (the parts the benchmarks rely on, and a little more).
// Run: cd bench/node && npm ci && npm test
// TARGET=HOST:PORT npm test runs the same checks against another server
// (e.g. roomd), to see that both speak the same protocols.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { spawn } = require('node:child_process');
const path = require('node:path');
const WebSocket = require('ws');

let server;
let base;

test.before(async () => {
  if (process.env.TARGET) {
    base = process.env.TARGET;
    return;
  }
  server = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--listen', '127.0.0.1:0']);
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start')), 5000);
    server.stdout.on('data', (d) => {
      const m = /listening on [\d.]+:(\d+)/.exec(d.toString());
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  base = `127.0.0.1:${port}`;
});

test.after(() => server && server.kill());

// A client whose messages can be awaited in order, each within 2 s.
function client(route) {
  const ws = new WebSocket(`ws://${base}${route}`);
  const queue = [];
  const waiters = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    if (waiters.length) waiters.shift()(msg);
    else queue.push(msg);
  });
  ws.next = () =>
    queue.length
      ? Promise.resolve(queue.shift())
      : new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no message on ${route}`)), 2000);
          waiters.push((m) => {
            clearTimeout(timer);
            resolve(m);
          });
        });
  ws.put = (msg) => ws.send(JSON.stringify(msg));
  ws.opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return ws;
}

test('stream: join, announce, chat to all, no impersonation', async () => {
  const a = client('/stream');
  const b = client('/stream');
  await Promise.all([a.opened, b.opened]);
  a.put({ type: 'join-room', roomId: 'r', userId: 'ua', userName: 'A' });
  assert.deepStrictEqual(await a.next(), {
    type: 'room-joined',
    roomId: 'r',
    participants: [{ userId: 'ua', userName: 'A', isStreaming: false }],
  });
  b.put({ type: 'join-room', roomId: 'r', userId: 'ub', userName: 'B' });
  assert.strictEqual((await b.next()).participants.length, 2);
  assert.deepStrictEqual(await a.next(), {
    type: 'user-joined',
    roomId: 'r',
    participant: { userId: 'ub', userName: 'B', isStreaming: false },
  });
  a.put({ type: 'chat-message', roomId: 'r', userId: 'ua', content: 'hi' });
  for (const c of [a, b]) {
    const m = await c.next();
    assert.strictEqual(m.type, 'chat-message');
    assert.strictEqual(m.userName, 'A');
    assert.strictEqual(m.content, 'hi');
    assert.match(m.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
  b.put({ type: 'chat-message', roomId: 'r', userId: 'ua', content: 'fake' });
  assert.deepStrictEqual(await b.next(), { type: 'error', message: 'userId does not match this connection' });
  b.close();
  assert.deepStrictEqual(await a.next(), { type: 'user-left', roomId: 'r', userId: 'ub' });
  a.close();
});

test('signal: create, join, relay verbatim, peer-left', async () => {
  const host = client('/signal');
  const guest = client('/signal');
  await Promise.all([host.opened, guest.opened]);
  host.put({ type: 'create-room' });
  const created = await host.next();
  assert.strictEqual(created.type, 'room-created');
  assert.match(created.roomId, /^[1-9]\d{5}$/);
  guest.put({ type: 'join-room', roomId: created.roomId });
  const joined = { type: 'peer-joined', roomId: created.roomId };
  assert.deepStrictEqual(await host.next(), joined);
  assert.deepStrictEqual(await guest.next(), joined);
  const offer = { type: 'signal', roomId: created.roomId, signal: { sdp: 'x', n: [1, 2] } };
  host.put(offer);
  assert.deepStrictEqual(await guest.next(), offer);
  const third = client('/signal');
  await third.opened;
  third.put({ type: 'signal', roomId: created.roomId, x: 1 });
  assert.deepStrictEqual(await third.next(), { type: 'error', message: 'Not a member of this room' });
  guest.close();
  assert.deepStrictEqual(await host.next(), { type: 'peer-left', roomId: created.roomId });
  host.close();
  third.close();
});

test('presence: userId required, numeric ids, online announcements', async () => {
  const refused = new WebSocket(`ws://${base}/presence`);
  const status = await new Promise((resolve) => {
    refused.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    refused.on('error', () => {});
  });
  assert.strictEqual(status, 400);
  const a = client('/presence?userId=42');
  const first = await a.next();
  assert.strictEqual(first.type, 'CONNECTION_ESTABLISHED');
  assert.strictEqual(first.userId, 42);
  assert.match(first.connectionId, /^42-\d+$/);
  assert.deepStrictEqual((await a.next()).userIds, [42]);
  const b = client('/presence?userId=bob');
  await b.next();
  assert.deepStrictEqual((await b.next()).userIds, [42, 'bob']);
  assert.strictEqual((await a.next()).type, 'USER_ONLINE');
  b.put({ type: 'PING' });
  assert.strictEqual((await b.next()).type, 'PONG');
  b.close();
  const off = await a.next();
  assert.deepStrictEqual([off.type, off.userId], ['USER_OFFLINE', 'bob']);
  a.close();
});

test('chat: greeting, broadcast to all, echo, invalid format', async () => {
  const a = client('/chat');
  const b = client('/chat');
  assert.strictEqual((await a.next()).type, 'system');
  assert.strictEqual((await b.next()).type, 'system');
  a.put({ type: 'chat', payload: { text: 'yo' } });
  assert.deepStrictEqual((await a.next()).payload, { text: 'yo' });
  assert.deepStrictEqual((await b.next()).payload, { text: 'yo' });
  a.put({ type: 'custom', payload: 7 });
  const echo = await a.next();
  assert.deepStrictEqual([echo.type, echo.payload], ['custom', 7]);
  a.send('not json');
  assert.deepStrictEqual((await a.next()).payload, { message: 'Invalid message format' });
  a.close();
  b.close();
});

test('scratch: join, sync to others, leave', async () => {
  const a = client('/scratch');
  const b = client('/scratch');
  await Promise.all([a.opened, b.opened]);
  a.put({ type: 'join', sessionId: 's' });
  const ja = await a.next();
  assert.match(ja.userId, /^u-[0-9a-f]{16}$/);
  assert.deepStrictEqual(ja.users, []);
  b.put({ type: 'join', sessionId: 's' });
  const jb = await b.next();
  assert.deepStrictEqual(jb.users, [ja.userId]);
  assert.deepStrictEqual(await a.next(), { type: 'user-joined', sessionId: 's', userId: jb.userId });
  b.put({ type: 'sync', sessionId: 's', changes: [{ op: 1 }] });
  assert.deepStrictEqual(await a.next(), { type: 'sync', sessionId: 's', userId: jb.userId, changes: [{ op: 1 }] });
  b.put({ type: 'leave' });
  assert.deepStrictEqual(await b.next(), { type: 'left', sessionId: 's' });
  assert.deepStrictEqual(await a.next(), { type: 'user-left', sessionId: 's', userId: jb.userId });
  a.close();
  b.close();
});

test('http: health and unknown paths', async () => {
  const get = (p) =>
    new Promise((resolve, reject) => {
      http
        .get(`http://${base}${p}`, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve([res.statusCode, body]));
        })
        .on('error', reject);
    });
  const [code, body] = await get('/health');
  assert.strictEqual(code, 200);
  assert.strictEqual(JSON.parse(body).status, 'ok');
  assert.strictEqual((await get('/nope'))[0], 404);
  assert.strictEqual((await get('/stream'))[0], 200);
});
