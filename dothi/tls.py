"""A local certificate authority for the embedded broker's TLS listeners (``openssl`` CLI).

The CA signs the broker's server certificate and, on request, device client certificates whose
common name is the device id (the mTLS listener takes it as the MQTT username, so the ACL
patterns apply to certificate-authenticated devices exactly as to password ones).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import DothiError

if TYPE_CHECKING:
    from pathlib import Path

CA_DAYS = 3650
CERT_DAYS = 825


class TlsError(DothiError):
    """A certificate could not be created; the message carries openssl's reason."""


@dataclass(frozen=True)
class LocalCA:
    """The CA files under ``dir``: ``ca.crt`` (public) and ``ca.key`` (private, 0600)."""

    dir: Path

    @property
    def cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def key(self) -> Path:
        return self.dir / "ca.key"

    def ensure(self) -> LocalCA:
        """Create the CA once; later calls reuse it (devices keep trusting the broker)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.cert.exists():
            _openssl(
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                "-days", str(CA_DAYS), "-subj", "/O=dothi/CN=dothi local CA",
                "-keyout", str(self.key), "-out", str(self.cert),
            )  # fmt: skip
            self.key.chmod(0o600)
        return self

    def issue(self, cn: str, out_dir: Path, *, server: bool = False) -> tuple[Path, Path]:
        """Issue a certificate for ``cn``; return (cert, key) paths in ``out_dir``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        key, csr, crt = (out_dir / f"{cn}.{ext}" for ext in ("key", "csr", "crt"))
        ext = out_dir / f"{cn}.ext"
        if server:
            ext.write_text(
                "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
            )
        else:
            ext.write_text("extendedKeyUsage=clientAuth\n")
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", f"/O=dothi/CN={cn}",
            "-keyout", str(key), "-out", str(csr),
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
            "-CAcreateserial", "-days", str(CERT_DAYS), "-sha256", "-extfile", str(ext),
            "-out", str(crt),
        )  # fmt: skip
        csr.unlink()
        ext.unlink()
        key.chmod(0o600)
        return crt, key


def _openssl(*args: str) -> None:
    tool = shutil.which("openssl")
    if tool is None:
        raise TlsError("openssl is not installed; run ./scripts/setup")
    proc = subprocess.run([tool, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise TlsError(f"openssl {args[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")
