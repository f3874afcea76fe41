"""Keys from the CLI, rate limits, revocation, auth-failure audit (real server, real database)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import psycopg

from tests.api_support import auth, client_for, make_keys, seed
from tests.helpers import wait_for

PREFIX = "/api/v1"


def _dothi(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTHI_")}
    env["DOTHI_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "dothi", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_keys_create_list_revoke(fresh_db_url: str) -> None:
    seed(fresh_db_url)
    made = _dothi(fresh_db_url, "keys", "create", "--name", "portal", "--scopes", "read:all")
    assert made.returncode == 0, made.stderr
    token = re.search(r"(dk_[a-z0-9]+_\S+)", made.stdout)
    assert token is not None
    key_id = token.group(1).split("_")[1]
    listed = _dothi(fresh_db_url, "keys", "list")
    assert key_id in listed.stdout
    assert token.group(1).split("_", 2)[2] not in listed.stdout  # the secret is never shown again
    bad = _dothi(fresh_db_url, "keys", "create", "--name", "x", "--scopes", "root")
    assert bad.returncode == 2
    assert "scopes must be" in bad.stderr
    with client_for(fresh_db_url, key_cache_s=0.2) as client:
        h = auth(token.group(1))
        assert client.get(f"{PREFIX}/devices/aq-priv", headers=h).status_code == 200
        revoked = _dothi(fresh_db_url, "keys", "revoke", key_id)
        assert revoked.returncode == 0, revoked.stderr
        # The key cache keeps a key for key_cache_s: the revocation bites within that.
        wait_for(
            lambda: client.get(f"{PREFIX}/devices", headers=h).status_code == 401,
            timeout=5,
            what="revocation to take effect",
        )
    assert _dothi(fresh_db_url, "keys", "revoke", key_id).returncode == 1
    with psycopg.connect(fresh_db_url) as conn:
        events = [r[0] for r in conn.execute("SELECT event FROM audit_log ORDER BY id")]
    assert events[:2] == ["key_create", "key_revoke"]
    assert "authn_token_revoked" in events


def test_rate_limit_429_with_retry_after(fresh_db_url: str) -> None:
    seed(fresh_db_url)
    keys = make_keys(fresh_db_url)
    with psycopg.connect(fresh_db_url) as conn:
        conn.execute("UPDATE api_keys SET rate_per_s = 0.5, burst = 3 WHERE name = 'public'")
    with client_for(fresh_db_url, anon_rate_per_s=0.2, anon_burst=2) as client:
        codes = [client.get(f"{PREFIX}/metrics", headers=auth(keys.public)) for _ in range(5)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
        limited = codes[3]
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["status"] == 429
        # Another key has its own bucket; anonymous callers share one per address.
        assert client.get(f"{PREFIX}/metrics", headers=auth(keys.all)).status_code == 200
        anon = [client.get(f"{PREFIX}/metrics").status_code for _ in range(3)]
        assert anon == [200, 200, 429]


def test_guessing_keys_runs_into_the_address_limit_and_is_audited(fresh_db_url: str) -> None:
    with client_for(fresh_db_url, anon_rate_per_s=0.1, anon_burst=3) as client:
        codes = [
            client.get(f"{PREFIX}/devices", headers=auth(f"dk_guess{i:04d}_{'a' * 43}")).status_code
            for i in range(5)
        ]
        assert codes == [401, 401, 401, 429, 429]

    with psycopg.connect(fresh_db_url) as conn:
        rows = conn.execute(
            "SELECT event, key_id, client, detail->>'reason' FROM audit_log ORDER BY id"
        ).fetchall()
    # Flushed at shutdown at the latest; key ids are recorded, never secrets. Attempts refused
    # by the rate limit are not audited one by one: that is what keeps a flood from becoming
    # a flood of audit rows (they are counted as 429s in /metrics).
    assert [r[0] for r in rows] == ["authn_login_fail"] * 3
    assert rows[0][1] == "guess0000"
    assert rows[0][2] == "127.0.0.1"


def test_key_cache_avoids_a_lookup_per_request(fresh_db_url: str) -> None:
    seed(fresh_db_url)
    keys = make_keys(fresh_db_url)
    with client_for(fresh_db_url, key_cache_s=60.0) as client:
        h = auth(keys.all)
        assert client.get(f"{PREFIX}/metrics", headers=h).status_code == 200
        with psycopg.connect(fresh_db_url, autocommit=True) as conn:
            conn.execute("UPDATE api_keys SET scopes = ARRAY['read:public'] WHERE name = 'all'")
        time.sleep(0.1)
        # Still the cached key (read:all) for up to key_cache_s: proves no per-request lookup.
        assert client.get(f"{PREFIX}/devices/aq-priv", headers=h).status_code == 200
