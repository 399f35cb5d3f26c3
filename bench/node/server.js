'use strict';
// Reference server for the roomd benchmarks: the five protocols of
// /work/shared/PROTOCOLS.md (scratch, signal, presence, chat, stream)
// written the way a competent Node developer would with the `ws` package,
// which is what the five seed servers run on. One process, one event loop,
// each protocol on its own route and namespace, JSON.parse per message and
// JSON.stringify once per broadcast.
//
// Usage: node server.js [--listen HOST:PORT]   (default 127.0.0.1:8080)
//        node server.js --listen HOST:PORT --tls-cert PEM --tls-key PEM
// With --tls-cert and --tls-key it serves the same routes over TLS
// (https.createServer({ cert, key }): wss:// and https://), with Node's
// TLS defaults.

const fs = require('fs');
const http = require('http');
const https = require('https');
const crypto = require('crypto');
const { URL } = require('url');
const { WebSocketServer, WebSocket } = require('ws');

const HEARTBEAT_MS = 30000;
const MAX_ID = 128;

function ts() {
  return new Date().toISOString();
}

function send(ws, msg) {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function sendRaw(ws, data) {
  if (ws.readyState === WebSocket.OPEN) ws.send(data);
}

function parse(data) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return null;
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg) || typeof msg.type !== 'string') {
    return null;
  }
  return msg;
}

function validId(v) {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_ID;
}

// ---------------------------------------------------------------- scratch
function scratchProtocol() {
  const sessions = new Map(); // sessionId -> Map<userId, ws>
  const error = (ws, message) => send(ws, { type: 'error', message });

  function leave(ws) {
    const sid = ws.sessionId;
    if (sid === undefined) return false;
    ws.sessionId = undefined;
    const members = sessions.get(sid);
    if (!members) return true;
    members.delete(ws.userId);
    if (members.size === 0) sessions.delete(sid);
    const note = JSON.stringify({ type: 'user-left', sessionId: sid, userId: ws.userId });
    for (const other of members.values()) sendRaw(other, note);
    send(ws, { type: 'left', sessionId: sid });
    return true;
  }

  return {
    name: 'scratch',
    rooms: () => sessions.size,
    open(ws) {
      ws.userId = 'u-' + crypto.randomBytes(8).toString('hex');
    },
    message(ws, msg) {
      if (!msg) return error(ws, 'Invalid message format');
      switch (msg.type) {
        case 'join': {
          if (!validId(msg.sessionId)) return error(ws, 'Invalid sessionId');
          if (ws.sessionId !== undefined) leave(ws);
          let members = sessions.get(msg.sessionId);
          if (!members) sessions.set(msg.sessionId, (members = new Map()));
          const users = [...members.keys()];
          members.set(ws.userId, ws);
          ws.sessionId = msg.sessionId;
          send(ws, { type: 'joined', sessionId: msg.sessionId, userId: ws.userId, users });
          const note = JSON.stringify({ type: 'user-joined', sessionId: msg.sessionId, userId: ws.userId });
          for (const other of members.values()) if (other !== ws) sendRaw(other, note);
          return;
        }
        case 'sync': {
          if (!validId(msg.sessionId)) return error(ws, 'Invalid sessionId');
          if (ws.sessionId !== msg.sessionId) return error(ws, `Not in session ${msg.sessionId}`);
          const out = JSON.stringify({ type: 'sync', sessionId: msg.sessionId, userId: ws.userId, changes: msg.changes });
          for (const other of sessions.get(msg.sessionId).values()) if (other !== ws) sendRaw(other, out);
          return;
        }
        case 'leave':
          if (!leave(ws)) error(ws, 'Not in a session');
          return;
        default:
          return error(ws, `Unknown message type: ${msg.type}`);
      }
    },
    close(ws) {
      if (ws.sessionId === undefined) return;
      const sid = ws.sessionId;
      const members = sessions.get(sid);
      ws.sessionId = undefined;
      if (!members) return;
      members.delete(ws.userId);
      if (members.size === 0) return sessions.delete(sid);
      const note = JSON.stringify({ type: 'user-left', sessionId: sid, userId: ws.userId });
      for (const other of members.values()) sendRaw(other, note);
    },
  };
}

// ----------------------------------------------------------------- signal
function signalProtocol() {
  const rooms = new Map(); // roomId -> { host, guest }
  const error = (ws, message) => send(ws, { type: 'error', message });

  function freshId() {
    for (;;) {
      const id = String(100000 + crypto.randomInt(900000));
      if (!rooms.has(id)) return id;
    }
  }

  function relay(ws, msg) {
    const room = rooms.get(msg.roomId);
    if (!room) return error(ws, 'Room not found');
    let peer;
    if (room.host === ws) peer = room.guest;
    else if (room.guest === ws) peer = room.host;
    else return error(ws, 'Not a member of this room');
    if (!peer) return error(ws, 'Peer not connected');
    send(peer, msg);
  }

  return {
    name: 'signal',
    rooms: () => rooms.size,
    open(ws) {
      ws.rooms = new Set();
    },
    message(ws, msg) {
      if (!msg) return error(ws, 'Invalid message format');
      switch (msg.type) {
        case 'create-room': {
          const roomId = freshId();
          rooms.set(roomId, { host: ws, guest: null });
          ws.rooms.add(roomId);
          return send(ws, { type: 'room-created', roomId });
        }
        case 'join-room': {
          const room = typeof msg.roomId === 'string' ? rooms.get(msg.roomId) : undefined;
          if (!room || room.guest || room.host === ws) return error(ws, 'Room not found or full');
          room.guest = ws;
          ws.rooms.add(msg.roomId);
          const note = JSON.stringify({ type: 'peer-joined', roomId: msg.roomId });
          sendRaw(room.host, note);
          sendRaw(ws, note);
          return;
        }
        case 'signal':
        case 'chat-message':
          if (typeof msg.roomId !== 'string') return error(ws, 'Room not found');
          return relay(ws, msg);
        default:
          return error(ws, `Unknown message type: ${msg.type}`);
      }
    },
    close(ws) {
      for (const roomId of ws.rooms) {
        const room = rooms.get(roomId);
        if (!room) continue;
        rooms.delete(roomId);
        const peer = room.host === ws ? room.guest : room.host;
        if (peer) {
          peer.rooms.delete(roomId);
          send(peer, { type: 'peer-left', roomId });
        }
      }
      ws.rooms.clear();
    },
  };
}

// --------------------------------------------------------------- presence
function presenceProtocol() {
  const users = new Map(); // userId -> Set<ws>
  const connectionIds = new Set();
  const wireId = (id) => (/^[0-9]{1,15}$/.test(id) ? Number(id) : id);
  const broadcastOthers = (userId, msg) => {
    const data = JSON.stringify(msg);
    for (const [uid, conns] of users) if (uid !== userId) for (const c of conns) sendRaw(c, data);
  };

  return {
    name: 'presence',
    rooms: () => 0,
    users: () => users.size,
    accepts(url) {
      const id = url.searchParams.get('userId');
      return validId(id);
    },
    open(ws, url) {
      const userId = url.searchParams.get('userId');
      ws.userId = userId;
      const base = `${userId}-${Date.now()}`;
      let cid = base;
      for (let n = 2; connectionIds.has(cid); n++) cid = `${base}-${n}`;
      connectionIds.add(cid);
      ws.connectionId = cid;
      let conns = users.get(userId);
      const first = !conns;
      if (first) users.set(userId, (conns = new Set()));
      conns.add(ws);
      send(ws, { type: 'CONNECTION_ESTABLISHED', userId: wireId(userId), timestamp: ts(), connectionId: cid });
      send(ws, { type: 'ONLINE_USERS', userIds: [...users.keys()].map(wireId), timestamp: ts() });
      if (first) broadcastOthers(userId, { type: 'USER_ONLINE', userId: wireId(userId), timestamp: ts() });
    },
    message(ws, msg) {
      if (msg && msg.type === 'PING') return send(ws, { type: 'PONG', timestamp: ts() });
      send(ws, { type: 'ERROR', message: msg ? `Unknown message type: ${msg.type}` : 'Invalid message format' });
    },
    close(ws) {
      connectionIds.delete(ws.connectionId);
      const conns = users.get(ws.userId);
      if (!conns) return;
      conns.delete(ws);
      if (conns.size > 0) return;
      users.delete(ws.userId);
      broadcastOthers(ws.userId, { type: 'USER_OFFLINE', userId: wireId(ws.userId), timestamp: ts() });
    },
  };
}

// ------------------------------------------------------------------- chat
function chatProtocol() {
  const clients = new Set();
  return {
    name: 'chat',
    rooms: () => 0,
    open(ws) {
      clients.add(ws);
      send(ws, { type: 'system', payload: { message: 'Connected to WebSocket server' }, timestamp: ts() });
    },
    message(ws, msg) {
      if (!msg) return send(ws, { type: 'error', payload: { message: 'Invalid message format' }, timestamp: ts() });
      const payload = msg.payload === undefined ? null : msg.payload;
      switch (msg.type) {
        case 'ping':
          return send(ws, { type: 'pong', timestamp: ts() });
        case 'auth':
          return send(ws, { type: 'auth', payload: { success: true, message: 'Authenticated' }, timestamp: ts() });
        case 'chat': {
          const data = JSON.stringify({ type: 'chat', payload, timestamp: ts() });
          for (const c of clients) sendRaw(c, data);
          return;
        }
        default:
          return send(ws, { type: msg.type, payload, timestamp: ts() });
      }
    },
    close(ws) {
      clients.delete(ws);
    },
  };
}

// ----------------------------------------------------------------- stream
function streamProtocol() {
  const rooms = new Map(); // roomId -> Map<userId, { ws, userName, isStreaming }>
  const error = (ws, message) => send(ws, { type: 'error', message });
  const participant = (userId, p) => ({ userId, userName: p.userName, isStreaming: p.isStreaming });
  const broadcast = (room, msg, except) => {
    const data = JSON.stringify(msg);
    for (const p of room.values()) if (p.ws !== except) sendRaw(p.ws, data);
  };

  function leave(ws, roomId) {
    const userId = ws.joined.get(roomId);
    ws.joined.delete(roomId);
    const room = rooms.get(roomId);
    if (!room) return;
    const p = room.get(userId);
    if (!p || p.ws !== ws) return;
    room.delete(userId);
    if (room.size === 0) return rooms.delete(roomId);
    broadcast(room, { type: 'user-left', roomId, userId });
  }

  // The room and participant of a message after join-room, or an error.
  function member(ws, msg) {
    if (!validId(msg.roomId)) return error(ws, 'Invalid roomId');
    const userId = ws.joined.get(msg.roomId);
    if (userId === undefined) return error(ws, `Not in room ${msg.roomId}`);
    if (msg.userId !== undefined && msg.userId !== userId) return error(ws, 'userId does not match this connection');
    const room = rooms.get(msg.roomId);
    return { room, userId, p: room.get(userId) };
  }

  return {
    name: 'stream',
    rooms: () => rooms.size,
    open(ws) {
      ws.joined = new Map(); // roomId -> userId
    },
    message(ws, msg) {
      if (!msg) return error(ws, 'Invalid message format');
      switch (msg.type) {
        case 'join-room': {
          const { roomId, userId, userName } = msg;
          if (!validId(roomId) || !validId(userId) || !validId(userName)) {
            return error(ws, 'join-room needs roomId, userId and userName');
          }
          if (ws.joined.has(roomId)) leave(ws, roomId);
          let room = rooms.get(roomId);
          if (!room) rooms.set(roomId, (room = new Map()));
          const old = room.get(userId);
          if (old && old.ws !== ws) {
            // A reconnect: take the participant over, keep isStreaming.
            old.ws.joined.delete(roomId);
            error(old.ws, 'Replaced by a newer connection');
            old.ws = ws;
            old.userName = userName;
            ws.joined.set(roomId, userId);
            const participants = [...room].map(([id, p]) => participant(id, p));
            return send(ws, { type: 'room-joined', roomId, participants });
          }
          const p = { ws, userName, isStreaming: false };
          room.set(userId, p);
          ws.joined.set(roomId, userId);
          const participants = [...room].map(([id, q]) => participant(id, q));
          send(ws, { type: 'room-joined', roomId, participants });
          broadcast(room, { type: 'user-joined', roomId, participant: participant(userId, p) }, ws);
          return;
        }
        case 'start-streaming':
        case 'stop-streaming': {
          const m = member(ws, msg);
          if (!m) return;
          m.p.isStreaming = msg.type === 'start-streaming';
          const type = m.p.isStreaming ? 'user-streaming-started' : 'user-streaming-stopped';
          return broadcast(m.room, { type, roomId: msg.roomId, userId: m.userId });
        }
        case 'chat-message': {
          if (typeof msg.content !== 'string') return error(ws, 'content must be a string');
          const m = member(ws, msg);
          if (!m) return;
          return broadcast(m.room, {
            type: 'chat-message',
            roomId: msg.roomId,
            userId: m.userId,
            userName: m.p.userName,
            content: msg.content,
            timestamp: ts(),
          });
        }
        case 'leave-room': {
          if (!validId(msg.roomId) || !ws.joined.has(msg.roomId)) return error(ws, `Not in room ${msg.roomId}`);
          return leave(ws, msg.roomId);
        }
        default:
          return error(ws, `Unknown message type: ${msg.type}`);
      }
    },
    close(ws) {
      for (const roomId of [...ws.joined.keys()]) leave(ws, roomId);
    },
  };
}

// ----------------------------------------------------------------- server
function main() {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--listen');
  const listen = i >= 0 ? argv[i + 1] : '127.0.0.1:8080';
  const [host, port] = [listen.slice(0, listen.lastIndexOf(':')), Number(listen.slice(listen.lastIndexOf(':') + 1))];
  const flag = (name) => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const [certFile, keyFile] = [flag('--tls-cert'), flag('--tls-key')];
  if ((certFile === undefined) !== (keyFile === undefined)) {
    console.error('--tls-cert and --tls-key go together');
    process.exit(2);
  }
  const tls = certFile !== undefined ? { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) } : null;
  const started = Date.now();

  const protocols = {};
  for (const p of [scratchProtocol(), signalProtocol(), presenceProtocol(), chatProtocol(), streamProtocol()]) {
    protocols[p.name] = p;
  }
  // Each route its own namespace: /presence and /ws-online-status get
  // separate instances.
  const routes = new Map([
    ['/scratch', protocols.scratch],
    ['/signal', protocols.signal],
    ['/presence', protocols.presence],
    ['/ws-online-status', presenceProtocol()],
    ['/chat', protocols.chat],
    ['/stream', protocols.stream],
  ]);
  const counts = new Map([...routes.values()].map((p) => [p, 0]));

  const json = (res, code, body) => {
    res.writeHead(code, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const handler = (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const total = () => [...counts.values()].reduce((a, b) => a + b, 0);
    const rooms = () => [...routes.values()].reduce((a, p) => a + p.rooms(), 0);
    if (req.method !== 'GET') {
      res.writeHead(405, { 'Content-Type': 'text/plain' });
      return res.end('Method not allowed');
    }
    if (url.pathname === '/health') {
      const per = {};
      for (const [p, n] of counts) {
        const e = per[p.name] || (per[p.name] = { connections: 0, rooms: 0 });
        e.connections += n;
        e.rooms += p.rooms();
      }
      return json(res, 200, {
        status: 'ok',
        uptimeSeconds: Math.floor((Date.now() - started) / 1000),
        connections: total(),
        rooms: rooms(),
        protocols: per,
      });
    }
    if (url.pathname === '/api/ping') {
      return json(res, 200, {
        status: 'ok',
        message: 'WebSocket signaling server is running',
        roomsActive: rooms(),
        clientsConnected: total(),
      });
    }
    if (routes.has(url.pathname)) {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      return res.end('WebSocket server is running');
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('Not found');
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);

  const wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url, 'http://localhost');
    const proto = routes.get(url.pathname);
    const refuse = (code, text) => {
      socket.end(`HTTP/1.1 ${code} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (!proto) return refuse(404, 'Not Found');
    if (proto.accepts && !proto.accepts(url)) return refuse(400, 'Bad Request');
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.isAlive = true;
      ws.on('pong', () => {
        ws.isAlive = true;
      });
      counts.set(proto, counts.get(proto) + 1);
      proto.open(ws, url);
      ws.on('message', (data, isBinary) => {
        ws.isAlive = true;
        if (isBinary) return ws.close(1003, 'Binary frames are not accepted');
        proto.message(ws, parse(data.toString()));
      });
      ws.on('close', () => {
        counts.set(proto, counts.get(proto) - 1);
        proto.close(ws);
      });
      ws.on('error', () => {});
    });
  });

  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      if (!ws.isAlive) {
        ws.terminate();
        continue;
      }
      ws.isAlive = false;
      ws.ping();
    }
  }, HEARTBEAT_MS);
  wss.on('close', () => clearInterval(heartbeat));

  server.listen(port, host, () => {
    console.log(`node reference server listening on ${host}:${server.address().port}${tls ? ' (TLS)' : ''}`);
  });
  const stop = () => {
    for (const ws of wss.clients) ws.close(1001, 'Server shutting down');
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
