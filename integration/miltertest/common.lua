-- Shared helpers for the spoofguard miltertest scenarios (loaded with dofile).
--
-- Globals set by run.sh with `miltertest -D`: SOCKET (e.g. "inet:PORT@127.0.0.1"),
-- DATA (the directory of generated message tables, WORK/msg) and STRICT_LEADSPC ("1" or "0").
--
-- miltertest stops silently on an error (rc=1, nothing printed), so every check prints
-- "FAIL: ..." with mt.echo and the script calls T.finish() at the end, which raises an
-- error when any check failed.

local T = { failures = 0 }

function T.fail(msg)
  mt.echo("FAIL: " .. msg)
  T.failures = T.failures + 1
end

function T.ok(cond, msg)
  if not cond then T.fail(msg) end
  return cond
end

-- Stop the script now (a protocol step failed; nothing after it makes sense).
function T.abort(msg)
  T.fail(msg)
  error(msg)
end

function T.finish()
  if T.failures > 0 then
    mt.echo(T.failures .. " check(s) failed")
    error("scenario failed")
  end
  mt.echo("all checks passed")
end

function T.load(name)
  return dofile(DATA .. "/" .. name .. ".lua")
end

local function show(s)
  if s == nil then return "nil" end
  if type(s) == "number" then
    -- milter reply codes are single characters (SMFIR_*)
    return "'" .. string.char(s) .. "'"
  end
  s = tostring(s):gsub("\n", "\\n"):gsub("\t", "\\t")
  return "[" .. s .. "]"
end
T.show = show

-- Open a connection and send the client's connection information (negotiation is implicit).
function T.connect(host, ip, helo)
  local conn = mt.connect(SOCKET, 40, 0.25)
  if conn == nil then T.abort("mt.connect(" .. SOCKET .. ") failed") end
  local err = mt.conninfo(conn, host, ip)
  if err ~= nil then T.abort("mt.conninfo: " .. err) end
  T.ok(mt.getreply(conn) == SMFIR_CONTINUE, "conninfo: filter did not continue")
  if not mt.test_option(conn, SMFIP_NOHELO) then
    err = mt.helo(conn, helo)
    if err ~= nil then T.abort("mt.helo: " .. err) end
    T.ok(mt.getreply(conn) == SMFIR_CONTINUE, "helo: filter did not continue")
  end
  return conn
end

-- Send one message the way Postfix does: MAIL (with macro i), RCPT, DATA, each header,
-- EOH, the body, EOM. Steps the filter negotiated away (SMFIP_NO*) are skipped, as an MTA
-- would. env = { qid = "QID1", from = "alice@sender.example", rcpt = "bob@rcpt.example" }.
-- Returns the reply to EOM.
function T.send(conn, env, msg)
  mt.macro(conn, SMFIC_MAIL, "i", env.qid)
  local err = mt.mailfrom(conn, "<" .. env.from .. ">")
  if err ~= nil then T.abort("mt.mailfrom: " .. err) end
  T.ok(mt.getreply(conn) == SMFIR_CONTINUE, "mail: filter did not continue")
  if not mt.test_option(conn, SMFIP_NORCPT) then
    err = mt.rcptto(conn, "<" .. (env.rcpt or "bob@rcpt.example") .. ">")
    if err ~= nil then T.abort("mt.rcptto: " .. err) end
    T.ok(mt.getreply(conn) == SMFIR_CONTINUE, "rcpt: filter did not continue")
  end
  if not mt.test_option(conn, SMFIP_NODATA) then
    err = mt.data(conn)
    if err ~= nil then T.abort("mt.data: " .. err) end
  end
  for _, h in ipairs(msg.headers) do
    err = mt.header(conn, h[1], h[2])
    if err ~= nil then T.abort("mt.header(" .. h[1] .. "): " .. err) end
  end
  if not mt.test_option(conn, SMFIP_NOEOH) then
    err = mt.eoh(conn)
    if err ~= nil then T.abort("mt.eoh: " .. err) end
  end
  if not mt.test_option(conn, SMFIP_NOBODY) then
    err = mt.bodystring(conn, msg.body)
    if err ~= nil then T.abort("mt.bodystring: " .. err) end
  end
  err = mt.eom(conn)
  if err ~= nil then T.abort("mt.eom: " .. err) end
  return mt.getreply(conn)
end

-- The next message on the same connection: Postfix sends ABORT after every message.
function T.next_message(conn)
  local err = mt.abort(conn)
  if err ~= nil then T.abort("mt.abort: " .. err) end
end

-- With SMFIP_HDR_LEADSPC negotiated the MTA adds no space after the colon of a header the
-- filter adds, so the filter must send " value". Returns the value without that space.
local function strip_leadspc(conn, what, v)
  if v == nil or not mt.test_option(conn, SMFIP_HDR_LEADSPC) then return v end
  if v:sub(1, 1) == " " then return v:sub(2) end
  local msg = what .. ": SMFIP_HDR_LEADSPC negotiated but the value has no leading space"
  if STRICT_LEADSPC == "1" then T.fail(msg) else mt.echo("WARN: " .. msg) end
  return v
end

-- The n-th (0-based) added or inserted header called name, leading space handled.
function T.header(conn, name, n)
  return strip_leadspc(conn, name, mt.getheader(conn, name, n or 0))
end

-- Exact check of an added or inserted header's value.
function T.header_is(conn, name, expected, n)
  local got = T.header(conn, name, n)
  return T.ok(got == expected, name .. ": expected " .. show(expected) .. ", got " .. show(got))
end

function T.header_has(conn, name, needle)
  local got = T.header(conn, name, 0)
  return T.ok(got ~= nil and got:find(needle, 1, true) ~= nil,
              name .. ": expected to contain " .. show(needle) .. ", got " .. show(got))
end

function T.header_lacks(conn, name, needle)
  local got = T.header(conn, name, 0) or ""
  return T.ok(got:find(needle, 1, true) == nil,
              name .. ": must not contain " .. show(needle) .. ", got " .. show(got))
end

-- Authentication-Results must be inserted at index 0 (topmost), with exactly this value.
function T.ar_is(conn, expected)
  local raw = mt.getheader(conn, "Authentication-Results", 0)
  T.ok(raw ~= nil and mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results", raw, 0),
       "Authentication-Results: not inserted at index 0")
  T.ok(mt.getheader(conn, "Authentication-Results", 1) == nil,
       "Authentication-Results: added more than once")
  return T.header_is(conn, "Authentication-Results", expected)
end

-- The authentication results lines joined the way spoofguard folds them.
function T.ar(lines)
  return table.concat(lines, "\n\t")
end

-- Score, verdict and reasons headers of a clean pass.
function T.clean_accept(conn)
  T.ok(mt.eom_check(conn, MT_HDRADD, "X-Spoofguard-Verdict"), "X-Spoofguard-Verdict: not added (add header)")
  T.header_is(conn, "X-Spoofguard-Score", "0.0")
  T.header_is(conn, "X-Spoofguard-Verdict", "accept")
  T.header_is(conn, "X-Spoofguard-Reasons", "none")
end

-- A message signed by sender.example (data NAME, key SELECTOR, algorithm ALG), sent from
-- sender.example's own server: SPF, DKIM and DMARC pass, nothing else is done.
function T.signed_pass(name, selector, alg)
  local msg = T.load(name)
  local conn = T.connect("mail.sender.example", "192.0.2.10", "mail.sender.example")
  local r = T.send(conn, { qid = "QID1", from = "alice@sender.example" }, msg)
  T.ok(r == SMFIR_ACCEPT or r == SMFIR_CONTINUE, "eom: expected accept/continue, got " .. T.show(r))
  T.ar_is(conn, T.ar({
    "mx.spoofguard.test;",
    "spf=pass smtp.mailfrom=alice@sender.example;",
    "dkim=pass header.d=sender.example header.s=" .. selector .. " header.a=" .. alg ..
      " header.b=" .. msg.b8 .. ";",
    "arc=none;",
    "dmarc=pass (p=reject dis=none) header.from=sender.example policy.dmarc=reject",
  }))
  T.clean_accept(conn)
  T.ok(not mt.eom_check(conn, MT_QUARANTINE), "unexpected quarantine")
  T.ok(not mt.eom_check(conn, MT_HDRDELETE), "unexpected header deletion")
  mt.disconnect(conn)
  T.finish()
end

-- An SMTP reply from the filter at EOM, checked exactly ("550 5.7.1 text").
function T.reply_is(conn, code, esc, text)
  local r = mt.getreply(conn)
  if not T.ok(r == SMFIR_REPLYCODE, "eom: expected an SMTP reply (SMFIR_REPLYCODE), got " .. show(r)) then
    return false
  end
  return T.ok(mt.eom_check(conn, MT_SMTPREPLY, code, esc, text),
              "eom: SMTP reply is not " .. show(code .. " " .. esc .. " " .. text) ..
              (mt.eom_check(conn, MT_SMTPREPLY, code) and "" or " (not even the code " .. code .. ")"))
end

-- spoofguard logs one info line per message at EOM. Wait (up to 3 s) for a line of LOG that
-- contains the queue id and every needle. Used where the milter adds no header (a reject).
function T.log_has(qid, needles)
  local last
  for _ = 1, 30 do
    local f = io.open(LOG, "r")
    if f ~= nil then
      for line in f:lines() do
        line = line:gsub("\27%[[%d;]*m", "") -- ANSI colours, if the log has them
        if line:find(qid, 1, true) then
          last = line
          local all = true
          for _, n in ipairs(needles) do
            if not line:find(n, 1, true) then all = false end
          end
          if all then f:close(); return true end
        end
      end
      f:close()
    end
    mt.sleep(0.1)
  end
  T.fail("log: no line with " .. qid .. " containing " .. table.concat(needles, ", ") ..
         "; last line with " .. qid .. ": " .. T.show(last))
  return false
end

return T
