-- (a) RSA-2048-signed mail from sender.example's own server: SPF, DKIM and DMARC pass.
local T = dofile(COMMON)
local msg = T.load("rsa_pass")
local conn = T.connect("mail.sender.example", "192.0.2.10", "mail.sender.example")
local r = T.send(conn, { qid = "QID1", from = "alice@sender.example" }, msg)
T.ok(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "eom: expected accept/continue, got " .. T.show(r))
T.ar_is(conn, T.ar({
  "mx.spoofguard.test;",
  "spf=pass smtp.mailfrom=alice@sender.example;",
  "dkim=pass header.d=sender.example header.s=rsa2048 header.a=rsa-sha256 header.b=" .. msg.b8 .. ";",
  "arc=none;",
  "dmarc=pass (p=reject dis=none) header.from=sender.example",
}))
T.clean_accept(conn)
T.ok(not mt.eom_check(conn, MT_QUARANTINE), "unexpected quarantine")
T.ok(not mt.eom_check(conn, MT_HDRDELETE), "unexpected header deletion")
mt.disconnect(conn)
T.finish()
