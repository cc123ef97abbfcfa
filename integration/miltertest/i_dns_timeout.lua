-- (i) The only nameserver drops every query: with the default on_dns_error = "tempfail"
-- the milter answers 451 4.4.3. Run against an instance whose [dns] points at a dropping socket.
local T = dofile(COMMON)
local msg = T.load("rsa_pass")
local conn = T.connect("mail.sender.example", "192.0.2.10", "mail.sender.example")
mt.set_timeout(30)
T.send(conn, { qid = "QIDI1", from = "alice@sender.example" }, msg)
T.reply_is(conn, "451", "4.4.3", "Temporary DNS failure while verifying the sender, try again later")
mt.disconnect(conn)
T.finish()
