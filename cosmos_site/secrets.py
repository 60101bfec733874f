"""Secrets kept in the database (a node's Hugging Face token), encrypted with a key derived from SECRET_KEY.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) gives authenticated encryption: a
value altered in the database, or encrypted under another SECRET_KEY, does not decrypt to
anything. The key is derived with HKDF under a purpose label, so it is never the signing key
Django uses for sessions and CSRF. Changing SECRET_KEY makes stored secrets unreadable: they must
be set again (SecretUnreadable says so).
"""

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

PURPOSE = b"cosmos-workflow stored secrets v1"


class SecretUnreadable(ValueError):
    """A stored secret that does not decrypt: SECRET_KEY changed, or the value was altered."""


def _fernet() -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(
        str(settings.SECRET_KEY).encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode("ascii")


def decrypt_secret(stored: str) -> str:
    try:
        return _fernet().decrypt(stored.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        raise SecretUnreadable(
            "a stored secret cannot be decrypted (was COSMOS_SECRET_KEY changed?): set it again"
        ) from None
