// The WebSocket baselines: a bare `ws` server. With REDIS_CHANNEL set it relays every message
// published on that Redis channel to all its clients (the least a fan-out through Redis can do);
// without, it only holds idle connections (the least memory a connection can cost). Run as a
// child process (bench/lib/child.ts).
import { createClient } from 'redis';
import { WebSocketServer } from 'ws';

const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
const channel = process.env.REDIS_CHANNEL;
const redis = channel ? createClient({ url: process.env.REDIS_URL }) : undefined;
if (redis && channel) {
  await redis.connect();
  await redis.subscribe(channel, (message) => {
    for (const client of server.clients) client.send(message);
  });
}
server.on('listening', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' ? address.port : 0}\n`);
});
process.on('SIGTERM', () => {
  for (const client of server.clients) client.terminate();
  server.close();
  void (redis ? redis.quit() : Promise.resolve()).then(() => process.exit(0));
});
