"""``edge central ...``: the collector's commands (the parser is in ``edge.cli``).

    edge central run                      collector + console until SIGTERM
    edge central user add NAME --role R [--site S] [--password-stdin]
    edge central user remove NAME
    edge central user list
"""

from __future__ import annotations

import argparse
import getpass
import sys

from edge.central.accounts import ALL_SITES, add_user, list_users, load_user, remove_user
from edge.central.database import Database
from edge.core.errors import EdgeError
from edge.core.text import printable
from edge.settings import CentralSettings


def run(settings: CentralSettings, args: argparse.Namespace) -> int:
    from edge.central.runner import run_central

    return run_central(settings, client_id=args.client_id)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise EdgeError("--password-stdin: no password on standard input")
        return line
    if not sys.stdin.isatty():
        raise EdgeError("no terminal to ask for the password on",
                        "pipe it in with --password-stdin")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise EdgeError("the two passwords differ; nothing was changed")
    return first


def _database(settings: CentralSettings) -> Database:
    database = Database.from_settings(settings)
    database.migrate()
    return database


def user_add(settings: CentralSettings, args: argparse.Namespace) -> int:
    database = _database(settings)
    try:
        db = database.connection()
        exists = load_user(db, args.name) is not None
        password = None if exists else _password(args)
        add_user(db, args.name, args.role, args.site, password)
    finally:
        database.close()
    where = f"site {args.site}" if args.site else "every site"
    print(f"{'granted' if exists else 'added'} {args.name}: {args.role} at {where}")
    return 0


def user_remove(settings: CentralSettings, args: argparse.Namespace) -> int:
    database = _database(settings)
    try:
        removed = remove_user(database.connection(), args.name)
    finally:
        database.close()
    if not removed:
        raise EdgeError(f"no user {printable(args.name)!r}", "`edge central user list` shows "
                        "who there is")
    print(f"removed {args.name}")
    return 0


def user_list(settings: CentralSettings, _args: argparse.Namespace) -> int:
    database = _database(settings)
    try:
        users = list_users(database.connection())
    finally:
        database.close()
    if not users:
        print("no users yet: `edge central user add NAME --role admin`")
    for user in users:
        grants = ", ".join(f"{role} at {'every site' if site == ALL_SITES else site}"
                           for site, role in sorted(user.grants.items()))
        print(f"{printable(user.name):24} {grants}")
    return 0
