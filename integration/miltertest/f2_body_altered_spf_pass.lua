-- (f2) The altered-body message again, but from sender.example's own server: DKIM fails,
-- SPF passes and aligns, so DMARC passes and the message is accepted; the
-- Authentication-Results header shows the DKIM failure.
local T = dofile(COMMON)
local msg = T.load("body_altered")
local conn = T.connect("mail.sender.example", "192.0.2.10", "mail.sender.example")
local r = T.send(conn, { qid = "QIDF2", from = "alice@sender.example" }, msg)
T.ok(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "eom: expected accept/continue, got " .. T.show(r))
local ar = T.header(conn, "Authentication-Results") or ""
mt.echo("Authentication-Results: " .. T.show(ar))
T.header_has(conn, "Authentication-Results", "mx.spoofguard.test;\n\tspf=pass smtp.mailfrom=alice@sender.example;\n\tdkim=fail")
T.header_has(conn, "Authentication-Results", " header.d=sender.example header.s=rsa2048 header.a=rsa-sha256 header.b=" .. msg.b8 .. ";\n\tarc=none;\n\tdmarc=pass (p=reject dis=none) header.from=sender.example policy.dmarc=reject")
T.log_has("QIDF2", { "spf=pass", "dkim=fail", "dmarc=pass" })
mt.disconnect(conn)
T.finish()
