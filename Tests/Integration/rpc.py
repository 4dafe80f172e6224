#!/usr/bin/env python3
"""A tiny JSON-RPC client for the integration test.

  rpc.py SOCKET METHOD [PARAMS_JSON]       one call, prints the response line
  rpc.py --as UID[:GID] SOCKET METHOD ...  the same after dropping privileges
  rpc.py --reload-check SOCKET             one connection across `systemctl reload`
"""
import json
import os
import socket
import subprocess
import sys


def connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(path)
    return sock, sock.makefile("rwb")


def call(handle, method, params=None, ident=1):
    request = {"jsonrpc": "2.0", "id": ident, "method": method}
    if params is not None:
        request["params"] = params
    handle.write((json.dumps(request) + "\n").encode())
    handle.flush()
    return json.loads(handle.readline())


def main(args):
    if args[0] == "--as":
        ids = args[1].split(":")
        uid = int(ids[0])
        gid = int(ids[1]) if len(ids) > 1 else uid
        os.setgroups([gid] if len(ids) > 1 else [])
        os.setgid(gid)
        os.setuid(uid)
        args = args[2:]
    if args[0] == "--reload-check":
        _, handle = connect(args[1])
        first = call(handle, "sys.health", ident=1)
        subprocess.run(["systemctl", "reload", "authd.service"], check=True)
        second = call(handle, "sys.health", ident=2)
        print(json.dumps({"first": first, "second": second}))
        return
    _, handle = connect(args[0])
    params = json.loads(args[2]) if len(args) > 2 else None
    print(json.dumps(call(handle, args[1], params)))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except OSError as error:
        print(json.dumps({"os_error": error.errno, "message": str(error)}))
