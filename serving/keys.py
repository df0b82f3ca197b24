"""API keys from the command line: ``python -m serving.keys create --role writer --name shop``.

``create`` prints the key once (only its digest is stored), ``list`` the keys without
secrets, ``revoke KEY_ID`` disables one (the service notices without a restart). The store
is ``RECSYS_AUTH_KEYS_FILE``, by default ``<data_dir>/auth/keys.json``.
"""

import argparse
import sys

from recsys.platform.settings import get_settings
from serving.auth import KeyStore, Role
from serving.config import get_auth_settings


def store() -> KeyStore:
    return KeyStore(get_auth_settings().keys_file
                    or get_settings().data_dir / "auth" / "keys.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.keys",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--role", choices=[r.value for r in Role], required=True)
    create.add_argument("--name", default="", help="who or what the key is for")
    create.add_argument("--quiet", action="store_true", help="print only the key")
    commands.add_parser("list", help="list the keys (no secrets)")
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)
    keys = store()
    if args.command == "create":
        record, key = keys.create(Role(args.role), args.name)
        if args.quiet:
            print(key)
        else:
            print(f"key id {record.key_id}, role {record.role.value}; the key (shown once):")
            print(key)
    elif args.command == "list":
        for r in keys.records():
            state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
            print(f"{r.key_id}\t{r.role.value}\t{r.name or '-'}\t{r.created_at}\t{state}")
    else:
        try:
            keys.revoke(args.key_id)
        except KeyError as exc:
            print(exc.args[0], file=sys.stderr)
            return 1
        print(f"revoked {args.key_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
