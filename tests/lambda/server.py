"""An AWS Lambda endpoint for epoxy's tests: Invoke and ListFunctions, every request's
Signature V4 recomputed with botocore's signer (an independent implementation) from the
secret it is given, and refused (403, as AWS does) when it does not match.

Environment: LAMBDA_KEY_ID, LAMBDA_SECRET (the only keys accepted), LAMBDA_REGION.
Prints `PORT <n>` once listening on 127.0.0.1 and exits when its standard input closes.

Functions: `echo` ($LATEST and version 1) answers what it received and how it was called;
`apigw` answers as API Gateway's proxy integration, echoing the event; `fail` raises
(`X-Amz-Function-Error: Unhandled`). ListFunctions answers two functions a page.
"""
import datetime
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KEY_ID = os.environ["LAMBDA_KEY_ID"]
SECRET = os.environ["LAMBDA_SECRET"]
REGION = os.environ.get("LAMBDA_REGION", "us-east-1")
FUNCTIONS = [("apigw", "$LATEST"), ("echo", "$LATEST"), ("echo", "1"), ("fail", "$LATEST")]
AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$"
)


def signature_problem(method, raw_path, headers, body):
    """Why the request's signature is wrong, or None when botocore computes the same."""
    m = AUTH.match(headers.get("authorization", ""))
    if not m:
        return "no SigV4 authorization header"
    key_id, day, region, service, signed, signature = m.groups()
    if key_id != KEY_ID:
        return f"unknown access key {key_id}"
    if region != REGION or service != "lambda":
        return f"credential scope {region}/{service} is not {REGION}/lambda"
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(day):
        return "x-amz-date does not match the credential scope"
    when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    if abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) > 300:
        return "the signature is too old"
    names = signed.split(";")
    if "host" not in names or "x-amz-date" not in names:
        return "host and x-amz-date must be signed"
    req = AWSRequest(
        method=method,
        url="http://" + headers["host"] + raw_path,
        data=body,
        headers={n: headers[n] for n in names if n in headers},
    )
    req.context["timestamp"] = amz_date
    token = headers.get("x-amz-security-token")
    auth = SigV4Auth(Credentials(KEY_ID, SECRET, token), "lambda", REGION)
    expected = auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)
    if expected != signature:
        return "The request signature we calculated does not match the signature you provided."
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, payload, headers=None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        problem = signature_problem(self.command, self.path, headers, body)
        if problem:
            self.answer(403, {"message": problem}, {"x-amzn-errortype": "InvalidSignatureException"})
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if self.command == "GET" and url.path == "/2015-03-31/functions/":
            start = int(query.get("Marker", ["0"])[0])
            page = FUNCTIONS[start:start + 2]
            out = {"Functions": [{"FunctionName": n, "Version": v} for n, v in page]}
            if start + 2 < len(FUNCTIONS):
                out["NextMarker"] = str(start + 2)
            self.answer(200, out)
            return
        m = re.fullmatch(r"/2015-03-31/functions/([^/]+)/invocations", url.path)
        if self.command != "POST" or not m:
            self.answer(404, {"message": f"no such operation: {self.command} {url.path}"})
            return
        name = unquote(m.group(1))
        qualifier = query.get("Qualifier", ["$LATEST"])[0]
        if (name, qualifier) not in FUNCTIONS:
            self.answer(404, {"Type": "User", "message": f"Function not found: {name}:{qualifier}"},
                        {"x-amzn-errortype": "ResourceNotFoundException"})
            return
        style = headers.get("x-amz-invocation-type", "RequestResponse")
        if style == "Event":
            self.answer(202, b"")
            return
        event = json.loads(body) if body else None
        if name == "echo":
            self.answer(200, {"received": event, "qualifier": qualifier, "invocationType": style})
        elif name == "apigw":
            self.answer(200, {
                "statusCode": 201,
                "headers": {"x-from": "lambda", "content-type": "application/json"},
                "body": json.dumps({"method": event["httpMethod"], "path": event["path"],
                                    "query": event["queryStringParameters"], "body": event["body"]}),
                "isBase64Encoded": False,
            })
        else:
            self.answer(200, {"errorMessage": "boom", "errorType": "Error"},
                        {"x-amz-function-error": "Unhandled"})

    do_GET = handle_any
    do_POST = handle_any


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
