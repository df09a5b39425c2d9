// A stand-in for wapulse's ingest endpoint on loopback: records every request
// and answers with what the test's `respond` says.

import http from 'node:http';

export async function fakeWapulse(respond = () => ({ status: 200 })) {
  const requests = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      let events = null;
      try {
        events = JSON.parse(body);
      } catch {
        /* keep null */
      }
      const r = { at: Date.now(), method: req.method, url: req.url, headers: req.headers, events };
      requests.push(r);
      const answer = respond(r, requests.length - 1) ?? { status: 200 };
      for (const w of waiters.splice(0)) w();
      r.status = answer.destroy ? 0 : (answer.status ?? 200);
      if (answer.destroy) {
        req.socket.destroy();
        return;
      }
      const status = answer.status ?? 200;
      const payload =
        answer.body !== undefined
          ? JSON.stringify(answer.body)
          : status === 200
            ? JSON.stringify({ accepted: events?.length ?? 0, duplicates: 0 })
            : JSON.stringify({ error: 'refused' });
      res.writeHead(status, { 'content-type': 'application/json', ...(answer.headers ?? {}) });
      res.end(payload);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    /** every event of every request answered 200, in order */
    delivered() {
      return requests.filter((r) => r.status === 200).flatMap((r) => r.events ?? []);
    },
    async close() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
