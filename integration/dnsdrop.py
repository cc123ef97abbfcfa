#!/usr/bin/python3
"""A DNS server that never answers: reads every UDP datagram and drops it; TCP connections
are accepted and then left silent. Usage: dnsdrop.py PORT (on 127.0.0.1)."""

import select
import socket
import sys

port = int(sys.argv[1])
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", port))
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("127.0.0.1", port))
tcp.listen(16)
held = []
print("dnsdrop listening on 127.0.0.1:%d" % port, flush=True)
while True:
    ready, _, _ = select.select([udp, tcp] + held, [], [])
    for s in ready:
        if s is udp:
            udp.recvfrom(65535)
        elif s is tcp:
            conn, _ = tcp.accept()
            held.append(conn)
        elif not s.recv(65535):
            held.remove(s)
            s.close()
