-- (g) Three messages on one connection from 192.0.2.10; per-message state must not leak:
-- 1. RSA-signed sender.example (pass), 2. unsigned none.example (SPF fail, DMARC p=none),
-- 3. Ed25519-signed sender.example (pass). Postfix sends ABORT between messages.
local T = dofile(COMMON)
local conn = T.connect("mail.sender.example", "192.0.2.10", "mail.sender.example")

local m1 = T.load("rsa_pass")
local r = T.send(conn, { qid = "QIDG1", from = "alice@sender.example" }, m1)
T.ok(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "msg 1: expected accept/continue, got " .. T.show(r))
T.ar_is(conn, T.ar({
  "mx.spoofguard.test;",
  "spf=pass smtp.mailfrom=alice@sender.example;",
  "dkim=pass header.d=sender.example header.s=rsa2048 header.a=rsa-sha256 header.b=" .. m1.b8 .. ";",
  "arc=none;",
  "dmarc=pass (p=reject dis=none) header.from=sender.example policy.dmarc=reject",
}))
T.clean_accept(conn)

T.next_message(conn)
local m2 = T.load("none_unsigned")
r = T.send(conn, { qid = "QIDG2", from = "news@none.example" }, m2)
T.ok(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "msg 2: expected accept/continue, got " .. T.show(r))
T.ok(not mt.eom_check(conn, MT_QUARANTINE), "msg 2: unexpected quarantine")
T.header_has(conn, "Authentication-Results", "spf=fail")
T.header_has(conn, "Authentication-Results", "smtp.mailfrom=news@none.example")
T.header_has(conn, "Authentication-Results", "header.from=none.example")
T.header_has(conn, "Authentication-Results", "dmarc=fail")
T.header_lacks(conn, "Authentication-Results", "sender.example")
T.header_lacks(conn, "Authentication-Results", "dkim=pass")
T.ok(mt.getheader(conn, "Authentication-Results", 1) == nil, "msg 2: Authentication-Results added twice")

T.next_message(conn)
local m3 = T.load("ed_pass")
r = T.send(conn, { qid = "QIDG3", from = "alice@sender.example" }, m3)
T.ok(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "msg 3: expected accept/continue, got " .. T.show(r))
T.ar_is(conn, T.ar({
  "mx.spoofguard.test;",
  "spf=pass smtp.mailfrom=alice@sender.example;",
  "dkim=pass header.d=sender.example header.s=ed header.a=ed25519-sha256 header.b=" .. m3.b8 .. ";",
  "arc=none;",
  "dmarc=pass (p=reject dis=none) header.from=sender.example policy.dmarc=reject",
}))
T.clean_accept(conn)
mt.disconnect(conn)
T.finish()
