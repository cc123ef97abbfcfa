-- (c) Unsigned spoof of sender.example (DMARC p=reject) from a foreign address: 550 5.7.1.
local T = dofile(COMMON)
local msg = T.load("spoof_unsigned")
local conn = T.connect("mail.attacker.example", "198.51.100.66", "mail.attacker.example")
T.send(conn, { qid = "QIDC1", from = "ceo@sender.example" }, msg)
T.reply_is(conn, "550", "5.7.1", "Message rejected: DMARC policy of sender.example is reject")
T.ok(not mt.eom_check(conn, MT_QUARANTINE), "unexpected quarantine")
mt.disconnect(conn)
T.finish()
