#!/usr/bin/python3
"""A small CRI client (what crictl does, for the few calls the runtime tests need), over containerd's CRI socket.

The message classes are generated on each call by protoc from cri-api-v1.proto beside this file (the CRI's
runtime.v1 api.proto, as the k8s-cri crate ships it) into a temporary directory; the calls go through grpcio.
Debian packages: python3-grpcio python3-protobuf protobuf-compiler.

usage: cri.py --socket PATH [--timeout S] COMMAND [ARG]
  version               the runtime's name and versions, as JSON
  run CONFIG.json       RunPodSandbox with a PodSandboxConfig written as protobuf JSON; prints the sandbox id
  stop ID | remove ID   StopPodSandbox / RemovePodSandbox
  status ID             PodSandboxStatus (verbose) as JSON; its "info" map is decoded from JSON too
  list                  ListPodSandbox as JSON
"""
import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import grpc
from google.protobuf import json_format

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = "cri-api-v1.proto"


def load_api():
    gen = tempfile.mkdtemp(prefix="cri-py-")
    try:
        subprocess.run(["protoc", "-I", HERE, "--python_out", gen, PROTO], check=True)
        sys.path.insert(0, gen)
        return importlib.import_module(PROTO[:-len(".proto")].replace("-", "_") + "_pb2")
    finally:
        shutil.rmtree(gen, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--socket", required=True)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("command", choices=["version", "run", "stop", "remove", "status", "list"])
    p.add_argument("arg", nargs="?")
    a = p.parse_args()
    api = load_api()
    channel = grpc.insecure_channel("unix://" + os.path.abspath(a.socket))

    def call(method, request, response_type):
        rpc = channel.unary_unary("/runtime.v1.RuntimeService/" + method,
                                  request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=response_type.FromString)
        return rpc(request, timeout=a.timeout)

    def dump(msg):
        return json_format.MessageToDict(msg, preserving_proto_field_name=True, including_default_value_fields=True)

    try:
        if a.command == "version":
            out = dump(call("Version", api.VersionRequest(), api.VersionResponse))
        elif a.command == "run":
            with open(a.arg) as f:
                config = json_format.Parse(f.read(), api.PodSandboxConfig())
            r = call("RunPodSandbox", api.RunPodSandboxRequest(config=config), api.RunPodSandboxResponse)
            print(r.pod_sandbox_id)
            return 0
        elif a.command == "stop":
            out = dump(call("StopPodSandbox", api.StopPodSandboxRequest(pod_sandbox_id=a.arg),
                            api.StopPodSandboxResponse))
        elif a.command == "remove":
            out = dump(call("RemovePodSandbox", api.RemovePodSandboxRequest(pod_sandbox_id=a.arg),
                            api.RemovePodSandboxResponse))
        elif a.command == "status":
            r = call("PodSandboxStatus", api.PodSandboxStatusRequest(pod_sandbox_id=a.arg, verbose=True),
                     api.PodSandboxStatusResponse)
            out = dump(r)
            for k, v in out.get("info", {}).items():
                try:
                    out["info"][k] = json.loads(v)
                except ValueError:
                    pass
        else:
            out = dump(call("ListPodSandbox", api.ListPodSandboxRequest(), api.ListPodSandboxResponse))
    except grpc.RpcError as e:
        print(f"{a.command}: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
