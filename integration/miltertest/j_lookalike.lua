-- (j) A lookalike of a built-in brand (Microsoft) with valid SPF, DKIM and DMARC of its own:
-- authentication passes, but the lookalike detector must add a reason and a score.
local T = dofile(COMMON)
local msg = T.load("lookalike")
local d = "microsoft-securityprotection-support.example"
local conn = T.connect("mail." .. d, "192.0.2.40", "mail." .. d)
local r = T.send(conn, { qid = "QIDJ1", from = "security@" .. d }, msg)
T.ok(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE or r == SMFIR_REPLYCODE,
     "eom: unexpected reply " .. T.show(r))
if r ~= SMFIR_REPLYCODE then
  T.ar_is(conn, T.ar({
    "mx.spoofguard.test;",
    "spf=pass smtp.mailfrom=security@" .. d .. ";",
    "dkim=pass header.d=" .. d .. " header.s=rsa2048 header.a=rsa-sha256 header.b=" .. msg.b8 .. ";",
    "arc=none;",
    "dmarc=pass (p=reject dis=none) header.from=" .. d,
  }))
  local reasons = T.header(conn, "X-Spoofguard-Reasons") or ""
  local score = tonumber(T.header(conn, "X-Spoofguard-Score") or "")
  mt.echo("verdict " .. T.show(T.header(conn, "X-Spoofguard-Verdict")) .. ", score " ..
          T.show(score and tostring(score)) .. ", reasons " .. T.show(reasons))
  T.ok(reasons ~= "none" and reasons ~= "", "X-Spoofguard-Reasons: expected a lookalike reason, got " .. T.show(reasons))
  T.ok(score ~= nil and score > 0, "X-Spoofguard-Score: expected > 0")
end
mt.disconnect(conn)
T.finish()
