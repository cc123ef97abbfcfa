-- (f) Signed by sender.example, then the body was changed, sent from a foreign address:
-- dkim=fail (and SPF fails), so DMARC p=reject gives 550 5.7.1.
local T = dofile(COMMON)
local msg = T.load("body_altered")
local conn = T.connect("mail.attacker.example", "198.51.100.66", "mail.attacker.example")
T.send(conn, { qid = "QIDF1", from = "alice@sender.example" }, msg)
T.reply_is(conn, "550", "5.7.1", "Rejected per DMARC policy for sender.example")
T.log_has("QIDF1", { "dkim=fail", "spf=fail", "dmarc=fail" })
mt.disconnect(conn)
T.finish()
