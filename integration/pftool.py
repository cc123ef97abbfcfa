#!/usr/bin/python3
"""Helpers of the Postfix phase of integration/run.sh (integration/postfix.sh).

  pftool.py reply SWAKS_OUTPUT         the server's reply that decided the transaction: the
                                       first error reply (swaks marks it "<**"), else the
                                       reply to the end of DATA; one line per reply line
  pftool.py qid SWAKS_OUTPUT           the queue id from "250 ... queued as QID" (or nothing)
  pftool.py find SINKDIR QID SECS      wait up to SECS for the file smtp-sink stored for the
                                       message with Postfix queue id QID; print its path
  pftool.py grep-msgid SINKDIR MSGID   print every stored file whose Message-ID is <MSGID>
  pftool.py headers FILE NAME          every NAME header of the stored message, unfolded
                                       (CRLF before white space removed), as "Name: value"
  pftool.py rcpts FILE                 the envelope recipients smtp-sink recorded, one a line
  pftool.py b8 EML                     the first 8 characters of the first DKIM b= value
  pftool.py queue QUEUE_JSON QID       the queue_name of QID in `postqueue -j` output
  pftool.py session PORT IP HELO MAILFROM RCPT EML...
                                       one SMTP session (XCLIENT ADDR/NAME/HELO, then one
                                       transaction per EML, or per ADDR=EML to use another
                                       MAIL FROM); prints "CODE TEXT" per message

Stored files are smtp-sink dumps: the envelope as X-Client-Addr/X-Mail-Args/X-Rcpt-Args
lines, then the message as delivered.
"""

import json
import os
import re
import smtplib
import sys
import time


def read(path):
    with open(path, "rb") as f:
        return f.read()


def swaks_reply(path):
    lines = read(path).decode("utf-8", "replace").splitlines()
    # swaks: "<-  " a reply, "<** " an error reply, " -> " what it sent.
    errors = [l[4:] for l in lines if l.startswith("<** ")]
    if errors:
        out = [errors[0]]
        # a multi-line error reply continues with "<** CODE-" / "<** CODE " lines
        i = lines.index("<** " + errors[0])
        while out[-1][3:4] == "-" and i + 1 < len(lines) and lines[i + 1].startswith("<** "):
            i += 1
            out.append(lines[i][4:])
        return out
    for i, l in enumerate(lines):
        if l == " -> .":
            out = []
            for nxt in lines[i + 1:]:
                if nxt.startswith("<-  "):
                    out.append(nxt[4:])
                    if nxt[7:8] != "-":
                        return out
                elif out:
                    break
            return out
    return ["(no reply found)"]


def split_message(raw):
    """(envelope+header lines, body) of a stored file, header lines unfolded."""
    raw = raw.replace(b"\r\n", b"\n")
    head = raw.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    fields = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def headers(path, name):
    want = name.lower() + ":"
    return [f for f in split_message(read(path)) if f.lower().startswith(want)]


def file_qid_match(path, qid):
    for f in headers(path, "Received"):
        if re.search(r"\bid " + re.escape(qid) + r"\b", f):
            return True
    return False


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "reply":
        print("\n".join(swaks_reply(args[0])))
    elif cmd == "qid":
        m = re.search(r"^<-  250 .*queued as (\S+)", read(args[0]).decode("utf-8", "replace"), re.M)
        print(m.group(1) if m else "")
    elif cmd == "find":
        sink, qid, secs = args[0], args[1], float(args[2])
        end = time.time() + secs
        while True:
            for n in sorted(os.listdir(sink)):
                p = os.path.join(sink, n)
                if os.path.isfile(p) and file_qid_match(p, qid):
                    print(p)
                    return
            if time.time() > end:
                sys.exit(1)
            time.sleep(0.1)
    elif cmd == "grep-msgid":
        sink, msgid = args
        for n in sorted(os.listdir(sink)):
            p = os.path.join(sink, n)
            if os.path.isfile(p) and any(
                    h.split(":", 1)[1].strip() == "<" + msgid + ">"
                    for h in headers(p, "Message-ID")):
                print(p)
    elif cmd == "headers":
        for h in headers(args[0], args[1]):
            print(h)
    elif cmd == "rcpts":
        for h in headers(args[0], "X-Rcpt-Args"):
            print(h.split(":", 1)[1].strip())
    elif cmd == "b8":
        head = read(args[0]).split(b"\r\n\r\n", 1)[0].decode()
        m = re.search(r"DKIM-Signature:.*?\bb=([^;]*)", head, re.S | re.I)
        print(re.sub(r"\s+", "", m.group(1))[:8] if m else "")
    elif cmd == "queue":
        qid = args[1]
        for line in read(args[0]).decode().splitlines():
            if line.strip():
                e = json.loads(line)
                if e.get("queue_id") == qid:
                    print(e.get("queue_name", ""))
    elif cmd == "session":
        port, ip, helo, mailfrom, rcpt = args[:5]
        s = smtplib.SMTP("127.0.0.1", int(port), local_hostname=helo, timeout=120)
        s.ehlo(helo)
        code, text = s.docmd("XCLIENT", "ADDR=%s NAME=%s HELO=%s" % (ip, helo, helo))
        if code != 220:
            sys.exit("XCLIENT: %d %s" % (code, text.decode()))
        s.ehlo(helo)
        for eml in args[5:]:
            mf = mailfrom
            if "=" in eml:  # MAILFROM override: ADDR=FILE
                mf, eml = eml.split("=", 1)
            code, text = s.mail(mf)
            if code == 250:
                code, text = s.rcpt(rcpt)
            if code in (250, 251):
                try:
                    code, text = s.data(read(eml))
                except smtplib.SMTPDataError as e:
                    code, text = e.smtp_code, e.smtp_error
            if code != 250:
                s.rset()
            print(code, text.decode().replace("\n", " "))
        s.quit()
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
