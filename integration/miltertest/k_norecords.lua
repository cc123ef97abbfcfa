-- (k) norecords.example has no SPF, DKIM or DMARC records: everything is "none" and the
-- message is accepted. Then, on the same connection, a null sender (MAIL FROM:<>), where
-- SPF checks the HELO name instead (smtp.helo=).
local T = dofile(COMMON)
local msg = T.load("norecords")
local conn = T.connect("mail.norecords.example", "198.51.100.77", "mail.norecords.example")
local r = T.send(conn, { qid = "QIDK1", from = "info@norecords.example" }, msg)
T.ok(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "msg 1: expected accept/continue, got " .. T.show(r))
T.ar_is(conn, T.ar({
  "mx.spoofguard.test;",
  "spf=none smtp.mailfrom=info@norecords.example;",
  "dkim=none;",
  "arc=none;",
  "dmarc=none header.from=norecords.example",
}))
T.ok(not mt.eom_check(conn, MT_QUARANTINE), "msg 1: unexpected quarantine")

T.next_message(conn)
r = T.send(conn, { qid = "QIDK2", from = "" }, msg)
T.ok(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "msg 2: expected accept/continue, got " .. T.show(r))
T.ar_is(conn, T.ar({
  "mx.spoofguard.test;",
  "spf=none smtp.helo=mail.norecords.example;",
  "dkim=none;",
  "arc=none;",
  "dmarc=none header.from=norecords.example",
}))
mt.disconnect(conn)
T.finish()
