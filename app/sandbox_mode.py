"""What the service uses in sandbox mode: the built-in sandboxes' credentials, ids and public keys.

They are public on purpose and protect nothing: the sandboxes (``app.sandbox``) accept exactly these
and sign their webhooks with the private halves of these keys (``app.sandbox.keys``), so that the
service verifies them as it verifies the real ones. Production uses GHL's published keys and the
credentials and secrets it is configured with. The service reads them from here: outside the app
factory and the CLI it never imports the sandboxes.
"""

GHL_ED25519_PUBLIC_PEM = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAjZiLK3Qb9rewGdUgZ0+axziMld/5J8P38aPXuvIYT8M=
-----END PUBLIC KEY-----
"""
GHL_RSA_PUBLIC_PEM = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAt0UvhEq+L48rHl5VVlOC
okls9IVZ78T+tVkJ/HWTw7jgUdL0b3qReBidi5X3qM5iaWsJSB0RkYW9TlN4G9Nr
DUZMA507bHb9IKeNnPar0ALbqu4g+kydNwT/yJwxTSLo6YwqKp5GeDbvbv0bPqsT
wWUe84ruxnKwKAbLP6UNrH/PSCbDjuRmJM8HIh85m341G5linB8doiA8ksWdzWFX
sWl7VLARfuLfa9kBIV9IrmplpMKqtiDIt5qr/lHRoBY48/X7qo8aHSR3H0Uwu7Se
dgEk6jTw1wd5KGgPzm4ewThXQuze5WsJJ17GUcMdI7AReB4JsDZ4Jl32TieY1Zag
EwIDAQAB
-----END PUBLIC KEY-----
"""
RANKR_WEBHOOK_SECRET = "whsec_/3YtfazvVLFcqVvUQPbljojvaU2tglxD"

# Credentials the sandboxes accept, and the service uses against them in sandbox mode.
GHL_PRIVATE_TOKEN = "pit-sandbox-0000-0000-0000-000000000000"
GHL_LOCATION_ID = "SbxLoc0000000000001"
RANKR_ACCOUNT_ID = "acct_sandbox"
RANKR_CLIENT_ID = "sandbox-client"
RANKR_CLIENT_SECRET = "sandbox-secret"

# The marketplace app the GHL sandbox knows (OAuth install flow), and the agency that owns its location.
GHL_CLIENT_ID = "sandbox-ghl-app-client"
GHL_CLIENT_SECRET = "sandbox-ghl-app-secret-0000"
GHL_COMPANY_ID = "SbxCompany000000001"
