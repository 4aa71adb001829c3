"""A proxyless gRPC client on gRPC C-core (Debian's python3-grpcio), driven by JSON lines.

Run with /usr/bin/python3 and GRPC_XDS_BOOTSTRAP_CONFIG (or GRPC_XDS_BOOTSTRAP) set. Reads
{"id", "target", "count", "metadata"?, "deadlineMs"?} per line on stdin and answers
{"id", "versions": {name: n}, "errors": {code: n}, "lastError"?} per line on stdout.
"""
import json
import sys

import grpc

WHO = "/sluice.demo.Echo/Who"
channels = {}


def stub_for(target):
    if target not in channels:
        channel = grpc.insecure_channel("xds:///" + target)
        # gRPC Python drives a channel's I/O (and so its xDS stream) only while something
        # waits on it; watching connectivity keeps a poller running, so xDS updates are
        # applied and ACKed while the client is idle, as in a busy application.
        channel.subscribe(lambda _state: None, try_to_connect=True)
        channels[target] = channel
    return channels[target].unary_unary(WHO)


def handle(req):
    result = {"id": req["id"], "versions": {}, "errors": {}}
    call = stub_for(req["target"])
    metadata = list((req.get("metadata") or {}).items())
    timeout = req.get("deadlineMs", 2000) / 1000.0
    for _ in range(req["count"]):
        try:
            version = call(b"", timeout=timeout, metadata=metadata).decode()
            result["versions"][version] = result["versions"].get(version, 0) + 1
        except grpc.RpcError as err:
            name = err.code().name
            result["errors"][name] = result["errors"].get(name, 0) + 1
            result["lastError"] = err.details()
    return result


def main():
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(handle(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
