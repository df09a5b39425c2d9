"""A stand-in webhook receiver on loopback for the load scripts: answers
every POST with 200 and appends its body, one JSON line each, to FILE.
Stops by itself after LIFETIME seconds.

    python3 receiver.py PORT FILE LIFETIME"""
import http.server
import sys
import threading

port, path, lifetime = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock, open(path, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
threading.Timer(lifetime, server.shutdown).start()
server.serve_forever()
