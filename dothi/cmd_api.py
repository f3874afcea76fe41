"""``dothi api`` (serve the REST API) and ``dothi keys create|list|revoke`` (its API keys)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from api.const import SCOPES

if TYPE_CHECKING:
    from core.settings import Settings


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def cmd_api(settings: Settings, _: argparse.Namespace) -> int:
    """Serve the API (DOTHI_API_HOST:DOTHI_API_PORT)."""
    from api.service import run  # noqa: PLC0415 (uvicorn and FastAPI load only when serving)

    return run(settings)


def _scopes(text: str) -> list[str]:
    scopes = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes or unknown:
        msg = f"scopes must be a comma-separated list of {', '.join(SCOPES)}"
        raise argparse.ArgumentTypeError(msg)
    return list(dict.fromkeys(scopes))


def cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    """Create, list or revoke API keys."""
    import psycopg  # noqa: PLC0415

    from api import keys as keyfmt  # noqa: PLC0415
    from store import audit, keys  # noqa: PLC0415

    with psycopg.connect(settings.db_url()) as conn:
        if args.action == "create":
            new = keyfmt.generate()
            areas = [a.strip() for a in args.areas.split(",") if a.strip()] if args.areas else None
            with conn.transaction():
                key = keys.insert(
                    conn,
                    new.key_id,
                    args.name,
                    args.scopes,
                    new.secret_hash,
                    area_ids=areas,
                    rate_per_s=args.rate,
                    burst=args.burst,
                )
                audit.record(
                    conn,
                    audit.AuditEvent(
                        "key_create", key_id=key.id, client="cli", target=f"key:{key.id}"
                    ),
                )
            _out(f"key {key.id} created for {key.name!r}, scopes {','.join(key.scopes)}")
            if key.area_ids:
                _out(f"  read:all limited to areas: {', '.join(key.area_ids)}")
            _out(f"  {new.token}")
            _out("  (shown once: store it now; only its hash is kept)")
            return 0
        if args.action == "revoke":
            with conn.transaction():
                done = keys.revoke(conn, args.key_id)
                if done:
                    audit.record(
                        conn,
                        audit.AuditEvent(
                            "key_revoke",
                            key_id=args.key_id,
                            client="cli",
                            target=f"key:{args.key_id}",
                        ),
                    )
            if not done:
                sys.stderr.write(f"dothi: error: no active key {args.key_id!r}\n")
                return 1
            _out(f"key {args.key_id} revoked (running APIs refuse it within seconds)")
            return 0
        rows = keys.list_keys(conn, include_revoked=args.all)
    _out(f"{'id':<14} {'name':<24} {'scopes':<36} {'areas':<20} created / revoked")
    for k in rows:
        when = k.created_at.isoformat(timespec="seconds")
        if k.revoked_at:
            when += " / revoked " + k.revoked_at.isoformat(timespec="seconds")
        areas_txt = ",".join(k.area_ids) if k.area_ids else "-"
        _out(f"{k.id:<14} {k.name[:24]:<24} {','.join(k.scopes):<36} {areas_txt:<20} {when}")
    _out(f"({len(rows)} keys)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dothi api`` and ``dothi keys``."""
    p = sub.add_parser("api", help="serve the REST API (DOTHI_API_HOST:DOTHI_API_PORT)")
    p.set_defaults(func=cmd_api)

    p = sub.add_parser("keys", help="create, list and revoke API keys")
    ksub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = ksub.add_parser("create", help="issue a key (printed once)")
    c.add_argument("--name", required=True, help="who or what holds the key")
    c.add_argument(
        "--scopes",
        required=True,
        type=_scopes,
        help=f"comma-separated: {', '.join(SCOPES)}",
    )
    c.add_argument("--areas", help="limit read:all to these area ids (comma-separated)")
    c.add_argument("--rate", type=float, help="requests per second (default: the API's)")
    c.add_argument("--burst", type=int, help="burst size (default: the API's)")
    lst = ksub.add_parser("list", help="list keys (never their secrets)")
    lst.add_argument("--all", action="store_true", help="include revoked keys")
    r = ksub.add_parser("revoke", help="revoke a key by id")
    r.add_argument("key_id")
    p.set_defaults(func=cmd_keys)
