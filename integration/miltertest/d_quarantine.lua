-- (d) quarantine.example (DMARC p=quarantine), unsigned, from an address SPF does not allow:
-- quarantined, verdict quarantine.
local T = dofile(COMMON)
local msg = T.load("quarantine_fail")
local conn = T.connect("mail.attacker.example", "198.51.100.66", "mail.attacker.example")
local r = T.send(conn, { qid = "QID1", from = "billing@quarantine.example" }, msg)
T.ok(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "eom: expected accept/continue, got " .. T.show(r))
T.ok(mt.eom_check(conn, MT_QUARANTINE), "no quarantine requested")
T.ok(mt.eom_check(conn, MT_QUARANTINE, "DMARC policy of quarantine.example is quarantine"),
     "quarantine reason is not \"DMARC policy of quarantine.example is quarantine\"")
T.header_is(conn, "X-Spoofguard-Verdict", "quarantine")
T.header_has(conn, "Authentication-Results", "spf=fail")
T.header_has(conn, "Authentication-Results", "smtp.mailfrom=billing@quarantine.example")
T.header_has(conn, "Authentication-Results", "dmarc=fail (p=quarantine dis=quarantine) header.from=quarantine.example policy.dmarc=quarantine")
T.header_lacks(conn, "Authentication-Results", "dkim=pass")
mt.disconnect(conn)
T.finish()
