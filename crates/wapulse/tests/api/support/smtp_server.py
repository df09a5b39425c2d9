"""A real SMTP server for the email receiver's tests (aiosmtpd).

    python3 smtp_server.py PORT CERT KEY OUT_DIR USER PASSWORD MODE

MODE is `starttls` (plain until STARTTLS, which is required, as is AUTH
after it) or `implicit` (TLS from the first byte, then AUTH). Each message
received is parsed with Python's email package and written to OUT_DIR as
JSON: the envelope, whether the session was encrypted and authenticated,
the headers that matter and every text part. It prints `ready` once it
listens and stops when its standard input closes.
"""

import asyncio
import json
import os
import ssl
import sys
import warnings
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# aiosmtpd's deprecation and AUTH-without-TLS notices are not the test's.
warnings.simplefilter("ignore")

port, cert, key, out, user, password, mode = sys.argv[1:8]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    # handled=False: aiosmtpd answers a failure with 535 itself.
    return AuthResult(success=ok, handled=False)


class Keep:
    count = 0

    async def handle_DATA(self, server, session, envelope):
        msg = BytesParser(policy=policy.default).parsebytes(envelope.content)
        parts = []
        for part in msg.walk():
            if part.get_content_maintype() == "text":
                parts.append({"type": part.get_content_type(), "text": part.get_content()})
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            # The connection's own TLS state (STARTTLS or implicit).
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
            "content_type": msg.get_content_type(),
            "headers": {k: str(msg[k]) for k in
                        ["Subject", "From", "To", "Message-ID", "In-Reply-To", "References"]
                        if msg[k] is not None},
            "parts": parts,
        }
        Keep.count += 1
        path = os.path.join(out, f"{Keep.count:04d}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


kwargs = dict(
    hostname="127.0.0.1",
    port=int(port),
    authenticator=authenticator,
    auth_required=True,
    # aiosmtpd counts only STARTTLS as TLS for AUTH; with implicit TLS the
    # connection is encrypted from its first byte anyway.
    auth_require_tls=(mode != "implicit"),
)
if mode == "implicit":
    controller = Controller(Keep(), ssl_context=context, **kwargs)
else:
    controller = Controller(Keep(), tls_context=context, require_starttls=True, **kwargs)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
