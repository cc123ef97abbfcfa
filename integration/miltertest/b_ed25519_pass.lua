-- (b) Ed25519-signed mail from sender.example's own server: SPF, DKIM and DMARC pass.
local T = dofile(COMMON)
T.signed_pass("ed_pass", "ed", "ed25519-sha256")
