-- (e) Forged Authentication-Results with our authserv-id (indexes 1 and 3), a foreign one
-- (index 2) and a forged X-Spoofguard-Verdict: ours and the X-header are deleted, highest
-- index first, the foreign one is kept, and our own result is inserted on top.
local T = dofile(COMMON)
local msg = T.load("forged_ar")
local conn = T.connect("mail.sender.example", "192.0.2.10", "mail.sender.example")
local r = T.send(conn, { qid = "QID1", from = "alice@sender.example" }, msg)
T.ok(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "eom: expected accept/continue, got " .. T.show(r))
T.ok(mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results", 3), "forged Authentication-Results #3 not deleted")
T.ok(mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results", 1), "forged Authentication-Results #1 not deleted")
T.ok(not mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results", 2), "foreign Authentication-Results #2 (mx.other.example) deleted")
T.ok(mt.eom_check(conn, MT_HDRDELETE, "X-Spoofguard-Verdict", 1), "forged X-Spoofguard-Verdict #1 not deleted")
T.ar_is(conn, T.ar({
  "mx.spoofguard.test;",
  "spf=pass smtp.mailfrom=alice@sender.example;",
  "dkim=pass header.d=sender.example header.s=rsa2048 header.a=rsa-sha256 header.b=" .. msg.b8 .. ";",
  "arc=none;",
  "dmarc=pass (p=reject dis=none) header.from=sender.example policy.dmarc=reject",
}))
T.clean_accept(conn)
mt.disconnect(conn)
T.finish()
