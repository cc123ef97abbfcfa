#!/usr/bin/python3
"""Is a delivered message acceptable to a standard MIME parser?

Parses each file with Python's `email` package (policy.default, the RFC 5322/6532 parser) and
reports every defect it records on the message, on any MIME part or on any header field, and
checks each Authentication-Results field with the RFC 8601 parser of `authres`.

Usage: /usr/bin/python3 integration/mime_check.py FILE_OR_DIR...
  (a directory: every file below it, e.g. the smtp-sink directory of integration/postfix.sh)
Prints "OK FILE" or "BAD FILE: problem" lines; exit status 1 if any file is bad.
As a module: check_message(raw_bytes) -> list of problem strings (empty when clean).
"""

import email
import email.policy
import os
import sys

import pydeps

authres = pydeps.need("authres")


def check_message(raw):
    problems = []
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as e:  # the parser is meant never to raise; report it if it does
        return ["parser raised %r" % e]
    if not msg.keys():
        problems.append("no header fields")
    for part in msg.walk():
        for d in part.defects:
            problems.append("defect in part %s: %s" % (part.get_content_type(), type(d).__name__))
        for name in part.keys():
            for value in part.get_all(name, []):
                for d in getattr(value, "defects", ()):
                    problems.append("defect in %s: %s" % (name, type(d).__name__))
    if msg.get("From") is None:
        problems.append("no From")
    for value in msg.get_all("Authentication-Results", []):
        text = " ".join(str(value).split())
        try:
            authres.AuthenticationResultsHeader.parse("Authentication-Results: " + text)
        except Exception as e:
            problems.append("Authentication-Results rejected by authres: %r (%s)" % (e, text))
    return problems


def files(args):
    for a in args:
        if os.path.isdir(a):
            for d, _, names in sorted(os.walk(a)):
                for name in sorted(names):
                    yield os.path.join(d, name)
        else:
            yield a


def main(args):
    bad = 0
    for path in files(args):
        with open(path, "rb") as f:
            problems = check_message(f.read())
        if problems:
            bad += 1
            for p in problems:
                print("BAD %s: %s" % (path, p))
        else:
            print("OK", path)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
