// The WebSocket baselines: a bare `ws` server. With REDIS_CHANNEL_PREFIX set it relays every
// message published on `<prefix><topic>` to the clients connected with `?topic=<topic>` (the least
// a fan-out through Redis can do); without, it only holds idle connections (the least memory a
// connection can cost). Run as a child process (bench/lib/child.ts).
import { createClient } from 'redis';
import { WebSocket, WebSocketServer } from 'ws';

const prefix = process.env.REDIS_CHANNEL_PREFIX;
const byTopic = new Map<string, Set<WebSocket>>();
const redis = prefix ? createClient({ url: process.env.REDIS_URL }) : undefined;
if (redis && prefix) {
  await redis.connect();
  await redis.pSubscribe(`${prefix}*`, (message, channel) => {
    for (const client of byTopic.get(channel.slice(prefix.length)) ?? []) client.send(message);
  });
}
// Created once Redis is subscribed, so that `listening` means ready.
const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
if (prefix) {
  server.on('connection', (socket, request) => {
    const topic = new URL(request.url ?? '/', 'http://localhost').searchParams.get('topic') ?? '';
    let clients = byTopic.get(topic);
    if (!clients) byTopic.set(topic, (clients = new Set()));
    clients.add(socket);
    socket.on('close', () => clients.delete(socket));
  });
}
server.on('listening', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => {
  for (const client of server.clients) client.terminate();
  server.close();
  void (redis ? redis.quit() : Promise.resolve()).then(() => process.exit(0));
});
