# -*- test-case-name: tests.unit.store.test_sqlite -*-
"""
Fault injection for the SQL stores: a L{FaultyPool} wraps the connection
pools of an open L{Database} so chosen statements raise the driver error
a full disk or a damaged file would, at exactly the point in a transaction
the test picks.  It is a fake of the pool seam (L{conference.store.database.Pool}),
not a mock: every other statement runs on the real database.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

from twisted.internet.defer import Deferred

from conference.store.database import Database, Pool


class Faults:
    """
    Which statements fail, and with what error.

    @ivar hits: the statements that were made to fail, in order.
    """

    def __init__(self) -> None:
        self._rules: List[Tuple[str, BaseException]] = []
        self.hits: List[str] = []

    def fail(self, prefix: str, error: BaseException) -> None:
        """
        Make every statement starting with C{prefix} (case-insensitive,
        leading white space ignored) raise C{error} from now on.
        """
        self._rules.append((prefix.upper(), error))

    def clear(self) -> None:
        """
        Let every statement run again.
        """
        self._rules.clear()

    def check(self, statement: str) -> None:
        """
        Raise the error of the first rule C{statement} matches.
        """
        text = statement.lstrip().upper()
        for prefix, error in self._rules:
            if text.startswith(prefix):
                self.hits.append(statement)
                raise error


class _Cursor:
    def __init__(self, cursor: Any, faults: Faults) -> None:
        self._cursor = cursor
        self._faults = faults

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._faults.check(sql)
        return self._cursor.execute(sql, params)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Any:
        self._faults.check(sql)
        return self._cursor.executemany(sql, params)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> List[Any]:
        return list(self._cursor.fetchall())

    def close(self) -> Any:
        return self._cursor.close()


class _Connection:
    def __init__(self, connection: Any, faults: Faults) -> None:
        self._connection = connection
        self._faults = faults

    def cursor(self) -> _Cursor:
        return _Cursor(self._connection.cursor(), self._faults)


class FaultyPool:
    """
    A L{Pool} running everything on C{pool}, through cursors that consult
    C{faults} before each statement.
    """

    def __init__(self, pool: Pool, faults: Faults) -> None:
        self._pool = pool
        self._faults = faults

    def runWithConnection(self, func: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """
        C{func} on a connection of the wrapped pool, seen through the faults.
        """

        def run(connection: Any, *rest: Any) -> Any:
            return func(_Connection(connection, self._faults), *rest)

        return self._pool.runWithConnection(run, *args)

    def close(self) -> None:
        """
        Nothing: the wrapped pool belongs to the database it came from.
        """


def faulty(database: Database, faults: Faults) -> Database:
    """
    A L{Database} over the pools of C{database} (which still owns and
    closes them) whose statements go through C{faults}.
    """
    reader: Optional[Pool] = database._reader
    return Database(
        database.dialect,
        FaultyPool(database._writer, faults),
        FaultyPool(reader, faults) if reader is not None else None,
    )


__all__ = ["FaultyPool", "Faults", "faulty"]
