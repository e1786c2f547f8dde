"""Client-certificate identity: a verified certificate's subject CN or SAN → a principal.

The TLS layer has already verified the certificate against `server.tls.client_ca_file`;
this module only maps the verified names (the dict `ssl.SSLSocket.getpeercert()`
returns) onto the identities declared in `auth.mtls`. No match → no principal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gateway.auth.grants import principal_for
from gateway.auth.principal import Principal
from gateway.auth.settings import MTLSIdentity

_SAN_KIND = {"san_dns": "DNS", "san_uri": "URI", "san_email": "email"}


class MTLSMap:
    def __init__(self, identities: Iterable[MTLSIdentity]) -> None:
        self._identities = tuple(identities)

    def __bool__(self) -> bool:
        return bool(self._identities)

    def identify(self, peercert: Mapping[str, Any] | None) -> Principal | None:
        if not peercert:
            return None
        cns = _common_names(peercert.get("subject", ()))
        sans = {(k, v) for k, v in peercert.get("subjectAltName", ()) if isinstance(v, str)}
        for ident in self._identities:
            if ident.subject_cn is not None and ident.subject_cn in cns:
                return principal_for(ident, f"mtls:{ident.id}", "mtls")
            for field, kind in _SAN_KIND.items():
                want = getattr(ident, field)
                if want is not None and (kind, want) in sans:
                    return principal_for(ident, f"mtls:{ident.id}", "mtls")
        return None


def _common_names(subject: Sequence[Sequence[tuple[str, str]]]) -> set[str]:
    return {value for rdn in subject for name, value in rdn if name == "commonName"}
