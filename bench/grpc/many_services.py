"""A gRPC server offering SERVICES services (50 by default) by reflection, for bench/grpc.sh.

Writes a .proto with that many services (three unary methods each, over a few shared
messages), compiles it with grpcio-tools, registers the services with grpcio-reflection
(the methods are not implemented: discovery only reads descriptors), prints `PORT <n>` once
serving on 127.0.0.1, and exits when its standard input closes.
"""
import os
import sys
import tempfile
import threading
from concurrent import futures

import grpc
import grpc_tools
from grpc_tools import protoc
from grpc_reflection.v1alpha import reflection

SERVICES = int(os.environ.get("SERVICES", "50"))
OUT = tempfile.mkdtemp(prefix="epoxy-grpc-bench-")
WKT = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")

lines = [
    'syntax = "proto3";',
    "package bench.v1;",
    'import "google/protobuf/timestamp.proto";',
    "message Key { int64 id = 1; string name = 2; }",
    "message Item { int64 id = 1; string name = 2; repeated string tags = 3;"
    " google.protobuf.Timestamp created = 4; map<string, string> labels = 5; }",
    "message Page { repeated Item items = 1; string next = 2; }",
]
for i in range(SERVICES):
    lines.append(
        f"service Service{i:03d} {{ rpc Get{i:03d}(Key) returns (Item); "
        f"rpc List{i:03d}(Key) returns (Page); rpc Put{i:03d}(Item) returns (Key); }}"
    )
with open(os.path.join(OUT, "many.proto"), "w") as f:
    f.write("\n".join(lines) + "\n")
if protoc.main(["protoc", f"-I{OUT}", f"-I{WKT}", f"--python_out={OUT}", "many.proto"]) != 0:
    sys.exit("protoc failed")
sys.path.insert(0, OUT)
import many_pb2  # noqa: E402

names = [s.full_name for s in many_pb2.DESCRIPTOR.services_by_name.values()]
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
reflection.enable_server_reflection(names + [reflection.SERVICE_NAME], server)
port = server.add_insecure_port(f"127.0.0.1:{os.environ.get('PORT', '0')}")
server.start()
print(f"PORT {port}", flush=True)
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
server.wait_for_termination()
