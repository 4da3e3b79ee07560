# Attaches twice to a container started with -d -i (OpenStdin, no StdinOnce): each attach
# sends a line, waits for its echo, then half-closes its input. The container's stdin must
# stay open (Docker closes it only with StdinOnce): the second attach is still read.
import os
import socket
import sys

import docker

name = sys.argv[1]
c = docker.APIClient(base_url=os.environ["DOCKER_HOST"], version="1.45")


def attach_send(line):
    s = c.attach_socket(name, params={"stdin": 1, "stdout": 1, "stream": 1})
    sock = s._sock
    sock.settimeout(60)
    sock.sendall(line + b"\n")
    out = b""
    while b"got " + line not in out:
        b = sock.recv(65536)
        if not b:
            break
        out += b
    sock.shutdown(socket.SHUT_WR)
    # The attach ends once its input has (Docker ends it then, without StdinOnce).
    while True:
        b = sock.recv(65536)
        if not b:
            break
        out += b
    sock.close()
    return out


out = attach_send(b"one")
print("first:", b"got one" in out, b"stdin-closed" in out)
running = c.inspect_container(name)["State"]["Running"]
print("running after the first attach:", running)
if running:
    out = attach_send(b"two")
    print("second:", b"got two" in out)
