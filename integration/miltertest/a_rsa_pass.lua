-- (a) RSA-2048-signed mail from sender.example's own server: SPF, DKIM and DMARC pass.
local T = dofile(COMMON)
T.signed_pass("rsa_pass", "rsa2048", "rsa-sha256")
