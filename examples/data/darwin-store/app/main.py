"""darwin-store: a small web shop (HTTP on :8080)."""

from http.server import BaseHTTPRequestHandler, HTTPServer

from models import all_products


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = "\n".join(p.name for p in all_products()).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
