"""Test keys of the built-in sandboxes: the private halves, which sign the webhooks the GHL sandbox
sends. The public halves, credentials and ids the service uses against the sandboxes are in
``app.sandbox_mode``, re-exported here under the names the sandboxes and tests know.

These keys are public on purpose: they protect nothing; production uses GHL's published public keys
and the Rankr secrets configured in ``RANKR_WEBHOOK_SECRETS``.
"""

from app.sandbox_mode import (
    GHL_CLIENT_ID,
    GHL_CLIENT_SECRET,
    GHL_COMPANY_ID,
    GHL_ED25519_PUBLIC_PEM,
    GHL_LOCATION_ID,
    GHL_PRIVATE_TOKEN,
    GHL_RSA_PUBLIC_PEM,
    RANKR_ACCOUNT_ID,
    RANKR_CLIENT_ID,
    RANKR_CLIENT_SECRET,
    RANKR_WEBHOOK_SECRET,
)

GHL_ED25519_PRIVATE_PEM = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIEaZHhzZ0AlrHXWcRV1Y2wrISb4CgU2PhzULYHSVe2OX
-----END PRIVATE KEY-----
"""
GHL_RSA_PRIVATE_PEM = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC3RS+ESr4vjyse
XlVWU4KiSWz0hVnvxP61WQn8dZPDuOBR0vRvepF4GJ2LlfeozmJpawlIHRGRhb1O
U3gb02sNRkwDnTtsdv0gp42c9qvQAtuq7iD6TJ03BP/InDFNIujpjCoqnkZ4Nu9u
/Rs+qxPBZR7ziu7GcrAoBss/pQ2sf89IJsOO5GYkzwciHzmbfjUbmWKcHx2iIDyS
xZ3NYVexaXtUsBF+4t9r2QEhX0iuamWkwqq2IMi3mqv+UdGgFjjz9fuqjxodJHcf
RTC7tJ52ASTqNPDXB3koaA/Obh7BOFdC7N7lawknXsZRwx0jsBF4HgmwNngmXfZO
J5jVlqATAgMBAAECggEAA+UEl2Jobz9MhcbKBN2EDN0HMGncph1A4mt9eSMQgrWQ
XGMuWzSDsd8oCroJoZZp/fgbbuMuc+UflD7VPxYh+lq9LWVI4ktKO5VQvssSwW1f
uKt6m1PhRWfysMZgJjwwyE6SHzmIB6PEBWiu8wjhdxfy7YiZ/jECvR8D1uez7JX5
24YbJGmzOgPyFMEzdqy56blkNR+4HIomURGfcYNylBJ225BHzfk3LvTu57jcQx6V
h8ff2Pzxur/zGospvo8K61zfqG5RDtJWFw6wo7X2eagcxpJtBk2z4lq/j2ZQ1e2+
wqAHmJlW25Vygw18oAbxbRPYnwDZdk+Ym2kbNSUEXQKBgQDz+u8e6CvRu4xF0iUK
p8zvE7YbI00cITjpT32IO5AoUDEuWsP+dIj6kWle93fDbBuEWU7Ej45SphklMpCE
YOMgUYCCiMgFt6enVhNhQScsHTIZWGSKzzlZl+Qlba2DH++f2kunAZtQvLmiiLN2
pgw8zOn3+xluEzduzYd6pW7aPwKBgQDATJSo/F8N5F3/S4OLot7hZqAk1pkgdzSN
4NKa/qM7kCiY7HptUhvrVCMnnz1+didsj1W/gEtEJSjhfeWbh6l+8gP7SnqmtOWf
BVMGyefCAk6y/eEEH/jOuvPNKSvEFGSVvTk63Mh8ajirxa3dUgbAIf1550g5V1En
IG6rDhb9LQKBgBOOSH5cs65y7vJlvqxU+Nss5ErWkIaxrwMcaP5zb8Gbc+W4Rr9t
jdEvuJdxFHtofegk1Ghy7UB4qclOfUDvFyVvAvLzjbzPlLOX9aO0+jPR/0MCz8RE
id9BinrpiJ/a/nT8pVW0jkNxbRu3A1N+SbrR3esPiGFHTwklljdhbTo3AoGBAI21
4bfGg6YRLNP+Kiq1E9q3bjy3iJDMSAZmL83Y6SHz0ncfjfkSEVES5/VC/GY9XEA8
QMynFtBZMg86YAKFrvrGDvkYodpIZQ8TNWRDVm86lBSD01be2NRAIXqHZKFTBezz
TUF7gqNtA+ZR/xaiZCci5VD4h9j55+wVknisIXThAoGBAOFpX109pbNAaOgJXCPl
g4YR1I57W36sJ2LrmGUDlMaUIZaKps6ffg55G+c4fZlZKtguRhSVarrrgq4wFmeF
HuHtJuOhV7EWU9nbpgHboP+uI+cIFyuQWXjvgdmwTWdQ4Xy5EHECQI2ywVqIT6am
SeHTrvTOahqjQWs2gnxedzNs
-----END PRIVATE KEY-----
"""

__all__ = [
    "GHL_CLIENT_ID",
    "GHL_CLIENT_SECRET",
    "GHL_COMPANY_ID",
    "GHL_ED25519_PRIVATE_PEM",
    "GHL_ED25519_PUBLIC_PEM",
    "GHL_LOCATION_ID",
    "GHL_PRIVATE_TOKEN",
    "GHL_RSA_PRIVATE_PEM",
    "GHL_RSA_PUBLIC_PEM",
    "RANKR_ACCOUNT_ID",
    "RANKR_CLIENT_ID",
    "RANKR_CLIENT_SECRET",
    "RANKR_WEBHOOK_SECRET",
]
