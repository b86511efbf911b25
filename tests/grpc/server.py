"""A gRPC server with reflection (grpcio, grpcio-reflection: v1alpha, and v1 on request), for
epoxy's tests.

Compiles shop.proto and books.proto with grpcio-tools into a temporary directory, serves
shop.v1.Pets, shop.v1.Admin (both offered by reflection) and books.v1.Books on 127.0.0.1 (an
ephemeral port unless one is given), prints `PORT <n>` once serving, and exits when its standard input closes (so a test that dies leaves no server).
"""
import os
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
import grpc_tools
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from grpc_tools import protoc
from grpc_reflection.v1alpha import reflection, reflection_pb2

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = tempfile.mkdtemp(prefix="epoxy-grpc-")
WKT = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
if protoc.main(["protoc", f"-I{HERE}", f"-I{WKT}", f"--python_out={OUT}",
                f"--grpc_python_out={OUT}", "shop.proto", "books.proto",
                "google/api/http.proto", "google/api/annotations.proto"]) != 0:
    sys.exit("protoc failed")
sys.path.insert(0, OUT)
import books_pb2  # noqa: E402
import books_pb2_grpc  # noqa: E402
import shop_pb2  # noqa: E402
import shop_pb2_grpc  # noqa: E402

PETS = {
    1: shop_pb2.Pet(id=1, name="Rex", tags=["good", "dog"], kind=shop_pb2.DOG),
    2: shop_pb2.Pet(id=2, name="Tom", tags=["cat"], kind=shop_pb2.CAT),
    3: shop_pb2.Pet(id=3, name="Fido", tags=["good", "dog"], kind=shop_pb2.DOG),
}
PETS[1].born.FromJsonString("2020-01-02T03:04:05Z")


class Pets(shop_pb2_grpc.PetsServicer):
    def GetPet(self, request, context):
        if request.id == 42:
            # Slower than the tests' route timeout.
            time.sleep(2)
        if request.id < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"id {request.id} is negative")
        pet = PETS.get(request.id)
        if pet is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no pet {request.id}")
        return pet

    def ListPets(self, request, context):
        n = 0
        for pet in PETS.values():
            if request.tag and request.tag not in pet.tags:
                continue
            if request.limit and n >= request.limit:
                return
            n += 1
            yield pet

    def CreatePet(self, request, context):
        pet = shop_pb2.Pet()
        pet.CopyFrom(request)
        if not pet.id:
            pet.id = 100
        for key, value in context.invocation_metadata():
            if key == "x-tenant":
                pet.tags.append(f"tenant:{value}")
        return pet


class Admin(shop_pb2_grpc.AdminServicer):
    def Ping(self, request, context):
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "admins only")


BOOKS = {
    1: books_pb2.Book(id=1, title="Dune", author_name="Frank Herbert", genre=books_pb2.NOVEL,
                      tags=["sf"], pages=412),
    2: books_pb2.Book(id=2, title="Ariel", author_name="Sylvia Plath", genre=books_pb2.POETRY),
    3: books_pb2.Book(id=3, title="Children of Dune", author_name="Frank Herbert",
                      genre=books_pb2.NOVEL, tags=["sf", "sequel"]),
}


class Books(books_pb2_grpc.BooksServicer):
    """Transcoded from HTTP by the gateway (books.proto's google.api.http rules)."""

    def GetBook(self, request, context):
        if request.id == 13:
            # A rich status (grpcio-status: grpc-status-details-bin): the book that is out,
            # a type of the transcoder's descriptors, and an ErrorInfo, which they do not have.
            held, info = any_pb2.Any(), any_pb2.Any()
            held.Pack(books_pb2.Book(id=13, title="Emma", shelf="loans"))
            info.Pack(error_details_pb2.ErrorInfo(reason="CHECKED_OUT", domain="books.example"))
            context.abort_with_status(rpc_status.to_status(status_pb2.Status(
                code=code_pb2.FAILED_PRECONDITION, message="book 13 is checked out",
                details=[held, info])))
        book = BOOKS.get(request.id)
        if book is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no book {request.id} on {request.shelf}")
        found = books_pb2.Book()
        found.CopyFrom(book)
        found.shelf = request.shelf
        return found

    def ListBooks(self, request, context):
        out = books_pb2.ListBooksResponse()
        for book in BOOKS.values():
            if request.author_name and book.author_name != request.author_name:
                continue
            if any(t not in book.tags for t in request.tags):
                continue
            if request.limit and len(out.books) >= request.limit:
                break
            out.books.append(book)
        return out

    def CreateBook(self, request, context):
        book = books_pb2.Book()
        book.CopyFrom(request)
        book.id = 100
        return book

    def AddBook(self, request, context):
        book = books_pb2.Book()
        book.CopyFrom(request.book)
        book.shelf = request.shelf
        return book

    def CountBooks(self, request, context):
        return self.ListBooks(request, context)


# Reflection v1 has v1alpha's messages under another package (grpc/reflection/v1/
# reflection.proto): the same bytes on the wire, so grpcio-reflection's servicer answers both.
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def reflection_handler(name, servicer, log):
    def info(requests, context):
        if log:
            with open(log, "a") as f:
                f.write(name + "\n")
        yield from servicer.ServerReflectionInfo(requests, context)

    return grpc.method_handlers_generic_handler(name, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            info,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        ),
    })


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    shop_pb2_grpc.add_PetsServicer_to_server(Pets(), server)
    shop_pb2_grpc.add_AdminServicer_to_server(Admin(), server)
    # Not offered by reflection: the transcoder's tests give its descriptors themselves.
    books_pb2_grpc.add_BooksServicer_to_server(Books(), server)
    # GRPC_REFLECTION: which reflection services are offered, `v1alpha` (grpcio-reflection's,
    # the default), `v1` or `both`; GRPC_REFLECTION_LOG: a file each call appends its name to.
    offered = {
        "v1alpha": [reflection.SERVICE_NAME],
        "v1": [REFLECTION_V1],
        "both": [REFLECTION_V1, reflection.SERVICE_NAME],
    }[os.environ.get("GRPC_REFLECTION", "v1alpha")]
    names = (
        shop_pb2.DESCRIPTOR.services_by_name["Pets"].full_name,
        shop_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
        *offered,
    )
    servicer = reflection.ReflectionServicer(names)
    log = os.environ.get("GRPC_REFLECTION_LOG")
    server.add_generic_rpc_handlers(
        tuple(reflection_handler(name, servicer, log) for name in offered))
    # With GRPC_TLS_CERT and GRPC_TLS_KEY (PEM files), the server speaks TLS only.
    cert, key = os.environ.get("GRPC_TLS_CERT"), os.environ.get("GRPC_TLS_KEY")
    if cert and key:
        with open(cert, "rb") as c, open(key, "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port(f"127.0.0.1:{port}", creds)
    else:
        port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"PORT {port}", flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
