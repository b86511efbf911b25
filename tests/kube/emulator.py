"""A Kubernetes API emulator for epoxy's tests: kmock's KubernetesEmulator, extended where
kube-rs needs more than it gives.

Extensions:
- every create/update stamps `metadata.resourceVersion` (a cluster-wide counter), and lists
  carry the current one, as the real API server does (kube-rs watchers rely on both);
- PUT replaces the object (kmock merges) and refuses a stale resourceVersion with 409;
- POST of an existing object is 409 AlreadyExists; a missing object is 404 NotFound;
  both as Kubernetes `Status` objects, which kube-rs parses;
- the resources epoxy uses are declared up front (Gloo's CRDs, Services, Ingresses,
  Namespaces, Leases), so a list of an empty kind works; with `EPOXY_EMULATOR_WITHOUT=P.G,...`
  (like `gateways.gateway.solo.io`) those are left out, as in a cluster that lacks their CRD
  (a list answers 404), and creating a `CustomResourceDefinition` serves its resource from then
  on, as the real API server does;
- `/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH` answers from documents registered
  through `POST /epoxy-test/proxy` (the `apiserver` connector's path);
- `POST /epoxy-test/pause` with `{"seconds": N}` makes every API request fail with 503 for N
  seconds (an API server that goes away and comes back);
- `/api/v1/namespaces/NS/pods/NAME/portforward?ports=P` speaks the kubelet's port-forward
  protocol (WebSocket, subprotocol v4.channel.k8s.io) and connects to the pod's
  `status.podIP` (a local address in tests) on port P, as a kubelet would.

- with `EPOXY_EMULATOR_TLS=CERT:KEY` it serves HTTPS with that certificate (a private CA's,
  as most clusters have), and with `EPOXY_EMULATOR_TOKEN=T` it refuses (401) every request
  without `Authorization: Bearer T`, as an API server with token authentication does.

Run: `python3 emulator.py [PORT]`; prints the port on the first line of stdout.
"""

import asyncio
import itertools
import json
import os
import ssl
import sys
import time

import aiohttp.web
import kmock
from kmock import KubernetesEmulator, Server
from kmock._internal import enums

RESOURCES = [
    "gloo.solo.io/v1/upstreams",
    "gloo.solo.io/v1/upstreamgroups",
    "gateway.solo.io/v1/virtualservices",
    "gateway.solo.io/v1/routetables",
    "gateway.solo.io/v1/gateways",
    "enterprise.gloo.solo.io/v1/authconfigs",
    "ratelimit.solo.io/v1alpha1/ratelimitconfigs",
    "v1/secrets",
    "v1/services",
    "v1/namespaces",
    "v1/endpoints",
    "v1/pods",
    "networking.k8s.io/v1/ingresses",
    "coordination.k8s.io/v1/leases",
    "apiextensions.k8s.io/v1/customresourcedefinitions",
]


def status(code, reason, message):
    return aiohttp.web.json_response(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code},
        status=code,
    )


class Emulator(KubernetesEmulator):
    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self._rv = itertools.count(1)
        self._last_rv = 0
        self._proxy = {}
        self._paused_until = 0.0
        without = {w for w in os.environ.get("EPOXY_EMULATOR_WITHOUT", "").split(",") if w}
        for r in RESOURCES:
            group, _, rest = r.rpartition("/")
            plural = rest
            group_name = group.rpartition("/")[0] if "/" in group else ""
            if f"{plural}.{group_name}" in without:
                continue
            _ = self.resources[r]

    def _serve_crd(self, crd):
        """A created CRD makes its resource served (every version it lists)."""
        spec = crd.get("spec", {}) if isinstance(crd, dict) else {}
        plural = spec.get("names", {}).get("plural")
        group = spec.get("group")
        if not plural or not group:
            return
        for v in spec.get("versions", []):
            if v.get("name"):
                _ = self.resources[f"{group}/{v['name']}/{plural}"]

    def _next_rv(self):
        self._last_rv = next(self._rv)
        return str(self._last_rv)

    async def __call__(self, raw):
        token = os.environ.get("EPOXY_EMULATOR_TOKEN")
        if token and raw.headers.get("Authorization") != f"Bearer {token}":
            return status(401, "Unauthorized", "Unauthorized")
        path = raw.path
        if path == "/epoxy-test/proxy" and raw.method == "POST":
            body = await raw.json()
            self._proxy[body["path"]] = (body.get("status", 200), body["body"])
            return aiohttp.web.json_response({"ok": True})
        if path == "/epoxy-test/pause" and raw.method == "POST":
            body = await raw.json()
            self._paused_until = time.monotonic() + float(body["seconds"])
            return aiohttp.web.json_response({"ok": True})
        if time.monotonic() < self._paused_until:
            return status(503, "ServiceUnavailable", "the emulator is paused")
        if path.startswith("/api/v1/namespaces/") and path.endswith("/portforward"):
            return await self._portforward(raw)
        if "/proxy/" in path and path.startswith("/api/v1/namespaces/") and "/services/" in path:
            # /api/v1/namespaces/NS/services/NAME:PORT/proxy/REST
            head, _, rest = path.partition("/proxy")
            key = head + "/proxy" + (rest or "/")
            found = self._proxy.get(key)
            if found is None:
                return aiohttp.web.Response(status=404, text="no such proxied path: " + key)
            code, text = found
            return aiohttp.web.Response(status=code, text=text, content_type="application/json")
        return await super().__call__(raw)

    def _find(self, plural, namespace, name):
        for (resource, ns, n), obj in self._objects.items():
            if resource.plural == plural and ns == namespace and n == name and not obj.deleted:
                return obj.raw
        return None

    async def _portforward(self, raw):
        """The kubelet's port-forward stream for one port: channel 0 carries data, channel 1
        errors; each channel opens with the port number (little-endian u16)."""
        parts = raw.path.split("/")  # ['', 'api', 'v1', 'namespaces', NS, 'pods', NAME, 'portforward']
        namespace, name = parts[4], parts[6]
        pod = self._find("pods", namespace, name)
        if pod is None:
            return status(404, "NotFound", f'pods "{name}" not found')
        ports = [int(p) for p in raw.query.get("ports", "").split(",") if p]
        if len(ports) != 1:
            return status(400, "BadRequest", "the emulator forwards exactly one port")
        port = ports[0]
        ws = aiohttp.web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(raw)
        head = port.to_bytes(2, "little")
        await ws.send_bytes(b"\x00" + head)
        await ws.send_bytes(b"\x01" + head)
        host = pod.get("status", {}).get("podIP", "127.0.0.1")
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as e:
            await ws.send_bytes(b"\x01" + f"error forwarding port {port} to pod {name}: {e}".encode())
            await ws.close()
            return ws

        async def from_pod():
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await ws.send_bytes(b"\x00" + data)
            await ws.close()

        pump = asyncio.ensure_future(from_pod())
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY or len(msg.data) < 2 or msg.data[0] != 0:
                    continue
                writer.write(msg.data[1:])
                await writer.drain()
        finally:
            pump.cancel()
            writer.close()
        return ws

    async def _replace(self, request):
        """PUT on a named object: replace it whole, refusing a stale resourceVersion."""
        key = (request.resource, request.namespace, request.name)
        data = request.data if isinstance(request.data, dict) else {}
        meta = data.setdefault("metadata", {})
        async with self._lock:
            current = self._objects[key] if key in self._objects else None
            if current is None or current.deleted:
                return status(404, "NotFound", f"{request.resource.plural} \"{request.name}\" not found")
            sent = meta.get("resourceVersion")
            have = current.get("metadata", {}).get("resourceVersion")
            if sent and sent != have:
                return status(409, "Conflict",
                              f"Operation cannot be fulfilled on {request.resource.plural} \"{request.name}\": "
                              "the object has been modified; please apply your changes to the latest version and try again")
            meta["resourceVersion"] = self._next_rv()
            for kept in ("uid", "creationTimestamp"):
                if kept in current.get("metadata", {}):
                    meta.setdefault(kept, current["metadata"][kept])
            current.create(data)
            raw = current.raw
            await self._buses[request.resource].put({"type": "MODIFIED", "object": raw})
        return aiohttp.web.json_response(raw)

    async def _handle(self, request):
        if request.resource is not None and request.method == enums.method.PUT and request.name is not None:
            return await self._replace(request)
        if request.resource is not None and request.action == enums.action.FETCH and request.name is not None:
            key = (request.resource, request.namespace, request.name)
            if key not in self._objects or self._objects[key].deleted:
                # The reason kube-rs (and kubectl) look for.
                return status(404, "NotFound", f"{request.resource.plural} \"{request.name}\" not found")
        if request.resource is not None and isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            namespace = request.namespace or meta.get("namespace")
            name = request.name or meta.get("name")
            key = (request.resource, namespace, name)
            async with self._lock:
                current = self._objects[key] if key in self._objects else None
                exists = current is not None and not current.deleted
                if request.action == enums.action.CREATE:
                    if exists:
                        return status(409, "AlreadyExists", f"{request.resource.plural} \"{name}\" already exists")
                    meta["resourceVersion"] = self._next_rv()
                    if request.resource.plural == "customresourcedefinitions":
                        self._serve_crd(request.data)
                    meta.setdefault("uid", f"uid-{self._last_rv}")
                    meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
                elif request.action == enums.action.UPDATE:
                    if not exists:
                        return status(404, "NotFound", f"{request.resource.plural} \"{name}\" not found")
                    meta["resourceVersion"] = self._next_rv()
        elif request.resource is not None and request.action == enums.action.DELETE and request.name is not None:
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                if key not in self._objects or self._objects[key].deleted:
                    return status(404, "NotFound", f"{request.resource.plural} \"{request.name}\" not found")
                self._next_rv()
        return await super()._handle(request)

    async def _serve_list(self, request):
        result = await super()._serve_list(request)
        result["metadata"] = {"resourceVersion": str(self._last_rv)}
        return result


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    tls = os.environ.get("EPOXY_EMULATOR_TLS")
    if tls:
        cert, key = tls.split(":", 1)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        async with Emulator() as emulator:
            runner = aiohttp.web.ServerRunner(aiohttp.web.Server(emulator))
            await runner.setup()
            site = aiohttp.web.TCPSite(runner, "127.0.0.1", port, ssl_context=context)
            await site.start()
            print(site._server.sockets[0].getsockname()[1], flush=True)
            await asyncio.Event().wait()
    async with Emulator() as emulator, Server(emulator, port=port) as server:
        print(server.port, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
